//! The status model and the circuit phase derived from it.

use serde::Serialize;
use serde_json::Value;

/// The consumer's event-source mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingStatus {
    /// Its UUID.
    pub uuid: String,
    /// `Enabled`, `Disabled`, `Enabling`, ...
    pub state: String,
    /// `ScalingConfig.MaximumConcurrency`, `None` when unlimited.
    pub maximum_concurrency: Option<u32>,
    /// Batch size.
    pub batch_size: Option<u32>,
}

/// The trigger alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStatus {
    /// Its name.
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// Why, as CloudWatch puts it.
    pub reason: Option<String>,
}

/// A recovery execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Execution ARN.
    pub arn: String,
    /// Execution name.
    pub name: String,
    /// Start time, epoch ms.
    pub started_at_ms: u64,
}

/// Where an execution is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Name of the state it entered last.
    pub step: Option<String>,
    /// The latest circuit state (CONTRACT.md `state`) seen in its history.
    pub circuit_state: Option<Value>,
    /// The states it entered, oldest first, as far back as the history read goes.
    pub entered: Vec<StepEntered>,
    /// The history read reached the execution's start (else `entered` misses earlier states).
    pub from_start: bool,
}

/// A state an execution entered, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepEntered {
    /// The state's name.
    pub state: String,
    /// When, epoch ms.
    pub at_ms: u64,
}

/// An execution of the state machine, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRun {
    /// The execution.
    pub execution: Execution,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// When it stopped, epoch ms; `None` while it runs.
    pub stopped_at_ms: Option<u64>,
}

/// The last recovery's timeline: the running one's, else the one that stopped last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// The execution and how it ended.
    pub run: ExecutionRun,
    /// Every state it entered, oldest first, with seconds since it started.
    pub steps: Vec<TimelineStep>,
    /// Earlier steps were left out: the history read did not reach the execution's start.
    pub earlier_steps_omitted: bool,
}

/// One line of a [`Timeline`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineStep {
    /// The state's name.
    pub state: String,
    /// Seconds from the execution's start.
    pub at_seconds: u64,
}

impl Timeline {
    /// The timeline of `run` from its history's `progress`.
    pub fn of(run: ExecutionRun, progress: &Progress) -> Self {
        let start = run.execution.started_at_ms;
        let steps = progress
            .entered
            .iter()
            .map(|s| TimelineStep {
                state: s.state.clone(),
                at_seconds: s.at_ms.saturating_sub(start) / 1000,
            })
            .collect();
        Timeline {
            run,
            steps,
            earlier_steps_omitted: !progress.from_start,
        }
    }
}

/// The execution whose timeline `breaker status` shows when none runs: among `recent`, the
/// one that stopped last (a duplicate that exited at once may have started after it).
pub fn last_stopped(recent: &[ExecutionRun]) -> Option<&ExecutionRun> {
    recent
        .iter()
        .filter(|r| r.status != "RUNNING")
        .max_by_key(|r| (r.stopped_at_ms.unwrap_or(0), r.execution.started_at_ms))
}

/// Approximate message counts of a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    /// Messages available (`ApproximateNumberOfMessages`).
    pub visible: u64,
    /// Messages received and not yet deleted (`...NotVisible`).
    pub in_flight: u64,
    /// Messages delayed, e.g. re-jittered (`...Delayed`).
    pub delayed: u64,
}

impl QueueDepth {
    /// Every message the queue holds.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// The running recovery, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    /// The oldest running execution: the one that acts (single flight).
    pub execution: Execution,
    /// The state it is in.
    pub step: Option<String>,
    /// Probes done in this outage, from its circuit state.
    pub attempt: Option<u64>,
    /// Other running executions (duplicates about to exit).
    pub others: usize,
    /// Seconds since the execution started.
    pub running_seconds: u64,
}

/// The circuit's phase, as an operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Consuming normally, no recovery running.
    Closed,
    /// A recovery is disabling the mapping.
    Opening,
    /// Open, waiting before the next probe.
    BackingOff,
    /// Open, probing with real messages.
    Probing,
    /// Healthy again, spreading the backlog.
    Rejittering,
    /// Half-open, raising concurrency step by step.
    Ramping,
    /// Restoring the original configuration.
    Closing,
    /// Mapping disabled and no recovery running, or a recovery reporting a stuck circuit.
    StuckOpen,
    /// No recovery running and the mapping between states.
    Changing,
}

impl Phase {
    /// Lower-case words for human output.
    pub fn words(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Opening => "opening",
            Phase::BackingOff => "open (backing off)",
            Phase::Probing => "open (probing)",
            Phase::Rejittering => "re-jittering backlog",
            Phase::Ramping => "half-open (ramping)",
            Phase::Closing => "closing",
            Phase::StuckOpen => "OPEN, no recovery running",
            Phase::Changing => "mapping changing state",
        }
    }
}

/// The phase of a running recovery from the name of its current state (the construct names
/// states for what they do: "Back Off", "Probe Consumer", "Re-jitter Slice", "Ramp Up Consumer").
pub fn phase_of_step(step: &str) -> Phase {
    let s = step.to_ascii_lowercase();
    if s.contains("stuck") || s.contains("leave circuit open") || s.contains("recovery failed") {
        Phase::StuckOpen
    } else if s.contains("jitter") {
        Phase::Rejittering
    } else if s.contains("ramp") {
        Phase::Ramping
    } else if s.contains("probe") {
        Phase::Probing
    } else if s.contains("back") || s.contains("continue") || s.contains("hand over") {
        Phase::BackingOff
    } else if s.contains("close") || s.contains("open time") {
        Phase::Closing
    } else {
        Phase::Opening
    }
}

/// The phase from the mapping and the running recovery.
pub fn phase(mapping_state: &str, recovery: Option<&Recovery>) -> Phase {
    match recovery {
        Some(r) => r.step.as_deref().map_or(Phase::Opening, phase_of_step),
        None => match mapping_state {
            "Enabled" => Phase::Closed,
            "Disabled" => Phase::StuckOpen,
            _ => Phase::Changing,
        },
    }
}

/// The circuit state (CONTRACT.md) inside any JSON document: the first object carrying both
/// `openedAtMs` and `savedScaling`, searched depth-first.
pub fn find_circuit_state(doc: &Value) -> Option<&Value> {
    match doc {
        Value::Object(map) => {
            if map.contains_key("openedAtMs") && map.contains_key("savedScaling") {
                return Some(doc);
            }
            map.values().find_map(find_circuit_state)
        }
        Value::Array(items) => items.iter().find_map(find_circuit_state),
        _ => None,
    }
}

/// Everything `breaker status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Circuit name.
    pub circuit: String,
    /// Stack name.
    pub stack: String,
    /// Derived phase.
    pub phase: Phase,
    /// The mapping.
    pub mapping: MappingStatus,
    /// The alarm.
    pub alarm: AlarmStatus,
    /// The running recovery.
    pub recovery: Option<Recovery>,
    /// Orders queue.
    pub queue: QueueDepth,
    /// Dead-letter queue.
    pub dlq: Option<QueueDepth>,
    /// Failure flag value, if the stack has one.
    pub flag: Option<String>,
    /// The durable circuit record, when the stack names its table and it holds one.
    pub record: Option<breaker_core::record::CircuitRecord>,
    /// The last recovery's timeline (the running one's), if the state machine ran any.
    pub last_recovery: Option<Timeline>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn recovery(step: Option<&str>) -> Recovery {
        Recovery {
            execution: Execution {
                arn: "arn:x".into(),
                name: "x".into(),
                started_at_ms: 0,
            },
            step: step.map(str::to_owned),
            attempt: None,
            others: 0,
            running_seconds: 0,
        }
    }

    #[test]
    fn construct_state_names_map_to_phases() {
        for (step, phase) in [
            ("Check For Running Recovery", Phase::Opening),
            ("Open Circuit", Phase::Opening),
            ("Compute Backoff", Phase::BackingOff),
            ("Back Off", Phase::BackingOff),
            ("Continue As New Execution", Phase::BackingOff),
            ("Probe Consumer", Phase::Probing),
            ("Judge Probe Verdict", Phase::Probing),
            ("Plan Re-jitter", Phase::Rejittering),
            ("Re-jitter Slice", Phase::Rejittering),
            ("Start Ramp", Phase::Ramping),
            ("Hold Ramp Step", Phase::Ramping),
            ("Close Circuit", Phase::Closing),
            ("Publish Open Time", Phase::Closing),
            ("Report Stuck Circuit", Phase::StuckOpen),
            ("Leave Circuit Open", Phase::StuckOpen),
        ] {
            assert_eq!(phase_of_step(step), phase, "{step}");
        }
    }

    #[test]
    fn without_a_recovery_the_mapping_state_decides() {
        assert_eq!(phase("Enabled", None), Phase::Closed);
        assert_eq!(phase("Disabled", None), Phase::StuckOpen);
        assert_eq!(phase("Enabling", None), Phase::Changing);
    }

    #[test]
    fn a_running_recovery_decides_over_the_mapping_state() {
        assert_eq!(
            phase("Enabled", Some(&recovery(Some("Ramp Up Consumer")))),
            Phase::Ramping
        );
        assert_eq!(phase("Enabled", Some(&recovery(None))), Phase::Opening);
    }

    #[test]
    fn finds_the_circuit_state_nested_anywhere() {
        let state = json!({"version":1,"openedAtMs":5,"attempt":2,"iteration":2,"generation":0,"savedScaling":{"maximumConcurrency":10},"trigger":"alarm"});
        let doc = json!({"Payload": {"version":1,"action":"wait","waitSeconds":5,"state": state}});
        assert_eq!(find_circuit_state(&doc), Some(&state));
        assert_eq!(find_circuit_state(&json!({"backlog": 3})), None);
    }
}
