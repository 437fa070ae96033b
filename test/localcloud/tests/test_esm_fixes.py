"""The event-source mapping patch (``patches.fix_lambda_esm``) through ``moto_server.py``, the
launcher the Rust moto tests use: an SQS mapping in provisioned mode keeps, returns and validates
its ``ProvisionedPollerConfig`` on Create/Update/GetEventSourceMapping as AWS documents it
(MinimumPollers 2-200, MaximumPollers 2-2,000 for SQS, the minimum at most the maximum, defaults
2 and 200; never together with ``ScalingConfig.MaximumConcurrency``), where plain moto stores
whatever it is given."""
import boto3
import pytest
from botocore.exceptions import ClientError

ZIP = b"PK\x05\x06" + b"\x00" * 18


@pytest.fixture(scope="module")
def aws(patched_moto):
    def client(service):
        return boto3.client(
            service, region_name="us-east-1", endpoint_url=patched_moto,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    iam = client("iam")
    role = iam.create_role(RoleName="esm-fixes", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client("lambda").create_function(
        FunctionName="consumer", Runtime="provided.al2023", Handler="bootstrap", Role=role,
        Code={"ZipFile": ZIP},
    )
    return client


_queues = iter(range(1000))


def queue_arn(aws):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=f"q{next(_queues)}")["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def create(aws, **kwargs):
    return aws("lambda").create_event_source_mapping(
        EventSourceArn=queue_arn(aws), FunctionName="consumer", **kwargs)


def refused(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_a_provisioned_mapping_keeps_and_returns_its_poller_configuration(aws):
    lam = aws("lambda")
    uuid = create(aws, ProvisionedPollerConfig={"MinimumPollers": 3, "MaximumPollers": 40})["UUID"]
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["ProvisionedPollerConfig"] == {"MinimumPollers": 3, "MaximumPollers": 40}
    assert "MaximumConcurrency" not in (got.get("ScalingConfig") or {})
    updated = lam.update_event_source_mapping(
        UUID=uuid, Enabled=False, ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 5})
    assert updated["ProvisionedPollerConfig"] == {"MinimumPollers": 2, "MaximumPollers": 5}
    assert lam.get_event_source_mapping(UUID=uuid)["ProvisionedPollerConfig"] == {
        "MinimumPollers": 2, "MaximumPollers": 5}
    # An update that does not name it leaves it alone.
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert lam.get_event_source_mapping(UUID=uuid)["ProvisionedPollerConfig"] == {
        "MinimumPollers": 2, "MaximumPollers": 5}


def test_a_field_left_out_reads_back_at_its_documented_default(aws):
    esm = create(aws, ProvisionedPollerConfig={"MaximumPollers": 40})
    assert esm["ProvisionedPollerConfig"] == {"MinimumPollers": 2, "MaximumPollers": 40}
    esm = create(aws, ProvisionedPollerConfig={"MinimumPollers": 4})
    assert esm["ProvisionedPollerConfig"] == {"MinimumPollers": 4, "MaximumPollers": 200}


@pytest.mark.parametrize("pollers", [
    {"MinimumPollers": 1, "MaximumPollers": 10},     # SQS needs at least 2
    {"MinimumPollers": 201, "MaximumPollers": 300},  # at most 200
    {"MinimumPollers": 2, "MaximumPollers": 1},      # at least 2
    {"MinimumPollers": 2, "MaximumPollers": 2001},   # at most 2,000
    {"MinimumPollers": 10, "MaximumPollers": 5},     # minimum above maximum
])
def test_poller_counts_outside_what_aws_accepts_are_refused(aws, pollers):
    lam = aws("lambda")
    assert refused(lambda: create(aws, ProvisionedPollerConfig=pollers)) == "InvalidParameterValueException"
    uuid = create(aws, ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 10})["UUID"]
    assert refused(lambda: lam.update_event_source_mapping(
        UUID=uuid, ProvisionedPollerConfig=pollers)) == "InvalidParameterValueException"
    assert lam.get_event_source_mapping(UUID=uuid)["ProvisionedPollerConfig"] == {
        "MinimumPollers": 2, "MaximumPollers": 10}, "a refused update changes nothing"


def test_maximum_concurrency_and_provisioned_mode_are_mutually_exclusive(aws):
    lam = aws("lambda")
    assert refused(lambda: create(
        aws, ScalingConfig={"MaximumConcurrency": 5},
        ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 10},
    )) == "InvalidParameterValueException"
    provisioned = create(aws, ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 10})["UUID"]
    assert refused(lambda: lam.update_event_source_mapping(
        UUID=provisioned, Enabled=True, ScalingConfig={"MaximumConcurrency": 2},
    )) == "InvalidParameterValueException"
    got = lam.get_event_source_mapping(UUID=provisioned)
    assert "MaximumConcurrency" not in (got.get("ScalingConfig") or {})
    limited = create(aws, ScalingConfig={"MaximumConcurrency": 5})["UUID"]
    assert refused(lambda: lam.update_event_source_mapping(
        UUID=limited, ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 10},
    )) == "InvalidParameterValueException"
    assert "ProvisionedPollerConfig" not in lam.get_event_source_mapping(UUID=limited)
