import pytest

from localcloud.alarms import MathError, decide, evaluate_expression


def alarm(**kw):
    base = {"EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 50.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing"}
    base.update(kw)
    return base


def test_error_rate_expression_with_minimum_invocations():
    expr = "IF(invocations >= 5, 100 * errors / invocations, 0)"
    assert evaluate_expression(expr, {"errors": 3, "invocations": 4}) == 0
    assert evaluate_expression(expr, {"errors": 3, "invocations": 6}) == 50
    assert evaluate_expression(expr, {"errors": None, "invocations": None}) is None


def test_fill_and_max_functions_handle_missing_datapoints():
    assert evaluate_expression("100 * FILL(e, 0) / MAX([FILL(i, 0), 1])", {"e": None, "i": None}) == 0
    assert evaluate_expression("(a + b) * 2 - -1", {"a": 1, "b": 2}) == 7
    assert evaluate_expression("a > 1 AND b < 1", {"a": 2, "b": 0}) == 1.0


def test_unknown_ids_and_syntax_errors_are_reported():
    with pytest.raises(MathError, match="unknown metric id 'x'"):
        evaluate_expression("x + 1", {})
    with pytest.raises(MathError):
        evaluate_expression("1 +", {})


def test_m_of_n_needs_m_breaching_datapoints():
    assert decide([60, 10, 70], alarm(), "OK") == "ALARM"
    assert decide([60, 10, 10], alarm(), "ALARM") == "OK"


def test_treat_missing_data_modes():
    assert decide([None, None, None], alarm(), "OK") == "INSUFFICIENT_DATA"
    assert decide([None, None, None], alarm(TreatMissingData="notBreaching"), "ALARM") == "OK"
    assert decide([None, 60, None], alarm(TreatMissingData="breaching"), "OK") == "ALARM"
    assert decide([None, None, None], alarm(TreatMissingData="ignore"), "ALARM") == "ALARM"
