"""CloudWatch metric-alarm evaluator (moto stores alarms and metrics but never evaluates them).

Every tick it evaluates each metric alarm over its last ``EvaluationPeriods`` complete periods:
single-metric alarms and metric-math alarms (the expression of the query with ``ReturnData``),
``DatapointsToAlarm`` M of N, and ``TreatMissingData``. A state change is written with
SetAlarmState and published to EventBridge as a ``CloudWatch Alarm State Change`` event. A change
made by someone else (``SetAlarmState`` from the breaker's close step) is published too, and the
next tick re-evaluates it, as CloudWatch does. Alarms start ``INSUFFICIENT_DATA``. A 10/20/30 s
period reads high-resolution data only (``STRICT_RESOLUTION``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Optional

log = logging.getLogger("localcloud.alarms")

Value = Optional[float]

# A 10, 20 or 30 s period reads high-resolution data only, as CloudWatch does: "Be sure to specify
# 10, 20, or 30 only for metrics that are stored by a PutMetricData call with a StorageResolution of
# 1. If you specify a period of 10, 20, or 30 for a metric that does not have sub-minute
# resolution, the alarm still attempts to gather data at the period rate that you specify. In this
# case, it does not receive data for the attempts that do not correspond to a one-minute data
# resolution, and the alarm might often lapse into INSUFFICIENT_DATA status" (PutMetricAlarm,
# ``Period``). Here a sub-minute period over 1-minute data receives nothing at all: its datapoints
# are missing and TreatMissingData decides (missing: INSUFFICIENT_DATA; ignore: the state stays).
# Lambda's own AWS/Lambda metrics are 1-minute data. False: every period reads every datum.
STRICT_RESOLUTION = True


# -- metric math ---------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|==|!=|[-+*/(),<>\[\]]))")


class MathError(ValueError):
    pass


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise MathError(f"cannot parse metric math near {expr[pos:]!r}")
        out.append(m.group(0).strip())
        pos = m.end()
    return out


def evaluate_expression(expr: str, values: dict[str, Value]) -> Value:
    """Evaluate a CloudWatch metric-math expression for one timestamp.

    Supports numbers, metric ids, + - * /, comparisons (1/0), AND/OR, IF(c, a[, b]),
    FILL(m, v), MAX/MIN/SUM/AVG([..]) and parentheses. A missing datapoint (None) propagates
    through arithmetic as in CloudWatch; FILL replaces it.
    """
    toks = _tokens(expr)
    pos = 0

    def peek() -> Optional[str]:
        return toks[pos] if pos < len(toks) else None

    def take(expected: Optional[str] = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok.upper() != expected):
            raise MathError(f"expected {expected or 'a value'} in {expr!r}")
        pos += 1
        return tok

    def arith(op: str, a: Value, b: Value) -> Value:
        if a is None or b is None:
            return None
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return None if b == 0 else a / b
        return float({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b, "==": a == b, "!=": a != b}[op])

    def logic() -> Value:
        left = comparison()
        while (peek() or "").upper() in ("AND", "OR"):
            op = take().upper()
            right = comparison()
            if left is None or right is None:
                left = None
            else:
                left = float(bool(left) and bool(right)) if op == "AND" else float(bool(left) or bool(right))
        return left

    def comparison() -> Value:
        left = additive()
        while peek() in ("<", ">", "<=", ">=", "==", "!="):
            op = take()
            left = arith(op, left, additive())
        return left

    def additive() -> Value:
        left = term()
        while peek() in ("+", "-"):
            op = take()
            left = arith(op, left, term())
        return left

    def term() -> Value:
        left = unary()
        while peek() in ("*", "/"):
            op = take()
            left = arith(op, left, unary())
        return left

    def unary() -> Value:
        if peek() == "-":
            take()
            v = unary()
            return None if v is None else -v
        return atom()

    def args() -> list:
        take("(")
        out = []
        while peek() != ")":
            if peek() == "[":
                take("[")
                items = []
                while peek() != "]":
                    items.append(logic())
                    if peek() == ",":
                        take(",")
                take("]")
                out.append(items)
            else:
                out.append(logic())
            if peek() == ",":
                take(",")
        take(")")
        return out

    def atom() -> Value:
        tok = take()
        if tok == "(":
            v = logic()
            take(")")
            return v
        if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", tok):
            return float(tok)
        name = tok.upper()
        if peek() == "(":
            a = args()
            if name == "IF":
                cond = a[0]
                if cond is None:
                    return None
                return a[1] if cond else (a[2] if len(a) > 2 else None)
            if name == "FILL":
                return a[1] if a[0] is None else a[0]
            if name in ("MAX", "MIN", "SUM", "AVG"):
                items = [x for x in (a[0] if isinstance(a[0], list) else a) if x is not None]
                if not items:
                    return None
                return {"MAX": max, "MIN": min, "SUM": sum, "AVG": lambda xs: sum(xs) / len(xs)}[name](items)
            if name == "ABS":
                return None if a[0] is None else abs(a[0])
            raise MathError(f"unsupported metric math function {tok}")
        if tok not in values:
            raise MathError(f"unknown metric id {tok!r} in {expr!r}")
        return values[tok]

    result = logic()
    if pos != len(toks):
        raise MathError(f"unexpected {toks[pos]!r} in {expr!r}")
    return result


# -- evaluation ----------------------------------------------------------------------------
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def decide(datapoints: list[Value], alarm: dict, current: str) -> str:
    """New state for the N datapoints (oldest first; None = missing)."""
    n = int(alarm["EvaluationPeriods"])
    m = int(alarm.get("DatapointsToAlarm") or n)
    treat = alarm.get("TreatMissingData") or "missing"
    breach = COMPARE[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    present = [v for v in datapoints if v is not None]
    missing = len(datapoints) - len(present)
    breaching = sum(1 for v in present if breach(v, threshold))
    if treat == "breaching":
        breaching += missing
        present_count = n
    elif treat == "notBreaching":
        present_count = n
    else:
        present_count = len(present)
    if breaching >= m:
        return "ALARM"
    if present_count == 0:
        return current if treat == "ignore" else "INSUFFICIENT_DATA"
    return "OK"


def _stat(points: dict, stat: str) -> Value:
    if not points or not points.get("SampleCount"):
        return None
    return points.get(stat)


class AlarmEvaluator:
    def __init__(self, cloud, tick_s: float = 1.0, now: Callable[[], float] = time.time):
        self.cloud = cloud
        self.tick_s = tick_s
        self.now = now
        self.known: dict[str, str] = {}  # alarm name -> last state we saw or set
        self.events: list[dict] = []  # every state-change event published (for tests/demo)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="alarm-evaluator")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        cw, events = self.cloud.client("cloudwatch"), self.cloud.client("events")
        while not self._stop.is_set():
            try:
                self.evaluate_all(cw, events)
            except Exception:
                log.exception("alarm evaluation failed")
            self._stop.wait(self.tick_s)

    def evaluate_all(self, cw, events) -> None:
        for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page["MetricAlarms"]:
                self.evaluate(alarm, cw, events)

    def evaluate(self, alarm: dict, cw, events) -> str:
        name = alarm["AlarmName"]
        state = alarm["StateValue"]
        if name not in self.known:  # CloudWatch starts every alarm in INSUFFICIENT_DATA
            self.known[name] = "INSUFFICIENT_DATA"
            if state != "INSUFFICIENT_DATA":
                cw.set_alarm_state(AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation")
            state = "INSUFFICIENT_DATA"
        elif state != self.known[name]:  # changed through SetAlarmState
            self.publish(alarm, self.known[name], state, alarm.get("StateReason", ""), events)
            self.known[name] = state
        datapoints = self.datapoints(alarm, cw)
        new = decide(datapoints, alarm, state)
        if new != state:
            reason = (
                f"Threshold Crossed: datapoints {[None if v is None else round(v, 3) for v in datapoints]} "
                f"vs threshold {alarm['Threshold']} ({alarm['ComparisonOperator']})"
            )
            cw.set_alarm_state(AlarmName=name, StateValue=new, StateReason=reason)
            self.known[name] = new
            self.publish(alarm, state, new, reason, events)
        return new

    def datapoints(self, alarm: dict, cw) -> list[Value]:
        period = int(alarm.get("Period") or next(
            q["MetricStat"]["Period"] for q in alarm["Metrics"] if "MetricStat" in q))
        n = int(alarm["EvaluationPeriods"])
        end = math.floor(self.now() / period) * period  # only complete periods
        buckets = [(end - (n - i) * period, end - (n - i - 1) * period) for i in range(n)]
        out: list[Value] = []
        for start, stop in buckets:
            if alarm.get("Metrics"):
                values: dict[str, Value] = {}
                result = None
                for q in [q for q in alarm["Metrics"] if "MetricStat" in q]:
                    ms = q["MetricStat"]
                    values[q["Id"]] = self._read(cw, ms["Metric"], ms["Stat"], start, stop)
                for q in [q for q in alarm["Metrics"] if "Expression" in q]:
                    values[q["Id"]] = evaluate_expression(q["Expression"], values)
                for q in alarm["Metrics"]:
                    if q.get("ReturnData", True) and ("Expression" in q or len(alarm["Metrics"]) == 1):
                        result = values[q["Id"]]
                out.append(result)
            else:
                metric = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                          "Dimensions": alarm.get("Dimensions", [])}
                out.append(self._read(cw, metric, alarm.get("Statistic", "Average"), start, stop))
        return out

    def _read(self, cw, metric: dict, stat: str, start: float, stop: float) -> Value:
        if STRICT_RESOLUTION and stop - start < 60:
            return self._high_resolution_stat(metric, stat, start, stop)
        return self._stat(cw, metric, stat, start, stop)

    def _high_resolution_stat(self, metric: dict, stat: str, start: float, stop: float) -> Value:
        """The statistic of ``metric``'s high-resolution datums in [start, stop) (moto in-process:
        the API has no way to ask for one resolution)."""
        from .cloud import ACCOUNT
        from .patches import high_resolution_statistics

        points = high_resolution_statistics(
            ACCOUNT, self.cloud.region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []),
            # moto keeps naive UTC timestamps
            datetime.fromtimestamp(start, tz=timezone.utc).replace(tzinfo=None),
            datetime.fromtimestamp(stop, tz=timezone.utc).replace(tzinfo=None), int(stop - start))
        merged: dict = {}
        for p in points:
            count, total = float(p.sample_count or 0), float(p.sum or 0)
            if not count:
                continue
            lo, hi = float(p.minimum), float(p.maximum)
            merged = {
                "SampleCount": merged.get("SampleCount", 0) + count,
                "Sum": merged.get("Sum", 0) + total,
                "Minimum": min(merged.get("Minimum", lo), lo),
                "Maximum": max(merged.get("Maximum", hi), hi),
            }
        if merged:
            merged["Average"] = merged["Sum"] / merged["SampleCount"]
        return _stat(merged, stat)

    @staticmethod
    def _stat(cw, metric: dict, stat: str, start: float, stop: float) -> Value:
        resp = cw.get_metric_statistics(
            Namespace=metric["Namespace"],
            MetricName=metric["MetricName"],
            Dimensions=metric.get("Dimensions", []),
            StartTime=datetime.fromtimestamp(start, tz=timezone.utc),
            EndTime=datetime.fromtimestamp(stop, tz=timezone.utc),
            Period=int(stop - start),
            Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
        )
        points = resp.get("Datapoints", [])
        if not points:
            return None
        p = points[0]
        if len(points) > 1:  # moto buckets from the first datapoint; merge
            p = {
                "SampleCount": sum(x["SampleCount"] for x in points),
                "Sum": sum(x["Sum"] for x in points),
                "Minimum": min(x["Minimum"] for x in points),
                "Maximum": max(x["Maximum"] for x in points),
            }
            p["Average"] = p["Sum"] / p["SampleCount"]
        return _stat(p, stat)

    def publish(self, alarm: dict, previous: str, state: str, reason: str, events=None) -> None:
        """Put a ``CloudWatch Alarm State Change`` event for ``alarm`` on the default bus."""
        events = events or self.cloud.client("events")
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        detail = {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": reason, "timestamp": now},
            "previousState": {"value": previous, "reason": "", "timestamp": now},
            "configuration": {"description": alarm.get("AlarmDescription", "")},
        }
        entry = {
            "Source": "aws.cloudwatch",
            "DetailType": "CloudWatch Alarm State Change",
            "Resources": [alarm["AlarmArn"]],
            "Detail": json.dumps(detail),
        }
        self.events.append({"at": time.time(), **detail})
        events.put_events(Entries=[entry])
