//! The breaker's EventBridge events: source [`EVENT_SOURCE`], one detail-type per transition,
//! and a detail that always names the circuit, the ESM, the queue, the attempt and the timings.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::contract::CircuitState;

/// The `source` of every breaker event.
pub const EVENT_SOURCE: &str = "sqs-circuit-breaker";

/// The transitions the breaker announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailType {
    /// The ESM was disabled (first open, or a relapse during the ramp).
    Opened,
    /// A probe judged the consumer unhealthy.
    ProbeFailed,
    /// The ESM was re-enabled at the first ramp level.
    HalfOpen,
    /// The original scaling was restored and the alarm reset.
    Closed,
    /// The circuit stays open without further recovery (max open duration, or a failure).
    StuckOpen,
    /// A keep-alive pass started: queued messages are re-sent before their retention runs out.
    KeptAlive,
    /// Queued messages may expire while the circuit is open and the breaker cannot keep them
    /// alive (a FIFO queue: copies would reorder message groups).
    AtRisk,
    /// Re-jitter was skipped at run time (a FIFO queue: no per-message delay, and copies would
    /// reorder message groups); the recovery goes on to the ramp.
    RejitterSkipped,
}

impl DetailType {
    /// The EventBridge `detail-type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "Circuit Opened",
            Self::ProbeFailed => "Probe Failed",
            Self::HalfOpen => "Circuit Half-Open",
            Self::Closed => "Circuit Closed",
            Self::StuckOpen => "Circuit Stuck Open",
            Self::KeptAlive => "Messages Kept Alive",
            Self::AtRisk => "Messages At Risk",
            Self::RejitterSkipped => "Re-jitter Skipped",
        }
    }
}

/// One event to put on the breaker's bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerEvent {
    /// The transition.
    pub detail_type: DetailType,
    /// The JSON detail (an object).
    pub detail: Map<String, Value>,
}

impl BreakerEvent {
    /// An event for `state` at `now_ms`, with the common detail fields: `circuit`, `esmUuid`,
    /// `queueArn`, `attempt`, `openedAtMs`, `openSeconds`, `generation`, `trigger`, `atMs`.
    pub fn for_state(
        detail_type: DetailType,
        config: &Config,
        state: &CircuitState,
        now_ms: u64,
    ) -> Self {
        let mut event = Self::bare(detail_type, config, now_ms);
        event.detail.insert("attempt".into(), json!(state.attempt));
        event
            .detail
            .insert("openedAtMs".into(), json!(state.opened_at_ms));
        event
            .detail
            .insert("openSeconds".into(), json!(state.open_seconds(now_ms)));
        event
            .detail
            .insert("generation".into(), json!(state.generation));
        event.detail.insert("trigger".into(), json!(state.trigger));
        event
    }

    /// An event with only the circuit, ESM, queue and time (when no valid state is known);
    /// `attempt`, `openedAtMs` and `openSeconds` are `null`.
    pub fn bare(detail_type: DetailType, config: &Config, now_ms: u64) -> Self {
        let detail = json!({
            "circuit": config.circuit_name,
            "esmUuid": config.esm_uuid,
            "queueArn": config.queue_arn,
            "attempt": null,
            "openedAtMs": null,
            "openSeconds": null,
            "atMs": now_ms,
        });
        let Value::Object(detail) = detail else {
            unreachable!("json! object")
        };
        Self {
            detail_type,
            detail,
        }
    }

    /// Add (or replace) a detail field.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.detail.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// The detail as a JSON string (what `PutEvents` takes).
    pub fn detail_json(&self) -> String {
        Value::Object(self.detail.clone()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::minimal_env;
    use crate::contract::{SavedScaling, Trigger};

    #[test]
    fn detail_carries_circuit_esm_queue_attempt_and_timings() {
        let env = minimal_env();
        let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        let mut state = CircuitState::opened(
            1_000_000,
            SavedScaling {
                maximum_concurrency: Some(5),
            },
            Trigger::Alarm,
        );
        state.attempt = 4;
        let event = BreakerEvent::for_state(DetailType::ProbeFailed, &config, &state, 1_090_500)
            .with("probed", 1);
        assert_eq!(event.detail_type.as_str(), "Probe Failed");
        let d = serde_json::from_str::<Value>(&event.detail_json()).unwrap();
        assert_eq!(d["circuit"], "orders");
        assert_eq!(d["esmUuid"], "esm-1");
        assert_eq!(d["queueArn"], "arn:aws:sqs:eu-west-1:123456789012:orders");
        assert_eq!(d["attempt"], 4);
        assert_eq!(d["openedAtMs"], 1_000_000);
        assert_eq!(d["openSeconds"], 90);
        assert_eq!(d["trigger"], "alarm");
        assert_eq!(d["probed"], 1);
    }

    #[test]
    fn detail_types_match_the_contract() {
        let all = [
            DetailType::Opened,
            DetailType::ProbeFailed,
            DetailType::HalfOpen,
            DetailType::Closed,
            DetailType::StuckOpen,
            DetailType::KeptAlive,
            DetailType::AtRisk,
            DetailType::RejitterSkipped,
        ]
        .map(DetailType::as_str);
        assert_eq!(
            all,
            [
                "Circuit Opened",
                "Probe Failed",
                "Circuit Half-Open",
                "Circuit Closed",
                "Circuit Stuck Open",
                "Messages Kept Alive",
                "Messages At Risk",
                "Re-jitter Skipped"
            ]
        );
    }
}
