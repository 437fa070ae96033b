"""Metric resolution end to end: PutMetricData keeps ``StorageResolution``, Lambda's own
``AWS/Lambda`` metrics are 1-minute data, EMF lines on a function's stdout become metrics at their
declared resolution, and a 10/20/30 s alarm period over 1-minute data lapses into
INSUFFICIENT_DATA (``alarms.STRICT_RESOLUTION``)."""
import json
import math
import time

import pytest

from localcloud import alarms
from localcloud.alarms import AlarmEvaluator
from localcloud.cloud import LocalCloud

from .test_cloud import create_fn, wait_for

NS = "Test/Resolution"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud")), alarm_tick_s=3600).start()
    c.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    yield c
    c.stop()


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setattr(alarms, "STRICT_RESOLUTION", True)


def alarm_state(cloud, name, metric, period, at, stat="Sum", periods=1, treat="missing"):
    """Create a metric alarm ``Sum >= 1`` and evaluate it once with the clock at ``at``."""
    cw = cloud.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=name, Namespace=metric["Namespace"], MetricName=metric["MetricName"],
                        Dimensions=metric.get("Dimensions", []), Statistic=stat, Period=period,
                        EvaluationPeriods=periods, DatapointsToAlarm=1, Threshold=1,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData=treat)
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    return AlarmEvaluator(cloud, now=lambda: at).evaluate(alarm, cw, cloud.client("events"))


def after_bucket(t, period):
    """A clock just past the end of the ``period`` bucket holding ``t``."""
    return math.floor(t / period) * period + period + 0.5


def test_put_metric_data_refuses_a_storage_resolution_other_than_1_or_60(cloud):
    """PutMetricData ``StorageResolution``: "Valid values are 1 and 60" (CloudWatch API reference,
    MetricDatum)."""
    cw = cloud.client("cloudwatch")
    with pytest.raises(cw.exceptions.ClientError, match="StorageResolution"):
        cw.put_metric_data(Namespace=NS, MetricData=[{"MetricName": "Odd", "Value": 1, "StorageResolution": 5}])
    cw.put_metric_data(Namespace=NS, MetricData=[{"MetricName": "Even", "Value": 1, "StorageResolution": 60}])


def test_a_ten_second_alarm_sees_high_resolution_data_only(cloud, strict):
    cw = cloud.client("cloudwatch")
    t = time.time()
    cw.put_metric_data(Namespace=NS, MetricData=[
        {"MetricName": "Fast", "Value": 1, "StorageResolution": 1},
        {"MetricName": "Slow", "Value": 1, "StorageResolution": 60},
        {"MetricName": "Plain", "Value": 1},
    ])
    at10, at60 = after_bucket(t, 10), after_bucket(t, 60)
    assert alarm_state(cloud, "fast-10", {"Namespace": NS, "MetricName": "Fast"}, 10, at10) == "ALARM"
    assert alarm_state(cloud, "slow-10", {"Namespace": NS, "MetricName": "Slow"}, 10, at10) == "INSUFFICIENT_DATA"
    assert alarm_state(cloud, "plain-10", {"Namespace": NS, "MetricName": "Plain"}, 10, at10) == "INSUFFICIENT_DATA"
    # a whole-minute period reads both resolutions
    assert alarm_state(cloud, "slow-60", {"Namespace": NS, "MetricName": "Slow"}, 60, at60) == "ALARM"
    assert alarm_state(cloud, "fast-60", {"Namespace": NS, "MetricName": "Fast"}, 60, at60) == "ALARM"


def test_the_switch_off_lets_a_ten_second_alarm_read_minute_data(cloud, monkeypatch):
    monkeypatch.setattr(alarms, "STRICT_RESOLUTION", False)
    t = time.time()
    cloud.client("cloudwatch").put_metric_data(Namespace=NS, MetricData=[{"MetricName": "Lenient", "Value": 1}])
    assert alarm_state(cloud, "lenient-10", {"Namespace": NS, "MetricName": "Lenient"}, 10, after_bucket(t, 10)) == "ALARM"


def test_lambda_metrics_are_one_minute_data(cloud, strict):
    create_fn(cloud, "minutely", "echo")
    t = time.time()
    cloud.client("lambda").invoke(FunctionName="minutely", Payload=b"{}")
    metric = {"Namespace": "AWS/Lambda", "MetricName": "Invocations",
              "Dimensions": [{"Name": "FunctionName", "Value": "minutely"}]}
    cw = cloud.client("cloudwatch")
    wait_for(lambda: cw.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=metric["Dimensions"],
        StartTime=t - 60, EndTime=t + 60, Period=60, Statistics=["Sum"])["Datapoints"])
    assert alarm_state(cloud, "lambda-60", metric, 60, after_bucket(t, 60) + 60, periods=2) == "ALARM"
    assert alarm_state(cloud, "lambda-10", metric, 10, after_bucket(t, 10) + 10, periods=3) == "INSUFFICIENT_DATA"


def emf(ns, values, resolution=None, ts=None, dims=(("FunctionName",),), extra=None):
    metrics = []
    for name in values:
        d = {"Name": name, "Unit": "Count"}
        if resolution is not None:
            d["StorageResolution"] = resolution
        metrics.append(d)
    doc = {"_aws": {"Timestamp": int((ts or time.time()) * 1000),
                    "CloudWatchMetrics": [{"Namespace": ns, "Dimensions": [list(s) for s in dims], "Metrics": metrics}]}}
    doc.update(values)
    doc.update(extra or {"FunctionName": "emitter"})
    return json.dumps(doc)


def test_emf_lines_on_a_functions_stdout_become_metrics_at_their_resolution(cloud, strict):
    create_fn(cloud, "emitter", "print")
    t = time.time()
    lines = [
        "plain log line",
        emf("Test/Emf", {"Fast": 2}, resolution=1, ts=t),
        emf("Test/Emf", {"Slow": [1, 2, 3]}, ts=t),
    ]
    out = cloud.client("lambda").invoke(FunctionName="emitter", Payload=json.dumps({"lines": lines}).encode())
    assert json.loads(out["Payload"].read()) == {"printed": 3}
    cw = cloud.client("cloudwatch")
    dims = [{"Name": "FunctionName", "Value": "emitter"}]

    def stats(name):
        pts = cw.get_metric_statistics(Namespace="Test/Emf", MetricName=name, Dimensions=dims, StartTime=t - 60,
                                       EndTime=t + 60, Period=120, Statistics=["Sum", "SampleCount"])["Datapoints"]
        return pts and (pts[0]["Sum"], pts[0]["SampleCount"], pts[0]["Unit"])
    assert wait_for(lambda: stats("Fast")) == (2, 1, "Count")
    assert wait_for(lambda: stats("Slow")) == (6, 3, "Count")
    fast = {"Namespace": "Test/Emf", "MetricName": "Fast", "Dimensions": dims}
    slow = {"Namespace": "Test/Emf", "MetricName": "Slow", "Dimensions": dims}
    assert alarm_state(cloud, "emf-fast-10", fast, 10, after_bucket(t, 10)) == "ALARM"
    assert alarm_state(cloud, "emf-slow-10", slow, 10, after_bucket(t, 10)) == "INSUFFICIENT_DATA"


@pytest.mark.parametrize("bad", [
    # dimension target must be a string
    lambda: emf("Test/Bad", {"Bad": 1}, extra={"FunctionName": 7}),
    # a dimension key without a root member
    lambda: emf("Test/Bad", {"Bad": 1}, extra={"Other": "x"}),
    # metric target must be a number or an array of numbers
    lambda: emf("Test/Bad", {"Bad": "1"}),
    # Timestamp is required and a number
    lambda: json.dumps({"_aws": {"CloudWatchMetrics": [{"Namespace": "Test/Bad", "Dimensions": [[]], "Metrics": [{"Name": "Bad"}]}]}, "Bad": 1}),
    # a unit CloudWatch does not know
    lambda: emf("Test/Bad", {"Bad": 1}).replace('"Count"', '"Apples"'),
    # more than 100 values
    lambda: emf("Test/Bad", {"Bad": list(range(101))}),
])
def test_invalid_emf_documents_are_rejected_and_the_function_carries_on(cloud, bad):
    create_fn(cloud, "bad-emitter", "print") if "bad-emitter" not in [
        f["FunctionName"] for f in cloud.client("lambda").list_functions()["Functions"]] else None
    good = emf("Test/Bad", {"Good": 1}, extra={"FunctionName": "bad-emitter"})
    out = cloud.client("lambda").invoke(FunctionName="bad-emitter", Payload=json.dumps({"lines": [bad(), good]}).encode())
    assert json.loads(out["Payload"].read()) == {"printed": 2}
    cw = cloud.client("cloudwatch")
    wait_for(lambda: any(m["MetricName"] == "Good" for m in cw.list_metrics(Namespace="Test/Bad")["Metrics"]))
    time.sleep(0.5)
    assert not any(m["MetricName"] == "Bad" for m in cw.list_metrics(Namespace="Test/Bad")["Metrics"])
    assert cloud.emf_rejected, "the rejection is logged"
