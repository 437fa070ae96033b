//! Dispatch from Lambda's handler name (`_HANDLER`) to the handler, with the [`App`] (configuration
//! and [`Ports`] bundle) built once.

use std::str::FromStr;

use breaker_core::config::Config;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::error::HandlerError;
use crate::esm::EsmPolicy;
use crate::ports::Ports;
use crate::rejitter;

/// The handlers of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerName {
    /// `open`
    Open,
    /// `backoff`
    Backoff,
    /// `probe`
    Probe,
    /// `rejitter-plan`
    RejitterPlan,
    /// `rejitter`
    Rejitter,
    /// `ramp`
    Ramp,
    /// `close`
    Close,
    /// `stuck`
    Stuck,
}

impl HandlerName {
    /// Every handler with its name in `_HANDLER`: the one table that dispatch and the
    /// unknown-handler error read. `lambdas/handlers/handlers.json` lists the same names for the
    /// construct's tests; a test on each side fails when they drift.
    pub const ALL: [(Self, &'static str); 8] = [
        (Self::Open, "open"),
        (Self::Backoff, "backoff"),
        (Self::Probe, "probe"),
        (Self::RejitterPlan, "rejitter-plan"),
        (Self::Rejitter, "rejitter"),
        (Self::Ramp, "ramp"),
        (Self::Close, "close"),
        (Self::Stuck, "stuck"),
    ];

    /// The name as it appears in `_HANDLER`.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(h, _)| *h == self)
            .map(|(_, n)| *n)
            .expect("every handler is in HandlerName::ALL")
    }

    /// The names, comma-separated (for error messages).
    pub fn names() -> String {
        Self::ALL.map(|(_, n)| n).join(", ")
    }
}

impl FromStr for HandlerName {
    type Err = HandlerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(h, _)| *h)
            .ok_or_else(|| HandlerError::UnknownHandler(name.to_owned()))
    }
}

/// What every handler reads: the configuration, the ports and the mapping-update policy.
#[derive(Debug, Clone)]
pub struct App<P> {
    /// The configuration.
    pub config: Config,
    /// The ports.
    pub ports: P,
    /// Retry and wait bounds for mapping updates.
    pub esm_policy: EsmPolicy,
}

impl<P: Ports> App<P> {
    /// The configuration and the ports, with the default mapping-update policy.
    pub fn new(config: Config, ports: P) -> Self {
        Self {
            config,
            ports,
            esm_policy: EsmPolicy::default(),
        }
    }

    /// Run handler `name` on `payload` and return its output document. Every log line of the
    /// invocation carries the circuit, the handler and the execution (the payload's
    /// `executionArn`, which the state machine passes to every task; `-` when absent) in its span.
    pub async fn dispatch(&self, name: HandlerName, payload: Value) -> Result<Value, HandlerError> {
        let execution = payload
            .get("executionArn")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned();
        let span = tracing::info_span!(
            "invocation",
            circuit = %self.config.circuit_name,
            handler = name.as_str(),
            execution = %execution,
        );
        // Boxed: the handlers' futures nested in the span's are deeper than the compiler's
        // default layout limit allows for `bootstrap`'s main.
        Box::pin(self.run(name, payload)).instrument(span).await
    }

    async fn run(&self, name: HandlerName, payload: Value) -> Result<Value, HandlerError> {
        match name {
            HandlerName::Open => to_value(crate::open::open(payload, self).await?),
            HandlerName::Backoff => {
                let mut rng = StdRng::from_rng(&mut rand::rng());
                to_value(crate::backoff::backoff(payload, self, &mut rng).await?)
            }
            HandlerName::Probe => to_value(crate::probe::probe(payload, self).await?),
            HandlerName::Ramp => to_value(crate::ramp::ramp(payload, self).await?),
            HandlerName::Close => to_value(crate::close::close(payload, self).await?),
            HandlerName::Stuck => to_value(crate::stuck::stuck(payload, self).await?),
            HandlerName::RejitterPlan => to_value(rejitter::rejitter_plan(payload, self).await?),
            HandlerName::Rejitter => to_value(rejitter::rejitter(payload, self).await?),
        }
    }
}

fn to_value<T: Serialize>(output: T) -> Result<Value, HandlerError> {
    Ok(serde_json::to_value(output).expect("contract documents always serialize"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{Fakes, FixedClock, config, state_json};

    fn app() -> App<Fakes> {
        App {
            config: config(&[]),
            ports: Fakes {
                clock: FixedClock::at(2_000),
                ..Fakes::default()
            },
            esm_policy: EsmPolicy::default(),
        }
    }

    #[test]
    fn handler_names_round_trip_and_match_the_table_the_construct_is_tested_against() {
        let table: Vec<String> = serde_json::from_str(include_str!("../handlers.json")).unwrap();
        let ours: Vec<&str> = HandlerName::ALL.iter().map(|(_, n)| *n).collect();
        assert_eq!(
            table, ours,
            "lambdas/handlers/handlers.json and HandlerName::ALL drifted"
        );
        for name in ours {
            assert_eq!(name.parse::<HandlerName>().unwrap().as_str(), name);
        }
    }

    #[test]
    fn unknown_handler_names_are_refused_naming_the_known_ones() {
        let err = "bootstrap.handler".parse::<HandlerName>().unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable");
        assert!(err.to_string().contains("bootstrap.handler"), "{err}");
        assert!(
            err.to_string()
                .ends_with("open, backoff, probe, rejitter-plan, rejitter, ramp, close, stuck"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dispatch_runs_the_named_handler_and_returns_its_document() {
        let out = app()
            .dispatch(
                HandlerName::Backoff,
                json!({ "state": state_json(1_000, 0, 0, None) }),
            )
            .await
            .unwrap();
        assert_eq!(out["version"], 1);
        assert_eq!(out["action"], "wait");
        assert!(
            out["waitSeconds"]
                .as_u64()
                .is_some_and(|w| (1..=30).contains(&w))
        );
    }

    /// Captured log output (a `MakeWriter` for tracing-subscriber's formatter).
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Issue 18: an operator reading one log line knows the circuit and the execution. Every
    /// line a handler logs, in Lambda's JSON log format (the construct's), carries both.
    #[tokio::test]
    async fn every_log_line_names_the_circuit_and_the_execution() {
        const ARN: &str = "arn:aws:states:eu-west-1:123456789012:execution:orders-breaker:e-1";
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = app();
        let state = state_json(1_000, 0, 0, None);
        for (name, payload) in [
            (
                HandlerName::Backoff,
                json!({ "state": state, "executionArn": ARN }),
            ),
            (
                HandlerName::RejitterPlan,
                json!({ "state": state, "executionArn": ARN }),
            ),
            (
                HandlerName::Probe,
                json!({ "state": state, "executionArn": ARN }),
            ),
        ] {
            app.dispatch(name, payload).await.unwrap();
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(lines.len() >= 3, "each handler logs: {text}");
        for line in &lines {
            assert_eq!(line["span"]["circuit"], "orders", "{line}");
            assert_eq!(line["span"]["execution"], ARN, "{line}");
            assert!(line["span"]["handler"].is_string(), "{line}");
        }
    }

    #[tokio::test]
    async fn dispatch_of_malformed_input_is_non_retryable_and_calls_nothing() {
        let app = app();
        for name in [
            HandlerName::Open,
            HandlerName::Probe,
            HandlerName::Ramp,
            HandlerName::Close,
            HandlerName::RejitterPlan,
            HandlerName::Rejitter,
        ] {
            let err = app
                .dispatch(name, json!({ "state": { "version": 3 } }))
                .await
                .unwrap_err();
            assert_eq!(err.error_type(), "NonRetryable", "{name:?}: {err}");
        }
        assert!(
            app.ports.esm.calls().is_empty()
                && app.ports.queue.calls().is_empty()
                && app.ports.events.events().is_empty()
        );
    }

    #[tokio::test]
    async fn rejitter_arms_dispatch_to_the_rejitter_handlers_and_validate_input_first() {
        let app = app();
        let plan = app
            .dispatch(
                HandlerName::RejitterPlan,
                json!({ "state": state_json(1_000, 0, 0, None) }),
            )
            .await
            .unwrap();
        assert_eq!(plan["version"], 1);
        assert!(plan["cutoffMs"].as_u64().is_some(), "{plan}");
        assert!(plan["workers"].is_array(), "{plan}");

        let app = self::app();
        let err = app
            .dispatch(HandlerName::Rejitter, json!({ "worker": 0 }))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable");
        assert!(err.to_string().contains("cutoffMs"), "{err}");
        assert!(app.ports.queue.calls().is_empty());
    }
}
