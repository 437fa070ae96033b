//! `close`: restore the original scaling exactly (no limit stays no limit), make sure the
//! mapping is enabled, reset the trigger alarm to OK so a renewed failure fires again, and
//! announce `Circuit Closed`.

use breaker_core::config::Config;
use breaker_core::contract::{CloseOutput, StateInput, Version, parse};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::ports::{Alarms, Clock, EventSourceMappings, Events};
use serde_json::Value;
use tracing::info;

use crate::error::HandlerError;
use crate::esm::{EsmPolicy, retry_in_use};

/// Handle `close` (see `CONTRACT.md`).
pub async fn close<E, A, V, C>(
    input: Value,
    config: &Config,
    esm: &E,
    alarms: &A,
    events: &V,
    clock: &C,
    policy: &EsmPolicy,
) -> Result<CloseOutput, HandlerError>
where
    E: EventSourceMappings,
    A: Alarms,
    V: Events,
    C: Clock,
{
    let StateInput { state } = parse(input)?;
    let restore = state.saved_scaling.maximum_concurrency;
    let after = retry_in_use(policy, "restore", || esm.enable(&config.esm_uuid, restore)).await?;
    alarms
        .set_ok(&format!(
            "sqs-circuit-breaker {}: circuit closed; re-arming the alarm",
            config.circuit_name
        ))
        .await?;
    let now = clock.now_ms();
    let open_seconds = state.open_seconds(now);
    let event = BreakerEvent::for_state(DetailType::Closed, config, &state, now)
        .with("restoredMaximumConcurrency", restore)
        .with("esmState", after.state.as_str())
        .with("alarmReset", true);
    events.put(&event).await?;
    info!(esm = %config.esm_uuid, restored = ?restore, open_seconds, attempts = state.attempt, "circuit closed");
    Ok(CloseOutput {
        version: Version,
        closed: true,
        open_seconds,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use breaker_core::ports::EsmState;
    use serde_json::json;

    use super::*;
    use crate::testing::{
        EsmCall, FakeAlarms, FakeEsm, FakeEvents, FixedClock, config, state_json,
    };

    fn policy() -> EsmPolicy {
        EsmPolicy {
            in_use_base: Duration::from_millis(10),
            ..EsmPolicy::default()
        }
    }

    async fn run(
        input: Value,
        esm: &FakeEsm,
        alarms: &FakeAlarms,
        events: &FakeEvents,
    ) -> Result<CloseOutput, HandlerError> {
        close(
            input,
            &config(&[]),
            esm,
            alarms,
            events,
            &FixedClock::at(1_000_000 + 754_000),
            &policy(),
        )
        .await
    }

    #[tokio::test]
    async fn close_restores_the_original_limit_resets_the_alarm_and_announces_it() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(17)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let out = run(
            json!({ "state": state_json(1_000_000, 4, 2, Some(50)) }),
            &esm,
            &alarms,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            CloseOutput {
                version: Version,
                closed: true,
                open_seconds: 754
            }
        );
        assert_eq!(esm.updates(), vec![EsmCall::Enable(Some(50))]);
        assert_eq!(
            (esm.snapshot().state, esm.snapshot().maximum_concurrency),
            (EsmState::Enabled, Some(50))
        );
        assert_eq!(alarms.resets().len(), 1);
        assert_eq!(events.detail_types(), vec![DetailType::Closed]);
        let d = &events.events()[0].detail;
        assert_eq!(
            (
                d["openSeconds"].clone(),
                d["attempt"].clone(),
                d["restoredMaximumConcurrency"].clone()
            ),
            (json!(754), json!(4), json!(50))
        );
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({ "version": 1, "closed": true, "openSeconds": 754 })
        );
    }

    #[tokio::test]
    async fn close_restores_no_limit_exactly() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(1000)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        run(
            json!({ "state": state_json(1_000_000, 1, 1, None) }),
            &esm,
            &alarms,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(esm.updates(), vec![EsmCall::Enable(None)]);
        assert_eq!(esm.snapshot().maximum_concurrency, None);
        assert_eq!(
            events.events()[0].detail["restoredMaximumConcurrency"],
            Value::Null
        );
    }

    #[tokio::test]
    async fn close_enables_a_mapping_left_disabled_and_retries_resource_in_use() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Disabled, Some(2)).in_use_for(2),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        run(
            json!({ "state": state_json(1_000_000, 1, 1, Some(3)) }),
            &esm,
            &alarms,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(esm.updates(), vec![EsmCall::Enable(Some(3)); 3]);
        assert_eq!(esm.snapshot().state, EsmState::Enabled);
    }

    #[tokio::test]
    async fn malformed_close_input_changes_nothing() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let mut bad = state_json(1, 1, 1, Some(3));
        bad["savedScaling"] = json!({ "maximumConcurrency": "lots" });
        match run(json!({ "state": bad }), &esm, &alarms, &events).await {
            Err(HandlerError::Input(e)) => {
                assert_eq!(e.field, "state.savedScaling.maximumConcurrency")
            }
            other => panic!("{other:?}"),
        }
        assert!(esm.calls().is_empty() && alarms.resets().is_empty() && events.events().is_empty());
    }
}
