//! `stuck`: the catch-all. Reads the mapping's state, marks the circuit record `stuck` (keeping
//! its owner and original configuration, so the next trigger takes over from this ended execution
//! and still restores the original), and announces `Circuit Stuck Open` with the caught error. Never fails on a bad `state` (it is the last resort); fails only if the
//! event cannot be put.

use breaker_core::contract::{StuckInput, StuckOutput, Version};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::ports::{Clock, EventSourceMappings, Events};
use serde_json::Value;
use tracing::{error, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::ports::Ports;
use crate::record::update_owned;

/// Handle `stuck` (see `CONTRACT.md`).
pub async fn stuck<P: Ports>(input: Value, app: &App<P>) -> Result<StuckOutput, HandlerError> {
    let (config, ports) = (&app.config, &app.ports);
    let (esm, records, events, clock) =
        (ports.esm(), ports.records(), ports.events(), ports.clock());
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
    let reason = input
        .error
        .as_ref()
        .map(|e| format!("{}: {}", e.error, e.cause))
        .unwrap_or_else(|| "recovery failed".to_owned());
    if let Some(me) = &input.execution_arn {
        // Best effort: the event below is what must get out.
        if let Err(e) = update_owned(records, me, |r| {
            breaker_core::record::stuck(r, &reason, now)
        })
        .await
        {
            warn!(error = %e, "could not mark the circuit record stuck");
        }
    }
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
    use breaker_core::record::{CircuitRecord, Phase};

    use crate::testing::{FakeEsm, FakeEvents, FakeRecords, Fakes, FixedClock, config, state_json};

    async fn run(
        input: Value,
        esm: &FakeEsm,
        events: &FakeEvents,
    ) -> Result<StuckOutput, HandlerError> {
        run_with(input, esm, &FakeRecords::default(), events).await
    }

    async fn run_with(
        input: Value,
        esm: &FakeEsm,
        records: &FakeRecords,
        events: &FakeEvents,
    ) -> Result<StuckOutput, HandlerError> {
        let ports = Fakes {
            esm: esm.clone(),
            records: records.clone(),
            events: events.clone(),
            clock: FixedClock::at(61_000),
            ..Fakes::default()
        };
        stuck(input, &App::new(config(&[]), ports)).await
    }

    #[tokio::test]
    async fn stuck_marks_the_record_and_keeps_owner_and_original_for_the_next_trigger() {
        const ME: &str = "arn:aws:states:eu-west-1:1:execution:B:run";
        let record = CircuitRecord {
            revision: 1,
            owner: Some(ME.into()),
            phase: Phase::HalfOpen,
            original: Some(breaker_core::record::OriginalConfig {
                enabled: true,
                maximum_concurrency: Some(9),
                provisioned_poller_config: None,
            }),
            ..CircuitRecord::new_closed(1)
        };
        let (esm, events, records) = (
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeEvents::default(),
            FakeRecords::holding(record),
        );
        let input = json!({ "state": state_json(1_000, 3, 2, Some(9)), "executionArn": ME, "error": { "Error": "Retryable", "Cause": "throttled" } });
        run_with(input, &esm, &records, &events).await.unwrap();
        let r = records.stored().unwrap();
        assert_eq!((r.phase, r.owner.as_deref()), (Phase::Stuck, Some(ME)));
        assert_eq!(r.stuck_reason.as_deref(), Some("Retryable: throttled"));
        assert_eq!(r.original.unwrap().maximum_concurrency, Some(9));
        assert_eq!(events.events().len(), 1);
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
