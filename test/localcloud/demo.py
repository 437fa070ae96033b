"""`npm run demo`: the circuit breaker on the local cloud, live in the terminal.

Runs the Lambda binaries the construct ships (the arm64 assets `bash .ci/setup` builds, under
qemu-user on an x86_64 host: no host build). Starts the local cloud (moto + glue on 127.0.0.1),
deploys the example stack with the real CDK CLI (demo timings: 10 s alarm periods), sends orders,
turns the consumer's failure flag on, lets the breaker trip, turns it off and shows the recovery
until the circuit is closed. Writes an HTML chart and prints a summary. Stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from localcloud import chart, dashboard  # noqa: E402
from localcloud.cloud import LocalCloud, emulator  # noqa: E402
from localcloud.scenario import ASSETS, ROOT, STACK, Scenario, deploy, drain, lambda_binaries, outage, stale_assets  # noqa: E402

BOLD, RED, GREEN, DIM, RESET = ("\033[1m", "\033[31m", "\033[32m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("",) * 5


def fmt(s: dict, prev: dict | None) -> str:
    def hl(key: str, text: str) -> str:
        return f"{BOLD}{text}{RESET}" if prev is not None and prev.get(key) != s.get(key) else text

    esm = s["esm"] or "?"
    esm_c = GREEN if esm == "Enabled" else RED
    alarm_c = RED if s["alarm"] == "ALARM" else GREEN if s["alarm"] == "OK" else DIM
    conc = s["concurrency"] if s["concurrency"] is not None else "-"
    alarm = s["alarm"]
    return (f"{s['t']:6.1f}s  ESM {esm_c}{hl('esm', f'{esm:<9}')}{RESET} conc {hl('concurrency', f'{conc!s:>3}')}  "
            f"alarm {alarm_c}{hl('alarm', f'{alarm:<17}')}{RESET} queue {s['queue']:4d} inflight {s['inflight']:3d} "
            f"dlq {s['dlq']:2d}  inv {s['invocations']:5d} err {s['errors']:4d}  step {hl('step', s['step'])}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders-per-second", type=int, default=4)
    ap.add_argument("--initial-orders", type=int, default=40)
    ap.add_argument("--hold-open", type=float, default=15, help="seconds the flag stays on after the trip")
    ap.add_argument("--alarm-period", type=int, default=10)
    ap.add_argument("--resolution", choices=["high", "standard"], default="high",
                    help="the alarm's metrics: the telemetry extension's (high) or Lambda's one-minute ones "
                         "(standard, needs --alarm-period 60)")
    ap.add_argument("--out", default=os.path.join(ROOT, ".local-cloud"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.makedirs(args.out, exist_ok=True)
    # moto's warnings (resource types its CloudFormation skips) go to a file, not the terminal
    # (Python warnings and its "No Moto CloudFormation support for ..." log records)
    logging.captureWarnings(True)
    to_file = logging.FileHandler(os.path.join(args.out, "demo-warnings.log"), mode="w")
    for name in ("py.warnings", "moto"):
        logging.getLogger(name).propagate = False
        logging.getLogger(name).addHandler(to_file)
    started = time.time()

    try:
        binaries = lambda_binaries()
    except RuntimeError as err:
        print(f"{RED}cannot run the Lambda binaries: {err}{RESET}", file=sys.stderr)
        return 2
    machine = os.uname().machine
    how = "natively" if machine == "aarch64" else f"under {' '.join(emulator('aarch64'))}"
    print(f"{BOLD}1/5 the Lambda binaries the construct ships (arm64), run {how}{RESET}", flush=True)
    for name, path in ASSETS.items():
        shown = f"{binaries[path]} (LOCALCLOUD override)" if path in binaries else os.path.relpath(path, ROOT)
        print(f"   {name:<31} {shown} ({os.path.getsize(path) / 1e6:.1f} MB)", flush=True)
    stale = stale_assets()
    if stale:
        print(f"   {RED}warning: {stale}{RESET}", flush=True)
    work = tempfile.mkdtemp(prefix="demo-", dir=args.out)
    cloud = LocalCloud(binaries=binaries, work_dir=work).start()
    try:
        print(f"{BOLD}2/5 local cloud on {cloud.url} (moto + runtime host + ESM poller + alarm evaluator){RESET}", flush=True)
        print(f"{BOLD}3/5 deploying {STACK} with the CDK CLI (demo timings, {args.alarm_period} s alarm period, "
              f"{args.resolution} resolution){RESET}", flush=True)
        d = deploy(cloud, {"demo": "true", "alarmPeriodSeconds": str(args.alarm_period), "alarmResolution": args.resolution},
                   work, log=lambda m: print("   " + m, flush=True))
        print("   " + ", ".join(f"{k} {v:.1f} s" for k, v in d["timings"].items()), flush=True)
        scn = Scenario(cloud, d["outputs"])
        print(f"   alarm period {scn.alarm_period} s, ESM MaximumConcurrency {scn.original_scaling.get('MaximumConcurrency')}", flush=True)
        prev: dict | None = None
        seen_events = 0
        printed = [-10.0]  # when the last line was printed: on every change, else every 5 s

        def show(s: dict) -> None:
            nonlocal prev, seen_events
            for ev in scn.breaker_events[seen_events:]:
                print(f"        {BOLD}event: {ev['type']}{RESET} {DIM}{json.dumps(ev['detail'])[:110]}{RESET}", flush=True)
            seen_events = len(scn.breaker_events)
            changed = prev is None or any(prev[k] != s[k] for k in ("esm", "concurrency", "alarm", "step"))
            if changed or s["t"] - printed[0] >= 5:
                print(fmt(s, prev), flush=True)
                printed[0] = s["t"]
            prev = s

        print(f"{BOLD}4/5 orders flowing; then the downstream fails (flag fail) and recovers (flag ok){RESET}", flush=True)
        scn.set_flag("ok")
        scn.send(args.initial_orders)
        scn.start_sending(args.orders_per_second)
        end = time.time() + 8
        scn.wait_until(lambda s: time.time() >= end, 15, show)
        print(f"{BOLD}{RED}>>> flag fail: the downstream is down{RESET}", flush=True)
        o = outage(scn, args.hold_open, show)
        print(f"{BOLD}{GREEN}>>> circuit closed{RESET}", flush=True)
        scn.stop_sending()
        drain(scn, 180, show)
        summary = scn.summary()
        summary["time to trip (first error -> ESM disabled)"] = f"{o.time_to_trip:.1f} s" if o.time_to_trip is not None else "n/a"
        summary["healed -> closed"] = f"{o.healed_to_closed:.1f} s" if o.healed_to_closed is not None else "n/a"
        # every order sent before healing processed (the scenario's ledger), from healing and
        # from the healthy probe that led to re-jitter
        for key in ("healed -> drained", "probe -> drained"):
            value = summary.pop(key)
            summary[key] = f"{value:.1f} s" if value is not None else "n/a"
        # the longest delay of each window the plans sized to the backlog (configured: the construct's 300 s)
        plans = scn.rejitter_plans(o)
        summary["re-jitter window"] = ", ".join(
            f"up to {p['windowMaxSeconds']} s for {p.get('backlog')} messages" for p in plans
            if isinstance(p.get("windowMaxSeconds"), int)) or "n/a"
        summary["demo run time"] = f"{time.time() - started:.0f} s"
        path = os.path.join(args.out, "demo-chart.html")
        marks = [(round(at - scn.started, 1), label) for at, label in scn.marks]
        title, steps = "sqs-circuit-breaker on the local cloud", scn.recovery_steps()
        with open(path, "w") as f:
            f.write(chart.render(scn.samples, marks, summary, title, steps))
        # the run's data, to re-render the chart and take its picture (`npm run chart`)
        chart.save_run(os.path.join(args.out, "demo-run.json"), scn.samples, marks, summary, title, steps)
        # the construct's CloudWatch dashboard as deployed, with every widget's data over the run
        # (`npm run dashboard` draws it)
        board = os.path.join(args.out, "demo-dashboard.json")
        dashboard.save(cloud.client("cloudwatch"), d["outputs"]["DashboardName"], scn.started, time.time(), board,
                       "The breaker's CloudWatch dashboard, from a local-cloud run")
        print(f"{BOLD}5/5 summary{RESET}")
        for k, v in summary.items():
            print(f"   {k:<45} {v}")
        print(f"chart: {path}")
        print(f"dashboard: {board} (draw it: npm run dashboard)")
        print(f"{DIM}moto's warnings: {os.path.join(args.out, 'demo-warnings.log')}{RESET}")
        ok = summary["lost"] == 0 and summary["dead-lettered"] == 0 and summary["processed"] == summary["sent"]
        return 0 if ok else 1
    finally:
        cloud.stop()


if __name__ == "__main__":
    sys.exit(main())
