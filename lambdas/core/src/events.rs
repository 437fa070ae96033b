//! The breaker's EventBridge events: source [`EVENT_SOURCE`], one detail-type per transition,
//! and a detail that always names the circuit, the ESM, the queue, the attempt and the timings.
//! Every event is also a metric: [`BreakerEvent::emf_line`] is the CloudWatch embedded-metric-
//! format line the handlers print for it, by the table in `cdk/src/metrics.json` (shared with the
//! construct's metric helpers and recovery alarm).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
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

/// The breaker's metrics table, `cdk/src/metrics.json` (one source of truth with the construct).
const METRICS_TABLE: &str = include_str!("../../../cdk/src/metrics.json");

/// `cdk/src/metrics.json`, parsed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsTable {
    namespace: String,
    dimension: String,
    state_metric: String,
    circuit_states: BTreeMap<String, u8>,
    events: BTreeMap<String, EventMetric>,
}

/// One detail-type's entry in the metrics table.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventMetric {
    metric: String,
    circuit_state: Option<String>,
}

fn metrics_table() -> &'static MetricsTable {
    static TABLE: OnceLock<MetricsTable> = OnceLock::new();
    // The table is compiled in and its tests parse it: a broken table never ships.
    TABLE.get_or_init(|| serde_json::from_str(METRICS_TABLE).expect("cdk/src/metrics.json parses"))
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

    /// The CloudWatch embedded-metric-format line for this event (printed on stdout by a Lambda,
    /// CloudWatch Logs turns it into metrics): namespace `SqsCircuitBreaker`, dimension `Circuit`,
    /// the detail-type's count metric with value 1 and, for an event that moves the circuit,
    /// `CircuitState` (0 closed, 1 half-open, 2 open, 3 stuck open), timestamped at the event's
    /// `atMs`. `None` when the detail has no circuit or time (no metric can name it).
    pub fn emf_line(&self) -> Option<String> {
        let table = metrics_table();
        let entry = table.events.get(self.detail_type.as_str())?;
        let circuit = self.detail.get("circuit").and_then(Value::as_str)?;
        let at_ms = self.detail.get("atMs").and_then(Value::as_u64)?;
        let mut definitions = vec![json!({"Name": entry.metric, "Unit": "Count"})];
        let mut doc = Map::new();
        doc.insert(table.dimension.clone(), json!(circuit));
        doc.insert("detailType".into(), json!(self.detail_type.as_str()));
        doc.insert(entry.metric.clone(), json!(1));
        let state = entry
            .circuit_state
            .as_ref()
            .and_then(|name| table.circuit_states.get(name));
        if let Some(state) = state {
            definitions.push(json!({"Name": table.state_metric, "Unit": "None"}));
            doc.insert(table.state_metric.clone(), json!(state));
        }
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": at_ms,
                "CloudWatchMetrics": [{
                    "Namespace": table.namespace,
                    "Dimensions": [[table.dimension]],
                    "Metrics": definitions,
                }],
            }),
        );
        Some(Value::Object(doc).to_string())
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

    const ALL: [DetailType; 8] = [
        DetailType::Opened,
        DetailType::ProbeFailed,
        DetailType::HalfOpen,
        DetailType::Closed,
        DetailType::StuckOpen,
        DetailType::KeptAlive,
        DetailType::AtRisk,
        DetailType::RejitterSkipped,
    ];

    fn event(detail_type: DetailType) -> BreakerEvent {
        let env = minimal_env();
        let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        BreakerEvent::bare(detail_type, &config, 1_700_000_123_456)
    }

    #[test]
    fn the_metrics_table_names_every_detail_type_and_nothing_else() {
        let table = metrics_table();
        let names: Vec<&str> = ALL.map(DetailType::as_str).to_vec();
        let mut listed: Vec<&str> = table.events.keys().map(String::as_str).collect();
        let mut expected = names.clone();
        listed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(listed, expected, "cdk/src/metrics.json events");
        for (name, entry) in &table.events {
            if let Some(state) = &entry.circuit_state {
                assert!(
                    table.circuit_states.contains_key(state),
                    "{name}: unknown state {state}"
                );
            }
        }
        assert_eq!(table.namespace, "SqsCircuitBreaker");
    }

    #[test]
    fn an_opened_event_is_one_open_and_the_open_state_at_its_time() {
        let line = event(DetailType::Opened).emf_line().unwrap();
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_123_456_u64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "SqsCircuitBreaker");
        assert_eq!(directive["Dimensions"], json!([["Circuit"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Opens", "Unit": "Count"}, {"Name": "CircuitState", "Unit": "None"}])
        );
        assert_eq!(doc["Circuit"], "orders");
        assert_eq!(doc["Opens"], 1);
        assert_eq!(doc["CircuitState"], 2);
        assert_eq!(doc["detailType"], "Circuit Opened");
        assert!(!line.contains('\n'), "one line");
    }

    #[test]
    fn each_transition_records_the_state_it_enters_and_other_events_only_count() {
        let state_of = |t: DetailType| {
            let doc: Value = serde_json::from_str(&event(t).emf_line().unwrap()).unwrap();
            doc.get("CircuitState").cloned()
        };
        assert_eq!(state_of(DetailType::Closed), Some(json!(0)));
        assert_eq!(state_of(DetailType::HalfOpen), Some(json!(1)));
        assert_eq!(state_of(DetailType::Opened), Some(json!(2)));
        assert_eq!(state_of(DetailType::StuckOpen), Some(json!(3)));
        for t in [
            DetailType::ProbeFailed,
            DetailType::KeptAlive,
            DetailType::AtRisk,
            DetailType::RejitterSkipped,
        ] {
            assert_eq!(state_of(t), None, "{}", t.as_str());
        }
        let doc: Value =
            serde_json::from_str(&event(DetailType::StuckOpen).emf_line().unwrap()).unwrap();
        assert_eq!(doc["StuckOpens"], 1);
    }

    #[test]
    fn an_event_without_circuit_or_time_has_no_metric_line() {
        let mut e = event(DetailType::Opened);
        e.detail.remove("atMs");
        assert_eq!(e.emf_line(), None);
        let mut e = event(DetailType::Opened);
        e.detail.insert("circuit".into(), Value::Null);
        assert_eq!(e.emf_line(), None);
    }

    #[test]
    fn detail_types_match_the_contract() {
        let all = ALL.map(DetailType::as_str);
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
