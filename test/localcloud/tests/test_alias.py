"""Lambda aliases and versions on the local cloud, as AWS runs them (issue 13 item 4).

- Invoke with a qualifier (an alias or a version) runs that version, and Lambda publishes the
  invocation's metrics twice: under ``FunctionName=<fn>`` and under ``FunctionName=<fn>,
  Resource=<fn>:<qualifier>`` ("Types of metrics for Lambda functions": ``Resource`` filters "by
  function version or alias"); never under ``FunctionName=<fn>:<qualifier>``.
- CloudWatch treats each combination of dimensions as its own metric: a statistics query matches
  the dimensions exactly ("you must specify the same dimensions that were used when the metrics
  were created", CloudWatch concepts, "Dimensions"); moto matched any metric holding the queried
  dimensions among others.
- An event-source mapping created on an alias reports the alias ARN as its ``FunctionArn`` and
  invokes through it (moto reported the version's ARN).
- CloudFormation ``AWS::Lambda::Version`` (``Ref``: the version ARN, ``GetAtt Version``) and
  ``AWS::Lambda::Alias`` (``Ref``: the alias ARN), which moto did not support (no ``Ref``, no
  alias)."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from localcloud.cloud import LocalCloud

from .test_cloud import create_fn, wait_for

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("alias")), alarm_tick_s=0.5).start()
    c.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    yield c
    c.stop()


def fn_arn(cloud, name):
    return f"arn:aws:lambda:{cloud.region}:{ACCOUNT}:function:{name}"


def with_alias(cloud, name, handler, alias="live", env=None):
    create_fn(cloud, name, handler, env=env)
    lam = cloud.client("lambda")
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    return version


def errors_sum(cloud, metric, dimensions):
    now = datetime.now(timezone.utc)
    r = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName=metric, Dimensions=dimensions,
        StartTime=now - timedelta(minutes=2), EndTime=now + timedelta(minutes=1), Period=60,
        Statistics=["Sum"])
    return sum(p["Sum"] for p in r["Datapoints"])


def dims(**kv):
    return [{"Name": k, "Value": v} for k, v in kv.items()]


def test_an_alias_invocation_publishes_function_and_resource_dimensions_never_fn_colon_alias(cloud):
    with_alias(cloud, "aliased", "fail")
    lam = cloud.client("lambda")
    out = lam.invoke(FunctionName="aliased", Qualifier="live", Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    out = lam.invoke(FunctionName=fn_arn(cloud, "aliased") + ":live", Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    alias = dims(FunctionName="aliased", Resource="aliased:live")
    assert wait_for(lambda: errors_sum(cloud, "Errors", alias) == 2)
    assert errors_sum(cloud, "Invocations", alias) == 2
    # the function's own series counts every invocation once, not once per dimension set
    assert errors_sum(cloud, "Errors", dims(FunctionName="aliased")) == 2
    assert errors_sum(cloud, "Errors", dims(FunctionName="aliased:live")) == 0


def test_a_version_invocation_is_published_under_its_resource(cloud):
    version = with_alias(cloud, "versioned", "fail")
    cloud.client("lambda").invoke(FunctionName="versioned", Qualifier=version, Payload=b"{}")
    resource = dims(FunctionName="versioned", Resource=f"versioned:{version}")
    assert wait_for(lambda: errors_sum(cloud, "Errors", resource) == 1)
    # an unqualified invocation is the function's alone
    cloud.client("lambda").invoke(FunctionName="versioned", Payload=b"{}")
    assert wait_for(lambda: errors_sum(cloud, "Errors", dims(FunctionName="versioned")) == 2)
    assert errors_sum(cloud, "Errors", resource) == 1


def test_statistics_and_metric_data_match_dimensions_exactly(cloud):
    cw = cloud.client("cloudwatch")
    now = datetime.now(timezone.utc)
    cw.put_metric_data(Namespace="Exact", MetricData=[{
        "MetricName": "Hits", "Value": 3, "Timestamp": now,
        "Dimensions": dims(FunctionName="f", Resource="f:live")}])
    stats = lambda d: cw.get_metric_statistics(  # noqa: E731
        Namespace="Exact", MetricName="Hits", Dimensions=d, StartTime=now - timedelta(minutes=1),
        EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum"])["Datapoints"]
    assert sum(p["Sum"] for p in stats(dims(FunctionName="f", Resource="f:live"))) == 3
    assert stats(dims(FunctionName="f")) == []
    assert stats([]) == []

    def data(d):
        r = cw.get_metric_data(
            MetricDataQueries=[{"Id": "q", "MetricStat": {
                "Metric": {"Namespace": "Exact", "MetricName": "Hits", "Dimensions": d},
                "Period": 60, "Stat": "Sum"}}],
            StartTime=now - timedelta(minutes=1), EndTime=now + timedelta(minutes=1))
        return sum(r["MetricDataResults"][0]["Values"])
    assert data(dims(FunctionName="f", Resource="f:live")) == 3
    assert data(dims(FunctionName="f")) == 0
    assert data(dims(FunctionName="f:live")) == 0


def test_an_esm_on_an_alias_reports_the_alias_arn_and_invokes_through_it(cloud, tmp_path):
    seen = tmp_path / "seen.log"
    with_alias(cloud, "esm-aliased", "sqs", env={"SEEN_LOG": str(seen)})
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="alias-q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam = cloud.client("lambda")
    alias_arn = fn_arn(cloud, "esm-aliased") + ":live"
    esm = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=alias_arn, BatchSize=10)
    assert esm["FunctionArn"] == alias_arn
    assert lam.get_event_source_mapping(UUID=esm["UUID"])["FunctionArn"] == alias_arn
    # a short name with the qualifier names the same alias
    lam.update_event_source_mapping(UUID=esm["UUID"], FunctionName="esm-aliased:live", Enabled=True)
    assert lam.get_event_source_mapping(UUID=esm["UUID"])["FunctionArn"] == alias_arn
    sqs.send_message(QueueUrl=url, MessageBody="through-the-alias")
    wait_for(lambda: seen.exists() and "through-the-alias" in seen.read_text())
    resource = dims(FunctionName="esm-aliased", Resource="esm-aliased:live")
    assert wait_for(lambda: errors_sum(cloud, "Invocations", resource) >= 1)


TEMPLATE = {
    "Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"Service": "lambda.amazonaws.com"}}]}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": "cfn-aliased", "Runtime": "provided.al2023", "Handler": "fail",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": "placeholder"}}},
        "Version": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Fn"}}},
        "Alias": {"Type": "AWS::Lambda::Alias", "Properties": {
            "FunctionName": {"Ref": "Fn"}, "Name": "live",
            "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]}}},
    },
    "Outputs": {
        "VersionRef": {"Value": {"Ref": "Version"}},
        "VersionNumber": {"Value": {"Fn::GetAtt": ["Version", "Version"]}},
        "AliasRef": {"Value": {"Ref": "Alias"}},
    },
}


def test_cloudformation_creates_versions_and_aliases(cloud):
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName="aliases", TemplateBody=json.dumps(TEMPLATE))
    stack = wait_for(lambda: next((s for s in cfn.describe_stacks(StackName="aliases")["Stacks"]
                                   if s["StackStatus"] == "CREATE_COMPLETE"), None))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    base = fn_arn(cloud, "cfn-aliased")
    assert outputs == {"VersionRef": base + ":1", "VersionNumber": "1", "AliasRef": base + ":live"}
    alias = cloud.client("lambda").get_alias(FunctionName="cfn-aliased", Name="live")
    assert (alias["AliasArn"], alias["FunctionVersion"]) == (base + ":live", "1")
    cfn.delete_stack(StackName="aliases")
    wait_for(lambda: not [s for s in cfn.list_stacks()["StackSummaries"]
                          if s["StackName"] == "aliases" and s["StackStatus"] != "DELETE_COMPLETE"])
    with pytest.raises(cloud.client("lambda").exceptions.ResourceNotFoundException):
        cloud.client("lambda").get_alias(FunctionName="cfn-aliased", Name="live")


def test_cloudformation_deletes_a_stack_in_reverse_dependency_order(cloud):
    """CloudFormation deletes a resource only after everything that depends on it ("DependsOn
    attribute": "resources are deleted in the reverse order of their creation"), so an alias goes
    before its function. moto iterated a set of logical ids, whose order changes with the string
    hash seed: with the function first, deleting the alias found no function, the stack delete
    raised Lambda's error through CloudFormation's API and the stack stayed. Ten function/alias
    pairs in one stack: a hash-ordered delete gets all ten right about once in a thousand runs."""
    resources = {"Role": TEMPLATE["Resources"]["Role"]}
    for i in range(10):
        name = f"cfn-ordered-{i}"
        resources[f"Fn{i}"] = {"Type": "AWS::Lambda::Function", "Properties": {
            **TEMPLATE["Resources"]["Fn"]["Properties"], "FunctionName": name}}
        resources[f"Version{i}"] = {"Type": "AWS::Lambda::Version",
                                    "Properties": {"FunctionName": {"Ref": f"Fn{i}"}}}
        resources[f"Alias{i}"] = {"Type": "AWS::Lambda::Alias", "Properties": {
            "FunctionName": {"Ref": f"Fn{i}"}, "Name": "live",
            "FunctionVersion": {"Fn::GetAtt": [f"Version{i}", "Version"]}}}
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName="ordered", TemplateBody=json.dumps({"Resources": resources}))
    wait_for(lambda: next((s for s in cfn.describe_stacks(StackName="ordered")["Stacks"]
                           if s["StackStatus"] == "CREATE_COMPLETE"), None))
    cfn.delete_stack(StackName="ordered")
    statuses = [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "ordered"]
    assert statuses == ["DELETE_COMPLETE"]
    lam = cloud.client("lambda")
    for i in range(10):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function(FunctionName=f"cfn-ordered-{i}")


def test_deletion_order_follows_ref_getatt_sub_and_depends_on():
    from localcloud.cfn import deletion_order

    resources = {
        "Policy": {"Type": "X", "Properties": {"Doc": {"Fn::Sub": "arn:${Queue.Arn}/${AWS::Region}"}}},
        "Queue": {"Type": "X"},
        "Mapping": {"Type": "X", "DependsOn": "Policy", "Properties": {"Fn": {"Ref": "Alias"}}},
        "Alias": {"Type": "X", "Properties": {"V": {"Fn::GetAtt": ["Version", "Version"]}}},
        "Version": {"Type": "X", "Properties": {"F": {"Fn::Sub": ["${F}", {"F": {"Ref": "Fn"}}]}}},
        "Fn": {"Type": "X"},
    }
    order = deletion_order(resources)
    assert sorted(order) == sorted(resources)
    for dependent, dependency in [("Policy", "Queue"), ("Mapping", "Policy"), ("Mapping", "Alias"),
                                  ("Alias", "Version"), ("Version", "Fn")]:
        assert order.index(dependent) < order.index(dependency), (dependent, dependency, order)
