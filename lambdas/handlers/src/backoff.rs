//! `backoff`: the wait before the next probe (exponential, full jitter, capped), or `stuck`
//! after `MAX_OPEN_SECONDS` (announcing `Circuit Stuck Open`), or `continue` when one more cycle
//! could take this execution past its history-event budget, or `keepalive` when queued messages
//! must be re-sent before their retention runs out (`breaker_core::keepalive`; announces
//! `Messages Kept Alive`, or `Messages At Risk` on a FIFO queue, which is not copied). Each answer
//! charges the state with the worst case of the path it sends the workflow on
//! (`breaker_core::history`); `wait` pays for the probe too.

use breaker_core::config::Config;
use breaker_core::contract::{BackoffAction, BackoffOutput, StateInput, Version, parse};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::history::{self, COSTS};
use breaker_core::keepalive;
use breaker_core::policy::{BackoffDecision, backoff_decision, with_keep_alive};
use breaker_core::ports::{Clock, Events, Queue};
use breaker_core::rejitter::cutoff_ms;
use serde_json::Value;
use tracing::{info, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::ports::Ports;

/// Handle `backoff` (see `CONTRACT.md`).
pub async fn backoff<P, R>(
    input: Value,
    app: &App<P>,
    rng: &mut R,
) -> Result<BackoffOutput, HandlerError>
where
    P: Ports,
    R: rand::Rng + Send + ?Sized,
{
    let (config, ports) = (&app.config, &app.ports);
    let (queue, events) = (ports.queue(), ports.events());
    let StateInput { mut state, .. } = parse(input)?;
    let now = ports.clock().now_ms();
    let decision = backoff_decision(&state, config, now, rng);
    let decision = keep_alive(decision, &mut state, config, queue, events, now).await?;
    let (action, wait_seconds) = match decision {
        BackoffDecision::Wait(seconds) => {
            // Charge first: a state from before the count is charged by its past turns.
            history::Budget::of(config).charge(&mut state, COSTS.backoff_wait);
            state.iteration += 1;
            info!(esm = %config.esm_uuid, attempt = state.attempt, iteration = state.iteration, history_events = state.history_events, wait_seconds = seconds, "backing off");
            (BackoffAction::Wait, seconds)
        }
        BackoffDecision::KeepAlive => {
            history::Budget::of(config).charge(&mut state, COSTS.backoff_keep_alive);
            state.iteration += 1;
            (BackoffAction::KeepAlive, 0)
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

/// Keep-alive on top of the backoff decision (`breaker_core::keepalive`): reads the queue's
/// retention (and depth, for the event) only when the decision is a wait. When a pass is due,
/// marks `refreshedAtMs` with the cutoff the pass will use at the latest (its plan, made after
/// this, copies everything sent before a later cutoff, so the schedule errs early) and announces
/// it. A FIFO queue is not copied (copies would go to the end of their message groups): the
/// step announces `Messages At Risk` once per interval and waits on.
async fn keep_alive<Q: Queue, V: Events>(
    decision: BackoffDecision,
    state: &mut breaker_core::contract::CircuitState,
    config: &Config,
    queue: &Q,
    events: &V,
    now: u64,
) -> Result<BackoffDecision, HandlerError> {
    if !matches!(decision, BackoffDecision::Wait(_)) {
        return Ok(decision);
    }
    let q = queue.info().await?;
    let Some(retention) = q.retention_seconds else {
        warn!(esm = %config.esm_uuid, "queue retention unknown; no keep-alive this turn");
        return Ok(decision);
    };
    if with_keep_alive(decision, state, Some(retention), now) != BackoffDecision::KeepAlive {
        return Ok(with_keep_alive(decision, state, Some(retention), now));
    }
    let previous = state.refreshed_at_ms;
    let queued = q.visible + q.in_flight + q.delayed;
    let interval_seconds = keepalive::interval_ms(retention) / 1000;
    if q.fifo {
        state.refreshed_at_ms = Some(now);
        let event = BreakerEvent::for_state(DetailType::AtRisk, config, state, now)
            .with("reason", "FIFO queue: a copy would go to the end of its message group, so the breaker does not keep messages alive; messages expire at the queue's retention while the circuit stays open")
            .with("retentionSeconds", retention)
            .with("queued", queued)
            .with("nextWarningAtMs", keepalive::due_at_ms(state.opened_at_ms, state.refreshed_at_ms, retention));
        events.put(&event).await?;
        warn!(esm = %config.esm_uuid, queued, retention_seconds = retention, "FIFO queue: messages at risk of expiring while open");
        return Ok(with_keep_alive(decision, state, Some(retention), now));
    }
    let cutoff = cutoff_ms(now);
    state.refreshed_at_ms = Some(cutoff);
    let event = BreakerEvent::for_state(DetailType::KeptAlive, config, state, now)
        .with("cutoffMs", cutoff)
        .with("previousRefreshAtMs", previous)
        .with("retentionSeconds", retention)
        .with("refreshIntervalSeconds", interval_seconds)
        .with("queued", queued)
        .with("visible", q.visible)
        .with("inFlight", q.in_flight)
        .with("delayed", q.delayed)
        .with(
            "nextPassDueAtMs",
            keepalive::due_at_ms(state.opened_at_ms, state.refreshed_at_ms, retention),
        );
    events.put(&event).await?;
    info!(esm = %config.esm_uuid, queued, cutoff_ms = cutoff, retention_seconds = retention, "keep-alive pass due: copying every message sent before the cutoff");
    Ok(BackoffDecision::KeepAlive)
}

#[cfg(test)]
mod tests {
    use breaker_core::ports::{FaultKind, PortError};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;

    use breaker_testkit::FakeQueue;

    use super::*;
    use crate::testing::{FakeEvents, Fakes, FixedClock, config, state_json};

    async fn run(
        input: Value,
        extra: &[(&str, &str)],
        now_ms: u64,
        events: &FakeEvents,
    ) -> Result<BackoffOutput, HandlerError> {
        // Retention far beyond every test's clock: no keep-alive unless a test asks for it.
        let queue = FakeQueue::builder()
            .retention_seconds(u64::MAX / 4_000)
            .build();
        run_on(&queue, input, extra, now_ms, events).await
    }

    async fn run_on(
        queue: &FakeQueue,
        input: Value,
        extra: &[(&str, &str)],
        now_ms: u64,
        events: &FakeEvents,
    ) -> Result<BackoffOutput, HandlerError> {
        let mut rng = StdRng::seed_from_u64(11);
        let ports = Fakes {
            queue: queue.clone(),
            events: events.clone(),
            clock: FixedClock::at(now_ms),
            ..Fakes::default()
        };
        backoff(input, &App::new(config(extra), ports), &mut rng).await
    }

    #[tokio::test]
    async fn keep_alive_pass_is_due_half_a_retention_after_the_open_and_announced() {
        let queue = FakeQueue::builder().retention_seconds(120).build();
        queue.push_body("a");
        queue.push_body("b");
        let events = FakeEvents::default();
        // 59 s after the open: wait, but at most until the pass is due (61 s after open - 1 s).
        let early = run_on(
            &queue,
            json!({ "state": state_json(1_000, 10, 2, None) }),
            &[],
            1_000 + 59_000,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(early.action, BackoffAction::Wait);
        assert_eq!(early.wait_seconds, 1);
        assert!(events.events().is_empty());
        let due = 1_000 + 60_000;
        let out = run_on(
            &queue,
            json!({ "state": state_json(1_000, 10, 2, None) }),
            &[],
            due,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(
            (out.action, out.wait_seconds),
            (BackoffAction::KeepAlive, 0)
        );
        assert_eq!(out.state.refreshed_at_ms, Some(due - 1_000));
        assert_eq!(out.state.iteration, 3, "a pass is a loop turn");
        assert_eq!(events.detail_types(), vec![DetailType::KeptAlive]);
        let d = &events.events()[0].detail;
        assert_eq!(
            (
                d["queued"].clone(),
                d["cutoffMs"].clone(),
                d["retentionSeconds"].clone(),
                d["nextPassDueAtMs"].clone()
            ),
            (
                json!(2),
                json!(due - 1_000),
                json!(120),
                json!(due - 1_000 + 60_000)
            )
        );
        // After the pass: the next one counts from its cutoff.
        let mut after = out.state.clone();
        after.iteration = 0;
        let next = run_on(&queue, json!({ "state": after }), &[], due + 5_000, &events)
            .await
            .unwrap();
        assert_eq!(next.action, BackoffAction::Wait);
        assert!(next.wait_seconds <= 55, "{}", next.wait_seconds);
    }

    #[tokio::test]
    async fn fifo_queue_is_not_copied_but_announced_at_risk_once_per_interval() {
        let queue = FakeQueue::builder()
            .fifo(true)
            .retention_seconds(120)
            .build();
        let events = FakeEvents::default();
        let out = run_on(
            &queue,
            json!({ "state": state_json(0, 10, 0, None) }),
            &[],
            60_000,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(out.action, BackoffAction::Wait);
        assert_eq!(out.state.refreshed_at_ms, Some(60_000));
        assert!((1..=60).contains(&out.wait_seconds));
        assert_eq!(events.detail_types(), vec![DetailType::AtRisk]);
        let again = run_on(&queue, json!({ "state": out.state }), &[], 70_000, &events)
            .await
            .unwrap();
        assert_eq!(again.action, BackoffAction::Wait);
        assert_eq!(events.events().len(), 1, "warned once per interval");
    }

    #[tokio::test]
    async fn backoff_returns_a_jittered_wait_within_the_capped_ceiling_and_counts_the_turn() {
        let events = FakeEvents::default();
        for attempt in [0u32, 1, 3, 10] {
            let out = run(
                json!({ "state": state_json(0, attempt, 2, None) }),
                &[],
                1_000,
                &events,
            )
            .await
            .unwrap();
            assert_eq!(out.action, BackoffAction::Wait);
            let ceiling = config(&[]).backoff.ceiling(attempt, 1);
            assert!(
                (1..=ceiling).contains(&out.wait_seconds),
                "attempt {attempt}: {}",
                out.wait_seconds
            );
            assert_eq!(out.state.iteration, 3);
            assert_eq!(out.state.attempt, attempt);
            assert_eq!(
                out.state.history_events,
                history::OPENED
                    + 2 * history::Budget::of(&config(&[])).cycle_reserve()
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
        assert!(out.wait_seconds <= config(&[]).backoff.long_max_seconds);
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
