"""End to end on the local cloud: the example stack deployed with the real CDK CLI, the real
Rust handlers and consumer (host builds), two outages: the first closes by itself once the flag
clears, the second is closed by an operator with the `breaker` CLI. One scenario runs once per
module; each test asserts one property of it."""
import json
import time

import pytest

from localcloud.cloud import LocalCloud
from localcloud.scenario import Scenario, breaker_cli, entered_states, deploy, drain, host_binaries, outage

ALARM_PERIOD = 10
# From the first failing invocation: the failing period completes (≤ one period), the evaluator
# sees it on its next tick (1 s), the event starts the execution and `open` disables the ESM.
LATENCY = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    binaries = host_binaries()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    try:
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(ALARM_PERIOD)}, str(work), log=lambda m: None)
        scn = Scenario(cloud, d["outputs"])
        scn.set_flag("ok")
        scn.send(30)
        scn.start_sending(3)
        end = time.time() + 5
        scn.wait_until(lambda s: time.time() >= end, 10)
        duplicate = {}

        def inject_duplicate():
            before = {e["executionArn"] for e in scn.executions()}
            scn.inject_alarm_event()
            extra = scn.wait_until(lambda s: len(scn.executions()) > len(before), 20)
            new = [e for e in scn.executions() if e["executionArn"] not in before]
            end_by = time.time() + 30
            while time.time() < end_by and any(
                    scn.sfn.describe_execution(executionArn=e["executionArn"])["status"] == "RUNNING" for e in new):
                time.sleep(1)
            duplicate["new"] = [scn.sfn.describe_execution(executionArn=e["executionArn"]) for e in new]
            duplicate["esm_during"] = extra["esm"]
            duplicate["running_after"] = len(scn.executions("RUNNING"))

        first = outage(scn, 10, lambda s: None, during_open=inject_duplicate)
        manual = {}

        def wait_for_backoff():
            manual["recovery"] = scn.executions("RUNNING")[0]["executionArn"]
            scn.wait_until(lambda s: "Back Off" in entered_states(scn.sfn, manual["recovery"]), 60)

        def close_by_hand():
            manual["cli"] = breaker_cli(cloud, "close")
            scn.mark("breaker close")

        second = outage(scn, 0, lambda s: None, during_open=wait_for_backoff, on_healed=close_by_hand)
        manual["recovery_status"] = scn.sfn.describe_execution(executionArn=manual["recovery"])["status"]
        closing = manual["cli"]["executionArn"]
        manual["status"] = scn.sfn.describe_execution(executionArn=closing)["status"]
        manual["states"] = entered_states(scn.sfn, closing)
        scn.stop_sending()
        drain(scn, 120, lambda s: None)
        notifications = read_notifications(scn, d["outputs"]["NotificationQueueUrl"])
        yield {"scn": scn, "first": first, "second": second, "manual": manual, "duplicate": duplicate,
               "summary": scn.summary(), "timings": d["timings"], "notifications": notifications,
               "circuit": d["outputs"]["CircuitName"]}
    finally:
        cloud.stop()


def read_notifications(scn, queue_url: str) -> list[str]:
    """Every message of the example's notification inbox (raw delivery: the body is the text),
    in the order SNS sent them."""
    url = scn._local_url(queue_url)
    got, empty = [], 0
    while empty < 2:
        batch = scn.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                        AttributeNames=["SentTimestamp"]).get("Messages", [])
        empty = empty + 1 if not batch else 0
        got += batch
    got.sort(key=lambda m: int(m["Attributes"]["SentTimestamp"]))
    return [m["Body"] for m in got]


def test_esm_is_disabled_within_one_alarm_evaluation_after_failures_begin(run):
    for o in (run["first"], run["second"]):
        assert o.first_error_at is not None
        limit = run["scn"].alarm_period + LATENCY
        assert o.time_to_trip <= limit, f"tripped {o.time_to_trip:.1f} s after the first failure (limit {limit} s)"


def test_no_message_is_lost_or_dead_lettered(run):
    s = run["summary"]
    assert s["dead-lettered"] == 0
    assert s["lost"] == 0 and s["still queued"] == 0


def test_every_message_is_processed_at_least_once(run):
    scn = run["scn"]
    missing = [o for o in scn.sent if scn.ledger.processed[o] < 1]
    assert not missing and len(scn.sent) > 100


def test_circuit_closes_after_the_flag_clears(run):
    for o in (run["first"], run["second"]):  # the second with `breaker close`
        assert o.closed_at is not None and o.closed_at > o.healed_at
    scn = run["scn"]
    esm = scn.esm()
    assert esm["State"] == "Enabled"
    assert (esm.get("ScalingConfig") or {}) == scn.original_scaling
    closes = [e for e in scn.breaker_events if e["type"] == "Circuit Closed"]
    assert len(closes) == 2


def test_second_outage_trips_again_after_the_alarm_reset(run):
    second = run["second"]
    assert second.tripped_at > run["first"].closed_at
    scn = run["scn"]
    starts = [e for e in scn.alarms_seen() if e["state"]["value"] == "ALARM" and e["at"] > run["first"].closed_at]
    assert starts, "the alarm went back to ALARM for the second outage"


def test_two_alarm_events_start_only_one_recovery(run):
    dup = run["duplicate"]
    assert len(dup["new"]) == 1
    assert dup["new"][0]["status"] == "SUCCEEDED"
    assert dup["esm_during"] in ("Disabled", "Disabling")
    assert dup["running_after"] == 1
    first = run["first"]
    opened = [e for e in run["scn"].breaker_events
              if e["type"] == "Circuit Opened" and first.failing_at <= e["at"] <= first.closed_at]
    assert len(opened) == 1, json.dumps(opened)


def test_breaker_close_hands_over_to_a_manual_close_that_skips_backoff_and_probe(run):
    """The second outage: once its recovery backs off, the flag clears and an operator runs
    `breaker close`."""
    m = run["manual"]
    assert m["cli"]["stopped"] == [m["recovery"].rsplit(":", 1)[1]] and m["recovery_status"] == "ABORTED"
    assert m["cli"]["name"].startswith("manual-close-") and m["status"] == "SUCCEEDED"
    assert "Plan Re-jitter" in m["states"] and "Close Circuit" in m["states"], m["states"]
    assert not {"Compute Backoff", "Back Off", "Probe Consumer"} & set(m["states"]), m["states"]


def test_the_topic_tells_opened_half_open_closed_in_plain_text_in_order(run):
    """The example's topic (default notificationEvents) reaches its SQS subscriber: the first
    outage as Opened, Half-Open, Closed, each a readable text whose first line is the summary."""
    circuit, texts = run["circuit"], run["notifications"]
    prefix = f"sqs-circuit-breaker: circuit {circuit} "
    summaries = [t.split("\n", 1)[0] for t in texts]
    transitions = [s[len(prefix):] for s in summaries if s.startswith(prefix)]
    assert transitions[:3] == ["OPENED", "HALF-OPEN", "CLOSED"], summaries
    assert transitions.count("CLOSED") == 2 and transitions[-1] == "CLOSED", summaries  # both outages
    assert transitions.count("OPENED") >= 2, summaries
    opened = texts[summaries.index(prefix + "OPENED")]
    assert not opened.startswith('"'), opened  # plain text, not a JSON string
    assert "\nReason: trigger\n" in opened and f"\ncircuit: {circuit}\n" in opened, opened
    assert "\nqueue: arn:aws:sqs:" in opened and "\nattempt: " in opened, opened
