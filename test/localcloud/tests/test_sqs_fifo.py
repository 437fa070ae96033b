"""FIFO queues on the local cloud (``patches.fix_sqs_fifo``) through ``moto_server.py``: as strict
as SQS. A per-message DelaySeconds is refused even when 0, a deduplication id is remembered for
5 minutes also after its message was deleted, MessageGroupId and a deduplication id are
required, a group with a message in flight delivers nothing more, and a group's messages come in
the order they were sent. CloudFormation creates a FIFO queue without a name under a generated
name ending in ``.fifo`` (``cfn._wrap_sqs_queue``, checked in ``test_cdk_deploy.py``'s stack)."""
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud import stalls


@pytest.fixture(scope="module")
def sqs(patched_moto):
    return boto3.client("sqs", region_name="us-east-1", endpoint_url=patched_moto,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def fifo(sqs, request):
    name = f"{request.node.name[:60]}.fifo"
    return sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]


def bodies(sqs, url, n=10, visibility=30):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, VisibilityTimeout=visibility)
    return got.get("Messages", [])


def test_a_per_message_delay_of_zero_is_refused_on_a_fifo_queue(sqs, fifo):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="a",
                         DelaySeconds=0)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "DelaySeconds" in e.value.response["Error"]["Message"]
    out = sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": "0", "MessageBody": "a", "MessageGroupId": "g", "MessageDeduplicationId": "a", "DelaySeconds": 0},
        {"Id": "1", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "b"},
    ])
    assert [f["Id"] for f in out.get("Failed", [])] == ["0"]
    assert out["Failed"][0]["SenderFault"] is True
    assert [s["Id"] for s in out["Successful"]] == ["1"]
    assert [m["Body"] for m in bodies(sqs, fifo)] == ["b"]


def test_a_standard_queue_still_takes_a_per_message_delay_of_zero(sqs):
    url = sqs.create_queue(QueueName="standard-delay-zero")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a", DelaySeconds=0)
    assert [m["Body"] for m in bodies(sqs, url)] == ["a"]


def test_group_and_deduplication_ids_are_required(sqs, fifo):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo, MessageBody="a", MessageDeduplicationId="a")
    assert e.value.response["Error"]["Code"] == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo, MessageBody="a", MessageGroupId="g")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_a_deduplication_id_is_remembered_after_its_message_was_deleted(sqs, fifo):
    sqs.send_message(QueueUrl=fifo, MessageBody="copy", MessageGroupId="g", MessageDeduplicationId="breaker-copy-1")
    [m] = bodies(sqs, fifo)
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=m["ReceiptHandle"])
    # A retried send of the same copy within 5 minutes: accepted, not delivered again.
    out = sqs.send_message(QueueUrl=fifo, MessageBody="copy", MessageGroupId="g",
                           MessageDeduplicationId="breaker-copy-1")
    assert out["MessageId"]
    assert bodies(sqs, fifo) == []
    attrs = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_a_group_with_a_message_in_flight_delivers_nothing_and_order_holds(sqs, fifo):
    entries = [{"Id": str(i), "MessageBody": body, "MessageGroupId": body[0], "MessageDeduplicationId": body}
               for i, body in enumerate(["a1", "b1", "a2", "b2", "a3"])]
    sqs.send_message_batch(QueueUrl=fifo, Entries=entries)
    [first] = bodies(sqs, fifo, n=1)
    assert first["Body"] == "a1"
    # Group a has a1 in flight: only group b, in order.
    assert [m["Body"] for m in bodies(sqs, fifo)] == ["b1", "b2"]
    assert bodies(sqs, fifo) == []
    # a1 released: it is still the head of its group.
    sqs.change_message_visibility(QueueUrl=fifo, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    assert [m["Body"] for m in bodies(sqs, fifo)] == ["a1", "a2", "a3"]


def test_cloudformation_names_an_unnamed_fifo_queue_with_the_fifo_suffix(tmp_path):
    from localcloud.cloud import LocalCloud

    cloud = LocalCloud(work_dir=str(tmp_path)).start()
    try:
        cfn, client = cloud.client("cloudformation"), cloud.client("sqs")
        template = {"Resources": {
            "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
            "Plain": {"Type": "AWS::SQS::Queue", "Properties": {}},
        }}
        cfn.create_stack(StackName="FifoNames", TemplateBody=json.dumps(template))
        stack = cfn.describe_stacks(StackName="FifoNames")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        urls = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.describe_stack_resources(StackName="FifoNames")["StackResources"]}
        fifo_name = urls["Orders"].rstrip("/").rsplit("/", 1)[-1]
        assert fifo_name.endswith(".fifo") and len(fifo_name) <= 80, fifo_name
        url = client.get_queue_url(QueueName=fifo_name)["QueueUrl"]
        attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["FifoQueue"] == "true"
        assert not urls["Plain"].endswith(".fifo")
    finally:
        cloud.stop()


def test_concurrent_long_polls_never_hold_two_messages_of_one_group(sqs, fifo):
    """Pollers as the ESM runs them (long polls, concurrent); messages arrive while they wait. No
    group may ever have two messages in flight, so each group is handled in order."""
    import threading
    import time

    handled, lock, stop = [], threading.Lock(), threading.Event()
    in_flight: dict = {}
    overlaps = []

    def poller():
        c = boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs.meta.endpoint_url,
                         aws_access_key_id="testing", aws_secret_access_key="testing")
        while not stop.is_set():
            got = c.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=30).get("Messages", [])
            with lock:  # several messages of a group in one receive are fine, in order
                groups = {m["Body"].split("-")[0] for m in got}
                overlaps.extend(m["Body"] for m in got if in_flight.get(m["Body"].split("-")[0]))
                in_flight.update({g: True for g in groups})
            time.sleep(0.2)  # the consumer works
            with lock:
                for m in got:
                    handled.append(m["Body"])
                    in_flight[m["Body"].split("-")[0]] = False
            for m in got:
                c.delete_message(QueueUrl=fifo, ReceiptHandle=m["ReceiptHandle"])

    threads = [threading.Thread(target=poller) for _ in range(4)]
    for t in threads:
        t.start()
    for n in range(1, 16):
        sqs.send_message(QueueUrl=fifo, MessageBody=f"g-{n:02d}", MessageGroupId="g", MessageDeduplicationId=str(n))
        time.sleep(0.07)
    deadline = stalls.Deadline(20)
    while len(handled) < 15 and not deadline.expired():
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert not overlaps, f"messages handed out while their group had one in flight: {overlaps}"
    assert handled == [f"g-{n:02d}" for n in range(1, 16)], handled


def test_messages_visible_again_come_back_in_group_order(sqs, fifo):
    """A receive's batch that times out (the consumer failed, or Lambda's poller released it):
    the groups are free again and each delivers from its head. moto kept timed-out messages in its
    in-flight set until a receive looked at each one, so a group looked busy because of its own
    timed-out messages and a later message of a group could come before an earlier one (seen end
    to end: a FIFO group processed as [2, 1, 3, ...])."""
    for n in range(1, 13):
        sqs.send_message(QueueUrl=fifo, MessageBody=str(n), MessageGroupId=f"g{n % 4}", MessageDeduplicationId=str(n))
    first = bodies(sqs, fifo, visibility=1)
    assert [m["Body"] for m in first] == [str(n) for n in range(1, 11)]
    time.sleep(1.5)
    again = [int(m["Body"]) for m in bodies(sqs, fifo)]
    for g in range(4):
        group = [n for n in range(1, 13) if n % 4 == g]
        got = [n for n in again if n % 4 == g]
        assert got == group[:len(got)], (g, again)
    assert again == list(range(1, 11)), again
