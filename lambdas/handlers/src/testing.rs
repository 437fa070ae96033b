//! In-memory fakes of the ports (the queue's fake, `FakeQueue`, lives in `breaker-testkit`).
//! Each records its calls so tests can assert what a handler did — and that it did nothing.
//! The fakes are `Clone` with shared state: a test puts clones into a [`Ports`](crate::ports::Ports)
//! bundle (`Fakes`, in this crate's unit tests, where `breaker-testkit` is available) and inspects
//! the originals afterwards.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use breaker_core::events::{BreakerEvent, DetailType, Measure, Measurement};
use breaker_core::ports::{
    AlarmState, Alarms, CircuitRecords, Clock, Consumer, ConsumerStats, EsmSnapshot, EsmState,
    EventSourceMappings, Events, Executions, FaultKind, InvokeResult, Metrics, PollerConfig,
    PortError, RunningExecution, Scaling,
};
use breaker_core::record::CircuitRecord;
use serde_json::Value;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A call made to [`FakeEsm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsmCall {
    /// `get`
    Get,
    /// `disable`
    Disable,
    /// `enable` with this limit
    Enable(Option<u32>),
    /// `update_scaling` to this limit
    UpdateScaling(Option<u32>),
    /// `enable` with this poller configuration (provisioned mode)
    EnablePollers(PollerConfig),
    /// `update_scaling` to this poller configuration (provisioned mode)
    UpdatePollers(PollerConfig),
}

#[derive(Debug)]
struct EsmInner {
    snapshot: EsmSnapshot,
    calls: Vec<EsmCall>,
    in_use_failures: usize,
    disabling_polls: usize,
    polls_left: usize,
    get_error: Option<PortError>,
}

/// An event-source mapping: `Enabled` with a limit, optional `ResourceInUseException`s on
/// updates, and a `Disabling` phase lasting a number of polls.
#[derive(Debug, Clone)]
pub struct FakeEsm(Arc<Mutex<EsmInner>>);

impl FakeEsm {
    /// A mapping `esm-1` in `state` with `maximum_concurrency`, from [`config`]'s queue
    /// ([`TEST_QUEUE_ARN`]) to its consumer ([`TEST_CONSUMER_ARN`]).
    pub fn new(state: EsmState, maximum_concurrency: Option<u32>) -> Self {
        Self(Arc::new(Mutex::new(EsmInner {
            snapshot: EsmSnapshot {
                uuid: "esm-1".into(),
                state,
                maximum_concurrency,
                function_arn: Some(TEST_CONSUMER_ARN.into()),
                event_source_arn: Some(TEST_QUEUE_ARN.into()),
                provisioned_poller_config: None,
                filter_patterns: Vec::new(),
                filter_criteria_error: None,
                batch_size: Some(10),
            },
            calls: Vec::new(),
            in_use_failures: 0,
            disabling_polls: 0,
            polls_left: 0,
            get_error: None,
        })))
    }

    /// The mapping reports this `FunctionArn` (`None`: none at all).
    pub fn function_arn(self, arn: Option<&str>) -> Self {
        lock(&self.0).snapshot.function_arn = arn.map(str::to_owned);
        self
    }

    /// The mapping reports this `EventSourceArn` (`None`: none at all).
    pub fn event_source_arn(self, arn: Option<&str>) -> Self {
        lock(&self.0).snapshot.event_source_arn = arn.map(str::to_owned);
        self
    }

    /// The mapping has these `FilterCriteria` patterns.
    pub fn filter_patterns(self, patterns: &[&str]) -> Self {
        lock(&self.0).snapshot.filter_patterns = patterns.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// The mapping reports this `FilterCriteriaError` instead of its patterns.
    pub fn filter_criteria_error(self, error: &str) -> Self {
        lock(&self.0).snapshot.filter_criteria_error = Some(error.to_owned());
        self
    }

    /// The mapping is in provisioned mode with this `ProvisionedPollerConfig`.
    pub fn provisioned_pollers(self, minimum: Option<u32>, maximum: Option<u32>) -> Self {
        lock(&self.0).snapshot.provisioned_poller_config = Some(PollerConfig {
            minimum_pollers: minimum,
            maximum_pollers: maximum,
        });
        self
    }

    /// The next `n` updates fail with `ResourceInUseException`.
    pub fn in_use_for(self, n: usize) -> Self {
        lock(&self.0).in_use_failures = n;
        self
    }

    /// After a disable, the mapping reports `Disabling` for `polls` gets (`usize::MAX`: forever).
    pub fn disabling_for(self, polls: usize) -> Self {
        lock(&self.0).disabling_polls = polls;
        self
    }

    /// Every `get` fails with `error`.
    pub fn failing_get(self, error: PortError) -> Self {
        lock(&self.0).get_error = Some(error);
        self
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<EsmCall> {
        lock(&self.0).calls.clone()
    }

    /// The calls that changed the mapping.
    pub fn updates(&self) -> Vec<EsmCall> {
        self.calls()
            .into_iter()
            .filter(|c| *c != EsmCall::Get)
            .collect()
    }

    /// Another actor (a recovery's close, an operator) sets the mapping's limit, without a call
    /// of ours being recorded.
    pub fn set_by_another(&self, state: EsmState, maximum_concurrency: Option<u32>) {
        let mut inner = lock(&self.0);
        inner.snapshot.state = state;
        inner.snapshot.maximum_concurrency = maximum_concurrency;
    }

    /// The mapping now.
    pub fn snapshot(&self) -> EsmSnapshot {
        lock(&self.0).snapshot.clone()
    }

    fn update(&self, call: EsmCall) -> Result<EsmSnapshot, PortError> {
        let mut inner = lock(&self.0);
        inner.calls.push(call.clone());
        if inner.in_use_failures > 0 {
            inner.in_use_failures -= 1;
            return Err(PortError {
                operation: "UpdateEventSourceMapping",
                kind: FaultKind::InUse,
                code: Some("ResourceInUseException".into()),
                message: "busy".into(),
            });
        }
        // AWS documents MaximumConcurrency and provisioned mode as mutually exclusive on an SQS
        // mapping ("Configuring scaling behavior for SQS event source mappings"): a limit sent to
        // a mapping with a ProvisionedPollerConfig is refused, as the service refuses it.
        if let EsmCall::Enable(Some(limit)) | EsmCall::UpdateScaling(Some(limit)) = call
            && inner.snapshot.provisioned_poller_config.is_some()
        {
            return Err(PortError {
                operation: "UpdateEventSourceMapping",
                kind: FaultKind::NonRetryable,
                code: Some("InvalidParameterValueException".into()),
                message: format!(
                    "MaximumConcurrency {limit} cannot be set on a mapping in provisioned mode"
                ),
            });
        }
        match call {
            EsmCall::Disable => {
                if !matches!(
                    inner.snapshot.state,
                    EsmState::Disabled | EsmState::Disabling
                ) {
                    inner.polls_left = inner.disabling_polls;
                    inner.snapshot.state = if inner.disabling_polls == 0 {
                        EsmState::Disabled
                    } else {
                        EsmState::Disabling
                    };
                }
            }
            EsmCall::Enable(limit) => {
                inner.snapshot.state = EsmState::Enabled;
                inner.snapshot.maximum_concurrency = limit;
            }
            EsmCall::UpdateScaling(limit) => inner.snapshot.maximum_concurrency = limit,
            EsmCall::EnablePollers(pollers) => {
                inner.snapshot.state = EsmState::Enabled;
                inner.snapshot.provisioned_poller_config = Some(pollers);
            }
            EsmCall::UpdatePollers(pollers) => {
                inner.snapshot.provisioned_poller_config = Some(pollers)
            }
            EsmCall::Get => {}
        }
        Ok(inner.snapshot.clone())
    }
}

impl EventSourceMappings for FakeEsm {
    async fn get(&self, _uuid: &str) -> Result<EsmSnapshot, PortError> {
        let mut inner = lock(&self.0);
        inner.calls.push(EsmCall::Get);
        if let Some(e) = &inner.get_error {
            return Err(e.clone());
        }
        if inner.snapshot.state == EsmState::Disabling && inner.polls_left != usize::MAX {
            inner.polls_left = inner.polls_left.saturating_sub(1);
            if inner.polls_left == 0 {
                inner.snapshot.state = EsmState::Disabled;
            }
        }
        Ok(inner.snapshot.clone())
    }

    async fn disable(&self, _uuid: &str) -> Result<EsmSnapshot, PortError> {
        self.update(EsmCall::Disable)
    }

    async fn enable(&self, _uuid: &str, scaling: Scaling) -> Result<EsmSnapshot, PortError> {
        self.update(match scaling {
            Scaling::Concurrency(limit) => EsmCall::Enable(limit),
            Scaling::Pollers(pollers) => EsmCall::EnablePollers(pollers),
        })
    }

    async fn update_scaling(
        &self,
        _uuid: &str,
        scaling: Scaling,
    ) -> Result<EsmSnapshot, PortError> {
        self.update(match scaling {
            Scaling::Concurrency(limit) => EsmCall::UpdateScaling(limit),
            Scaling::Pollers(pollers) => EsmCall::UpdatePollers(pollers),
        })
    }
}

type Responder = Box<dyn Fn(&Value) -> Result<InvokeResult, PortError> + Send + Sync>;

/// The consumer: answers each invocation with a responder and records the events it got.
#[derive(Clone)]
pub struct FakeConsumer {
    respond: Arc<Responder>,
    payloads: Arc<Mutex<Vec<Value>>>,
}

impl std::fmt::Debug for FakeConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConsumer")
            .field("invocations", &lock(&self.payloads).len())
            .finish()
    }
}

impl FakeConsumer {
    /// A consumer answering with `respond(event)`.
    pub fn new(
        respond: impl Fn(&Value) -> Result<InvokeResult, PortError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            respond: Arc::new(Box::new(respond)),
            payloads: Arc::default(),
        }
    }

    /// Processes everything (`null` response).
    pub fn healthy() -> Self {
        Self::new(|_| {
            Ok(InvokeResult {
                status: 200,
                function_error: None,
                payload: b"null".to_vec(),
            })
        })
    }

    /// Fails every invocation with an unhandled error.
    pub fn failing() -> Self {
        Self::new(|_| {
            Ok(InvokeResult {
                status: 200,
                function_error: Some("Unhandled".into()),
                payload: br#"{"errorType":"DownstreamError","errorMessage":"503 from payments"}"#
                    .to_vec(),
            })
        })
    }

    /// The SQS events it was invoked with.
    pub fn invocations(&self) -> Vec<Value> {
        lock(&self.payloads).clone()
    }
}

impl Consumer for FakeConsumer {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeResult, PortError> {
        let event: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        lock(&self.payloads).push(event.clone());
        (self.respond)(&event)
    }
}

/// The event bus: records events and measurements; can reject every put.
#[derive(Debug, Clone, Default)]
pub struct FakeEvents {
    events: Arc<Mutex<Vec<BreakerEvent>>>,
    measurements: Arc<Mutex<Vec<Measurement>>>,
    error: Arc<Mutex<Option<PortError>>>,
}

impl FakeEvents {
    /// Every put fails with `error`.
    pub fn failing(error: PortError) -> Self {
        let e = Self::default();
        *lock(&e.error) = Some(error);
        e
    }

    /// Events put so far.
    pub fn events(&self) -> Vec<BreakerEvent> {
        lock(&self.events).clone()
    }

    /// Detail-types put so far.
    pub fn detail_types(&self) -> Vec<DetailType> {
        self.events().iter().map(|e| e.detail_type).collect()
    }

    /// Values measured so far, in order: `(measure, value)`.
    pub fn measured(&self) -> Vec<(Measure, f64)> {
        lock(&self.measurements)
            .iter()
            .map(|m| (m.measure, m.value))
            .collect()
    }
}

impl Events for FakeEvents {
    async fn put(&self, event: &BreakerEvent) -> Result<(), PortError> {
        if let Some(e) = lock(&self.error).clone() {
            return Err(e);
        }
        lock(&self.events).push(event.clone());
        Ok(())
    }

    fn measure(&self, measurement: &Measurement) {
        lock(&self.measurements).push(measurement.clone());
    }
}

/// The state machine's running executions.
#[derive(Debug, Clone, Default)]
pub struct FakeExecutions {
    running: Arc<Mutex<Vec<RunningExecution>>>,
    listed: Arc<Mutex<Vec<String>>>,
}

impl FakeExecutions {
    /// These executions are running.
    pub fn running(executions: &[(&str, u64)]) -> Self {
        let e = Self::default();
        *lock(&e.running) = executions
            .iter()
            .map(|(arn, start_ms)| RunningExecution {
                arn: (*arn).into(),
                start_ms: *start_ms,
            })
            .collect();
        e
    }

    /// State machine ARNs listed so far.
    pub fn listed(&self) -> Vec<String> {
        lock(&self.listed).clone()
    }
}

impl FakeExecutions {
    /// `execution_arn` has ended (it is no longer running).
    pub fn end(&self, execution_arn: &str) {
        lock(&self.running).retain(|e| e.arn != execution_arn);
    }

    /// `execution_arn` runs from now on.
    pub fn start(&self, execution_arn: &str) {
        lock(&self.running).push(RunningExecution {
            arn: execution_arn.into(),
            start_ms: 0,
        });
    }
}

impl Executions for FakeExecutions {
    async fn list_running(
        &self,
        state_machine_arn: &str,
    ) -> Result<Vec<RunningExecution>, PortError> {
        lock(&self.listed).push(state_machine_arn.to_owned());
        Ok(lock(&self.running).clone())
    }

    async fn is_running(&self, execution_arn: &str) -> Result<bool, PortError> {
        Ok(lock(&self.running).iter().any(|e| e.arn == execution_arn))
    }
}

/// A hook run by [`FakeRecords`] just before a save is applied, e.g. to let a racing writer in.
type SaveHook = Box<dyn FnMut(&mut Option<CircuitRecord>) + Send>;

/// The durable circuit record, in memory, with the same compare-and-swap as DynamoDB.
#[derive(Clone, Default)]
pub struct FakeRecords {
    stored: Arc<Mutex<Option<CircuitRecord>>>,
    saves: Arc<Mutex<u32>>,
    conflicts: Arc<Mutex<u32>>,
    before_save: Arc<Mutex<Vec<SaveHook>>>,
}

impl std::fmt::Debug for FakeRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRecords")
            .field("stored", &*lock(&self.stored))
            .finish()
    }
}

impl FakeRecords {
    /// A table holding `record` (as if written with its revision).
    pub fn holding(record: CircuitRecord) -> Self {
        let r = Self::default();
        *lock(&r.stored) = Some(record);
        r
    }

    /// The stored record.
    pub fn stored(&self) -> Option<CircuitRecord> {
        lock(&self.stored).clone()
    }

    /// Successful writes so far.
    pub fn saves(&self) -> u32 {
        *lock(&self.saves)
    }

    /// Writes refused for a stale revision so far.
    pub fn conflicts(&self) -> u32 {
        *lock(&self.conflicts)
    }

    /// Run `hook` on the stored record just before the next save is checked (once).
    pub fn before_next_save(&self, hook: impl FnMut(&mut Option<CircuitRecord>) + Send + 'static) {
        lock(&self.before_save).push(Box::new(hook));
    }
}

impl CircuitRecords for FakeRecords {
    async fn load(&self) -> Result<Option<CircuitRecord>, PortError> {
        Ok(lock(&self.stored).clone())
    }

    async fn save(&self, record: &CircuitRecord) -> Result<bool, PortError> {
        let hooks: Vec<SaveHook> = lock(&self.before_save).drain(..).collect();
        let mut stored = lock(&self.stored);
        for mut hook in hooks {
            hook(&mut stored);
        }
        let current = stored.as_ref().map(|r| r.revision).unwrap_or(0);
        if current != record.revision {
            *lock(&self.conflicts) += 1;
            return Ok(false);
        }
        *stored = Some(CircuitRecord {
            revision: record.revision + 1,
            ..record.clone()
        });
        *lock(&self.saves) += 1;
        Ok(true)
    }
}

/// The trigger alarm.
#[derive(Debug, Clone)]
pub struct FakeAlarms {
    state: Arc<Mutex<AlarmState>>,
    resets: Arc<Mutex<Vec<String>>>,
}

impl Default for FakeAlarms {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(AlarmState::Alarm)),
            resets: Arc::default(),
        }
    }
}

impl FakeAlarms {
    /// Reasons given to `set_ok` so far.
    pub fn resets(&self) -> Vec<String> {
        lock(&self.resets).clone()
    }
}

impl Alarms for FakeAlarms {
    async fn set_ok(&self, reason: &str) -> Result<(), PortError> {
        *lock(&self.state) = AlarmState::Ok;
        lock(&self.resets).push(reason.to_owned());
        Ok(())
    }

    async fn state(&self) -> Result<AlarmState, PortError> {
        Ok(lock(&self.state).clone())
    }
}

/// The consumer's metrics: a queue of answers (the last one repeats), and the ranges asked.
#[derive(Debug, Clone, Default)]
pub struct FakeMetrics {
    answers: Arc<Mutex<VecDeque<ConsumerStats>>>,
    asked: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl FakeMetrics {
    /// Answers `errors`/`invocations` (no throttles) to every query.
    pub fn steady(errors: f64, invocations: f64) -> Self {
        Self::answering(&[(errors, invocations, 0.0)])
    }

    /// Answers `(errors, invocations, throttles)` to the queries in turn, the last one repeating.
    pub fn answering(answers: &[(f64, f64, f64)]) -> Self {
        let m = Self::default();
        lock(&m.answers).extend(answers.iter().map(|&(errors, invocations, throttles)| {
            ConsumerStats {
                errors,
                invocations,
                throttles,
            }
        }));
        m
    }

    /// Answer `(errors, invocations, throttles)` from now on (to every query).
    pub fn set(&self, errors: f64, invocations: f64, throttles: f64) {
        let mut answers = lock(&self.answers);
        answers.clear();
        answers.push_back(ConsumerStats {
            errors,
            invocations,
            throttles,
        });
    }

    /// Ranges `(since_ms, until_ms)` asked so far.
    pub fn asked(&self) -> Vec<(u64, u64)> {
        lock(&self.asked).clone()
    }
}

impl Metrics for FakeMetrics {
    async fn consumer_stats(
        &self,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<ConsumerStats, PortError> {
        lock(&self.asked).push((since_ms, until_ms));
        let mut answers = lock(&self.answers);
        let answer = if answers.len() > 1 {
            answers.pop_front()
        } else {
            answers.front().copied()
        };
        Ok(answer.unwrap_or_default())
    }
}

/// A clock standing still until moved.
#[derive(Debug, Clone, Default)]
pub struct FixedClock(Arc<AtomicU64>);

impl FixedClock {
    /// A clock at `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now_ms)))
    }

    /// Move the clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
crate::ports_bundle! {
    /// Every port as its in-memory fake. [`Default`]: the mapping `esm-1` enabled with a limit of
    /// 10 (from [`config`]'s queue to its consumer), a healthy consumer, an empty queue, the alarm
    /// in `ALARM`, zero errors and invocations, no running execution or stored record, the clock
    /// at 0.
    #[derive(Debug, Clone)]
    pub struct Fakes {
        esm: FakeEsm,
        consumer: FakeConsumer,
        queue: breaker_testkit::FakeQueue,
        alarms: FakeAlarms,
        metrics: FakeMetrics,
        events: FakeEvents,
        executions: FakeExecutions,
        records: FakeRecords,
        clock: FixedClock,
    }
}

#[cfg(test)]
impl Default for Fakes {
    fn default() -> Self {
        Self {
            esm: FakeEsm::new(EsmState::Enabled, Some(10)),
            consumer: FakeConsumer::healthy(),
            queue: breaker_testkit::FakeQueue::new(),
            alarms: FakeAlarms::default(),
            metrics: FakeMetrics::steady(0.0, 0.0),
            events: FakeEvents::default(),
            executions: FakeExecutions::default(),
            records: FakeRecords::default(),
            clock: FixedClock::default(),
        }
    }
}

/// `QUEUE_ARN` of [`config`].
pub const TEST_QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:orders";
/// The ARN of [`config`]'s `CONSUMER_FUNCTION_NAME` (`orders-consumer`), as a mapping reports it.
pub const TEST_CONSUMER_ARN: &str =
    "arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer";

/// A valid configuration for tests: circuit `orders`, mapping `esm-1`, queue in eu-west-1,
/// plus `extra` variables.
pub fn config(extra: &[(&str, &str)]) -> breaker_core::config::Config {
    let mut env: std::collections::HashMap<String, String> = [
        ("CIRCUIT_NAME", "orders"),
        ("ESM_UUID", "esm-1"),
        ("QUEUE_URL", "http://127.0.0.1:1/123456789012/orders"),
        ("QUEUE_ARN", TEST_QUEUE_ARN),
        ("CONSUMER_FUNCTION_NAME", "orders-consumer"),
        ("ALARM_NAME", "orders-errors"),
        ("CIRCUIT_TABLE_NAME", "orders-circuit"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    breaker_core::config::Config::from_lookup(|k| env.get(k).cloned())
        .expect("valid test configuration")
}

/// The contract's state document with `attempt`/`iteration` and a saved limit.
pub fn state_json(opened_at_ms: u64, attempt: u32, iteration: u32, saved: Option<u32>) -> Value {
    serde_json::json!({
        "version": 1, "openedAtMs": opened_at_ms, "attempt": attempt, "iteration": iteration,
        "generation": 0, "savedScaling": { "maximumConcurrency": saved }, "trigger": "alarm"
    })
}

#[cfg(test)]
mod tests {
    use breaker_core::mapping::verify_mapping;

    use super::*;

    #[test]
    fn the_default_fake_mapping_is_the_test_configurations_and_the_builder_changes_it() {
        let config = config(&[]);
        let esm = FakeEsm::new(EsmState::Enabled, Some(5));
        assert_eq!(verify_mapping(&esm.snapshot(), &config), Ok(()));
        let other = FakeEsm::new(EsmState::Enabled, Some(5))
            .function_arn(Some(
                "arn:aws:lambda:eu-west-1:123456789012:function:payments",
            ))
            .event_source_arn(None);
        let err = verify_mapping(&other.snapshot(), &config).unwrap_err();
        assert_eq!(
            (
                err.actual_function.as_deref(),
                err.actual_queue.as_deref(),
                err.function_matches,
                err.queue_matches
            ),
            (
                Some("arn:aws:lambda:eu-west-1:123456789012:function:payments"),
                None,
                false,
                false
            )
        );
    }
}
