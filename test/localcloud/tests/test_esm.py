import json
import time

from localcloud import stalls
from localcloud.esm import failed_ids, sqs_event

from .test_cloud import cloud, create_fn, wait_for  # noqa: F401  (module-scoped local cloud)


def test_sqs_event_has_the_lambda_record_shape():
    msg = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": "b", "MD5OfBody": "x",
           "Attributes": {"ApproximateReceiveCount": "2"},
           "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
    rec = sqs_event([msg], "arn:aws:sqs:us-east-1:1:q", "us-east-1")["Records"][0]
    assert rec["messageId"] == "m1" and rec["receiptHandle"] == "rh" and rec["eventSource"] == "aws:sqs"
    assert rec["attributes"]["ApproximateReceiveCount"] == "2"
    assert rec["messageAttributes"]["k"] == {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"}


def test_batch_item_failures_are_parsed_and_malformed_reports_fail_the_batch():
    ids = {"a", "b"}
    assert failed_ids(b'{"batchItemFailures": [{"itemIdentifier": "a"}]}', ids) == {"a"}
    assert failed_ids(b'{"batchItemFailures": []}', ids) == set()
    assert failed_ids(b"null", ids) == set()
    assert failed_ids(b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}', ids) is None
    assert failed_ids(b'{"batchItemFailures": [{"itemIdentifier": ""}]}', ids) is None
    assert failed_ids(b"not json", ids) is None


def test_maximum_concurrency_caps_parallel_invocations(cloud):  # noqa: F811
    create_fn(cloud, "slow-consumer", "sqs-slow")
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="q-conc")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for i in range(0, 20, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)])
    cloud.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="slow-consumer", BatchSize=1, ScalingConfig={"MaximumConcurrency": 2})
    peak = 0
    deadline = stalls.Deadline(30)
    while not deadline.expired():
        peak = max(peak, cloud.host.running_environments("slow-consumer"))
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0:
            break
        time.sleep(0.05)
    assert peak == 2
    assert int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0


def test_a_provisioned_mapping_runs_one_worker_per_maximum_poller(cloud):  # noqa: F811
    create_fn(cloud, "slow-provisioned", "sqs-slow")
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="q-pollers")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for i in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)])
    cloud.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="slow-provisioned", BatchSize=1,
        ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 3})
    peak = 0
    deadline = stalls.Deadline(30)
    while not deadline.expired():
        peak = max(peak, cloud.host.running_environments("slow-provisioned"))
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0:
            break
        time.sleep(0.05)
    assert peak == 3
    assert int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0
