"""The fault layer between Lambda environments and moto (faults.py): each environment signs with
its own key, so a fault plan hits the calls of the functions it targets, in the protocol they
speak, and a kill lands between two calls of one invocation."""
import json
import time

import pytest

from localcloud import stalls
from localcloud.faults import FaultPlan, Rule
from localcloud.tests.test_cloud import create_fn  # noqa: F401 - shared fixture helpers
from localcloud.tests.test_cloud import cloud  # noqa: F401 - the module-scoped local cloud


# The fake's "aws" handler imports boto3 on its first invocation: about 1 s on an idle machine,
# over 5 s on a loaded CI runner (a CI run timed out there), so these functions get room to start.
AWS_FN_TIMEOUT = 30


def aws_fn(cloud, name):
    create_fn(cloud, name, "aws", timeout=AWS_FN_TIMEOUT)


def run(cloud, name, calls):
    out = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps({"calls": calls}).encode())
    return out.get("FunctionError"), json.loads(out["Payload"].read())


def results(cloud, name, calls):
    """The per-call results of an invocation that must itself succeed (else the answer is shown)."""
    err, out = run(cloud, name, calls)
    assert err is None and "results" in out, (err, out)
    return out["results"]


@pytest.fixture
def queue(cloud):
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=f"faults-{time.time_ns()}")["QueueUrl"]
    yield url
    cloud.set_fault_plan(None)


def count(cloud, url):
    a = cloud.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def test_a_throttle_answers_the_targeted_function_in_its_protocol_and_changes_nothing(cloud, queue):
    aws_fn(cloud, "faults-sender")
    plan = FaultPlan(rules=[Rule("throttle", service="sqs", operation="SendMessage", times=1)])
    cloud.set_fault_plan(plan)
    send = ["sqs", "send_message", {"QueueUrl": queue, "MessageBody": "x"}]
    out = results(cloud, "faults-sender", [send, send])
    assert out[0] == {"error": "RequestThrottled", "status": 400}
    assert "ok" in out[1]  # the rule fired once
    assert count(cloud, queue) == 1
    assert [(f["kind"], f["handler"], f["service"], f["operation"]) for f in plan.injected] == [
        ("throttle", "aws", "sqs", "SendMessage")]


def test_lambda_and_cloudwatch_calls_get_their_services_errors(cloud, queue):
    aws_fn(cloud, "faults-other")
    cloud.set_fault_plan(FaultPlan(rules=[
        Rule("throttle", service="lambda", times=1),
        Rule("5xx", service="monitoring", times=1),
    ]))
    out = results(cloud, "faults-other", [
        ["lambda", "list_event_source_mappings", {}],
        ["cloudwatch", "describe_alarms", {}],
    ])
    assert out == [
        {"error": "TooManyRequestsException", "status": 429},
        {"error": "InternalServiceError", "status": 500},
    ]


def test_untargeted_functions_and_the_glue_are_never_faulted(cloud, queue):
    aws_fn(cloud, "faults-consumer")
    cloud.set_fault_plan(FaultPlan(rules=[Rule("5xx", service="sqs", times=100)],
                                   targets=lambda handler, fn: fn != "faults-consumer"))
    out = results(cloud, "faults-consumer", [["sqs", "send_message", {"QueueUrl": queue, "MessageBody": "x"}]])
    assert "ok" in out[0], out
    cloud.client("sqs").send_message(QueueUrl=queue, MessageBody="from the glue")
    assert count(cloud, queue) == 2


def test_a_kill_after_a_send_lands_before_the_delete_of_the_same_invocation(cloud, queue):
    aws_fn(cloud, "faults-mover")
    sqs = cloud.client("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody="original")
    handle = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=1)["Messages"][0]["ReceiptHandle"]
    plan = FaultPlan(rules=[Rule("kill", service="sqs", operation="DeleteMessage", after="SendMessage")])
    cloud.set_fault_plan(plan)
    # a delete alone does not fire the rule; a send then a delete does, and the process dies there
    err, out = run(cloud, "faults-mover", [["sqs", "get_queue_url", {"QueueName": queue.rsplit("/", 1)[-1]}]])
    assert err is None and not plan.injected
    err, out = run(cloud, "faults-mover", [
        ["sqs", "send_message", {"QueueUrl": queue, "MessageBody": "copy"}],
        ["sqs", "delete_message", {"QueueUrl": queue, "ReceiptHandle": handle}],
    ])
    assert err == "Unhandled" and out["errorType"] == "Runtime.ExitError", out
    assert [f["operation"] for f in plan.injected] == ["DeleteMessage"]
    time.sleep(1.2)
    assert count(cloud, queue) == 2  # the copy was sent, the original never deleted


def test_a_timeout_holds_the_call_then_performs_it(cloud, queue):
    aws_fn(cloud, "faults-slow")
    plan = FaultPlan(rules=[Rule("timeout", service="sqs", operation="SendMessage", delay_s=4)])
    cloud.set_fault_plan(plan)
    out = results(cloud, "faults-slow", [["sqs", "send_message", {"QueueUrl": queue, "MessageBody": "late"}]])
    assert out[0]["error"] == "ReadTimeoutError"  # the caller gave up after 3 s
    if time.time() < plan.injected[0]["at"] + 3.8:
        assert count(cloud, queue) == 0  # not yet performed when the caller gave up
    deadline = stalls.Deadline(10)
    while count(cloud, queue) == 0 and not deadline.expired():
        time.sleep(0.2)
    assert count(cloud, queue) == 1  # and then the send happened all the same


def test_a_kill_at_the_response_lets_the_call_take_effect_and_the_caller_never_sees_it(cloud, queue):
    aws_fn(cloud, "faults-late-kill")
    plan = FaultPlan(rules=[Rule("kill", service="sqs", operation="SendMessage", at="response")])
    cloud.set_fault_plan(plan)
    err, out = run(cloud, "faults-late-kill", [["sqs", "send_message", {"QueueUrl": queue, "MessageBody": "sent"}]])
    assert err == "Unhandled" and out["errorType"] == "Runtime.ExitError", out
    assert count(cloud, queue) == 1


def test_a_rule_refuses_an_unknown_kind_or_kill_point():
    with pytest.raises(ValueError, match="fault kind"):
        Rule("explode")
    with pytest.raises(ValueError, match="request or the response"):
        Rule("kill", at="later")
