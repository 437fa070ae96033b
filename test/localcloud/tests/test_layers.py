"""A function's layers deployed through CloudFormation (``AWS::Lambda::LayerVersion`` and the
function's ``Layers``): the layer's ``extensions/`` run beside the function in the local cloud, and
the EMF lines an extension prints become high-resolution metrics an alarm with a 10 s period sees."""
import io
import json
import math
import os
import sys
import time
import zipfile

import pytest

from localcloud.alarms import AlarmEvaluator
from localcloud.cloud import LocalCloud

from .test_cloud import FAKE, ROLE, wait_for, zip_of
from .test_extensions import EXTENSION, EXTENSION_ASSET


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud")), alarm_tick_s=3600).start()
    c.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    yield c
    c.stop()


def layer_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("extensions/telemetry-ext")
        info.external_attr = 0o755 << 16
        z.writestr(info, f"#!{sys.executable}\n{EXTENSION}")
        z.writestr("lib/readme.txt", "not an extension")
    return buf.getvalue()


def test_a_cloudformation_layer_runs_its_extension_whose_emf_becomes_metrics(cloud, tmp_path):
    s3, cfn = cloud.client("s3"), cloud.client("cloudformation")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="layer.zip", Body=layer_zip())
    s3.put_object(Bucket="assets", Key="fn.zip", Body=zip_of(FAKE))
    template = {
        "Resources": {
            "Telemetry": {"Type": "AWS::Lambda::LayerVersion", "Properties": {
                "Content": {"S3Bucket": "assets", "S3Key": "layer.zip"}, "LayerName": "telemetry",
                "CompatibleArchitectures": ["x86_64", "arm64"]}},
            "Consumer": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": "layered", "Code": {"S3Bucket": "assets", "S3Key": "fn.zip"}, "Handler": "fail",
                "Runtime": "provided.al2023", "Role": ROLE, "Timeout": 5, "Layers": [{"Ref": "Telemetry"}],
                "Environment": {"Variables": {"EXT_LOG": str(tmp_path / "ext.log"), "EXT_EMF": "1"}}}},
        },
        "Outputs": {"LayerArn": {"Value": {"Ref": "Telemetry"}}},
    }
    cfn.create_stack(StackName="layers", TemplateBody=json.dumps(template))
    stack = cfn.describe_stacks(StackName="layers")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    layer_arn = stack["Outputs"][0]["OutputValue"]
    assert layer_arn.startswith("arn:aws:lambda:us-east-1:123456789012:layer:telemetry:")
    lam = cloud.client("lambda")
    assert [l["Arn"] for l in lam.get_function(FunctionName="layered")["Configuration"]["Layers"]] == [layer_arn]
    version = lam.get_layer_version(LayerName="telemetry", VersionNumber=int(layer_arn.rsplit(":", 1)[1]))
    assert version["CompatibleArchitectures"] == ["x86_64", "arm64"]

    t = time.time()
    for _ in range(2):
        assert lam.invoke(FunctionName="layered", Payload=b"{}")["FunctionError"] == "Unhandled"
    cw = cloud.client("cloudwatch")
    dims = [{"Name": "FunctionName", "Value": "layered"}]

    def errors():
        pts = cw.get_metric_statistics(Namespace="SqsCircuitBreaker/Consumer", MetricName="Errors", Dimensions=dims,
                                       StartTime=t - 60, EndTime=t + 60, Period=120, Statistics=["Sum"])["Datapoints"]
        return pts and pts[0]["Sum"] == 2
    wait_for(errors, timeout=15)
    cw.put_metric_alarm(AlarmName="fast-errors", Namespace="SqsCircuitBreaker/Consumer", MetricName="Errors",
                        Dimensions=dims, Statistic="Sum", Period=10, EvaluationPeriods=3, DatapointsToAlarm=1,
                        Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing")
    alarm = cw.describe_alarms(AlarmNames=["fast-errors"])["MetricAlarms"][0]
    at = math.floor(time.time() / 10) * 10 + 10.5
    assert AlarmEvaluator(cloud, now=lambda: at).evaluate(alarm, cw, cloud.client("events")) == "ALARM"


@pytest.mark.skipif(not os.path.exists(EXTENSION_ASSET), reason="the arm64 extension asset is not built: bash .ci/setup")
def test_the_shipped_arm64_extension_runs_in_an_arm64_function(cloud):
    """A layer with the telemetry extension the construct ships (the arm64 build in cdk/assets)
    runs it as it is (under qemu-user on an x86_64 host), under the layer file's name, and its
    per-second counts land in CloudWatch."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        with open(EXTENSION_ASSET, "rb") as f:
            z.writestr("extensions/sqs-circuit-breaker-telemetry", f.read())
    lam = cloud.client("lambda")
    layer = lam.publish_layer_version(LayerName="breaker-telemetry", Content={"ZipFile": buf.getvalue()},
                                      CompatibleArchitectures=["arm64"])
    lam.create_function(FunctionName="rust-layered", Runtime="provided.al2023", Role=ROLE, Handler="fail",
                        Code={"ZipFile": zip_of(FAKE)}, Timeout=5, Layers=[layer["LayerVersionArn"]],
                        Architectures=["arm64"])
    t = time.time()
    for _ in range(3):
        lam.invoke(FunctionName="rust-layered", Payload=b"{}")
    cw = cloud.client("cloudwatch")
    dims = [{"Name": "FunctionName", "Value": "rust-layered"}]

    def total(name):
        pts = cw.get_metric_statistics(Namespace="SqsCircuitBreaker/Consumer", MetricName=name, Dimensions=dims,
                                       StartTime=t - 60, EndTime=t + 60, Period=120, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in pts)
    wait_for(lambda: total("Invocations") == 3, timeout=15)
    assert total("Errors") == 3 and total("Timeouts") == 0
