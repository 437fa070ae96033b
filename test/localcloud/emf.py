"""CloudWatch Embedded Metric Format: a function's (or its extensions') stdout line -> metric data.

On Lambda "writing JSON to standard out in the embedded metric format is sufficient" and CloudWatch
Logs extracts the metrics (CloudWatch User Guide, "Specification: Embedded metric format"). The
rules checked here are that specification's, and a document that breaks one yields no metric at
all (CloudWatch Logs counts it as an EMF validation error and keeps the log line):

- the line is one JSON object whose ``_aws`` member is an object with ``Timestamp`` (a number:
  milliseconds since the epoch) and ``CloudWatchMetrics`` (an array of MetricDirective);
- a MetricDirective has ``Namespace`` (a string, 1-255 characters), ``Dimensions`` (an array of
  DimensionSets, each an array of at most 30 strings naming root members with string values) and
  ``Metrics`` (at most 100 MetricDefinitions);
- a MetricDefinition has ``Name`` (1-255 characters) naming a root member that is a number or an
  array of at most 100 numbers, an optional ``Unit`` (a CloudWatch unit; ``None`` by default) and an
  optional ``StorageResolution`` (an integer: 1 = high resolution; otherwise standard, 60 s).

Timestamps follow PutMetricData: at most two weeks old and two hours ahead. Every DimensionSet of a
directive makes its own metric for every MetricDefinition.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Optional

UNITS = frozenset(
    "Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits "
    "Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second "
    "Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second "
    "Terabits/Second Count/Second None".split()
)
MAX_DIMENSIONS = 30
MAX_METRICS = 100
MAX_VALUES = 100
MAX_PAST_S = 14 * 24 * 3600
MAX_FUTURE_S = 2 * 3600


class EmfError(ValueError):
    """A document CloudWatch Logs would not extract metrics from (why, in the message)."""


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def document(line: str | bytes) -> Optional[dict]:
    """The EMF document a log line holds, or None for an ordinary log line (not a JSON object with
    an ``_aws`` member)."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not (text.startswith("{") and '"_aws"' in text):
        return None
    try:
        doc = json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "_aws" in doc else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name(v: Any, what: str) -> str:
    if not isinstance(v, str) or not 1 <= len(v) <= 255:
        raise EmfError(f"{what} must be a string of 1 to 255 characters, got {v!r}")
    return v


def metric_data(doc: dict, now: Optional[float] = None) -> list[tuple[str, dict]]:
    """``(namespace, PutMetricData MetricDatum)`` pairs of a valid EMF document; EmfError otherwise."""
    now = time.time() if now is None else now
    meta = doc.get("_aws")
    if not isinstance(meta, dict):
        raise EmfError("_aws must be an object")
    ts = meta.get("Timestamp")
    if not _is_number(ts):
        raise EmfError(f"_aws.Timestamp must be a number of milliseconds since the epoch, got {ts!r}")
    if not now - MAX_PAST_S <= ts / 1000 <= now + MAX_FUTURE_S:
        raise EmfError(f"_aws.Timestamp {ts} is more than two weeks old or two hours ahead")
    at = datetime.fromtimestamp(ts / 1000, tz=timezone.utc)
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise EmfError("_aws.CloudWatchMetrics must be an array of MetricDirective objects")
    out: list[tuple[str, dict]] = []
    for i, directive in enumerate(directives):
        where = f"_aws.CloudWatchMetrics[{i}]"
        if not isinstance(directive, dict):
            raise EmfError(f"{where} must be an object")
        namespace = _name(directive.get("Namespace"), f"{where}.Namespace")
        if namespace.startswith("AWS/"):
            raise EmfError(f"{where}.Namespace must not begin with AWS/ (reserved for AWS services)")
        sets = directive.get("Dimensions")
        if not isinstance(sets, list) or not sets:
            raise EmfError(f"{where}.Dimensions must be a non-empty array of DimensionSets")
        dimension_sets = []
        for j, keys in enumerate(sets):
            if not isinstance(keys, list) or len(keys) > MAX_DIMENSIONS:
                raise EmfError(f"{where}.Dimensions[{j}] must be an array of at most {MAX_DIMENSIONS} keys")
            dims = []
            for key in keys:
                _name(key, f"{where}.Dimensions[{j}] key")
                value = doc.get(key)
                if not isinstance(value, str) or not 1 <= len(value) <= 1024:
                    raise EmfError(f"dimension {key!r} must be a root member with a string value of 1 to 1024 "
                                   f"characters, got {value!r}")
                dims.append({"Name": key, "Value": value})
            dimension_sets.append(dims)
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
            raise EmfError(f"{where}.Metrics must be an array of at most {MAX_METRICS} MetricDefinitions")
        for k, definition in enumerate(metrics):
            if not isinstance(definition, dict):
                raise EmfError(f"{where}.Metrics[{k}] must be an object")
            name = _name(definition.get("Name"), f"{where}.Metrics[{k}].Name")
            unit = definition.get("Unit", "None")
            if unit not in UNITS:
                raise EmfError(f"{where}.Metrics[{k}].Unit {unit!r} is not a CloudWatch unit")
            resolution = definition.get("StorageResolution", 60)
            if not isinstance(resolution, int) or isinstance(resolution, bool):
                raise EmfError(f"{where}.Metrics[{k}].StorageResolution must be an integer, got {resolution!r}")
            value = doc.get(name)
            if _is_number(value):
                sample: dict = {"Value": float(value)}
            elif (isinstance(value, list) and 0 < len(value) <= MAX_VALUES and all(_is_number(v) for v in value)):
                sample = {"Values": [float(v) for v in value]}
            else:
                raise EmfError(f"metric {name!r} must be a root member holding a number or an array of 1 to "
                               f"{MAX_VALUES} numbers, got {value!r}")
            for dims in dimension_sets:
                out.append((namespace, {
                    "MetricName": name, "Dimensions": dims, "Timestamp": at, "Unit": unit,
                    "StorageResolution": 1 if resolution == 1 else 60, **sample,
                }))
    return out
