//! `backoff`: the wait before the next probe (exponential, full jitter, capped), or `stuck`
//! after `MAX_OPEN_SECONDS` (announcing `Circuit Stuck Open`), or `continue` when one more cycle
//! could take this execution past its history-event budget. Each answer charges the state with
//! the worst case of the path it sends the workflow on (`breaker_core::history`); `wait` pays for
//! the probe too.

use breaker_core::config::Config;
use breaker_core::contract::{BackoffAction, BackoffOutput, StateInput, Version, parse};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::history::{self, COSTS};
use breaker_core::policy::{BackoffDecision, backoff_decision};
use breaker_core::ports::{Clock, Events};
use serde_json::Value;
use tracing::{info, warn};

use crate::error::HandlerError;

/// Handle `backoff` (see `CONTRACT.md`).
pub async fn backoff<V, C, R>(
    input: Value,
    config: &Config,
    events: &V,
    clock: &C,
    rng: &mut R,
) -> Result<BackoffOutput, HandlerError>
where
    V: Events,
    C: Clock,
    R: rand::Rng + Send + ?Sized,
{
    let StateInput { mut state } = parse(input)?;
    let now = clock.now_ms();
    let decision = backoff_decision(&state, config, now, rng);
    let (action, wait_seconds) = match decision {
        BackoffDecision::Wait(seconds) => {
            // Charge first: a state from before the count is charged by its past turns.
            history::Budget::of(config).charge(&mut state, COSTS.backoff_wait);
            state.iteration += 1;
            info!(esm = %config.esm_uuid, attempt = state.attempt, iteration = state.iteration, history_events = state.history_events, wait_seconds = seconds, "backing off");
            (BackoffAction::Wait, seconds)
        }
        BackoffDecision::Continue => {
            history::Budget::of(config).charge(&mut state, COSTS.backoff_continue);
            info!(esm = %config.esm_uuid, iteration = state.iteration, generation = state.generation, history_events = state.history_events, budget = config.history_event_budget, "history budget nearly spent; continuing as new execution");
            (BackoffAction::Continue, 0)
        }
        BackoffDecision::Stuck => {
            history::Budget::of(config).charge(&mut state, COSTS.backoff_stuck);
            let event = BreakerEvent::for_state(DetailType::StuckOpen, config, &state, now)
                .with("reason", "max open duration reached")
                .with("maxOpenSeconds", config.max_open_seconds)
                .with("esmState", "Disabled");
            events.put(&event).await?;
            warn!(esm = %config.esm_uuid, open_seconds = state.open_seconds(now), "circuit stuck open: max open duration reached");
            (BackoffAction::Stuck, 0)
        }
    };
    Ok(BackoffOutput {
        version: Version,
        action,
        wait_seconds,
        state,
    })
}

#[cfg(test)]
mod tests {
    use breaker_core::ports::{FaultKind, PortError};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeEvents, FixedClock, config, state_json};

    async fn run(
        input: Value,
        extra: &[(&str, &str)],
        now_ms: u64,
        events: &FakeEvents,
    ) -> Result<BackoffOutput, HandlerError> {
        let mut rng = StdRng::seed_from_u64(11);
        backoff(
            input,
            &config(extra),
            events,
            &FixedClock::at(now_ms),
            &mut rng,
        )
        .await
    }

    #[tokio::test]
    async fn backoff_returns_a_jittered_wait_within_the_capped_ceiling_and_counts_the_turn() {
        let events = FakeEvents::default();
        for attempt in [0u32, 1, 3, 10] {
            let out = run(
                json!({ "state": state_json(0, attempt, 7, None) }),
                &[],
                1_000,
                &events,
            )
            .await
            .unwrap();
            assert_eq!(out.action, BackoffAction::Wait);
            let ceiling = [30, 60, 120, 240, 480, 900][attempt.min(5) as usize];
            assert!(
                (1..=ceiling).contains(&out.wait_seconds),
                "attempt {attempt}: {}",
                out.wait_seconds
            );
            assert_eq!(out.state.iteration, 8);
            assert_eq!(out.state.attempt, attempt);
            assert_eq!(
                out.state.history_events,
                history::OPENED
                    + 7 * history::Budget::of(&config(&[])).cycle_reserve()
                    + COSTS.backoff_wait,
                "a state from before the count is charged a full cycle per past turn"
            );
        }
        assert!(events.events().is_empty());
    }

    #[tokio::test]
    async fn backoff_keeps_waiting_forever_by_default() {
        let fourteen_days_ms = 14 * 86_400_000;
        let out = run(
            json!({ "state": state_json(0, 5_000, 0, None) }),
            &[],
            fourteen_days_ms,
            &FakeEvents::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.action, BackoffAction::Wait);
        assert!(out.wait_seconds <= 900);
    }

    #[tokio::test]
    async fn backoff_gets_stuck_after_max_open_and_announces_it() {
        let events = FakeEvents::default();
        let out = run(
            json!({ "state": state_json(1_000, 12, 3, Some(20)) }),
            &[("MAX_OPEN_SECONDS", "3600")],
            3_601_000,
            &events,
        )
        .await
        .unwrap();
        assert_eq!((out.action, out.wait_seconds), (BackoffAction::Stuck, 0));
        assert_eq!(events.detail_types(), vec![DetailType::StuckOpen]);
        let d = &events.events()[0].detail;
        assert_eq!(
            (
                d["attempt"].clone(),
                d["openSeconds"].clone(),
                d["maxOpenSeconds"].clone()
            ),
            (json!(12), json!(3600), json!(3600))
        );
        assert_eq!(d["esmUuid"], "esm-1");
    }

    #[tokio::test]
    async fn backoff_continues_as_new_before_the_history_budget_could_be_passed() {
        let events = FakeEvents::default();
        let reserve = history::Budget::of(&config(&[])).cycle_reserve();
        let mut state = state_json(0, 600, 500, None);
        state["historyEvents"] = json!(10_000 - reserve);
        let out = run(json!({ "state": state.clone() }), &[], 10_000, &events)
            .await
            .unwrap();
        assert_eq!(out.action, BackoffAction::Wait, "one more cycle still fits");
        assert_eq!(
            out.state.history_events,
            10_000 - reserve + COSTS.backoff_wait
        );

        state["historyEvents"] = json!(10_000 - reserve + 1);
        let out = run(json!({ "state": state }), &[], 10_000, &events)
            .await
            .unwrap();
        assert_eq!((out.action, out.wait_seconds), (BackoffAction::Continue, 0));
        assert_eq!(
            (out.state.iteration, out.state.history_events),
            (500, 10_000 - reserve + 1 + COSTS.backoff_continue),
            "the next execution's open resets both"
        );
        assert!(out.state.history_events <= 10_000);
        assert!(events.events().is_empty());
    }

    #[tokio::test]
    async fn stuck_event_failure_is_an_error() {
        let events = FakeEvents::failing(PortError::new(
            "PutEvents",
            FaultKind::Retryable,
            "throttled",
        ));
        let err = run(
            json!({ "state": state_json(0, 1, 1, None) }),
            &[("MAX_OPEN_SECONDS", "1")],
            10_000,
            &events,
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "Retryable");
    }

    #[tokio::test]
    async fn malformed_backoff_input_is_refused_naming_the_field() {
        let events = FakeEvents::default();
        let mut bad_version = state_json(0, 1, 1, None);
        bad_version["version"] = json!(2);
        for (input, field) in [
            (json!({}), "state"),
            (json!({ "state": bad_version }), "state.version"),
            (
                json!({ "state": state_json(0, 1, 1, None), "waitSeconds": 3 }),
                "waitSeconds",
            ),
            (json!({ "state": { "version": 1 } }), "state.openedAtMs"),
        ] {
            match run(
                input.clone(),
                &[("MAX_OPEN_SECONDS", "1")],
                u64::MAX / 2,
                &events,
            )
            .await
            {
                Err(HandlerError::Input(e)) => assert_eq!(e.field, field, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(events.events().is_empty());
    }
}
