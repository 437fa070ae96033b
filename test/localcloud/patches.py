"""In-process patches to moto 5.2.5 run-time behaviour (CloudFormation gaps live in cfn.py).

- Lambda Invoke (SDK and the Step Functions interpreter) runs the function on the runtime host.
- SQS no longer delivers to event-source mappings inside SendMessage; the ESM poller does.
- EventBridge: Step Functions targets start a named execution; SNS targets publish to the topic
  (input transformed as EventBridge does, refused unless the topic policy lets
  events.amazonaws.com publish; see "EventBridge -> SNS" below), and SNS delivers to an SQS
  subscriber only if the queue policy lets sns.amazonaws.com send; disabled rules and rules without
  an event pattern (schedule-only) match no events; other targets keep moto's delivery.
- CloudFormation state machines live in the backend the Step Functions API serves
  (the interpreter's, when ``execute_state_machine`` is on).
- SQS (``fix_sqs``, also used by ``moto_server.py`` for the Rust moto tests):
  - thread safety: DeleteMessage rebuilds the queue's message list without the lock SendMessage
    appends under, so with concurrent requests (moto's server is threaded) a delete can drop a
    message another request just sent, or bring back one another delete just removed; and two
    concurrent ReceiveMessage calls can pick the same visible message. Deletes and receives now
    hold the queue's own lock (a receive's long-poll wait still releases it).
  - SendMessageBatch keeps each entry's ``MessageSystemAttributes`` (``AWSTraceHeader``), as
    SendMessage and real SQS do; moto drops them.
  - speed, same results: moto reads the clock through two naive ``datetime`` constructions per
    message per check, and every received message recomputes *all* queue attributes (three scans
    of the queue, three times) only to read ``MessageRetentionPeriod``; a 5,000-message queue then
    takes seconds per ReceiveMessage and minutes to fill. The clock becomes ``time.time()`` (the
    same system clock) and the retention check reads the queue's retention period directly.
  - retention: SQS deletes a message once its retention period has passed. moto only skips it in
    ReceiveMessage after marking it received (so it stays counted, ends that receive early, and
    after ``maxReceiveCount`` such receives is dead-lettered: the local cloud turned an expiry
    into a dead letter). Expired messages are now deleted before every receive and attribute
    read, and recorded in ``expired_messages`` (queue name, message) for tests.
- SQS FIFO queues (``fix_sqs_fifo``, part of ``fix_sqs``), as strict as SQS:
  - a per-message ``DelaySeconds`` is refused on a FIFO queue even when it is 0 (moto refuses
    only a positive one): "When you set FifoQueue, you can't set DelaySeconds per message. You
    can set this parameter only on a queue level." (SQS API reference, ``SendMessage`` and
    ``SendMessageBatchRequestEntry``). SendMessage fails with InvalidParameterValue; in a batch the
    entry fails (moto's per-entry path for an invalid delay).
  - deduplication: a message sent with a deduplication id (or, with ContentBasedDeduplication,
    the same body) within the 5-minute deduplication interval of an earlier one is accepted but
    not delivered, also when the earlier one was already deleted ("If a message with a particular
    message deduplication ID is sent successfully, any messages sent with the same message
    deduplication ID are accepted successfully but aren't delivered during the 5-minute
    deduplication interval", SQS developer guide, "Using the message deduplication ID"). moto
    compared only with messages still in the queue, so a retried send after the first copy was
    received and deleted was delivered twice.
  - a long-polling ReceiveMessage on a FIFO queue never returns a message of a group that has a
    message in flight: moto took the set of such groups once, before its long-poll wait, so a
    receive that started while a group was idle handed out the group's next message although
    another receive had taken the one before it meanwhile (two messages of one group in flight,
    processed out of order). FIFO long polls now re-run the receive (which takes the set afresh)
    until a message or the wait time.
  - a group whose in-flight messages timed out (or were released) is free again and delivers from
    its head: moto forgot a timed-out message only when a receive reached it, after judging the
    messages before it against the stale set, and so skipped a group's head and delivered a later
    message of the group first ("no other consumer can process messages from that same group
    until the visibility timeout expires or the message is deleted", SQS developer guide,
    "Interleaving multiple ordered message groups"; "Within each message group ID, all messages
    are sent and received in strict order", "FIFO queue delivery logic").
  - moto already requires MessageGroupId, requires a deduplication id unless
    ContentBasedDeduplication and returns a group's messages in order (``tests/test_sqs_fifo.py``
    holds it to that).
- SQS message sizes (``fix_sqs_sizes``, part of ``fix_sqs``): SQS counts a message's size as
  the UTF-8 bytes of its body plus every message attribute's name, data type and value (binary
  values as their bytes), against the queue's ``MaximumMessageSize`` (at most 1,048,576 bytes),
  and a ``SendMessageBatch`` as the sum of its messages' sizes, against 1,048,576 bytes; the
  ``AWSTraceHeader`` system attribute does not count. moto 5.2.5 counts only the body, and in
  characters, not bytes: it accepted a 1 MiB body with attributes, or a batch of 1 MiB of
  bodies plus attributes, that SQS refuses. Now SendMessage refuses such a message with
  ``InvalidParameterValue`` and SendMessageBatch refuses the whole request (nothing sent) with
  ``BatchRequestTooLong`` over the batch limit or ``InvalidParameterValue`` for an entry over the
  message limit. Sources: the SQS API reference, ``MessageAttributeValue`` ("All parts of the
  message attribute, including Name, Type, and Value, are part of the message size restriction
  (1 MiB or 1,048,576 bytes)"; string values are "Unicode with UTF-8 binary encoding"),
  ``SendMessageBatch`` (the maximum individual message size and the maximum total payload, "the
  sum of the individual lengths of all of the batched messages", are both the limit;
  ``BatchRequestTooLong``: "The length of all the messages put together is more than the
  limit"), and ``SendMessage`` ``MessageSystemAttributes`` ("The size of a message system
  attribute doesn't count towards the total size of a message").
- Lambda event-source mappings (``fix_lambda_filters``): CreateEventSourceMapping and
  UpdateEventSourceMapping refuse ``FilterCriteria`` patterns that cannot be applied
  (``filtering.parse``) with ``InvalidParameterValueException``, as Lambda validates them; moto
  stores any string.
- Lambda event-source mappings (``fix_lambda_esm``, also used by ``moto_server.py``): moto stores
  ``ProvisionedPollerConfig`` and ``ScalingConfig`` as given. Like AWS, an SQS mapping now refuses
  (InvalidParameterValueException, nothing changed) MinimumPollers outside 2-200, MaximumPollers
  outside 2-2,000 and a minimum above the maximum, fills a field left out with its documented
  default (2, 200), and refuses ``MaximumConcurrency`` together with a poller configuration, on
  Create and on Update (whatever the update leaves of the mapping's current settings). Sources:
  the Lambda API reference ``ProvisionedPollerConfig`` and the CloudFormation resource reference
  (ranges, defaults; a newer API page says MaximumPollers up to 10,000 for SQS: the stricter 2,000
  of the CloudFormation schema is kept), and the Lambda guide "Configuring scaling behavior for
  SQS event source mappings" ("maximum concurrency settings or ... provisioned mode. These are
  mutually exclusive options").
- Lambda aliases and versions (``fix_lambda_aliases``, ``invoked_resource``): an invoke naming an
  alias or a version (in the name, the ARN or ``Qualifier``) publishes its metrics under
  ``FunctionName`` and under ``FunctionName`` + ``Resource`` (``<fn>:<qualifier>``), as Lambda
  does; an event-source mapping created or updated on an alias or a version reports that qualified
  ARN as its ``FunctionArn`` and invokes it (moto reported the version behind an alias).
- CloudWatch (``fix_cloudwatch``): GetMetricStatistics and GetMetricData match a query's
  dimensions exactly, as CloudWatch does (moto's GetMetricStatistics matched any metric holding
  them among others, so a function's series also summed its aliases' series). PutMetricData keeps
  each datum's ``StorageResolution`` (1 = high resolution, 60 = standard, the default; anything
  else is ``InvalidParameterValue``), which moto dropped, so the alarm evaluator can tell a
  1-second metric from a 1-minute one (``high_resolution_statistics``).
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import logging
import re
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Optional

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.events.models import Rule
import moto.sqs.exceptions as sqs_exceptions
import moto.sqs.models as sqs_models
from moto.sqs.models import Queue, SQSBackend

log = logging.getLogger("localcloud.patches")

# The function that runs an invocation: (moto LambdaFunction, payload bytes, the alias's or
# version's `<fn>:<qualifier>` or None) -> InvokeResult.
Invoker = Callable[[object, bytes, Optional[str]], object]
_invoker: Optional[Invoker] = None
_applied = False


class TooManyRequestsException(LambdaClientError):
    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")


def set_invoker(invoker: Optional[Invoker]) -> None:
    global _invoker
    _invoker = invoker


def invoked_resource(fn, function_name: str, qualifier: Optional[str]) -> Optional[str]:
    """``<fn>:<qualifier>`` when an invoke names an alias or a version (in the name or ARN, or as
    ``Qualifier``), else ``None``: Lambda then publishes the invocation's metrics under
    ``FunctionName`` and ``Resource`` too ("Types of metrics for Lambda functions", dimension
    ``Resource``: a function version or alias). ``$LATEST`` is the unqualified function."""
    parts = function_name.split(":")
    if parts[0] == "arn":
        named = parts[7] if len(parts) == 8 else None
    elif len(parts) >= 3 and parts[1] == "function":  # partial ARN account:function:name[:q]
        named = parts[3] if len(parts) == 4 else None
    else:
        named = parts[1] if len(parts) == 2 else None
    q = named or qualifier
    if not q or q == "$LATEST":
        return None
    return f"{fn.function_name}:{q}"


# moto's Invoke handler reads the query parameter `qualifier`, but the SDKs send `Qualifier`, so an
# invoke of an alias or a version ran $LATEST. The handler below hands the real one over.
_invoke_qualifier = threading.local()


def _invoke_response(self):
    _invoke_qualifier.value = (self.querystring.get("Qualifier") or [None])[0]
    try:
        return _moto_invoke_response(self)
    finally:
        _invoke_qualifier.value = None


def _lambda_invoke(self, function_name, qualifier, body, headers, response_headers):
    qualifier = qualifier or getattr(_invoke_qualifier, "value", None)
    fn = self.get_function(function_name, qualifier)  # raises ResourceNotFound like Lambda
    if _invoker is None:
        raise LambdaClientError("ServiceException", "local cloud has no runtime host")
    payload = body.encode() if isinstance(body, str) else (body or b"{}")
    resource = invoked_resource(fn, function_name, qualifier)
    if headers.get("X-Amz-Invocation-Type") == "Event":
        threading.Thread(target=_invoker, args=(fn, payload, resource), daemon=True).start()
        return b""
    result = _invoker(fn, payload, resource)
    if result.throttled:
        raise TooManyRequestsException()
    if result.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["Content-Length"] = str(len(result.payload))
    return result.payload


def _no_queue_delivery(self):
    return {}


def _ignore_assignment(self, value):
    pass


_moto_send_to_targets = Rule.send_to_targets
# A fault campaign's hook on EventBridge -> Step Functions deliveries: called with the delivery
# (a function), the rule's name and the event, it may deliver late, twice or not at all, as
# EventBridge's at-least-once delivery can. None: deliver at once.
_delivery_hook: Optional[Callable[[Callable[[], None], str, dict], None]] = None


def set_delivery_hook(hook: Optional[Callable[[Callable[[], None], str, dict], None]]) -> None:
    global _delivery_hook
    _delivery_hook = hook



def _send_to_targets(self, original_event, transform_input=True):
    if self.state != "ENABLED" or not getattr(self.event_pattern, "_pattern", None):
        return
    if not self.event_pattern.matches_event(original_event):
        return
    others = [t for t in self.targets if ":states:" not in t["Arn"] and ":sns:" not in t["Arn"]]
    for target in self.targets:
        if ":sns:" in target["Arn"]:
            try:
                _publish_to_topic(self, target, original_event)
            except Exception:  # one failing target must not abort the others
                log.exception("EventBridge -> SNS delivery failed for %s", target["Arn"])
        if ":states:" in target["Arn"]:
            def deliver(target=target) -> None:
                try:
                    _start_execution(self, target, original_event)
                except Exception:  # one failing target must not abort the others
                    log.exception("EventBridge -> Step Functions delivery failed for %s", target["Arn"])

            hook = _delivery_hook
            if hook is None:
                deliver()
            else:
                hook(deliver, self.name, original_event)
    if others:
        rule = copy.copy(self)
        rule.targets = others
        _moto_send_to_targets(rule, original_event, transform_input)


def _event_document(event: dict) -> dict:
    doc = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(doc.get("time"), (int, float)):
        doc["time"] = datetime.fromtimestamp(doc["time"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def _simple_path(doc, path: str):
    """InputPath of the form ``$`` or ``$.a.b``."""
    node = doc
    for key in [k for k in path.lstrip("$").split(".") if k]:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _start_execution(rule, target: dict, event: dict) -> None:
    from moto.events.utils import EventTemplateParser
    from moto.stepfunctions.responses import get_backend

    doc = _event_document(event)
    if "Input" in target:
        execution_input = target["Input"]
    elif "InputPath" in target:
        execution_input = json.dumps(_simple_path(doc, target["InputPath"]))
    elif "InputTransformer" in target:
        transformer = target["InputTransformer"]
        execution_input = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=doc,
        )
        if not isinstance(execution_input, str):
            execution_input = json.dumps(execution_input)
    else:
        execution_input = json.dumps(doc)
    arn = target["Arn"]
    _, _, _, region, account, _rest = arn.split(":", 5)
    name = str(doc.get("id"))
    get_backend(account, region).start_execution(arn, name=name, execution_input=execution_input)


# -- EventBridge -> SNS ---------------------------------------------------------------------------
# What EventBridge does with an SNS target (moto has none: its send_to_targets raises
# NotImplementedError for one):
# - the message: the whole event (JSON) by default; ``Input`` as given; ``InputPath`` the JSON of
#   that part of the event; ``InputTransformer`` the template with each <variable> replaced.
#   Values are inserted as they are: a string without quotes and unescaped ("EventBridge doesn't
#   escape values extracted by Input Path, when populating the Input Template"), a number, true,
#   false or null as their JSON text, an object or array as compact JSON; a variable whose path
#   the event lacks "isn't created and won't appear in the output" (it becomes nothing). The
#   predefined aws.events.rule-arn, aws.events.rule-name, aws.events.event.ingestion-time,
#   aws.events.event and aws.events.event.json are filled too ("Transforming target input",
#   EventBridge user guide). A JSON object or array is passed on minified ("The JSON that is
#   passed to the target is minified"); any other text is the message as it is: a template that
#   is a quoted string keeps its quotes (what users see in their SNS e-mails: aws-cdk issues #5924
#   and #38121, terraform-provider-aws #43253), a template of plain text arrives as plain text.
# - permission: EventBridge publishes as the service principal events.amazonaws.com, so the
#   topic's resource policy must allow it sns:Publish; else the delivery fails and the message
#   is dropped (EventBridge counts a FailedInvocation; "Your Amazon SNS topic's resource-based
#   policy must allow EventBridge to publish messages", AWS knowledge center). The topic's
#   default policy (principal AWS "*" on condition AWS:SourceOwner) does not.
# - the topic's subscriptions get the message (moto's SNS -> SQS delivery, raw or in the SNS
#   envelope per RawMessageDelivery, if the queue's policy lets SNS send: see below); there is no Subject (AWS::Events::Rule targets have no
#   SNS parameters), so an e-mail subscription reads "AWS Notification Message".
# Refused deliveries are recorded in ``refused_sns_deliveries`` (rule name, topic ARN) for tests.
refused_sns_deliveries: list[tuple[str, str]] = []

_PREDEFINED = ("aws.events.rule-arn", "aws.events.rule-name", "aws.events.event.ingestion-time",
               "aws.events.event.json", "aws.events.event")


def _template_value(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _path_values(doc: dict, path: str) -> list:
    from jsonpath_ng.ext import parse

    return [m.value for m in parse(path).find(doc)]


def transform_input(template: str, paths_map: dict, doc: dict, rule_arn: str, rule_name: str,
                    ingestion_time: str) -> str:
    """The text EventBridge hands a target for ``InputTransformer`` (see the notes above)."""
    values: dict[str, str] = {}
    for name, path in (paths_map or {}).items():
        found = _path_values(doc, path)
        values[name] = _template_value(found[0]) if found else ""
    without_detail = {k: v for k, v in doc.items() if k != "detail"}
    predefined = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": ingestion_time,
        "aws.events.event.json": json.dumps(doc, separators=(",", ":")),
        "aws.events.event": json.dumps(without_detail, separators=(",", ":")),
    }
    # One pass over the template: an inserted value is never scanned for placeholders again.
    def fill(m: "re.Match[str]") -> str:
        name = m.group(1)
        if name in values:
            return values[name]
        if name in predefined:
            return predefined[name]
        return m.group(0)

    out = re.sub(r"<([A-Za-z0-9_.\-]+)>", fill, template)
    stripped = out.strip()
    if stripped[:1] in "{[":
        try:
            return json.dumps(json.loads(stripped), separators=(",", ":"))
        except ValueError:
            pass
    return out


def _matches(pattern: str, value: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _principal_is(principal, service: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        if any(p == "*" for p in _as_list(principal.get("AWS", []))):
            return True
        return service in _as_list(principal.get("Service", []))
    return False


def _condition_holds(condition: dict, source_arn: str, account: str) -> bool:
    """Only the keys a service's delivery carries (aws:SourceArn = the rule or topic,
    aws:SourceAccount); any other key (e.g. SNS's default policy's AWS:SourceOwner) is absent,
    so it does not hold."""
    known = {"aws:sourcearn": source_arn, "aws:sourceaccount": account}
    for operator, keys in (condition or {}).items():
        for key, expected in keys.items():
            actual = known.get(key.lower())
            if actual is None:
                return False
            wanted = _as_list(expected)
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in wanted
            elif operator in ("StringLike", "ArnLike"):
                ok = any(_matches(w, actual) for w in wanted)
            else:
                return False
            if not ok:
                return False
    return True


def service_may(policy: dict, service: str, action: str, resource_arn: str, source_arn: str, account: str) -> bool:
    """Whether a resource policy lets ``service`` (a service principal) do ``action`` on
    ``resource_arn`` on behalf of ``source_arn`` (an explicit Deny wins over any Allow)."""
    allowed = False
    for st in _as_list((policy or {}).get("Statement", [])):
        if not _principal_is(st.get("Principal"), service):
            continue
        if not any(_matches(a, action) for a in _as_list(st.get("Action", []))):
            continue
        if not any(_matches(r, resource_arn) for r in _as_list(st.get("Resource", "*"))):
            continue
        if not _condition_holds(st.get("Condition", {}), source_arn, account):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed


def eventbridge_may_publish(policy: dict, topic_arn: str, rule_arn: str, account: str) -> bool:
    """Whether a topic policy lets events.amazonaws.com publish for ``rule_arn``."""
    return service_may(policy, "events.amazonaws.com", "sns:Publish", topic_arn, rule_arn, account)


# SNS -> SQS: SNS sends as the service principal sns.amazonaws.com, so the queue's policy must
# allow it sqs:SendMessage (the SNS developer guide's "Give Amazon SNS topic permission to send
# messages to the Amazon SQS queue"; CDK's SqsSubscription adds that AWS::SQS::QueuePolicy, with
# aws:SourceArn = the topic). moto delivered to any queue. A refused delivery is dropped (SNS
# would retry, then give up or dead-letter) and recorded in ``refused_sqs_deliveries``
# (topic ARN, queue ARN).
refused_sqs_deliveries: list[tuple[str, str]] = []


def _queue_policy_checked(publish):
    @functools.wraps(publish)
    def checked(self, message, message_id, *args, **kwargs):
        if self.protocol == "sqs":
            _, _, _, region, account, queue_name = self.endpoint.split(":", 5)
            queue = sqs_models.sqs_backends[account][region].queues.get(queue_name)
            policy = json.loads(queue.policy) if queue is not None and queue.policy else {}
            if queue is None or not service_may(policy, "sns.amazonaws.com", "sqs:SendMessage", self.endpoint, self.topic.arn, self.topic.account_id):
                log.warning("SNS -> SQS: the policy of queue %s does not allow sns.amazonaws.com sqs:SendMessage "
                            "for topic %s; the message is dropped", self.endpoint, self.topic.arn)
                refused_sqs_deliveries.append((self.topic.arn, self.endpoint))
                return None
        return publish(self, message, message_id, *args, **kwargs)

    return checked


_sns_fixed = False


def fix_sns() -> None:
    """SNS -> SQS deliveries need the queue policy (see above)."""
    global _sns_fixed
    if _sns_fixed:
        return
    from moto.sns.models import Subscription

    Subscription.publish = _queue_policy_checked(Subscription.publish)
    _sns_fixed = True


def _publish_to_topic(rule, target: dict, event: dict) -> None:
    from moto.sns.models import sns_backends

    doc = _event_document(event)
    if "Input" in target:
        message = target["Input"]
    elif "InputPath" in target:
        message = json.dumps(_simple_path(doc, target["InputPath"]), separators=(",", ":"))
    elif "InputTransformer" in target:
        transformer = target["InputTransformer"]
        ingestion = event.get("ingestion-time", time.time())
        if isinstance(ingestion, (int, float)):
            ingestion = datetime.fromtimestamp(ingestion, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = transform_input(transformer.get("InputTemplate", ""), transformer.get("InputPathsMap", {}),
                                  doc, rule.arn, rule.name, str(ingestion))
    else:
        message = json.dumps(doc, separators=(",", ":"))
    topic_arn = target["Arn"]
    _, _, _, region, account, _name = topic_arn.split(":", 5)
    backend = sns_backends[account][region]
    topic = backend.topics.get(topic_arn)
    if topic is None:
        log.warning("EventBridge -> SNS: rule %s: topic %s does not exist; the event is dropped", rule.name, topic_arn)
        refused_sns_deliveries.append((rule.name, topic_arn))
        return
    if not eventbridge_may_publish(topic._policy_json, topic_arn, rule.arn, rule.account_id):
        log.warning("EventBridge -> SNS: rule %s: the policy of topic %s does not allow events.amazonaws.com "
                    "sns:Publish; the event is dropped", rule.name, topic_arn)
        refused_sns_deliveries.append((rule.name, topic_arn))
        return
    backend.publish(message, arn=topic_arn)


def _unix_time(dt: Optional[datetime] = None) -> float:
    if dt is not None:
        return _moto_unix_time(dt)
    return time.time()


def _unix_time_millis(dt: Optional[datetime] = None) -> float:
    return _unix_time(dt) * 1000.0


def _retention_ok(self, queue_name: str, message) -> bool:
    retention_seconds = int(self.get_queue(queue_name).message_retention_period)
    return retention_seconds + message.sent_timestamp / 1000 > time.time()


# (queue name, moto Message) of every message deleted by retention expiry, oldest first.
expired_messages: list = []


def _purge_expired(queue) -> None:
    """Delete the queue's messages whose retention period has passed (call under its lock)."""
    limit_ms = (time.time() - int(queue.message_retention_period)) * 1000
    old = [m for m in queue._messages if m.sent_timestamp <= limit_ms]
    if not old:
        return
    gone = set(map(id, old))
    queue._messages = [m for m in queue._messages if id(m) not in gone]
    queue._pending_messages.difference_update(old)
    expired_messages.extend((queue.name, m) for m in old)


def _expiring_get_queue_attributes(self, queue_name: str, attribute_names):
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        _purge_expired(queue)
    return _moto_get_queue_attributes(self, queue_name, attribute_names)


def _locked_delete(self, receipt_handle: str) -> None:
    with self._messages_lock:
        _moto_delete(self, receipt_handle)


def _locked_receive(self, queue_name: str, *args, **kwargs):
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        _purge_expired(queue)
        if queue.fifo_queue:
            _free_visible_groups(queue)
        return _moto_receive(self, queue_name, *args, **kwargs)


def _free_visible_groups(queue) -> None:
    """Forget in-flight messages whose visibility timeout has passed (FIFO; see the module doc).
    moto drops such a message from its in-flight set only when a receive reaches it, after it has
    judged the groups before it: a group whose messages all timed out still looked busy, its head
    was skipped and a later message of the group delivered first."""
    for message in [m for m in queue.pending_messages if m.visible]:
        queue.pending_messages.discard(message)


def _send_batch_with_system_attributes(self, queue_name: str, entries: dict):
    messages, failed = _moto_send_batch(self, queue_name, entries)
    by_id = {entry["Id"]: entry for entry in entries.values()}
    for message in messages:
        system_attributes = by_id[message.user_id].get("MessageSystemAttributes")
        if system_attributes:
            message.system_attributes = system_attributes
    return messages, failed


# FIFO queues (see the module doc).
FIFO_DEDUPLICATION_SECONDS = 300
_fifo_fixed = False


def _fifo_send_message(send):
    """``send`` (moto's SendMessage, or a patch of it installed before) refusing a per-message
    delay on a FIFO queue."""

    @functools.wraps(send)
    def fifo_send_message(self, queue_name: str, message_body: str, *args, **kwargs):
        delay_seconds = kwargs.get("delay_seconds", args[1] if len(args) > 1 else None)
        if delay_seconds is not None and self.get_queue(queue_name).fifo_queue:
            from moto.sqs.exceptions import InvalidParameterValue

            # The same wording moto (and SQS) use for a positive delay; SendMessageBatch turns
            # this exception into a per-entry failure.
            raise InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. Reason: "
                "The request include parameter that is not valid for this queue type."
            )
        return send(self, queue_name, message_body, *args, **kwargs)

    return fifo_send_message


def _fifo_add_message(self, message) -> None:
    # A fresh send only (a dead-lettered message arrives with its receive count).
    if self.fifo_queue and message.deduplication_id and not message.approximate_receive_count:
        now = time.time()
        with self._messages_lock:
            seen = self.__dict__.setdefault("_fifo_deduplication", {})
            for key in [k for k, at in seen.items() if now - at >= FIFO_DEDUPLICATION_SECONDS]:
                del seen[key]
            if message.deduplication_id in seen:
                return  # accepted, not delivered
            seen[message.deduplication_id] = now
    _moto_add_message(self, message)


def _fifo_receive(receive):
    @functools.wraps(receive)
    def fifo_receive(self, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
                     *args, **kwargs):
        if not wait_seconds_timeout or not self.get_queue(queue_name).fifo_queue:
            return receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout, *args, **kwargs)
        deadline = time.time() + int(wait_seconds_timeout)
        while True:
            got = receive(self, queue_name, count, 0, visibility_timeout, *args, **kwargs)
            if got or time.time() >= deadline:
                return got
            time.sleep(0.05)

    return fifo_receive


def fix_sqs_fifo() -> None:
    """Install the FIFO strictness patches (see the module doc) once per process."""
    global _fifo_fixed
    if _fifo_fixed:
        return
    SQSBackend.send_message = _fifo_send_message(SQSBackend.send_message)
    Queue.add_message = _fifo_add_message
    SQSBackend.receive_message = _fifo_receive(SQSBackend.receive_message)
    _fifo_fixed = True


# SQS's limit on one message and on one SendMessageBatch (see the module doc).
MAX_MESSAGE_BYTES = 1_048_576


def sqs_message_size(body: str, message_attributes: Optional[dict]) -> int:
    """Bytes SQS counts for a message: body and attribute names, types and values, UTF-8."""
    size = len(body.encode("utf-8"))
    for name, value in (message_attributes or {}).items():
        size += len(name.encode("utf-8")) + len(value.get("DataType", "").encode("utf-8"))
        if value.get("StringValue") is not None:
            size += len(value["StringValue"].encode("utf-8"))
        binary = value.get("BinaryValue")
        if isinstance(binary, str):  # base64 on the wire (JSON protocol)
            binary = base64.b64decode(binary)
        if binary is not None:
            size += len(binary)
    return size


def _message_limit(queue) -> int:
    return min(int(queue.maximum_message_size), MAX_MESSAGE_BYTES)


def _too_long(limit: int) -> Exception:
    return sqs_exceptions.InvalidParameterValue(
        f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
    )


def _sized_send_message(self, queue_name: str, message_body: str, message_attributes=None, *args, **kwargs):
    limit = _message_limit(self.get_queue(queue_name))
    if sqs_message_size(message_body, message_attributes) > limit:
        raise _too_long(limit)
    return _moto_send_message(self, queue_name, message_body, message_attributes, *args, **kwargs)


class BatchRequestTooLong(sqs_exceptions.SQSException):
    """SQS's BatchRequestTooLong, with the length counted as SQS counts it."""

    def __init__(self, length: int):
        super().__init__(
            "BatchRequestTooLong",
            f"Batch requests cannot be longer than {MAX_MESSAGE_BYTES} bytes. You have sent {length} bytes.",
        )


def _sized_send_batch(self, queue_name: str, entries: dict):
    # Judged before any entry is sent: SQS refuses the whole request.
    limit = _message_limit(self.get_queue(queue_name))
    sizes = [sqs_message_size(e["MessageBody"], e.get("MessageAttributes")) for e in entries.values()]
    if sum(sizes) > MAX_MESSAGE_BYTES:
        raise BatchRequestTooLong(sum(sizes))
    if any(size > limit for size in sizes):
        raise _too_long(limit)
    return _send_batch_with_system_attributes(self, queue_name, entries)


def fix_sqs_sizes() -> None:
    """Count message and batch sizes as SQS does (see the module doc)."""
    SQSBackend.send_message = _sized_send_message
    SQSBackend.send_message_batch = _sized_send_batch


# Provisioned mode on an SQS mapping (see the module doc).
MIN_POLLERS, MAX_MINIMUM_POLLERS, MAX_MAXIMUM_POLLERS = 2, 200, 2000
DEFAULT_POLLERS = {"MinimumPollers": 2, "MaximumPollers": 200}


def _esm_invalid(message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError  # Lambda speaks JSON

    return JsonRESTError("InvalidParameterValueException", message)


def _checked_pollers(pollers, event_source_arn: str):
    """The poller configuration as the mapping keeps it, or an InvalidParameterValueException."""
    if pollers is None:
        return None
    if ":sqs:" not in event_source_arn:
        raise _esm_invalid("ProvisionedPollerConfig is supported for Amazon SQS, Amazon MSK and "
                           "self-managed Apache Kafka event sources only")
    unknown = set(pollers) - set(DEFAULT_POLLERS)
    if unknown:
        raise _esm_invalid(f"ProvisionedPollerConfig: {sorted(unknown)} not supported for Amazon SQS")
    kept = {**DEFAULT_POLLERS, **{k: int(v) for k, v in pollers.items()}}
    low, high = kept["MinimumPollers"], kept["MaximumPollers"]
    if not MIN_POLLERS <= low <= MAX_MINIMUM_POLLERS:
        raise _esm_invalid(f"MinimumPollers {low} is outside {MIN_POLLERS}-{MAX_MINIMUM_POLLERS} "
                           "for an Amazon SQS event source")
    if not MIN_POLLERS <= high <= MAX_MAXIMUM_POLLERS:
        raise _esm_invalid(f"MaximumPollers {high} is outside {MIN_POLLERS}-{MAX_MAXIMUM_POLLERS} "
                           "for an Amazon SQS event source")
    if low > high:
        raise _esm_invalid(f"MinimumPollers {low} is greater than MaximumPollers {high}")
    return kept


def _check_exclusive(scaling, pollers) -> None:
    if pollers is not None and (scaling or {}).get("MaximumConcurrency") is not None:
        raise _esm_invalid("MaximumConcurrency (ScalingConfig) and ProvisionedPollerConfig are "
                           "mutually exclusive on an Amazon SQS event source mapping")


def _strict_create_esm(self, spec):
    pollers = _checked_pollers(spec.get("ProvisionedPollerConfig"), spec.get("EventSourceArn") or "")
    _check_exclusive(spec.get("ScalingConfig"), pollers)
    if pollers is not None:
        spec = {**spec, "ProvisionedPollerConfig": pollers}
    return _moto_create_esm(self, spec)


def _strict_update_esm(self, uuid, spec):
    esm = self.get_event_source_mapping(uuid)
    if esm:
        pollers = esm.poller_config
        if "ProvisionedPollerConfig" in spec:
            pollers = _checked_pollers(spec["ProvisionedPollerConfig"], esm.event_source_arn)
            spec = {**spec, "ProvisionedPollerConfig": pollers}
        _check_exclusive(spec.get("ScalingConfig", esm.scaling_config), pollers)
    return _moto_update_esm(self, uuid, spec)


_lambda_esm_fixed = False


def fix_lambda_esm() -> None:
    """Validate SQS provisioned mode on event-source mappings as AWS does (see the module doc).
    Once per process."""
    global _lambda_esm_fixed, _moto_create_esm, _moto_update_esm
    if _lambda_esm_fixed:
        return
    from moto.awslambda.models import LambdaBackend

    _moto_create_esm = LambdaBackend.create_event_source_mapping
    _moto_update_esm = LambdaBackend.update_event_source_mapping
    LambdaBackend.create_event_source_mapping = _strict_create_esm
    LambdaBackend.update_event_source_mapping = _strict_update_esm
    _lambda_esm_fixed = True


def _qualified_function_arn(backend, name: str) -> str:
    """The full ARN an event-source mapping reports for ``FunctionName`` ``name``: the function's,
    qualified with the alias or version ``name`` spells out (AWS keeps it: a mapping on an alias
    invokes the alias). moto reported the ARN of the version the alias points to."""
    fn = backend.get_function(name)  # validates, raises ResourceNotFound like Lambda
    base = f"arn:aws:lambda:{backend.region_name}:{backend.account_id}:function:{fn.function_name}"
    resource = invoked_resource(fn, name, None)
    return base if resource is None else f"{base}:{resource.split(':', 1)[1]}"


def _esm_keeps_the_qualifier(method):
    @functools.wraps(method)
    def keeping(self, *args, **kwargs):
        spec = args[-1] if args else kwargs.get("spec", {})
        esm = method(self, *args, **kwargs)
        name = spec.get("FunctionName")
        if esm is not None and name:
            esm.function_arn = _qualified_function_arn(self, name)
        return esm

    return keeping


_lambda_aliases_fixed = False


def fix_lambda_aliases() -> None:
    """Event-source mappings on an alias or a version report and invoke it (see
    ``_qualified_function_arn``). Once per process."""
    global _lambda_aliases_fixed
    if _lambda_aliases_fixed:
        return
    from moto.awslambda.models import LambdaBackend

    LambdaBackend.create_event_source_mapping = _esm_keeps_the_qualifier(LambdaBackend.create_event_source_mapping)
    LambdaBackend.update_event_source_mapping = _esm_keeps_the_qualifier(LambdaBackend.update_event_source_mapping)
    global _moto_invoke_response
    from moto.awslambda.responses import LambdaResponse

    _moto_invoke_response = LambdaResponse.invoke
    LambdaResponse.invoke = _invoke_response
    _lambda_aliases_fixed = True


# CloudWatch treats every combination of dimensions as a metric of its own: GetMetricStatistics
# matches the query's dimensions exactly ("you must specify the same dimensions that were used when
# the metrics were created", CloudWatch concepts, "Dimensions"). moto matched any datum holding
# the queried dimensions among others, so FunctionName=fn also summed FunctionName=fn,
# Resource=fn:alias (an alias invocation counted twice). GetMetricData already compares the sorted
# dimension lists when a query has dimensions; one without any matched every datum of the name.
_exact_dimensions = threading.local()


def _get_all_metrics(self):
    data = _moto_get_all_metrics(self)
    if getattr(_exact_dimensions, "high_resolution_only", False):
        data = [md for md in data if storage_resolution(md) == 1]
    wanted = getattr(_exact_dimensions, "wanted", None)
    if wanted is None:
        return data
    return [md for md in data if sorted((d.name, d.value) for d in md.dimensions) == wanted]


# -- StorageResolution ---------------------------------------------------------------------
# PutMetricData's MetricDatum ``StorageResolution``: "Valid values are 1 and 60. Setting this to 1
# specifies this metric as a high-resolution metric, so that CloudWatch stores the metric with
# sub-minute resolution down to one second. Setting this to 60 specifies this metric as a
# regular-resolution metric, which CloudWatch stores at 1-minute resolution ... This field is
# optional, if you do not specify it the default of 60 is used" (CloudWatch API reference,
# MetricDatum). moto dropped the field; each stored datum now carries it.
_put_lock = threading.Lock()


def storage_resolution(datum) -> int:
    """The storage resolution a stored moto datum was put with (60 when it was not given)."""
    return getattr(datum, "storage_resolution", 60)


def _put_metric_data(self, namespace, metric_data):
    from moto.cloudwatch.exceptions import InvalidParameterValue

    resolutions = []
    for i, member in enumerate(metric_data, start=1):
        raw = member.get("StorageResolution", 60)
        try:
            resolution = float(raw)
        except (TypeError, ValueError):
            resolution = None
        if resolution not in (1.0, 60.0):
            raise InvalidParameterValue(
                f"The value {raw} for parameter MetricData.member.{i}.StorageResolution is not valid. "
                "Valid values are 1 and 60.")
        resolutions.append(int(resolution))
    for i, member in enumerate(metric_data, start=1):
        self._validate_parameters_put_metric_data(member, i)
    with _put_lock:  # tag exactly the datums each member appended
        for member, resolution in zip(metric_data, resolutions):
            before = len(self.metric_data)
            _moto_put_metric_data(self, namespace, [member])
            for datum in self.metric_data[before:]:
                datum.storage_resolution = resolution


def high_resolution_statistics(account_id: str, region: str, namespace: str, metric_name: str,
                               dimensions: list[dict], start: datetime, end: datetime, period: int) -> list:
    """GetMetricStatistics (exact dimensions) over the high-resolution datums only, in-process: what
    a 10/20/30 s alarm period reads (see alarms.py, ``STRICT_RESOLUTION``). moto ``Statistics``."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    _exact_dimensions.high_resolution_only = True
    try:
        return backend.get_metric_statistics(namespace, metric_name, start, end, period,
                                             ["SampleCount", "Sum", "Minimum", "Maximum"], dimensions)
    finally:
        _exact_dimensions.high_resolution_only = False


def _exact_get_metric_statistics(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit=None):
    _exact_dimensions.wanted = sorted((d["Name"], d.get("Value")) for d in dimensions or [])
    try:
        return _moto_get_metric_statistics(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit)
    finally:
        _exact_dimensions.wanted = None


def _exact_get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
    plain = [q for q in queries if "MetricStat" in q and not q["MetricStat"]["Metric"].get("Dimensions")]
    if not plain or any("Expression" in q for q in queries):  # math needs its metrics in one call
        return _moto_get_metric_data(self, queries, start_time, end_time, scan_by)
    results = []
    for query in queries:
        stat = query.get("MetricStat")
        if stat is None or stat["Metric"].get("Dimensions"):
            results.extend(_moto_get_metric_data(self, [query], start_time, end_time, scan_by))
            continue
        _exact_dimensions.wanted = []  # no dimensions: only the metric without any
        try:
            results.extend(_moto_get_metric_data(self, [query], start_time, end_time, scan_by))
        finally:
            _exact_dimensions.wanted = None
    return results


_cloudwatch_fixed = False


def fix_cloudwatch() -> None:
    """Exact dimension matching in GetMetricStatistics and GetMetricData, and PutMetricData keeping
    (and checking) ``StorageResolution`` (see above). Once per process."""
    global _cloudwatch_fixed, _moto_get_all_metrics, _moto_get_metric_statistics, _moto_get_metric_data
    global _moto_put_metric_data
    if _cloudwatch_fixed:
        return
    from moto.cloudwatch.models import CloudWatchBackend

    _moto_put_metric_data = CloudWatchBackend.put_metric_data
    CloudWatchBackend.put_metric_data = _put_metric_data
    _moto_get_all_metrics = CloudWatchBackend.get_all_metrics
    _moto_get_metric_statistics = CloudWatchBackend.get_metric_statistics
    _moto_get_metric_data = CloudWatchBackend.get_metric_data
    CloudWatchBackend.get_all_metrics = _get_all_metrics
    CloudWatchBackend.get_metric_statistics = _exact_get_metric_statistics
    CloudWatchBackend.get_metric_data = _exact_get_metric_data
    _cloudwatch_fixed = True


_dynamodb_lock = threading.RLock()


def _serialized(write):
    @functools.wraps(write)
    def locked(self, *args, **kwargs):
        with _dynamodb_lock:
            return write(self, *args, **kwargs)

    return locked


_dynamodb_fixed = False


def fix_dynamodb() -> None:
    """Make moto's DynamoDB item writes atomic, as DynamoDB's are: moto checks a
    ConditionExpression and then writes, with nothing between two server threads, so two
    conditional writes of the same revision could both succeed. One lock around every item write
    (and the reads that feed a transaction) closes that; the circuit record's single flight rests
    on it. Once per process."""
    global _dynamodb_fixed
    if _dynamodb_fixed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    _dynamodb_fixed = True


_moto_unix_time = sqs_models.unix_time
_moto_send_batch = SQSBackend.send_message_batch
_moto_send_message = SQSBackend.send_message
_moto_delete = Queue.delete_message
_moto_receive = SQSBackend.receive_message
_moto_get_queue_attributes = SQSBackend.get_queue_attributes
_moto_add_message = Queue.add_message
_sqs_fixed = False


def _checked_filter_criteria(method):
    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        spec = args[-1] if args else kwargs.get("spec", {})
        from moto.awslambda.exceptions import InvalidParameterValueException

        from .filtering import InvalidFilter, parse, patterns_of

        try:
            parse(patterns_of(spec.get("FilterCriteria")))
        except InvalidFilter as e:
            raise InvalidParameterValueException(f"Invalid filter pattern definition: {e}") from None
        return method(self, *args, **kwargs)

    return checked


_lambda_filters_fixed = False


def fix_lambda_filters() -> None:
    """Validate ESM FilterCriteria on create and update (see the module doc), once per process."""
    global _lambda_filters_fixed
    if _lambda_filters_fixed:
        return
    from moto.awslambda.models import LambdaBackend

    LambdaBackend.create_event_source_mapping = _checked_filter_criteria(LambdaBackend.create_event_source_mapping)
    LambdaBackend.update_event_source_mapping = _checked_filter_criteria(LambdaBackend.update_event_source_mapping)
    _lambda_filters_fixed = True


def fix_sqs() -> None:
    """Install the SQS thread-safety and speed patches (see the module doc) once per process."""
    global _sqs_fixed
    if _sqs_fixed:
        return
    sqs_models.unix_time = _unix_time
    sqs_models.unix_time_millis = _unix_time_millis
    SQSBackend.is_message_valid_based_on_retention_period = _retention_ok
    Queue.delete_message = _locked_delete
    SQSBackend.receive_message = _locked_receive
    SQSBackend.send_message_batch = _send_batch_with_system_attributes
    SQSBackend.get_queue_attributes = _expiring_get_queue_attributes
    fix_sqs_sizes()
    fix_sqs_fifo()  # wraps the sized send_message: both checks apply
    _sqs_fixed = True


# A function's unhandled failures that Step Functions names ``Lambda.Unknown`` ("Unhandled errors in
# Lambda are reported as Lambda.Unknown ... These include out-of-memory errors and function
# timeouts"): a runtime that exited (a crash, or out of memory: "signal: killed") and a timeout.
UNHANDLED_LAMBDA_ERRORS = ("Runtime.ExitError", "Sandbox.Timedout")
_sfn_lambda_errors_fixed = False


def _named_as_step_functions_does(from_error):
    @functools.wraps(from_error)
    def named(self, env, ex):
        event = from_error(self, env, ex)
        details = event.event_details or {}
        for key in ("lambdaFunctionFailedEventDetails", "taskFailedEventDetails"):
            d = details.get(key)
            if d and d.get("error") in UNHANDLED_LAMBDA_ERRORS:
                from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName

                d["error"] = "Lambda.Unknown"
                d["cause"] = ("The cause could not be determined because Lambda did not return an error type. "
                              f"Returned payload: {d.get('cause')}")
                event.error_name = CustomErrorName("Lambda.Unknown")
        return event

    return named


def fix_sfn_lambda_errors() -> None:
    """Lambda tasks whose function crashed or timed out fail as ``Lambda.Unknown`` (moto's
    interpreter took the runtime's errorType)."""
    global _sfn_lambda_errors_fixed
    if _sfn_lambda_errors_fixed:
        return
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

    for cls in (StateTaskServiceLambda, StateTaskLambda):
        cls._from_error = _named_as_step_functions_does(cls._from_error)
    _sfn_lambda_errors_fixed = True


_sfn_stop_fixed = False


def fix_sfn_stop() -> None:
    """StopExecution aborts a Standard execution when it is called, as Step Functions does: status
    ABORTED and the stop time at once (and in StopExecution's answer), although a task it started
    runs on. moto kept the execution RUNNING until its worker thread ended, then dated the stop."""
    global _sfn_stop_fixed
    if _sfn_stop_fixed:
        return
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    moto_stop = sfn_execution.Execution.stop
    moto_reflect = sfn_execution.BaseExecutionWorkerCommunication._reflect_execution_status

    @functools.wraps(moto_stop)
    def stop(self, stop_date, error, cause):
        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
        moto_stop(self, stop_date=stop_date, error=error, cause=cause)

    @functools.wraps(moto_reflect)
    def reflect(self):
        if self.execution.exec_status == ExecutionStatus.ABORTED and self.execution.stop_date is not None:
            return  # stopped by StopExecution: status and time are already what AWS shows
        moto_reflect(self)

    sfn_execution.Execution.stop = stop
    sfn_execution.BaseExecutionWorkerCommunication._reflect_execution_status = reflect
    _sfn_stop_fixed = True


def apply() -> None:
    """Install the run-time patches once per process."""
    global _applied
    if _applied:
        return
    fix_sqs()
    fix_dynamodb()
    fix_sfn_lambda_errors()
    fix_sfn_stop()
    fix_lambda_filters()
    fix_lambda_esm()
    fix_lambda_aliases()
    fix_cloudwatch()
    fix_sns()
    LambdaSimpleBackend.invoke = _lambda_invoke
    Queue.lambda_event_source_mappings = property(_no_queue_delivery, _ignore_assignment)
    Rule.send_to_targets = _send_to_targets
    import moto.stepfunctions.models as sfn_models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    sfn_models.stepfunctions_backends = stepfunctions_parser_backends  # CloudFormation's view
    _applied = True
