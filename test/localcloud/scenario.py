"""The breaker scenario on the local cloud, shared by the demo and the end-to-end test.

It checks the shipped Lambda binaries can run (`lambda_binaries`: the arm64 assets, under qemu-user
on x86_64), deploys the example stack with the real CDK CLI, and drives an
outage: orders flow, the failure flag turns on, the breaker trips, the flag turns off, the
circuit closes. A ledger watches every consumer invocation on the runtime host (what each
order's fate was, and in which order orders were processed), a sampler records the system's state
every second for the timeline/chart. On a FIFO orders queue (``-c queueType=fifo``) orders go to
``FIFO_GROUPS`` message groups, each order numbered within its group (``group``, ``seq`` in the
body), so the ledger can tell whether each group was processed in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import stalls
from .cloud import ACCOUNT, LocalCloud, emulator

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = "SqsCircuitBreakerExample"
FIFO_GROUPS = 4  # message groups of the orders on a FIFO queue
_cli: Optional[list[str]] = None  # the command that runs the operator CLI, once chosen (build_cli)
# The CLI as npm users run it (`npx sqs-circuit-breaker`): the package's launcher, which runs the
# prebuilt binary for this machine from cdk/assets/cli/<arch>/ (`npm run build:cli`).
CLI_LAUNCHER = os.path.join(ROOT, "cdk", "bin", "sqs-circuit-breaker.js")
CLI_ASSETS = {"x86_64": os.path.join(ROOT, "cdk", "assets", "cli", "x86_64", "breaker"),
              "aarch64": os.path.join(ROOT, "cdk", "assets", "cli", "arm64", "breaker")}


def build_cli() -> list[str]:
    """The command that runs the operator CLI (`breaker`), chosen once per process. The shipped
    one when `npm run build:cli` built it (as `npm test` does) and it is newer than the Rust
    sources: the package's launcher, so the tests run what `npx sqs-circuit-breaker` runs. Else a
    host build, selecting what `cargo nextest run --workspace` (`npm run test:rust`) builds (all
    test targets, so dependencies get the same features: a narrower `-p breaker-cli` build unifies
    fewer features and recompiles the AWS SDK crates, minutes on 2 cores); after the Rust tests it
    compiles nothing. The Lambda functions need no host build: the local cloud runs the shipped
    arm64 binaries (`lambda_binaries`)."""
    global _cli
    if _cli is None:
        shipped = CLI_ASSETS.get(os.uname().machine)
        if shipped and os.path.exists(shipped) and os.path.getmtime(shipped) >= newest_rust_source()[1]:
            _cli = ["node", CLI_LAUNCHER]
        else:
            run(["cargo", "build", "--workspace", "--tests", "--locked", "--bin", "breaker"], cwd=ROOT, timeout=1800)
            target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
            _cli = [os.path.join(target, "debug", "breaker")]
    return _cli


def breaker_cli(cloud: LocalCloud, *args: str) -> dict:
    """Run the operator CLI (see `build_cli`) against the local cloud; returns its JSON output."""
    env = dict(os.environ, **cloud.client_env())
    out = subprocess.run([*build_cli(), "--stack-name", STACK, "--json", *args], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, f"breaker {' '.join(args)} failed: {out.stderr}"
    return json.loads(out.stdout)


def history(sfn, execution_arn: str) -> list[dict]:
    """An execution's whole history, oldest first: every page of GetExecutionHistory (at most
    1000 events a call, as Step Functions pages it)."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn,
                                                                 PaginationConfig={"PageSize": 1000})
    return [e for page in pages for e in page["events"]]


def entered_states(sfn, execution_arn: str) -> list[str]:
    """The names of the states an execution entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in history(sfn, execution_arn) if "stateEnteredEventDetails" in e]


# the state in which an execution that found another recovery running ends, having done nothing
LEFT_TO_RUNNING = "Leave Recovery To Running Execution"
# the probe whose healthy verdict leads to the re-jitter plan (cdk/src/workflow.ts)
PROBE, PLAN_REJITTER = "Probe Consumer", "Plan Re-jitter"


ASSETS = {
    "bootstrap": os.path.join(ROOT, "cdk", "assets", "bootstrap", "bootstrap"),
    "example-consumer": os.path.join(ROOT, "example-stack", "assets", "example-consumer", "bootstrap"),
    # the fast-trip extension's layer asset (arm64, as the example consumer)
    "sqs-circuit-breaker-telemetry": os.path.join(ROOT, "cdk", "assets", "extension", "arm64", "extensions",
                                                  "sqs-circuit-breaker-telemetry"),
}
EXTENSION_X86_64 = os.path.join(ROOT, "cdk", "assets", "extension", "x86_64", "extensions", "sqs-circuit-breaker-telemetry")
# debugging: a host build that runs in place of the asset (both extension assets for the extension)
OVERRIDES = {"bootstrap": "LOCALCLOUD_BOOTSTRAP", "example-consumer": "LOCALCLOUD_CONSUMER",
             "sqs-circuit-breaker-telemetry": "LOCALCLOUD_EXTENSION"}


def run(cmd: list[str], cwd: str, env: Optional[dict] = None, timeout: float = 900) -> float:
    """Runs `cmd`; its output is kept for the error message."""
    started = time.time()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return time.time() - started


def lambda_binaries() -> dict[str, str]:
    """Check that the local cloud can run the Lambda binaries the construct ships: the arm64
    assets from `npm run build:lambdas` (.ci/setup) and, on an x86_64 host, qemu-user to run them (an error
    naming `bash .ci/setup` otherwise). Returns the `LocalCloud(binaries=...)` mapping: empty, so
    the deployed assets themselves run, unless `LOCALCLOUD_BOOTSTRAP` / `_CONSUMER` / `_EXTENSION`
    name host builds to run in their place (debugging)."""
    missing = [p for p in [*ASSETS.values(), EXTENSION_X86_64] if not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"Lambda assets missing ({', '.join(missing)}): run `bash .ci/setup` (or `npm run build:lambdas`) first")
    if os.uname().machine != "aarch64":
        emulator("aarch64")
    stale = stale_assets()
    if stale:
        warnings.warn(stale, stacklevel=2)
    out = {}
    for name, var in OVERRIDES.items():
        if os.environ.get(var):
            out[ASSETS[name]] = os.environ[var]
            if name == "sqs-circuit-breaker-telemetry":
                out[EXTENSION_X86_64] = os.environ[var]
    return out


def newest_rust_source() -> tuple[str, float]:
    """The most recently modified Rust source (`lambdas/`, the Cargo manifests and lock) and its mtime."""
    sources = [os.path.join(ROOT, name) for name in ("Cargo.toml", "Cargo.lock")]
    for folder, _, files in os.walk(os.path.join(ROOT, "lambdas")):
        sources += [os.path.join(folder, f) for f in files if f.endswith(".rs") or f == "Cargo.toml"]
    newest = max(sources, key=os.path.getmtime)
    return newest, os.path.getmtime(newest)


def stale_assets() -> Optional[str]:
    """A warning when a Lambda asset is older than the Rust sources (`lambdas/`, the Cargo
    manifests and lock): the local cloud runs the assets, so a change not yet rebuilt with `npm
    run build:lambdas` is not what runs. None when they are newer (a fresh clone after `.ci/setup`)."""
    newest, newest_mtime = newest_rust_source()
    older = [os.path.relpath(p, ROOT) for p in [*ASSETS.values(), EXTENSION_X86_64]
             if os.path.getmtime(p) < newest_mtime]
    if not older:
        return None
    return (f"{', '.join(older)} older than {os.path.relpath(newest, ROOT)}: the local cloud runs the assets, "
            "so run `npm run build:lambdas` to run the current Rust code")


def cdk_env(cloud: LocalCloud) -> dict[str, str]:
    env = dict(os.environ, **cloud.client_env())
    env.update(CDK_DISABLE_CLI_TELEMETRY="true", TS_NODE_TRANSPILE_ONLY="true",
               CDK_DEFAULT_ACCOUNT=ACCOUNT, CDK_DEFAULT_REGION=cloud.region)
    env["PATH"] = os.path.join(ROOT, "node_modules", ".bin") + os.pathsep + env["PATH"]
    return env


def deploy(cloud: LocalCloud, context: dict[str, str], work_dir: str, log: Callable[[str], None] = print) -> dict:
    """`cdk bootstrap` + `cdk synth` + `cdk deploy` of the example stack; returns its outputs
    and the time each step took."""
    cdk = os.path.join(ROOT, "node_modules", ".bin", "cdk")
    env = cdk_env(cloud)
    out_dir = os.path.join(work_dir, "cdk.out")
    ctx = [arg for k, v in context.items() for arg in ("-c", f"{k}={v}")]
    timings = {}
    log("cdk bootstrap ...")
    timings["bootstrap"] = run([cdk, "bootstrap", "--no-notices", f"aws://{ACCOUNT}/{cloud.region}"], cwd=work_dir, env=env)
    log("cdk synth ...")
    synth = [cdk, "synth", "--no-notices", "-q", "-o", out_dir]
    timings["synth"] = run([*synth, *ctx], cwd=os.path.join(ROOT, "example-stack"), env=env)
    log("cdk deploy ...")
    timings["deploy"] = run([cdk, "deploy", "--no-notices", "--require-approval", "never", "--app", out_dir, STACK],
                            cwd=work_dir, env=env)
    stack = cloud.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise RuntimeError(f"{STACK} is {stack['StackStatus']} after cdk deploy; see the local cloud's log")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return {"outputs": outputs, "timings": timings}


@dataclass
class Ledger:
    """What happened to every order, seen from the consumer's invocations."""

    consumer: str
    processed: Counter = field(default_factory=Counter)  # orderId -> successful handlings
    attempts: Counter = field(default_factory=Counter)
    invocations: list = field(default_factory=list)  # (epoch s, failing: an error or failed items)
    processing_order: list = field(default_factory=list)  # (invocation start, orderId) of every success
    groups: dict = field(default_factory=dict)  # orderId -> (group, seq), FIFO orders only
    first_error_at: Optional[float] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, function_name: str, payload: bytes, result, started_at: float) -> None:
        if function_name != self.consumer:
            return
        try:
            records = json.loads(payload).get("Records", [])
        except (ValueError, AttributeError):
            records = []
        failed: set[str] = set()
        if not result.errored:
            try:
                failed = {f["itemIdentifier"] for f in (json.loads(result.payload) or {}).get("batchItemFailures") or []}
            except (ValueError, TypeError, KeyError):
                failed = {r["messageId"] for r in records}
        # a failing invocation: an error, or items reported failed (ReportBatchItemFailures)
        failing = result.errored or bool(failed)
        with self.lock:
            self.invocations.append((started_at, failing))
            if failing and self.first_error_at is None:
                self.first_error_at = started_at
            for r in records:
                order = _order_id(r.get("body", ""))
                self.attempts[order] += 1
                if not result.errored and r["messageId"] not in failed:
                    self.processed[order] += 1
                    self.processing_order.append((started_at, order))
                    group = _group_seq(r.get("body", ""))
                    if group:
                        self.groups[order] = group

    def done(self) -> set[str]:
        """Orders processed successfully at least once."""
        with self.lock:
            return {o for o, c in self.processed.items() if c}

    def group_order(self) -> dict[str, list[int]]:
        """Per message group, the sequence numbers of its orders in the order each was first
        processed successfully: increasing when the group's order survived. Ordered by the start
        of the invocation (observers run after it ends, and the next message of a group may be
        handed out as soon as the poller deleted the previous one, before its observer ran)."""
        seen: set[str] = set()
        out: dict[str, list[int]] = {}
        with self.lock:
            for _, order in sorted(self.processing_order, key=lambda p: p[0]):
                if order in seen or order not in self.groups:
                    continue
                seen.add(order)
                group, seq = self.groups[order]
                out.setdefault(group, []).append(seq)
        return out

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.invocations), sum(1 for _, e in self.invocations if e)

    def first_processed(self) -> dict[str, float]:
        """orderId -> start of the first invocation that processed it successfully."""
        out: dict[str, float] = {}
        with self.lock:
            for at, order in self.processing_order:
                if order not in out or at < out[order]:
                    out[order] = at
        return out


def _order_id(body: str) -> str:
    try:
        return str(json.loads(body).get("orderId"))
    except (ValueError, AttributeError):
        return body


def _group_seq(body: str) -> Optional[tuple[str, int]]:
    try:
        doc = json.loads(body)
        return (str(doc["group"]), int(doc["seq"])) if "group" in doc else None
    except (ValueError, AttributeError, KeyError, TypeError):
        return None


class Scenario:
    """Drives the deployed example stack."""

    def __init__(self, cloud: LocalCloud, outputs: dict):
        self.cloud = cloud
        self.o = outputs
        self.sqs, self.lam = cloud.client("sqs"), cloud.client("lambda")
        self.cw, self.sfn, self.ssm = cloud.client("cloudwatch"), cloud.client("stepfunctions"), cloud.client("ssm")
        self.queue_url = self._local_url(outputs["QueueUrl"])
        self.dlq_url = self._local_url(outputs["DlqUrl"])
        self.ledger = Ledger(outputs["ConsumerFunctionName"])
        cloud.host.observers.append(self.ledger.observe)
        self.sent: list[str] = []
        self.sent_at: dict[str, float] = {}  # orderId -> when its SendMessageBatch call began
        self.outages: list["Outage"] = []  # as `outage` ran them, for the summary
        self.order_prefix = "o"  # order ids are <prefix>-<number>
        self.fifo = self.queue_url.endswith(".fifo")
        self._next_seq: Counter = Counter()  # FIFO: last seq per group
        self.samples: list[dict] = []
        self.marks: list[tuple[float, str]] = []  # (time, label) for the timeline and chart
        self.breaker_events: list[dict] = []
        self.started = time.time()
        self._stop = threading.Event()
        self._sender: Optional[threading.Thread] = None
        self._events_queue = self._capture_breaker_events()
        self.original_scaling = self.esm().get("ScalingConfig") or {}
        self.original_pollers = self.esm().get("ProvisionedPollerConfig")  # provisioned mode only
        alarm = self.cw.describe_alarms(AlarmNames=[outputs["AlarmName"]])["MetricAlarms"][0]
        self.alarm_period = int(alarm.get("Period") or next(
            q["MetricStat"]["Period"] for q in alarm["Metrics"] if "MetricStat" in q))

    def _local_url(self, url: str) -> str:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        return self.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def _capture_breaker_events(self) -> str:
        events = self.cloud.client("events")
        url = self.sqs.create_queue(QueueName=f"breaker-events-{uuid.uuid4().hex[:6]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="local-breaker-events", EventPattern=json.dumps({"source": ["sqs-circuit-breaker"]}))
        events.put_targets(Rule="local-breaker-events", Targets=[{"Id": "q", "Arn": arn}])
        return url

    # -- actions ---------------------------------------------------------------------------
    def mark(self, label: str) -> float:
        now = time.time()
        self.marks.append((now, label))
        return now

    def set_flag(self, mode: str) -> float:
        self.ssm.put_parameter(Name=self.o["FlagParameterName"], Value=mode, Type="String", Overwrite=True)
        return self.mark(f"flag {mode}")

    def send(self, n: int) -> None:
        for i in range(0, n, 10):
            entries = []
            for _ in range(min(10, n - i)):
                number = len(self.sent) + len(entries) + 1
                order = f"{self.order_prefix}-{number:05d}"
                body = {"orderId": order, "amountCents": 1000 + len(self.sent), "createdAtMs": int(time.time() * 1000)}
                entry = {"Id": str(len(entries))}
                if self.fifo:
                    group = f"customer-{number % FIFO_GROUPS}"
                    self._next_seq[group] += 1
                    body.update(group=group, seq=self._next_seq[group])
                    entry.update(MessageGroupId=group, MessageDeduplicationId=order)
                entry["MessageBody"] = json.dumps(body)
                entries.append(entry)
            sending_at = time.time()
            resp = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            ok = {e["Id"] for e in resp.get("Successful", [])}
            orders = [json.loads(e["MessageBody"])["orderId"] for e in entries if e["Id"] in ok]
            self.sent_at.update((order, sending_at) for order in orders)
            self.sent.extend(orders)

    def start_sending(self, per_second: float) -> None:
        def loop():
            while not self._stop.wait(1.0):
                self.send(max(1, int(per_second)))

        self._sender = threading.Thread(target=loop, daemon=True, name="orders")
        self._sender.start()

    def stop_sending(self) -> None:
        self._stop.set()
        if self._sender:
            self._sender.join()

    # -- observations ----------------------------------------------------------------------
    def esm(self) -> dict:
        return self.lam.get_event_source_mapping(UUID=self.o["EventSourceMappingUuid"])

    def alarm_state(self) -> str:
        return self.cw.describe_alarms(AlarmNames=[self.o["AlarmName"]])["MetricAlarms"][0]["StateValue"]

    def depth(self, url: str) -> dict:
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {k: int(a.get(f"ApproximateNumberOf{k}", 0)) for k in ("Messages", "MessagesNotVisible", "MessagesDelayed")}

    def executions(self, status: Optional[str] = None) -> list[dict]:
        kw = {"statusFilter": status} if status else {}
        return self.sfn.list_executions(stateMachineArn=self.o["StateMachineArn"], **kw)["executions"]

    def recovery_steps(self) -> list[tuple[float, float, str]]:
        """Every state the recoveries of this run entered, (start, end, name) in seconds since the
        run started, from their execution histories: each lasts until the next state is entered or
        the execution ends (a running execution's last state until now). Executions that only left
        the recovery to a running one are left out (they changed nothing)."""
        steps = []
        for ex in self.executions():
            if ex["startDate"].timestamp() < self.started:
                continue
            events = history(self.sfn, ex["executionArn"])
            entered = [(e["timestamp"].timestamp(), e["stateEnteredEventDetails"]["name"])
                       for e in events if "stateEnteredEventDetails" in e]
            if any(name == LEFT_TO_RUNNING for _, name in entered):
                continue
            end = time.time() if ex["status"] == "RUNNING" else events[-1]["timestamp"].timestamp()
            for (at, name), (until, _) in zip(entered, [*entered[1:], (end, "")]):
                steps.append((round(at - self.started, 1), round(until - self.started, 1), name))
        return sorted(steps)

    def drained_at(self, before: float) -> Optional[float]:
        """When the last order sent before ``before`` was first processed (the start of that
        invocation), from the ledger: new orders may keep arriving, so the queue's depth cannot
        tell. None while one of them is unprocessed (the local cloud's demo and tests dead-letter
        and expire nothing, so unprocessed means still queued)."""
        done = self.ledger.first_processed()
        earlier = [order for order, at in self.sent_at.items() if at < before]
        if any(order not in done for order in earlier):
            return None
        return max((done[order] for order in earlier), default=before)

    def healthy_probe_at(self, o: "Outage") -> Optional[float]:
        """When the probe that led to re-jitter in ``o``'s recovery began: the last "Probe
        Consumer" state entered before the first "Plan Re-jitter" between the trip and the close
        (None for a recovery that did not probe, e.g. `breaker close`)."""
        if o.tripped_at is None or o.closed_at is None:
            return None
        steps = [(self.started + at, name) for at, _, name in self.recovery_steps()
                 if o.tripped_at - 5 <= self.started + at <= o.closed_at]
        plan = next((at for at, name in steps if name == PLAN_REJITTER), None)
        probes = [at for at, name in steps if name == PROBE and plan is not None and at <= plan]
        return probes[-1] if probes else None

    def rejitter_plans(self, o: "Outage") -> list[dict]:
        """The outputs of the "Plan Re-jitter" tasks of ``o``'s recovery (between the trip and the
        close), oldest first: each has the ``backlog`` it counted and the ``windowMaxSeconds`` it
        sized to that backlog (lambdas/CONTRACT.md)."""
        if o.tripped_at is None or o.closed_at is None:
            return []
        plans = []
        for ex in self.executions():
            for e in history(self.sfn, ex["executionArn"]):
                exited = e.get("stateExitedEventDetails")
                if exited is None or exited["name"] != PLAN_REJITTER:
                    continue
                if o.tripped_at - 5 <= e["timestamp"].timestamp() <= o.closed_at:
                    plans.append((e["timestamp"].timestamp(), json.loads(exited.get("output") or "{}")))
        return [plan for _, plan in sorted(plans, key=lambda p: p[0])]

    def measure_drain(self, o: "Outage") -> None:
        """Fill in ``o.drained_at`` (healing → no order sent before healing left unprocessed) and
        ``o.probed_at`` (the healthy probe), once the orders are processed."""
        if o.healed_at is None:
            return
        drained = self.drained_at(o.healed_at)
        o.drained_at = None if drained is None else max(drained, o.healed_at)
        o.probed_at = self.healthy_probe_at(o)

    def current_step(self, execution_arn: str) -> str:
        try:
            events = self.sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=20)["events"]
        except Exception:
            return "?"
        for e in events:  # newest first
            for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
                if key in e:
                    return e[key]["name"]
        return "?"

    def poll_events(self) -> None:
        resp = self.sqs.receive_message(QueueUrl=self._events_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for m in resp.get("Messages", []):
            try:
                ev = json.loads(m["Body"])
                self.breaker_events.append({"at": time.time(), "type": ev.get("detail-type"), "detail": ev.get("detail")})
            except ValueError:
                pass
            self.sqs.delete_message(QueueUrl=self._events_queue, ReceiptHandle=m["ReceiptHandle"])

    def sample(self) -> dict:
        self.poll_events()
        esm = self.esm()
        running = self.executions("RUNNING")
        q, dlq = self.depth(self.queue_url), self.depth(self.dlq_url)
        inv, err = self.ledger.counts()
        s = {
            "t": round(time.time() - self.started, 1),
            "esm": esm.get("State"),
            "concurrency": (esm.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            "pollers": (esm.get("ProvisionedPollerConfig") or {}).get("MaximumPollers"),
            "alarm": self.alarm_state(),
            "queue": q["Messages"] + q["MessagesDelayed"],
            "inflight": q["MessagesNotVisible"],
            "dlq": dlq["Messages"] + dlq["MessagesNotVisible"],
            "invocations": inv,
            "errors": err,
            "processed": len(self.ledger.done()),
            "running": len(running),
            "step": self.current_step(running[0]["executionArn"]) if running else "-",
        }
        self.samples.append(s)
        return s

    def wait_until(self, cond: Callable[[dict], bool], timeout: float, on_sample: Callable[[dict], None] = lambda s: None) -> dict:
        """Sample every second until ``cond`` holds; ``timeout`` counts running time (a stopped
        machine's time is left out, stalls.py)."""
        deadline = stalls.Deadline(timeout)
        while True:
            s = self.sample()
            on_sample(s)
            if cond(s):
                return s
            if deadline.expired():
                raise TimeoutError(f"condition not met {deadline.within()}; last sample {s}")
            time.sleep(1)

    def is_closed(self, s: dict) -> bool:
        want = self.original_scaling.get("MaximumConcurrency")
        pollers = (self.original_pollers or {}).get("MaximumPollers")
        return (s["esm"] == "Enabled" and s["running"] == 0 and s["concurrency"] == want
                and s["pollers"] == pollers)

    def inject_alarm_event(self) -> None:
        """A second, duplicate ALARM state-change event, as a flapping alarm would produce."""
        alarm = self.cw.describe_alarms(AlarmNames=[self.o["AlarmName"]])["MetricAlarms"][0]
        self.cloud.alarms.publish(alarm, "OK", "ALARM", "duplicate event injected by the scenario")
        self.mark("duplicate alarm event")

    def alarms_seen(self) -> list[dict]:
        """Alarm state-change events the evaluator published (with their time ``at``)."""
        return [e for e in self.cloud.alarms.events if e["alarmName"] == self.o["AlarmName"]]

    def summary(self) -> dict:
        """The run's counts, then per outage (numbered when there were several) healed → drained
        and probe → drained in seconds (None: not drained, or no probe)."""
        processed = self.ledger.done()
        sent = set(self.sent)
        dlq = self.depth(self.dlq_url)
        q = self.depth(self.queue_url)
        drains = {}
        for i, o in enumerate(self.outages):
            self.measure_drain(o)
            suffix = "" if len(self.outages) == 1 else f" (outage {i + 1})"
            for key, value in (("healed -> drained", o.healed_to_drained), ("probe -> drained", o.probe_to_drained)):
                drains[key + suffix] = None if value is None else round(value, 1)
        return {
            "sent": len(sent),
            "processed": len(processed & sent),
            "lost": len(sent - processed) - (q["Messages"] + q["MessagesNotVisible"] + q["MessagesDelayed"]),
            "still queued": q["Messages"] + q["MessagesNotVisible"] + q["MessagesDelayed"],
            "dead-lettered": dlq["Messages"] + dlq["MessagesNotVisible"],
            "duplicates": sum(1 for o in processed if self.ledger.processed[o] > 1),  # at-least-once
            "consumer invocations": self.ledger.counts()[0],
            "consumer errors": self.ledger.counts()[1],
            **drains,
        }


@dataclass
class Outage:
    failing_at: float
    first_error_at: Optional[float] = None
    tripped_at: Optional[float] = None
    healed_at: Optional[float] = None
    closed_at: Optional[float] = None
    probed_at: Optional[float] = None  # the healthy probe that led to re-jitter (Scenario.measure_drain)
    drained_at: Optional[float] = None  # every order sent before healing processed (Scenario.measure_drain)

    # Each duration is running time: whatever time the machine was stopped in between (stalls.py)
    # is left out, as it is of every deadline.
    @property
    def time_to_trip(self) -> Optional[float]:
        return _running(self.first_error_at, self.tripped_at)

    @property
    def healed_to_closed(self) -> Optional[float]:
        return _running(self.healed_at, self.closed_at)

    @property
    def healed_to_drained(self) -> Optional[float]:
        return _running(self.healed_at, self.drained_at)

    @property
    def probe_to_drained(self) -> Optional[float]:
        return _running(self.probed_at, self.drained_at)


def _running(since: Optional[float], until: Optional[float]) -> Optional[float]:
    """Seconds from ``since`` to ``until`` (wall times) the machine ran; None when either is None."""
    return None if since is None or until is None else until - since - stalls.stalled(since, until)


def outage(scn: Scenario, hold_open_s: float, on_sample: Callable[[dict], None], during_open: Callable[[], None] = lambda: None,
           trip_timeout: Optional[float] = None, close_timeout: float = 240, mode: str = "fail",
           on_healed: Callable[[], None] = lambda: None) -> Outage:
    """Flag on until the breaker trips, keep it failing ``hold_open_s`` more, flag off (then
    ``on_healed``, e.g. an operator's `breaker close`), wait closed. The ramp follows health
    (issue 16): each level waits for a complete, published interval, with the demo's 10 s
    high-resolution periods the period plus ~5 s of EMF delivery (15-25 s per level, about the
    demo's 20 s ramp interval): the 10 outages of one whole local-cloud run closed 65.9-79.3 s
    after healing, under every module's close timeout (180-300 s, as before the health-following
    ramp). ``LOCALCLOUD_CLOSE_LOG`` collects healed -> closed samples."""
    errors_before = scn.ledger.counts()[1]
    o = Outage(failing_at=scn.set_flag(mode))
    scn.outages.append(o)
    scn.wait_until(lambda s: s["esm"] in ("Disabled", "Disabling"), trip_timeout or 2 * scn.alarm_period + 30, on_sample)
    o.tripped_at = scn.mark("tripped")
    with scn.ledger.lock:
        o.first_error_at = next((at for at, e in scn.ledger.invocations if e and at >= o.failing_at), None)
    assert scn.ledger.counts()[1] > errors_before
    if os.environ.get("LOCALCLOUD_TRIP_LOG") and o.time_to_trip is not None:  # benchmark samples
        with open(os.environ["LOCALCLOUD_TRIP_LOG"], "a") as f:
            f.write(json.dumps({"mode": mode, "alarm_period": scn.alarm_period, "time_to_trip": round(o.time_to_trip, 2),
                                "at": round(o.tripped_at, 1)}) + "\n")
    during_open()
    end = time.time() + hold_open_s
    scn.wait_until(lambda s: time.time() >= end, hold_open_s + 5, on_sample)
    o.healed_at = scn.set_flag("ok")
    on_healed()
    scn.wait_until(scn.is_closed, close_timeout, on_sample)
    o.closed_at = scn.mark("closed")
    if os.environ.get("LOCALCLOUD_CLOSE_LOG"):  # benchmark samples
        with open(os.environ["LOCALCLOUD_CLOSE_LOG"], "a") as f:
            f.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", ""), "mode": mode,
                                "healed_to_closed": round(o.healed_to_closed, 1),
                                "close_timeout": close_timeout, "at": round(o.closed_at, 1)}) + "\n")
    return o


def read_notifications(scn: Scenario, queue_url: str) -> list[str]:
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


def drain(scn: Scenario, timeout: float, on_sample: Callable[[dict], None]) -> dict:
    """Wait until every sent order is processed and the queue is empty."""
    sent = set(scn.sent)
    return scn.wait_until(
        lambda s: s["queue"] == 0 and s["inflight"] == 0 and sent <= scn.ledger.done(),
        timeout, on_sample)
