"""CloudWatch over Smithy RPC v2 CBOR (what the Rust SDK speaks) reaches moto."""
import time
from datetime import datetime, timezone

import cbor2
import requests

from .test_cloud import cloud  # noqa: F401  (module-scoped local cloud)

HEADERS = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"}


def call(cloud, op, params):  # noqa: F811
    r = requests.post(f"{cloud.url}/service/GraniteServiceVersion20100801/operation/{op}",
                      data=cbor2.dumps(params, datetime_as_timestamp=True, timezone=timezone.utc), headers=HEADERS, timeout=10)
    assert r.headers["smithy-protocol"] == "rpc-v2-cbor"
    return r.status_code, cbor2.loads(r.content)


def test_put_and_get_metric_data_and_alarm_state_over_cbor(cloud):  # noqa: F811
    now = datetime.now(timezone.utc)
    dims = [{"Name": "FunctionName", "Value": "cbor-fn"}]
    status, _ = call(cloud, "PutMetricData", {"Namespace": "AWS/Lambda", "MetricData": [
        {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": 2.0}]})
    assert status == 200
    status, doc = call(cloud, "GetMetricData", {
        "MetricDataQueries": [{"Id": "e", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": dims}, "Period": 60, "Stat": "Sum"}}],
        "StartTime": datetime.fromtimestamp(time.time() - 120, timezone.utc), "EndTime": datetime.fromtimestamp(time.time() + 60, timezone.utc)})
    assert status == 200 and sum(doc["MetricDataResults"][0]["Values"]) == 2.0
    assert isinstance(doc["MetricDataResults"][0]["Timestamps"][0], datetime)
    cloud.client("cloudwatch").put_metric_alarm(AlarmName="cbor-alarm", Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    status, _ = call(cloud, "SetAlarmState", {"AlarmName": "cbor-alarm", "StateValue": "ALARM", "StateReason": "test"})
    assert status == 200
    status, doc = call(cloud, "DescribeAlarms", {"AlarmNames": ["cbor-alarm"]})
    assert doc["MetricAlarms"][0]["StateValue"] in ("ALARM", "INSUFFICIENT_DATA", "OK")


def test_cbor_errors_carry_the_error_type(cloud):  # noqa: F811
    status, doc = call(cloud, "SetAlarmState", {"AlarmName": "no-such-alarm", "StateValue": "OK", "StateReason": "x"})
    assert status >= 400 and doc["__type"] == "ResourceNotFound"
    status, doc = call(cloud, "SetAlarmState", {"AlarmName": 5})
    assert status == 400 and doc["__type"] == "ValidationError"
