"""The metrics SQS and Step Functions publish on their own (moto publishes none), so that a
dashboard or an alarm on them has data on the local cloud:

- ``AWS/SQS`` per ``QueueName``, once a minute at the minute (as SQS reports them, 1-minute data):
  ApproximateNumberOfMessagesVisible, ApproximateNumberOfMessagesNotVisible,
  ApproximateNumberOfMessagesDelayed and ApproximateAgeOfOldestMessage (seconds; 0 for an empty
  queue).
- ``AWS/States`` per ``StateMachineArn``, for each execution: ExecutionsStarted (1 at its start),
  and when it ends ExecutionsSucceeded, ExecutionsFailed, ExecutionsAborted or ExecutionsTimedOut
  (1 at its end) and ExecutionTime (milliseconds).

Read in-process from moto's backends and the Step Functions API; written with PutMetricData at
standard resolution.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import Callable

log = logging.getLogger("localcloud.servicemetrics")

END_METRICS = {"SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed", "ABORTED": "ExecutionsAborted",
               "TIMED_OUT": "ExecutionsTimedOut"}


def queue_metrics(queue, now: float) -> list[dict]:
    """The ``AWS/SQS`` datums of one moto queue at ``now`` (epoch s)."""
    messages = list(queue._messages)
    oldest = min((m.sent_timestamp for m in messages if m.sent_timestamp), default=None)
    values = {
        "ApproximateNumberOfMessagesVisible": queue.approximate_number_of_messages,
        "ApproximateNumberOfMessagesNotVisible": queue.approximate_number_of_messages_not_visible,
        "ApproximateNumberOfMessagesDelayed": queue.approximate_number_of_messages_delayed,
        "ApproximateAgeOfOldestMessage": 0 if oldest is None else max(0, int(now - oldest / 1000)),
    }
    at = datetime.fromtimestamp(now, tz=timezone.utc)
    dims = [{"Name": "QueueName", "Value": queue.name}]
    unit = {"ApproximateAgeOfOldestMessage": "Seconds"}
    return [{"MetricName": k, "Dimensions": dims, "Value": float(v), "Unit": unit.get(k, "Count"), "Timestamp": at}
            for k, v in values.items()]


def execution_metrics(execution: dict, seen: dict[str, set]) -> list[dict]:
    """The ``AWS/States`` datums of one ListExecutions entry not yet published (``seen``: what was)."""
    arn, sm = execution["executionArn"], execution["stateMachineArn"]
    done = seen.setdefault(arn, set())
    dims = [{"Name": "StateMachineArn", "Value": sm}]
    out = []
    if "started" not in done:
        done.add("started")
        out.append({"MetricName": "ExecutionsStarted", "Dimensions": dims, "Value": 1.0, "Unit": "Count",
                    "Timestamp": execution["startDate"]})
    end = END_METRICS.get(execution["status"])
    if end and execution.get("stopDate") and "ended" not in done:
        done.add("ended")
        out.append({"MetricName": end, "Dimensions": dims, "Value": 1.0, "Unit": "Count", "Timestamp": execution["stopDate"]})
        ms = (execution["stopDate"] - execution["startDate"]).total_seconds() * 1000
        out.append({"MetricName": "ExecutionTime", "Dimensions": dims, "Value": ms, "Unit": "Milliseconds",
                    "Timestamp": execution["stopDate"]})
    return out


class ServiceMetrics:
    """Publishes the metrics above while the local cloud runs (a thread; ``tick_s`` between looks)."""

    def __init__(self, cloud, tick_s: float = 1.0, now: Callable[[], float] = time.time):
        self.cloud = cloud
        self.tick_s = tick_s
        self.now = now
        self._stop = threading.Event()
        self._seen: dict[str, set] = {}
        self._minute = math.floor(now() / 60)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="servicemetrics").start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        cw, sfn = self.cloud.client("cloudwatch"), self.cloud.client("stepfunctions")
        while not self._stop.wait(self.tick_s):
            try:
                self.publish(cw, sfn)
            except Exception:  # noqa: BLE001 - a failed look is retried on the next tick
                log.exception("publishing the service metrics failed")

    def publish(self, cw, sfn) -> None:
        minute = math.floor(self.now() / 60)
        if minute != self._minute:
            self._minute = minute
            from moto.sqs.models import sqs_backends

            from .cloud import ACCOUNT

            data = [d for q in list(sqs_backends[ACCOUNT][self.cloud.region].queues.values())
                    for d in queue_metrics(q, minute * 60)]
            for i in range(0, len(data), 500):
                cw.put_metric_data(Namespace="AWS/SQS", MetricData=data[i : i + 500])
        data = []
        for page in sfn.get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                for ex_page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
                    for execution in ex_page["executions"]:
                        data += execution_metrics(execution, self._seen)
        for i in range(0, len(data), 500):
            cw.put_metric_data(Namespace="AWS/States", MetricData=data[i : i + 500])
