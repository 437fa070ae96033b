"""EventBridge -> SNS delivery in the local cloud, as strict as AWS: the input transformer's text,
the topic policy EventBridge needs (refused without it), SNS -> SQS subscriptions and the queue
policy they need, and the CloudFormation resources a CDK SnsTopic target and an SqsSubscription
create (AWS::SNS::TopicPolicy, AWS::SNS::Subscription, AWS::SQS::QueuePolicy)."""
import json
import time

import pytest

from localcloud import stalls
from localcloud import patches
from localcloud.cloud import LocalCloud

EVENT = {
    "Source": "sqs-circuit-breaker",
    "DetailType": "Circuit Opened",
    "Detail": json.dumps({"circuit": "orders", "attempt": 2, "openSeconds": None, "reason": "trigger",
                          "queueArn": "arn:aws:sqs:us-east-1:123456789012:orders"}),
}
TEXT_TEMPLATE = ("sqs-circuit-breaker: circuit <circuit> OPENED\n"
                 "reason: <reason>\nattempt <attempt>, open <openSeconds> s, error: <error>, rule <aws.events.rule-name>")
PATHS = {"circuit": "$.detail.circuit", "reason": "$.detail.reason", "attempt": "$.detail.attempt",
         "openSeconds": "$.detail.openSeconds", "error": "$.detail.error"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud"))).start()
    yield c
    c.stop()


def events_policy(topic_arn):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic_arn}]})


def sns_may_send(queue_arn, topic_arn):
    # what CDK's SqsSubscription adds
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})


def topic_with_queue(cloud, name, raw=True, policy=True, queue_policy=True):
    sns, sqs = cloud.client("sns"), cloud.client("sqs")
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    if policy:
        sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=events_policy(topic_arn))
    url = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if queue_policy:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": sns_may_send(queue_arn, topic_arn)})
    sub = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    if raw:
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    return topic_arn, url


def rule_to_topic(cloud, name, topic_arn, **target):
    ev = cloud.client("events")
    ev.put_rule(Name=name, EventPattern=json.dumps({"source": ["sqs-circuit-breaker"], "detail-type": ["Circuit Opened"]}))
    ev.put_targets(Rule=name, Targets=[{"Id": "t", "Arn": topic_arn, **target}])


def bodies(cloud, url, wait=2.0):
    sqs = cloud.client("sqs")
    out, deadline = [], stalls.Deadline(wait)
    while not deadline.expired():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        out += [m["Body"] for m in got]
        if out:
            break
        time.sleep(0.1)
    return out


def put(cloud):
    r = cloud.client("events").put_events(Entries=[EVENT])
    assert r["FailedEntryCount"] == 0


def clear_rules(cloud):
    ev = cloud.client("events")
    for r in ev.list_rules()["Rules"]:
        ids = [t["Id"] for t in ev.list_targets_by_rule(Rule=r["Name"])["Targets"]]
        if ids:
            ev.remove_targets(Rule=r["Name"], Ids=ids)
        ev.delete_rule(Name=r["Name"])


@pytest.fixture(autouse=True)
def fresh_rules(cloud):
    clear_rules(cloud)
    patches.refused_sns_deliveries.clear()
    patches.refused_sqs_deliveries.clear()
    yield


def test_text_template_is_delivered_as_text_with_the_policy(cloud):
    topic, url = topic_with_queue(cloud, "allowed")
    rule_to_topic(cloud, "to-allowed", topic, InputTransformer={"InputPathsMap": PATHS, "InputTemplate": TEXT_TEMPLATE})
    put(cloud)
    # strings unquoted, numbers and null as JSON text, a path the event lacks as nothing
    assert bodies(cloud, url) == ["sqs-circuit-breaker: circuit orders OPENED\n"
                                  "reason: trigger\nattempt 2, open null s, error: , rule to-allowed"]
    assert patches.refused_sns_deliveries == []


def test_a_quoted_string_template_keeps_its_quotes(cloud):
    # what CDK's RuleTargetInput.fromText synthesizes; EventBridge hands SNS the text as it is
    topic, url = topic_with_queue(cloud, "quoted")
    rule_to_topic(cloud, "to-quoted", topic, InputTransformer={"InputPathsMap": PATHS, "InputTemplate": '"circuit <circuit> opened"'})
    put(cloud)
    assert bodies(cloud, url) == ['"circuit orders opened"']


def test_without_a_transformer_the_event_json_is_the_message_in_the_sns_envelope(cloud):
    topic, url = topic_with_queue(cloud, "envelope", raw=False)
    rule_to_topic(cloud, "to-envelope", topic)
    put(cloud)
    [body] = bodies(cloud, url)
    envelope = json.loads(body)
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == topic
    event = json.loads(envelope["Message"])
    assert event["detail-type"] == "Circuit Opened" and event["detail"]["circuit"] == "orders"


def test_refused_without_a_policy_for_eventbridge(cloud):
    # the topic keeps SNS's default policy (principal AWS "*" on AWS:SourceOwner): not EventBridge
    topic, url = topic_with_queue(cloud, "default-policy", policy=False)
    rule_to_topic(cloud, "to-default", topic, InputTransformer={"InputPathsMap": PATHS, "InputTemplate": TEXT_TEMPLATE})
    put(cloud)
    assert bodies(cloud, url, wait=1.0) == []
    assert patches.refused_sns_deliveries == [("to-default", topic)]


def test_refused_when_the_policy_allows_another_rule_only(cloud):
    sns = cloud.client("sns")
    topic, url = topic_with_queue(cloud, "other-rule", policy=False)
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic,
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/someone-else"}}}]}))
    rule_to_topic(cloud, "to-other", topic)
    put(cloud)
    assert bodies(cloud, url, wait=1.0) == []
    assert patches.refused_sns_deliveries == [("to-other", topic)]


def test_sns_does_not_deliver_to_a_queue_whose_policy_does_not_let_it_send(cloud):
    topic, url = topic_with_queue(cloud, "no-queue-policy", queue_policy=False)
    rule_to_topic(cloud, "to-no-queue-policy", topic)
    put(cloud)
    assert bodies(cloud, url, wait=1.0) == []
    assert patches.refused_sns_deliveries == []
    assert [t for t, _ in patches.refused_sqs_deliveries] == [topic]


def test_other_targets_of_the_rule_still_get_the_event(cloud):
    topic, url = topic_with_queue(cloud, "refused-beside", policy=False)
    sqs = cloud.client("sqs")
    side = sqs.create_queue(QueueName="beside")["QueueUrl"]
    side_arn = sqs.get_queue_attributes(QueueUrl=side, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ev = cloud.client("events")
    ev.put_rule(Name="two", EventPattern=json.dumps({"source": ["sqs-circuit-breaker"]}))
    ev.put_targets(Rule="two", Targets=[{"Id": "sns", "Arn": topic}, {"Id": "sqs", "Arn": side_arn}])
    put(cloud)
    assert len(bodies(cloud, side)) == 1
    assert bodies(cloud, url, wait=0.5) == []


def stack_template(with_policy):
    resources = {
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Inbox": {"Type": "AWS::SQS::Queue"},
        "InboxPolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "Inbox"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["Inbox", "Arn"]}, "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": "Topic"}}}}]}}},
        "Sub": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Inbox", "Arn"]},
            "RawMessageDelivery": True}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["sqs-circuit-breaker"], "detail-type": ["Circuit Opened"]},
            "State": "ENABLED",
            "Targets": [{"Id": "Target0", "Arn": {"Ref": "Topic"},
                         "InputTransformer": {"InputPathsMap": PATHS, "InputTemplate": "circuit <circuit> OPENED"}}]}},
    }
    if with_policy:
        # what CDK's targets.SnsTopic adds
        resources["Policy"] = {"Type": "AWS::SNS::TopicPolicy", "Properties": {
            "Topics": [{"Ref": "Topic"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "0", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish", "Resource": {"Ref": "Topic"}}]}}}
    return json.dumps({"Resources": resources, "Outputs": {
        "Inbox": {"Value": {"Ref": "Inbox"}}, "Topic": {"Value": {"Ref": "Topic"}}}})


def deploy(cloud, name, with_policy):
    cf = cloud.client("cloudformation")
    cf.create_stack(StackName=name, TemplateBody=stack_template(with_policy))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cf.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}
    return outputs["Topic"], outputs["Inbox"]


def test_cloudformation_topic_policy_and_subscription_let_the_rule_deliver(cloud):
    topic, url = deploy(cloud, "with-policy", with_policy=True)
    policy = json.loads(cloud.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    put(cloud)
    assert bodies(cloud, url) == ["circuit orders OPENED"]
    cloud.client("cloudformation").delete_stack(StackName="with-policy")
    assert cloud.client("sns").list_subscriptions()["Subscriptions"] == [
        s for s in cloud.client("sns").list_subscriptions()["Subscriptions"] if s["TopicArn"] != topic]


def test_cloudformation_without_topic_policy_is_refused(cloud):
    topic, url = deploy(cloud, "without-policy", with_policy=False)
    subs = cloud.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Protocol"] for s in subs] == ["sqs"]
    put(cloud)
    assert bodies(cloud, url, wait=1.0) == []
    assert [t for _, t in patches.refused_sns_deliveries] == [topic]


def test_policy_evaluation():
    topic = "arn:aws:sns:us-east-1:123456789012:t"
    rule = "arn:aws:events:us-east-1:123456789012:rule/r"
    allow = {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com"]}, "Action": ["sns:Publish"], "Resource": topic}
    assert patches.eventbridge_may_publish({"Statement": [allow]}, topic, rule, "123456789012")
    assert patches.eventbridge_may_publish({"Statement": [{**allow, "Action": "SNS:*"}]}, topic, rule, "123456789012")
    assert patches.eventbridge_may_publish({"Statement": [{**allow, "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/*"}}}]}, topic, rule, "123456789012")
    assert not patches.eventbridge_may_publish({"Statement": [{**allow, "Principal": {"Service": "lambda.amazonaws.com"}}]}, topic, rule, "123456789012")
    assert not patches.eventbridge_may_publish({"Statement": [{**allow, "Action": "sns:Subscribe"}]}, topic, rule, "123456789012")
    assert not patches.eventbridge_may_publish({"Statement": [{**allow, "Resource": topic + "-other"}]}, topic, rule, "123456789012")
    assert not patches.eventbridge_may_publish({"Statement": [allow, {**allow, "Effect": "Deny"}]}, topic, rule, "123456789012")
    default = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["SNS:Publish"], "Resource": topic,
                              "Condition": {"StringEquals": {"AWS:SourceOwner": "123456789012"}}}]}
    assert not patches.eventbridge_may_publish(default, topic, rule, "123456789012")
    queue = "arn:aws:sqs:us-east-1:123456789012:q"
    sqs_policy = json.loads(sns_may_send(queue, topic))
    assert patches.service_may(sqs_policy, "sns.amazonaws.com", "sqs:SendMessage", queue, topic, "123456789012")
    assert not patches.service_may(sqs_policy, "sns.amazonaws.com", "sqs:SendMessage", queue, topic + "-other", "123456789012")
    assert not patches.service_may(sqs_policy, "events.amazonaws.com", "sqs:SendMessage", queue, topic, "123456789012")
