"""Message and batch sizes as SQS counts them (``patches.fix_sqs_sizes``), through
``moto_server.py``, the launcher the Rust moto tests use: body plus attribute names, types and
values in UTF-8 bytes, at most 1,048,576 bytes per message and per SendMessageBatch; the trace
header does not count. Refused requests send nothing."""
import boto3
import pytest
from botocore.exceptions import ClientError

LIMIT = 1_048_576
ATTRIBUTES = {
    "tenant": {"DataType": "String", "StringValue": "acme"},       # 6 + 6 + 4 = 16
    "amount": {"DataType": "Number", "StringValue": "12.5"},       # 6 + 6 + 4 = 16
    "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff\x01"},  # 3 + 6 + 3 = 12
}
ATTRIBUTE_BYTES = 16 + 16 + 12
TRACE = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"}}


@pytest.fixture(scope="module")
def client(patched_moto):
    return boto3.client(
        "sqs", region_name="us-east-1", endpoint_url=patched_moto,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def queue(client, name):
    return client.create_queue(QueueName=name)["QueueUrl"]


def depth(client, url) -> int:
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def refused(call, code):
    with pytest.raises(ClientError) as e:
        call()
    # SQS's JSON protocol names query-compatible errors in x-amzn-query-error, which botocore reads.
    assert e.value.response["Error"]["Code"] in (code, f"AWS.SimpleQueueService.{code}"), e.value.response
    return e.value.response["Error"]["Message"]


def test_a_message_at_the_limit_with_attributes_and_trace_header_is_accepted_one_byte_more_refused(client):
    url = queue(client, "sizes-one")
    body = "x" * (LIMIT - ATTRIBUTE_BYTES)
    client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES, MessageSystemAttributes=TRACE)
    message = refused(
        lambda: client.send_message(QueueUrl=url, MessageBody=body + "x", MessageAttributes=ATTRIBUTES),
        "InvalidParameterValue",
    )
    assert "Message must be shorter than 1048576 bytes" in message
    assert depth(client, url) == 1


def test_multibyte_characters_count_as_their_utf8_bytes(client):
    url = queue(client, "sizes-utf8")
    # 524,289 two-byte characters: 1,048,578 bytes, though only 524,289 characters.
    refused(lambda: client.send_message(QueueUrl=url, MessageBody="é" * (LIMIT // 2 + 1)), "InvalidParameterValue")
    client.send_message(QueueUrl=url, MessageBody="é" * (LIMIT // 2))
    assert depth(client, url) == 1


def test_a_batch_counts_attributes_against_the_limit_and_is_refused_whole(client):
    url = queue(client, "sizes-batch")
    # Bodies alone exactly 1 MiB; with the attributes 2 x 44 bytes over.
    half = "y" * (LIMIT // 2)
    entries = [
        {"Id": str(i), "MessageBody": half, "MessageAttributes": ATTRIBUTES, "MessageSystemAttributes": TRACE}
        for i in range(2)
    ]
    message = refused(lambda: client.send_message_batch(QueueUrl=url, Entries=entries), "BatchRequestTooLong")
    assert f"You have sent {LIMIT + 2 * ATTRIBUTE_BYTES} bytes" in message
    assert depth(client, url) == 0, "a refused batch sends nothing"
    # Exactly at the limit with attributes (the trace header does not count): accepted.
    fit = "y" * (LIMIT // 2 - ATTRIBUTE_BYTES)
    for e in entries:
        e["MessageBody"] = fit
    out = client.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(out["Successful"]) == 2 and not out.get("Failed")
    assert depth(client, url) == 2


def test_a_batch_entry_over_the_queues_maximum_message_size_refuses_the_batch(client):
    url = client.create_queue(QueueName="sizes-small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    entries = [
        {"Id": "ok", "MessageBody": "a"},
        {"Id": "big", "MessageBody": "b" * (1024 - ATTRIBUTE_BYTES + 1), "MessageAttributes": ATTRIBUTES},
    ]
    message = refused(lambda: client.send_message_batch(QueueUrl=url, Entries=entries), "InvalidParameterValue")
    assert "Message must be shorter than 1024 bytes" in message
    assert depth(client, url) == 0
