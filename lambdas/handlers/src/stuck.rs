//! `stuck`: the catch-all. Reads the mapping's state and announces `Circuit Stuck Open` with
//! the caught error. Never fails on a bad `state` (it is the last resort); fails only if the
//! event cannot be put.

use breaker_core::config::Config;
use breaker_core::contract::{StuckInput, StuckOutput, Version};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::ports::{Clock, EventSourceMappings, Events};
use serde_json::Value;
use tracing::{error, warn};

use crate::error::HandlerError;

/// Handle `stuck` (see `CONTRACT.md`).
pub async fn stuck<E, V, C>(
    input: Value,
    config: &Config,
    esm: &E,
    events: &V,
    clock: &C,
) -> Result<StuckOutput, HandlerError>
where
    E: EventSourceMappings,
    V: Events,
    C: Clock,
{
    let input = StuckInput::lenient(&input);
    if let Some(problem) = &input.input_problem {
        warn!(problem = %problem, "stuck handler got a malformed input; notifying anyway");
    }
    let esm_state = match esm.get(&config.esm_uuid).await {
        Ok(s) => s.state.as_str().to_owned(),
        Err(e) => {
            warn!(esm = %config.esm_uuid, error = %e, "could not read the event-source mapping");
            "Unknown".to_owned()
        }
    };
    let now = clock.now_ms();
    let event = match &input.state {
        Some(state) => BreakerEvent::for_state(DetailType::StuckOpen, config, state, now),
        None => BreakerEvent::bare(DetailType::StuckOpen, config, now),
    }
    .with("reason", "recovery failed")
    .with("esmState", &esm_state)
    .with("error", &input.error)
    .with("inputProblem", &input.input_problem);
    events.put(&event).await?;
    error!(esm = %config.esm_uuid, esm_state = %esm_state, error = ?input.error, "circuit stuck open");
    Ok(StuckOutput {
        version: Version,
        esm_state,
        notified: true,
    })
}

#[cfg(test)]
mod tests {
    use breaker_core::ports::{EsmState, FaultKind, PortError};
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeEsm, FakeEvents, FixedClock, config, state_json};

    async fn run(
        input: Value,
        esm: &FakeEsm,
        events: &FakeEvents,
    ) -> Result<StuckOutput, HandlerError> {
        stuck(input, &config(&[]), esm, events, &FixedClock::at(61_000)).await
    }

    #[tokio::test]
    async fn stuck_announces_the_mapping_state_and_the_error() {
        let (esm, events) = (
            FakeEsm::new(EsmState::Disabled, Some(4)),
            FakeEvents::default(),
        );
        let input = json!({ "state": state_json(1_000, 3, 2, Some(4)), "error": { "Error": "NonRetryable", "Cause": "AccessDenied" } });
        let out = run(input, &esm, &events).await.unwrap();
        assert_eq!(
            out,
            StuckOutput {
                version: Version,
                esm_state: "Disabled".into(),
                notified: true
            }
        );
        assert_eq!(events.detail_types(), vec![DetailType::StuckOpen]);
        let d = &events.events()[0].detail;
        assert_eq!(d["esmState"], "Disabled");
        assert_eq!(
            d["error"],
            json!({ "Error": "NonRetryable", "Cause": "AccessDenied" })
        );
        assert_eq!(
            (d["attempt"].clone(), d["openSeconds"].clone()),
            (json!(3), json!(60))
        );
    }

    #[tokio::test]
    async fn stuck_never_throws_for_a_bad_or_missing_state() {
        for input in [
            json!({ "state": null, "error": { "Error": "x", "Cause": "y" } }),
            json!({ "state": { "version": 7 } }),
            json!("garbage"),
        ] {
            let (esm, events) = (
                FakeEsm::new(EsmState::Disabled, None),
                FakeEvents::default(),
            );
            let out = run(input.clone(), &esm, &events).await.unwrap();
            assert!(out.notified, "{input}");
            let d = &events.events()[0].detail;
            assert_eq!(d["circuit"], "orders");
            assert_eq!(d["attempt"], Value::Null);
        }
    }

    #[tokio::test]
    async fn stuck_still_notifies_when_the_mapping_cannot_be_read() {
        let esm = FakeEsm::new(EsmState::Disabled, None).failing_get(PortError::new(
            "GetEventSourceMapping",
            FaultKind::NonRetryable,
            "denied",
        ));
        let events = FakeEvents::default();
        let out = run(json!({ "state": null }), &esm, &events).await.unwrap();
        assert_eq!(out.esm_state, "Unknown");
        assert_eq!(events.events().len(), 1);
    }

    #[tokio::test]
    async fn stuck_fails_only_when_the_event_cannot_be_put() {
        let esm = FakeEsm::new(EsmState::Disabled, None);
        let events = FakeEvents::failing(PortError::new(
            "PutEvents",
            FaultKind::Retryable,
            "throttled",
        ));
        let err = run(json!({ "state": null }), &esm, &events)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "Retryable");
    }
}
