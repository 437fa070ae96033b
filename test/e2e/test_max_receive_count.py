"""End to end on the local cloud: a queue whose redrive `maxReceiveCount` is 2 (issue 13 item 5).
At 2, every message the failing consumer received once before the trip is one receive from the
dead-letter queue: the probe's receive and every re-jitter receive would be its last. The breaker
must recover without dead-lettering any of them: every order is processed, and an order found in
the dead-letter queue must have failed in the consumer at least `maxReceiveCount` times (the
consumer's own failures, which the redrive policy is there for). One module-scoped run."""
import json
import time
from collections import Counter

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenario import Scenario, deploy, drain, lambda_binaries, outage

MAX_RECEIVE_COUNT = 2
ALARM_PERIOD = 10
HOLD_OPEN = 30  # a few probes fail while the queue holds messages received once


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-max-receive-count")
    binaries = lambda_binaries()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    started = time.time()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD),
                           "maxReceiveCount": str(MAX_RECEIVE_COUNT)}, str(work), log=lambda m: None)
        scn = Scenario(cloud, d["outputs"])
        esm_before = scn.esm()
        scn.set_flag("ok")
        scn.send(30)
        scn.start_sending(3)
        o = outage(scn, HOLD_OPEN, lambda s: None)
        scn.stop_sending()
        drain_error = None
        try:
            drain(scn, 120, lambda s: None)
        except Exception as e:  # noqa: BLE001 - the assertions below say what is missing
            drain_error = e
        scn.poll_events()
        dead = dead_letters(scn)
        print(f"e2e maxReceiveCount {MAX_RECEIVE_COUNT}: {time.time() - started:.0f} s wall time, "
              f"{len(dead)} dead-lettered by the consumer")
        yield {"scn": scn, "outage": o, "summary": scn.summary(), "dead": dead, "drain_error": drain_error,
               "esm_before": esm_before, "esm_after": scn.esm()}
    finally:
        cloud.stop()


def dead_letters(scn: Scenario) -> Counter:
    """Order ids in the dead-letter queue (received and left there: the test only reads)."""
    seen: Counter = Counter()
    for _ in range(50):
        got = scn.sqs.receive_message(QueueUrl=scn.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                      WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        for m in got:
            seen[json.loads(m["Body"])["orderId"]] += 1
    return seen


def test_the_breaker_tripped_probed_and_closed(run):
    o, scn = run["outage"], run["scn"]
    assert o.tripped_at is not None and o.closed_at is not None
    types = [e["type"] for e in scn.breaker_events]
    assert "Circuit Opened" in types and "Circuit Closed" in types, types


def test_nothing_is_lost(run):
    s, scn = run["summary"], run["scn"]
    assert run["drain_error"] is None or s["still queued"] == 0, run["drain_error"]
    assert s["lost"] == 0 and s["still queued"] == 0, s
    unaccounted = [o for o in scn.sent if scn.ledger.processed[o] < 1 and o not in run["dead"]]
    assert not unaccounted and len(scn.sent) > 50, (len(unaccounted), len(scn.sent))


def test_nothing_is_dead_lettered_by_the_breaker(run):
    scn = run["scn"]
    by_breaker = {o: scn.ledger.attempts[o] - scn.ledger.processed[o] for o in run["dead"]
                  if scn.ledger.attempts[o] - scn.ledger.processed[o] < MAX_RECEIVE_COUNT}
    assert not by_breaker, f"dead-lettered with fewer than {MAX_RECEIVE_COUNT} consumer failures: {by_breaker}"


def test_the_original_mapping_configuration_is_restored(run):
    before, after = run["esm_before"], run["esm_after"]
    assert after["State"] == "Enabled"
    assert after.get("ScalingConfig") == before.get("ScalingConfig")
    assert after["BatchSize"] == before["BatchSize"]
