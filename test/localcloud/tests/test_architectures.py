"""The local cloud runs the binaries the construct ships (aarch64 ELFs, under qemu-user on an
x86_64 host) and is as strict as Lambda about architectures: a function whose ``Architectures``
is not its binary's machine fails Init with ``Runtime.InvalidEntrypoint`` (``fork/exec
/var/task/bootstrap: exec format error``), an extension of the other architecture with
``Extension.LaunchError``; a missing qemu is an error naming ``bash .ci/setup``."""
import io
import json
import os
import re
import zipfile

import pytest

from localcloud import cloud as cloud_module
from localcloud.cloud import LocalCloud
from localcloud.scenario import ASSETS, EXTENSION_X86_64

from .test_cloud import FAKE, ROLE, zip_of

CONSUMER = ASSETS["example-consumer"]  # arm64


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud")), alarm_tick_s=3600).start()
    c.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    c.client("ssm").put_parameter(Name="/orders/flag", Value="ok", Type="String")
    yield c
    c.stop()


def bootstrap_zip(path: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, open(path, "rb") as f:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, f.read())
    return buf.getvalue()


def consumer(cloud, name: str, architecture: str, layers=()) -> None:
    cloud.client("lambda").create_function(
        FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap", Timeout=10,
        Code={"ZipFile": bootstrap_zip(CONSUMER)}, Architectures=[architecture], Layers=list(layers),
        Environment={"Variables": {"FLAG_PARAMETER_NAME": "/orders/flag"}})


def invoke(cloud, name: str, payload: dict) -> tuple[dict, dict]:
    resp = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return resp, json.loads(resp["Payload"].read())


def test_an_arm64_function_answers_with_the_shipped_bootstrap(cloud):
    consumer(cloud, "arm64-consumer", "arm64")
    resp, body = invoke(cloud, "arm64-consumer", {"Records": []})
    assert "FunctionError" not in resp, body
    assert body == {"batchItemFailures": []}
    fn = cloud.lambda_backend().get_function("arm64-consumer")
    if os.uname().machine == "x86_64":
        assert cloud.command_for(fn)[1:3] == ("-L", "/usr/aarch64-linux-gnu")
        assert cloud.command_for(fn)[0].endswith("qemu-aarch64")


def test_a_function_declared_x86_64_with_an_arm64_bootstrap_fails_init_like_lambda(cloud):
    consumer(cloud, "x86-consumer", "x86_64")
    for _ in range(2):  # every invocation tries Init again, and fails again
        resp, body = invoke(cloud, "x86-consumer", {"Records": []})
        assert resp["FunctionError"] == "Unhandled"
        assert body["errorType"] == "Runtime.InvalidEntrypoint"
        assert re.fullmatch(r"RequestId: [0-9a-f-]{36} Error: fork/exec /var/task/bootstrap: exec format error",
                            body["errorMessage"]), body


def test_an_x86_64_extension_in_an_arm64_function_fails_init_with_extension_launch_error(cloud):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, open(EXTENSION_X86_64, "rb") as f:
        z.writestr("extensions/sqs-circuit-breaker-telemetry", f.read())
    lam = cloud.client("lambda")
    layer = lam.publish_layer_version(LayerName="x86-telemetry", Content={"ZipFile": buf.getvalue()},
                                      CompatibleArchitectures=["x86_64"])
    lam.create_function(FunctionName="mixed", Runtime="provided.al2023", Role=ROLE, Handler="echo",
                        Code={"ZipFile": zip_of(FAKE)}, Timeout=5, Layers=[layer["LayerVersionArn"]],
                        Architectures=["arm64"])  # the function is a script: it would run on either
    resp, body = invoke(cloud, "mixed", {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Extension.LaunchError"
    assert body["errorMessage"].endswith("Error: fork/exec /opt/extensions/sqs-circuit-breaker-telemetry: exec format error")


def test_without_qemu_the_error_names_the_setup_script(monkeypatch):
    monkeypatch.setattr(cloud_module.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"qemu-aarch64 -L /usr/aarch64-linux-gnu.*run `bash \.ci/setup`"):
        cloud_module.emulator("aarch64")
