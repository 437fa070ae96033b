//! `open`: single flight through the durable circuit record, then disable the consumer's
//! event-source mapping and announce `Circuit Opened`. The mapping's configuration before the
//! outage is written to the record *before* the mapping is touched, and an outage that an earlier
//! recovery left unfinished keeps the configuration that recovery found (never a ramp level). A
//! continue-as-new execution (`{"resume": state}`) takes the record over from the execution that
//! started it and only makes sure the mapping is still disabled. A manual close
//! (`{"trigger": "manual-close", "resume": state}`, started by `breaker close`) takes it over from
//! the stopped recovery (or from nobody) and answers `close`, so the state machine skips backoff
//! and probe. Whoever finds the circuit owned by a running execution ends as `duplicate`, named in
//! the record; a trip that arrives while the owner is half-open is left pending for it.

use breaker_core::contract::{
    CircuitState, InputError, OpenAction, OpenInput, OpenOutput, OpenRequest, Trigger, Version,
    parse,
};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::mapping::verify_mapping;
use breaker_core::policy::state_machine_arn;
use breaker_core::ports::{Clock, EsmState, EventSourceMappings, Events};
use breaker_core::record::{Claim, OriginalConfig, opened};
use serde_json::Value;
use tracing::{info, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::esm::disable_and_wait;
use crate::ports::Ports;
use crate::record::{Claimed, claim, update_owned};

/// Handle `open` (see `CONTRACT.md`).
pub async fn open<P: Ports>(input: Value, app: &App<P>) -> Result<OpenOutput, HandlerError> {
    let (config, policy) = (&app.config, &app.esm_policy);
    let ports = &app.ports;
    let (esm, executions, records) = (ports.esm(), ports.executions(), ports.records());
    let (events, clock) = (ports.events(), ports.clock());
    let input: OpenInput = parse(input)?;
    let request = input.request()?;
    state_machine_arn(&input.execution_arn).ok_or_else(|| {
        InputError::new(
            "executionArn",
            "expected a Step Functions execution ARN (arn:…:states:…:execution:…)",
        )
    })?;
    let me = input.execution_arn.as_str();

    // A trip acts on the mapping: make sure it is the one this breaker was built for before
    // anything is claimed or touched (a wrong ESM_UUID must not disable someone else's consumer).
    if matches!(request, OpenRequest::Alarm { .. } | OpenRequest::Manual) {
        let mapping = esm.get(&config.esm_uuid).await?;
        verify_mapping(&mapping, config).map_err(Box::new)?;
    }

    let wanted = match &request {
        OpenRequest::Alarm { changed_at_ms, .. } => Claim::Trip {
            trip_at_ms: changed_at_ms.unwrap_or_else(|| clock.now_ms()),
        },
        OpenRequest::Manual => Claim::Trip {
            trip_at_ms: clock.now_ms(),
        },
        OpenRequest::Resume {
            previous_execution_arn,
            ..
        } => Claim::Continue {
            previous: previous_execution_arn.as_deref(),
        },
        OpenRequest::ManualClose {
            previous_execution_arn,
            ..
        } => Claim::ManualClose {
            previous: previous_execution_arn.as_deref(),
        },
    };
    let record = match claim(records, executions, clock, me, &wanted).await? {
        Claimed::Owner(record) => record,
        Claimed::Duplicate { owner } => {
            info!(execution = %me, owner = %owner, "another recovery owns this circuit; ending");
            return Ok(duplicate());
        }
        Claimed::Stale => {
            info!(execution = %me, "this continuation's recovery no longer owns the circuit; ending");
            return Ok(duplicate());
        }
    };

    let (trigger, alarm_name) = match request {
        OpenRequest::Resume {
            mut state,
            previous_execution_arn,
        } => {
            let (_, after) = disable_and_wait(esm, &config.esm_uuid, policy).await?;
            state.iteration = 0;
            state.generation += 1;
            if let Some(original) = record.original {
                state.saved_scaling = original.scaling();
            }
            state.ramp = None;
            state.history_events = breaker_core::history::OPENED;
            info!(
                esm = %config.esm_uuid, generation = state.generation, attempt = state.attempt,
                previous = previous_execution_arn.as_deref().unwrap_or("-"), esm_state = after.state.as_str(),
                "continued as new execution"
            );
            return Ok(proceed(OpenAction::Proceed, state));
        }
        OpenRequest::ManualClose {
            mut state,
            previous_execution_arn,
        } => {
            // The operator asserts the downstream is healthy: no disable, no `Circuit Opened`;
            // the ramp re-enables the mapping gradually and close restores the original.
            state.iteration = 0;
            state.generation += 1;
            if let Some(original) = record.original {
                state.saved_scaling = original.scaling();
            }
            state.history_events = breaker_core::history::OPENED;
            // No probe timed the consumer for this close: re-jitter uses the configured window.
            state.healthy_probe = None;
            info!(
                esm = %config.esm_uuid, generation = state.generation, attempt = state.attempt,
                previous = previous_execution_arn.as_deref().unwrap_or("-"),
                "manual close: skipping backoff and probe"
            );
            return Ok(proceed(OpenAction::Close, state));
        }
        OpenRequest::Alarm { alarm_name, .. } => {
            if alarm_name != config.alarm_name {
                warn!(alarm = %alarm_name, configured = %config.alarm_name, "triggered by an alarm other than ALARM_NAME");
            }
            (Trigger::Alarm, Some(alarm_name))
        }
        OpenRequest::Manual => (Trigger::Manual, None),
    };

    // Record the mapping as found before touching it, read after the claim: the claim may wait
    // long (an owner judged ended, a slow `DescribeExecution`) while that owner's ramp or close
    // changed the mapping; a read from before it could record a ramp level as the original. An
    // unfinished outage keeps its original.
    let before = esm.get(&config.esm_uuid).await?;
    let found = OriginalConfig {
        enabled: !matches!(before.state, EsmState::Disabled | EsmState::Disabling),
        maximum_concurrency: before.maximum_concurrency,
        provisioned_poller_config: before.provisioned_poller_config,
    };
    let interrupted = record.outage_original().is_some();
    let now = clock.now_ms();
    let record = update_owned(records, me, |current| opened(current, found, now).0).await?;
    let original = record.original.unwrap_or(found);
    let (_, after) = disable_and_wait(esm, &config.esm_uuid, policy).await?;
    let mut state = CircuitState::opened(
        record.opened_at_ms.unwrap_or(now),
        original.scaling(),
        trigger,
    );
    state.attempt = record.attempt;
    let event = BreakerEvent::for_state(DetailType::Opened, config, &state, clock.now_ms())
        .with("reason", "trigger")
        .with("alarmName", alarm_name)
        .with("executionArn", me)
        .with("previousEsmState", before.state.as_str())
        .with("esmState", after.state.as_str())
        .with("savedMaximumConcurrency", original.maximum_concurrency)
        .with("resumedInterruptedRecovery", interrupted);
    events.put(&event).await?;
    info!(esm = %config.esm_uuid, saved = ?original.maximum_concurrency, interrupted, trigger = ?state.trigger, "circuit opened");
    Ok(proceed(OpenAction::Proceed, state))
}

fn duplicate() -> OpenOutput {
    OpenOutput {
        version: Version,
        action: OpenAction::Duplicate,
        state: None,
    }
}

fn proceed(action: OpenAction, state: CircuitState) -> OpenOutput {
    OpenOutput {
        version: Version,
        action,
        state: Some(state),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use breaker_core::ports::EsmState;
    use serde_json::json;

    use super::*;
    use breaker_core::record::{CircuitRecord, Phase};

    use crate::esm::EsmPolicy;
    use crate::testing::{
        EsmCall, FakeEsm, FakeEvents, FakeExecutions, FakeRecords, Fakes, FixedClock, config,
        state_json,
    };

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
        records: FakeRecords,
        events: FakeEvents,
        clock: FixedClock,
    }

    impl World {
        fn new(esm: FakeEsm, running: &[(&str, u64)]) -> Self {
            Self {
                esm,
                executions: FakeExecutions::running(running),
                records: FakeRecords::default(),
                events: FakeEvents::default(),
                clock: FixedClock::at(5_000_000),
            }
        }

        async fn open(&self, input: Value) -> Result<OpenOutput, HandlerError> {
            let ports = Fakes {
                esm: self.esm.clone(),
                executions: self.executions.clone(),
                records: self.records.clone(),
                events: self.events.clone(),
                clock: self.clock.clone(),
                ..Fakes::default()
            };
            let app = App {
                config: config(&[]),
                ports,
                esm_policy: policy(),
            };
            open(input, &app).await
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
        let record = w.records.stored().unwrap();
        assert_eq!(
            (record.owner.as_deref(), record.phase),
            (Some(ME), Phase::Open)
        );
        assert_eq!(
            record.original.map(|o| (o.enabled, o.maximum_concurrency)),
            Some((true, Some(50)))
        );
        assert_eq!(record.opened_at_ms, Some(5_000_000));
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
            1 + 1 + 1 + 4,
            "the mapping is verified before the claim, read (and recorded) after it, and read \
             again by the disable"
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

    fn owned_by(owner: &str, phase: Phase, original: Option<u32>) -> CircuitRecord {
        CircuitRecord {
            revision: 3,
            owner: Some(owner.into()),
            last_owner: Some(owner.into()),
            phase,
            original: Some(OriginalConfig {
                enabled: true,
                maximum_concurrency: original,
                provisioned_poller_config: None,
            }),
            opened_at_ms: Some(100),
            attempt: 7,
            owned_since_ms: Some(100),
            half_open_at_ms: (phase == Phase::HalfOpen).then_some(4_000_000),
            ..CircuitRecord::new_closed(100)
        }
    }

    fn world_with(esm: FakeEsm, running: &[(&str, u64)], record: CircuitRecord) -> World {
        World {
            records: FakeRecords::holding(record),
            ..World::new(esm, running)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_ends_as_duplicate_when_a_running_recovery_owns_the_circuit_and_touches_nothing() {
        let w = world_with(
            FakeEsm::new(EsmState::Disabled, Some(5)),
            &[(ME, 2_000), (OLDER, 1_000)],
            owned_by(OLDER, Phase::Open, Some(50)),
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
        assert!(
            w.esm.updates().is_empty(),
            "a duplicate only reads the mapping"
        );
        assert!(w.events.events().is_empty());
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({ "version": 1, "action": "duplicate" })
        );
        let record = w.records.stored().unwrap();
        assert_eq!(record.owner.as_deref(), Some(OLDER));
        assert_eq!(
            record.duplicates,
            vec![ME.to_owned()],
            "the duplicate is visible in the record"
        );
        assert_eq!(
            record.pending_trip_at_ms, None,
            "a trip while open is served by the open circuit"
        );
    }

    /// Issue 12, defect 1: two executions started together. On main, single flight read
    /// ListExecutions, where a just-started execution may not show yet (eventually consistent), so
    /// both counted themselves the oldest and both acted. Now the record decides: exactly one acts.
    #[tokio::test(start_paused = true)]
    async fn two_executions_started_together_exactly_one_acts() {
        const TWIN: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-twin";
        // One after the other, neither visible in the listing: the second is a duplicate.
        let w = World::new(FakeEsm::new(EsmState::Enabled, Some(50)), &[]);
        w.executions.start(ME);
        w.executions.start(TWIN);
        let first = w
            .open(json!({ "executionArn": TWIN, "input": { "trigger": "manual" } }))
            .await
            .unwrap();
        let second = w.open(alarm_input()).await.unwrap();
        assert_eq!(
            (first.action, second.action),
            (OpenAction::Proceed, OpenAction::Duplicate)
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(w.events.detail_types(), vec![DetailType::Opened]);

        // Interleaved: the twin's claim lands between this execution's read and its write.
        let w = World::new(FakeEsm::new(EsmState::Enabled, Some(50)), &[]);
        w.executions.start(ME);
        w.executions.start(TWIN);
        w.records.before_next_save(|stored| {
            let mut twin = CircuitRecord::new_closed(1);
            twin.owner = Some(TWIN.into());
            twin.phase = Phase::Open;
            twin.revision = 1;
            *stored = Some(twin);
        });
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(out.action, OpenAction::Duplicate);
        assert_eq!(w.records.conflicts(), 1, "the stale write was refused");
        assert!(
            w.esm.updates().is_empty(),
            "the loser touched nothing: {:?}",
            w.esm.calls()
        );
        let record = w.records.stored().unwrap();
        assert_eq!(
            (record.owner.as_deref(), record.duplicates.clone()),
            (Some(TWIN), vec![ME.to_owned()])
        );
    }

    /// Issue 12, defect 6: on main a wrong `ESM_UUID` made the breaker disable whatever mapping
    /// it named. Now a mapping of another function or queue is left alone, the record untouched,
    /// and the error (which the stuck handler announces) names both.
    #[tokio::test(start_paused = true)]
    async fn a_mapping_of_another_consumer_or_queue_is_not_disabled() {
        for esm in [
            FakeEsm::new(EsmState::Enabled, Some(5)).function_arn(Some(
                "arn:aws:lambda:eu-west-1:123456789012:function:billing-consumer",
            )),
            FakeEsm::new(EsmState::Enabled, Some(5))
                .event_source_arn(Some("arn:aws:sqs:eu-west-1:123456789012:billing")),
        ] {
            let w = World::new(esm, &[(ME, 1)]);
            let err = w.open(alarm_input()).await.unwrap_err();
            assert_eq!(err.error_type(), "NonRetryable");
            let text = err.to_string();
            assert!(
                text.contains("orders-consumer") && text.contains(":orders"),
                "{text}"
            );
            assert!(text.contains("billing"), "{text}");
            assert!(w.esm.updates().is_empty(), "nothing disabled");
            assert!(w.records.stored().is_none() && w.events.events().is_empty());
        }
    }

    /// Issue 12, defect 2: a recovery died mid-ramp (mapping enabled at ramp level 2); the next
    /// trip restores the original 50, not the ramp level.
    #[tokio::test(start_paused = true)]
    async fn a_trip_after_a_recovery_died_mid_ramp_keeps_the_original_configuration() {
        let w = world_with(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            &[(ME, 2_000)],
            owned_by(OLDER, Phase::HalfOpen, Some(50)),
        );
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        let state = out.state.unwrap();
        assert_eq!(
            state.saved_scaling.maximum_concurrency,
            Some(50),
            "not the ramp level 2"
        );
        assert_eq!(
            (state.opened_at_ms, state.attempt),
            (100, 7),
            "the outage goes on"
        );
        let record = w.records.stored().unwrap();
        assert_eq!(record.owner.as_deref(), Some(ME));
        assert_eq!(record.original.unwrap().maximum_concurrency, Some(50));
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(
            w.events.events()[0].detail["resumedInterruptedRecovery"],
            true
        );
    }

    /// Issue 14, fault campaign seed 9 (a slow `DescribeExecution`): the trip read the mapping at
    /// the old recovery's ramp level 4, then spent long judging whether that recovery had ended;
    /// meanwhile it closed (mapping restored to 10, record released). The original recorded must
    /// be the mapping as it is after the claim (10), not the stale read (4).
    #[tokio::test(start_paused = true)]
    async fn a_trip_records_the_mapping_as_it_is_after_the_claim_not_a_stale_read() {
        let w = world_with(
            FakeEsm::new(EsmState::Enabled, Some(4)),
            &[(ME, 2_000)],
            owned_by(OLDER, Phase::HalfOpen, Some(10)),
        );
        let (esm, mut closed_once) = (w.esm.clone(), false);
        w.records.before_next_save(move |stored| {
            if !closed_once {
                // the older recovery's close lands between this trip's read and its write
                closed_once = true;
                esm.set_by_another(EsmState::Enabled, Some(10));
                let mut released = CircuitRecord::new_closed(1);
                released.revision = stored.as_ref().map_or(0, |r| r.revision) + 1;
                *stored = Some(released);
            }
        });
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        assert_eq!(
            out.state.unwrap().saved_scaling.maximum_concurrency,
            Some(10),
            "not the ramp level read before the claim"
        );
        assert_eq!(
            w.records
                .stored()
                .unwrap()
                .original
                .unwrap()
                .maximum_concurrency,
            Some(10)
        );
    }

    /// Issue 12: the record keeps the mapping's original configuration "Enabled, ScalingConfig,
    /// and ProvisionedPollerConfig where set".
    #[tokio::test(start_paused = true)]
    async fn the_record_keeps_a_provisioned_mappings_poller_configuration() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, None).provisioned_pollers(Some(2), Some(20)),
            &[(ME, 2_000)],
        );
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        let original = w.records.stored().unwrap().original.unwrap();
        assert_eq!(
            original.provisioned_poller_config,
            Some(breaker_core::ports::PollerConfig {
                minimum_pollers: Some(2),
                maximum_pollers: Some(20),
            })
        );
        assert!(original.enabled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trip_while_the_owner_is_half_open_is_left_pending_for_it() {
        let w = world_with(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            &[(OLDER, 1), (ME, 2)],
            owned_by(OLDER, Phase::HalfOpen, Some(50)),
        );
        let out = w
            .open(json!({ "executionArn": ME, "input": { "trigger": "manual" } }))
            .await
            .unwrap();
        assert_eq!(out.action, OpenAction::Duplicate);
        let record = w.records.stored().unwrap();
        assert_eq!(record.pending_trip_at_ms, Some(5_000_000));
        assert!(record.retrip_pending());
        assert!(w.esm.updates().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn resume_takes_over_from_the_previous_execution_and_starts_a_new_generation() {
        let w = world_with(
            FakeEsm::new(EsmState::Disabled, Some(9)),
            &[(OLDER, 1_000), (ME, 2_000)],
            owned_by(OLDER, Phase::Open, Some(50)),
        );
        let mut resume_state = state_json(100, 42, 500, Some(50));
        resume_state["generation"] = json!(2);
        resume_state["reopenedAtMs"] = json!(400);
        let input = json!({ "executionArn": ME, "input": { "resume": resume_state, "previousExecutionArn": OLDER } });
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        let state = out.state.unwrap();
        assert_eq!(
            state.reopened_at_ms,
            Some(400),
            "the backoff's long-outage clock survives continue-as-new"
        );
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
        assert_eq!(w.records.stored().unwrap().owner.as_deref(), Some(ME));
    }

    #[tokio::test(start_paused = true)]
    async fn resume_from_an_execution_that_no_longer_owns_the_circuit_changes_nothing() {
        const X: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:x";
        let w = world_with(
            FakeEsm::new(EsmState::Disabled, None),
            &[(X, 10), (OLDER, 1_000), (ME, 2_000)],
            owned_by(X, Phase::Open, None),
        );
        let input = json!({ "executionArn": ME, "input": { "resume": state_json(1, 1, 1, None), "previousExecutionArn": OLDER } });
        assert_eq!(w.open(input).await.unwrap().action, OpenAction::Duplicate);
        let closed = World::new(FakeEsm::new(EsmState::Enabled, None), &[(ME, 2_000)]);
        let input = json!({ "executionArn": ME, "input": { "resume": state_json(1, 1, 1, None), "previousExecutionArn": OLDER } });
        assert_eq!(
            closed.open(input).await.unwrap().action,
            OpenAction::Duplicate,
            "a closed circuit is not re-opened by a stale continuation"
        );
        assert!(w.esm.calls().is_empty() && closed.esm.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trip_takes_over_from_an_owner_that_has_ended() {
        let w = world_with(
            FakeEsm::new(EsmState::Disabled, None),
            &[(ME, 2_000)],
            CircuitRecord {
                phase: Phase::Stuck,
                ..owned_by(OLDER, Phase::Open, Some(12))
            },
        );
        let out = w.open(alarm_input()).await.unwrap();
        assert_eq!(out.action, OpenAction::Proceed);
        assert_eq!(
            out.state.unwrap().saved_scaling.maximum_concurrency,
            Some(12)
        );
        assert_eq!(w.records.stored().unwrap().phase, Phase::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_close_answers_close_with_the_original_from_the_record_and_touches_nothing() {
        let w = world_with(
            FakeEsm::new(EsmState::Disabled, Some(9)),
            &[(ME, 2_000)],
            owned_by(OLDER, Phase::Open, Some(50)),
        );
        let mut resume_state = state_json(100, 7, 3, Some(2));
        resume_state["generation"] = json!(1);
        resume_state["healthyProbe"] = json!({ "messages": 1, "durationMs": 40 });
        let input = json!({ "executionArn": ME, "input": {
            "trigger": "manual-close", "resume": resume_state, "previousExecutionArn": OLDER
        }});
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Close);
        let state = out.state.unwrap();
        assert_eq!(
            state.healthy_probe, None,
            "no probe timed this close: the configured window"
        );
        assert_eq!(
            (
                state.attempt,
                state.iteration,
                state.generation,
                state.opened_at_ms
            ),
            (7, 0, 2, 100)
        );
        assert_eq!(
            state.saved_scaling.maximum_concurrency,
            Some(50),
            "the record's original wins"
        );
        assert!(w.esm.calls().is_empty(), "no disable: {:?}", w.esm.calls());
        assert!(w.events.events().is_empty(), "no Circuit Opened");
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
    async fn manual_close_is_single_flight_against_a_running_owner_other_than_the_stopped_one() {
        const OTHER_CLOSE: &str =
            "arn:aws:states:eu-west-1:123456789012:execution:Breaker:manual-close-1";
        let w = world_with(
            FakeEsm::new(EsmState::Disabled, Some(9)),
            &[(OTHER_CLOSE, 10), (OLDER, 1_000), (ME, 2_000)],
            owned_by(OTHER_CLOSE, Phase::HalfOpen, Some(9)),
        );
        let input = json!({ "executionArn": ME, "input": {
            "trigger": "manual-close", "resume": state_json(1, 1, 1, None), "previousExecutionArn": OLDER
        }});
        let out = w.open(input).await.unwrap();
        assert_eq!(out.action, OpenAction::Duplicate);
        assert!(w.esm.calls().is_empty() && w.events.events().is_empty());
        assert_eq!(
            w.records.stored().unwrap().pending_trip_at_ms,
            None,
            "a manual close is no trip"
        );
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
                    && w.records.stored().is_none()
                    && w.events.events().is_empty()
            );
        }
    }
}
