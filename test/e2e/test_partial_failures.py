"""End to end on the local cloud: a consumer that never throws but reports every message failed
(`ReportBatchItemFailures`, the example consumer's `partial` flag) trips the breaker. Lambda's
own `Errors` stays at 0 for such a consumer; the trip comes from the consumer's `PartialFailures`
EMF line, and the example stack's alarm (resolution HIGH: the telemetry extension's per-second
metrics, 10 s periods) reads both. Nothing is lost or dead-lettered, and the circuit closes once
the consumer recovers."""
import time

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenario import Scenario, deploy, drain, lambda_binaries, outage

ALARM_PERIOD = 10


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-partial")
    cloud = LocalCloud(binaries=lambda_binaries(), work_dir=str(work)).start()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD)}, str(work), log=lambda m: None)
        scn = Scenario(cloud, d["outputs"])
        errored: list[bool] = []  # per consumer invocation: did it fail (throw, time out)?
        cloud.host.observers.append(
            lambda fn, payload, result, at: errored.append(result.errored) if fn == scn.ledger.consumer else None)
        scn.set_flag("ok")
        scn.send(30)
        scn.start_sending(3)
        end = time.time() + 5
        scn.wait_until(lambda s: time.time() >= end, 10)
        o = outage(scn, 5, lambda s: None, mode="partial")
        scn.stop_sending()
        drain(scn, 120, lambda s: None)
        yield {"scn": scn, "outage": o, "summary": scn.summary(), "errored": errored, "cloud": cloud}
    finally:
        cloud.stop()


def test_a_consumer_that_only_reports_failed_items_trips_the_breaker(run):
    o = run["outage"]
    assert o.time_to_trip is not None
    # the trip needs two breaching 10 s periods, the EMF lines and the evaluator's tick
    assert o.time_to_trip <= 3 * ALARM_PERIOD + 10, f"tripped {o.time_to_trip:.1f} s after the first failed item"


def test_no_invocation_failed_so_lambda_errors_could_not_have_tripped_it(run):
    scn = run["scn"]
    assert run["errored"] and not any(run["errored"]), "an invocation of the consumer failed"
    errors = run["cloud"].client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Errors", Dimensions=[{"Name": "FunctionName", "Value": scn.ledger.consumer}],
        StartTime=scn.started - 600, EndTime=time.time() + 60, Period=60, Statistics=["Sum"])
    assert sum(p["Sum"] for p in errors["Datapoints"]) == 0


def test_nothing_is_lost_or_dead_lettered_and_the_circuit_closes(run):
    s = run["summary"]
    assert s["lost"] == 0 and s["dead-lettered"] == 0
    assert s["processed"] == s["sent"]
    assert run["outage"].closed_at is not None
