//! The versioned JSON documents the state machine and the handlers exchange (`CONTRACT.md`,
//! version 1). Parsing is strict: unknown fields, a missing field, a wrong type or another
//! version fail with an [`InputError`] naming the field (e.g. `state.attempt`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The contract version every document carries.
pub const VERSION: u32 = 1;

/// The `"version": 1` marker: serializes as [`VERSION`], refuses any other value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version;

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(VERSION)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if v == u64::from(VERSION) {
            Ok(Version)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported version {v} (this handler understands version {VERSION})"
            )))
        }
    }
}

/// Malformed handler input: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input at `{field}`: {message}")]
pub struct InputError {
    /// Dotted path of the offending field (`.` for the document itself).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, nested under `parent` (e.g. `input` + `resume.attempt`).
    pub fn under(self, parent: &str) -> Self {
        let field = if self.field == "." {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        Self { field, ..self }
    }
}

/// Parse a handler input document (always a JSON object) strictly, naming the offending field
/// on failure.
pub fn parse<T: DeserializeOwned>(value: Value) -> Result<T, InputError> {
    if !value.is_object() {
        return Err(InputError::new(
            ".",
            format!("expected a JSON object, got {}", kind(&value)),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports a missing field at the parent's path; name the field itself.
        let named = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (named, path.as_str()) {
            (Some(name), ".") => name.to_owned(),
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, p) => p.to_owned(),
        };
        InputError { field, message }
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What started the outage's recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The CloudWatch alarm's state change, through EventBridge.
    Alarm,
    /// An operator started the state machine with `{"trigger":"manual"}`.
    Manual,
}

/// The ESM's original scaling configuration, restored on close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedScaling {
    /// The original `MaximumConcurrency`; `None` (JSON `null`) when the ESM had no limit.
    pub maximum_concurrency: Option<u32>,
}

/// The circuit state passed from step to step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitState {
    /// Always 1.
    pub version: Version,
    /// When the circuit opened (epoch ms); kept across executions of one outage.
    pub opened_at_ms: u64,
    /// Probes done in this outage (across executions).
    pub attempt: u32,
    /// Loop turns in this execution (reset by continue-as-new).
    pub iteration: u32,
    /// How many times this outage continued as a new execution.
    pub generation: u32,
    /// The ESM's scaling configuration before the breaker touched it.
    pub saved_scaling: SavedScaling,
    /// What started the recovery.
    pub trigger: Trigger,
    /// Keep-alive (`crate::keepalive`): the cutoff of the last keep-alive pass (every message
    /// sent before it was copied), or when a FIFO queue was last warned about; absent until the
    /// first pass (the schedule then counts from `openedAtMs`). Optional so that documents of
    /// executions started before this field existed still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at_ms: Option<u64>,
    /// When the circuit last opened again from half-open (a relapse during the ramp, or a
    /// re-trip while half-open); absent until then and in documents from before it existed. The
    /// backoff's long-outage cap (`crate::backoff::Backoff::cap`) counts the time open from here:
    /// the downstream was seen healthy just before, so it is probed as briskly as after the open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopened_at_ms: Option<u64>,
    /// Upper bound of the history events this execution has used (`crate::history`); set by
    /// `open`, charged by the loop's handlers, absent (0) in documents from before it existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_events: u32,
    /// The last healthy probe's measured synchronous invoke of the consumer, set by `probe` on a
    /// healthy verdict and cleared on any other; `rejitter-plan` sizes the re-jitter window from
    /// it (`crate::rejitter::window_for_backlog`). Absent: no measurement (a manual close, or a
    /// document from before this field existed), the configured window is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_probe: Option<ProbeTiming>,
    /// Where the health-following ramp stands (`crate::ramp::Progress`), written by every `ramp`
    /// step and read by the next, so that a retried step (same input) decides from the same
    /// place and continue-as-new keeps it; absent outside a ramp (cleared on a reopen) and in
    /// documents from before it existed. On `done` it says whether the ramp settled below the
    /// original ([`RampProgress::settled`]), which `close` honours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampProgress>,
}

/// `crate::ramp::Progress` as the circuit state carries it, plus where the next interval begins
/// and, once the ramp settled, the level it settled at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RampProgress {
    /// Index of the current level in the ramp's levels (0: the first).
    pub level: u32,
    /// The lowest level that failed in this ramp, never tried again; absent while none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<u32>,
    /// The current level was entered by a raise and has not been judged yet.
    #[serde(default)]
    pub raised: bool,
    /// Clean intervals in a row at the current level.
    #[serde(default)]
    pub healthy: u32,
    /// Steps counted towards the ramp's bound (`crate::ramp::Follow::max_intervals`).
    #[serde(default)]
    pub intervals: u32,
    /// Invocations of the clean interval that proved the level below the current one.
    #[serde(default)]
    pub evidence: u64,
    /// The next step is the early look at the current level (`crate::ramp::Progress::early`).
    #[serde(default)]
    pub early: bool,
    /// Epoch ms where the next interval to judge begins: when the current level was set, or the
    /// end of the last interval judged. An interval is never judged twice.
    pub judge_from_ms: u64,
    /// Set when the ramp settled below a level that failed: the scaling the mapping keeps on
    /// close (the circuit record keeps the original for the next trip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<crate::ports::Scaling>,
}

impl RampProgress {
    /// A ramp at its first level, set at `now_ms`.
    pub fn start(now_ms: u64) -> Self {
        Self::of(crate::ramp::Progress::default(), now_ms)
    }

    /// `progress`, with its next interval beginning at `judge_from_ms`.
    pub fn of(progress: crate::ramp::Progress, judge_from_ms: u64) -> Self {
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        Self {
            level: index(progress.level),
            ceiling: progress.ceiling.map(index),
            raised: progress.raised,
            healthy: progress.healthy,
            intervals: progress.intervals,
            evidence: progress.evidence.max(0.0).round() as u64,
            early: progress.early,
            judge_from_ms,
            settled: None,
        }
    }

    /// The core's view of it.
    pub fn progress(&self) -> crate::ramp::Progress {
        crate::ramp::Progress {
            level: self.level as usize,
            ceiling: self.ceiling.map(|c| c as usize),
            raised: self.raised,
            healthy: self.healthy,
            intervals: self.intervals,
            evidence: self.evidence as f64,
            early: self.early,
        }
    }
}

/// How long the consumer took for the messages of a healthy probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeTiming {
    /// Messages in the probe's SQS event.
    pub messages: u32,
    /// Wall-clock milliseconds of the synchronous invoke.
    pub duration_ms: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CircuitState {
    /// The state of a circuit that has just opened.
    pub fn opened(now_ms: u64, saved_scaling: SavedScaling, trigger: Trigger) -> Self {
        Self {
            version: Version,
            opened_at_ms: now_ms,
            attempt: 0,
            iteration: 0,
            generation: 0,
            saved_scaling,
            trigger,
            refreshed_at_ms: None,
            reopened_at_ms: None,
            history_events: crate::history::OPENED,
            healthy_probe: None,
            ramp: None,
        }
    }

    /// Whole seconds the circuit has been open at `now_ms`.
    pub fn open_seconds(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.opened_at_ms) / 1000
    }

    /// Whole seconds the downstream has been sick at `now_ms`, as far as the breaker knows: since
    /// the open, or since the last reopen from half-open ([`CircuitState::reopened_at_ms`]).
    pub fn sick_seconds(&self, now_ms: u64) -> u64 {
        let since = self
            .reopened_at_ms
            .map_or(self.opened_at_ms, |r| r.max(self.opened_at_ms));
        now_ms.saturating_sub(since) / 1000
    }
}

/// Input of every handler that only takes the state (`backoff`, `probe`, `close`, `rejitter-plan`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateInput {
    /// The circuit state.
    pub state: CircuitState,
    /// `$$.Execution.Id`, for the logs only (every log line of the invocation names it).
    #[serde(default)]
    pub execution_arn: Option<String>,
}

/// Input of the handlers that act as the circuit's owner and only take the state (`close`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnedStateInput {
    /// The circuit state.
    pub state: CircuitState,
    /// `$$.Execution.Id`: the execution acting, checked against the circuit record's owner.
    pub execution_arn: String,
}

/// Input of `open`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenInput {
    /// `$$.Execution.Id` of the running execution.
    pub execution_arn: String,
    /// The execution's input: an alarm event, `{"trigger":"manual"}` or a resume document.
    pub input: Value,
}

/// What `open` was asked to do, parsed from [`OpenInput::input`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenRequest {
    /// A CloudWatch alarm state-change event.
    Alarm {
        /// `detail.alarmName`.
        alarm_name: String,
        /// When the alarm changed state (`detail.state.timestamp`, else the event's `time`), epoch
        /// ms; `None` if the event carries neither as an RFC 3339 UTC time.
        changed_at_ms: Option<u64>,
    },
    /// A manual trigger.
    Manual,
    /// Continue-as-new of a running outage.
    Resume {
        /// The state the previous execution ended with.
        state: CircuitState,
        /// The execution that started this one (ignored by single flight).
        previous_execution_arn: Option<String>,
    },
    /// An operator closed the circuit (`breaker close`): resume `state`, skip backoff and probe.
    ManualClose {
        /// The state of the stopped recovery (or built from the mapping for a stuck circuit).
        state: CircuitState,
        /// The recovery the operator stopped (ignored by single flight); absent for a stuck
        /// circuit.
        previous_execution_arn: Option<String>,
    },
}

/// The only `trigger` a resume document may carry.
#[derive(Deserialize)]
enum ResumeTrigger {
    #[serde(rename = "manual-close")]
    ManualClose,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResumeDoc {
    resume: CircuitState,
    previous_execution_arn: Option<String>,
    trigger: Option<ResumeTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualDoc {
    #[allow(dead_code)]
    trigger: ManualTag,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ManualTag {
    Manual,
}

/// The `trigger` of the execution input `breaker close` starts (CONTRACT.md, "Manual triggers").
pub const MANUAL_CLOSE: &str = "manual-close";

impl OpenInput {
    /// Classify and validate the execution input. Errors name fields under `input`.
    pub fn request(&self) -> Result<OpenRequest, InputError> {
        let Value::Object(map) = &self.input else {
            return Err(InputError::new(
                "input",
                "expected an object (alarm event, manual trigger or resume)",
            ));
        };
        if map.contains_key("resume") {
            let doc: ResumeDoc = parse(self.input.clone()).map_err(|e| e.under("input"))?;
            let (state, previous_execution_arn) = (doc.resume, doc.previous_execution_arn);
            return Ok(match doc.trigger {
                Some(ResumeTrigger::ManualClose) => OpenRequest::ManualClose {
                    state,
                    previous_execution_arn,
                },
                None => OpenRequest::Resume {
                    state,
                    previous_execution_arn,
                },
            });
        }
        if map.get("trigger").and_then(Value::as_str) == Some(MANUAL_CLOSE) {
            return Err(InputError::new(
                "input.resume",
                "a manual-close input needs the circuit state to resume (`resume`)",
            ));
        }
        if map.contains_key("trigger") {
            parse::<ManualDoc>(self.input.clone()).map_err(|e| e.under("input"))?;
            return Ok(OpenRequest::Manual);
        }
        if map.contains_key("source") || map.contains_key("detail-type") {
            let str_at = |pointer: &str| self.input.pointer(pointer).and_then(Value::as_str);
            let field = |p: &str| format!("input{}", p.replace('/', "."));
            for (pointer, expected) in [
                ("/source", "aws.cloudwatch"),
                ("/detail-type", "CloudWatch Alarm State Change"),
            ] {
                if str_at(pointer) != Some(expected) {
                    return Err(InputError::new(
                        field(pointer),
                        format!("expected {expected:?}"),
                    ));
                }
            }
            let alarm_name = str_at("/detail/alarmName")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| InputError::new("input.detail.alarmName", "missing alarm name"))?;
            let changed_at_ms = ["/detail/state/timestamp", "/time"]
                .into_iter()
                .find_map(|p| str_at(p).and_then(crate::record::parse_utc_ms));
            return Ok(OpenRequest::Alarm {
                alarm_name: alarm_name.to_owned(),
                changed_at_ms,
            });
        }
        Err(InputError::new(
            "input",
            "expected a CloudWatch alarm state-change event, {\"trigger\":\"manual\"}, {\"resume\":...} or {\"trigger\":\"manual-close\",\"resume\":...}",
        ))
    }
}

/// Input of `ramp`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RampInput {
    /// The circuit state.
    pub state: CircuitState,
    /// `$$.Execution.Id`: the execution acting, checked against the circuit record's owner.
    pub execution_arn: String,
    /// 0 on entry, then the `step` the previous call returned.
    pub step: u32,
}

/// The `error` object Step Functions' `Catch` puts in the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    /// The error type (`Retryable`, `States.Timeout`, ...).
    #[serde(rename = "Error", default)]
    pub error: String,
    /// The error message.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// Input of `stuck`, parsed leniently: it is the last resort and must not fail on bad input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StuckInput {
    /// The circuit state if the document had a valid one.
    pub state: Option<CircuitState>,
    /// The caught error, if any.
    pub error: Option<CaughtError>,
    /// Why the given state or error could not be read, if they could not.
    pub input_problem: Option<String>,
    /// `$$.Execution.Id` of the failing execution, if given as a string.
    pub execution_arn: Option<String>,
}

impl StuckInput {
    /// Read whatever is usable from `value`; never fails.
    pub fn lenient(value: &Value) -> Self {
        let mut problems = Vec::new();
        let state = match value.get("state") {
            None | Some(Value::Null) => None,
            Some(s) => match parse::<CircuitState>(s.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(e.under("state").to_string());
                    None
                }
            },
        };
        let error = match value.get("error") {
            None | Some(Value::Null) => None,
            Some(e) => match serde_json::from_value::<CaughtError>(e.clone()) {
                Ok(e) => Some(e),
                Err(err) => {
                    problems.push(format!("invalid input at `error`: {err}"));
                    Some(CaughtError {
                        error: "Unknown".into(),
                        cause: e.to_string(),
                    })
                }
            },
        };
        if !value.is_object() {
            problems.push("invalid input at `.`: expected an object".into());
        }
        Self {
            state,
            error,
            input_problem: (!problems.is_empty()).then(|| problems.join("; ")),
            execution_arn: value
                .get("executionArn")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// `open`'s decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenAction {
    /// This execution owns the recovery.
    Proceed,
    /// Another recovery of the same ESM is running; end without touching anything.
    Duplicate,
    /// An operator closed the circuit: skip backoff and probe, go to the re-jitter plan, the
    /// ramp and close.
    Close,
}

/// Output of `open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenOutput {
    /// Always 1.
    pub version: Version,
    /// Proceed, close (manual close) or end.
    pub action: OpenAction,
    /// The state, absent on `duplicate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CircuitState>,
}

/// `backoff`'s decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffAction {
    /// Wait `waitSeconds`, then probe.
    Wait,
    /// Max open duration reached: stay open, stop.
    Stuck,
    /// Loop budget reached: continue as a new execution.
    Continue,
    /// A keep-alive pass is due (`crate::keepalive`): plan it (`rejitter-plan` with
    /// `keepAlive: true`), copy the queue, then come back to `backoff`.
    #[serde(rename = "keepalive")]
    KeepAlive,
}

/// Output of `backoff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackoffOutput {
    /// Always 1.
    pub version: Version,
    /// What to do next.
    pub action: BackoffAction,
    /// Seconds to wait before the probe (0 unless `wait`).
    pub wait_seconds: u64,
    /// The state.
    pub state: CircuitState,
}

/// A probe's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The consumer processed every probed message.
    Healthy,
    /// The consumer failed (function error or a batch item failure).
    Unhealthy,
    /// Nothing to probe: the queue is empty.
    Empty,
}

/// Output of `probe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeOutput {
    /// Always 1.
    pub version: Version,
    /// The verdict.
    pub verdict: Verdict,
    /// How many messages were probed.
    pub probed: u32,
    /// How many received messages the mapping's `FilterCriteria` would not deliver: deleted, as
    /// the mapping deletes them (absent in outputs from before filtering: 0).
    #[serde(default)]
    pub filtered_out: u32,
    /// The state (`attempt` incremented).
    pub state: CircuitState,
}

/// Input of `rejitter`: one worker's slice of the re-jitter pass.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejitterInput {
    /// The worker's index in the plan's `workers` (for logs).
    pub worker: u32,
    /// The plan's cutoff (epoch ms): only messages sent before it are moved.
    pub cutoff_ms: u64,
    /// A keep-alive pass (`crate::keepalive`): copies go out with no delay (the mapping is
    /// disabled), whether or not re-jitter is enabled. Absent: false.
    #[serde(default)]
    pub keep_alive: bool,
    /// Slices this worker may still run, this one included (the plan's `slicesPerWorker`, then
    /// the previous slice's `slicesLeft`); absent: no limit (a definition from before the
    /// history budget).
    #[serde(default)]
    pub slices_left: Option<u32>,
    /// `$$.Execution.Id`, for the logs only (every log line of the invocation names it).
    #[serde(default)]
    pub execution_arn: Option<String>,
    /// The plan's `windowMaxSeconds`: copies are delayed uniformly over
    /// `[REJITTER_MIN_SECONDS, windowMaxSeconds]`. Absent: the configured window.
    #[serde(default)]
    pub window_max_seconds: Option<u32>,
}

/// Input of `rejitter-plan`: the state, and whether this plans a keep-alive pass (which runs
/// even with `REJITTER_ENABLED=false`; FIFO queues get no workers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanInput {
    /// The circuit state.
    pub state: CircuitState,
    /// A keep-alive pass rather than the re-jitter before the ramp. Absent: false.
    #[serde(default)]
    pub keep_alive: bool,
    /// `$$.Execution.Id`, for the logs only (every log line of the invocation names it).
    #[serde(default)]
    pub execution_arn: Option<String>,
}

/// Output of `rejitter-plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejitterPlanOutput {
    /// Always 1.
    pub version: Version,
    /// Visible messages when the plan was made.
    pub backlog: u64,
    /// One index per worker; empty when re-jitter is disabled or the queue is empty.
    pub workers: Vec<u32>,
    /// Only messages sent before this instant (epoch ms) are re-jittered; copies are newer.
    pub cutoff_ms: u64,
    /// Slices each worker may run within this execution's history budget (`crate::history`).
    #[serde(default)]
    pub slices_per_worker: u32,
    /// The upper end of the delay window for this pass's copies, seconds
    /// (`crate::rejitter::window_for_backlog`); the lower end is the configured minimum. Present
    /// on every re-jitter plan (not on a keep-alive plan, whose copies get no delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_max_seconds: Option<u32>,
    /// The state, charged with the plan and the whole re-jitter pass.
    pub state: CircuitState,
}

/// Output of one `rejitter` invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejitterOutput {
    /// Always 1.
    pub version: Version,
    /// Originals whose copy SQS confirmed (their delete was attempted).
    pub moved: u64,
    /// Originals whose copy could not be sent; released to the queue, untouched.
    pub failed: u64,
    /// `ApproximateNumberOfMessages` after the slice (includes messages not to re-jitter).
    pub remaining_estimate: u64,
    /// True when the visible backlog of messages to re-jitter is drained, or when this worker
    /// has used the slices it was given (`slicesLeft` 0; the rest stays in the queue, unspread).
    pub done: bool,
    /// Slices this worker may still run (the input's `slicesLeft` minus this one); absent when
    /// the input set no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_left: Option<u32>,
}

/// `ramp`'s decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RampAction {
    /// Wait `waitSeconds`, then call `ramp` again with `step`.
    Step,
    /// Ramp complete: close.
    Done,
    /// Relapse: the ESM is disabled again; back to backoff.
    Reopen,
}

/// Output of `ramp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RampOutput {
    /// Always 1.
    pub version: Version,
    /// What to do next.
    pub action: RampAction,
    /// The step to call with next.
    pub step: u32,
    /// Seconds to wait before the next call (0 unless `step`).
    pub wait_seconds: u64,
    /// The ESM's `MaximumConcurrency` now; `null` for no limit (or when reopened, or for a
    /// mapping in provisioned mode).
    pub maximum_concurrency: Option<u32>,
    /// The ESM's `ProvisionedPollerConfig` now, for a mapping in provisioned mode (whose ramp
    /// goes through its pollers); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_poller_config: Option<crate::ports::PollerConfig>,
    /// The state.
    pub state: CircuitState,
}

/// Output of `close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseOutput {
    /// Always 1.
    pub version: Version,
    /// `closed`: the circuit is closed and the record released; `reopen`: a re-trip arrived
    /// while the circuit was half-open, so the mapping was disabled again (go to backoff).
    pub action: CloseAction,
    /// True when closed.
    pub closed: bool,
    /// How long the circuit was open.
    pub open_seconds: u64,
    /// The state to back off with, on `reopen` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CircuitState>,
}

/// `close`'s outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseAction {
    /// Closed; the record is released.
    Closed,
    /// Re-tripped while half-open: opened again, keep recovering.
    Reopen,
}

/// Output of `stuck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StuckOutput {
    /// Always 1.
    pub version: Version,
    /// The ESM's state as read (`Unknown` if it could not be read).
    pub esm_state: String,
    /// Always true (the handler fails if the event could not be put).
    pub notified: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state_json() -> Value {
        json!({
            "version": 1, "openedAtMs": 1_763_900_000_000u64, "attempt": 2, "iteration": 1,
            "generation": 0, "savedScaling": { "maximumConcurrency": 50 }, "trigger": "alarm"
        })
    }

    #[test]
    fn state_round_trips_in_the_contract_shape() {
        let s: CircuitState = parse(state_json()).unwrap();
        assert_eq!(s.saved_scaling.maximum_concurrency, Some(50));
        assert_eq!(serde_json::to_value(&s).unwrap(), state_json());
    }

    #[test]
    fn history_events_are_optional_so_documents_from_before_still_parse() {
        let s: CircuitState = parse(state_json()).unwrap();
        assert_eq!(s.history_events, 0);
        let mut j = state_json();
        j["historyEvents"] = json!(1_234);
        let s: CircuitState = parse(j.clone()).unwrap();
        assert_eq!(s.history_events, 1_234);
        assert_eq!(serde_json::to_value(&s).unwrap(), j);
    }

    #[test]
    fn the_healthy_probe_timing_is_optional_so_documents_from_before_still_parse() {
        let s: CircuitState = parse(state_json()).unwrap();
        assert_eq!(s.healthy_probe, None);
        let mut j = state_json();
        j["healthyProbe"] = json!({ "messages": 1, "durationMs": 85 });
        let s: CircuitState = parse(j.clone()).unwrap();
        assert_eq!(
            s.healthy_probe,
            Some(ProbeTiming {
                messages: 1,
                duration_ms: 85
            })
        );
        assert_eq!(serde_json::to_value(&s).unwrap(), j);
        j["healthyProbe"] = json!({ "messages": 1, "durationMs": "fast" });
        let e = parse::<StateInput>(json!({ "state": j })).unwrap_err();
        assert_eq!(e.field, "state.healthyProbe.durationMs");
    }

    #[test]
    fn no_limit_is_null_in_saved_scaling() {
        let mut j = state_json();
        j["savedScaling"]["maximumConcurrency"] = Value::Null;
        let s: CircuitState = parse(j.clone()).unwrap();
        assert_eq!(s.saved_scaling.maximum_concurrency, None);
        assert_eq!(serde_json::to_value(&s).unwrap(), j);
    }

    #[test]
    fn other_version_is_refused_naming_the_field() {
        let mut j = json!({ "state": state_json() });
        j["state"]["version"] = json!(2);
        let e = parse::<StateInput>(j).unwrap_err();
        assert_eq!(e.field, "state.version");
        assert!(e.message.contains("unsupported version 2"), "{e}");
    }

    #[test]
    fn missing_field_is_named_with_its_path() {
        let mut j = json!({ "state": state_json() });
        j["state"].as_object_mut().unwrap().remove("attempt");
        assert_eq!(parse::<StateInput>(j).unwrap_err().field, "state.attempt");
        assert_eq!(parse::<StateInput>(json!({})).unwrap_err().field, "state");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let mut j = json!({ "state": state_json(), "step": 0 });
        j["state"]["savedScaling"]["maximumConcurrency"] = json!("fifty");
        let e = parse::<RampInput>(j).unwrap_err();
        assert_eq!(e.field, "state.savedScaling.maximumConcurrency");
        let e = parse::<RampInput>(json!({ "state": state_json(), "step": -1 })).unwrap_err();
        assert_eq!(e.field, "step");
    }

    #[test]
    fn unknown_field_is_refused_and_named() {
        let mut j = json!({ "state": state_json() });
        j["state"]["attempts"] = json!(1);
        assert_eq!(parse::<StateInput>(j).unwrap_err().field, "state.attempts");
    }

    #[test]
    fn rejitter_input_is_parsed_strictly_naming_the_field() {
        let i: RejitterInput =
            parse(json!({ "worker": 2, "cutoffMs": 1_763_900_000_000u64 })).unwrap();
        assert_eq!(
            i,
            RejitterInput {
                worker: 2,
                cutoff_ms: 1_763_900_000_000,
                keep_alive: false,
                slices_left: None,
                execution_arn: None,
                window_max_seconds: None,
            }
        );
        let windowed: RejitterInput =
            parse(json!({ "worker": 2, "cutoffMs": 5, "windowMaxSeconds": 12 })).unwrap();
        assert_eq!(windowed.window_max_seconds, Some(12));
        let capped: RejitterInput =
            parse(json!({ "worker": 2, "cutoffMs": 5, "slicesLeft": 3 })).unwrap();
        assert_eq!(capped.slices_left, Some(3));
        let field = |v: Value| parse::<RejitterInput>(v).unwrap_err().field;
        assert_eq!(field(json!({ "worker": 0 })), "cutoffMs");
        assert_eq!(field(json!({ "cutoffMs": 5 })), "worker");
        assert_eq!(field(json!({ "worker": -1, "cutoffMs": 5 })), "worker");
        assert_eq!(
            field(json!({ "worker": 4_294_967_296u64, "cutoffMs": 5 })),
            "worker"
        );
        assert_eq!(field(json!({ "worker": 0, "cutoffMs": "5" })), "cutoffMs");
        assert_eq!(
            field(json!({ "worker": 0, "cutoffMs": 5, "windowMaxSeconds": "12" })),
            "windowMaxSeconds"
        );
        assert_eq!(
            field(json!({ "worker": 0, "cutoffMs": 5, "windowMaxSeconds": -1 })),
            "windowMaxSeconds"
        );
        assert_eq!(
            field(json!({ "worker": 0, "cutoffMs": 5, "state": {} })),
            "state"
        );
        assert_eq!(field(json!([0, 5])), ".");
    }

    #[test]
    fn keep_alive_flags_default_to_false_and_refreshed_at_is_optional() {
        let i: RejitterInput =
            parse(json!({ "worker": 0, "cutoffMs": 5, "keepAlive": true })).unwrap();
        assert!(i.keep_alive);
        let p: PlanInput = parse(json!({ "state": state_json() })).unwrap();
        assert!(!p.keep_alive);
        assert_eq!(p.state.refreshed_at_ms, None);
        let mut j = state_json();
        j["refreshedAtMs"] = json!(1_763_900_060_000u64);
        let s: CircuitState = parse(j.clone()).unwrap();
        assert_eq!(s.refreshed_at_ms, Some(1_763_900_060_000));
        assert_eq!(serde_json::to_value(&s).unwrap(), j);
        let field = |v: Value| parse::<PlanInput>(v).unwrap_err().field;
        assert_eq!(
            field(json!({ "state": state_json(), "keepAlive": "yes" })),
            "keepAlive"
        );
    }

    #[test]
    fn rejitter_outputs_serialize_in_the_contract_shape() {
        let state: CircuitState = parse(state_json()).unwrap();
        let plan = RejitterPlanOutput {
            version: Version,
            backlog: 45_000,
            workers: vec![0, 1, 2],
            cutoff_ms: 1_763_900_000_000,
            slices_per_worker: 4,
            window_max_seconds: Some(120),
            state,
        };
        assert_eq!(
            serde_json::to_value(&plan).unwrap(),
            json!({ "version": 1, "backlog": 45_000, "workers": [0, 1, 2], "cutoffMs": 1_763_900_000_000u64, "slicesPerWorker": 4, "windowMaxSeconds": 120, "state": state_json() })
        );
        let slice = RejitterOutput {
            version: Version,
            moved: 10,
            failed: 1,
            remaining_estimate: 3,
            done: false,
            slices_left: Some(2),
        };
        assert_eq!(
            serde_json::to_value(&slice).unwrap(),
            json!({ "version": 1, "moved": 10, "failed": 1, "remainingEstimate": 3, "done": false, "slicesLeft": 2 })
        );
    }

    #[test]
    fn open_input_recognises_alarm_manual_and_resume() {
        let alarm = OpenInput {
            execution_arn: "arn".into(),
            input: json!({
                "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
                "time": "2026-11-30T12:00:00Z",
                "detail": { "alarmName": "orders-errors", "state": { "value": "ALARM", "timestamp": "2026-11-30T11:59:59.250+0000" } }
            }),
        };
        assert_eq!(
            alarm.request().unwrap(),
            OpenRequest::Alarm {
                alarm_name: "orders-errors".into(),
                changed_at_ms: Some(1_796_039_999_250),
            }
        );
        let mut only_time = alarm.clone();
        only_time.input["detail"]["state"]
            .as_object_mut()
            .unwrap()
            .remove("timestamp");
        assert!(matches!(
            only_time.request().unwrap(),
            OpenRequest::Alarm {
                changed_at_ms: Some(1_796_040_000_000),
                ..
            }
        ));
        let manual = OpenInput {
            execution_arn: "arn".into(),
            input: json!({ "trigger": "manual" }),
        };
        assert_eq!(manual.request().unwrap(), OpenRequest::Manual);
        let resume = OpenInput {
            execution_arn: "arn".into(),
            input: json!({ "resume": state_json(), "previousExecutionArn": "arn:prev" }),
        };
        match resume.request().unwrap() {
            OpenRequest::Resume {
                state,
                previous_execution_arn,
            } => {
                assert_eq!(state.attempt, 2);
                assert_eq!(previous_execution_arn.as_deref(), Some("arn:prev"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn manual_close(input: Value) -> Result<OpenRequest, InputError> {
        OpenInput {
            execution_arn: "arn".into(),
            input,
        }
        .request()
    }

    #[test]
    fn open_input_recognises_a_manual_close_with_and_without_a_stopped_recovery() {
        let request = manual_close(
            json!({ "trigger": "manual-close", "resume": state_json(), "previousExecutionArn": "arn:stopped" }),
        )
        .unwrap();
        let OpenRequest::ManualClose {
            state,
            previous_execution_arn,
        } = request
        else {
            panic!("expected a manual close, got {request:?}");
        };
        assert_eq!(state, parse::<CircuitState>(state_json()).unwrap());
        assert_eq!(previous_execution_arn.as_deref(), Some("arn:stopped"));

        let stuck = manual_close(json!({ "trigger": "manual-close", "resume": state_json() }));
        assert!(
            matches!(
                stuck,
                Ok(OpenRequest::ManualClose {
                    previous_execution_arn: None,
                    ..
                })
            ),
            "{stuck:?}"
        );
    }

    #[test]
    fn a_resume_with_another_trigger_or_a_manual_close_without_state_is_refused() {
        let e = manual_close(json!({ "trigger": "manual", "resume": state_json() })).unwrap_err();
        assert_eq!(e.field, "input.trigger");
        assert!(e.message.contains("expected `manual-close`"), "{e}");
        let e = manual_close(json!({ "trigger": "manual-close" })).unwrap_err();
        assert_eq!(e.field, "input.resume");
        assert!(e.message.contains("needs the circuit state"), "{e}");
        let mut bad_state = state_json();
        bad_state["attempt"] = json!("two");
        let e =
            manual_close(json!({ "trigger": "manual-close", "resume": bad_state })).unwrap_err();
        assert_eq!(e.field, "input.resume.attempt");
        let e = manual_close(
            json!({ "trigger": "manual-close", "resume": state_json(), "force": true }),
        )
        .unwrap_err();
        assert_eq!(e.field, "input.force");
    }

    #[test]
    fn open_input_errors_name_the_field_under_input() {
        let bad = |input: Value| {
            OpenInput {
                execution_arn: "arn".into(),
                input,
            }
            .request()
            .unwrap_err()
            .field
        };
        assert_eq!(bad(json!({ "trigger": "auto" })), "input.trigger");
        assert_eq!(
            bad(json!({ "resume": { "version": 1 } })),
            "input.resume.openedAtMs"
        );
        assert_eq!(
            bad(json!({ "source": "aws.ec2", "detail-type": "x" })),
            "input.source"
        );
        assert_eq!(
            bad(
                json!({ "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {} })
            ),
            "input.detail.alarmName"
        );
        assert_eq!(bad(json!("go")), "input");
        assert_eq!(bad(json!({ "hello": 1 })), "input");
    }

    #[test]
    fn stuck_input_is_lenient() {
        let s = StuckInput::lenient(
            &json!({ "state": { "version": 9 }, "error": { "Error": "Retryable", "Cause": "x" } }),
        );
        assert!(s.state.is_none());
        assert_eq!(s.error.unwrap().error, "Retryable");
        assert!(s.input_problem.unwrap().contains("state.version"));
        let s = StuckInput::lenient(&json!({ "state": state_json(), "error": null }));
        assert_eq!(s.state.unwrap().attempt, 2);
        assert!(s.input_problem.is_none());
        assert!(StuckInput::lenient(&json!(42)).input_problem.is_some());
    }

    #[test]
    fn outputs_serialize_in_the_contract_shape() {
        let state: CircuitState = parse(state_json()).unwrap();
        let ramp = RampOutput {
            version: Version,
            action: RampAction::Step,
            step: 1,
            wait_seconds: 60,
            maximum_concurrency: None,
            provisioned_poller_config: None,
            state: state.clone(),
        };
        assert_eq!(
            serde_json::to_value(&ramp).unwrap(),
            json!({ "version": 1, "action": "step", "step": 1, "waitSeconds": 60, "maximumConcurrency": null, "state": state_json() })
        );
        let dup = OpenOutput {
            version: Version,
            action: OpenAction::Duplicate,
            state: None,
        };
        assert_eq!(
            serde_json::to_value(&dup).unwrap(),
            json!({ "version": 1, "action": "duplicate" })
        );
        let close = OpenOutput {
            version: Version,
            action: OpenAction::Close,
            state: Some(state),
        };
        assert_eq!(
            serde_json::to_value(&close).unwrap(),
            json!({ "version": 1, "action": "close", "state": state_json() })
        );
    }
}
