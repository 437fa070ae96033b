"""Lambda runtime-API host: runs real `bootstrap` executables as Lambda execution environments.

One HTTP server serves the Lambda Runtime API for every environment; each environment (one
process) gets its own path prefix, e.g. ``AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT/env/7``
(the Rust runtime keeps a base path). An environment handles one invocation at a time, like
Lambda. Per function the host keeps at most ``concurrency`` environments; an invoke beyond that
is throttled. An invocation that outlives the function timeout kills its environment and fails
with ``Sandbox.Timedout``. Every invocation publishes ``AWS/Lambda`` Invocations, Errors,
Duration (and Throttles) through the ``metrics`` callback.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

log = logging.getLogger("localcloud.runtime")

API = "/2018-06-01/runtime"


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

    def finish(self, response: bytes, error_type: Optional[str] = None) -> None:
        if not self.done.is_set():
            self.response, self.error_type = response, error_type
            self.done.set()


class _Environment:
    def __init__(self, env_id: str, spec: FunctionSpec):
        self.id = env_id
        self.spec = spec
        self.inbox: "queue.Queue[_Invocation]" = queue.Queue()
        self.current: Optional[_Invocation] = None
        self.busy = False
        self.dead = False
        self.proc: Optional[subprocess.Popen] = None

    def kill(self) -> None:
        self.dead = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


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
    ):
        self.base_env = dict(base_env)
        self.metrics = metrics
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self._envs: dict[str, _Environment] = {}
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
            env.kill()
            if env.current:
                env.current.finish(_error_payload("Runtime.Shutdown", "host stopped"), "Runtime.Shutdown")
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
        )
        env.current = inv
        env.inbox.put(inv)
        if not inv.done.wait(spec.timeout_s):
            inv.finish(
                _error_payload("Sandbox.Timedout", f"Task timed out after {spec.timeout_s:.2f} seconds"),
                "Sandbox.Timedout",
            )
            self._retire(env)
        duration_ms = (time.monotonic() - started) * 1000
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

    def _acquire(self, spec: FunctionSpec) -> Optional[_Environment]:
        with self._lock:
            mine = [e for e in self._envs.values() if e.spec.name == spec.name and not e.dead]
            for e in mine:  # retire environments of an older configuration when idle
                if e.spec != spec and not e.busy:
                    self._envs.pop(e.id, None)
                    threading.Thread(target=e.kill, daemon=True).start()
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
        try:
            self._spawn(env)
        except OSError as err:
            log.error("cannot start %s: %s", spec.command, err)
            with self._lock:
                self._envs.pop(env.id, None)
            raise
        return env

    def _spawn(self, env: _Environment) -> None:
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
        out = subprocess.DEVNULL
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            out = open(os.path.join(self.log_dir, f"{spec.name}.log"), "ab")  # noqa: SIM115
        env.proc = subprocess.Popen(
            list(spec.command), env=variables, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        threading.Thread(target=self._watch, args=(env,), daemon=True).start()

    def _watch(self, env: _Environment) -> None:
        assert env.proc is not None
        code = env.proc.wait()
        env.dead = True
        with self._lock:
            self._envs.pop(env.id, None)
        if env.current and not env.current.done.is_set():
            env.current.finish(
                _error_payload("Runtime.ExitError", f"Runtime exited with error: exit status {code}"),
                "Runtime.ExitError",
            )

    def _retire(self, env: _Environment) -> None:
        with self._lock:
            self._envs.pop(env.id, None)
        env.kill()

    def _publish(self, function_name: str, datums: list[tuple[str, float, str]], resource: Optional[str] = None) -> None:
        if self.metrics:
            try:
                if resource is None:
                    self.metrics(function_name, datums)
                else:
                    self.metrics(function_name, datums, resource)
            except Exception:  # metrics must never break an invocation
                log.exception("publishing metrics failed")

    # -- the Runtime API -------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parts = req.path.split("/", 3)  # ['', 'env', '<id>', 'rest']
        env = self._envs.get(parts[2]) if len(parts) == 4 and parts[1] == "env" else None
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        if env is None:
            return _reply(req, 404, b'{"errorType":"UnknownEnvironment"}')
        path = "/" + parts[3]
        if method == "GET" and path == f"{API}/invocation/next":
            while True:
                try:
                    inv = env.inbox.get(timeout=1)
                    break
                except queue.Empty:
                    if env.dead:
                        return _reply(req, 410, b"{}")
            headers = {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": env.spec.arn,
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
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
