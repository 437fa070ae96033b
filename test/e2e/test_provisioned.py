"""End to end on the local cloud: an event-source mapping in provisioned mode (issue 13 item 2).
The example stack with `-c mappingMode=provisioned` (the orders mapping has ProvisionedPollerConfig
MinimumPollers 2, MaximumPollers 10 and no MaximumConcurrency), deployed with the real CDK CLI; the
local cloud refuses MaximumConcurrency together with a poller configuration, as AWS documents
(`patches.fix_lambda_esm`). One outage: trip, recover through a ramp of MaximumPollers, close.
Nothing may be lost or dead-lettered, and the mapping must end with its original poller
configuration exactly and no concurrency limit. On main the ramp's first step set
MaximumConcurrency, which is refused, and the circuit ended "Stuck Open". About 3 minutes of wall
time (measured, not asserted: it depends on the machine's load)."""
import time

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenario import Scenario, deploy, drain, lambda_binaries, outage

ALARM_PERIOD = 10
ORIGINAL = {"MinimumPollers": 2, "MaximumPollers": 10}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-provisioned")
    binaries = lambda_binaries()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    started = time.time()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD),
                           "mappingMode": "provisioned"}, str(work), log=lambda m: None)
        scn = Scenario(cloud, d["outputs"])
        deployed = scn.esm()
        scn.set_flag("ok")
        scn.send(20)
        scn.start_sending(2)
        o = outage(scn, 10, lambda s: None, close_timeout=240)
        scn.stop_sending()
        drain(scn, 120, lambda s: None)
        scn.poll_events()
        print(f"e2e provisioned: {time.time() - started:.0f} s wall time")
        yield {"scn": scn, "outage": o, "deployed": deployed, "closed": scn.esm(), "summary": scn.summary()}
    finally:
        cloud.stop()


def test_the_template_put_the_mapping_in_provisioned_mode(run):
    deployed = run["deployed"]
    assert deployed["ProvisionedPollerConfig"] == ORIGINAL
    assert "MaximumConcurrency" not in (deployed.get("ScalingConfig") or {})


def test_the_circuit_tripped_and_closed_without_getting_stuck(run):
    o, scn = run["outage"], run["scn"]
    assert o.tripped_at is not None and o.closed_at is not None
    types = [e["type"] for e in scn.breaker_events]
    assert "Circuit Opened" in types and "Circuit Half-Open" in types and "Circuit Closed" in types, types
    assert "Circuit Stuck Open" not in types, types


def test_the_ramp_went_through_maximum_pollers_never_a_concurrency_limit(run):
    scn = run["scn"]
    assert all(s["concurrency"] is None for s in scn.samples), "a provisioned mapping never gets MaximumConcurrency"
    half_open = next(e for e in scn.breaker_events if e["type"] == "Circuit Half-Open")
    assert half_open["detail"]["provisionedPollerConfig"] == {"minimumPollers": 2, "maximumPollers": 2}
    ramped = [s["pollers"] for s in scn.samples if s["esm"] == "Enabled" and s["running"]]
    assert 2 in ramped, ramped  # the first level, seen while the recovery still ran


def test_close_restored_the_original_poller_configuration_exactly(run):
    closed, scn = run["closed"], run["scn"]
    assert closed["State"] == "Enabled"
    assert closed["ProvisionedPollerConfig"] == ORIGINAL
    assert "MaximumConcurrency" not in (closed.get("ScalingConfig") or {})
    event = next(e for e in scn.breaker_events if e["type"] == "Circuit Closed")
    assert event["detail"]["restoredProvisionedPollerConfig"] == {"minimumPollers": 2, "maximumPollers": 10}


def test_every_order_is_processed_none_lost_none_dead_lettered(run):
    s, scn = run["summary"], run["scn"]
    assert s["dead-lettered"] == 0 and s["lost"] == 0 and s["still queued"] == 0
    missing = [o for o in scn.sent if scn.ledger.processed[o] < 1]
    assert not missing and len(scn.sent) > 20
