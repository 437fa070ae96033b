"""`npm run chaos`: the fault campaign. Seeded schedules of faults against the deployed breaker on
the local cloud, and a checker of the breaker's promises over what happened.

    npm run chaos -- --schedules 50 --seed 1        # the full campaign
    npm run chaos -- --subset                       # the fixed CI subset (every fault kind)
    npm run chaos -- --seed 17 --schedules 1        # replay schedule 17

Each worker (``--workers``, one local cloud each) deploys the example stack with the real CDK CLI
(``-c chaos=true`` timings) once and runs its share of the schedules one after another. A schedule
sends orders at a steady rate and mixes, at seeded times:

- downstream trouble through the example's flag: ``fail``, ``slow`` (timeouts), ``percent:90``,
  and flapping between ``fail`` and ``ok``;
- faults at the AWS boundary for the breaker's own calls (throttling, 5xx, timeouts that still
  happen after the caller gave up), injected by ``faults.FaultLayer`` (the consumer stays clean);
- a breaker Lambda killed with SIGKILL mid-invocation at a named point (``KILL_POINTS``);
- EventBridge deliveries to the state machine duplicated or delayed, the alarm set to OK while it
  is in ALARM (a flap: the evaluator raises it again, a second trigger), and `breaker open` /
  `breaker close` racing the alarm.

Then the downstream heals, the faults stop, the run drains, and ``check`` asserts the invariants:

1. nothing lost: every order sent was processed or is still queued (in the queue or its DLQ);
2. nothing dead-lettered because of the breaker: a dead-lettered order failed in the consumer
   ``maxReceiveCount`` times by itself;
3. at most one recovery acting at any moment (an execution acts from its Open Circuit step that
   proceeded until it ends or hands over);
4. the mapping is never left disabled, with no recovery running, without a "Circuit Stuck Open"
   event;
5. at the end: the circuit record closed, the mapping enabled with its original configuration,
   the alarm OK, no recovery running;
6. duplicates (an order processed twice, allowed after a crash between send and delete) are
   counted and reported.

Output: ``<out>/chaos-report.json`` and ``chaos-report.md`` (a table of schedules x invariants
with the faults each injected, and the totals); a failing schedule prints the command that
replays it. Exit status 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from localcloud import patches, stalls  # noqa: E402
from localcloud.cloud import LocalCloud  # noqa: E402
from localcloud.faults import FaultPlan, Rule  # noqa: E402
from localcloud.scenario import ROOT, Scenario, breaker_cli, build_cli, deploy, history, lambda_binaries  # noqa: E402

log = logging.getLogger("chaos")

CONTEXT = {"chaos": "true"}
ORDERS_PER_SECOND = 3
SETTLE_TIMEOUT_S = 240  # after the faults stop: a recovery, its re-jitter and its ramp fit well inside
STUCK_GRACE_SAMPLES = 3  # samples (1 s apart) a disabled mapping may show with no recovery running
SDK_ATTEMPT_TIMEOUT_S = 10  # lambdas/core/src/timeouts.rs SDK_ATTEMPT_TIMEOUT_SECONDS (a timeout fault outlasts it)
SERVICES = ("sqs", "lambda", "monitoring", "states", "events", "dynamodb")
INVARIANTS = ("1 nothing lost", "2 no breaker DLQ", "3 one acting", "4 never silently stuck", "5 closed at end")

# Where a breaker process is killed: the handler, the call it dies at and the call that must have
# happened before it in the same invocation.
KILL_POINTS = {
    # the mapping disabled, the handler dead before it recorded that
    "kill-open": dict(handlers=("open",), service="lambda", operation="UpdateEventSourceMapping", at="response"),
    "kill-probe-received": dict(handlers=("probe",), service="lambda", operation="Invoke", after="ReceiveMessage"),
    "kill-probe-invoked": dict(handlers=("probe",), service="sqs", after="Invoke"),
    # the re-jitter plan read the backlog, the handler dead before it answered
    "kill-rejitter-plan": dict(handlers=("rejitter-plan",), service="sqs", operation="GetQueueAttributes", at="response"),
    "kill-rejitter-sent": dict(handlers=("rejitter",), service="sqs", operation="DeleteMessageBatch", after="SendMessageBatch"),
    # a later batch's send after an earlier batch's delete: a copy not yet sent must still have its original
    "kill-rejitter-deleted": dict(handlers=("rejitter",), service="sqs", operation="SendMessageBatch", after="DeleteMessageBatch"),
    "kill-ramp": dict(handlers=("ramp",), service="lambda", operation="UpdateEventSourceMapping", at="response"),
    # the original configuration restored, the handler dead before the alarm reset and the record
    "kill-close": dict(handlers=("close",), service="lambda", operation="UpdateEventSourceMapping", at="response"),
}
FAULT_KINDS = (
    "flag-fail", "flag-slow", "flag-percent", "flag-flap",
    "aws-throttle", "aws-5xx", "aws-timeout",
    *KILL_POINTS,
    "eb-duplicate", "eb-delay", "alarm-flap", "op-open", "op-close",
)

# The CI subset: fixed seeds whose forced kinds cover every fault kind (and seeds of violations
# the campaign found, kept as regression cases).
SUBSET = [
    # regression: its re-jitter worker killed between send and delete failed as Runtime.ExitError,
    # was not retried and left the circuit stuck open (fixed: Lambda.Unknown is retried)
    (101, ("flag-fail", "aws-throttle", "kill-open", "kill-rejitter-sent", "kill-rejitter-deleted", "eb-duplicate", "op-open")),
    (102, ("flag-slow", "aws-5xx", "kill-probe-received", "kill-rejitter-plan", "kill-ramp", "alarm-flap")),
    (103, ("flag-percent", "aws-timeout", "kill-probe-invoked", "kill-close", "kill-rejitter-deleted", "eb-delay", "op-close")),
    # regression: a slow DescribeExecution (a 'states' timeout) let the owner close while a new
    # trip judged it; the trip recorded the ramp level 4 as the original (fixed in open.rs). It
    # depends on timing, so it fails only sometimes; open.rs's unit test pins it down.
    (9, ()),
    (104, ("flag-flap", "aws-throttle", "aws-5xx", "kill-rejitter-sent", "kill-rejitter-deleted", "alarm-flap", "op-open")),
]


# -- schedules ------------------------------------------------------------------------------
@dataclass
class Schedule:
    seed: int
    actions: list  # [at s, action, value], sorted by time
    rules: list  # AWS fault rules (Rule keyword arguments, times relative to the schedule start)
    eb_duplicate: float  # probability that a delivery to the state machine is duplicated
    eb_delay: float  # probability that it is delivered late
    eb_delay_s: tuple
    heal_at: float
    end_at: float  # orders stop, the flag is ok from here on
    faults_until: float
    kinds: list = field(default_factory=list)  # the fault kinds this schedule injects


def generate(seed: int, force: tuple = ()) -> Schedule:
    """The schedule of ``seed``: random trouble, faults and races at random times; ``force``d
    kinds are always included."""
    rng = random.Random(seed)
    kinds: set[str] = set(force)
    fail_at = rng.uniform(3, 8)
    heal_at = fail_at + rng.uniform(18, 30)
    mode_kind = next((k for k in force if k in ("flag-fail", "flag-slow", "flag-percent")), None) or rng.choice(
        ["flag-fail", "flag-fail", "flag-slow", "flag-percent"])
    kinds.add(mode_kind)
    mode = {"flag-fail": "fail", "flag-slow": "slow", "flag-percent": "percent:90"}[mode_kind]
    actions = [[0.0, "flag", "ok"], [fail_at, "flag", mode], [heal_at, "flag", "ok"]]
    end_at = heal_at + 5
    if "flag-flap" in kinds or rng.random() < 0.3:
        kinds.add("flag-flap")
        t = heal_at + rng.uniform(3, 6)
        for i in range(rng.randint(2, 3)):
            actions.append([t, "flag", "fail"])
            t += rng.uniform(2, 4)
            actions.append([t, "flag", "ok"])
            t += rng.uniform(2, 4)
        end_at = max(end_at, t)
    faults_until = end_at + 20
    rules = []  # AWS faults are active until faults_until; kills stay armed until they fire
    aws = sorted(k for k in kinds if k.startswith("aws-"))  # sorted: a set's order varies with PYTHONHASHSEED
    for _ in range(rng.randint(1, 3)):
        aws.append(rng.choice(["aws-throttle", "aws-5xx", "aws-timeout"]))
    for k in aws:
        kinds.add(k)
        kind = k[len("aws-"):]
        rules.append(dict(kind=kind, service=rng.choice(SERVICES), times=1 if kind == "timeout" else rng.randint(1, 3),
                          delay_s=SDK_ATTEMPT_TIMEOUT_S + 2, active_from=fail_at, active_until=faults_until, label=k))
    kills = sorted(k for k in kinds if k in KILL_POINTS)
    if not force:
        kills += rng.sample(sorted(KILL_POINTS), rng.choice([0, 1, 1, 2]))
    for k in dict.fromkeys(kills):
        kinds.add(k)
        rules.append(dict(kind="kill", **KILL_POINTS[k], active_from=fail_at, label=k))
    # a forced kind fires on every delivery, so the subset surely injects it
    eb_duplicate = 1.0 if "eb-duplicate" in kinds else 0.5 if (not force and rng.random() < 0.4) else 0.0
    eb_delay = 1.0 if "eb-delay" in kinds else 0.4 if (not force and rng.random() < 0.3) else 0.0
    if eb_duplicate:
        kinds.add("eb-duplicate")
    if eb_delay:
        kinds.add("eb-delay")
    if "alarm-flap" in kinds or (not force and rng.random() < 0.35):
        kinds.add("alarm-flap")
        actions.append([rng.uniform(fail_at + 14, heal_at + 3), "alarm-ok", ""])
    if "op-open" in kinds or (not force and rng.random() < 0.25):
        kinds.add("op-open")
        actions.append([rng.uniform(fail_at, heal_at + 8), "breaker", "open"])
    if "op-close" in kinds or (not force and rng.random() < 0.25):
        kinds.add("op-close")
        actions.append([rng.uniform(fail_at + 14, heal_at + 12), "breaker", "close"])
    end_at = max(end_at, max(a[0] for a in actions) + 2)
    actions.append([end_at, "flag", "ok"])
    actions.sort(key=lambda a: a[0])
    return Schedule(seed=seed, actions=actions, rules=rules, eb_duplicate=eb_duplicate, eb_delay=eb_delay,
                    eb_delay_s=(5, 15), heal_at=heal_at, end_at=end_at, faults_until=max(faults_until, end_at + 10),
                    kinds=sorted(kinds))


# -- running one schedule -------------------------------------------------------------------
class Worker:
    """One local cloud with the example stack deployed, running schedules one after another."""

    def __init__(self, work: str, binaries: dict, synth_dir: Optional[str] = None):
        self.work = work
        self.binaries = binaries
        self.cloud: Optional[LocalCloud] = None
        self.outputs: dict = {}
        self.scn: Optional[Scenario] = None
        self.broken = False  # a schedule left the stack in a state no reset recovered

    def start(self) -> None:
        os.makedirs(self.work, exist_ok=True)
        self.cloud = LocalCloud(binaries=self.binaries, work_dir=self.work).start()
        d = deploy(self.cloud, CONTEXT, self.work, log=lambda m: None)
        self.outputs = d["outputs"]
        self.deploy_timings = d["timings"]

    def stop(self) -> None:
        patches.set_delivery_hook(None)
        if self.cloud:
            self.cloud.stop()
            self.cloud = None

    def fresh_scenario(self, seed: int) -> Scenario:
        assert self.cloud is not None
        if self.scn is not None:
            try:
                self.cloud.host.observers.remove(self.scn.ledger.observe)
            except ValueError:
                pass
        scn = Scenario(self.cloud, self.outputs)
        scn.order_prefix = f"s{seed}"
        self.scn = scn
        return scn

    def run(self, sched: Schedule) -> dict:
        assert self.cloud is not None
        cloud = self.cloud
        scn = self.fresh_scenario(sched.seed)
        consumer = self.outputs["ConsumerFunctionName"]
        t0 = time.time()
        plan = FaultPlan(
            rules=[Rule(**{**r, "active_from": t0 + r["active_from"], "active_until": t0 + r.get("active_until", float("inf"))})
                   for r in sched.rules],
            targets=lambda handler, function_name: function_name != consumer,
        )
        delivered: list[dict] = []
        eb_rng = random.Random(sched.seed ^ 0x5EED)
        eb_lock = threading.Lock()

        def delivery(deliver, rule, event):
            now = time.time()
            with eb_lock:
                active = now < t0 + sched.faults_until
                dup = active and eb_rng.random() < sched.eb_duplicate
                late = active and eb_rng.random() < sched.eb_delay
                delay = eb_rng.uniform(*sched.eb_delay_s)
                again = eb_rng.uniform(0, 3)
            if late:
                delivered.append({"at": now, "kind": "eb-delay", "delay_s": round(delay, 1)})
                threading.Timer(delay, deliver).start()
            else:
                deliver()
            if dup:
                delivered.append({"at": now, "kind": "eb-duplicate", "after_s": round(again, 1)})
                threading.Timer(again, deliver).start()

        cloud.set_fault_plan(plan)
        patches.set_delivery_hook(delivery)
        actions_done: list[dict] = []
        stop_actions = threading.Event()
        flappers: list[threading.Thread] = []

        def play():
            for at, action, value in sched.actions:
                if stop_actions.wait(max(0.0, t0 + at - time.time())):
                    return
                entry = {"at": round(time.time() - t0, 1), "action": action, "value": value}
                try:
                    if action == "flag":
                        scn.set_flag(value)
                    elif action == "alarm-ok":
                        # the next time the alarm is in ALARM: at a random instant it may just have
                        # left it, or not reached it yet on a slow machine
                        entry["skipped"] = "alarm not in ALARM"
                        flapper = threading.Thread(target=self._flap_alarm, args=(scn, entry, t0, t0 + sched.faults_until, stop_actions),
                                                   daemon=True, name="chaos-alarm-flap")
                        flappers.append(flapper)
                        flapper.start()
                    elif action == "breaker":
                        threading.Thread(target=self._operator, args=(value, entry), daemon=True).start()
                except Exception as err:  # an action that fails is recorded, not fatal
                    entry["error"] = str(err)[:300]
                actions_done.append(entry)

        player = threading.Thread(target=play, daemon=True, name="chaos-actions")
        player.start()
        scn.start_sending(ORDERS_PER_SECOND)
        timeline: list[dict] = []
        try:
            while time.time() < t0 + sched.end_at:
                timeline.append(self._sample(scn, t0))
                time.sleep(1)
            scn.stop_sending()
            player.join(timeout=30)
            # the faults stop; the run drains
            settled = False
            deadline = stalls.Deadline(SETTLE_TIMEOUT_S)
            while not deadline.expired():
                if time.time() >= t0 + sched.faults_until:
                    # AWS trouble and EventBridge mischief end here; an armed kill stays armed until
                    # its handler reaches its point (at most once), however late the recovery gets there
                    with plan.lock:
                        plan.rules = [r for r in plan.rules if r.kind == "kill"]
                    patches.set_delivery_hook(None)
                s = self._sample(scn, t0)
                timeline.append(s)
                if time.time() >= t0 + sched.faults_until and self._settled(scn, s):
                    settled = True
                    break
                time.sleep(1)
        finally:
            stop_actions.set()
            for flapper in flappers:
                flapper.join(timeout=5)
            scn.stop_sending()
            cloud.set_fault_plan(None)
            patches.set_delivery_hook(None)
        time.sleep(0.5)
        verdict = check(scn, self.outputs, timeline, t0, settled)
        verdict.update(
            seed=sched.seed, kinds=sched.kinds, seconds=round(time.time() - t0, 1),
            injected=[{k: v for k, v in f.items() if k != "env"} | {"at": round(f["at"] - t0, 1)} for f in plan.injected],
            eb=[d | {"at": round(d["at"] - t0, 1)} for d in delivered], actions=actions_done,
            armed=[r["label"] for r in sched.rules if r["kind"] == "kill"], calls=dict(sorted(plan.calls.items())),
        )
        try:
            self._reset(scn)
        except Exception as err:  # keep the verdict; the worker starts a fresh cloud for the next one
            verdict["reset_failed"] = str(err)[:300]
            self.broken = True
        return verdict

    def _flap_alarm(self, scn: Scenario, entry: dict, t0: float, until: float, stop: threading.Event) -> None:
        """The alarm set back to OK the first time it is in ALARM before ``until`` (``entry``
        keeps ``skipped`` when it never is)."""
        while not stop.is_set() and time.time() < until:
            try:
                if scn.alarm_state() == "ALARM":
                    scn.cw.set_alarm_state(AlarmName=self.outputs["AlarmName"], StateValue="OK",
                                           StateReason="chaos: alarm flap")
                    entry.pop("skipped", None)
                    entry["flapped_at"] = round(time.time() - t0, 1)
                    return
            except Exception as err:  # recorded, and tried again
                entry["error"] = str(err)[:300]
            stop.wait(0.5)

    def _operator(self, command: str, entry: dict) -> None:
        """An operator's command; retried as the CLI asks ("retry in a few seconds"), as a person would."""
        for attempt in range(6):
            try:
                out = breaker_cli(self.cloud, command)
                entry["result"] = {k: out.get(k) for k in ("started", "executionArn", "stopped", "note") if k in out}
                entry.pop("error", None)
                return
            except Exception as err:
                entry["error"] = str(err)[:300]
                entry["attempts"] = attempt + 1
                if "retry in a few seconds" not in str(err):
                    return
                time.sleep(3)

    @staticmethod
    def _sample(scn: Scenario, t0: float) -> dict:
        s = scn.sample()
        s["at"] = time.time()
        s["stuck_events"] = sum(1 for e in scn.breaker_events if e["type"] == "Circuit Stuck Open")
        return s

    def _settled(self, scn: Scenario, s: dict) -> bool:
        if not (s["queue"] == 0 and s["inflight"] == 0 and s["running"] == 0 and s["alarm"] == "OK"):
            return False
        if not scn.is_closed(s):
            return False
        missing = set(scn.sent) - scn.ledger.done()
        return len(missing) <= s["dlq"]

    def _reset(self, scn: Scenario) -> None:
        """Leave the stack as a new schedule expects it: empty queues, circuit closed."""
        for url in (scn.queue_url, scn.dlq_url):
            try:
                scn.sqs.purge_queue(QueueUrl=url)
            except Exception:
                log.exception("purge failed")
        s = scn.sample()
        if not (scn.is_closed(s) and s["running"] == 0):
            try:
                breaker_cli(self.cloud, "close")
                scn.wait_until(lambda x: scn.is_closed(x) and x["running"] == 0, 180)
            except Exception as err:
                raise RuntimeError(f"the stack did not return to closed after `breaker close`: {err}") from err


def _dlq_orders(scn: Scenario) -> dict[str, int]:
    """Order ids in the DLQ (read without deleting), each with how often it is there."""
    out: dict[str, int] = {}
    seen: set[str] = set()
    for _ in range(50):
        resp = scn.sqs.receive_message(QueueUrl=scn.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0)
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            if m["MessageId"] in seen:
                continue
            seen.add(m["MessageId"])
            try:
                order = str(json.loads(m["Body"]).get("orderId"))
            except (ValueError, AttributeError):
                order = m["Body"]
            out[order] = out.get(order, 0) + 1
    return out


def _queued_orders(scn: Scenario) -> set[str]:
    out: set[str] = set()
    for _ in range(100):
        resp = scn.sqs.receive_message(QueueUrl=scn.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0)
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            try:
                out.add(str(json.loads(m["Body"]).get("orderId")))
            except (ValueError, AttributeError):
                out.add(m["Body"])
    return out


def acting_intervals(scn: Scenario, since: float) -> list[dict]:
    """Every execution started since ``since`` that acted: from its Open Circuit step that
    proceeded (or closed manually) to its end, or to its hand-over to a new execution."""
    out = []
    paginator = scn.sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=scn.o["StateMachineArn"]):
        for e in page["executions"]:
            if e["startDate"].timestamp() < since - 1:
                continue
            events = history(scn.sfn, e["executionArn"])
            start = end = None
            for ev in events:
                exited = ev.get("stateExitedEventDetails")
                if exited and exited["name"] == "Open Circuit" and start is None:
                    try:
                        action = json.loads(exited.get("output") or "{}").get("action")
                    except ValueError:
                        action = None
                    if action in ("proceed", "close"):
                        start = ev["timestamp"].timestamp()
                entered = ev.get("stateEnteredEventDetails")
                if entered and entered["name"] == "Continue As New Execution" and start is not None and end is None:
                    end = ev["timestamp"].timestamp()
            if start is None:
                continue
            if end is None:
                stop = e.get("stopDate")
                end = stop.timestamp() if stop else time.time()
            out.append({"execution": e["name"], "status": e["status"], "from": start, "to": end})
    return out


def record(scn: Scenario) -> Optional[dict]:
    item = scn.cloud.client("dynamodb").get_item(
        TableName=scn.o["CircuitTableName"], Key={"circuit": {"S": scn.o["CircuitName"]}}, ConsistentRead=True).get("Item")
    return json.loads(item["record"]["S"]) if item else None


def check(scn: Scenario, outputs: dict, timeline: list[dict], t0: float, settled: bool) -> dict:
    """The invariants over one schedule's history; returns the verdict with every violation."""
    violations: dict[str, list[str]] = {k: [] for k in INVARIANTS}
    sent = set(scn.sent)
    processed = scn.ledger.done()
    dlq = _dlq_orders(scn)
    queued = _queued_orders(scn) if not settled else set()
    lost = sorted(sent - processed - set(dlq) - queued)
    if lost:
        violations["1 nothing lost"].append(f"{len(lost)} orders neither processed nor queued: {lost[:5]}")
    max_receives = int(outputs.get("MaxReceiveCount") or 0) or _max_receive_count(scn)
    for order in sorted(dlq):
        failures = scn.ledger.attempts[order] - scn.ledger.processed[order]
        if failures < max_receives:
            violations["2 no breaker DLQ"].append(
                f"{order} dead-lettered after {failures} consumer failures (maxReceiveCount {max_receives})")
    acting = sorted(acting_intervals(scn, t0), key=lambda a: a["from"])
    for a, b in zip(acting, acting[1:]):
        if b["from"] < a["to"] - 0.001:
            violations["3 one acting"].append(
                f"{a['execution']} ({a['from'] - t0:.1f}-{a['to'] - t0:.1f} s) and {b['execution']} "
                f"({b['from'] - t0:.1f}-{b['to'] - t0:.1f} s) acted at once")
    run = 0
    for s in timeline:
        unowned = s["esm"] in ("Disabled", "Disabling") and s["running"] == 0
        run = run + 1 if unowned else 0
        if run == STUCK_GRACE_SAMPLES and s["stuck_events"] == 0:
            violations["4 never silently stuck"].append(
                f"mapping {s['esm']} with no recovery running and no Circuit Stuck Open event at {s['at'] - t0:.0f} s")
    final = timeline[-1] if timeline else scn.sample()
    rec = record(scn)
    problems = []
    if not settled:
        problems.append(f"not settled within {SETTLE_TIMEOUT_S} s after the faults stopped")
    if not scn.is_closed(final):
        problems.append(f"mapping {final['esm']} at concurrency {final['concurrency']} "
                        f"(original {scn.original_scaling.get('MaximumConcurrency')}), {final['running']} running")
    if final["alarm"] != "OK":
        problems.append(f"alarm {final['alarm']}")
    if rec and (rec.get("phase") != "closed" or rec.get("owner")):
        problems.append(f"circuit record {rec.get('phase')} owned by {rec.get('owner')}")
    if problems:
        violations["5 closed at end"].append("; ".join(problems))
    duplicates = sum(1 for o in processed if scn.ledger.processed[o] > 1)
    return {
        "violations": {k: v for k, v in violations.items() if v},
        "sent": len(sent), "processed": len(processed & sent), "dead_lettered": sum(dlq.values()),
        "duplicates": duplicates, "recoveries": len(acting), "stuck_events": final.get("stuck_events", 0),
        "settled": settled,
    }


def _max_receive_count(scn: Scenario) -> int:
    attrs = scn.sqs.get_queue_attributes(QueueUrl=scn.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    return int(json.loads(attrs.get("RedrivePolicy", "{}")).get("maxReceiveCount", 0))


# -- the campaign ---------------------------------------------------------------------------
def _work(args: tuple) -> list[dict]:
    """A worker process: its own local cloud, its schedules in order."""
    index, schedules, out, binaries = args
    build_cli()
    logging.basicConfig(level=logging.WARNING, filename=os.path.join(out, f"worker-{index}.log"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the interpreter logs every caught task failure with its whole state tree: the history has them
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    results = []
    worker = None
    for sched in schedules:
        try:
            if worker is None:
                worker = Worker(tempfile.mkdtemp(prefix=f"chaos-{index}-", dir=out), binaries)
                worker.start()
            verdict = worker.run(sched)
            if worker.broken:
                worker.stop()
                worker = None
        except Exception as err:
            verdict = {"seed": sched.seed, "kinds": sched.kinds, "error": f"{type(err).__name__}: {err}",
                       "trace": traceback.format_exc()[-2000:], "violations": {"run failed": [str(err)[:300]]}}
            if worker is not None:
                worker.stop()
            worker = None
        verdict["worker"] = index
        results.append(verdict)
        print(f"  schedule {sched.seed}: {_line(verdict)}", flush=True)
    if worker is not None:
        worker.stop()
    return results


def _line(v: dict) -> str:
    if v.get("error"):
        return f"RUN FAILED {v['error']}"
    bad = ", ".join(f"{k}: {len(x)}" for k, x in v["violations"].items()) or "ok"
    return (f"{bad} | sent {v['sent']}, dup {v['duplicates']}, dlq {v['dead_lettered']}, recoveries {v['recoveries']}, "
            f"faults {len(v['injected']) + len(v['eb']) + len(v['actions'])}, {v['seconds']:.0f} s | {' '.join(v['kinds'])}")


def campaign(schedules: list[Schedule], workers: int, out: str, binaries: dict) -> dict:
    started = time.time()
    build_cli()  # before any schedule runs (a worker process checks again: a no-op)
    workers = max(1, min(workers, len(schedules)))
    shares = [schedules[i::workers] for i in range(workers)]
    if workers == 1:
        results = _work((0, shares[0], out, binaries))
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = [v for part in pool.map(_work, [(i, s, out, binaries) for i, s in enumerate(shares)]) for v in part]
    results.sort(key=lambda v: v["seed"])
    return report(results, time.time() - started, out)


def report(results: list[dict], seconds: float, out: str) -> dict:
    def faults_of(v: dict) -> int:
        return len(v.get("injected", [])) + len(v.get("eb", [])) + len(v.get("actions", []))

    fired: dict[str, int] = {}
    for v in results:
        for f in v.get("injected", []):
            key = f["label"] if f["kind"] == "kill" else f"aws-{f['kind']}"
            fired[key] = fired.get(key, 0) + 1
        for d in v.get("eb", []):
            fired[d["kind"]] = fired.get(d["kind"], 0) + 1
        for a in v.get("actions", []):
            key = {"alarm-ok": "alarm-flap", "breaker": f"op-{a['value']}"}.get(a["action"])
            if key and "skipped" not in a:
                fired[key] = fired.get(key, 0) + 1
    totals = {
        "schedules": len(results),
        "violations": sum(len(x) for v in results for x in v.get("violations", {}).values()),
        "failing_schedules": sum(1 for v in results if v.get("violations")),
        "faults": sum(faults_of(v) for v in results),
        "messages": sum(v.get("sent", 0) for v in results),
        "duplicates": sum(v.get("duplicates", 0) for v in results),
        "dead_lettered": sum(v.get("dead_lettered", 0) for v in results),
        "recoveries": sum(v.get("recoveries", 0) for v in results),
        "seconds": round(seconds),
        "fired": dict(sorted(fired.items())),
    }
    doc = {"totals": totals, "schedules": results}
    with open(os.path.join(out, "chaos-report.json"), "w") as f:
        json.dump(doc, f, indent=1, default=str)
    lines = ["# Fault campaign", "",
             f"{totals['schedules']} schedules, {totals['faults']} faults, {totals['messages']} messages, "
             f"{totals['violations']} violations, {totals['duplicates']} duplicates, {totals['dead_lettered']} dead-lettered, "
             f"{totals['recoveries']} recoveries, {totals['seconds']} s", "",
             "Faults that fired: " + ", ".join(f"{k} {n}" for k, n in totals["fired"].items()), "",
             "| seed | " + " | ".join(INVARIANTS) + " | dup | faults injected |",
             "|---|" + "---|" * len(INVARIANTS) + "---|---|"]
    for v in results:
        cells = ["run failed" if v.get("error") else ("**%d**" % len(v["violations"][k]) if k in v.get("violations", {}) else "ok")
                 for k in INVARIANTS]
        kinds = ", ".join(v.get("kinds", []))
        lines.append(f"| {v['seed']} | " + " | ".join(cells) + f" | {v.get('duplicates', '-')} | {kinds} |")
    failing = [v for v in results if v.get("violations")]
    if failing:
        lines += ["", "## Violations", ""]
        for v in failing:
            lines.append(f"- seed {v['seed']} (replay: `npm run chaos -- --seed {v['seed']} --schedules 1`)")
            for k, xs in v["violations"].items():
                for x in xs:
                    lines.append(f"  - {k}: {x}")
    with open(os.path.join(out, "chaos-report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return doc


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedules", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1, help="the first schedule's seed; schedule k has seed + k")
    ap.add_argument("--subset", action="store_true", help="the fixed CI subset (covers every fault kind)")
    ap.add_argument("--workers", type=int, default=2, help="local clouds running schedules side by side")
    ap.add_argument("--out", default=os.path.join(ROOT, ".local-cloud", "chaos"))
    args = ap.parse_args(argv)
    # a terminated campaign takes its worker processes (and their local clouds) with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    forced = dict(SUBSET)
    if args.subset:
        schedules = [generate(seed, force) for seed, force in SUBSET]
    else:  # a subset seed replays as the subset runs it
        schedules = [generate(args.seed + k, forced.get(args.seed + k, ())) for k in range(args.schedules)]
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    print(f"fault campaign: {len(schedules)} schedules on {args.workers} local cloud(s); building the operator CLI ...", flush=True)
    binaries = lambda_binaries()
    doc = campaign(schedules, args.workers, args.out, binaries)
    t = doc["totals"]
    print(f"\n{t['schedules']} schedules, {t['faults']} faults, {t['messages']} messages, {t['violations']} violations "
          f"in {t['failing_schedules']} schedules, {t['duplicates']} duplicates, {t['seconds']} s")
    print(f"report: {os.path.join(args.out, 'chaos-report.md')}")
    for v in doc["schedules"]:
        if v.get("violations"):
            print(f"  seed {v['seed']} violated {', '.join(v['violations'])}: replay with "
                  f"npm run chaos -- --seed {v['seed']} --schedules 1")
    return 1 if t["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
