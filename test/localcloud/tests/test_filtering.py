"""Lambda event filtering in the local cloud: the documented rule cases (one table with the
breaker's Rust matcher, ``lambdas/core/fixtures/sqs-filter-cases.json``) and the ESM poller
delivering only what a mapping's ``FilterCriteria`` match, deleting the rest as Lambda does."""

import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from localcloud import filtering

from .test_cloud import cloud, create_fn, wait_for  # noqa: F401  (module-scoped local cloud)

CASES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lambdas", "core", "fixtures", "sqs-filter-cases.json")


def table():
    with open(CASES) as f:
        return json.load(f)


def record(case):
    return {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": case["body"],
        "attributes": case.get("attributes", {
            "ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185"}),
        "messageAttributes": case.get("messageAttributes", {}),
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:my-queue",
        "awsRegion": "us-west-2",
    }


@pytest.mark.parametrize("case", table()["matching"], ids=lambda c: c["case"])
def test_every_documented_rule_case_delivers_or_drops_the_message_as_lambda_does(case):
    parsed = filtering.parse([json.dumps(f) for f in case["filters"]])
    assert filtering.matches(parsed, record(case)) is case["matches"]


@pytest.mark.parametrize("case", table()["invalid"], ids=lambda c: c["case"])
def test_every_pattern_the_matcher_cannot_apply_is_refused_naming_it(case):
    with pytest.raises(filtering.InvalidFilter) as e:
        filtering.parse(case["patterns"])
    assert e.value.pattern == case["patterns"][e.value.index]
    assert f"filter pattern {e.value.index} " in str(e.value)


def test_the_poller_delivers_only_matching_messages_and_deletes_the_rest(cloud, tmp_path):  # noqa: F811
    seen = tmp_path / "seen.log"
    create_fn(cloud, "filtered-consumer", "sqs", env={"SEEN_LOG": str(seen)})
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="q-filtered")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bodies = ['{"kind":"a","n":1}', '{"kind":"b","n":2}', "plain text", '{"kind":"a","n":3}']
    for b in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=b)
    cloud.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="filtered-consumer", BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["a"]}})}]})

    def drained():
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0

    wait_for(drained, timeout=30)
    time.sleep(0.5)
    delivered = sorted(line.split(" ", 1)[1] for line in seen.read_text().splitlines())
    assert delivered == ['{"kind":"a","n":1}', '{"kind":"a","n":3}'], "only matching messages reach the function"


def test_a_mapping_with_an_invalid_filter_pattern_is_refused(cloud):  # noqa: F811
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="q-bad-filter")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_fn(cloud, "bad-filter-consumer", "echo")
    with pytest.raises(ClientError) as e:
        cloud.client("lambda").create_event_source_mapping(
            EventSourceArn=arn, FunctionName="bad-filter-consumer",
            FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": "a"}}'}]})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
