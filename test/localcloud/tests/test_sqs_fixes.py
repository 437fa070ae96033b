"""The SQS patches (``patches.fix_sqs``) through ``moto_server.py``, the launcher the Rust moto
tests use: concurrent requests lose and resurrect nothing, SendMessageBatch keeps the trace
header, and the retention check still drops expired messages."""
import json
import threading
import time

import boto3
import pytest

from localcloud import patches

@pytest.fixture(scope="module")
def sqs(patched_moto):
    endpoint = patched_moto

    def client():
        return boto3.client(
            "sqs", region_name="us-east-1", endpoint_url=endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    return client


def send(client, url, bodies):
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[i:i + 10])]
        assert len(client.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == len(entries)


def test_concurrent_sends_receives_and_deletes_lose_and_repeat_nothing(sqs):
    client = sqs()
    url = client.create_queue(QueueName="race")["QueueUrl"]
    seeded = [f"seed-{i}" for i in range(300)]
    send(client, url, seeded)
    received, lock = [], threading.Lock()
    sending = threading.Event()
    sending.set()

    def consumer():
        c = sqs()
        while True:
            msgs = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)
            msgs = msgs.get("Messages", [])
            if not msgs and not sending.is_set():
                return
            for m in msgs:
                with lock:
                    received.append(m["Body"])
            if msgs:
                c.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(msgs)
                ])

    def producer(p):
        send(sqs(), url, [f"new-{p}-{i}" for i in range(100)])

    consumers = [threading.Thread(target=consumer) for _ in range(4)]
    producers = [threading.Thread(target=producer, args=(p,)) for p in range(3)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join()
    sending.clear()
    for t in consumers:
        t.join()

    expected = set(seeded) | {f"new-{p}-{i}" for p in range(3) for i in range(100)}
    assert len(received) == len(set(received)), "a message was delivered twice"
    assert set(received) == expected, f"lost: {sorted(expected - set(received))[:5]}"
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_send_message_batch_keeps_the_trace_header(sqs):
    client = sqs()
    url = client.create_queue(QueueName="trace")["QueueUrl"]
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    client.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "traced", "MessageBody": "a",
         "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": header}}},
        {"Id": "plain", "MessageBody": "b"},
    ])
    msgs = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["AWSTraceHeader"],
    )["Messages"]
    headers = {m["Body"]: m.get("Attributes", {}).get("AWSTraceHeader") for m in msgs}
    assert headers == {"a": header, "b": None}


def test_receive_still_drops_messages_past_the_retention_period():
    patches.fix_sqs()
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["eu-west-3"]
    backend.create_queue("retention", MessageRetentionPeriod="60")
    backend.create_queue("kept", MessageRetentionPeriod="60")
    backend.send_message("retention", "old").sent_timestamp -= 61_000
    backend.send_message("kept", "recent").sent_timestamp -= 59_000
    assert backend.receive_message("retention", 10, 0, 30) == []
    assert [m.body for m in backend.receive_message("kept", 10, 0, 30)] == ["recent"]


def test_the_patched_clock_is_the_system_clock():
    patches.fix_sqs()
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time

    assert abs(sqs_models.unix_time() - unix_time()) < 0.05
    assert abs(sqs_models.unix_time_millis() / 1000 - time.time()) < 0.05


def test_a_message_past_its_retention_is_deleted_like_sqs_does_not_hidden_counted_or_dead_lettered():
    """moto 5.2.5 only skips an expired message in ReceiveMessage, after marking it received: it
    stays counted, blocks the rest of that receive, and after maxReceiveCount such receives
    moves to the DLQ — so the local cloud dead-lettered what SQS deletes."""
    patches.fix_sqs()
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["eu-west-2"]
    dlq = backend.create_queue("expiry-dlq")
    backend.create_queue("expiry", MessageRetentionPeriod="60", VisibilityTimeout="0", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": 2}))
    backend.send_message("expiry", "old").sent_timestamp -= 61_000
    for _ in range(4):
        assert backend.receive_message("expiry", 10, 0, 0) == []
    backend.send_message("expiry", "recent")
    queue = backend.get_queue("expiry")
    assert [m.body for m in queue._messages] == ["recent"]
    assert list(dlq.messages) == [], "expired, not dead-lettered"
    attrs = backend.get_queue_attributes("expiry", ["All"])
    assert int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 1
    assert [(q, m.body) for q, m in patches.expired_messages if q == "expiry"] == [("expiry", "old")]
