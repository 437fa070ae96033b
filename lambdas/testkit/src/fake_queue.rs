//! [`FakeQueue`]: an in-memory standard (or FIFO-flagged) SQS queue implementing
//! [`breaker_core::ports::Queue`] with the semantics the breaker relies on:
//!
//! - per-message delays and visibility timeouts on the tokio clock (so `tokio::time::pause()`
//!   and `advance` drive them in tests), long polling that wakes on new messages;
//! - `ApproximateReceiveCount` incremented by every receive, a fresh receipt handle per receive,
//!   and deletes with an *old* handle that "succeed" without deleting (as SQS may do);
//! - a dead-letter queue: a receive that would push a message past `maxReceiveCount` moves it to
//!   [`FakeQueue::dead_lettered`] instead of returning it;
//! - the API limits: 1–10 messages per receive, ≤ 10 distinct entry ids and ≤ 1 MiB per
//!   `SendMessageBatch`, delays ≤ 900 s (per-entry `InvalidParameterValue`), visibility ≤ 43,200 s;
//!   per-message delays are refused on FIFO queues;
//! - FIFO queues (`fifo(true)`): every send needs a `MessageGroupId` and a
//!   `MessageDeduplicationId` (`OutgoingMessage::fifo`; a standard queue refuses them), a second
//!   send with the same deduplication id within [`DEDUPLICATION_INTERVAL`] is accepted but not
//!   enqueued (also after the first was deleted), a receive never returns a message of a group
//!   with a message in flight, and a group's messages come in the order they were sent;
//! - fault injection: fail whole calls (`fail_calls`) or single send/delete entries
//!   (`fail_send_entries`, `fail_delete_entries`), a bounded number of times or forever;
//! - optional per-call latency ([`FakeQueue::set_latency`]);
//! - a call log ([`FakeQueue::calls`]) to assert what a handler did, and "no call at all".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breaker_core::message::{
    AttributeValue, BatchOutcome, EntryFailure, FifoIds, OutgoingMessage, QueueInfo,
    ReceivedMessage,
};
use breaker_core::ports::{FaultKind, PortError, Queue};
use tokio::sync::Notify;
use tokio::time::Instant;

/// SQS's limit on one batch's total payload and on one message.
pub const MAX_PAYLOAD_BYTES: usize = 1_048_576;

/// A FIFO queue's deduplication interval: 5 minutes.
pub const DEDUPLICATION_INTERVAL: Duration = Duration::from_secs(300);

/// The queue operations, for fault injection and the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `ReceiveMessage`.
    Receive,
    /// `SendMessageBatch`.
    SendBatch,
    /// `DeleteMessageBatch`.
    DeleteBatch,
    /// `ChangeMessageVisibility`.
    ChangeVisibility,
    /// `GetQueueAttributes`.
    Info,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Receive => "ReceiveMessage",
            Op::SendBatch => "SendMessageBatch",
            Op::DeleteBatch => "DeleteMessageBatch",
            Op::ChangeVisibility => "ChangeMessageVisibility",
            Op::Info => "GetQueueAttributes",
        }
    }
}

/// A message as the fake stores it (for assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// SQS message id.
    pub message_id: String,
    /// Body.
    pub body: String,
    /// User message attributes.
    pub message_attributes: BTreeMap<String, AttributeValue>,
    /// `AWSTraceHeader`, if sent with one.
    pub trace_header: Option<String>,
    /// `SentTimestamp` (epoch ms).
    pub sent_timestamp_ms: u64,
    /// `DelaySeconds` it was sent with.
    pub delay_seconds: u32,
    /// `MessageGroupId` (FIFO queues).
    pub message_group_id: Option<String>,
    /// `ApproximateReceiveCount`.
    pub receive_count: u32,
    /// True while received and its visibility timeout has not expired.
    pub in_flight: bool,
    /// True while its initial delay has not elapsed.
    pub delayed: bool,
}

type SendPredicate = Box<dyn Fn(&OutgoingMessage) -> bool + Send + Sync>;
type DeletePredicate = Box<dyn Fn(&StoredMessage) -> bool + Send + Sync>;

struct EntryFault<P> {
    matches: P,
    remaining: Option<usize>,
    code: String,
    sender_fault: bool,
}

struct CallFault {
    remaining: Option<usize>,
    kind: FaultKind,
    code: String,
}

struct Msg {
    message_id: String,
    body: String,
    message_attributes: BTreeMap<String, AttributeValue>,
    trace_header: Option<String>,
    sent_timestamp_ms: u64,
    delay_seconds: u32,
    fifo: Option<FifoIds>,
    visible_at: Instant,
    receive_count: u32,
    first_receive_ms: Option<u64>,
    current_handle: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Live messages in arrival order.
    messages: BTreeMap<u64, Msg>,
    /// Every receipt handle ever issued → message sequence number.
    handles: HashMap<String, u64>,
    deleted: HashSet<u64>,
    /// FIFO: deduplication id → when a message with it was last enqueued.
    deduplication: HashMap<String, Instant>,
    dead_lettered: Vec<StoredMessage>,
    /// Messages deleted by retention expiry.
    expired: Vec<StoredMessage>,
    call_faults: HashMap<Op, Vec<CallFault>>,
    send_faults: Vec<EntryFault<SendPredicate>>,
    delete_faults: Vec<EntryFault<DeletePredicate>>,
    calls: Vec<Op>,
    next_seq: u64,
    next_handle: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    notify: Notify,
    fifo: bool,
    max_receive_count: Option<u32>,
    retention_seconds: u64,
    epoch_base_ms: u64,
    started: Instant,
    ids: AtomicU64,
    latency_us: AtomicU64,
}

/// An in-memory SQS queue; clones share the same queue.
#[derive(Clone)]
pub struct FakeQueue {
    shared: Arc<Shared>,
}

impl Default for FakeQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FakeQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeQueue")
            .field("fifo", &self.shared.fifo)
            .field("max_receive_count", &self.shared.max_receive_count)
            .finish_non_exhaustive()
    }
}

/// Builder for a [`FakeQueue`].
#[derive(Debug, Default, Clone)]
pub struct FakeQueueBuilder {
    fifo: bool,
    max_receive_count: Option<u32>,
    retention_seconds: Option<u64>,
    epoch_base_ms: Option<u64>,
}

impl FakeQueueBuilder {
    /// Flag the queue as FIFO (`QueueInfo::fifo`, per-message delays refused).
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// Give the queue a dead-letter queue with this `maxReceiveCount`.
    pub fn max_receive_count(mut self, n: u32) -> Self {
        self.max_receive_count = Some(n);
        self
    }

    /// `MessageRetentionPeriod` (default SQS's 4 days): a message whose `SentTimestamp` is
    /// this old is deleted (see [`FakeQueue::expired`]).
    pub fn retention_seconds(mut self, seconds: u64) -> Self {
        self.retention_seconds = Some(seconds);
        self
    }

    /// Wall-clock time (epoch ms) the queue's clock starts at; default: now.
    pub fn epoch_base_ms(mut self, ms: u64) -> Self {
        self.epoch_base_ms = Some(ms);
        self
    }

    /// Build the queue.
    pub fn build(self) -> FakeQueue {
        let epoch_base_ms = self.epoch_base_ms.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        });
        FakeQueue {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner::default()),
                notify: Notify::new(),
                fifo: self.fifo,
                max_receive_count: self.max_receive_count,
                retention_seconds: self.retention_seconds.unwrap_or(DEFAULT_RETENTION_SECONDS),
                epoch_base_ms,
                started: Instant::now(),
                ids: AtomicU64::new(0),
                latency_us: AtomicU64::new(0),
            }),
        }
    }
}

/// SQS's default `MessageRetentionPeriod` (4 days).
pub const DEFAULT_RETENTION_SECONDS: u64 = 345_600;

fn port_error(op: Op, kind: FaultKind, code: &str, message: impl Into<String>) -> PortError {
    PortError {
        operation: op.name(),
        kind,
        code: Some(code.to_owned()),
        message: message.into(),
    }
}

fn entry_size(m: &OutgoingMessage) -> usize {
    m.payload_size()
}

impl FakeQueue {
    /// A standard queue without dead-letter queue, clock starting now.
    pub fn new() -> Self {
        FakeQueueBuilder::default().build()
    }

    /// Start building a queue with options.
    pub fn builder() -> FakeQueueBuilder {
        FakeQueueBuilder::default()
    }

    /// The queue's wall clock in epoch ms (follows the tokio clock, so paused time moves it).
    pub fn now_ms(&self) -> u64 {
        self.shared.epoch_base_ms + self.shared.started.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, inner: &mut Inner, m: OutgoingMessage, sent_timestamp_ms: u64) -> String {
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let message_id = format!(
            "00000000-0000-4000-8000-{:012x}",
            self.shared.ids.fetch_add(1, Ordering::Relaxed)
        );
        inner.messages.insert(
            seq,
            Msg {
                message_id: message_id.clone(),
                body: m.body,
                message_attributes: m.message_attributes,
                trace_header: m.trace_header,
                sent_timestamp_ms,
                delay_seconds: m.delay_seconds,
                fifo: m.fifo,
                visible_at: Instant::now() + Duration::from_secs(u64::from(m.delay_seconds)),
                receive_count: 0,
                first_receive_ms: None,
                current_handle: None,
            },
        );
        message_id
    }

    /// Put a message straight into the queue (no limits, no faults, not logged), sent now.
    /// Returns its message id.
    pub fn push(&self, m: OutgoingMessage) -> String {
        let now = self.now_ms();
        self.push_sent_at(m, now)
    }

    /// Put a message into the queue as if it had been sent at `sent_timestamp_ms`.
    pub fn push_sent_at(&self, m: OutgoingMessage, sent_timestamp_ms: u64) -> String {
        let id = {
            let mut inner = self.lock();
            self.insert(&mut inner, m, sent_timestamp_ms)
        };
        self.shared.notify.notify_waiters();
        id
    }

    /// Push a plain message with this body (no attributes, no delay).
    pub fn push_body(&self, body: impl Into<String>) -> String {
        self.push(OutgoingMessage {
            id: String::new(),
            body: body.into(),
            message_attributes: BTreeMap::new(),
            trace_header: None,
            delay_seconds: 0,
            fifo: None,
        })
    }

    /// Fail the next `times` calls of `op` (`None`: every call) with a whole-call error.
    pub fn fail_calls(&self, op: Op, times: Option<usize>, kind: FaultKind, code: &str) {
        self.lock()
            .call_faults
            .entry(op)
            .or_default()
            .push(CallFault {
                remaining: times,
                kind,
                code: code.to_owned(),
            });
    }

    /// Fail `SendMessageBatch` entries matching `matches` (`times` failures in all, `None`:
    /// forever) with `code`; a sender fault tells the caller retrying will not help.
    pub fn fail_send_entries(
        &self,
        matches: impl Fn(&OutgoingMessage) -> bool + Send + Sync + 'static,
        times: Option<usize>,
        code: &str,
        sender_fault: bool,
    ) {
        self.lock().send_faults.push(EntryFault {
            matches: Box::new(matches),
            remaining: times,
            code: code.to_owned(),
            sender_fault,
        });
    }

    /// Fail `DeleteMessageBatch` entries whose message matches `matches` (`times` failures in
    /// all, `None`: forever).
    pub fn fail_delete_entries(
        &self,
        matches: impl Fn(&StoredMessage) -> bool + Send + Sync + 'static,
        times: Option<usize>,
        code: &str,
    ) {
        self.lock().delete_faults.push(EntryFault {
            matches: Box::new(matches),
            remaining: times,
            code: code.to_owned(),
            sender_fault: false,
        });
    }

    /// Every call made through the [`Queue`] port, in order (including failed ones).
    pub fn calls(&self) -> Vec<Op> {
        self.lock().calls.clone()
    }

    /// How many calls of `op` were made.
    pub fn call_count(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|c| **c == op).count()
    }

    /// All live messages (visible, delayed or in flight), in arrival order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        let inner = self.lock();
        let now = Instant::now();
        inner.messages.values().map(|m| stored(m, now)).collect()
    }

    /// Number of live messages.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// True when no message is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages moved to the dead-letter queue.
    pub fn dead_lettered(&self) -> Vec<StoredMessage> {
        self.lock().dead_lettered.clone()
    }

    /// Messages SQS deleted because their retention period ran out.
    pub fn expired(&self) -> Vec<StoredMessage> {
        self.expire_retention();
        self.lock().expired.clone()
    }

    /// Delete messages whose `SentTimestamp` is a retention period old (as SQS does).
    fn expire_retention(&self) {
        let now = Instant::now();
        let limit = self
            .now_ms()
            .saturating_sub(self.shared.retention_seconds.saturating_mul(1000));
        let mut inner = self.lock();
        let old: Vec<u64> = inner
            .messages
            .iter()
            .filter(|(_, m)| m.sent_timestamp_ms <= limit)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in old {
            let m = inner.messages.remove(&seq).expect("listed above");
            inner.expired.push(stored(&m, now));
        }
    }

    /// Make every in-flight message visible again at once (as if their visibility expired).
    pub fn expire_visibility(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        for m in inner.messages.values_mut() {
            if m.receive_count > 0 && m.visible_at > now {
                m.visible_at = now;
            }
        }
        drop(inner);
        self.shared.notify.notify_waiters();
    }

    /// Delay every call through the [`Queue`] port by `latency` (a round trip), on the tokio clock.
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    async fn enter(&self, op: Op) -> Result<(), PortError> {
        let latency = self.shared.latency_us.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(Duration::from_micros(latency)).await;
        }
        let mut inner = self.lock();
        inner.calls.push(op);
        if let Some(faults) = inner.call_faults.get_mut(&op) {
            for f in faults.iter_mut() {
                match &mut f.remaining {
                    Some(0) => continue,
                    Some(n) => *n -= 1,
                    None => {}
                }
                return Err(port_error(op, f.kind, &f.code, "injected fault"));
            }
        }
        Ok(())
    }

    fn try_receive(&self, max: usize, visibility: u32) -> Vec<ReceivedMessage> {
        self.expire_retention();
        let now = Instant::now();
        let now_ms = self.now_ms();
        let mut inner = self.lock();
        let inner = &mut *inner;
        // Scan in arrival order and stop as soon as enough are found (O(max + hidden ahead)).
        let limit = self.shared.max_receive_count;
        // FIFO: no message of a group that has a message in flight.
        let blocked: HashSet<&str> = if self.shared.fifo {
            inner
                .messages
                .values()
                .filter(|m| m.receive_count > 0 && m.visible_at > now)
                .filter_map(|m| m.fifo.as_ref().map(|f| f.group_id.as_str()))
                .collect()
        } else {
            HashSet::new()
        };
        let mut ready = Vec::new();
        let mut live = 0;
        for (seq, m) in &inner.messages {
            if m.visible_at > now
                || m.fifo
                    .as_ref()
                    .is_some_and(|f| blocked.contains(f.group_id.as_str()))
            {
                continue;
            }
            ready.push(*seq);
            if limit.is_none_or(|l| m.receive_count < l) {
                live += 1;
                if live >= max {
                    break;
                }
            }
        }
        let mut out = Vec::new();
        for seq in ready {
            if out.len() >= max {
                break;
            }
            let m = inner.messages.get_mut(&seq).expect("listed above");
            if limit.is_some_and(|l| m.receive_count >= l) {
                let m = inner.messages.remove(&seq).expect("listed above");
                inner.dead_lettered.push(stored(&m, now));
                continue;
            }
            m.receive_count += 1;
            m.first_receive_ms.get_or_insert(now_ms);
            m.visible_at = now + Duration::from_secs(u64::from(visibility));
            inner.next_handle += 1;
            let handle = format!("{}#{}", m.message_id, inner.next_handle);
            m.current_handle = Some(handle.clone());
            let mut attributes = BTreeMap::from([
                (
                    "ApproximateReceiveCount".to_owned(),
                    m.receive_count.to_string(),
                ),
                ("SentTimestamp".to_owned(), m.sent_timestamp_ms.to_string()),
                ("SenderId".to_owned(), "AIDAFAKEQUEUE".to_owned()),
                (
                    "ApproximateFirstReceiveTimestamp".to_owned(),
                    m.first_receive_ms.unwrap_or(now_ms).to_string(),
                ),
            ]);
            if let Some(t) = &m.trace_header {
                attributes.insert("AWSTraceHeader".to_owned(), t.clone());
            }
            if let Some(f) = &m.fifo {
                attributes.insert("MessageGroupId".to_owned(), f.group_id.clone());
                attributes.insert(
                    "MessageDeduplicationId".to_owned(),
                    f.deduplication_id.clone(),
                );
            }
            out.push(ReceivedMessage {
                message_id: m.message_id.clone(),
                receipt_handle: handle.clone(),
                body: m.body.clone(),
                md5_of_body: String::new(),
                md5_of_message_attributes: None,
                attributes,
                message_attributes: m.message_attributes.clone(),
            });
            inner.handles.insert(handle, seq);
        }
        out
    }

    fn next_visible_at(&self) -> Option<Instant> {
        self.lock().messages.values().map(|m| m.visible_at).min()
    }
}

fn stored(m: &Msg, now: Instant) -> StoredMessage {
    StoredMessage {
        message_id: m.message_id.clone(),
        body: m.body.clone(),
        message_attributes: m.message_attributes.clone(),
        trace_header: m.trace_header.clone(),
        sent_timestamp_ms: m.sent_timestamp_ms,
        delay_seconds: m.delay_seconds,
        message_group_id: m.fifo.as_ref().map(|f| f.group_id.clone()),
        receive_count: m.receive_count,
        in_flight: m.receive_count > 0 && m.visible_at > now,
        delayed: m.receive_count == 0 && m.visible_at > now,
    }
}

impl Queue for FakeQueue {
    async fn receive(
        &self,
        max: u8,
        wait_seconds: u8,
        visibility_timeout: u32,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        self.enter(Op::Receive).await?;
        let invalid = |what: String| {
            Err(port_error(
                Op::Receive,
                FaultKind::NonRetryable,
                "InvalidParameterValue",
                what,
            ))
        };
        if !(1..=10).contains(&max) {
            return invalid(format!("MaxNumberOfMessages {max} not in 1..=10"));
        }
        if wait_seconds > 20 {
            return invalid(format!("WaitTimeSeconds {wait_seconds} > 20"));
        }
        if visibility_timeout > 43_200 {
            return invalid(format!("VisibilityTimeout {visibility_timeout} > 43200"));
        }
        let deadline = Instant::now() + Duration::from_secs(u64::from(wait_seconds));
        loop {
            let notified = self.shared.notify.notified();
            let got = self.try_receive(usize::from(max), visibility_timeout);
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            let wake = self
                .next_visible_at()
                .map_or(deadline, |t| t.clamp(Instant::now(), deadline));
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn send_batch(&self, entries: Vec<OutgoingMessage>) -> Result<BatchOutcome, PortError> {
        self.enter(Op::SendBatch).await?;
        let fail = |code: &str, what: String| {
            Err(port_error(
                Op::SendBatch,
                FaultKind::NonRetryable,
                code,
                what,
            ))
        };
        if entries.is_empty() {
            return fail("EmptyBatchRequest", "no entries".into());
        }
        if entries.len() > 10 {
            return fail(
                "TooManyEntriesInBatchRequest",
                format!("{} entries", entries.len()),
            );
        }
        let ids: HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        if ids.len() != entries.len() {
            return fail("BatchEntryIdsNotDistinct", "duplicate entry ids".into());
        }
        let total: usize = entries.iter().map(entry_size).sum();
        if total > MAX_PAYLOAD_BYTES {
            return fail(
                "BatchRequestTooLong",
                format!("{total} bytes > {MAX_PAYLOAD_BYTES}"),
            );
        }
        let now_ms = self.now_ms();
        let mut out = BatchOutcome::default();
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            for e in entries {
                let failure = |code: &str, sender_fault: bool, message: String| EntryFailure {
                    id: e.id.clone(),
                    code: code.to_owned(),
                    sender_fault,
                    message,
                };
                if e.delay_seconds > 900 {
                    out.failed.push(failure(
                        "InvalidParameterValue",
                        true,
                        format!("DelaySeconds {} > 900", e.delay_seconds),
                    ));
                    continue;
                }
                if self.shared.fifo && e.delay_seconds > 0 {
                    out.failed.push(failure(
                        "InvalidParameterValue",
                        true,
                        "per-message DelaySeconds is not supported on FIFO queues".into(),
                    ));
                    continue;
                }
                match (self.shared.fifo, &e.fifo) {
                    (true, None) => {
                        out.failed.push(failure(
                            "MissingParameter",
                            true,
                            "The request must contain the parameter MessageGroupId.".into(),
                        ));
                        continue;
                    }
                    (false, Some(_)) => {
                        out.failed.push(failure(
                            "InvalidParameterValue",
                            true,
                            "MessageDeduplicationId is only valid for FIFO queues".into(),
                        ));
                        continue;
                    }
                    _ => {}
                }
                let injected = inner
                    .send_faults
                    .iter_mut()
                    .find(|f| f.remaining != Some(0) && (f.matches)(&e));
                if let Some(f) = injected {
                    if let Some(n) = &mut f.remaining {
                        *n -= 1;
                    }
                    out.failed
                        .push(failure(&f.code, f.sender_fault, "injected fault".into()));
                    continue;
                }
                let id = e.id.clone();
                if let Some(f) = &e.fifo {
                    let now = Instant::now();
                    let dedup = f.deduplication_id.clone();
                    if inner
                        .deduplication
                        .get(&dedup)
                        .is_some_and(|at| now < *at + DEDUPLICATION_INTERVAL)
                    {
                        // Accepted, not enqueued again.
                        out.succeeded.push(id);
                        continue;
                    }
                    inner.deduplication.insert(dedup, now);
                }
                self.insert(inner, e, now_ms);
                out.succeeded.push(id);
            }
        }
        self.shared.notify.notify_waiters();
        Ok(out)
    }

    async fn delete_batch(
        &self,
        entries: Vec<(String, String)>,
    ) -> Result<BatchOutcome, PortError> {
        self.enter(Op::DeleteBatch).await?;
        if entries.is_empty() || entries.len() > 10 {
            return Err(port_error(
                Op::DeleteBatch,
                FaultKind::NonRetryable,
                if entries.is_empty() {
                    "EmptyBatchRequest"
                } else {
                    "TooManyEntriesInBatchRequest"
                },
                format!("{} entries", entries.len()),
            ));
        }
        let now = Instant::now();
        let mut out = BatchOutcome::default();
        let mut inner = self.lock();
        let inner = &mut *inner;
        for (id, handle) in entries {
            let Some(&seq) = inner.handles.get(&handle) else {
                out.failed.push(EntryFailure {
                    id,
                    code: "ReceiptHandleIsInvalid".into(),
                    sender_fault: true,
                    message: format!("unknown receipt handle {handle}"),
                });
                continue;
            };
            if inner.deleted.contains(&seq) {
                out.succeeded.push(id);
                continue;
            }
            let Some(m) = inner.messages.get(&seq) else {
                // Dead-lettered meanwhile: SQS accepts the delete and does nothing.
                out.succeeded.push(id);
                continue;
            };
            let view = stored(m, now);
            let injected = inner
                .delete_faults
                .iter_mut()
                .find(|f| f.remaining != Some(0) && (f.matches)(&view));
            if let Some(f) = injected {
                if let Some(n) = &mut f.remaining {
                    *n -= 1;
                }
                out.failed.push(EntryFailure {
                    id,
                    code: f.code.clone(),
                    sender_fault: f.sender_fault,
                    message: "injected fault".into(),
                });
                continue;
            }
            if m.current_handle.as_deref() == Some(handle.as_str()) {
                inner.messages.remove(&seq);
                inner.deleted.insert(seq);
            }
            // An older handle: SQS may report success without deleting; so does the fake.
            out.succeeded.push(id);
        }
        Ok(out)
    }

    async fn change_visibility(&self, receipt_handle: &str, seconds: u32) -> Result<(), PortError> {
        self.enter(Op::ChangeVisibility).await?;
        if seconds > 43_200 {
            return Err(port_error(
                Op::ChangeVisibility,
                FaultKind::NonRetryable,
                "InvalidParameterValue",
                format!("VisibilityTimeout {seconds} > 43200"),
            ));
        }
        let now = Instant::now();
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let seq = inner.handles.get(receipt_handle).copied();
            let m = seq.and_then(|s| inner.messages.get_mut(&s));
            let Some(m) = m.filter(|m| m.current_handle.as_deref() == Some(receipt_handle)) else {
                return Err(port_error(
                    Op::ChangeVisibility,
                    FaultKind::NonRetryable,
                    "ReceiptHandleIsInvalid",
                    format!("receipt handle {receipt_handle} is not current"),
                ));
            };
            if m.visible_at <= now {
                return Err(port_error(
                    Op::ChangeVisibility,
                    FaultKind::NonRetryable,
                    "MessageNotInflight",
                    "message is not in flight",
                ));
            }
            m.visible_at = now + Duration::from_secs(u64::from(seconds));
        }
        self.shared.notify.notify_waiters();
        Ok(())
    }

    async fn info(&self) -> Result<QueueInfo, PortError> {
        self.enter(Op::Info).await?;
        self.expire_retention();
        let now = Instant::now();
        let inner = self.lock();
        let mut info = QueueInfo {
            max_receive_count: self.shared.max_receive_count,
            fifo: self.shared.fifo,
            retention_seconds: Some(self.shared.retention_seconds),
            ..QueueInfo::default()
        };
        for m in inner.messages.values() {
            if m.visible_at <= now {
                info.visible += 1;
            } else if m.receive_count > 0 {
                info.in_flight += 1;
            } else {
                info.delayed += 1;
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str, delay: u32) -> OutgoingMessage {
        OutgoingMessage {
            id: body.to_owned(),
            body: body.to_owned(),
            message_attributes: BTreeMap::new(),
            trace_header: Some(format!("Root={body}")),
            fifo: None,
            delay_seconds: delay,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn received_messages_are_hidden_until_visibility_expires_and_count_receives() {
        let q = FakeQueue::new();
        q.push_body("a");
        let first = q.receive(10, 0, 30).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count(), 1);
        assert!(q.receive(10, 0, 30).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(31)).await;
        let second = q.receive(10, 0, 30).await.unwrap();
        assert_eq!(second[0].receive_count(), 2);
        assert_ne!(first[0].receipt_handle, second[0].receipt_handle);
    }

    #[tokio::test(start_paused = true)]
    async fn delete_with_an_old_handle_succeeds_without_deleting() {
        let q = FakeQueue::new();
        q.push_body("a");
        let old = q.receive(1, 0, 0).await.unwrap().remove(0);
        let new = q.receive(1, 0, 30).await.unwrap().remove(0);
        let out = q
            .delete_batch(vec![("0".into(), old.receipt_handle)])
            .await
            .unwrap();
        assert_eq!(out.succeeded, vec!["0".to_owned()]);
        assert_eq!(q.len(), 1);
        q.delete_batch(vec![("0".into(), new.receipt_handle)])
            .await
            .unwrap();
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_messages_appear_after_their_delay_and_long_poll_waits_for_them() {
        let q = FakeQueue::new();
        q.send_batch(vec![msg("late", 5)]).await.unwrap();
        assert!(q.receive(10, 0, 30).await.unwrap().is_empty());
        assert_eq!(q.info().await.unwrap().delayed, 1);
        let start = Instant::now();
        let got = q.receive(10, 20, 30).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(start.elapsed().as_secs(), 5);
        assert_eq!(got[0].trace_header(), Some("Root=late"));
    }

    #[tokio::test(start_paused = true)]
    async fn send_batch_enforces_entry_count_distinct_ids_and_payload_limit() {
        let q = FakeQueue::new();
        let eleven: Vec<_> = (0..11).map(|i| msg(&i.to_string(), 0)).collect();
        assert_eq!(
            q.send_batch(eleven).await.unwrap_err().code.as_deref(),
            Some("TooManyEntriesInBatchRequest")
        );
        let dup = vec![msg("x", 0), msg("x", 0)];
        assert_eq!(
            q.send_batch(dup).await.unwrap_err().code.as_deref(),
            Some("BatchEntryIdsNotDistinct")
        );
        let mut big = msg("big", 0);
        big.body = "x".repeat(600_000);
        let mut big2 = big.clone();
        big2.id = "big2".into();
        assert_eq!(
            q.send_batch(vec![big, big2])
                .await
                .unwrap_err()
                .code
                .as_deref(),
            Some("BatchRequestTooLong")
        );
        let out = q
            .send_batch(vec![msg("ok", 0), msg("late", 901)])
            .await
            .unwrap();
        assert_eq!(out.succeeded, vec!["ok".to_owned()]);
        assert_eq!(out.failed[0].code, "InvalidParameterValue");
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_queue_refuses_per_message_delay() {
        let q = FakeQueue::builder().fifo(true).build();
        let out = q.send_batch(vec![msg("a", 3)]).await.unwrap();
        assert!(out.succeeded.is_empty());
        assert!(q.info().await.unwrap().fifo);
    }

    fn fifo_msg(body: &str, group: &str, dedup: &str) -> OutgoingMessage {
        OutgoingMessage {
            fifo: Some(FifoIds {
                group_id: group.into(),
                deduplication_id: dedup.into(),
            }),
            ..msg(body, 0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_queue_needs_group_and_deduplication_ids_and_a_standard_queue_refuses_them() {
        let q = FakeQueue::builder().fifo(true).build();
        let out = q.send_batch(vec![msg("plain", 0)]).await.unwrap();
        assert_eq!(out.failed[0].code, "MissingParameter");
        let out = q.send_batch(vec![fifo_msg("a", "g", "d-a")]).await.unwrap();
        assert_eq!(out.succeeded, vec!["a"]);
        let got = q.receive(10, 0, 30).await.unwrap();
        assert_eq!(got[0].attributes["MessageGroupId"], "g");
        assert_eq!(q.messages()[0].message_group_id.as_deref(), Some("g"));
        let standard = FakeQueue::new();
        let out = standard
            .send_batch(vec![fifo_msg("a", "g", "d-a")])
            .await
            .unwrap();
        assert_eq!(out.failed[0].code, "InvalidParameterValue");
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_deduplication_id_is_remembered_for_five_minutes_even_after_delete() {
        let q = FakeQueue::builder().fifo(true).build();
        q.send_batch(vec![fifo_msg("a", "g", "same")])
            .await
            .unwrap();
        let got = q.receive(1, 0, 30).await.unwrap();
        q.delete_batch(vec![("0".into(), got[0].receipt_handle.clone())])
            .await
            .unwrap();
        let out = q
            .send_batch(vec![fifo_msg("b", "g", "same")])
            .await
            .unwrap();
        assert_eq!(out.succeeded, vec!["b"], "accepted");
        assert!(q.is_empty(), "but not enqueued again");
        tokio::time::advance(DEDUPLICATION_INTERVAL).await;
        q.send_batch(vec![fifo_msg("c", "g", "same")])
            .await
            .unwrap();
        assert_eq!(q.len(), 1, "after the interval the id is new again");
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_receive_keeps_group_order_and_skips_groups_with_a_message_in_flight() {
        let q = FakeQueue::builder().fifo(true).build();
        for (body, group) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")] {
            q.send_batch(vec![fifo_msg(body, group, body)])
                .await
                .unwrap();
        }
        let first = q.receive(1, 0, 30).await.unwrap();
        assert_eq!(first[0].body, "a1");
        // Group a is in flight: only group b, in order.
        let next: Vec<String> = q
            .receive(10, 0, 30)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(next, vec!["b1", "b2"]);
        q.change_visibility(&first[0].receipt_handle, 0)
            .await
            .unwrap();
        let again: Vec<String> = q
            .receive(10, 0, 30)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(
            again,
            vec!["a1", "a2"],
            "released a1 is still its group's head"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn messages_expire_at_their_retention_counted_from_their_own_send() {
        let q = FakeQueue::builder().retention_seconds(60).build();
        q.push(msg("old", 0));
        tokio::time::advance(Duration::from_secs(30)).await;
        q.push(msg("young", 0));
        assert_eq!(q.info().await.unwrap().retention_seconds, Some(60));
        tokio::time::advance(Duration::from_secs(30)).await;
        let got = q.receive(10, 0, 30).await.unwrap();
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["young"]
        );
        assert_eq!(q.expired().len(), 1);
        assert_eq!(q.expired()[0].body, "old");
        assert!(q.dead_lettered().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn receive_past_max_receive_count_dead_letters_the_message() {
        let q = FakeQueue::builder().max_receive_count(2).build();
        q.push_body("a");
        for _ in 0..2 {
            assert_eq!(q.receive(1, 0, 0).await.unwrap().len(), 1);
        }
        assert!(q.receive(1, 0, 0).await.unwrap().is_empty());
        assert_eq!(q.dead_lettered().len(), 1);
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn injected_faults_fail_whole_calls_and_single_entries_then_stop() {
        let q = FakeQueue::new();
        q.fail_calls(
            Op::SendBatch,
            Some(1),
            FaultKind::Retryable,
            "RequestThrottled",
        );
        q.fail_send_entries(|m| m.body == "b", Some(1), "InternalError", false);
        let err = q.send_batch(vec![msg("a", 0)]).await.unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable);
        let out = q.send_batch(vec![msg("a", 0), msg("b", 0)]).await.unwrap();
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].id, "b");
        let out = q.send_batch(vec![msg("b", 0)]).await.unwrap();
        assert_eq!(out.succeeded, vec!["b".to_owned()]);
        assert_eq!(q.call_count(Op::SendBatch), 3);

        q.fail_delete_entries(|m| m.body == "a", None, "InternalError");
        let got = q.receive(10, 0, 30).await.unwrap();
        let entries = got
            .iter()
            .map(|m| (m.body.clone(), m.receipt_handle.clone()))
            .collect();
        let out = q.delete_batch(entries).await.unwrap();
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].id, "a");
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn change_visibility_zero_releases_and_stale_handle_is_rejected() {
        let q = FakeQueue::new();
        q.push_body("a");
        let m = q.receive(1, 0, 300).await.unwrap().remove(0);
        q.change_visibility(&m.receipt_handle, 0).await.unwrap();
        let again = q.receive(1, 0, 300).await.unwrap().remove(0);
        let err = q.change_visibility(&m.receipt_handle, 0).await.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("ReceiptHandleIsInvalid"));
        q.change_visibility(&again.receipt_handle, 10)
            .await
            .unwrap();
    }
}
