"""Lambda event filtering for SQS records, as the local cloud's poller applies a mapping's
``FilterCriteria`` (and as the breaker's probe does: ``lambdas/core/src/filter.rs``).

One table of documented rule cases, ``lambdas/core/fixtures/sqs-filter-cases.json``, is run
against both (``tests/test_filtering.py`` here, ``filter::tests`` in Rust). Rules: patterns are
OR-ed (none: every record); a pattern's fields are AND-ed; a field is a nested object or a list
of rules, OR-ed; ``$or`` ORs sub-patterns. Rules: exact string/number (by representation)/bool/
null, ``equals-ignore-case``, ``prefix``/``suffix`` (optionally ignoring case), ``anything-but``
(strings or numbers; a missing field matches nothing), ``numeric`` (``[op, n]`` or
``[op, n, op, n]``), ``exists`` (leaves only). A ``body`` object pattern applies to the body
parsed as JSON, a ``body`` list to the body as plain text; a mismatch drops the message. What
Lambda's mappings do not support (``wildcard``, ``cidr``, ``anything-but`` of an object) and the
fields the poller adds are refused with ``InvalidFilter``, as Lambda refuses such a mapping.
"""

from __future__ import annotations

import json
from typing import Any, Optional

POLLER_FIELDS = ("eventSource", "eventSourceARN", "awsRegion")
_ABSENT = object()
_COMPARISONS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class InvalidFilter(ValueError):
    """A pattern the matcher cannot apply; ``index`` is its position in ``Filters``."""

    def __init__(self, index: int, pattern: str, reason: str):
        super().__init__(f"filter pattern {index} cannot be applied ({reason}): {pattern}")
        self.index, self.pattern, self.reason = index, pattern, reason


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_rule(rule: Any, here: str) -> None:
    if rule is None or isinstance(rule, (str, bool)) or _is_number(rule):
        return
    if isinstance(rule, list):
        raise ValueError(f"{here}: {json.dumps(rule)} is a list inside a list")
    if len(rule) != 1:
        raise ValueError(f"{here}: {json.dumps(rule)} must hold exactly one operator")
    ((op, arg),) = rule.items()
    if op in ("prefix", "suffix"):
        if isinstance(arg, dict) and list(arg) == ["equals-ignore-case"]:
            arg = arg["equals-ignore-case"]
        if not isinstance(arg, str):
            raise ValueError(f"{here}: {op} needs a string")
    elif op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise ValueError(f"{here}: {op} needs a string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise ValueError(f"{here}: exists needs true or false")
    elif op == "anything-but":
        if isinstance(arg, dict):
            raise ValueError(f"{here}: anything-but with an object is not supported by event-source mapping filters")
        values = arg if isinstance(arg, list) else [arg]
        if not values or not (all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values)):
            raise ValueError(f"{here}: anything-but takes only strings or only numbers")
    elif op == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise ValueError(f"{here}: numeric needs [op, n] or [op, n, op, n]")
        pairs = list(zip(arg[::2], arg[1::2]))
        for cmp, n in pairs:
            if cmp not in _COMPARISONS or not _is_number(n):
                raise ValueError(f"{here}: numeric: bad comparison {cmp!r} {n!r}")
        if len(pairs) == 2 and any(cmp == "=" for cmp, _ in pairs):
            raise ValueError(f"{here}: numeric: = cannot be part of a range")
    elif op in ("wildcard", "cidr"):
        raise ValueError(f"{here}: {op} is not among the operators of Lambda event filtering")
    else:
        raise ValueError(f"{here}: unknown operator {op}")


def _check_object(obj: dict, path: str) -> None:
    for key, value in obj.items():
        here = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or not value or not all(isinstance(b, dict) for b in value):
                raise ValueError(f"{here} must be a non-empty list of objects")
            for branch in value:
                _check_object(branch, path)
        elif isinstance(value, dict):
            _check_object(value, here)
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"{here}: an empty list matches nothing")
            for rule in value:
                _check_rule(rule, here)
        else:
            raise ValueError(f"{here}: {json.dumps(value)} must be a list of rules or an object")


def parse(patterns: list[str]) -> list[dict]:
    """The patterns as objects; ``InvalidFilter`` names the first one that cannot be applied."""
    parsed = []
    for index, pattern in enumerate(patterns):
        try:
            try:
                obj = json.loads(pattern)
            except ValueError as e:
                raise ValueError(f"not valid JSON: {e}") from None
            if not isinstance(obj, dict):
                raise ValueError("a pattern must be a JSON object")
            for field in POLLER_FIELDS:
                if field in obj:
                    raise ValueError(f"{field} is added by the poller and cannot be filtered on")
            _check_object(obj, "")
        except ValueError as e:
            raise InvalidFilter(index, pattern, str(e)) from None
        parsed.append(obj)
    return parsed


def patterns_of(filter_criteria: Optional[dict]) -> list[str]:
    """``FilterCriteria.Filters[].Pattern`` of a mapping (``[]`` without a filter)."""
    return [f.get("Pattern", "") for f in ((filter_criteria or {}).get("Filters") or [])]


def _number_text(n: Any) -> str:
    return json.dumps(n)


def _exact(expected: Any, leaf: Any) -> bool:
    if _is_number(expected) and _is_number(leaf):
        return _number_text(expected) == _number_text(leaf)
    if isinstance(expected, bool) or isinstance(leaf, bool):
        return isinstance(expected, bool) and isinstance(leaf, bool) and expected == leaf
    if _is_number(expected) or _is_number(leaf):
        return False
    return expected == leaf


def _accepts(rule: Any, leaf: Any) -> bool:
    if not isinstance(rule, dict):
        return _exact(rule, leaf)
    ((op, arg),) = rule.items()
    text = leaf if isinstance(leaf, str) else None
    if op in ("prefix", "suffix"):
        ignore = isinstance(arg, dict)
        affix = arg["equals-ignore-case"] if ignore else arg
        if text is None:
            return False
        t, a = (text.lower(), affix.lower()) if ignore else (text, affix)
        return t.startswith(a) if op == "prefix" else t.endswith(a)
    if op == "equals-ignore-case":
        return text is not None and text.lower() == arg.lower()
    if op == "anything-but":
        values = arg if isinstance(arg, list) else [arg]
        return not any(_exact(v, leaf) for v in values)
    if op == "numeric":
        if not _is_number(leaf):
            return False
        return all(_COMPARISONS[cmp](leaf, n) for cmp, n in zip(arg[::2], arg[1::2]))
    raise AssertionError(f"unchecked operator {op}")


def _is_leaf(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _match_rules(rules: list, value: Any) -> bool:
    if value is _ABSENT:
        leaves = []
    elif isinstance(value, list):
        leaves = [v for v in value if _is_leaf(v)]
    else:
        leaves = [value] if _is_leaf(value) else []
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if bool(leaves) == rule["exists"]:
                return True
        elif any(_accepts(rule, leaf) for leaf in leaves):
            return True
    return False


def _match_field(pattern: Any, value: Any) -> bool:
    return _match_object(pattern, value) if isinstance(pattern, dict) else _match_rules(pattern, value)


def _match_object(obj: dict, value: Any) -> bool:
    if isinstance(value, list):
        return any(_match_object(obj, item) for item in value)
    fields = value if isinstance(value, dict) else {}
    for key, pattern in obj.items():
        if key == "$or":
            if not any(_match_object(branch, value) for branch in pattern):
                return False
        elif not _match_field(pattern, fields.get(key, _ABSENT)):
            return False
    return True


def _match_record(obj: dict, record: dict) -> bool:
    for key, pattern in obj.items():
        if key == "$or":
            if not any(_match_record(branch, record) for branch in pattern):
                return False
        elif key == "body" and isinstance(record.get("body"), str):
            body = record["body"]
            try:
                parsed, is_json = json.loads(body), True
            except ValueError:
                parsed, is_json = None, False
            if isinstance(pattern, dict):
                if not (is_json and _match_object(pattern, parsed)):
                    return False
            elif is_json or not _match_rules(pattern, body):
                # The body's format differs from its pattern's: Lambda drops the message.
                return False
        elif not _match_field(pattern, record.get(key, _ABSENT)):
            return False
    return True


def matches(parsed: list[dict], record: dict) -> bool:
    """Whether a mapping with these (parsed) patterns delivers the SQS ``record``."""
    return not parsed or any(_match_record(p, record) for p in parsed)
