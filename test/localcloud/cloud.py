"""The local cloud: moto server in-process on 127.0.0.1 plus the glue that makes the loop run.

    with LocalCloud().start() as cloud:
        sqs = cloud.client("sqs")

Parts: moto (patched, see patches.py and cfn.py; CloudWatch also in RPC v2 CBOR, see cbor.py), the Lambda runtime host (runtime.py, with
the extensions of a function's layers), the ESM poller (esm.py), the alarm evaluator (alarms.py) and EMF extraction from
function and extension output (emf.py). One LocalCloud at a time per process (moto's backends
and the patches are process-wide); each starts from an empty account.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timezone
from typing import Optional

import boto3
import requests
from botocore.config import Config

from . import cfn, emf, patches, stalls
from .cbor import CborBridge
from .alarms import AlarmEvaluator
from .esm import EsmPoller
from .faults import FaultLayer, FaultPlan
from .runtime import FunctionSpec, InvokeResult, LaunchError, RuntimeHost
from .servicemetrics import ServiceMetrics

log = logging.getLogger("localcloud")

ACCOUNT = "123456789012"
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}  # e_machine -> machine (os.uname().machine)
LAMBDA_ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "arm64"}  # machine -> Lambda's Architectures name
# qemu-user (Debian's qemu-user and libc6-<arch>-cross, installed by .ci/setup) runs a function's
# ELF of the other architecture: machine -> (emulator, the guest's library root for -L)
EMULATORS = {"aarch64": ("qemu-aarch64", "/usr/aarch64-linux-gnu"), "x86_64": ("qemu-x86_64", "/usr/x86_64-linux-gnu")}


def emulator(machine: str) -> tuple[str, ...]:
    """The command prefix that runs an ELF for ``machine`` on this host, e.g. ``qemu-aarch64 -L
    /usr/aarch64-linux-gnu``; a clear error naming the fix when it is not installed."""
    if machine not in EMULATORS:
        raise RuntimeError(f"no emulator known for {machine} executables on this {os.uname().machine} host")
    name, sysroot = EMULATORS[machine]
    qemu = shutil.which(name)
    if qemu is None or not os.path.isdir(os.path.join(sysroot, "lib")):
        raise RuntimeError(
            f"the local cloud runs {machine} Lambda binaries under {name} -L {sysroot}, which is not installed "
            f"here ({'missing ' + sysroot if qemu else name + ' not on PATH'}): run `bash .ci/setup` "
            f"(it installs Debian's qemu-user and the {machine} C library)")
    return (qemu, "-L", sysroot)


def _elf_machine(data: bytes) -> Optional[str]:
    """The machine an ELF executable is for (``x86_64``, ``aarch64``, or ``e_machine 0x..`` for
    another one); None when ``data`` is not an ELF (a script)."""
    if data[:4] != b"\x7fELF":
        return None
    code = int.from_bytes(data[18:20], "little")
    return ELF_MACHINES.get(code, f"e_machine {code:#x}")


def _architecture(fn) -> str:
    """The function's declared instruction set (``Architectures``; Lambda's default ``x86_64``)."""
    return (getattr(fn, "architectures", None) or ["x86_64"])[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def logging_variables(fn) -> dict[str, str]:
    """What Lambda sets from the function's ``LoggingConfig`` (Lambda developer guide, "Configuring
    advanced logging controls"): ``AWS_LAMBDA_LOG_FORMAT`` (``JSON`` or ``Text``, default
    ``Text``) and, with the JSON format, ``AWS_LAMBDA_LOG_LEVEL`` (``ApplicationLogLevel``,
    default ``INFO``): runtimes read both to format and filter their lines."""
    config = getattr(fn, "logging_config", None) or {}
    log_format = str(config.get("LogFormat") or "Text")
    out = {"AWS_LAMBDA_LOG_FORMAT": log_format}
    if log_format.upper() == "JSON":
        out["AWS_LAMBDA_LOG_LEVEL"] = str(config.get("ApplicationLogLevel") or "INFO")
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalCloud:
    """moto + glue, bound to 127.0.0.1. Deployed functions and extensions run as they are (the
    other architecture's ELF under qemu-user, see ``_launch``); ``binaries`` maps a Lambda asset
    file to a host executable that runs in its place (debugging a host build)."""

    def __init__(
        self,
        port: int = 0,
        region: str = "us-east-1",
        binaries: Optional[dict[str, str]] = None,
        default_concurrency: int = 10,
        work_dir: Optional[str] = None,
        alarm_tick_s: float = 1.0,
        esm_poll_s: float = 0.5,
        extension_port_variables: tuple[str, ...] = ("SQS_CIRCUIT_BREAKER_TELEMETRY_PORT",),
    ):
        self.port = port or free_port()
        self.region = region
        self.default_concurrency = default_concurrency
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="localcloud-")
        self._binaries: dict[str, str] = {}
        for asset, host_binary in (binaries or {}).items():
            self.add_binary(asset, host_binary)
        # each environment's extensions get their own telemetry listener port through these
        # variables (the breaker's extension reads SQS_CIRCUIT_BREAKER_TELEMETRY_PORT; see runtime.py)
        self.extension_port_variables = tuple(extension_port_variables)
        self._layer_extensions: dict[str, dict[str, tuple[bytes, str]]] = {}  # layer version ARN -> name -> (content, sha256)
        self._extract_lock = threading.Lock()
        self._server = None
        self._metrics: "queue.Queue[tuple[str, dict]]" = queue.Queue()  # (namespace, MetricDatum)
        self.emf_rejected: list[tuple[str, str]] = []  # (function, why) of EMF documents refused
        self._stopping = threading.Event()
        self.host: Optional[RuntimeHost] = None
        self.faults: Optional[FaultLayer] = None  # set by start()
        self.esm = EsmPoller(self, poll_s=esm_poll_s)
        self.alarms = AlarmEvaluator(self, tick_s=alarm_tick_s)
        self.service_metrics = ServiceMetrics(self, tick_s=5.0)  # AWS/SQS and AWS/States metrics

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "LocalCloud":
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        # AWS managed policies exist, so roles can attach them (ManagedPolicyArns)
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        stalls.CLOCK.start()  # deadlines leave out the time the machine is stopped from here on
        patches.apply()
        cfn.apply()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        os.environ["MOTO_PORT"] = str(self.port)  # the Step Functions interpreter calls back here
        app = CborBridge(DomainDispatcherApplication(create_backend_app), self.url, self.region)
        self.faults = FaultLayer(app, self._environment_info, self._kill_environment)
        app = self.faults
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="moto").start()
        # moto's backends are process-wide: a new local cloud starts from an empty account
        requests.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()
        requests.post(
            f"{self.url}/moto-api/config",
            json={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()
        self.host = RuntimeHost(self.lambda_base_env(), metrics=self._queue_metrics,
                                log_dir=os.path.join(self.work_dir, "logs"), log_line=self._log_line,
                                extension_port_variables=self.extension_port_variables).start()
        patches.set_invoker(self.invoke_function)
        threading.Thread(target=self._publish_metrics, daemon=True, name="metrics").start()
        self.esm.start()
        self.alarms.start()
        self.service_metrics.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.esm.stop()
        self.alarms.stop()
        self.service_metrics.stop()
        patches.set_invoker(None)
        if self.host:
            self.host.stop()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- faults ----------------------------------------------------------------------------
    def set_fault_plan(self, plan: Optional[FaultPlan]) -> None:
        """Inject ``plan``'s faults into the calls Lambda environments make (None: no faults)."""
        assert self.faults is not None, "start the local cloud first"
        self.faults.plan = plan

    def _environment_info(self, env_id: str):
        return self.host.environment_info(env_id) if self.host else None

    def _kill_environment(self, env_id: str) -> None:
        if self.host:
            self.host.kill_environment(env_id)

    def __enter__(self) -> "LocalCloud":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- endpoints and clients -------------------------------------------------------------
    @property
    def url(self) -> str:
        """Endpoint for SDKs and the CDK CLI (``localhost``: moto derives S3 buckets from it)."""
        return f"http://localhost:{self.port}"

    def client_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def lambda_base_env(self) -> dict[str, str]:
        env = self.client_env()
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        env["AWS_SESSION_TOKEN"] = "testing"
        env["RUST_BACKTRACE"] = "1"
        return env

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120),
        )

    # -- functions -------------------------------------------------------------------------
    def add_binary(self, asset_path: str, host_binary: str) -> None:
        """Run ``host_binary`` wherever ``asset_path``'s content is deployed (debugging a host build)."""
        with open(asset_path, "rb") as f:
            self._binaries[_sha256(f.read())] = os.path.abspath(host_binary)

    def command_for(self, fn) -> tuple[str, ...]:
        """The host command running a deployed function's ``bootstrap`` (see ``_launch``); raises
        ``LaunchError`` when Lambda could not start it."""
        with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as z:
            data = z.read("bootstrap")
        digest = _sha256(data)
        path = os.path.join(self.work_dir, "code", digest[:16], "bootstrap")
        return self._launch(data, digest, path, "/var/task/bootstrap", _architecture(fn))

    def _launch(self, data: bytes, digest: str, path: str, lambda_path: str, architecture: str) -> tuple[str, ...]:
        """The one place a deployed executable (a function's ``bootstrap``, a layer's extension)
        becomes a host command. Like Lambda, an ELF whose machine is not the function's declared
        architecture does not start: ``LaunchError`` with Lambda's ``fork/exec <path>: exec format
        error``. Otherwise: its registered host binary (``add_binary``; a symlink named like the
        file, so an extension registers under its own name); a script or a native ELF as it is; an
        ELF of the other architecture under qemu-user (``qemu-aarch64 -L /usr/aarch64-linux-gnu``
        on x86_64), so the local cloud runs the very binaries the construct ships."""
        machine = _elf_machine(data)
        if machine is not None and LAMBDA_ARCHITECTURES.get(machine) != architecture:
            raise LaunchError(f"fork/exec {lambda_path}: exec format error")
        if digest in self._binaries:
            host_binary = self._binaries[digest]
            if os.path.basename(path) == os.path.basename(host_binary):
                return (host_binary,)
            link = os.path.join(self.work_dir, "bin", digest[:16], os.path.basename(path))
            with self._extract_lock:
                if not os.path.lexists(link):
                    os.makedirs(os.path.dirname(link), exist_ok=True)
                    os.symlink(host_binary, link)
            return (link,)
        with self._extract_lock:
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".tmp", "wb") as f:
                    f.write(data)
                os.chmod(path + ".tmp", 0o755)
                os.replace(path + ".tmp", path)
        if machine is None or machine == os.uname().machine:
            return (path,)
        return (*emulator(machine), path)

    def extensions_for(self, fn) -> tuple[tuple[str, bytes, str], ...]:
        """The external extensions of a function's layers: every file in a layer's ``extensions/``
        (a layer zip's ``extensions/<name>`` is ``/opt/extensions/<name>`` on Lambda), in layer
        order, with its content and the content's sha256."""
        from moto.awslambda.utils import get_backend

        backend = get_backend(ACCOUNT, self.region)
        out: dict[str, tuple[bytes, str]] = {}
        for layer in fn.layers or []:
            cached = self._layer_extensions.get(layer["Arn"])  # a layer version never changes
            if cached is not None:
                out.update(cached)
                continue
            found: dict[str, tuple[bytes, str]] = {}
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is None or not version.code_bytes:
                raise RuntimeError(f"function {fn.function_name}: layer {layer['Arn']} has no content")
            with zipfile.ZipFile(io.BytesIO(version.code_bytes)) as z:
                for info in z.infolist():
                    parts = info.filename.split("/")
                    if len(parts) != 2 or parts[0] != "extensions" or not parts[1] or info.is_dir():
                        continue
                    data = z.read(info)
                    found[parts[1]] = (data, _sha256(data))
            self._layer_extensions[layer["Arn"]] = found
            out.update(found)  # a later layer's file of the same name replaces an earlier one, as in /opt
        return tuple((name, data, digest) for name, (data, digest) in out.items())

    def function_spec(self, fn) -> FunctionSpec:
        concurrency = int(fn.reserved_concurrency or self.default_concurrency)
        launch_errors: list[tuple[str, str]] = []
        try:
            command = self.command_for(fn)
        except LaunchError as err:
            command = ()
            launch_errors.append(("function", str(err)))
        extensions = []
        for name, data, digest in self.extensions_for(fn):
            path = os.path.join(self.work_dir, "layers", digest[:16], "extensions", name)
            try:
                extensions.append((name, self._launch(data, digest, path, f"/opt/extensions/{name}", _architecture(fn))))
            except LaunchError as err:
                extensions.append((name, ()))
                launch_errors.append((name, str(err)))
        return FunctionSpec(
            name=fn.function_name,
            arn=fn.function_arn,
            command=command,
            handler=fn.handler or "bootstrap",
            env=tuple(sorted({**(fn.environment_vars or {}), **logging_variables(fn)}.items())),
            timeout_s=float(fn.timeout or 3),
            memory_mb=int(fn.memory_size or 128),
            concurrency=max(1, concurrency),
            extensions=tuple(extensions),
            launch_errors=tuple(launch_errors),
        )

    def lambda_backend(self):
        from moto.awslambda.utils import get_backend

        return get_backend(ACCOUNT, self.region)

    def invoke_function(self, fn, payload: bytes, resource: Optional[str] = None) -> InvokeResult:
        """Invoke ``fn`` (a moto function or version); ``resource`` is ``<fn>:<qualifier>`` when
        the caller named an alias or a version (see ``patches.invoked_resource``)."""
        assert self.host is not None
        return self.host.invoke(self.function_spec(fn), payload, resource)

    def invoke_by_arn(self, function_arn: str, payload: bytes) -> InvokeResult:
        """Invoke the function, version or alias ``function_arn`` names (an ESM's FunctionArn)."""
        fn = self.lambda_backend().get_function(function_arn)
        return self.invoke_function(fn, payload, patches.invoked_resource(fn, function_arn, None))

    # -- metrics ---------------------------------------------------------------------------
    def _queue_metrics(self, function_name: str, datums: list, resource: Optional[str] = None) -> None:
        """Lambda's own metrics: 1-minute (standard resolution) data, as Lambda publishes them
        ("Lambda sends metric data to CloudWatch in 1-minute intervals", Lambda developer guide,
        "Using CloudWatch metrics with Lambda"). Lambda publishes every invocation under
        FunctionName, and an alias's or a version's also under FunctionName + Resource
        (<fn>:<qualifier>): two metrics, each counted once."""
        at = datetime.now(timezone.utc)
        for dimensions in _dimension_sets(function_name, resource):
            for name, value, unit in datums:
                self._metrics.put(("AWS/Lambda", {
                    "MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": float(value),
                    "Unit": unit, "StorageResolution": 60,
                }))

    def _log_line(self, function_name: str, source: str, line: bytes) -> None:
        """A function's or an extension's log line: an EMF document in it becomes metric data."""
        doc = emf.document(line)
        if doc is None:
            return
        try:
            data = emf.metric_data(doc)
        except emf.EmfError as err:
            log.warning("%s (%s): EMF document rejected, no metrics extracted: %s", function_name, source, err)
            self.emf_rejected.append((function_name, str(err)))
            return
        for item in data:
            self._metrics.put(item)

    def _publish_metrics(self) -> None:
        cw = self.client("cloudwatch")
        while not self._stopping.is_set():
            try:
                batch = [self._metrics.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < 100:
                try:
                    batch.append(self._metrics.get_nowait())
                except queue.Empty:
                    break
            by_namespace: dict[str, list[dict]] = {}
            for namespace, datum in batch:
                by_namespace.setdefault(namespace, []).append(datum)
            for namespace, data in by_namespace.items():
                for i in range(0, len(data), 500):
                    try:
                        cw.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])
                    except Exception:
                        log.exception("put_metric_data failed")


def _dimension_sets(function_name: str, resource: Optional[str]) -> list[list[dict]]:
    """The dimension sets Lambda publishes an invocation under."""
    plain = [{"Name": "FunctionName", "Value": function_name}]
    if resource is None:
        return [plain]
    return [plain, plain + [{"Name": "Resource", "Value": resource}]]


def main() -> None:  # pragma: no cover - manual use: python -m localcloud.cloud
    logging.basicConfig(level=logging.INFO)
    cloud = LocalCloud(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(f"local cloud on {cloud.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cloud.stop()
        shutil.rmtree(cloud.work_dir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    main()
