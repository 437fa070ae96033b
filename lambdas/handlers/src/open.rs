//! `open`: single flight, then disable the consumer's event-source mapping (remembering its
//! scaling), wait for `Disabled`, and announce `Circuit Opened`. A continue-as-new execution
//! (`{"resume": state}`) only re-checks single flight and that the mapping is still disabled. A
//! manual close (`{"trigger": "manual-close", "resume": state}`, started by `breaker close`)
//! re-checks single flight only and answers `close`, so the state machine skips backoff and probe.

use breaker_core::config::Config;
use breaker_core::contract::{
    CircuitState, InputError, OpenAction, OpenInput, OpenOutput, OpenRequest, SavedScaling,
    Trigger, Version, parse,
};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::policy::{owns_recovery, state_machine_arn};
use breaker_core::ports::{Clock, EventSourceMappings, Events, Executions};
use serde_json::Value;
use tracing::{info, warn};

use crate::error::HandlerError;
use crate::esm::{EsmPolicy, disable_and_wait};

/// Handle `open` (see `CONTRACT.md`).
pub async fn open<E, X, V, C>(
    input: Value,
    config: &Config,
    esm: &E,
    executions: &X,
    events: &V,
    clock: &C,
    policy: &EsmPolicy,
) -> Result<OpenOutput, HandlerError>
where
    E: EventSourceMappings,
    X: Executions,
    V: Events,
    C: Clock,
{
    let input: OpenInput = parse(input)?;
    let request = input.request()?;
    let machine = state_machine_arn(&input.execution_arn).ok_or_else(|| {
        InputError::new(
            "executionArn",
            "expected a Step Functions execution ARN (arn:…:states:…:execution:…)",
        )
    })?;

    let ignore = match &request {
        OpenRequest::Resume {
            previous_execution_arn,
            ..
        }
        | OpenRequest::ManualClose {
            previous_execution_arn,
            ..
        } => previous_execution_arn.as_deref(),
        _ => None,
    };
    let running = executions.list_running(&machine).await?;
    if !owns_recovery(&running, &input.execution_arn, ignore, clock.now_ms()) {
        info!(execution = %input.execution_arn, running = running.len(), "another recovery owns this circuit; ending");
        return Ok(OpenOutput {
            version: Version,
            action: OpenAction::Duplicate,
            state: None,
        });
    }

    let (trigger, alarm_name) = match request {
        OpenRequest::Resume {
            mut state,
            previous_execution_arn,
        } => {
            let (_, after) = disable_and_wait(esm, &config.esm_uuid, policy).await?;
            state.iteration = 0;
            state.generation += 1;
            state.history_events = breaker_core::history::OPENED;
            info!(
                esm = %config.esm_uuid, generation = state.generation, attempt = state.attempt,
                previous = previous_execution_arn.as_deref().unwrap_or("-"), esm_state = after.state.as_str(),
                "continued as new execution"
            );
            return Ok(OpenOutput {
                version: Version,
                action: OpenAction::Proceed,
                state: Some(state),
            });
        }
        OpenRequest::ManualClose {
            mut state,
            previous_execution_arn,
        } => {
            // The operator asserts the downstream is healthy: no disable, no `Circuit Opened`;
            // the ramp re-enables the mapping gradually and close restores the saved scaling.
            state.iteration = 0;
            state.generation += 1;
            state.history_events = breaker_core::history::OPENED;
            info!(
                esm = %config.esm_uuid, generation = state.generation, attempt = state.attempt,
                previous = previous_execution_arn.as_deref().unwrap_or("-"),
                "manual close: skipping backoff and probe"
            );
            return Ok(OpenOutput {
                version: Version,
                action: OpenAction::Close,
                state: Some(state),
            });
        }
        OpenRequest::Alarm { alarm_name } => {
            if alarm_name != config.alarm_name {
                warn!(alarm = %alarm_name, configured = %config.alarm_name, "triggered by an alarm other than ALARM_NAME");
            }
            (Trigger::Alarm, Some(alarm_name))
        }
        OpenRequest::Manual => (Trigger::Manual, None),
    };

    let (before, after) = disable_and_wait(esm, &config.esm_uuid, policy).await?;
    let now = clock.now_ms();
    let saved = SavedScaling {
        maximum_concurrency: before.maximum_concurrency,
    };
    let state = CircuitState::opened(now, saved, trigger);
    let event = BreakerEvent::for_state(DetailType::Opened, config, &state, now)
        .with("reason", "trigger")
        .with("alarmName", alarm_name)
        .with("executionArn", &input.execution_arn)
        .with("previousEsmState", before.state.as_str())
        .with("esmState", after.state.as_str())
        .with("savedMaximumConcurrency", saved.maximum_concurrency);
    events.put(&event).await?;
    info!(esm = %config.esm_uuid, saved = ?saved.maximum_concurrency, trigger = ?state.trigger, "circuit opened");
    Ok(OpenOutput {
        version: Version,
        action: OpenAction::Proceed,
        state: Some(state),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use breaker_core::ports::EsmState;
    use serde_json::json;

    use super::*;
    use crate::testing::{
        EsmCall, FakeEsm, FakeEvents, FakeExecutions, FixedClock, config, state_json,
    };

    const MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:Breaker";
    const ME: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-b";
    const OLDER: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-a";

    fn alarm_input() -> Value {
        json!({ "executionArn": ME, "input": {
            "version": "0", "id": "e-1", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "detail": { "alarmName": "orders-errors", "state": { "value": "ALARM" }, "previousState": { "value": "OK" } }
        }})
    }

    fn policy() -> EsmPolicy {
        EsmPolicy {
            in_use_attempts: 4,
            in_use_base: Duration::from_millis(100),
            in_use_cap: Duration::from_secs(1),
            settle_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
        }
    }

    struct World {
        esm: FakeEsm,
        executions: FakeExecutions,
        events: FakeEvents,
        clock: FixedClock,
    }

    impl World {
        fn new(esm: FakeEsm, running: &[(&str, u64)]) -> Self {
            Self {
                esm,
                executions: FakeExecutions::running(running),
                events: FakeEvents::default(),
                clock: FixedClock::at(5_000_000),
            }
        }

        async fn open(&self, input: Value) -> Result<OpenOutput, HandlerError> {
            open(
                input,
                &config(&[]),
                &self.esm,
                &self.executions,
                &self.events,
                &self.clock,
                &policy(),
            )
            .await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_disables_the_mapping_remembers_its_scaling_and_announces_it() {
        let w = World::new(FakeEsm::new(EsmState::Enabled, Some(50)), &[(ME, 1_000)]);
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        let state = out.state.unwrap();
        assert_eq!(state.saved_scaling.maximum_concurrency, Some(50));
        assert_eq!(
            (
                state.opened_at_ms,
                state.attempt,
                state.iteration,
                state.generation
            ),
            (5_000_000, 0, 0, 0)
        );
        assert_eq!(state.trigger, Trigger::Alarm);
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(w.esm.snapshot().state, EsmState::Disabled);
        assert_eq!(w.executions.listed(), vec![MACHINE.to_owned()]);
        let events = w.events.events();
        assert_eq!(w.events.detail_types(), vec![DetailType::Opened]);
        let d = &events[0].detail;
        assert_eq!(d["circuit"], "orders");
        assert_eq!(d["esmUuid"], "esm-1");
        assert_eq!(d["queueArn"], "arn:aws:sqs:eu-west-1:123456789012:orders");
        assert_eq!(d["attempt"], 0);
        assert_eq!(d["openedAtMs"], 5_000_000);
        assert_eq!(d["openSeconds"], 0);
        assert_eq!(d["alarmName"], "orders-errors");
        assert_eq!(d["savedMaximumConcurrency"], 50);
    }

    #[tokio::test(start_paused = true)]
    async fn open_remembers_no_limit_as_null() {
        let w = World::new(FakeEsm::new(EsmState::Enabled, None), &[]);
        let out = w
            .open(json!({ "executionArn": ME, "input": { "trigger": "manual" } }))
            .await
            .unwrap();
        let state = out.state.unwrap();
        assert_eq!(state.saved_scaling.maximum_concurrency, None);
        assert_eq!(state.trigger, Trigger::Manual);
    }

    #[tokio::test(start_paused = true)]
    async fn open_is_idempotent_when_the_mapping_is_already_disabled() {
        let w = World::new(FakeEsm::new(EsmState::Disabled, Some(8)), &[(ME, 1)]);
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(
            out.state.unwrap().saved_scaling.maximum_concurrency,
            Some(8)
        );
        assert!(
            w.esm.updates().is_empty(),
            "no update on a disabled mapping: {:?}",
            w.esm.calls()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_waits_until_the_mapping_reports_disabled() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(5)).disabling_for(4),
            &[(ME, 1)],
        );
        let started = tokio::time::Instant::now();
        w.open(alarm_input()).await.unwrap();
        assert_eq!(w.esm.snapshot().state, EsmState::Disabled);
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(
            w.esm.calls().iter().filter(|c| **c == EsmCall::Get).count(),
            1 + 4
        );
        assert_eq!(started.elapsed(), Duration::from_millis(4 * 500));
    }

    #[tokio::test(start_paused = true)]
    async fn open_gives_up_retryably_when_the_mapping_never_disables() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(5)).disabling_for(usize::MAX),
            &[(ME, 1)],
        );
        let started = tokio::time::Instant::now();
        let err = w.open(alarm_input()).await.unwrap_err();
        assert!(
            matches!(
                err,
                HandlerError::NotSettled {
                    target: "Disabled",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.error_type(), "Retryable");
        assert!(
            started.elapsed() <= Duration::from_secs(11),
            "bounded wait: {:?}",
            started.elapsed()
        );
        assert!(
            w.events.events().is_empty(),
            "no Opened event before Disabled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_retries_resource_in_use_with_growing_pauses() {
        let w = World::new(
            FakeEsm::new(EsmState::Updating, Some(5)).in_use_for(3),
            &[(ME, 1)],
        );
        let started = tokio::time::Instant::now();
        w.open(alarm_input()).await.unwrap();
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable; 4]);
        assert_eq!(started.elapsed(), Duration::from_millis(100 + 200 + 400));
        assert_eq!(w.esm.snapshot().state, EsmState::Disabled);
    }

    #[tokio::test(start_paused = true)]
    async fn open_reports_resource_in_use_as_retryable_after_its_own_retries() {
        let w = World::new(
            FakeEsm::new(EsmState::Updating, Some(5)).in_use_for(100),
            &[(ME, 1)],
        );
        let err = w.open(alarm_input()).await.unwrap_err();
        assert_eq!(err.error_type(), "Retryable");
        assert_eq!(w.esm.updates().len(), 4);
        assert!(w.events.events().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn open_ends_as_duplicate_when_an_older_recovery_runs_and_touches_nothing() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(5)),
            &[(ME, 2_000), (OLDER, 1_000)],
        );
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(
            out,
            OpenOutput {
                version: Version,
                action: OpenAction::Duplicate,
                state: None
            }
        );
        assert!(w.esm.calls().is_empty());
        assert!(w.events.events().is_empty());
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({ "version": 1, "action": "duplicate" })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_breaks_start_time_ties_by_arn() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(5)),
            &[(ME, 1_000), (OLDER, 1_000)],
        );
        assert_eq!(
            w.open(alarm_input()).await.unwrap().action,
            OpenAction::Duplicate
        );
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(5)),
            &[
                (ME, 1_000),
                (
                    "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-c",
                    1_000,
                ),
            ],
        );
        assert_eq!(
            w.open(alarm_input()).await.unwrap().action,
            OpenAction::Proceed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn resume_ignores_the_previous_execution_and_starts_a_new_generation() {
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, Some(9)),
            &[(OLDER, 1_000), (ME, 2_000)],
        );
        let mut resume_state = state_json(100, 42, 500, Some(50));
        resume_state["generation"] = json!(2);
        let input = json!({ "executionArn": ME, "input": { "resume": resume_state, "previousExecutionArn": OLDER } });
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        let state = out.state.unwrap();
        assert_eq!(
            (state.attempt, state.iteration, state.generation),
            (42, 0, 3)
        );
        assert_eq!(
            state.saved_scaling.maximum_concurrency,
            Some(50),
            "the original scaling survives"
        );
        assert_eq!(state.opened_at_ms, 100);
        assert!(w.esm.updates().is_empty());
        assert!(
            w.events.events().is_empty(),
            "a continuation is not a new opening"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn resume_is_still_single_flight_against_other_executions() {
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, None),
            &[
                (
                    "arn:aws:states:eu-west-1:123456789012:execution:Breaker:x",
                    10,
                ),
                (OLDER, 1_000),
                (ME, 2_000),
            ],
        );
        let input = json!({ "executionArn": ME, "input": { "resume": state_json(1, 1, 1, None), "previousExecutionArn": OLDER } });
        assert_eq!(w.open(input).await.unwrap().action, OpenAction::Duplicate);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_close_answers_close_with_the_resumed_state_and_touches_nothing() {
        let w = World::new(FakeEsm::new(EsmState::Disabled, Some(9)), &[(ME, 2_000)]);
        let mut resume_state = state_json(100, 7, 3, Some(50));
        resume_state["generation"] = json!(1);
        let input = json!({ "executionArn": ME, "input": {
            "trigger": "manual-close", "resume": resume_state, "previousExecutionArn": OLDER
        }});
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Close);
        let state = out.state.unwrap();
        assert_eq!(
            (
                state.attempt,
                state.iteration,
                state.generation,
                state.opened_at_ms
            ),
            (7, 0, 2, 100)
        );
        assert_eq!(state.saved_scaling.maximum_concurrency, Some(50));
        assert!(w.esm.calls().is_empty(), "no disable: {:?}", w.esm.calls());
        assert!(w.events.events().is_empty(), "no Circuit Opened");
        assert_eq!(w.executions.listed(), vec![MACHINE.to_owned()]);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_close_of_a_stuck_circuit_needs_no_previous_execution() {
        let w = World::new(FakeEsm::new(EsmState::Disabled, None), &[(ME, 2_000)]);
        let input = json!({ "executionArn": ME, "input": {
            "trigger": "manual-close", "resume": state_json(9_000, 0, 0, None)
        }});
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Close);
        assert_eq!(out.state.unwrap().saved_scaling.maximum_concurrency, None);
        assert!(w.esm.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn manual_close_is_single_flight_ignoring_only_the_stopped_recovery() {
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, Some(9)),
            &[
                (
                    "arn:aws:states:eu-west-1:123456789012:execution:Breaker:manual-close-1",
                    10,
                ),
                (OLDER, 1_000),
                (ME, 2_000),
            ],
        );
        let input = json!({ "executionArn": ME, "input": {
            "trigger": "manual-close", "resume": state_json(1, 1, 1, None), "previousExecutionArn": OLDER
        }});
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Duplicate);
        assert!(w.esm.calls().is_empty() && w.events.events().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn malformed_open_input_fails_naming_the_field_without_any_call() {
        for (input, field) in [
            (json!({ "input": { "trigger": "manual" } }), "executionArn"),
            (json!({ "executionArn": ME }), "input"),
            (
                json!({ "executionArn": "not-an-arn", "input": { "trigger": "manual" } }),
                "executionArn",
            ),
            (
                json!({ "executionArn": ME, "input": { "trigger": "cron" } }),
                "input.trigger",
            ),
            (
                json!({ "executionArn": ME, "input": { "resume": { "version": 2 } } }),
                "input.resume.version",
            ),
            (
                json!({ "executionArn": ME, "input": { "trigger": "manual" }, "extra": 1 }),
                "extra",
            ),
            (
                json!({ "executionArn": ME, "input": { "trigger": "manual", "resume": state_json(1, 1, 1, None) } }),
                "input.trigger",
            ),
            (
                json!({ "executionArn": ME, "input": { "trigger": "manual-close" } }),
                "input.resume",
            ),
            (json!([1, 2]), "."),
        ] {
            let w = World::new(FakeEsm::new(EsmState::Enabled, Some(5)), &[(ME, 1)]);
            match w.open(input.clone()).await {
                Err(HandlerError::Input(e)) => assert_eq!(e.field, field, "{input}"),
                other => panic!("{input}: expected an input error, got {other:?}"),
            }
            assert!(
                w.esm.calls().is_empty()
                    && w.executions.listed().is_empty()
                    && w.events.events().is_empty()
            );
        }
    }
}
