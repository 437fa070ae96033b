//! Capability traits ("ports") the handlers are generic over. One trait per capability; real
//! adapters live in `breaker-aws`, in-memory fakes in tests. No SDK type appears here.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::events::{BreakerEvent, Measurement};
use crate::message::{BatchOutcome, OutgoingMessage, QueueInfo, ReceivedMessage};
use crate::record::CircuitRecord;

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

/// Lifecycle states of an event-source mapping, as `GetEventSourceMapping` reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EsmState {
    /// `Creating`
    Creating,
    /// `Enabling`
    Enabling,
    /// `Enabled`
    Enabled,
    /// `Disabling`
    Disabling,
    /// `Disabled`
    Disabled,
    /// `Updating`
    Updating,
    /// `Deleting`
    Deleting,
    /// Anything else the service reports.
    Other(String),
}

impl EsmState {
    /// Parse the service's state string.
    pub fn parse(s: &str) -> Self {
        match s {
            "Creating" => Self::Creating,
            "Enabling" => Self::Enabling,
            "Enabled" => Self::Enabled,
            "Disabling" => Self::Disabling,
            "Disabled" => Self::Disabled,
            "Updating" => Self::Updating,
            "Deleting" => Self::Deleting,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The service's state string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "Creating",
            Self::Enabling => "Enabling",
            Self::Enabled => "Enabled",
            Self::Disabling => "Disabling",
            Self::Disabled => "Disabled",
            Self::Updating => "Updating",
            Self::Deleting => "Deleting",
            Self::Other(s) => s,
        }
    }
}

/// What the breaker needs to know about an event-source mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EsmSnapshot {
    /// The mapping's UUID.
    pub uuid: String,
    /// Its lifecycle state.
    pub state: EsmState,
    /// `ScalingConfig.MaximumConcurrency`; `None` when there is no limit.
    pub maximum_concurrency: Option<u32>,
    /// `FunctionArn`: the function the mapping invokes (a full ARN, with a qualifier when the
    /// mapping is on an alias or version); `None` when the service did not report it.
    #[serde(default)]
    pub function_arn: Option<String>,
    /// `EventSourceArn`: the queue the mapping reads; `None` when the service did not report it.
    #[serde(default)]
    pub event_source_arn: Option<String>,
    /// `ProvisionedPollerConfig` of a mapping in provisioned mode; `None` in on-demand mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_poller_config: Option<PollerConfig>,
    /// `FilterCriteria.Filters[].Pattern`, in order: the messages the mapping delivers (see
    /// `crate::filter`); empty when the mapping has no filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_patterns: Vec<String>,
    /// `FilterCriteriaError` (`"code: message"`): Lambda could not show the filter criteria (e.g.
    /// they are encrypted with a KMS key the caller may not decrypt with), so the patterns are
    /// unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_criteria_error: Option<String>,
    /// `BatchSize`: the most messages one invocation gets; `None` when the service did not
    /// report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

/// An event-source mapping's `ProvisionedPollerConfig` (provisioned mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollerConfig {
    /// `MinimumPollers`, when set.
    pub minimum_pollers: Option<u32>,
    /// `MaximumPollers`, when set.
    pub maximum_pollers: Option<u32>,
}

impl PollerConfig {
    /// This configuration with the fields it leaves out set to what AWS documents as their
    /// defaults for SQS ([`crate::ramp::DEFAULT_MINIMUM_POLLERS`],
    /// [`crate::ramp::DEFAULT_MAXIMUM_POLLERS`]): what the mapping runs with.
    pub fn effective(self) -> Self {
        Self {
            minimum_pollers: Some(
                self.minimum_pollers
                    .unwrap_or(crate::ramp::DEFAULT_MINIMUM_POLLERS),
            ),
            maximum_pollers: Some(
                self.maximum_pollers
                    .unwrap_or(crate::ramp::DEFAULT_MAXIMUM_POLLERS),
            ),
        }
    }
}

/// What one update sets on a mapping's scaling: its concurrency limit (on-demand mode) or its
/// poller configuration (provisioned mode). AWS documents the two as mutually exclusive on an
/// SQS mapping, so an update carries one or the other, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scaling {
    /// `ScalingConfig.MaximumConcurrency`; `None` removes the limit (an empty `ScalingConfig`).
    Concurrency(Option<u32>),
    /// `ProvisionedPollerConfig`, sent as given; no `ScalingConfig`.
    Pollers(PollerConfig),
}

impl Scaling {
    /// The consumer's limit at this level, as one number: `MaximumConcurrency`, or the effective
    /// `MaximumPollers` in provisioned mode; `None` when the level sets no concurrency limit.
    pub fn limit(self) -> Option<u32> {
        match self {
            Self::Concurrency(limit) => limit,
            Self::Pollers(pollers) => pollers.effective().maximum_pollers,
        }
    }
}

impl From<Option<u32>> for Scaling {
    fn from(maximum_concurrency: Option<u32>) -> Self {
        Self::Concurrency(maximum_concurrency)
    }
}

/// The consumer's event-source mapping (Lambda `GetEventSourceMapping` /
/// `UpdateEventSourceMapping`). Concurrent updates fail with [`FaultKind::InUse`].
pub trait EventSourceMappings: Send + Sync {
    /// Current state and scaling.
    fn get(&self, uuid: &str) -> impl Future<Output = Result<EsmSnapshot, PortError>> + Send;

    /// Set `Enabled = false`; scaling untouched.
    fn disable(&self, uuid: &str) -> impl Future<Output = Result<EsmSnapshot, PortError>> + Send;

    /// Set `Enabled = true` and the scaling in the same update.
    fn enable(
        &self,
        uuid: &str,
        scaling: Scaling,
    ) -> impl Future<Output = Result<EsmSnapshot, PortError>> + Send;

    /// Change only the scaling.
    fn update_scaling(
        &self,
        uuid: &str,
        scaling: Scaling,
    ) -> impl Future<Output = Result<EsmSnapshot, PortError>> + Send;
}

/// A synchronous invocation's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeResult {
    /// HTTP status of the Invoke call (200 for a synchronous success or function error).
    pub status: u16,
    /// Lambda's `FunctionError`, if the function failed.
    pub function_error: Option<String>,
    /// The response payload.
    pub payload: Vec<u8>,
}

/// The consumer function (Lambda `Invoke`, `RequestResponse`).
pub trait Consumer: Send + Sync {
    /// Invoke the consumer synchronously with `payload`.
    fn invoke(
        &self,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<InvokeResult, PortError>> + Send;
}

/// CloudWatch alarm states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    /// `OK`
    Ok,
    /// `ALARM`
    Alarm,
    /// `INSUFFICIENT_DATA`
    InsufficientData,
}

/// The trigger alarm (CloudWatch `SetAlarmState` / `DescribeAlarms`).
pub trait Alarms: Send + Sync {
    /// Set the alarm to OK so that a renewed failure changes its state (and fires) again.
    fn set_ok(&self, reason: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The alarm's current state.
    fn state(&self) -> impl Future<Output = Result<AlarmState, PortError>> + Send;
}

/// The consumer's Lambda metrics over a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConsumerStats {
    /// Sum of `Errors`.
    pub errors: f64,
    /// Sum of `Invocations`.
    pub invocations: f64,
    /// Sum of `Throttles` (invocations Lambda refused for lack of concurrency; the consumer never
    /// ran them, so only `AWS/Lambda` counts them, per minute).
    pub throttles: f64,
}

/// The consumer's metrics (CloudWatch `GetMetricData` on `AWS/Lambda`).
pub trait Metrics: Send + Sync {
    /// Errors, invocations and throttles of the consumer between `since_ms` and `until_ms`
    /// (epoch ms).
    fn consumer_stats(
        &self,
        since_ms: u64,
        until_ms: u64,
    ) -> impl Future<Output = Result<ConsumerStats, PortError>> + Send;
}

/// The breaker's event bus (EventBridge `PutEvents`) and its metric lines.
pub trait Events: Send + Sync {
    /// Put one breaker event; fails unless EventBridge accepted it.
    fn put(&self, event: &BreakerEvent) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Record one measured value ([`Measurement::emf_line`]; on Lambda a line on stdout, which
    /// CloudWatch Logs turns into the metric). No call, so it cannot fail.
    fn measure(&self, measurement: &Measurement);
}

/// A running execution of the breaker's state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningExecution {
    /// Execution ARN.
    pub arn: String,
    /// Start time, epoch ms.
    pub start_ms: u64,
}

/// The breaker's state machine (Step Functions `ListExecutions`).
pub trait Executions: Send + Sync {
    /// Every RUNNING execution of `state_machine_arn`.
    fn list_running(
        &self,
        state_machine_arn: &str,
    ) -> impl Future<Output = Result<Vec<RunningExecution>, PortError>> + Send;

    /// Whether `execution_arn` is RUNNING now (`DescribeExecution`, strongly consistent); an
    /// execution that does not exist is not running.
    fn is_running(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// The durable circuit record (one DynamoDB item per circuit), written only by compare-and-swap.
pub trait CircuitRecords: Send + Sync {
    /// The record as stored now (a strongly consistent read); `None` if never written.
    fn load(&self) -> impl Future<Output = Result<Option<CircuitRecord>, PortError>> + Send;

    /// Store `record` with `revision + 1` if the stored revision is still `record.revision`
    /// (revision 0: only if nothing is stored). `Ok(false)`: another writer came first; reload and
    /// decide again.
    fn save(&self, record: &CircuitRecord) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// Wall-clock time, injectable for tests.
pub trait Clock: Send + Sync {
    /// Now, in epoch milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}
