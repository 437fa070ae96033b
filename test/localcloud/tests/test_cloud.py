"""The local cloud end to end with the fixture runtime: Invoke routing, ESM polling, metrics,
alarm evaluation and EventBridge -> Step Functions delivery."""
import io
import json
import os
import sys
import time
import zipfile

import pytest

from localcloud import stalls
from localcloud.cloud import LocalCloud

FAKE = os.path.join(os.path.dirname(__file__), "fixtures", "fake_lambda.py")
ROLE = "arn:aws:iam::123456789012:role/fn"


def zip_of(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        with open(path, "rb") as f:
            src = f.read().replace(b"#!/usr/bin/env python3", f"#!{sys.executable}".encode(), 1)
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, src)
    return buf.getvalue()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud")), alarm_tick_s=0.5).start()
    iam = c.client("iam")
    iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    yield c
    c.stop()


def create_fn(cloud, name, handler, env=None, timeout=5):
    cloud.client("lambda").create_function(
        FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler=handler,
        Code={"ZipFile": zip_of(FAKE)}, Timeout=timeout, Environment={"Variables": env or {}},
    )


def wait_for(cond, timeout=20, every=0.2):
    return stalls.wait_for(cond, timeout, every=every)


def test_sdk_invoke_runs_the_function_and_reports_function_errors(cloud):
    create_fn(cloud, "echo1", "echo")
    create_fn(cloud, "fail1", "fail")
    lam = cloud.client("lambda")
    ok = lam.invoke(FunctionName="echo1", Payload=b'{"x": 1}')
    assert json.loads(ok["Payload"].read()) == {"x": 1}
    assert "FunctionError" not in ok
    bad = lam.invoke(FunctionName="fail1", Payload=b"{}")
    assert bad["FunctionError"] == "Unhandled"
    assert json.loads(bad["Payload"].read())["errorType"] == "Boom"


def test_invoke_of_a_missing_function_is_resource_not_found(cloud):
    with pytest.raises(cloud.client("lambda").exceptions.ResourceNotFoundException):
        cloud.client("lambda").invoke(FunctionName="nope", Payload=b"{}")


def test_invocations_publish_lambda_metrics(cloud):
    create_fn(cloud, "metered", "fail")
    cloud.client("lambda").invoke(FunctionName="metered", Payload=b"{}")
    cw = cloud.client("cloudwatch")

    def errors():
        r = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Errors",
                                     Dimensions=[{"Name": "FunctionName", "Value": "metered"}],
                                     StartTime=time.time() - 60, EndTime=time.time() + 60, Period=60,
                                     Statistics=["Sum"])
        return sum(p["Sum"] for p in r["Datapoints"])
    assert wait_for(errors) == 1


def test_esm_delivers_batches_and_keeps_reported_failures(cloud, tmp_path):
    seen = tmp_path / "seen.log"
    create_fn(cloud, "consumer1", "sqs", env={"SEEN_LOG": str(seen)})
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="q1", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for i in range(12):
        sqs.send_message(QueueUrl=url, MessageBody="fail-once" if i == 0 else f"ok-{i}")
    cloud.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="consumer1", BatchSize=5,
        FunctionResponseTypes=["ReportBatchItemFailures"], ScalingConfig={"MaximumConcurrency": 2})

    def lines():
        return seen.read_text().splitlines() if seen.exists() else []
    wait_for(lambda: len({l.split(" ", 1)[1] for l in lines()}) == 12)
    # the failing message stays in the queue and is redelivered after the visibility timeout
    wait_for(lambda: sum(1 for l in lines() if l.endswith("fail-once")) >= 2, timeout=10)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 1
    assert max(len(l) for l in [lines()]) >= 12


def test_disabled_esm_stops_delivery(cloud, tmp_path):
    seen = tmp_path / "seen.log"
    create_fn(cloud, "consumer2", "sqs", env={"SEEN_LOG": str(seen)})
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="q2")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam = cloud.client("lambda")
    esm = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="consumer2", BatchSize=10)
    lam.update_event_source_mapping(UUID=esm["UUID"], Enabled=False)
    time.sleep(1.5)
    sqs.send_message(QueueUrl=url, MessageBody="held")
    time.sleep(2.5)
    assert not seen.exists()
    lam.update_event_source_mapping(UUID=esm["UUID"], Enabled=True)
    wait_for(lambda: seen.exists() and "held" in seen.read_text())


def test_error_rate_alarm_fires_event_that_starts_a_named_execution(cloud):
    """A 10 s error-rate alarm over high-resolution metrics (what the fast-trip extension
    publishes; Lambda's own 1-minute metrics cannot feed a 10 s period) goes to ALARM, and its
    state-change event starts one named execution."""
    cw, events, sfn = cloud.client("cloudwatch"), cloud.client("events"), cloud.client("stepfunctions")
    dims = [{"Name": "FunctionName", "Value": "flaky"}]
    cw.put_metric_alarm(
        AlarmName="flaky-errors", EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=50,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        Metrics=[
            {"Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "Local/Consumer", "MetricName": "Errors", "Dimensions": dims}, "Period": 10, "Stat": "Sum"}},
            {"Id": "invocations", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "Local/Consumer", "MetricName": "Invocations", "Dimensions": dims}, "Period": 10, "Stat": "Sum"}},
            {"Id": "rate", "Expression": "IF(invocations >= 2, 100 * errors / invocations, 0)", "ReturnData": True},
        ])
    sm = sfn.create_state_machine(name="recover", roleArn=ROLE,
                                  definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    events.put_rule(Name="on-alarm", EventPattern=json.dumps({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"], "detail": {"alarmName": ["flaky-errors"], "state": {"value": ["ALARM"]}}}))
    events.put_targets(Rule="on-alarm", Targets=[{"Id": "sfn", "Arn": sm["stateMachineArn"], "RoleArn": ROLE}])
    cw.put_metric_data(Namespace="Local/Consumer", MetricData=[
        {"MetricName": name, "Dimensions": dims, "Value": 3, "Unit": "Count", "StorageResolution": 1}
        for name in ("Errors", "Invocations")])
    wait_for(lambda: cw.describe_alarms(AlarmNames=["flaky-errors"])["MetricAlarms"][0]["StateValue"] == "ALARM", timeout=25)
    execs = wait_for(lambda: sfn.list_executions(stateMachineArn=sm["stateMachineArn"])["executions"])
    assert len(execs) == 1 and execs[0]["name"] != "None"
    out = sfn.describe_execution(executionArn=execs[0]["executionArn"])
    doc = json.loads(out["input"])
    assert doc["detail"]["state"]["value"] == "ALARM" and doc["detail"]["previousState"]["value"] in ("OK", "INSUFFICIENT_DATA")
    # with no new failures the alarm returns to OK (notBreaching) without starting anything
    wait_for(lambda: cw.describe_alarms(AlarmNames=["flaky-errors"])["MetricAlarms"][0]["StateValue"] == "OK", timeout=30)
    assert len(sfn.list_executions(stateMachineArn=sm["stateMachineArn"])["executions"]) == 1


def test_step_functions_lambda_tasks_run_on_the_runtime_host_and_catch_errors(cloud):
    create_fn(cloud, "task-echo", "echo")
    create_fn(cloud, "task-fail", "fail")
    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                     "Parameters": {"FunctionName": "task-echo", "Payload": {"n.$": "$.n"}},
                     "ResultSelector": {"n.$": "$.Payload.n"}, "Next": "Each"},
            "Each": {"Type": "Map", "ItemsPath": "$.items", "Next": "Fail",
                     "ItemProcessor": {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 1, "End": True}}},
                     "ResultPath": None},
            "Fail": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                     "Parameters": {"FunctionName": "task-fail", "Payload": {}},
                     "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "Done"}], "End": True},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    sm = sfn.create_state_machine(name="tasks", roleArn=ROLE, definition=json.dumps(definition))
    # Map needs its input to carry the items; the Echo step replaces the state with its result,
    # so feed the items through n.
    definition["States"]["Echo"]["ResultPath"] = "$.echo"
    del definition["States"]["Echo"]["ResultSelector"]
    sfn.update_state_machine(stateMachineArn=sm["stateMachineArn"], definition=json.dumps(definition))
    run = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="run-1",
                              input=json.dumps({"n": 7, "items": [1, 2]}))
    done = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
        sfn.describe_execution(executionArn=run["executionArn"])), timeout=30)
    assert done["status"] == "SUCCEEDED", done
    out = json.loads(done["output"])
    assert out["echo"]["Payload"] == {"n": 7}
    assert out["error"]["Error"] == "Boom"


@pytest.mark.parametrize("handler,payload", [("crash", {}), ("sleep", {"seconds": 5})])
def test_a_crashed_or_timed_out_task_function_fails_as_lambda_unknown_as_step_functions_reports_it(cloud, handler, payload):
    """Step Functions reports a function's unhandled errors (a crashed runtime, out of memory, a
    timeout) as ``Lambda.Unknown``, not as the runtime's ``Runtime.ExitError``/``Sandbox.Timedout``;
    a state machine retries or catches them under that name. The SDK's Invoke still returns the
    runtime's error payload."""
    name = f"task-{handler}-unknown"
    create_fn(cloud, name, handler, timeout=1)
    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "Run",
        "States": {
            "Run": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": name, "Payload": payload},
                    "Catch": [{"ErrorEquals": ["Lambda.Unknown"], "ResultPath": "$.error", "Next": "Caught"}], "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sm = sfn.create_state_machine(name=f"unknown-{handler}", roleArn=ROLE, definition=json.dumps(definition))
    run = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="run-1", input="{}")
    done = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
        sfn.describe_execution(executionArn=run["executionArn"])), timeout=30)
    assert done["status"] == "SUCCEEDED", done
    error = json.loads(done["output"])["error"]
    assert error["Error"] == "Lambda.Unknown"
    assert ("Runtime.ExitError" if handler == "crash" else "Sandbox.Timedout") in error["Cause"]
    direct = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    assert json.loads(direct["Payload"].read())["errorType"] in ("Runtime.ExitError", "Sandbox.Timedout")


def test_a_stopped_execution_is_aborted_at_once_even_with_a_task_in_flight(cloud):
    """StopExecution ends a Standard execution when it is called: DescribeExecution and
    ListExecutions show ABORTED with that stopDate at once, although a Lambda task it started runs
    on to its end (moto kept the execution RUNNING until the task returned, then dated the stop)."""
    create_fn(cloud, "task-sleep-stopped", "sleep", timeout=10)
    sfn = cloud.client("stepfunctions")
    definition = {"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "task-sleep-stopped", "Payload": {"seconds": 4}}, "End": True}}}
    sm = sfn.create_state_machine(name="stopped-mid-task", roleArn=ROLE, definition=json.dumps(definition))
    run = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="run-1", input="{}")
    time.sleep(1)
    stopped_at = sfn.stop_execution(executionArn=run["executionArn"], error="Manual", cause="test")["stopDate"]
    now = sfn.describe_execution(executionArn=run["executionArn"])
    assert now["status"] == "ABORTED"
    assert abs((now["stopDate"] - stopped_at).total_seconds()) < 0.5
    listed = [e for e in sfn.list_executions(stateMachineArn=sm["stateMachineArn"])["executions"]]
    assert [e["status"] for e in listed] == ["ABORTED"]
    time.sleep(4.5)  # the task returns; the execution stays aborted at its stop time
    later = sfn.describe_execution(executionArn=run["executionArn"])
    assert later["status"] == "ABORTED" and later["stopDate"] == now["stopDate"]


def test_execution_history_pages_reverses_and_withholds_data_as_step_functions_does(cloud):
    """GetExecutionHistory as the Step Functions API reference has it: oldest first unless
    `reverseOrder`; at most `maxResults` events a call (default 100, 0 means the default, at most
    1000) with a `nextToken` for the rest ("Keep all other arguments unchanged"; another token is
    InvalidToken); `includeExecutionData=false` leaves out every input and output. moto ignored
    all four and returned the whole history, oldest first, with its data."""
    sfn = cloud.client("stepfunctions")
    states = {f"S{i}": {"Type": "Pass", "Result": {"i": i}, "Next": f"S{i + 1}"} for i in range(60)}
    states["S60"] = {"Type": "Succeed"}
    sm = sfn.create_state_machine(name="long-history", roleArn=ROLE,
                                  definition=json.dumps({"StartAt": "S0", "States": states}))
    arn = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="h-1", input='{"x":1}')["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED")

    first = sfn.get_execution_history(executionArn=arn)
    assert len(first["events"]) == 100 and first.get("nextToken"), "default page: 100 events"
    everything = sfn.get_execution_history(executionArn=arn, maxResults=1000)
    events = everything["events"]
    assert len(events) > 100 and not everything.get("nextToken")
    assert first["events"] == events[:100]
    rest = sfn.get_execution_history(executionArn=arn, nextToken=first["nextToken"])
    assert first["events"] + rest["events"] == events[:100 + len(rest["events"])]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"

    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=3)["events"]
    assert newest == list(reversed(events))[:3]

    bare = sfn.get_execution_history(executionArn=arn, includeExecutionData=False, maxResults=1000)["events"]
    assert [e["id"] for e in bare] == [e["id"] for e in events]
    data = ("input", "inputDetails", "output", "outputDetails")
    details = [d for e in bare for k, d in e.items() if k.endswith("EventDetails")]
    assert details and not any(f in d for d in details for f in data), details[:3]
    assert "input" in events[0]["executionStartedEventDetails"]

    with pytest.raises(sfn.exceptions.ClientError) as bad_token:
        sfn.get_execution_history(executionArn=arn, nextToken="not-a-token")
    assert bad_token.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(sfn.exceptions.ClientError) as too_many:
        sfn.get_execution_history(executionArn=arn, maxResults=1001)
    assert too_many.value.response["Error"]["Code"] == "ValidationException"
