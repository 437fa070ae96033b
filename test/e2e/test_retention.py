"""End to end on the local cloud: keep-alive (issue 12, "no message expires because the circuit
is open"). The example stack with a 120 s queue retention; orders are sent, the downstream fails
for longer than the retention (the circuit stays open ~200 s), then heals. Every order must be
processed, none expired (the local cloud deletes messages at their retention like SQS, see
`patches.fix_sqs`), none dead-lettered, and the breaker must have announced at least one
keep-alive pass. Its own module-scoped run (about 5 minutes of wall time; measured, not asserted:
it depends on the machine's load)."""
import time

import pytest

from localcloud import patches
from localcloud.cloud import LocalCloud
from localcloud.scenario import Scenario, deploy, drain, lambda_binaries, outage

RETENTION = 120  # keep-alive passes every 60 s
ALARM_PERIOD = 10
HOLD_OPEN = 200  # longer than the retention: without keep-alive the first orders expire


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-retention")
    binaries = lambda_binaries()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    started = time.time()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD),
                           "queueRetentionSeconds": str(RETENTION)}, str(work), log=lambda m: None)
        scn = Scenario(cloud, d["outputs"])
        scn.set_flag("ok")
        scn.send(20)
        scn.start_sending(2)
        o = outage(scn, HOLD_OPEN, lambda s: None, close_timeout=240)
        scn.stop_sending()
        drain(scn, 120, lambda s: None)
        scn.poll_events()
        queue = scn.queue_url.rstrip("/").rsplit("/", 1)[-1]
        expired = [m for q, m in patches.expired_messages if q == queue]
        print(f"e2e retention: {time.time() - started:.0f} s wall time")
        yield {"scn": scn, "outage": o, "summary": scn.summary(), "expired": expired}
    finally:
        cloud.stop()


def test_the_circuit_stayed_open_longer_than_the_retention(run):
    o = run["outage"]
    assert o.healed_at - o.tripped_at > RETENTION


def test_every_order_is_processed_none_expired_none_dead_lettered(run):
    s, scn = run["summary"], run["scn"]
    assert run["expired"] == []
    assert s["dead-lettered"] == 0 and s["lost"] == 0 and s["still queued"] == 0
    missing = [o for o in scn.sent if scn.ledger.processed[o] < 1]
    assert not missing and len(scn.sent) > 100


def test_the_breaker_announced_its_keep_alive_passes(run):
    kept = [e for e in run["scn"].breaker_events if e["type"] == "Messages Kept Alive"]
    assert kept, [e["type"] for e in run["scn"].breaker_events]
    assert all(e["detail"]["retentionSeconds"] == RETENTION for e in kept)

