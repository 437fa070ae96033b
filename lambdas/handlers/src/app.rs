//! Dispatch from Lambda's handler name (`_HANDLER`) to the handler, with the ports built once.

use std::str::FromStr;

use breaker_core::config::Config;
use breaker_core::ports::{
    Alarms, CircuitRecords, Clock, Consumer, EventSourceMappings, Events, Executions, Metrics,
    Queue,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;

use crate::error::HandlerError;
use crate::esm::EsmPolicy;
use crate::rejitter::{self, RejitterSettings};

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

/// The ports every handler may use, and the configuration.
#[derive(Debug, Clone)]
pub struct App<E, K, Q, A, M, V, X, R, C> {
    /// The configuration.
    pub config: Config,
    /// The consumer's event-source mapping.
    pub esm: E,
    /// The consumer function.
    pub consumer: K,
    /// The consumer's queue.
    pub queue: Q,
    /// The trigger alarm.
    pub alarms: A,
    /// The consumer's metrics.
    pub metrics: M,
    /// The breaker's event bus.
    pub events: V,
    /// The state machine's executions.
    pub executions: X,
    /// The durable circuit record.
    pub records: R,
    /// The clock.
    pub clock: C,
    /// Retry and wait bounds for mapping updates.
    pub esm_policy: EsmPolicy,
}

impl<E, K, Q, A, M, V, X, R, C> App<E, K, Q, A, M, V, X, R, C>
where
    E: EventSourceMappings,
    K: Consumer,
    Q: Queue,
    A: Alarms,
    M: Metrics,
    V: Events,
    X: Executions,
    R: CircuitRecords,
    C: Clock,
{
    /// Run handler `name` on `payload` and return its output document.
    pub async fn dispatch(&self, name: HandlerName, payload: Value) -> Result<Value, HandlerError> {
        let c = &self.config;
        let p = &self.esm_policy;
        match name {
            HandlerName::Open => to_value(
                crate::open::open(
                    payload,
                    c,
                    &self.esm,
                    &self.executions,
                    &self.records,
                    &self.events,
                    &self.clock,
                    p,
                )
                .await?,
            ),
            HandlerName::Backoff => {
                let mut rng = StdRng::from_rng(&mut rand::rng());
                to_value(
                    crate::backoff::backoff(
                        payload,
                        c,
                        &self.queue,
                        &self.events,
                        &self.clock,
                        &mut rng,
                    )
                    .await?,
                )
            }
            HandlerName::Probe => to_value(
                crate::probe::probe(
                    payload,
                    c,
                    &self.queue,
                    &self.consumer,
                    &self.events,
                    &self.clock,
                )
                .await?,
            ),
            HandlerName::Ramp => to_value(
                crate::ramp::ramp(
                    payload,
                    c,
                    &self.esm,
                    &self.metrics,
                    &self.records,
                    &self.events,
                    &self.clock,
                    p,
                )
                .await?,
            ),
            HandlerName::Close => to_value(
                crate::close::close(
                    payload,
                    c,
                    &self.esm,
                    &self.alarms,
                    &self.records,
                    &self.events,
                    &self.clock,
                    p,
                )
                .await?,
            ),
            HandlerName::Stuck => to_value(
                crate::stuck::stuck(
                    payload,
                    c,
                    &self.esm,
                    &self.records,
                    &self.events,
                    &self.clock,
                )
                .await?,
            ),
            HandlerName::RejitterPlan => {
                let settings = RejitterSettings::from_config(c)?;
                to_value(
                    rejitter::run_plan(&self.queue, &settings, payload, self.clock.now_ms())
                        .await?,
                )
            }
            HandlerName::Rejitter => {
                let settings = RejitterSettings::from_config(c)?;
                to_value(rejitter::run_rejitter(&self.queue, &settings, payload).await?)
            }
        }
    }
}

fn to_value<T: Serialize>(output: T) -> Result<Value, HandlerError> {
    Ok(serde_json::to_value(output).expect("contract documents always serialize"))
}

#[cfg(test)]
mod tests {
    use breaker_core::ports::EsmState;
    use breaker_testkit::FakeQueue;
    use serde_json::json;

    use super::*;
    use crate::testing::{
        FakeAlarms, FakeConsumer, FakeEsm, FakeEvents, FakeExecutions, FakeMetrics, FakeRecords,
        FixedClock, config, state_json,
    };

    type TestApp = App<
        FakeEsm,
        FakeConsumer,
        FakeQueue,
        FakeAlarms,
        FakeMetrics,
        FakeEvents,
        FakeExecutions,
        FakeRecords,
        FixedClock,
    >;

    fn app() -> TestApp {
        App {
            config: config(&[]),
            esm: FakeEsm::new(EsmState::Enabled, Some(10)),
            consumer: FakeConsumer::healthy(),
            queue: FakeQueue::new(),
            alarms: FakeAlarms::default(),
            metrics: FakeMetrics::steady(0.0, 0.0),
            events: FakeEvents::default(),
            executions: FakeExecutions::default(),
            records: FakeRecords::default(),
            clock: FixedClock::at(2_000),
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
            app.esm.calls().is_empty()
                && app.queue.calls().is_empty()
                && app.events.events().is_empty()
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
        assert!(app.queue.calls().is_empty());
    }
}
