"""The real CDK CLI (from example-stack's devDependencies) bootstraps and deploys into the local
cloud, and a second deploy updates the stack; every patched resource checks out through its API."""
import json
import os
import shutil
import subprocess
import time

import pytest

from localcloud.cloud import LocalCloud

HERE = os.path.dirname(__file__)
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CDK = os.path.join(ROOT, "node_modules", ".bin", "cdk")
APP = os.path.join(HERE, "fixtures", "cdkapp")

pytestmark = pytest.mark.skipif(not os.path.exists(CDK), reason="npm ci has not installed the CDK CLI")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud"))).start()
    yield c
    c.stop()


def cdk(cloud, args, cwd, tmp):
    env = dict(os.environ, **cloud.client_env(), CDK_DISABLE_CLI_TELEMETRY="true")
    env["PATH"] = os.path.join(ROOT, "node_modules", "node", "bin") + os.pathsep + env["PATH"]
    started = time.time()
    out = subprocess.run([CDK, *args, "--no-notices", "--no-color"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    return time.time() - started


def outputs(cloud):
    stack = cloud.client("cloudformation").describe_stacks(StackName="LocalCloudFixture")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_bootstrap_deploy_and_update_with_the_real_cli(cloud, tmp_path):
    asset = tmp_path / "asset"
    asset.mkdir()
    shutil.copy(os.path.join(HERE, "fixtures", "fake_lambda.py"), asset / "bootstrap")
    timings = {"bootstrap": cdk(cloud, ["bootstrap", "aws://123456789012/us-east-1"], str(tmp_path), tmp_path)}
    deploy = ["deploy", "--require-approval", "never", "-c", f"assetDir={asset}", "-o", str(tmp_path / "out")]
    timings["deploy"] = cdk(cloud, [*deploy, "-c", "version=1"], APP, tmp_path)
    first = outputs(cloud)
    assert first["Version"] == "1"
    alarm = cloud.client("cloudwatch").describe_alarms(AlarmNames=[first["AlarmName"]])["MetricAlarms"][0]
    assert alarm["AlarmArn"] == first["AlarmArn"]
    assert {m["Id"] for m in alarm["Metrics"]} >= {"errors", "invocations"}
    assert any("IF(invocations" in m.get("Expression", "") for m in alarm["Metrics"])
    assert alarm["TreatMissingData"] == "ignore" and int(alarm["DatapointsToAlarm"]) == 1
    fn = cloud.client("lambda").get_function_configuration(FunctionName=first["FunctionName"])
    assert fn["Architectures"] == ["arm64"]
    attached = cloud.client("iam").list_attached_role_policies(RoleName=first["RoleName"])["AttachedPolicies"]
    assert any(p["PolicyName"] == "AWSLambdaBasicExecutionRole" for p in attached)
    sm = cloud.client("stepfunctions").describe_state_machine(stateMachineArn=first["MachineArn"])
    assert sm["loggingConfiguration"]["level"] == "ALL"
    assert sm["tracingConfiguration"]["enabled"] is True
    esm = cloud.client("lambda").list_event_source_mappings(FunctionName=first["FunctionName"])["EventSourceMappings"][0]
    assert esm["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    timings["update"] = cdk(cloud, [*deploy, "-c", "version=2"], APP, tmp_path)
    second = outputs(cloud)
    assert second["Version"] == "2"
    assert second["ParamName"] == first["ParamName"], "an update keeps the parameter's generated name"
    assert cloud.client("ssm").get_parameter(Name=second["ParamName"])["Parameter"]["Value"] == "v2"
    env = cloud.client("lambda").get_function_configuration(FunctionName=first["FunctionName"])["Environment"]
    assert env["Variables"]["VERSION"] == "2"
    timings["direct update"] = cdk(cloud, [*deploy, "--method=direct", "-c", "version=3"], APP, tmp_path)
    assert outputs(cloud)["Version"] == "3"
    print("cdk timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    assert timings["update"] < 40, "an update must not stall in SDK retries"
