"""End to end on the local cloud: a consumer deployed behind an alias (issue 13 item 4).
The example stack with `-c consumerAlias=live` (a published version of the consumer, the alias
`live` on it, the orders mapping invoking the alias, the breaker given the alias), deployed with the
real CDK CLI. The local cloud publishes an alias invocation's metrics under `FunctionName` and
under `FunctionName` + `Resource`, and CloudWatch matches dimensions exactly: an alarm on
`FunctionName=<fn>:live` (what the construct built on main for an imported alias or a version, and
what the ramp queried for every alias) sees no data and never trips. One outage: trip, recover,
close; nothing lost or dead-lettered; the mapping ends with its original configuration, still on
the alias. The alarm reads the telemetry extension's metrics of the function (AlarmResolution.HIGH,
the default for a function of the app). Wall time is printed (target at most 150 s; not asserted, it depends on the machine)."""
import time

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenario import Scenario, deploy, drain, lambda_binaries, outage

ALARM_PERIOD = 10
ALIAS = "live"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-alias")
    binaries = lambda_binaries()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    started = time.time()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD),
                           "consumerAlias": ALIAS}, str(work), log=lambda m: None)
        scn = Scenario(cloud, d["outputs"])
        deployed = scn.esm()
        alarm = scn.cw.describe_alarms(AlarmNames=[d["outputs"]["AlarmName"]])["MetricAlarms"][0]
        scn.set_flag("ok")
        scn.send(20)
        scn.start_sending(2)
        o = outage(scn, 5, lambda s: None, close_timeout=180)
        scn.stop_sending()
        drain(scn, 90, lambda s: None)
        scn.poll_events()
        wall = time.time() - started
        print(f"e2e alias: {wall:.0f} s wall time")
        yield {"scn": scn, "outage": o, "deployed": deployed, "closed": scn.esm(), "alarm": alarm,
               "summary": scn.summary(), "consumer": d["outputs"]["ConsumerFunctionName"], "wall": wall}
    finally:
        cloud.stop()


def test_the_mapping_invokes_the_alias(run):
    consumer = run["consumer"]
    assert run["deployed"]["FunctionArn"].endswith(f":function:{consumer}:{ALIAS}")


def test_the_alarm_reads_the_telemetry_metrics_of_the_function_behind_the_alias(run):
    """The example stack's consumer is a function of the app, so the breaker defaults to
    AlarmResolution.HIGH: the telemetry extension (on the function, hence on every version and
    the alias) names the function, and the alarm reads its per-second metrics under that name.
    With STANDARD an alias is read under FunctionName + Resource (construct/alias.test.ts; the
    local cloud's publishing in localcloud/tests/test_alias.py)."""
    consumer = run["consumer"]
    queries = [q for q in run["alarm"]["Metrics"] if "MetricStat" in q]
    assert sorted(q["Id"] for q in queries) == ["errors", "invocations", "partialFailures"]
    for query in queries:
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == "SqsCircuitBreaker/Consumer", query["Id"]
        assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": consumer}], query["Id"]
        assert query["MetricStat"]["Period"] == ALARM_PERIOD, query["Id"]


def test_the_circuit_tripped_on_the_alias_metrics_and_closed(run):
    o, scn = run["outage"], run["scn"]
    assert o.tripped_at is not None and o.closed_at is not None
    types = [e["type"] for e in scn.breaker_events]
    assert "Circuit Opened" in types and "Circuit Half-Open" in types and "Circuit Closed" in types, types
    assert "Circuit Stuck Open" not in types, types


def test_close_restored_the_original_configuration_on_the_alias(run):
    deployed, closed = run["deployed"], run["closed"]
    assert closed["State"] == "Enabled"
    assert closed["FunctionArn"] == deployed["FunctionArn"]
    assert closed.get("ScalingConfig") == deployed.get("ScalingConfig") == {"MaximumConcurrency": 10}


def test_every_order_is_processed_none_lost_none_dead_lettered(run):
    s, scn = run["summary"], run["scn"]
    assert s["dead-lettered"] == 0 and s["lost"] == 0 and s["still queued"] == 0
    missing = [o for o in scn.sent if scn.ledger.processed[o] < 1]
    assert not missing and len(scn.sent) > 20


def test_the_breaker_counted_its_transitions_and_the_recovery_alarm_stayed_ok(run):
    """Issue 18, metrics: every event the handlers put is also an EMF line on their stdout, which
    the local cloud (as CloudWatch Logs) turns into the breaker's metrics: one Opens, HalfOpens and
    Closes for the one outage, CircuitState last 0 (closed). The recovery alarm (stuck-open reports
    and failed recoveries, created by default) was deployed and stayed OK."""
    scn = run["scn"]
    circuit = next(e["detail"]["circuit"] for e in scn.breaker_events if e["type"] == "Circuit Closed")
    start = run["outage"].tripped_at - 300

    def datapoints(name, stat):
        points = scn.cw.get_metric_statistics(
            Namespace="SqsCircuitBreaker", MetricName=name, Dimensions=[{"Name": "Circuit", "Value": circuit}],
            StartTime=start, EndTime=time.time() + 60, Period=60, Statistics=[stat])["Datapoints"]
        return sorted(points, key=lambda p: p["Timestamp"])

    counted = {name: sum(p["Sum"] for p in datapoints(name, "Sum")) for name in ("Opens", "HalfOpens", "Closes", "StuckOpens")}
    events = [e["type"] for e in scn.breaker_events]
    assert counted == {"Opens": events.count("Circuit Opened"), "HalfOpens": events.count("Circuit Half-Open"),
                       "Closes": events.count("Circuit Closed"), "StuckOpens": 0}, (counted, events)
    assert counted["Opens"] >= 1 and counted["Closes"] >= 1
    states = datapoints("CircuitState", "Minimum")
    assert states and states[-1]["Minimum"] == 0, states
    recovery = [a for a in scn.cw.describe_alarms()["MetricAlarms"]
                if "stuck open or a recovery failed" in a.get("AlarmDescription", "")]
    assert len(recovery) == 1, [a["AlarmName"] for a in scn.cw.describe_alarms()["MetricAlarms"]]
    assert recovery[0]["StateValue"] != "ALARM", recovery[0]
