"""Lambda runtime-API host: runs real `bootstrap` executables as Lambda execution environments.

One HTTP server serves the Lambda Runtime API for every environment; each environment (one
process) gets its own path prefix, e.g. ``AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT/env/7``
(the Rust runtime keeps a base path). An environment handles one invocation at a time, like
Lambda. Per function the host keeps at most ``concurrency`` environments; an invoke beyond that
is throttled. An invocation that outlives the function timeout kills its environment and fails
with ``Sandbox.Timedout``. Every invocation publishes ``AWS/Lambda`` Invocations, Errors,
Duration (and Throttles) through the ``metrics`` callback.

Every line a runtime or an extension writes (stdout and stderr, as Lambda captures both) goes to
``<log_dir>/<function>.log`` and to the ``log_line`` callback (the local cloud extracts EMF
metrics from it).

External extensions (``FunctionSpec.extensions``, the executables of a layer's ``extensions/``)
follow the Lambda Extensions API (Lambda developer guide, "Lambda Extensions API"): the host starts
them before the runtime with the function's environment minus the runtime-only variables; each
registers (``POST /2020-01-01/extension/register`` with ``Lambda-Extension-Name``, its file name;
the reply carries ``Lambda-Extension-Identifier``); the runtime starts once all have registered,
and an invocation is handed to the runtime only when every extension waits in
``GET /2020-01-01/extension/event/next`` (Init, and each Invoke phase, "completes after the runtime
and each registered extension indicate completion by sending a Next API request"). Extensions
registered for ``INVOKE`` get each invocation's ``INVOKE`` event; when the environment goes away
(timeout, runtime failure, replaced configuration, host stop) the runtime is killed, telemetry is
flushed, ``SHUTDOWN`` (``spindown``/``timeout``/``failure``) goes to those registered for it, and
whatever still runs 2 s later is SIGKILLed ("2000 ms - a function with one or more registered
external extensions"). An extension that exits (or reports ``/extension/init/error``) before Init
completes fails the invocation with ``Extension.Crash`` (``Extension.InitError``), and one that
exits later resets the environment, as Lambda does ("If an extension fails, Lambda restarts the
execution environment").
An executable that cannot start (``FunctionSpec.launch_errors``, e.g. an ELF for the other
architecture) fails Init as Lambda does: ``Runtime.InvalidEntrypoint`` for the runtime,
``Extension.LaunchError`` for an extension, each with Lambda's message (``RequestId: ... Error:
fork/exec /var/task/bootstrap: exec format error``).

The Telemetry API (``PUT /2022-07-01/telemetry``, Lambda developer guide "Telemetry API reference")
subscribes an extension's HTTP listener to ``platform`` events (``platform.start``,
``platform.runtimeDone`` with ``status`` success/error/failure/timeout, ``platform.report``),
``function`` and ``extension`` log lines; the host POSTs JSON arrays of them to the destination,
buffered per subscription (``maxItems`` 1,000-10,000, default 10,000; ``maxBytes``
262,144-1,048,576, default 262,144; ``timeoutMs`` 25-30,000, default 1,000) and retried while the
listener is not there. The destination is ``http://sandbox.localdomain:<port>[/path]`` (HTTP only;
port 9001 is reserved); ``sandbox.localdomain`` is 127.0.0.1 here, as it is the execution
environment's own address on Lambda.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import queue
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import stalls

log = logging.getLogger("localcloud.runtime")

API = "/2018-06-01/runtime"
EXTENSION_API = "/2020-01-01/extension"
TELEMETRY_API = "/2022-07-01/telemetry"
# "Extensions can access the function's environment variables, except for the following variables
# that are specific to the runtime process" (Lambda Extensions API, "Permissions and configuration")
RUNTIME_ONLY_VARIABLES = frozenset({
    "AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT", "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT", "_HANDLER",
})
SHUTDOWN_LIMIT_S = 2.0  # the Shutdown phase with external extensions
MAX_EXTENSIONS = 10  # "You can register up to 10 extensions for a function"
TELEMETRY_SCHEMAS = ("2022-07-01", "2022-12-13", "2025-01-29")
TELEMETRY_TYPES = ("platform", "function", "extension")
# (minimum, maximum, default) of the Telemetry API's buffering configuration
TELEMETRY_BUFFERING = {
    "maxItems": (1_000, 10_000, 10_000),
    "maxBytes": (262_144, 1_048_576, 262_144),
    "timeoutMs": (25, 30_000, 1_000),
}
SANDBOX_HOST = "sandbox.localdomain"  # the execution environment's own address: 127.0.0.1 here


@dataclass(frozen=True)
class FunctionSpec:
    """What the host needs to run one function version."""

    name: str
    arn: str
    command: tuple[str, ...]
    handler: str
    env: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 3.0
    memory_mb: int = 128
    concurrency: int = 10
    # external extensions: (name, command); the name is the executable's file name in extensions/
    extensions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # executables that cannot start: (source, Lambda's error text); source is "function" (the
    # runtime) or an extension's name
    launch_errors: tuple[tuple[str, str], ...] = ()


class LaunchError(OSError):
    """An executable Lambda could not start (``fork/exec <path>: exec format error``)."""


@dataclass
class InvokeResult:
    payload: bytes
    error_type: Optional[str] = None
    throttled: bool = False
    duration_ms: float = 0.0

    @property
    def errored(self) -> bool:
        return self.error_type is not None


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    response: bytes = b""
    error_type: Optional[str] = None
    trace: str = ""
    dispatched: bool = False  # handed to the runtime (platform.start sent)

    def finish(self, response: bytes, error_type: Optional[str] = None) -> None:
        if not self.done.is_set():
            self.response, self.error_type = response, error_type
            self.done.set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))  # free on every interface: extensions listen on 0.0.0.0
        return sock.getsockname()[1]


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Extension:
    """One registered external extension of an environment."""

    def __init__(self, name: str, events: set[str]):
        self.id = str(uuid.uuid4())
        self.name = name
        self.events = events
        self.inbox: "queue.Queue[dict]" = queue.Queue()
        self.ready = False  # waiting in event/next since its last event


class _Subscription:
    """A Telemetry API subscription: buffers records and POSTs them as JSON arrays to the
    extension's listener when ``maxItems``/``maxBytes`` fill up or the oldest waited ``timeoutMs``."""

    def __init__(self, extension: str, types: list[str], buffering: dict, uri: str):
        self.extension = extension
        self.types = set(types)
        self.max_items, self.max_bytes = buffering["maxItems"], buffering["maxBytes"]
        self.timeout_s = buffering["timeoutMs"] / 1000
        parts = urlsplit(uri)
        self.port = parts.port
        self.host_header = parts.netloc
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._buf: list[tuple[dict, int]] = []
        self._first_at: Optional[float] = None
        self._cond = threading.Condition()
        self._flush = False
        self._sending = False
        self.closed = False
        self.delivered = 0
        threading.Thread(target=self._run, daemon=True, name=f"telemetry-{extension}").start()

    def add(self, record: dict) -> None:
        size = len(json.dumps(record))
        with self._cond:
            if self.closed:
                return
            if not self._buf:
                self._first_at = time.monotonic()
            self._buf.append((record, size))
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> None:
        """Deliver everything buffered now; wait up to ``timeout_s`` for it."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flush = True
            self._cond.notify_all()
            while (self._buf or self._sending) and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _due(self) -> bool:
        if not self._buf:
            return False
        if self._flush or len(self._buf) >= self.max_items or sum(n for _, n in self._buf) >= self.max_bytes:
            return True
        return time.monotonic() - (self._first_at or 0) >= self.timeout_s

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self.closed and not self._due():
                    wait = None
                    if self._buf:
                        wait = max(0.0, self.timeout_s - (time.monotonic() - (self._first_at or 0)))
                    self._cond.wait(wait)
                if self.closed:
                    return
                batch, size = [], 0
                while self._buf and len(batch) < self.max_items and (not batch or size + self._buf[0][1] <= self.max_bytes):
                    record, n = self._buf.pop(0)
                    batch.append(record)
                    size += n
                self._first_at = time.monotonic() if self._buf else None
                if not self._buf:
                    self._flush = False
                self._sending = True
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _deliver(self, batch: list[dict]) -> None:
        """POST until the listener takes it (2xx) or the subscription closes: "Lambda retries the
        attempt to send telemetry (with backoff) if there is no listener, or if the POST request
        results in an error"."""
        body = json.dumps(batch).encode()
        backoff = 0.01
        while not self.closed:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("POST", self.path, body, {"Host": self.host_header, "Content-Type": "application/json"})
                    status = conn.getresponse().status
                finally:
                    conn.close()
                if 200 <= status < 300:
                    self.delivered += len(batch)
                    return
            except OSError:
                pass
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.5)


class _Environment:
    def __init__(self, env_id: str, spec: FunctionSpec):
        self.id = env_id
        self.spec = spec
        self.inbox: "queue.Queue[_Invocation]" = queue.Queue()
        self.current: Optional[_Invocation] = None
        self.busy = False
        self.dead = False
        self.proc: Optional[subprocess.Popen] = None
        self.cond = threading.Condition()
        self.extensions: dict[str, _Extension] = {}  # by identifier
        self.extension_procs: list[tuple[str, subprocess.Popen]] = []
        self.runtime_started = False
        self.init_done = False
        self.init_error: Optional[tuple[str, str]] = None
        self.subscriptions: list[_Subscription] = []
        self.shutting_down = False

    def kill(self) -> None:
        self.dead = True
        with self.cond:
            self.cond.notify_all()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def registered(self, name: str) -> bool:
        return any(e.name == name for e in self.extensions.values())

    def telemetry(self, kind: str, type_: str, record) -> None:
        for sub in list(self.subscriptions):
            if kind in sub.types:
                sub.add({"time": _now_iso(), "type": type_, "record": record})


def environment_access_key(env_id: str) -> str:
    """The access key an environment signs its AWS calls with (see faults.py)."""
    from .faults import ENV_KEY_PREFIX

    return f"{ENV_KEY_PREFIX}{env_id}"


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class RuntimeHost:
    """Hosts execution environments for any number of functions."""

    def __init__(
        self,
        base_env: dict[str, str],
        metrics: Optional[Callable[[str, list[tuple[str, float, str]]], None]] = None,
        log_dir: Optional[str] = None,
        log_line: Optional[Callable[[str, str, bytes], None]] = None,
        extension_port_variables: tuple[str, ...] = (),
    ):
        self.base_env = dict(base_env)
        self.metrics = metrics
        self.log_dir = log_dir
        # called with (function name, source: "function" or the extension's name, line) for every
        # line a runtime or an extension writes
        self.log_line = log_line
        # variables set, for an environment's extensions, to a port free on this machine: on Lambda
        # every execution environment has its own network, here all share the host's, so an
        # extension's fixed listener port (the lambda-extension crate's 9003) would be taken by the
        # first environment and the others' telemetry would reach its listener
        self.extension_port_variables = tuple(extension_port_variables)
        self._lock = threading.Lock()
        self._envs: dict[str, _Environment] = {}  # environments that take invocations
        self._alive: dict[str, _Environment] = {}  # ... and those still shutting down
        self._ids = itertools.count(1)
        self._server: Optional[ThreadingHTTPServer] = None
        self.invocations = 0
        # called after every invocation: (function name, payload, InvokeResult, started epoch s)
        self.observers: list[Callable[[str, bytes, "InvokeResult", float], None]] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "RuntimeHost":
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # noqa: D401 - quiet
                pass

            def do_GET(self):
                host._handle(self, "GET")

            def do_POST(self):
                host._handle(self, "POST")

            def do_PUT(self):
                host._handle(self, "PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="runtime-api").start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def stop(self) -> None:
        with self._lock:
            envs = list(self._envs.values())
            self._envs.clear()
        for env in envs:
            env.dead = True
            if env.current:
                env.current.finish(_error_payload("Runtime.Shutdown", "host stopped"), "Runtime.Shutdown")
        threads = [threading.Thread(target=self._shutdown, args=(env, "spindown"), daemon=True) for env in envs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SHUTDOWN_LIMIT_S + 3)
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def running_environments(self, function_name: Optional[str] = None) -> int:
        with self._lock:
            return sum(1 for e in self._envs.values() if not e.dead and (function_name is None or e.spec.name == function_name))

    def environment_info(self, env_id: str) -> Optional[tuple[str, str, str]]:
        """``(handler, function name, current invocation id)`` of a live environment."""
        env = self._envs.get(env_id)
        if env is None or env.dead:
            return None
        inv = env.current
        return env.spec.handler, env.spec.name, inv.request_id if inv else ""

    def kill_environment(self, env_id: str) -> None:
        """SIGKILL an environment's process, as a crashed runtime: its invocation fails with
        ``Runtime.ExitError``."""
        env = self._envs.get(env_id)
        if env and env.proc and env.proc.poll() is None:
            env.proc.kill()

    # -- invoke ----------------------------------------------------------------------------
    def invoke(self, spec: FunctionSpec, payload: bytes, resource: Optional[str] = None) -> InvokeResult:
        """Run one invocation. ``resource`` (``<fn>:<qualifier>``) when it came through an alias or
        a version: its metrics are published under that ``Resource`` too, as Lambda does."""
        env = self._acquire(spec)
        if env is None:
            self._publish(spec.name, [("Throttles", 1, "Count")], resource)
            return InvokeResult(
                _error_payload("TooManyRequestsException", "Rate Exceeded."), None, throttled=True
            )
        started, started_at = time.monotonic(), time.time()
        inv = _Invocation(
            request_id=str(uuid.uuid4()),
            payload=payload,
            deadline_ms=int((time.time() + spec.timeout_s) * 1000),
            trace=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
        )
        env.current = inv
        if env.init_error:  # init already failed (an extension crashed)
            inv.finish(_error_payload(env.init_error[0], f"RequestId: {inv.request_id} Error: {env.init_error[1]}"),
                       env.init_error[0])
        env.inbox.put(inv)
        timed_out = False
        # the timeout counts running time: a machine stopped mid-invocation (stalls.py) does not
        # time the function out when it runs again
        deadline = stalls.Deadline(spec.timeout_s)
        while not inv.done.wait(max(0.0, deadline.remaining())) and deadline.remaining() > 0:
            pass
        if not inv.done.is_set():
            inv.finish(
                _error_payload("Sandbox.Timedout", f"Task timed out after {spec.timeout_s:.2f} seconds"),
                "Sandbox.Timedout",
            )
            timed_out = True
        duration_ms = (time.monotonic() - started) * 1000
        self._report(env, inv, duration_ms)
        if timed_out:
            self._retire(env, "timeout")
        elif env.dead:  # the runtime crashed or init failed: reset the environment
            self._retire(env, "failure")
        env.current = None
        with self._lock:
            env.busy = False
            self.invocations += 1
        self._publish(
            spec.name,
            [
                ("Invocations", 1, "Count"),
                ("Errors", 1 if inv.error_type else 0, "Count"),
                ("Duration", duration_ms, "Milliseconds"),
            ],
            resource,
        )
        result = InvokeResult(inv.response, inv.error_type, duration_ms=duration_ms)
        for observe in list(self.observers):
            try:
                observe(spec.name, payload, result, started_at)
            except Exception:
                log.exception("invocation observer failed")
        return result

    def _report(self, env: _Environment, inv: _Invocation, duration_ms: float) -> None:
        """``platform.runtimeDone`` and ``platform.report`` of a dispatched invocation (Telemetry API
        event schema reference): status ``success``; ``error`` for an error the function reported;
        ``timeout``; ``failure`` when the runtime or the environment failed (crash, init error)."""
        if not inv.dispatched or not env.subscriptions:
            return
        kind = inv.error_type
        if kind is None:
            status = "success"
        elif kind == "Sandbox.Timedout":
            status = "timeout"
        elif kind.startswith(("Runtime.", "Extension.", "Sandbox.")):
            status = "failure"
        else:
            status = "error"
        extra = {} if kind is None else {"errorType": kind}
        env.telemetry("platform", "platform.runtimeDone", {
            "requestId": inv.request_id, "status": status, **extra,
            "metrics": {"durationMs": round(duration_ms, 3), "producedBytes": len(inv.response)},
            "spans": [],
            "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace},
        })
        env.telemetry("platform", "platform.report", {
            "requestId": inv.request_id, "status": status, **extra,
            "metrics": {"durationMs": round(duration_ms, 3), "billedDurationMs": int(duration_ms) + 1,
                        "memorySizeMB": env.spec.memory_mb, "maxMemoryUsedMB": env.spec.memory_mb},
            "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace},
        })

    def _acquire(self, spec: FunctionSpec) -> Optional[_Environment]:
        with self._lock:
            mine = [e for e in self._envs.values() if e.spec.name == spec.name and not e.dead]
            for e in mine:  # retire environments of an older configuration when idle
                if e.spec != spec and not e.busy:
                    self._envs.pop(e.id, None)
                    e.dead = True
                    threading.Thread(target=self._shutdown, args=(e, "spindown"), daemon=True).start()
            mine = [e for e in self._envs.values() if e.spec.name == spec.name and not e.dead]
            for e in mine:
                if e.spec == spec and not e.busy:
                    e.busy = True
                    return e
            if len(mine) >= spec.concurrency:
                return None
            env = _Environment(str(next(self._ids)), spec)
            env.busy = True
            self._envs[env.id] = env
            self._alive[env.id] = env
        try:
            self._spawn(env)
        except OSError as err:
            log.error("cannot start %s: %s", spec.command, err)
            with self._lock:
                self._envs.pop(env.id, None)
                self._alive.pop(env.id, None)
            env.dead = True
            for _, proc in env.extension_procs:
                proc.kill()
            raise
        return env

    def _variables(self, env: _Environment) -> dict[str, str]:
        spec = env.spec
        variables = dict(self.base_env)
        variables.update(dict(spec.env))
        variables.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.port}/env/{env.id}",
                "_HANDLER": spec.handler,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{env.id}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                # each environment signs with its own key, so the fault layer knows who calls
                "AWS_ACCESS_KEY_ID": environment_access_key(env.id),
            }
        )
        return variables

    def _spawn(self, env: _Environment) -> None:
        variables = self._variables(env)
        if not env.spec.extensions:
            try:
                self._start_runtime(env, variables)
            except LaunchError as err:
                self._fail_init(env, "Runtime.InvalidEntrypoint", str(err))
            return
        ext_vars = {k: v for k, v in variables.items() if k not in RUNTIME_ONLY_VARIABLES}
        for name in self.extension_port_variables:
            ext_vars[name] = str(_free_port())
        for name, command in env.spec.extensions:  # Extension init: all of them, before the runtime
            try:
                proc = self._popen(env, name, command, ext_vars)
            except LaunchError as err:  # Init fails; the extensions already started are shut down
                self._fail_init(env, "Extension.LaunchError", str(err))
                self._retire(env, "failure")
                return
            env.extension_procs.append((name, proc))
            threading.Thread(target=self._watch_extension, args=(env, name, proc), daemon=True).start()
        threading.Thread(target=self._init_runtime, args=(env, variables), daemon=True).start()

    def _popen(self, env: _Environment, source: str, command: tuple[str, ...], variables: dict) -> subprocess.Popen:
        launch_error = dict(env.spec.launch_errors).get(source)
        if launch_error is not None:
            raise LaunchError(launch_error)
        proc = subprocess.Popen(
            list(command), env=variables, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._capture, args=(env, source, proc), daemon=True).start()
        return proc

    def _capture(self, env: _Environment, source: str, proc: subprocess.Popen) -> None:
        """Copy a process's output, line by line, to the function's log file and ``log_line``."""
        assert proc.stdout is not None
        out = None
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            out = open(os.path.join(self.log_dir, f"{env.spec.name}.log"), "ab", buffering=0)  # noqa: SIM115
        try:
            for line in iter(proc.stdout.readline, b""):
                if out is not None:
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                if env.subscriptions:
                    text = line.decode("utf-8", "replace").rstrip("\n")
                    if source == "function":
                        env.telemetry("function", "function", text)
                    else:
                        env.telemetry("extension", "extension", text)
                if self.log_line:
                    try:
                        self.log_line(env.spec.name, source, line.rstrip(b"\n"))
                    except Exception:
                        log.exception("log line hook failed")
        finally:
            proc.stdout.close()
            if out is not None:
                out.close()

    def _start_runtime(self, env: _Environment, variables: dict) -> None:
        env.proc = self._popen(env, "function", env.spec.command, variables)
        env.runtime_started = True
        threading.Thread(target=self._watch, args=(env,), daemon=True).start()

    def _init_runtime(self, env: _Environment, variables: dict) -> None:
        """Runtime init once every extension registered (or nothing when init failed)."""
        names = [n for n, _ in env.spec.extensions]
        with env.cond:
            env.cond.wait_for(lambda: env.dead or env.init_error is not None or all(env.registered(n) for n in names))
            if env.dead or env.init_error is not None:
                return
        try:
            self._start_runtime(env, variables)
        except OSError as err:
            self._fail_init(env, "Runtime.InvalidEntrypoint", str(err))

    def _fail_init(self, env: _Environment, error_type: str, message: str) -> None:
        with env.cond:
            if env.init_error is None:
                env.init_error = (error_type, message)
            env.dead = True
            env.cond.notify_all()
        inv = env.current
        if inv is not None:
            inv.finish(_error_payload(error_type, f"RequestId: {inv.request_id} Error: {message}"), error_type)
        with self._lock:
            self._envs.pop(env.id, None)

    def _watch_extension(self, env: _Environment, name: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        if env.shutting_down:
            return
        log.warning("extension %s of %s exited with %s", name, env.spec.name, code)
        if not env.init_done:  # an extension that dies during Init fails it
            self._fail_init(env, "Extension.Crash", f"exit code {code}")
            self._retire(env, "failure")
            return
        inv = env.current  # later: the environment is reset
        if inv is not None and not inv.done.is_set():
            inv.finish(_error_payload("Extension.Crash", f"RequestId: {inv.request_id} Error: exit code {code}"),
                       "Extension.Crash")
        with self._lock:
            self._envs.pop(env.id, None)
        env.dead = True
        if inv is None:
            self._retire(env, "failure")

    def _watch(self, env: _Environment) -> None:
        assert env.proc is not None
        code = env.proc.wait()
        env.dead = True
        with env.cond:
            env.cond.notify_all()
        with self._lock:
            self._envs.pop(env.id, None)
        inv = env.current
        if inv and not inv.done.is_set():
            inv.finish(
                _error_payload("Runtime.ExitError", f"Runtime exited with error: exit status {code}"),
                "Runtime.ExitError",
            )
        elif inv is None:  # died while idle: reset the environment
            self._retire(env, "failure")

    def _retire(self, env: _Environment, reason: str = "failure") -> None:
        with self._lock:
            self._envs.pop(env.id, None)
        env.dead = True
        if env.extension_procs:
            threading.Thread(target=self._shutdown, args=(env, reason), daemon=True).start()
        else:
            self._shutdown(env, reason)

    def _shutdown(self, env: _Environment, reason: str) -> None:
        """The Shutdown phase: the runtime goes first, then telemetry is flushed and each extension
        registered for ``SHUTDOWN`` gets it; whatever runs after the limit is SIGKILLed."""
        with env.cond:
            if env.shutting_down:
                return
            env.shutting_down = True
        env.kill()
        deadline = time.monotonic() + SHUTDOWN_LIMIT_S
        if env.extension_procs:
            for sub in list(env.subscriptions):
                sub.flush(min(1.0, SHUTDOWN_LIMIT_S / 2))
            deadline_ms = int((time.time() + SHUTDOWN_LIMIT_S) * 1000)
            for ext in list(env.extensions.values()):
                if "SHUTDOWN" in ext.events:
                    ext.inbox.put({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms})
            for _, proc in env.extension_procs:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            for _, proc in env.extension_procs:
                if proc.poll() is None:
                    proc.kill()
            for sub in list(env.subscriptions):
                sub.close()
        with self._lock:
            self._alive.pop(env.id, None)

    def _publish(self, function_name: str, datums: list[tuple[str, float, str]], resource: Optional[str] = None) -> None:
        if self.metrics:
            try:
                if resource is None:
                    self.metrics(function_name, datums)
                else:
                    self.metrics(function_name, datums, resource)
            except Exception:  # metrics must never break an invocation
                log.exception("publishing metrics failed")

    # -- the Runtime, Extensions and Telemetry APIs ----------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parts = req.path.split("/", 3)  # ['', 'env', '<id>', 'rest']
        env = self._alive.get(parts[2]) if len(parts) == 4 and parts[1] == "env" else None
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        if env is None:
            return _reply(req, 404, b'{"errorType":"UnknownEnvironment"}')
        path = "/" + parts[3]
        if path.startswith(EXTENSION_API + "/"):
            return self._extension_api(env, req, method, path[len(EXTENSION_API):], body)
        if path.rstrip("/") == TELEMETRY_API:
            return self._telemetry_api(env, req, method, body)
        if method == "GET" and path == f"{API}/invocation/next":
            while True:
                try:
                    inv = env.inbox.get(timeout=1)
                    break
                except queue.Empty:
                    if env.dead:
                        return _reply(req, 410, b"{}")
            if env.spec.extensions and not self._dispatch(env, inv):
                return _reply(req, 410, b"{}")
            headers = {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": env.spec.arn,
                "Lambda-Runtime-Trace-Id": inv.trace,
            }
            return _reply(req, 200, inv.payload, headers)
        if method == "POST" and path.startswith(f"{API}/invocation/"):
            request_id, _, kind = path[len(f"{API}/invocation/"):].partition("/")
            inv = env.current
            if inv is None or inv.request_id != request_id:
                return _reply(req, 400, b'{"errorType":"InvalidRequestID"}')
            if kind == "response":
                inv.finish(body)
            elif kind == "error":
                inv.finish(body, _error_type(body, req.headers))
            else:
                return _reply(req, 404, b"{}")
            return _reply(req, 202, b'{"status":"OK"}')
        if method == "POST" and path == f"{API}/init/error":
            if env.current:
                env.current.finish(body, _error_type(body, req.headers) or "Runtime.InitError")
            _reply(req, 202, b'{"status":"OK"}')
            self._retire(env)
            return None
        return _reply(req, 404, b"{}")

    def _dispatch(self, env: _Environment, inv: _Invocation) -> bool:
        """Hand ``inv`` to the runtime once every extension waits in event/next (the previous phase
        is complete); extensions registered for INVOKE get its event. False when the environment
        died meanwhile."""
        with env.cond:
            env.cond.wait_for(lambda: env.dead or all(e.ready for e in env.extensions.values()))
            if env.dead:
                env.inbox.put(inv)
                return False
            env.init_done = True
            inv.dispatched = True
            env.telemetry("platform", "platform.start", {
                "requestId": inv.request_id, "version": "$LATEST",
                "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace},
            })
            for ext in env.extensions.values():
                if "INVOKE" in ext.events:
                    ext.ready = False
                    ext.inbox.put({
                        "eventType": "INVOKE", "deadlineMs": inv.deadline_ms, "requestId": inv.request_id,
                        "invokedFunctionArn": env.spec.arn,
                        "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace},
                    })
        return True

    def _extension_api(self, env: _Environment, req, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path == "/register":
            name = req.headers.get("Lambda-Extension-Name") or ""
            try:
                events = (json.loads(body or b"{}") or {}).get("events") or []
            except (ValueError, AttributeError):
                return _reply(req, 400, _error_payload("InvalidRequest", "the body must be a JSON object"))
            if not isinstance(events, list) or any(e not in ("INVOKE", "SHUTDOWN") for e in events):
                return _reply(req, 400, _error_payload("InvalidEventType", f"events must be INVOKE or SHUTDOWN, got {events}"))
            with env.cond:
                # "Lambda uses the full file name of the extension to validate that the extension
                # has completed the bootstrap sequence"
                if env.runtime_started or name not in [n for n, _ in env.spec.extensions] or env.registered(name):
                    return _reply(req, 403, _error_payload(
                        "Extension.Forbidden",
                        f"cannot register {name!r}: not an extension of this environment, already registered, or Init is over"))
                if len(env.extensions) >= MAX_EXTENSIONS:
                    return _reply(req, 403, _error_payload("Extension.TooManyExtensions", "at most 10 extensions"))
                ext = _Extension(name, set(events))
                env.extensions[ext.id] = ext
                env.cond.notify_all()
            doc = {"functionName": env.spec.name, "functionVersion": "$LATEST", "handler": env.spec.handler}
            if "accountId" in (req.headers.get("Lambda-Extension-Accept-Feature") or ""):
                doc["accountId"] = env.spec.arn.split(":")[4]
            return _reply(req, 200, json.dumps(doc).encode(), {"Lambda-Extension-Identifier": ext.id})
        ext = env.extensions.get(req.headers.get("Lambda-Extension-Identifier") or "")
        if ext is None:
            return _reply(req, 403, _error_payload("Extension.Forbidden", "unknown Lambda-Extension-Identifier"))
        if method == "GET" and path == "/event/next":
            with env.cond:
                ext.ready = True
                env.cond.notify_all()
            while True:
                try:
                    event = ext.inbox.get(timeout=1)
                    break
                except queue.Empty:
                    if env.id not in self._alive:
                        return _reply(req, 500, _error_payload("Extension.Gone", "the environment is gone"))
            return _reply(req, 200, json.dumps(event).encode(),
                          {"Lambda-Extension-Event-Identifier": str(uuid.uuid4()), "Lambda-Extension-Identifier": ext.id})
        if method == "POST" and path in ("/init/error", "/exit/error"):
            kind = "Extension.InitError" if path == "/init/error" else "Extension.ExitError"
            reported = req.headers.get("Lambda-Extension-Function-Error-Type") or "Unknown"
            _reply(req, 202, b'{"status":"OK"}')
            if not env.init_done:
                self._fail_init(env, kind, f"{ext.name}: {reported}")
            else:
                inv = env.current
                if inv is not None:
                    inv.finish(_error_payload(kind, f"RequestId: {inv.request_id} Error: {ext.name}: {reported}"), kind)
                with self._lock:
                    self._envs.pop(env.id, None)
                env.dead = True
            if env.current is None:
                self._retire(env, "failure")
            return None
        return _reply(req, 404, b"{}")

    def _telemetry_api(self, env: _Environment, req, method: str, body: bytes) -> None:
        """Subscribe (Lambda Telemetry API reference): validation per its request body parameters."""
        ext = env.extensions.get(req.headers.get("Lambda-Extension-Identifier") or "")
        if ext is None:
            return _reply(req, 403, _error_payload("Extension.Forbidden", "unknown Lambda-Extension-Identifier"))
        if method != "PUT":
            return _reply(req, 404, b"{}")

        def bad(message: str) -> None:
            return _reply(req, 400, _error_payload("ValidationError", message))

        try:
            doc = json.loads(body or b"null")
        except ValueError:
            return bad("the body must be JSON")
        if not isinstance(doc, dict):
            return bad("the body must be a JSON object")
        if doc.get("schemaVersion") not in TELEMETRY_SCHEMAS:
            return bad(f"schemaVersion must be one of {', '.join(TELEMETRY_SCHEMAS)}")
        types = doc.get("types")
        if not isinstance(types, list) or not types or any(t not in TELEMETRY_TYPES for t in types):
            return bad(f"types must be a non-empty array of {', '.join(TELEMETRY_TYPES)}")
        buffering = {}
        given = doc.get("buffering") or {}
        if not isinstance(given, dict):
            return bad("buffering must be an object")
        for key, (low, high, default) in TELEMETRY_BUFFERING.items():
            value = given.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                return bad(f"buffering.{key} must be an integer from {low} to {high}, got {value!r}")
            buffering[key] = value
        dest = doc.get("destination")
        if not isinstance(dest, dict) or dest.get("protocol") not in ("HTTP", "TCP") or not isinstance(dest.get("URI"), str):
            return bad('destination must be {"protocol": "HTTP"|"TCP", "URI": ...}')
        if dest["protocol"] != "HTTP":
            return bad("the local cloud delivers telemetry over HTTP only (TCP is not modelled)")
        uri = urlsplit(dest["URI"])
        # "Lambda sends telemetry only to destinations that are inside the execution environment";
        # "Lambda supports only HTTP, not HTTPS"; "Lambda reserves port 9001"
        if uri.scheme != "http" or uri.hostname != SANDBOX_HOST or not uri.port or uri.port == 9001:
            return bad(f"destination.URI must be http://{SANDBOX_HOST}:<port>[/path] (not port 9001), got {dest['URI']!r}")
        env.subscriptions.append(_Subscription(ext.name, types, buffering, dest["URI"]))
        return _reply(req, 200, b'"OK"')


def _error_type(body: bytes, headers) -> str:
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and doc.get("errorType"):
            return str(doc["errorType"])
    except ValueError:
        pass
    return headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled"


def _reply(req: BaseHTTPRequestHandler, status: int, body: bytes, headers: Optional[dict] = None) -> None:
    try:
        req.send_response(status)
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
    except OSError:
        pass
