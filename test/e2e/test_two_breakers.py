"""End to end on the local cloud, two breakers in one stack (issue 18): the example stack with
`-c secondBreaker=true` deployed by the real CDK CLI, so the orders consumer (circuit A) and the
payments consumer (circuit B) each have their own queue, failure flag, mapping and breaker, both
notifying the same topic. B first goes through a recovery an operator starts (`breaker open
--circuit B`, B healthy, so it closes again); then A's consumer fails, A trips, recovers and
closes, while orders keep flowing to both. One scenario runs once per module; each test asserts
one property of it."""
import json
import os
import subprocess
import threading
import time

import pytest

from localcloud import stalls
from localcloud.cloud import LocalCloud
from localcloud.scenario import (STACK, Ledger, Scenario, breaker_cli, build_cli, deploy, drain, entered_states,
                                 lambda_binaries, outage, read_notifications)

# The fault campaign's profile: a 10 s alarm period, 2–6 s backoff, a 5 s re-jitter window and
# two 5 s ramp steps, so both recoveries fit in a couple of minutes.
CONTEXT = {"chaos": "true", "secondBreaker": "true"}
B_KEYS = ("QueueUrl", "DlqUrl", "EventSourceMappingUuid", "ConsumerFunctionName", "AlarmName", "StateMachineArn",
          "FlagParameterName", "CircuitName")
# An order sent to B is processed within this many seconds while B is closed (poll, invoke under qemu).
B_LATENCY = 10


class SecondLine:
    """Circuit B, the payments consumer: its orders, a ledger of its consumer's invocations and
    its mapping, read directly (the `Scenario` drives circuit A)."""

    def __init__(self, scn: Scenario, outputs: dict):
        self.scn = scn
        self.o = {k: outputs[f"Payments{k}"] for k in B_KEYS}
        self.queue_url = scn._local_url(self.o["QueueUrl"])
        self.dlq_url = scn._local_url(self.o["DlqUrl"])
        self.ledger = Ledger(self.o["ConsumerFunctionName"])
        scn.cloud.host.observers.append(self.ledger.observe)
        self.sent: list[tuple[float, str]] = []  # (time sent, orderId)
        self._stop = threading.Event()
        self._sender = None
        self.original_scaling = self.esm().get("ScalingConfig") or {}

    def set_flag(self, mode: str) -> None:
        self.scn.ssm.put_parameter(Name=self.o["FlagParameterName"], Value=mode, Type="String", Overwrite=True)

    def send(self, n: int) -> None:
        entries = []
        for _ in range(n):
            order = f"p-{len(self.sent) + len(entries) + 1:05d}"
            body = {"orderId": order, "amountCents": 500, "createdAtMs": int(time.time() * 1000)}
            entries.append({"Id": str(len(entries)), "MessageBody": json.dumps(body)})
        for i in range(0, len(entries), 10):
            batch = entries[i:i + 10]
            resp = self.scn.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=batch)
            ok = {e["Id"] for e in resp.get("Successful", [])}
            now = time.time()
            self.sent.extend((now, json.loads(e["MessageBody"])["orderId"]) for e in batch if e["Id"] in ok)

    def start_sending(self, per_second: int) -> None:
        def loop():
            while not self._stop.wait(1.0):
                self.send(per_second)

        self._sender = threading.Thread(target=loop, daemon=True, name="payments")
        self._sender.start()

    def stop_sending(self) -> None:
        self._stop.set()
        if self._sender:
            self._sender.join()

    def esm(self) -> dict:
        return self.scn.lam.get_event_source_mapping(UUID=self.o["EventSourceMappingUuid"])

    def executions(self) -> list[dict]:
        return self.scn.sfn.list_executions(stateMachineArn=self.o["StateMachineArn"])["executions"]

    def is_closed(self) -> bool:
        esm = self.esm()
        return (esm["State"] == "Enabled" and (esm.get("ScalingConfig") or {}) == self.original_scaling
                and not any(e["status"] == "RUNNING" for e in self.executions()))

    def drained(self) -> bool:
        q = self.scn.depth(self.queue_url)
        return not any(q.values()) and {o for _, o in self.sent} <= self.ledger.done()


def cli_text(cloud: LocalCloud, *args: str) -> subprocess.CompletedProcess:
    """The operator CLI as a person runs it (text; the exit code and stderr are the caller's)."""
    env = dict(os.environ, **cloud.client_env())
    return subprocess.run([*build_cli(), "--stack-name", STACK, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def wait(cond, timeout: float, what: str) -> None:
    stalls.wait_for(cond, timeout, what, every=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("two")
    binaries = lambda_binaries()
    build_cli()
    cloud = LocalCloud(binaries=binaries, work_dir=str(work)).start()
    try:
        d = deploy(cloud, CONTEXT, str(work), log=lambda m: None)
        out = d["outputs"]
        scn = Scenario(cloud, out)
        b = SecondLine(scn, out)
        a_name, b_name = out["CircuitName"], b.o["CircuitName"]
        scn.set_flag("ok")
        b.set_flag("ok")
        scn.send(20)
        b.send(20)
        scn.start_sending(2)
        b.start_sending(2)

        # B's own recovery, started by an operator while B is healthy: it opens, probes, closes.
        b_open = breaker_cli(cloud, "--circuit", b_name, "open")
        b_arn = b_open["executionArn"]
        wait(lambda: scn.sfn.describe_execution(executionArn=b_arn)["status"] != "RUNNING", 120, "B's recovery ending")
        wait(b.is_closed, 30, "B closed")
        b_recovery = {"name": b_open["name"], "status": scn.sfn.describe_execution(executionArn=b_arn)["status"],
                      "states": entered_states(scn.sfn, b_arn)}
        b_executions_before = {e["executionArn"] for e in b.executions()}

        # A fails; B is watched on every sample until A has closed.
        b_samples = []

        def watch_b(_):
            esm = b.esm()
            b_samples.append({"at": time.time(), "state": esm["State"], "scaling": esm.get("ScalingConfig") or {}})

        a_outage = outage(scn, 5, watch_b)
        b_executions_after = b.executions()
        scn.stop_sending()
        b.stop_sending()
        drain(scn, 120, lambda s: None)
        wait(b.drained, 120, "B drained")

        listing = breaker_cli(cloud, "list")
        listing_text = cli_text(cloud, "list")
        b_status = breaker_cli(cloud, "--circuit", b_name, "status")
        b_status_text = cli_text(cloud, "--circuit", b_name, "status")
        no_circuit = cli_text(cloud, "status")
        no_circuit_json = cli_text(cloud, "--json", "status")
        notifications = read_notifications(scn, out["NotificationQueueUrl"])
        yield {"scn": scn, "b": b, "a_name": a_name, "b_name": b_name, "out": out, "b_recovery": b_recovery,
               "b_arn": b_arn, "b_executions_before": b_executions_before, "b_executions_after": b_executions_after,
               "b_samples": b_samples, "a_outage": a_outage, "listing": listing, "listing_text": listing_text,
               "b_status": b_status, "b_status_text": b_status_text, "no_circuit": no_circuit,
               "no_circuit_json": no_circuit_json, "notifications": notifications}
    finally:
        cloud.stop()


def test_breaker_list_shows_both_circuits_with_their_queues(run):
    out, b = run["out"], run["b"]
    queues = {run["a_name"]: out["QueueUrl"], run["b_name"]: b.o["QueueUrl"]}
    listed = {x["circuitName"]: x for x in run["listing"]["breakers"]}
    assert set(listed) == set(queues), run["listing"]
    for name, url in queues.items():
        assert listed[name]["queueUrl"] == url and listed[name]["stackName"] == STACK, listed[name]
    assert listed[run["b_name"]]["stateMachineArn"] == b.o["StateMachineArn"], listed
    assert listed[run["b_name"]]["esmUuid"] == b.o["EventSourceMappingUuid"], listed
    text = run["listing_text"]
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"2 circuit breakers in stack {STACK}", text.stdout
    for name, url in queues.items():
        assert any(line.split()[0] == name and f"queue {url}" in line for line in lines[1:]), text.stdout
    assert lines[-1] == "pick one with --circuit NAME", text.stdout


def test_status_without_circuit_names_both_and_asks_for_one(run):
    a, b = run["a_name"], run["b_name"]
    text = run["no_circuit"]
    assert text.returncode != 0 and text.stdout == "", text
    assert text.stderr.strip() in (f"breaker: stack {STACK} has 2 circuit breakers ({first}, {second}): "
                                   "pick one with --circuit NAME (`breaker list` lists them)"
                                   for first, second in ((a, b), (b, a))), text.stderr
    as_json = run["no_circuit_json"]
    assert as_json.returncode != 0
    assert json.loads(as_json.stdout)["error"]["kind"] == "SeveralCircuits", as_json.stdout


def test_status_of_b_shows_b_closed_and_its_own_last_recovery(run):
    s, b = run["b_status"], run["b"]
    assert s["circuit"] == run["b_name"] and s["phase"] == "closed" and s["recovery"] is None, s
    assert s["mapping"]["uuid"] == b.o["EventSourceMappingUuid"], s
    assert s["mapping"]["state"] == "Enabled" and s["mapping"]["maximumConcurrency"] == 10, s
    timeline = s["lastRecovery"]
    rec = run["b_recovery"]
    assert timeline["run"]["execution"]["arn"] == run["b_arn"], timeline  # B's execution, not A's
    assert timeline["run"]["execution"]["name"] == rec["name"] and timeline["run"]["status"] == "SUCCEEDED", timeline
    assert [x["state"] for x in timeline["steps"]] == rec["states"], timeline
    assert {"Open Circuit", "Probe Consumer", "Close Circuit"} <= set(rec["states"]), rec["states"]
    assert not timeline["earlierStepsOmitted"], timeline
    text = run["b_status_text"]
    assert text.returncode == 0 and text.stdout.startswith(f"circuit {run['b_name']} (stack {STACK}): closed"), text
    assert rec["name"] in text.stdout and "Close Circuit" in text.stdout, text.stdout


def test_a_trips_and_closes_while_b_keeps_consuming_untouched(run):
    scn, b, o = run["scn"], run["b"], run["a_outage"]
    # A: disabled within its alarm, opened, recovered and closed with its configuration restored
    assert o.tripped_at and o.closed_at and o.closed_at > o.healed_at
    assert scn.esm()["State"] == "Enabled" and (scn.esm().get("ScalingConfig") or {}) == scn.original_scaling
    a_runs = [e for e in scn.executions() if e["startDate"].timestamp() >= o.failing_at]
    assert [e["status"] for e in a_runs] == ["SUCCEEDED"], a_runs
    assert "Open Circuit" in entered_states(scn.sfn, a_runs[0]["executionArn"])
    # B: its mapping never left Enabled with its original ScalingConfig, sampled every second
    samples = run["b_samples"]
    assert len(samples) >= 10 and samples[-1]["at"] >= o.closed_at - 2, len(samples)
    changed = [x for x in samples if x["state"] != "Enabled" or x["scaling"] != b.original_scaling]
    assert not changed, changed[:3]
    # B's state machine started nothing besides the recovery the test started (by `breaker open`)
    assert {e["executionArn"] for e in run["b_executions_after"]} == run["b_executions_before"] == {run["b_arn"]}
    assert not [e for e in scn.cloud.alarms.events if e["alarmName"] == b.o["AlarmName"] and e["state"]["value"] == "ALARM"]
    # B's orders sent while A was failing were processed while A was still open or ramping
    during = [order for at, order in b.sent if o.failing_at <= at <= o.closed_at - B_LATENCY]
    with b.ledger.lock:
        by_close = {order for at, order in b.ledger.processing_order if at <= o.closed_at}
    assert len(during) >= 10 and not set(during) - by_close, sorted(set(during) - by_close)[:5]
    # and nothing of either circuit is lost or dead-lettered
    assert {x for _, x in b.sent} <= b.ledger.done()
    dlq = scn.depth(b.dlq_url)
    assert dlq["Messages"] + dlq["MessagesNotVisible"] == 0
    s = scn.summary()
    assert s["lost"] == 0 and s["dead-lettered"] == 0 and s["still queued"] == 0, s


def test_topic_tells_a_opened_half_open_closed_naming_only_a(run):
    """The shared topic's SQS inbox: A's outage as Opened, Half-Open, Closed, each readable text
    naming circuit A and never B; B's notifications (its manual recovery) name only B and all come
    before A's outage."""
    a, b, texts = run["a_name"], run["b_name"], run["notifications"]
    summary = [t.split("\n", 1)[0] for t in texts]
    of = {name: [i for i, line in enumerate(summary) if line.startswith(f"sqs-circuit-breaker: circuit {name} ")]
          for name in (a, b)}
    assert sorted(of[a] + of[b]) == list(range(len(texts))), summary  # every message is about A or B
    a_transitions = [summary[i].rsplit(" ", 1)[1] for i in of[a]]
    assert a_transitions == ["OPENED", "HALF-OPEN", "CLOSED"], summary
    for i in of[a]:
        assert b not in texts[i] and f"\ncircuit: {a}\n" in texts[i], texts[i]
        assert not texts[i].startswith('"') and "\nqueue: arn:aws:sqs:" in texts[i], texts[i]
    assert "\nReason: trigger\n" in texts[of[a][0]], texts[of[a][0]]
    for i in of[b]:
        assert a not in texts[i] and f"\ncircuit: {b}\n" in texts[i], texts[i]
    assert of[b] and max(of[b]) < min(of[a]), summary  # B's own recovery only, before A's outage
    assert [summary[i].rsplit(" ", 1)[1] for i in of[b]] == ["OPENED", "HALF-OPEN", "CLOSED"], summary

