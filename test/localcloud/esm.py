"""SQS event-source mapping poller, standing in for Lambda's pollers.

For every SQS mapping that is Enabled it keeps ``ScalingConfig.MaximumConcurrency`` workers
(``default_concurrency`` when unset); a mapping in provisioned mode keeps one worker per
``ProvisionedPollerConfig.MaximumPollers`` (a real poller runs up to 10 invocations at once; one
each keeps the thread count bounded and still makes a ramp through the pollers visible). A worker receives up to ``BatchSize`` (≤ 10) messages with
the queue's visibility timeout, invokes the function with a faithful SQS event and then deletes
what succeeded: every message on success, nothing on a function error or throttle (they return
after the visibility timeout), all but the reported items with ``ReportBatchItemFailures``
(a malformed report fails the whole batch, as Lambda does). Messages the mapping's
``FilterCriteria`` do not match (``filtering``) are deleted without an invoke, as Lambda removes
them from the queue. Workers above the target finish their batch and exit, so disabling a
mapping or lowering its concurrency takes effect at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from . import filtering

log = logging.getLogger("localcloud.esm")


@dataclass
class EsmStats:
    batches: int = 0
    messages: int = 0
    deleted: int = 0
    failed_batches: int = 0
    throttled: int = 0
    filtered_out: int = 0


@dataclass
class _Mapping:
    uuid: str
    workers: list = field(default_factory=list)
    target: int = 0
    config: dict = field(default_factory=dict)


def sqs_event(records: list[dict], queue_arn: str, region: str) -> dict:
    """The event Lambda sends for a batch of SQS messages."""

    def attr(v: dict) -> dict:
        out = {"stringListValues": [], "binaryListValues": [], "dataType": v["DataType"]}
        if "StringValue" in v:
            out["stringValue"] = v["StringValue"]
        if "BinaryValue" in v:
            import base64

            out["binaryValue"] = base64.b64encode(v["BinaryValue"]).decode()
        return out

    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {k: attr(v) for k, v in m.get("MessageAttributes", {}).items()},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in records
        ]
    }


def failed_ids(payload: bytes, batch_ids: set[str]) -> Optional[set[str]]:
    """Message ids a ReportBatchItemFailures response marks as failed; None = whole batch failed."""
    try:
        doc = json.loads(payload or b"null")
    except ValueError:
        return None
    if doc is None or not isinstance(doc, dict) or doc.get("batchItemFailures") is None:
        return set()
    items = doc["batchItemFailures"]
    if not isinstance(items, list):
        return None
    ids = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in batch_ids:
            return None
        ids.add(ident)
    return ids


class EsmPoller:
    def __init__(self, cloud, poll_s: float = 0.5, default_concurrency: int = 5):
        self.cloud = cloud
        self.poll_s = poll_s
        self.default_concurrency = default_concurrency
        self.stats: dict[str, EsmStats] = {}
        self._mappings: dict[str, _Mapping] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="esm-manager")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for m in list(self._mappings.values()):
            for w in m.workers:
                w.join(timeout=15)

    def _run(self) -> None:
        lam = self.cloud.client("lambda")
        while not self._stop.is_set():
            try:
                self._reconcile(lam)
            except Exception:
                log.exception("ESM reconcile failed")
            self._stop.wait(self.poll_s)

    def _reconcile(self, lam) -> None:
        seen = set()
        for page in lam.get_paginator("list_event_source_mappings").paginate():
            for cfg in page["EventSourceMappings"]:
                if ":sqs:" not in cfg.get("EventSourceArn", ""):
                    continue
                uuid = cfg["UUID"]
                seen.add(uuid)
                with self._lock:
                    m = self._mappings.setdefault(uuid, _Mapping(uuid))
                    self.stats.setdefault(uuid, EsmStats())
                    m.config = cfg
                    enabled = cfg.get("State") == "Enabled"
                    limit = self._workers_for(cfg)
                    m.target = int(limit) if enabled else 0
                    m.workers = [w for w in m.workers if w.is_alive()]
                    while len(m.workers) < m.target:
                        w = threading.Thread(target=self._work, args=(m, len(m.workers)), daemon=True,
                                             name=f"esm-{uuid[:8]}-{len(m.workers)}")
                        m.workers.append(w)
                        w.start()
        with self._lock:
            for uuid in list(self._mappings):
                if uuid not in seen:
                    self._mappings[uuid].target = 0
                    del self._mappings[uuid]

    def _workers_for(self, cfg: dict) -> int:
        pollers = cfg.get("ProvisionedPollerConfig")
        if pollers:
            return int(pollers.get("MaximumPollers") or 200)
        return (cfg.get("ScalingConfig") or {}).get("MaximumConcurrency") or self.default_concurrency

    def _work(self, m: _Mapping, index: int) -> None:
        sqs = self.cloud.client("sqs")
        while not self._stop.is_set():
            with self._lock:
                if index >= m.target or self._mappings.get(m.uuid) is not m:
                    m.workers = [w for w in m.workers if w is not threading.current_thread()]
                    return
                cfg = dict(m.config)
            try:
                if not self._poll_once(sqs, cfg):
                    self._stop.wait(0.2)
            except Exception:
                log.exception("ESM %s worker failed", m.uuid)
                self._stop.wait(1)

    def _poll_once(self, sqs, cfg: dict) -> bool:
        queue_arn = cfg["EventSourceArn"]
        _, _, _, region, account, name = queue_arn.split(":")
        queue_url = f"{self.cloud.url}/{account}/{name}"
        resp = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max(1, min(int(cfg.get("BatchSize") or 10), 10)),
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return False
        stats = self.stats[cfg["UUID"]]
        patterns = filtering.parse(filtering.patterns_of(cfg.get("FilterCriteria")))
        records = sqs_event(messages, queue_arn, region)["Records"]
        dropped = [m for m, r in zip(messages, records) if not filtering.matches(patterns, r)]
        if dropped:
            # "If an Amazon SQS message doesn't satisfy your filter criteria, Lambda automatically
            # removes the message from the queue."
            self._delete(sqs, queue_url, dropped)
            stats.filtered_out += len(dropped)
            messages = [m for m in messages if m not in dropped]
            if not messages:
                return True
        stats.batches += 1
        stats.messages += len(messages)
        event = json.dumps(sqs_event(messages, queue_arn, region)).encode()
        result = self.cloud.invoke_by_arn(cfg["FunctionArn"], event)
        if result.throttled:
            stats.throttled += 1
            self._release(sqs, queue_url, messages)
            time.sleep(0.5)
            return True
        if result.errored:
            stats.failed_batches += 1
            return True
        done = messages
        if "ReportBatchItemFailures" in (cfg.get("FunctionResponseTypes") or []):
            failed = failed_ids(result.payload, {m["MessageId"] for m in messages})
            if failed is None:
                stats.failed_batches += 1
                return True
            done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(sqs, queue_url, done)
        stats.deleted += len(done)
        return True

    @staticmethod
    def _delete(sqs, queue_url: str, messages: list[dict]) -> None:
        for i in range(0, len(messages), 10):
            chunk = messages[i : i + 10]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )

    @staticmethod
    def _release(sqs, queue_url: str, messages: list[dict]) -> None:
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                     for n, m in enumerate(messages)],
        )
