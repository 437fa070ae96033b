//! Capability traits ("ports") the handlers are generic over. One trait per capability; real
//! adapters live in `breaker-aws`, in-memory fakes in tests. No SDK type appears here.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::message::{BatchOutcome, OutgoingMessage, QueueInfo, ReceivedMessage};

/// How a failed call should be treated by the caller and, through the handler's error type, by
/// Step Functions `Retry`/`Catch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Throttling, 5xx, timeouts, connection errors: try again later.
    Retryable,
    /// Bad input, missing permission, missing resource: retrying will not help.
    NonRetryable,
    /// Lambda `ResourceInUseException`: another update of the same ESM is in progress.
    InUse,
}

/// A failed call to a dependency, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({kind:?}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct PortError {
    /// The API operation, e.g. `SendMessageBatch`.
    pub operation: &'static str,
    /// How to treat it.
    pub kind: FaultKind,
    /// The service error code, when there is one.
    pub code: Option<String>,
    /// What the service or transport said.
    pub message: String,
}

impl PortError {
    /// Shorthand constructor.
    pub fn new(operation: &'static str, kind: FaultKind, message: impl Into<String>) -> Self {
        Self {
            operation,
            kind,
            code: None,
            message: message.into(),
        }
    }

    /// True when a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, FaultKind::Retryable | FaultKind::InUse)
    }
}

/// The SQS queue the consumer reads from. Batch calls take at most 10 entries.
pub trait Queue: Send + Sync {
    /// Receive up to `max` (1–10) messages, long-polling up to `wait_seconds` (0–20), hiding them
    /// for `visibility_timeout` seconds. Returns every system and message attribute.
    fn receive(
        &self,
        max: u8,
        wait_seconds: u8,
        visibility_timeout: u32,
    ) -> impl Future<Output = Result<Vec<ReceivedMessage>, PortError>> + Send;

    /// `SendMessageBatch` (≤ 10 entries, ≤ 1 MiB in all); failures are per entry.
    fn send_batch(
        &self,
        entries: Vec<OutgoingMessage>,
    ) -> impl Future<Output = Result<BatchOutcome, PortError>> + Send;

    /// `DeleteMessageBatch` of `(entry id, receipt handle)` pairs (≤ 10); failures are per entry.
    fn delete_batch(
        &self,
        entries: Vec<(String, String)>,
    ) -> impl Future<Output = Result<BatchOutcome, PortError>> + Send;

    /// `ChangeMessageVisibility` (0–43,200 s); 0 releases the message at once.
    fn change_visibility(
        &self,
        receipt_handle: &str,
        seconds: u32,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Queue depth, redrive policy and type.
    fn info(&self) -> impl Future<Output = Result<QueueInfo, PortError>> + Send;
}
