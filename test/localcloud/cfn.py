"""CloudFormation gaps of moto 5.2.5, patched in-process so the real CDK CLI deploys into it.

- ``AWS::CloudWatch::Alarm`` (unsupported, so a ``GetAtt`` on it failed the deploy): created with
  the CloudWatch backend's put_metric_alarm, metric-math alarms included.
- Change sets: the executed stack gets its template, parameters and Outputs; deleting a change set
  that does not exist is a no-op (moto crashed with UnboundLocalError, then the CLI retried ~50 s);
  describing a missing change set is ``ChangeSetNotFound`` (the CLI waits for that after deleting);
  ``UsePreviousValue`` on a parameter the stack got from its default (``BootstrapVersion``) works.
- ``AWS::Lambda::LayerVersion``: ``Ref`` is the version ARN, ``LayerName`` and
  ``CompatibleArchitectures`` are kept; ``AWS::Lambda::Function`` keeps ``Layers`` (its
  extensions then run in the runtime host, see cloud.py).
- ``AWS::Lambda::Function`` keeps ``Architectures``; ``AWS::IAM::Role`` attaches
  ``ManagedPolicyArns``; ``AWS::StepFunctions::StateMachine`` keeps ``LoggingConfiguration`` and
  ``TracingConfiguration`` (and lives in the interpreter's backend, see patches.py).
- ``AWS::Lambda::Version`` (``Ref`` the version ARN, ``GetAtt Version``) and ``AWS::Lambda::Alias``
  (``Ref`` the alias ARN; moto skipped it) are created, updated and deleted through the Lambda
  backend.
- ``AWS::SSM::Parameter`` without ``Name`` gets a generated name (moto crashed), and keeps it on
  update.
- ``AWS::SQS::Queue`` with ``FifoQueue`` and no ``QueueName`` gets a generated name ending in
  ``.fifo`` (at most 80 characters), as CloudFormation generates one; moto generated a plain name
  and then refused it ("Queue name must end in .fifo for FIFO queues"), so a FIFO queue without an
  explicit name could not be deployed.
- A stack is deleted in reverse dependency order: a resource goes before everything it names with
  ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` or ``DependsOn`` ("DependsOn attribute": "Resource A is
  deleted before resource B"). moto walked a set of logical ids, whose order follows the string
  hash seed: a function deleted before its alias left the alias's delete failing, and the stack
  delete raised Lambda's error through CloudFormation's API.
- ``AWS::SNS::TopicPolicy`` sets the topics' policy (moto skipped it: EventBridge -> SNS delivery,
  which needs that policy, could never be allowed) and resets it to the default when deleted;
  ``AWS::SNS::Subscription`` subscribes (moto skipped it), with ``RawMessageDelivery``,
  ``FilterPolicy`` and ``FilterPolicyScope``; ``AWS::SQS::QueuePolicy`` sets the queues' policy
  (moto skipped it; SNS -> SQS delivery, which needs it, checks it: see patches.py).
- ``AWS::S3::BucketPolicy`` stays a no-op: enforcing the bootstrap bucket's TLS-only policy would
  reject the CLI's plain-http asset uploads to the local endpoint.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.core.common_models import CloudFormationModel

log = logging.getLogger("localcloud.cfn")
_applied = False


# -- AWS::CloudWatch::Alarm ----------------------------------------------------------------
def _queries(metrics: list[dict]) -> list:
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat

    out = []
    for q in metrics:
        stat = None
        if "MetricStat" in q:
            ms = q["MetricStat"]
            m = ms["Metric"]
            stat = MetricStat(
                metric=Metric(
                    metric_name=m["MetricName"],
                    namespace=m.get("Namespace"),
                    dimensions=[Dimension(name=d["Name"], value=d["Value"]) for d in m.get("Dimensions", [])],
                ),
                period=ms.get("Period"),
                stat=ms.get("Stat"),
                unit=ms.get("Unit"),
            )
        out.append(
            MetricDataQuery(
                query_id=q["Id"],
                label=q.get("Label"),
                period=q.get("Period"),
                return_data=q.get("ReturnData", True),
                expression=q.get("Expression"),
                metric_stat=stat,
            )
        )
    return out


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() == "true"


class CfnAlarm(CloudFormationModel):
    """A CloudWatch metric alarm owned by a stack."""

    def __init__(self, name: str, arn: str, account_id: str, region_name: str):
        self.name, self.arn = name, arn
        self.account_id, self.region_name = account_id, region_name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.arn
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.cloudwatch.models import Dimension, cloudwatch_backends

        p = cloudformation_json["Properties"]
        backend = cloudwatch_backends[account_id][region_name]
        alarm = backend.put_metric_alarm(
            name=resource_name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]) if p.get("Period") is not None else None,
            threshold=float(p["Threshold"]) if p.get("Threshold") is not None else None,
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=[Dimension(name=d["Name"], value=d["Value"]) for d in p.get("Dimensions", [])],
            alarm_actions=p.get("AlarmActions", []),
            metric_data_queries=_queries(p["Metrics"]) if p.get("Metrics") else None,
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if p.get("DatapointsToAlarm") else None,
            extended_statistic=p.get("ExtendedStatistic"),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            unit=p.get("Unit"),
            actions_enabled=_bool(p.get("ActionsEnabled"), True),
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=p.get("ThresholdMetricId"),
        )
        return cls(resource_name, alarm.alarm_arn, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        name = cloudformation_json["Properties"].get("AlarmName", original_resource.name)
        if name != original_resource.name:
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    def delete(self, account_id: str, region_name: str) -> None:
        self.delete_from_cloudformation_json(self.name, {}, account_id, region_name)


# -- AWS::Lambda::Version and AWS::Lambda::Alias ---------------------------------------------
class CfnLambdaVersion(CloudFormationModel):
    """A published function version owned by a stack. moto's own model had no ``Ref`` (the
    version's ARN) and no ``GetAtt Version``, which CDK's ``currentVersion`` and aliases use."""

    def __init__(self, arn: str, version: str):
        self.arn, self.version = arn, version

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Version"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Version", "FunctionArn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Version":
            return self.version
        if attribute_name == "FunctionArn":
            return self.arn
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.awslambda.utils import get_backend

        p = cloudformation_json["Properties"]
        fn = get_backend(account_id, region_name).publish_version(p["FunctionName"], p.get("Description", ""))
        return cls(fn.function_arn, str(fn.version))

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        """Versions go with their function (CDK retains ``currentVersion`` anyway)."""

    def delete(self, account_id: str, region_name: str) -> None:
        pass


class CfnLambdaAlias(CloudFormationModel):
    """A function alias owned by a stack (moto had no model: the resource was skipped, so an
    event-source mapping or a permission on the alias failed)."""

    def __init__(self, arn: str, name: str, function_name: str):
        self.arn, self.name, self.function_name = arn, name, function_name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "AliasArn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "AliasArn":
            return self.arn
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.awslambda.utils import get_backend

        p = cloudformation_json["Properties"]
        backend = get_backend(account_id, region_name)
        function_name = backend.get_function(p["FunctionName"]).function_name  # a name or an ARN
        alias = backend.create_alias(
            p["Name"], function_name, str(p["FunctionVersion"]), p.get("Description", ""), p.get("RoutingConfig"),
        )
        return cls(alias.arn, alias.name, function_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        from moto.awslambda.utils import get_backend

        p = cloudformation_json["Properties"]
        if p["Name"] != original_resource.name:
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
        get_backend(account_id, region_name).update_alias(
            p["Name"], original_resource.function_name, str(p["FunctionVersion"]), p.get("Description"), p.get("RoutingConfig"),
        )
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        from moto.awslambda.utils import get_backend

        p = cloudformation_json["Properties"]
        backend = get_backend(account_id, region_name)
        backend.delete_alias(p["Name"], backend.get_function(p["FunctionName"]).function_name)

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.awslambda.utils import get_backend

        get_backend(account_id, region_name).delete_alias(self.name, self.function_name)


# -- AWS::SNS::TopicPolicy, AWS::SNS::Subscription ----------------------------------------------
class CfnTopicPolicy(CloudFormationModel):
    """A topic's resource policy owned by a stack (moto had no model: the resource was skipped and
    the topic kept its default policy, which does not let EventBridge publish). ``Topics`` get
    ``PolicyDocument`` as their ``Policy`` attribute; deleting the resource gives them back the
    default policy they had before it (what a topic without a policy resource has)."""

    def __init__(self, name: str, topics: list[str]):
        self.name, self.topics = name, topics

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def _apply(p: dict, account_id: str, region_name: str) -> list[str]:
        import json

        from moto.sns.models import sns_backends

        backend = sns_backends[account_id][region_name]
        topics = list(p["Topics"])
        for arn in topics:
            backend.get_topic(arn).policy = json.dumps(p["PolicyDocument"])
        return topics

    @staticmethod
    def _reset(topics: list[str], account_id: str, region_name: str) -> None:
        from moto.sns.models import sns_backends

        backend = sns_backends[account_id][region_name]
        for arn in topics:
            topic = backend.topics.get(arn)
            if topic is not None:
                topic._policy_json = topic._create_default_topic_policy(region_name, account_id, topic.name)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        return cls(resource_name, cls._apply(cloudformation_json["Properties"], account_id, region_name))

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        cls._reset(original_resource.topics, account_id, region_name)
        original_resource.topics = cls._apply(cloudformation_json["Properties"], account_id, region_name)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        cls._reset(list(cloudformation_json["Properties"]["Topics"]), account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._reset(self.topics, account_id, region_name)


class CfnSnsSubscription(CloudFormationModel):
    """A topic subscription owned by a stack (moto had no model: the resource was skipped, so a
    queue subscribed with ``topic.addSubscription(new SqsSubscription(queue))`` got nothing).
    ``RawMessageDelivery``, ``FilterPolicy`` and ``FilterPolicyScope`` become subscription
    attributes; ``Ref`` is the subscription ARN."""

    def __init__(self, arn: str):
        self.arn = arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        import json

        from moto.sns.models import sns_backends

        p = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        sub = backend.subscribe(p["TopicArn"], p["Endpoint"], p["Protocol"])
        if "FilterPolicyScope" in p:
            backend.set_subscription_attributes(sub.arn, "FilterPolicyScope", p["FilterPolicyScope"])
        if "FilterPolicy" in p:
            policy = p["FilterPolicy"]
            backend.set_subscription_attributes(sub.arn, "FilterPolicy", policy if isinstance(policy, str) else json.dumps(policy))
        if "RawMessageDelivery" in p:
            backend.set_subscription_attributes(sub.arn, "RawMessageDelivery", "true" if _bool(p["RawMessageDelivery"], False) else "false")
        return cls(sub.arn)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        pass  # the model's delete() knows the ARN

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.sns.models import sns_backends

        sns_backends[account_id][region_name].unsubscribe(self.arn)


class CfnQueuePolicy(CloudFormationModel):
    """A queue's resource policy owned by a stack (moto had no model: the resource was skipped).
    ``Queues`` (URLs) get ``PolicyDocument`` as their ``Policy`` attribute, which the local cloud's
    SNS -> SQS delivery checks (patches.py); deleting the resource removes it."""

    def __init__(self, name: str, queues: list[str]):
        self.name, self.queues = name, queues

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def _set(queues: list[str], policy: Any, account_id: str, region_name: str) -> None:
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[account_id][region_name]
        for url in queues:
            queue = backend.queues.get(url.rstrip("/").rsplit("/", 1)[-1])
            if queue is not None:
                queue.policy = policy

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        import json

        p = cloudformation_json["Properties"]
        queues = list(p["Queues"])
        cls._set(queues, json.dumps(p["PolicyDocument"]), account_id, region_name)
        return cls(resource_name, queues)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        import json

        p = cloudformation_json["Properties"]
        cls._set(original_resource.queues, None, account_id, region_name)
        original_resource.queues = list(p["Queues"])
        cls._set(original_resource.queues, json.dumps(p["PolicyDocument"]), account_id, region_name)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        cls._set(list(cloudformation_json["Properties"]["Queues"]), None, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._set(self.queues, None, account_id, region_name)


# -- stack deletion order -----------------------------------------------------------------
def _names(value: Any, logical_ids: set[str]) -> set[str]:
    """The logical ids a template fragment refers to (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                template = inner[0] if isinstance(inner, list) else inner
                found.update(n.split(".")[0] for n in re.findall(r"\$\{([^!}][^}]*)\}", str(template)))
                if isinstance(inner, list) and len(inner) > 1:
                    found |= _names(inner[1], logical_ids)
            else:
                found |= _names(inner, logical_ids)
    elif isinstance(value, list):
        for inner in value:
            found |= _names(inner, logical_ids)
    return found & logical_ids


def deletion_order(resources: dict[str, dict]) -> list[str]:
    """Logical ids in an order CloudFormation may delete them: every resource before the ones it
    depends on (dependents first). Ties keep the template's order."""
    ids = set(resources)
    deps: dict[str, set[str]] = {}
    for logical_id, body in resources.items():
        depends_on = body.get("DependsOn") or []
        depends_on = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        deps[logical_id] = (_names(body, ids) | (set(depends_on) & ids)) - {logical_id}
    created: list[str] = []
    done: set[str] = set()

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if logical_id in done or logical_id in path:  # a cycle CloudFormation would have refused
            return
        for dep in sorted(deps[logical_id], key=list(resources).index):
            visit(dep, path + (logical_id,))
        done.add(logical_id)
        created.append(logical_id)

    for logical_id in resources:
        visit(logical_id, ())
    return created[::-1]


def _delete_stack_resources(self) -> None:
    """moto's ResourceMap.delete, walking the resources in reverse dependency order instead of a
    set's hash order (a failure is still retried on a later pass, then raised)."""
    order = deletion_order(self._resource_json_map)
    remaining = [k for k in order if self._resource_json_map[k].get("DeletionPolicy") != "Retain"]
    last_exception: Exception | None = None
    while remaining:
        failed = []
        for logical_id in remaining:
            parsed = self._parsed_resources.get(logical_id)
            try:
                if not isinstance(parsed, str) and parsed is not None:
                    self._delete_resource(parsed, self._resource_json_map[parsed.logical_resource_id])
                    self._parsed_resources.pop(parsed.logical_resource_id)
            except Exception as e:  # noqa: BLE001 - moto's own retry-then-raise behaviour
                last_exception = e
                failed.append(logical_id)
        if len(failed) == len(remaining):
            raise last_exception  # type: ignore[misc]
        remaining = failed


# -- change sets and parameters ------------------------------------------------------------
_moto_execute_change_set = CloudFormationBackend.execute_change_set
_moto_delete_change_set = CloudFormationBackend.delete_change_set
_moto_describe_change_set = CloudFormationBackend.describe_change_set
_moto_resolve_update_parameters = CloudFormationBackend._resolve_update_parameters
_moto_stack_parameters = Stack.stack_parameters


def _execute_change_set(self, change_set_name, stack_name=None):
    _moto_execute_change_set(self, change_set_name, stack_name)
    change_set = self.change_sets.get(change_set_name) or next(
        cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name
    )
    stack = self.stacks[change_set.stack_id]
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(change_set.parameters or {})
    stack.output_map = stack._create_output_map()
    for export in stack.exports:
        self.exports[export.name] = export


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"
    status_code = 404


def _describe_change_set(self, change_set_name):
    if change_set_name not in self.change_sets and not any(
        cs.change_set_name == change_set_name for cs in self.change_sets.values()
    ):
        raise ChangeSetNotFound(f"ChangeSet [{change_set_name}] does not exist")
    return _moto_describe_change_set(self, change_set_name)


def _delete_change_set(self, change_set_name):
    if change_set_name in self.change_sets or any(
        cs.change_set_name == change_set_name for cs in self.change_sets.values()
    ):
        _moto_delete_change_set(self, change_set_name)


def _raw_parameter(stack: Stack, key: str) -> Any:
    """The value the stack was given for a parameter (its template default if none)."""
    if key in (stack.parameters or {}):
        return stack.parameters[key]
    declared = (stack.template_dict or {}).get("Parameters", {}).get(key, {})
    if "Default" in declared:
        return declared["Default"]
    raise KeyError(key)


class _Parameters(dict):
    """Parameter values for UsePreviousValue and change detection: SSM-typed parameters keep the
    SSM parameter name the stack was given (moto resolves it again), others the resolved value;
    parameters left at their default answer with it."""

    def __init__(self, stack: Stack):
        values = dict(_moto_stack_parameters.fget(stack))
        for key, declared in ((stack.template_dict or {}).get("Parameters") or {}).items():
            if str(declared.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                try:
                    values[key] = _raw_parameter(stack, key)
                except KeyError:
                    pass
        super().__init__(values)
        self._stack = stack

    def __missing__(self, key: str) -> Any:
        return _raw_parameter(self._stack, key)


def _stack_parameters(self):
    return _Parameters(self)


def _resolve_update_parameters(self, instance, incoming_params):
    if isinstance(instance, Stack):
        known = instance.stack_parameters
        incoming_params = [
            p if not p.get("UsePreviousValue") else {"ParameterKey": p["ParameterKey"], "ParameterValue": known[p["ParameterKey"]]}
            for p in incoming_params
        ]
    return _moto_resolve_update_parameters(self, instance, incoming_params)


# -- Lambda Architectures, role ManagedPolicyArns, state-machine logging ---------------------
def _after_create_and_update(model, fix: Callable[[Any, dict, str, str], None]) -> None:
    """Wrap ``model``'s CloudFormation create and update: ``fix(resource, properties, account_id,
    region_name)`` completes what moto built before it is returned."""
    create, update = model.create_from_cloudformation_json, model.update_from_cloudformation_json

    @classmethod
    def create_fixed(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        resource = create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        fix(resource, cloudformation_json.get("Properties", {}), account_id, region_name)
        return resource

    @classmethod
    def update_fixed(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        resource = update.__func__(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                   region_name)
        fix(resource, cloudformation_json.get("Properties", {}), account_id, region_name)
        return resource

    model.create_from_cloudformation_json = create_fixed
    model.update_from_cloudformation_json = update_fixed


def _wrap_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    def set_arch_and_layers(fn, props: dict, _account_id: str, _region_name: str) -> None:
        if props.get("Architectures"):
            fn.architectures = list(props["Architectures"])
        # Layers: "A list of function layers to add to the function's execution environment.
        # Specify each layer by its ARN, including the version" (AWS::Lambda::Function); moto's
        # CloudFormation dropped them. An unknown version fails the resource, as Lambda does.
        fn.layers = fn._get_layers_data([str(arn) for arn in props.get("Layers") or []])

    _after_create_and_update(LambdaFunction, set_arch_and_layers)


def _wrap_layer_version() -> None:
    """``AWS::Lambda::LayerVersion``: ``Ref`` is the layer version ARN ("Ref returns the ARN of the
    layer version", AWS::Lambda::LayerVersion return values; moto returned the Python object, so a
    function's ``Layers`` could not name it), ``LayerName`` and ``CompatibleArchitectures`` are
    kept (moto named the layer after the generated resource name and dropped the architectures)."""
    from moto.awslambda.models import LayerVersion

    LayerVersion.physical_resource_id = property(lambda self: self.arn)
    create = LayerVersion.create_from_cloudformation_json

    @classmethod
    def create_layer(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json.get("Properties", {})
        layer = create.__func__(cls, props.get("LayerName") or resource_name, cloudformation_json, account_id,
                                region_name, **kwargs)
        if props.get("CompatibleArchitectures"):
            layer.compatible_architectures = list(props["CompatibleArchitectures"])
        return layer

    @classmethod
    def replace_layer(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        # every LayerVersion property is "Update requires: Replacement": publish a new version
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    LayerVersion.create_from_cloudformation_json = create_layer
    LayerVersion.update_from_cloudformation_json = replace_layer


def _sync_managed_policies(role, props: dict, account_id: str, region_name: str) -> None:
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    iam = iam_backends[account_id][get_partition(region_name)]
    wanted = set(props.get("ManagedPolicyArns") or [])
    attached = set(role.managed_policies)
    for arn in attached - wanted:
        iam.detach_role_policy(arn, role.name)
    for arn in wanted - attached:
        iam.attach_role_policy(arn, role.name)


def _wrap_role() -> None:
    from moto.iam.models import Role

    _after_create_and_update(Role, _sync_managed_policies)


def _camel(doc: Any) -> Any:
    """CloudFormation's PascalCase keys to the Step Functions API's camelCase."""
    if isinstance(doc, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_camel(v) for v in doc]
    return doc


def _wrap_state_machine() -> None:
    from moto.stepfunctions.models import StateMachine

    def configure(sm, props: dict, _account_id: str, _region_name: str) -> None:
        if props.get("LoggingConfiguration"):
            sm.loggingConfiguration = _camel(props["LoggingConfiguration"])
        if props.get("TracingConfiguration"):
            sm.tracingConfiguration = _camel(props["TracingConfiguration"])

    _after_create_and_update(StateMachine, configure)


def _wrap_ssm_parameter() -> None:
    """A parameter without ``Name`` gets the generated physical name (moto passed None), and an
    update keeps the parameter's name (moto re-created it under a new generated one)."""
    from moto.ssm.models import Parameter

    create, update = Parameter.create_from_cloudformation_json, Parameter.update_from_cloudformation_json

    @classmethod
    def create_param(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        cloudformation_json["Properties"].setdefault("Name", resource_name)
        return create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    @classmethod
    def update_param(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        name = cloudformation_json["Properties"].setdefault("Name", original_resource.name)
        return update.__func__(cls, original_resource, name, cloudformation_json, account_id, region_name)

    Parameter.create_from_cloudformation_json = create_param
    Parameter.update_from_cloudformation_json = update_param


def _wrap_sqs_queue() -> None:
    """A FIFO queue without ``QueueName`` gets a generated name with the ``.fifo`` suffix (the name
    of a FIFO queue must end with it: SQS developer guide, "Creating an Amazon SQS queue using
    CloudFormation"; queue names are at most 80 characters)."""
    from moto.sqs.models import Queue

    create = Queue.create_from_cloudformation_json

    @classmethod
    def create_queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json.get("Properties") or {}
        fifo = str(props.get("FifoQueue", "false")).lower() == "true"
        name = str(resource_name)
        if fifo and "QueueName" not in props and not name.endswith(".fifo"):
            resource_name = name[: 80 - len(".fifo")] + ".fifo"
        return create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Queue.create_from_cloudformation_json = create_queue


def apply() -> None:
    """Install the CloudFormation patches once per process."""
    global _applied
    if _applied:
        return
    # CfnAlarm, CfnLambdaVersion and CfnLambdaAlias are CloudFormationModel subclasses defined
    # after moto's (the map keeps the last model of a type: ours replace moto's LambdaVersion).
    parsing.get_model_map.cache_clear()
    if "AWS::S3::BucketPolicy" not in parsing.NULL_MODELS:
        parsing.NULL_MODELS.append("AWS::S3::BucketPolicy")
    parsing.ResourceMap.delete = _delete_stack_resources
    CloudFormationBackend.execute_change_set = _execute_change_set
    CloudFormationBackend.delete_change_set = _delete_change_set
    CloudFormationBackend.describe_change_set = _describe_change_set
    CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters
    Stack.stack_parameters = property(_stack_parameters)
    _wrap_lambda()
    _wrap_layer_version()
    _wrap_role()
    _wrap_state_machine()
    _wrap_ssm_parameter()
    _wrap_sqs_queue()
    _applied = True
