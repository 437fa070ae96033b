"""A Python CDK app using the built `sqs_circuit_breaker` wheel: the twin of `twin.ts`.

Same queue, consumer and breaker props; writes the stack's template (JSON) to the path given.
Usage: .venv-python-cdk/bin/python test/python/app.py OUT.json
"""

import json
import sys

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from sqs_circuit_breaker import (
    AlarmResolution,
    CircuitAlarmSettings,
    CircuitBackoffSettings,
    CircuitDashboardOptions,
    CircuitRampSettings,
    SqsCircuitBreaker,
)


def main(out: str) -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "TwinStack", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    dlq = sqs.Queue(stack, "OrdersDlq", enforce_ssl=True)
    queue = sqs.Queue(
        stack,
        "OrdersQueue",
        enforce_ssl=True,
        visibility_timeout=cdk.Duration.seconds(60),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=5),
    )
    consumer = lambda_.Function(
        stack,
        "OrdersConsumer",
        runtime=lambda_.Runtime.NODEJS_22_X,
        handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => ({ batchItemFailures: [] });"),
        timeout=cdk.Duration.seconds(10),
    )
    source = sources.SqsEventSource(queue, batch_size=10, report_batch_item_failures=True)
    consumer.add_event_source(source)
    SqsCircuitBreaker(
        stack,
        "OrdersBreaker",
        consumer=consumer,
        queue=queue,
        event_source_mapping_id=source.event_source_mapping_id,
        circuit_name="orders",
        alarm_settings=CircuitAlarmSettings(resolution=AlarmResolution.HIGH, error_rate_threshold_percent=25),
        backoff=CircuitBackoffSettings(initial_delay=cdk.Duration.seconds(30), max_delay=cdk.Duration.minutes(10)),
        ramp=CircuitRampSettings(start_concurrency=2, steps=3),
        dashboard=CircuitDashboardOptions(dashboard_name="orders-breaker"),
    )
    template = app.synth().get_stack_by_name("TwinStack").template
    with open(out, "w", encoding="utf-8") as f:
        json.dump(template, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
