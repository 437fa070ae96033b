"""The construct's synthesized state machine, deployed with the real CDK CLI, runs in the local
cloud's Step Functions interpreter: an ALARM state-change event from the alarm evaluator starts
one named execution that walks open -> backoff -> probe -> re-jitter (Map) -> ramp -> close ->
putMetricData. Its Lambdas are the contract fixture (canned documents, no AWS calls)."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from localcloud import stalls
from localcloud.cloud import LocalCloud

HERE = os.path.dirname(__file__)
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CDK = os.path.join(ROOT, "node_modules", ".bin", "cdk")
APP = os.path.join(HERE, "fixtures", "breakerapp")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CDK) and os.path.exists(os.path.join(ROOT, "cdk", "lib", "index.js"))),
    reason="needs npm ci and the compiled construct (npm run build -w cdk)")


def test_alarm_event_runs_the_construct_workflow_to_closed(tmp_path):
    asset = tmp_path / "asset"
    asset.mkdir()
    src = open(os.path.join(HERE, "fixtures", "fake_lambda.py")).read()
    (asset / "bootstrap").write_text(src.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
    os.chmod(asset / "bootstrap", 0o755)
    with LocalCloud(work_dir=str(tmp_path / "cloud")).start() as cloud:
        env = dict(os.environ, **cloud.client_env(), CDK_DISABLE_CLI_TELEMETRY="true")
        for args, cwd in ((["bootstrap", "aws://123456789012/us-east-1"], str(tmp_path)),
                          (["deploy", "--require-approval", "never", "-c", f"assetDir={asset}", "-o", str(tmp_path / "out")], APP)):
            out = subprocess.run([CDK, *args, "--no-notices"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        stack = cloud.client("cloudformation").describe_stacks(StackName="BreakerFixture")["Stacks"][0]
        o = {x["OutputKey"]: x["OutputValue"] for x in stack["Outputs"]}
        alarm = cloud.client("cloudwatch").describe_alarms(AlarmNames=[o["AlarmName"]])["MetricAlarms"][0]
        cloud.alarms.publish(alarm, "OK", "ALARM", "test")
        sfn = cloud.client("stepfunctions")
        deadline = stalls.Deadline(60)
        while not deadline.expired():
            execs = sfn.list_executions(stateMachineArn=o["StateMachineArn"])["executions"]
            if execs and execs[0]["status"] != "RUNNING":
                break
            time.sleep(1)
        assert len(execs) == 1, execs
        desc = sfn.describe_execution(executionArn=execs[0]["executionArn"])
        history = sfn.get_execution_history(executionArn=execs[0]["executionArn"], maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert desc["status"] == "SUCCEEDED", json.dumps(entered) + desc.get("cause", "")
        for state in ("Open Circuit", "Back Off", "Probe Consumer", "Re-jitter Backlog", "Hold Ramp Step",
                      "Close Circuit", "Publish Open Time", "Circuit Closed"):
            assert state in entered, entered
        metrics = cloud.client("cloudwatch").list_metrics(MetricName="OpenSeconds")["Metrics"]
        assert metrics, "Publish Open Time put the OpenSeconds metric"
