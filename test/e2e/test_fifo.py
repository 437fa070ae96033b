"""End to end on the local cloud: a FIFO orders queue (issue 13 item 1). The example stack with
`-c queueType=fifo` (FIFO queue and FIFO DLQ; the breaker is handed the queue imported through its
ARN token, so the construct cannot see at synth that it is FIFO and leaves re-jitter on), deployed
with the real CDK CLI onto the local cloud, which is as strict as SQS about FIFO
(`patches.fix_sqs_fifo`). Orders go to several message groups, numbered within each. One outage:
trip, recover, close. The recovery must skip re-jitter with "Re-jitter Skipped" (on main,
`rejitter-plan` failed NonRetryable and the circuit ended "Stuck Open"), lose nothing, dead-letter
nothing, keep every group's order, and restore the mapping's configuration. Wall time is printed
(measured, not asserted: it depends on the machine's load)."""
import time

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenario import FIFO_GROUPS, Scenario, deploy, drain, lambda_binaries, outage

ALARM_PERIOD = 10


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-fifo")
    binaries = lambda_binaries()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    started = time.time()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD), "queueType": "fifo"},
                   str(work), log=lambda m: None)
        deployed_at = time.time()
        scn = Scenario(cloud, d["outputs"])
        esm_before = scn.esm()
        scn.set_flag("ok")
        scn.send(20)
        scn.start_sending(2)
        o = outage(scn, 10, lambda s: None, close_timeout=180)
        scn.stop_sending()
        drain(scn, 120, lambda s: None)
        scn.poll_events()
        attrs = scn.sqs.get_queue_attributes(QueueUrl=scn.queue_url, AttributeNames=["All"])["Attributes"]
        print(f"e2e fifo: {time.time() - started:.0f} s wall time ({deployed_at - started:.0f} s deploy, "
              f"{time.time() - deployed_at:.0f} s outage and drain)")
        yield {"scn": scn, "outage": o, "summary": scn.summary(), "esm_before": esm_before,
               "esm_after": scn.esm(), "attrs": attrs}
    finally:
        cloud.stop()


def test_the_deployed_orders_queue_is_fifo(run):
    scn = run["scn"]
    assert scn.fifo and scn.queue_url.endswith(".fifo") and scn.dlq_url.endswith(".fifo")
    assert run["attrs"]["FifoQueue"] == "true"


def test_the_circuit_tripped_and_closed_skipping_rejitter_without_getting_stuck(run):
    o, scn = run["outage"], run["scn"]
    assert o.tripped_at is not None and o.closed_at is not None
    types = [e["type"] for e in scn.breaker_events]
    assert "Circuit Opened" in types and "Circuit Closed" in types, types
    assert "Circuit Stuck Open" not in types, types
    skipped = [e for e in scn.breaker_events if e["type"] == "Re-jitter Skipped"]
    assert skipped, types
    assert skipped[0]["detail"]["queueArn"].endswith(".fifo")
    assert "FIFO" in skipped[0]["detail"]["reason"]


def test_nothing_is_lost_and_nothing_dead_lettered(run):
    s, scn = run["summary"], run["scn"]
    assert s["dead-lettered"] == 0 and s["lost"] == 0 and s["still queued"] == 0, s
    missing = [o for o in scn.sent if scn.ledger.processed[o] < 1]
    assert not missing and len(scn.sent) > 20, (missing, len(scn.sent))


def test_order_within_each_message_group_survives_the_recovery(run):
    scn = run["scn"]
    groups = scn.ledger.group_order()
    assert len(groups) == FIFO_GROUPS, groups.keys()
    for group, seqs in groups.items():
        assert seqs == sorted(seqs), f"{group} processed out of order: {seqs}"
        assert seqs == list(range(1, len(seqs) + 1)), f"{group}: {seqs}"


def test_the_original_mapping_configuration_is_restored(run):
    before, after = run["esm_before"], run["esm_after"]
    assert after["State"] == "Enabled"
    assert after.get("ScalingConfig") == before.get("ScalingConfig")
    assert after["BatchSize"] == before["BatchSize"]
