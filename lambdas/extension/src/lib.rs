//! The consumer-side Lambda extension of the SQS circuit breaker: a per-second error signal.
//!
//! # What it emits
//! The `sqs-circuit-breaker-telemetry` binary is an *external* Lambda extension (shipped as a
//! layer, `/opt/extensions/sqs-circuit-breaker-telemetry`). It subscribes to the Telemetry API
//! for `platform` events and, for every batch Lambda pushes to it, counts the
//! `platform.runtimeDone` records per whole second of their `time`:
//! `Invocations` (every record), `Errors` (status `error`, `failure` or `timeout`, as Lambda's own
//! `Errors` metric counts timeouts too) and `Timeouts` (status `timeout`). For each second with
//! at least one record it prints one CloudWatch Embedded Metric Format (EMF) line to stdout,
//! which Lambda writes to the function's log group, where CloudWatch turns it into metrics in
//! the namespace [`NAMESPACE`] with the dimension `FunctionName` and `StorageResolution: 1`
//! (high resolution). See [`emf_lines`] for the exact document.
//!
//! Nothing is kept across batches: two lines for the same second simply add up (CloudWatch sums
//! datapoints), so nothing is lost when the environment freezes or shuts down. On `SHUTDOWN` the
//! extension waits (bounded by the event's deadline, see [`shutdown_budget`]) for the
//! `runtimeDone` of the last invocation it was told about, which matters for a timed-out
//! invocation: its record is pushed during the reset that follows it.
//!
//! # Why
//! Lambda's own `AWS/Lambda` metrics are standard resolution (1-minute datapoints). An alarm
//! with a 10, 20 or 30 s period needs high-resolution metrics (`StorageResolution: 1`); on
//! 1-minute data it stays `INSUFFICIENT_DATA`. With this extension the breaker's alarm can trip
//! within seconds of a consumer starting to fail instead of after one or more whole minutes.
//!
//! # Costs
//! - Invocation latency: none on the invoke path. The extension does nothing on `INVOKE` except
//!   note the request id and ask for the next event; the Telemetry API pushes records to it
//!   outside the function's response path (buffered at most [`BUFFER_TIMEOUT_MS`] ms), and a
//!   batch costs a JSON parse and one `write` per second present.
//! - Memory: one small process (a current-thread tokio runtime and an HTTP listener) beside the
//!   function, plus the Telemetry API's own buffer for the subscription (bounded by
//!   [`BUFFER_MAX_BYTES`]), both counted in the function's memory.
//! - Cold start: one extra process to start, register and subscribe during `Init`.
//! - CloudWatch: the EMF lines are log data (a few hundred bytes per active second per
//!   environment) and each `Invocations`/`Errors`/`Timeouts` metric per function is a custom
//!   high-resolution metric (3 metrics per function); `PutMetricData` is not called.
//!
//! # Configuration
//! [`Config::from_env`]: `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda) names the `FunctionName`
//! dimension; `SQS_CIRCUIT_BREAKER_TELEMETRY_PORT` (optional, default
//! [`DEFAULT_TELEMETRY_PORT`]) is the port of the telemetry listener, which the extension
//! binds on all interfaces (`0.0.0.0`) before it subscribes as `http://sandbox.localdomain:<port>`
//! (registration and the event loop are the `lambda-extension` crate's; the listener is ours so
//! that a record type nobody modelled cannot cost a batch, see [`runtime_dones`]).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

/// The CloudWatch namespace of the metrics the extension emits.
pub const NAMESPACE: &str = "SqsCircuitBreaker/Consumer";

/// The dimension (and EMF member) naming the consumer function.
pub const DIMENSION: &str = "FunctionName";

/// The Telemetry API types the extension subscribes to.
pub const TELEMETRY_TYPES: &[&str] = &["platform"];

/// Telemetry buffering: the Telemetry API's minimum for each setting, so records reach the
/// extension as soon as Lambda allows (minimums: `maxItems` 1,000, `maxBytes` 262,144,
/// `timeoutMs` 25; Lambda developer guide, "Telemetry API", "Configuring memory usage and
/// buffering").
pub const BUFFER_MAX_ITEMS: usize = 1_000;
/// See [`BUFFER_MAX_ITEMS`].
pub const BUFFER_MAX_BYTES: usize = 262_144;
/// See [`BUFFER_MAX_ITEMS`].
pub const BUFFER_TIMEOUT_MS: usize = 25;

/// The port of the telemetry listener unless `SQS_CIRCUIT_BREAKER_TELEMETRY_PORT` says
/// otherwise (the `lambda-extension` crate's default too; Lambda reserves only 9001).
pub const DEFAULT_TELEMETRY_PORT: u16 = 9003;

/// The environment variable naming the function (set by Lambda for extensions too).
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The environment variable overriding [`DEFAULT_TELEMETRY_PORT`].
pub const PORT_ENV: &str = "SQS_CIRCUIT_BREAKER_TELEMETRY_PORT";

/// How long the extension may wait at `SHUTDOWN` for the last invocation's record at most:
/// the shutdown phase gives external extensions 2,000 ms minus the runtime's 300 ms.
pub const SHUTDOWN_WAIT_CAP: Duration = Duration::from_millis(1_500);

/// Time kept free before the `SHUTDOWN` deadline (Lambda sends `SIGKILL` at the deadline).
pub const SHUTDOWN_MARGIN: Duration = Duration::from_millis(200);

/// The Telemetry API schema version the subscription asks for (`platform.runtimeDone` has the
/// same shape in every version).
pub const SCHEMA_VERSION: &str = "2022-07-01";

/// The body of the `PUT /2022-07-01/telemetry` subscription: `platform` events, the minimum
/// buffering (see [`BUFFER_MAX_ITEMS`]), HTTP delivery to `sandbox.localdomain:<port>`.
pub fn subscription(port: u16) -> Value {
    serde_json::json!({
        "schemaVersion": SCHEMA_VERSION,
        "types": TELEMETRY_TYPES,
        "buffering": {
            "maxItems": BUFFER_MAX_ITEMS,
            "maxBytes": BUFFER_MAX_BYTES,
            "timeoutMs": BUFFER_TIMEOUT_MS,
        },
        "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}")},
    })
}

/// The extension's configuration, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `FunctionName` dimension value.
    pub function_name: String,
    /// The port the telemetry listener binds and subscribes with.
    pub telemetry_port: u16,
}

/// A missing or malformed environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `AWS_LAMBDA_FUNCTION_NAME` is unset or empty.
    #[error(
        "{FUNCTION_NAME_ENV} is not set: the extension names its metrics' FunctionName dimension after it (Lambda sets it; set it when running the extension elsewhere)"
    )]
    MissingFunctionName,
    /// `SQS_CIRCUIT_BREAKER_TELEMETRY_PORT` is not a port number.
    #[error(
        "{PORT_ENV}={0:?} is not a port number: use 1-65535 except 9001 (reserved by Lambda), or unset it for {DEFAULT_TELEMETRY_PORT}"
    )]
    BadPort(String),
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let function_name = lookup(FUNCTION_NAME_ENV)
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::MissingFunctionName)?;
        let telemetry_port = match lookup(PORT_ENV).filter(|v| !v.is_empty()) {
            None => DEFAULT_TELEMETRY_PORT,
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p != 0 && p != 9001 => p,
                _ => return Err(ConfigError::BadPort(v)),
            },
        };
        Ok(Config {
            function_name,
            telemetry_port,
        })
    }
}

/// The counts of one second.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SecondCounts {
    /// Every `platform.runtimeDone`.
    pub invocations: u64,
    /// Status `error`, `failure` or `timeout`.
    pub errors: u64,
    /// Status `timeout`.
    pub timeouts: u64,
}

/// One `platform.runtimeDone` record, as far as the extension reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeDone {
    /// The start of the record's second (its `time` rounded down), epoch milliseconds.
    pub second_ms: i64,
    /// `record.requestId`.
    pub request_id: String,
    /// `record.status`: `success`, `error`, `failure` or `timeout`.
    pub status: String,
}

/// Reads the `platform.runtimeDone` records of one Telemetry API batch (a JSON array of
/// `{time, type, record}` events). Leniently: every other event type, including types this
/// code does not know (e.g. SnapStart's `platform.restore*` or types added later), and any
/// element it cannot read are skipped, so one odd record never costs the batch's other
/// records. `None` only when the body is not a JSON array.
pub fn runtime_dones(body: &[u8]) -> Option<Vec<RuntimeDone>> {
    let events: Vec<Value> = serde_json::from_slice(body).ok()?;
    Some(
        events
            .iter()
            .filter(|e| e["type"] == "platform.runtimeDone")
            .filter_map(|e| {
                let time = DateTime::parse_from_rfc3339(e["time"].as_str()?).ok()?;
                Some(RuntimeDone {
                    second_ms: time.timestamp_millis().div_euclid(1_000) * 1_000,
                    request_id: e["record"]["requestId"].as_str()?.to_owned(),
                    status: e["record"]["status"].as_str()?.to_owned(),
                })
            })
            .collect(),
    )
}

/// Counts the records per second, keyed by the second's start in epoch milliseconds, in
/// ascending order. A status other than the four documented ones counts as an invocation only.
pub fn count_per_second(records: &[RuntimeDone]) -> BTreeMap<i64, SecondCounts> {
    let mut seconds: BTreeMap<i64, SecondCounts> = BTreeMap::new();
    for record in records {
        let counts = seconds.entry(record.second_ms).or_default();
        counts.invocations += 1;
        match record.status.as_str() {
            "error" | "failure" => counts.errors += 1,
            "timeout" => {
                counts.errors += 1;
                counts.timeouts += 1;
            }
            _ => {}
        }
    }
    seconds
}

/// One EMF document (one line) for one second.
pub fn emf_line(function_name: &str, second_ms: i64, counts: SecondCounts) -> String {
    let metric =
        |name: &str| serde_json::json!({"Name": name, "Unit": "Count", "StorageResolution": 1});
    serde_json::json!({
        "_aws": {
            "Timestamp": second_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [metric("Invocations"), metric("Errors"), metric("Timeouts")],
            }],
        },
        DIMENSION: function_name,
        "Invocations": counts.invocations,
        "Errors": counts.errors,
        "Timeouts": counts.timeouts,
    })
    .to_string()
}

/// The EMF lines for one telemetry batch's records: one per second that had at least one
/// `platform.runtimeDone`, oldest second first.
pub fn emf_lines(records: &[RuntimeDone], function_name: &str) -> Vec<String> {
    count_per_second(records)
        .into_iter()
        .map(|(second_ms, counts)| emf_line(function_name, second_ms, counts))
        .collect()
}

/// How many recent `runtimeDone` request ids [`Progress`] remembers.
const RECENT_DONE: usize = 64;

/// Which invocation the extension last saw start and whether its `runtimeDone` has been
/// printed: what `SHUTDOWN` waits for. Bounded memory (the last [`RECENT_DONE`] ids).
#[derive(Debug, Default)]
pub struct Progress {
    last_invoke: Option<String>,
    recent_done: VecDeque<String>,
}

impl Progress {
    /// An `INVOKE` event for `request_id` arrived.
    pub fn invoked(&mut self, request_id: &str) {
        self.last_invoke = Some(request_id.to_owned());
    }

    /// The `runtimeDone` records of these request ids were printed.
    pub fn done<'a>(&mut self, request_ids: impl IntoIterator<Item = &'a str>) {
        for id in request_ids {
            if self.recent_done.len() == RECENT_DONE {
                self.recent_done.pop_front();
            }
            self.recent_done.push_back(id.to_owned());
        }
    }

    /// True when there is nothing to wait for: no invocation yet, or the last one's
    /// `runtimeDone` was printed.
    pub fn last_invoke_done(&self) -> bool {
        match &self.last_invoke {
            None => true,
            Some(id) => self.recent_done.iter().any(|d| d == id),
        }
    }
}

/// How long to wait at `SHUTDOWN` for the last invocation's record: until [`SHUTDOWN_MARGIN`]
/// before the event's deadline, at most [`SHUTDOWN_WAIT_CAP`]. `deadline_ms` is the deadline in
/// epoch milliseconds; a value below `now_ms` that is not a past epoch time (below a year 2001
/// epoch) is read as milliseconds remaining, as older documentation describes it.
pub fn shutdown_budget(deadline_ms: u64, now_ms: u64) -> Duration {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    let remaining_ms = if deadline_ms >= EPOCH_2001_MS {
        deadline_ms.saturating_sub(now_ms)
    } else {
        deadline_ms
    };
    Duration::from_millis(remaining_ms)
        .saturating_sub(SHUTDOWN_MARGIN)
        .min(SHUTDOWN_WAIT_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batch(v: Value) -> Vec<RuntimeDone> {
        runtime_dones(v.to_string().as_bytes()).expect("a Telemetry API batch")
    }

    fn done(time: &str, id: &str, status: &str) -> Value {
        json!({"time": time, "type": "platform.runtimeDone",
               "record": {"requestId": id, "status": status,
                          "metrics": {"durationMs": 12.5, "producedBytes": 2}}})
    }

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).expect("an EMF line is JSON")
    }

    #[test]
    fn one_line_per_second_in_ascending_order_with_status_mapping() {
        // Out of order on purpose: the lines follow the seconds, not the batch order.
        let events = batch(json!([
            done("2026-12-01T17:00:02.999Z", "c", "timeout"),
            {"time": "2026-12-01T17:00:01.000Z", "type": "platform.start",
             "record": {"requestId": "a", "version": "$LATEST"}},
            done("2026-12-01T17:00:01.000Z", "a", "success"),
            done("2026-12-01T17:00:01.500Z", "b", "error"),
            done("2026-12-01T17:00:01.999Z", "d", "failure"),
            done("2026-12-01T17:00:02.000Z", "e", "success"),
            {"time": "2026-12-01T17:00:02.100Z", "type": "platform.report",
             "record": {"requestId": "e", "status": "success",
                        "metrics": {"durationMs": 1.0, "billedDurationMs": 2, "memorySizeMB": 128, "maxMemoryUsedMB": 20}}},
        ]));
        let lines: Vec<Value> = emf_lines(&events, "consumer-fn")
            .iter()
            .map(|l| parse(l))
            .collect();
        // 2026-12-01T17:00:00Z in epoch milliseconds.
        let base_ms = 1_796_144_400_000_i64;
        assert_eq!(lines.len(), 2);
        let (first_ms, second_ms) = (base_ms + 1_000, base_ms + 2_000);
        assert_eq!(lines[0]["_aws"]["Timestamp"], json!(first_ms));
        assert_eq!(
            (
                &lines[0]["Invocations"],
                &lines[0]["Errors"],
                &lines[0]["Timeouts"]
            ),
            (&json!(3), &json!(2), &json!(0))
        );
        assert_eq!(lines[1]["_aws"]["Timestamp"], json!(second_ms));
        assert_eq!(
            (
                &lines[1]["Invocations"],
                &lines[1]["Errors"],
                &lines[1]["Timeouts"]
            ),
            (&json!(2), &json!(1), &json!(1))
        );
    }

    #[test]
    fn the_document_is_the_contracts_emf_shape() {
        let events = batch(json!([done("2026-12-01T17:00:05.250Z", "a", "timeout")]));
        let lines = emf_lines(&events, "orders-consumer");
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'), "one document per line");
        let metric = |n: &str| json!({"Name": n, "Unit": "Count", "StorageResolution": 1});
        assert_eq!(
            parse(&lines[0]),
            json!({
                "_aws": {"Timestamp": 1_796_144_405_000_i64, "CloudWatchMetrics": [{
                    "Namespace": "SqsCircuitBreaker/Consumer",
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [metric("Invocations"), metric("Errors"), metric("Timeouts")]}]},
                "FunctionName": "orders-consumer",
                "Invocations": 1, "Errors": 1, "Timeouts": 1
            })
        );
    }

    #[test]
    fn a_batch_without_runtime_done_prints_nothing() {
        let events = batch(json!([
            {"time": "2026-12-01T17:00:00.000Z", "type": "platform.initStart",
             "record": {"initializationType": "on-demand", "phase": "init"}},
            {"time": "2026-12-01T17:00:00.010Z", "type": "platform.telemetrySubscription",
             "record": {"name": "sqs-circuit-breaker-telemetry", "state": "Subscribed", "types": ["platform"]}},
            {"time": "2026-12-01T17:00:00.020Z", "type": "platform.start",
             "record": {"requestId": "a"}},
        ]));
        assert!(emf_lines(&events, "f").is_empty());
        assert!(emf_lines(&[], "f").is_empty());
    }

    #[test]
    fn runtime_dones_reads_only_runtime_done_and_skips_what_it_cannot_read() {
        let events = batch(json!([
            {"time": "2026-12-01T17:00:00.020Z", "type": "platform.start", "record": {"requestId": "x"}},
            // SnapStart's restore events and types added later must not cost the batch.
            {"time": "2026-12-01T17:00:00.021Z", "type": "platform.restoreStart", "record": {"runtimeVersion": "python:3.12.v1"}},
            {"time": "2026-12-01T17:00:00.022Z", "type": "platform.somethingNew", "record": {}},
            done("2026-12-01T17:00:00.030Z", "a", "success"),
            {"time": "not a time", "type": "platform.runtimeDone", "record": {"requestId": "bad", "status": "error"}},
            {"time": "2026-12-01T17:00:00.035Z", "type": "platform.runtimeDone", "record": {"status": "error"}},
            done("2026-12-01T17:00:01.040+00:00", "b", "error"),
        ]));
        assert_eq!(
            events,
            [
                RuntimeDone {
                    second_ms: 1_796_144_400_000,
                    request_id: "a".into(),
                    status: "success".into()
                },
                RuntimeDone {
                    second_ms: 1_796_144_401_000,
                    request_id: "b".into(),
                    status: "error".into()
                },
            ]
        );
        assert_eq!(runtime_dones(b"{\"not\": \"an array\"}"), None);
        assert_eq!(runtime_dones(b"[]"), Some(vec![]));
    }

    #[test]
    fn the_subscription_asks_for_platform_events_with_the_minimum_buffering() {
        assert_eq!(
            subscription(9003),
            json!({"schemaVersion": "2022-07-01", "types": ["platform"],
                   "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
                   "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:9003"}})
        );
    }

    #[test]
    fn progress_waits_for_the_last_invoke_only() {
        let mut p = Progress::default();
        assert!(p.last_invoke_done(), "nothing invoked: nothing to wait for");
        p.invoked("a");
        assert!(!p.last_invoke_done());
        p.done(["a"]);
        assert!(p.last_invoke_done());
        p.invoked("b");
        p.done(["z"]);
        assert!(!p.last_invoke_done(), "another id does not count");
        p.done(["b"]);
        assert!(p.last_invoke_done());
        // Bounded memory: old ids fall out.
        p.done((0..RECENT_DONE).map(|_| "other"));
        assert!(!p.last_invoke_done());
    }

    #[test]
    fn shutdown_budget_keeps_a_margin_and_a_cap() {
        let now = 1_796_144_400_000;
        assert_eq!(shutdown_budget(now + 2_000, now), SHUTDOWN_WAIT_CAP);
        assert_eq!(shutdown_budget(now + 700, now), Duration::from_millis(500));
        assert_eq!(shutdown_budget(now + 100, now), Duration::ZERO);
        assert_eq!(
            shutdown_budget(now - 5, now),
            Duration::ZERO,
            "deadline passed"
        );
        // Read as milliseconds remaining when it cannot be an epoch time.
        assert_eq!(shutdown_budget(1_000, now), Duration::from_millis(800));
    }

    #[test]
    fn config_reads_the_function_name_and_the_port() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Config::from_lookup(env(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])),
            Ok(Config {
                function_name: "f".into(),
                telemetry_port: 9003
            })
        );
        assert_eq!(
            Config::from_lookup(env(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                ("SQS_CIRCUIT_BREAKER_TELEMETRY_PORT", "4243")
            ]))
            .map(|c| c.telemetry_port),
            Ok(4243)
        );
        assert_eq!(
            Config::from_lookup(env(&[])),
            Err(ConfigError::MissingFunctionName)
        );
        for bad in ["0", "9001", "70000", "x"] {
            let err = Config::from_lookup(move |k: &str| match k {
                "AWS_LAMBDA_FUNCTION_NAME" => Some("f".into()),
                "SQS_CIRCUIT_BREAKER_TELEMETRY_PORT" => Some(bad.into()),
                _ => None,
            })
            .unwrap_err();
            assert_eq!(err, ConfigError::BadPort(bad.into()));
            assert!(
                err.to_string()
                    .contains("SQS_CIRCUIT_BREAKER_TELEMETRY_PORT")
            );
        }
    }
}
