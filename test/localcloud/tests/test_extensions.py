"""External extensions in the runtime host: the Extensions API (register, event/next, INVOKE and
SHUTDOWN, init failures) and the Telemetry API (subscription, buffered platform events to the
extension's listener), with a small Python extension written here; an optional run of the real
Rust extension (``sqs-circuit-breaker-telemetry``) when it is built."""
import json
import os
import sys
import threading
import time

import pytest

from localcloud import stalls
from localcloud.cloud import emulator
from localcloud.faults import ENV_KEY_PREFIX
from localcloud.runtime import FunctionSpec, RuntimeHost
from localcloud.scenario import ASSETS

EXTENSION_ASSET = ASSETS["sqs-circuit-breaker-telemetry"]  # arm64

FAKE = os.path.join(os.path.dirname(__file__), "fixtures", "fake_lambda.py")

# The extension: registers as its file name, subscribes its listener (a free port on 127.0.0.1,
# named http://sandbox.localdomain:<port>) to platform telemetry with the buffering of
# $EXT_BUFFERING, appends everything it gets to $EXT_LOG as JSON lines, prints one line per
# runtimeDone (and, with $EXT_EMF, the fast-trip contract's EMF line), and exits on SHUTDOWN. EXT_MODE=crash exits before registering; badsub subscribes
# with a buffering below the minimum and exits when that is refused.
EXTENSION = r'''
import http.server, json, os, socket, sys, threading, time, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
name = os.path.basename(sys.argv[0])
log_path = os.environ["EXT_LOG"]
mode = os.environ.get("EXT_MODE", "telemetry")
lock = threading.Lock()

def note(kind, **doc):
    with lock, open(log_path, "a") as f:
        f.write(json.dumps({"kind": kind, "at": time.time(), **doc}) + "\n")

def call(method, path, body=None, headers=None):
    req = urllib.request.Request(api + path, data=None if body is None else json.dumps(body).encode(),
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()

if mode == "crash":
    sys.exit(2)
note("env", vars={k: os.environ.get(k) for k in ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME",
                                                   "AWS_ACCESS_KEY_ID", "_HANDLER", "CUSTOM")})
status, headers, body = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE", "SHUTDOWN"]},
                             {"Lambda-Extension-Name": name})
note("register", status=status, body=json.loads(body))
ext_id = headers["Lambda-Extension-Identifier"]

class Listener(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        note("telemetry", batch=batch, host=self.headers["Host"])
        for rec in batch:
            if rec["type"] == "platform.runtimeDone":
                print(f"runtimeDone {rec['record']['requestId']} {rec['record']['status']}", flush=True)
                if os.environ.get("EXT_EMF"):  # the fast-trip contract's line, for one record
                    failed = int(rec["record"]["status"] != "success")
                    print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                        "Namespace": "SqsCircuitBreaker/Consumer", "Dimensions": [["FunctionName"]],
                        "Metrics": [{"Name": n, "Unit": "Count", "StorageResolution": 1}
                                    for n in ("Invocations", "Errors", "Timeouts")]}]},
                        "FunctionName": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "Invocations": 1,
                        "Errors": failed, "Timeouts": int(rec["record"]["status"] == "timeout")}), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
threading.Thread(target=server.serve_forever, daemon=True).start()
buffering = json.loads(os.environ.get("EXT_BUFFERING") or '{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}')
status, _, body = call("PUT", "/2022-07-01/telemetry", {
    "schemaVersion": "2022-12-13", "types": ["platform"], "buffering": buffering,
    "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{server.server_address[1]}/"}},
    {"Lambda-Extension-Identifier": ext_id})
note("subscribe", status=status, body=body.decode())
if status != 200:
    sys.exit(1)
while True:
    status, _, body = call("GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": ext_id})
    event = json.loads(body)
    note("event", event=event)
    print(f"event {event['eventType']}", flush=True)
    if event["eventType"] == "SHUTDOWN":
        time.sleep(0.2)
        sys.exit(0)
'''


@pytest.fixture
def ext(tmp_path):
    path = tmp_path / "telemetry-ext"
    path.write_text(EXTENSION)
    return str(path)


@pytest.fixture
def host(tmp_path):
    lines = []
    h = RuntimeHost({"PATH": os.environ["PATH"], "AWS_REGION": "us-east-1"}, metrics=lambda *a: None,
                    log_dir=str(tmp_path / "logs"), log_line=lambda fn, src, line: lines.append((fn, src, line)),
                    extension_port_variables=("SQS_CIRCUIT_BREAKER_TELEMETRY_PORT",)).start()
    h.lines = lines
    yield h
    h.stop()


def spec(handler, ext_path, tmp_path, mode="telemetry", buffering=None, **kw):
    env = {"EXT_LOG": str(tmp_path / "ext.log"), "EXT_MODE": mode, "CUSTOM": "yes"}
    if buffering:
        env["EXT_BUFFERING"] = json.dumps(buffering)
    base = dict(name=f"fn-{handler}", arn=f"arn:aws:lambda:us-east-1:123456789012:function:fn-{handler}",
                command=(sys.executable, FAKE), handler=handler, timeout_s=5.0, concurrency=2,
                env=tuple(sorted(env.items())),
                extensions=(("telemetry-ext", (sys.executable, ext_path)),))
    base.update(kw)
    return FunctionSpec(**base)


def notes(tmp_path, kind=None):
    p = tmp_path / "ext.log"
    out = [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []
    return [n for n in out if kind is None or n["kind"] == kind]


def records(tmp_path, type_=None):
    return [(n["at"], r) for n in notes(tmp_path, "telemetry") for r in n["batch"] if type_ is None or r["type"] == type_]


def wait_for(cond, timeout=10, every=0.05):
    return stalls.wait_for(cond, timeout, every=every)


def test_extension_registers_gets_invoke_events_and_platform_telemetry(host, ext, tmp_path):
    s = spec("echo", ext, tmp_path)
    r = host.invoke(s, b'{"a": 1}')
    assert json.loads(r.payload) == {"a": 1} and not r.errored
    env = notes(tmp_path, "env")[0]["vars"]
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith(f"http://127.0.0.1:{host.port}/env/")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn-echo" and env["CUSTOM"] == "yes"
    assert env["AWS_ACCESS_KEY_ID"].startswith(ENV_KEY_PREFIX)  # the environment's own key
    assert env["_HANDLER"] is None  # runtime-only variable
    reg = notes(tmp_path, "register")[0]
    assert reg["status"] == 200 and reg["body"]["functionName"] == "fn-echo" and reg["body"]["handler"] == "echo"
    assert notes(tmp_path, "subscribe")[0]["status"] == 200
    invoke = wait_for(lambda: [n["event"] for n in notes(tmp_path, "event") if n["event"]["eventType"] == "INVOKE"])[0]
    assert invoke["invokedFunctionArn"] == s.arn and invoke["deadlineMs"] > time.time() * 1000
    assert invoke["tracing"]["type"] == "X-Amzn-Trace-Id"
    done = wait_for(lambda: records(tmp_path, "platform.runtimeDone"))
    rid = invoke["requestId"]
    assert [r["record"]["status"] for _, r in done] == ["success"] and done[0][1]["record"]["requestId"] == rid
    assert done[0][1]["time"].endswith("Z")
    assert [r["record"]["requestId"] for _, r in wait_for(lambda: records(tmp_path, "platform.start"))] == [rid]
    report = wait_for(lambda: records(tmp_path, "platform.report"))[0][1]["record"]
    assert report["requestId"] == rid and report["metrics"]["memorySizeMB"] == 128
    assert notes(tmp_path, "telemetry")[0]["host"].startswith("sandbox.localdomain:")
    # the extension's stdout is the function's log, like the runtime's
    wait_for(lambda: any(src == "telemetry-ext" and line == f"runtimeDone {rid} success".encode() for _, src, line in host.lines))
    log_text = wait_for(lambda: (tmp_path / "logs" / "fn-echo.log").read_text() if (tmp_path / "logs" / "fn-echo.log").exists() else "")
    assert "event INVOKE" in log_text
    # the environment is reused; each invocation gets its own events
    host.invoke(s, b"{}")
    wait_for(lambda: len(records(tmp_path, "platform.runtimeDone")) == 2)
    assert len(notes(tmp_path, "register")) == 1


@pytest.mark.parametrize("handler,payload,status,error", [
    ("fail", b"{}", "error", "Boom"),
    ("crash", b"{}", "failure", "Runtime.ExitError"),
    ("sleep", b'{"seconds": 5}', "timeout", "Sandbox.Timedout"),
])
def test_runtime_done_reports_error_failure_and_timeout_then_the_reset_shuts_down(host, ext, tmp_path, handler, payload, status, error):
    r = host.invoke(spec(handler, ext, tmp_path, timeout_s=1.0), payload)
    assert r.error_type == error
    done = wait_for(lambda: records(tmp_path, "platform.runtimeDone"))
    assert [(d["record"]["status"], d["record"].get("errorType")) for _, d in done] == [(status, error)]
    if handler != "fail":  # a crashed or timed-out environment is reset: SHUTDOWN with the reason
        shutdown = wait_for(lambda: [n["event"] for n in notes(tmp_path, "event") if n["event"]["eventType"] == "SHUTDOWN"])
        assert shutdown[0]["shutdownReason"] == ("failure" if handler == "crash" else "timeout")


def test_an_extension_that_crashes_during_init_fails_the_invocation(host, ext, tmp_path):
    r = host.invoke(spec("echo", ext, tmp_path, mode="crash"), b"{}")
    assert r.error_type == "Extension.Crash"
    assert "exit code 2" in json.loads(r.payload)["errorMessage"]
    assert host.running_environments("fn-echo") == 0


def test_a_subscription_below_the_buffering_minimum_is_refused_and_init_fails(host, ext, tmp_path):
    r = host.invoke(spec("echo", ext, tmp_path, buffering={"timeoutMs": 10}), b"{}")
    sub = notes(tmp_path, "subscribe")[0]
    assert sub["status"] == 400 and "timeoutMs" in sub["body"]
    assert r.error_type == "Extension.Crash"


def test_telemetry_waits_for_the_buffering_timeout(host, ext, tmp_path):
    s = spec("echo", ext, tmp_path, buffering={"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 1500})
    host.invoke(s, b"{}")  # init
    wait_for(lambda: records(tmp_path, "platform.runtimeDone"), timeout=5)
    before = len(records(tmp_path))
    t = time.time()
    host.invoke(s, b"{}")
    at = wait_for(lambda: [a for a, r in records(tmp_path, "platform.runtimeDone")][1:], timeout=5)[0]
    assert at - t >= 1.2, "held for timeoutMs"
    assert len(records(tmp_path)) - before == 3  # start, runtimeDone, report in one batch
    fast = spec("echo", ext, tmp_path, name="fn-fast")  # timeoutMs 25
    host.invoke(fast, b"{}")
    wait_for(lambda: len(records(tmp_path, "platform.runtimeDone")) == 3)
    t = time.time()
    host.invoke(fast, b"{}")
    at = wait_for(lambda: [a for a, _ in records(tmp_path, "platform.runtimeDone")][3:], timeout=5)[0]
    assert at - t < 0.8


def test_extensions_shut_down_with_the_host(tmp_path, ext):
    h = RuntimeHost({"PATH": os.environ["PATH"]}, log_dir=str(tmp_path / "logs")).start()
    h.invoke(spec("echo", ext, tmp_path), b"{}")
    h.stop()
    shutdown = [n["event"] for n in notes(tmp_path, "event") if n["event"]["eventType"] == "SHUTDOWN"]
    assert shutdown and shutdown[0]["shutdownReason"] == "spindown"


def _rust_extension() -> tuple[str, ...]:
    """The command running the telemetry extension the construct ships (the arm64 asset, under
    qemu-user on an x86_64 host); ``LOCALCLOUD_EXTENSION`` names a host build instead."""
    explicit = os.environ.get("LOCALCLOUD_EXTENSION")
    if explicit:
        return (explicit,)
    if os.uname().machine == "aarch64":
        return (EXTENSION_ASSET,)
    return (*emulator("aarch64"), EXTENSION_ASSET)


@pytest.mark.skipif(not os.path.exists(EXTENSION_ASSET), reason="the arm64 extension asset is not built: bash .ci/setup")
def test_the_rust_extension_prints_per_second_emf_counts(host, tmp_path):
    command = _rust_extension()
    s = FunctionSpec(name="fn-rust", arn="arn:aws:lambda:us-east-1:123456789012:function:fn-rust",
                     command=(sys.executable, FAKE), handler="fail", timeout_s=5.0,
                     extensions=(("sqs-circuit-breaker-telemetry", command),))
    for _ in range(3):
        assert host.invoke(s, b"{}").error_type == "Boom"

    def counts():
        total = {"Invocations": 0, "Errors": 0, "Timeouts": 0}
        for fn, src, line in list(host.lines):
            if fn == "fn-rust" and line.startswith(b"{") and b"SqsCircuitBreaker/Consumer" in line:
                doc = json.loads(line)
                assert doc["FunctionName"] == "fn-rust"
                assert all(m["StorageResolution"] == 1 for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"])
                for k in total:
                    total[k] += doc[k]
        return total if total["Invocations"] == 3 else None
    assert wait_for(counts, timeout=15) == {"Invocations": 3, "Errors": 3, "Timeouts": 0}


@pytest.mark.skipif(not os.path.exists(EXTENSION_ASSET), reason="the arm64 extension asset is not built: bash .ci/setup")
def test_concurrent_environments_with_the_rust_extension_count_their_own_invocations(tmp_path):
    """Every environment gets its own telemetry port (``extension_port_variables``): on Lambda each
    execution environment has its own network, here they share the host's, so the extension's
    default port 9003 would make one environment's listener receive another's telemetry."""
    command = _rust_extension()
    lines = []
    h = RuntimeHost({"PATH": os.environ["PATH"]}, log_line=lambda fn, src, line: lines.append((fn, line)),
                    extension_port_variables=("SQS_CIRCUIT_BREAKER_TELEMETRY_PORT",)).start()
    try:
        specs = [FunctionSpec(name=f"fn-{i}", arn=f"arn:aws:lambda:us-east-1:123456789012:function:fn-{i}",
                              command=(sys.executable, FAKE), handler="sleep", timeout_s=5.0, concurrency=2,
                              extensions=(("sqs-circuit-breaker-telemetry", command),)) for i in range(2)]
        threads = [threading.Thread(target=h.invoke, args=(s, b'{"seconds": 0.3}')) for s in specs for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert h.running_environments() == 4

        def counts():
            total = {}
            for fn, line in list(lines):
                if line.startswith(b"{") and b"SqsCircuitBreaker/Consumer" in line:
                    doc = json.loads(line)
                    assert doc["FunctionName"] == fn, "an environment counted another function's invocation"
                    total[fn] = total.get(fn, 0) + doc["Invocations"]
            return total if sum(total.values()) >= 4 else None
        assert wait_for(counts, timeout=15) == {"fn-0": 2, "fn-1": 2}
    finally:
        h.stop()
