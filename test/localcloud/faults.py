"""Faults at the AWS boundary: a WSGI layer between the Lambda environments and moto.

Every execution environment the runtime host starts gets its own access key
(``runtime.environment_access_key``), so each signed request names the environment that made it
(SigV4's ``Credential=<key>/<date>/<region>/<service>/aws4_request``). ``FaultLayer`` reads that,
the service (from the credential scope) and the operation (``X-Amz-Target``, the RPC v2 CBOR path,
the Lambda REST path or a query ``Action``), and asks the active ``FaultPlan`` whether to answer
this call with a fault instead of moto:

- ``throttle``: the service's own throttling error (SQS ``RequestThrottled``, Lambda 429
  ``TooManyRequestsException``, CloudWatch ``Throttling``, the others ``ThrottlingException``), in
  the protocol the caller speaks, so the SDK classifies it as AWS's would be;
- ``5xx``: HTTP 500 with the service's internal-error code;
- ``timeout``: the request is held ``delay_s`` (longer than the SDK's attempt timeout), then
  performed: the caller has given up, the effect still happens (a slow AWS answer);
- ``kill``: the calling environment's process is killed with SIGKILL before the call reaches moto,
  or (``at="response"``) after moto performed it, before the caller reads the answer (the
  invocation fails with ``Runtime.ExitError``, as Lambda reports a crashed runtime).

A rule can wait for another operation of the same invocation (``after``): "kill at the first
DeleteMessageBatch after a SendMessageBatch" is a crash between sending re-jittered copies and
deleting their originals. Calls from the glue itself (boto3 with the plain test key) and from
environments the plan does not target (the consumer) pass untouched. Every injected fault is
recorded in ``FaultPlan.injected`` with its time, environment, handler, service and operation.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import parse_qs

import cbor2

KINDS = ("throttle", "5xx", "timeout", "kill")

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/aws4_request")
_CBOR_PREFIX = "/service/GraniteServiceVersion20100801/operation/"

# Lambda REST-JSON routes the breaker uses: (method, path pattern) -> operation
_LAMBDA_ROUTES = [
    ("GET", re.compile(r"^/2015-03-31/event-source-mappings/[^/]+$"), "GetEventSourceMapping"),
    ("PUT", re.compile(r"^/2015-03-31/event-source-mappings/[^/]+$"), "UpdateEventSourceMapping"),
    ("GET", re.compile(r"^/2015-03-31/event-source-mappings/?$"), "ListEventSourceMappings"),
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/invocations$"), "Invoke"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/configuration$"), "GetFunctionConfiguration"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+$"), "GetFunction"),
]

_THROTTLE_CODES = {"sqs": "RequestThrottled", "lambda": "TooManyRequestsException", "monitoring": "Throttling"}
_INTERNAL_CODES = {"sqs": "InternalFailure", "lambda": "ServiceException", "monitoring": "InternalServiceError",
                   "dynamodb": "InternalServerError", "states": "InternalFailure", "events": "InternalException"}


@dataclass(frozen=True)
class Call:
    """One request to moto, as the fault layer sees it."""

    env_id: Optional[str]  # the environment that signed it; None for the glue and the tests
    service: str  # SigV4 service name: sqs, lambda, monitoring, states, events, dynamodb, ssm, ...
    operation: str
    protocol: str  # json (X-Amz-Target), cbor, rest (Lambda), query


@dataclass
class Rule:
    """Inject ``kind`` into matching calls, at most ``times`` times, while ``active`` (the plan's
    clock is wall time). ``handlers``: the breaker handler names it applies to (empty: every
    targeted environment). ``service``/``operation``: None matches any. ``after``: the operation
    must follow this one in the same invocation."""

    kind: str
    service: Optional[str] = None
    operation: Optional[str] = None
    handlers: tuple[str, ...] = ()
    times: int = 1
    after: Optional[str] = None
    delay_s: float = 12.0
    at: str = "request"  # kill: before the call reaches moto ("request") or after it took effect ("response")
    active_from: float = 0.0
    active_until: float = float("inf")
    label: str = ""
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, got {self.kind!r}")
        if self.at not in ("request", "response"):
            raise ValueError(f"a kill happens at the request or the response, got {self.at!r}")

    def matches(self, call: Call, handler: str, seen: list[str], now: float) -> bool:
        if self.fired >= self.times or not (self.active_from <= now < self.active_until):
            return False
        if self.handlers and handler not in self.handlers:
            return False
        if self.service is not None and call.service != self.service:
            return False
        if self.operation is not None and call.operation != self.operation:
            return False
        return self.after is None or self.after in seen


@dataclass
class FaultPlan:
    """The faults to inject and a record of those injected. ``targets(handler, function_name)``
    says which environments' calls may be faulted (by default every environment)."""

    rules: list[Rule] = field(default_factory=list)
    targets: Callable[[str, str], bool] = lambda handler, function_name: True
    injected: list[dict] = field(default_factory=list)
    calls: dict = field(default_factory=dict)  # "handler service.Operation" -> calls seen from targeted environments
    lock: threading.Lock = field(default_factory=threading.Lock)

    def choose(self, call: Call, handler: str, function_name: str, seen: list[str]) -> Optional[Rule]:
        if not self.targets(handler, function_name):
            return None
        now = time.time()
        with self.lock:
            key = f"{handler} {call.service}.{call.operation}"
            self.calls[key] = self.calls.get(key, 0) + 1
            for rule in self.rules:
                if rule.matches(call, handler, seen, now):
                    rule.fired += 1
                    self.injected.append({
                        "at": now, "kind": rule.kind, "handler": handler, "function": function_name,
                        "service": call.service, "operation": call.operation, "env": call.env_id,
                        "label": rule.label,
                    })
                    return rule
        return None


def identify(environ: dict, body: bytes) -> Call:
    """Which environment made this request, to which service and operation."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _CREDENTIAL.search(auth)
    key, service = (m.group(1), m.group(2)) if m else ("", "")
    env_id = key[len(ENV_KEY_PREFIX):] if key.startswith(ENV_KEY_PREFIX) else None
    path = environ.get("PATH_INFO", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return Call(env_id, service, target.rsplit(".", 1)[-1], "json")
    if path.startswith(_CBOR_PREFIX):
        return Call(env_id, service, path[len(_CBOR_PREFIX):], "cbor")
    method = environ.get("REQUEST_METHOD", "GET")
    for verb, pattern, operation in _LAMBDA_ROUTES:
        if verb == method and pattern.match(path):
            return Call(env_id, service or "lambda", operation, "rest")
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action") or parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return Call(env_id, service, action[0], "query")
    return Call(env_id, service, f"{method} {path}", "rest")


ENV_KEY_PREFIX = "LOCALENV"


def error_response(call: Call, kind: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The answer AWS gives for a throttled or failed call, in the caller's protocol."""
    if kind == "throttle":
        code = _THROTTLE_CODES.get(call.service, "ThrottlingException")
        status = "429 Too Many Requests" if call.protocol == "rest" else "400 Bad Request"
        message = "Rate exceeded"
    else:
        code = _INTERNAL_CODES.get(call.service, "InternalFailure")
        status, message = "500 Internal Server Error", "We encountered an internal error. Please try again."
    if call.protocol == "cbor":
        body = cbor2.dumps({"__type": code, "message": message})
        return status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], body
    if call.protocol == "query":
        body = (f"<ErrorResponse><Error><Type>{'Sender' if kind == 'throttle' else 'Receiver'}</Type>"
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()
        return status, [("Content-Type", "text/xml")], body
    doc = {"__type": code, "message": message}
    if call.protocol == "rest":
        doc = {"Type": "Service" if kind != "throttle" else "User", "message": message}
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-errortype", code)]
    if call.service == "sqs":  # SQS's JSON protocol also names the query-compatible code
        headers.append(("x-amzn-query-error", f"{code};{'Sender' if kind == 'throttle' else 'Receiver'}"))
    return status, headers, json.dumps(doc).encode()


class FaultLayer:
    """WSGI middleware: answers a call with a fault when the active plan says so.

    ``environment(env_id)`` returns ``(handler, function_name, invocation_id)`` for a live
    environment (or None); ``kill(env_id)`` kills its process."""

    def __init__(self, app: Callable, environment: Callable[[str], Optional[tuple[str, str, str]]],
                 kill: Callable[[str], None]):
        self.app = app
        self.environment = environment
        self.kill = kill
        self.plan: Optional[FaultPlan] = None
        self._seen: dict[tuple[str, str], list[str]] = {}  # (env, invocation) -> operations, in order
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        plan = self.plan
        if plan is None or "HTTP_AUTHORIZATION" not in environ:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        call = identify(environ, body)
        who = self.environment(call.env_id) if call.env_id else None
        if who is None:
            return self.app(environ, start_response)
        handler, function_name, invocation = who
        with self._lock:
            seen = self._seen.setdefault((call.env_id, invocation), [])
            before = list(seen)
            seen.append(call.operation)
        rule = plan.choose(call, handler, function_name, before)
        if rule is None:
            return self.app(environ, start_response)
        if rule.kind == "kill" and rule.at == "response":
            answer = self.app(environ, start_response)  # the call takes effect ...
            body = b"".join(answer)
            self.kill(call.env_id)  # ... and the caller dies before it reads the answer
            return [body]
        if rule.kind == "kill":
            self.kill(call.env_id)
            status, headers, payload = error_response(call, "5xx")
        elif rule.kind == "timeout":
            time.sleep(rule.delay_s)
            return self.app(environ, start_response)
        else:
            status, headers, payload = error_response(call, rule.kind)
        start_response(status, headers + [("Content-Length", str(len(payload)))])
        return [payload]
