"""End to end on the local cloud: the example stack deployed with the real CDK CLI, the real
Rust handlers, consumer and extension the construct ships (arm64, under qemu-user), two outages: the first closes by itself once the flag
clears, the second is closed by an operator with the `breaker` CLI. One scenario runs once per
module; each test asserts one property of it."""
import json
import pathlib
import time

import pytest

from localcloud import stalls
from localcloud.cloud import LocalCloud
from localcloud.scenario import (Scenario, breaker_cli, build_cli, deploy, drain, entered_states, lambda_binaries, outage,
                                 read_notifications)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALARM_PERIOD = 10
# From the first failing invocation: the failing period completes (≤ one period), the evaluator
# sees it on its next tick (1 s), the event starts the execution and `open` disables the ESM.
LATENCY = 8
# The construct's longest re-jitter window (cdk/src/limits.json, rejitter.maxDelay): the demo
# profile leaves it unset, so a plan after a healthy probe sizes the window to the backlog within
# it, and a manual close (no probe timed the consumer) spreads the backlog over all of it.
CONFIGURED_MAX_DELAY = json.loads((ROOT / "cdk" / "src" / "limits.json").read_text())["settings"][
    "rejitterMaxSeconds"]["default"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    binaries = lambda_binaries()
    build_cli()  # the operator CLI (the shipped one, else a host build), before the timed scenario
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
            ending = stalls.Deadline(30)
            while not ending.expired() and any(
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
        # `breaker close` re-jitters over the whole configured window: its last copies may become
        # visible that long after the close
        drain(scn, CONFIGURED_MAX_DELAY + 60, lambda s: None)
        manual["status_after"] = breaker_cli(cloud, "status")
        notifications = read_notifications(scn, d["outputs"]["NotificationQueueUrl"])
        yield {"scn": scn, "first": first, "second": second, "manual": manual, "duplicate": duplicate,
               "summary": scn.summary(), "timings": d["timings"], "notifications": notifications,
               "circuit": d["outputs"]["CircuitName"], "measures": measures(scn, d["outputs"]["CircuitName"]),
               "breaker_logs": breaker_logs(cloud, str(work))}
    finally:
        cloud.stop()


def measures(scn: Scenario, circuit: str) -> dict[str, list[dict]]:
    """The datapoints of the breaker's measures (cdk/src/metrics.json) over the whole run, per
    10 s, as CloudWatch holds them after the handlers' metric lines."""
    names = json.loads((ROOT / "cdk" / "src" / "metrics.json").read_text())["measures"]
    end = time.time() + 60
    start = end - 3600
    out = {}
    for name, measure in names.items():
        points = scn.cw.get_metric_statistics(
            Namespace="SqsCircuitBreaker", MetricName=name, Dimensions=[{"Name": "Circuit", "Value": circuit}],
            StartTime=start, EndTime=end, Period=10, Statistics=[measure["statistic"]])["Datapoints"]
        out[name] = sorted(points, key=lambda p: p["Timestamp"])
    return out


def breaker_logs(cloud: LocalCloud, work: str) -> dict[str, list[str]]:
    """Every line each breaker function wrote (the host's per-function log files), by handler."""
    handlers = set(json.loads((ROOT / "lambdas" / "handlers" / "handlers.json").read_text()))
    out: dict[str, list[str]] = {}
    for fn in cloud.client("lambda").list_functions()["Functions"]:
        if fn.get("Handler") in handlers:
            path = pathlib.Path(work) / "logs" / f"{fn['FunctionName']}.log"
            if path.exists():
                out.setdefault(fn["Handler"], []).extend(path.read_text().splitlines())
    return out


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


def test_a_small_backlog_drains_within_a_minute_of_the_healthy_probe(run):
    """Issue 16: the re-jitter window is sized to the backlog, so every order sent before healing
    is processed (the ledger) within 60 s of the probe that led to re-jitter, although the demo
    profile keeps the construct's 0-300 s window (before the window was sized, this drained about
    310 s after the probe). It ends at the latest a sized window after the close: re-jitter
    finishes before the ramp starts, so every copy is visible by the close plus the window, and
    the closed mapping takes it within seconds (10 s for that)."""
    first, s = run["first"], run["summary"]
    assert first.probed_at is not None and first.tripped_at < first.probed_at < first.closed_at, first
    assert first.drained_at is not None, "an order sent before healing was never processed"
    assert s["probe -> drained (outage 1)"] == round(first.probe_to_drained, 1)
    windows = [plan.get("windowMaxSeconds") for plan in run["scn"].rejitter_plans(first)]
    assert windows, "the recovery planned no re-jitter window"
    assert CONFIGURED_MAX_DELAY == 300 and all(isinstance(w, int) and 0 < w < CONFIGURED_MAX_DELAY for w in windows), windows
    assert first.probe_to_drained < 60, f"drained {first.probe_to_drained:.1f} s after the healthy probe (windows {windows})"
    bound = first.healed_to_closed + max(windows) + 10
    assert first.healed_to_drained <= bound, (
        f"healed -> drained {first.healed_to_drained:.1f} s, healed -> closed {first.healed_to_closed:.1f} s, "
        f"windows {windows}")


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


def test_breaker_status_shows_the_last_recoverys_timeline_from_its_history(run):
    """Issue 18: after the manual close, `breaker status` shows that execution's steps in order,
    each with its seconds from the start, read from the real execution history."""
    m = run["manual"]
    timeline = m["status_after"]["lastRecovery"]
    assert timeline["run"]["execution"]["name"] == m["cli"]["name"], timeline
    assert timeline["run"]["status"] == "SUCCEEDED" and timeline["run"]["stoppedAtMs"], timeline
    assert [s["state"] for s in timeline["steps"]] == m["states"], timeline
    seconds = [s["atSeconds"] for s in timeline["steps"]]
    assert seconds == sorted(seconds) and not timeline["earlierStepsOmitted"], timeline
    assert m["status_after"]["phase"] == "closed" and m["status_after"]["recovery"] is None


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


def test_the_breaker_measures_its_ramp_levels_and_the_messages_it_re_jittered(run):
    """Issue 18: RampLevel and MessagesRejittered reach CloudWatch from the handlers' metric lines.
    Both outages ramp from the first level up to the mapping's own MaximumConcurrency, and the
    backlog queued while open is re-jittered."""
    m, scn = run["measures"], run["scn"]
    levels = [p["Maximum"] for p in m["RampLevel"]]
    assert levels, m
    assert max(levels) == scn.original_scaling["MaximumConcurrency"], levels
    assert min(levels) < max(levels), levels  # the ramp started below the mapping's own limit
    rejittered = sum(p["Sum"] for p in m["MessagesRejittered"])
    assert rejittered > 0, m["MessagesRejittered"]


def test_every_breaker_log_line_is_json_naming_the_circuit_and_the_execution(run):
    """Issue 18: the breaker's functions log JSON (their LoggingConfig), no terminal colour codes,
    and every line a handler logs names the circuit, the handler and the state machine execution."""
    logs, circuit = run["breaker_logs"], run["circuit"]
    assert {"open", "backoff", "probe", "rejitter-plan", "rejitter", "ramp", "close"} <= set(logs), sorted(logs)
    logged = 0
    for handler, lines in logs.items():
        for line in lines:
            assert "\x1b" not in line, line
            doc = json.loads(line)
            if "_aws" in doc:
                continue  # a metric line (embedded metric format)
            logged += 1
            span = doc.get("span") or {}
            assert (span.get("circuit"), span.get("handler")) == (circuit, handler), line
            assert span.get("execution", "").startswith("arn:aws:states:"), line
    assert logged > 20, logged
