//! `close`: as the circuit's owner, restore the mapping's configuration from before the outage
//! exactly (from the durable record; no limit stays no limit), make sure it is enabled, reset the
//! trigger alarm to OK so a renewed failure fires again, then let go of the record and announce
//! `Circuit Closed`. A trip that reached the record while the circuit was half-open (a re-trip
//! that found this execution still owning it) is honoured instead: the mapping is disabled again,
//! `Circuit Opened` says why, and the answer is `reopen` (back to backoff). Letting go is a
//! conditional write, so a trip that lands between the alarm reset and the release is seen.
//!
//! After a ramp that settled below the original (issue 16, `state.ramp.settled`) the mapping keeps
//! the settled level instead: `Circuit Closed` names it and the original, and the record keeps the
//! original (`released_settled`) so that the next trip saves and restores the original, not the
//! settled level.
//!
//! A mapping in provisioned mode gets its `ProvisionedPollerConfig` back (a field the original
//! left out at its documented default, so that no ramp level stays) and never a `ScalingConfig`:
//! AWS refuses `MaximumConcurrency` together with a poller configuration.

use breaker_core::contract::{
    CircuitState, CloseAction, CloseOutput, OwnedStateInput, Version, parse,
};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::ports::{Alarms, CircuitRecords, Clock, EventSourceMappings, Events, Scaling};
use breaker_core::record::{
    CircuitRecord, MAX_CONFLICTS, OriginalConfig, opened, released, released_settled,
};
use serde_json::Value;
use tracing::{info, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::esm::{disable_and_wait, retry_in_use};
use crate::ports::Ports;
use crate::record::update_owned;

/// Handle `close` (see `CONTRACT.md`).
pub async fn close<P: Ports>(input: Value, app: &App<P>) -> Result<CloseOutput, HandlerError> {
    let (config, policy) = (&app.config, &app.esm_policy);
    let ports = &app.ports;
    let (esm, alarms, records) = (ports.esm(), ports.alarms(), ports.records());
    let (events, clock) = (ports.events(), ports.clock());
    let OwnedStateInput {
        state,
        execution_arn: me,
    } = parse(input)?;
    let record = owned(records.load().await?, &me)?;
    let original = record.original.unwrap_or_else(|| {
        warn!(esm = %config.esm_uuid, "the circuit record has no original configuration; restoring the state's");
        OriginalConfig {
            enabled: true,
            maximum_concurrency: state.saved_scaling.maximum_concurrency,
            provisioned_poller_config: None,
        }
    });
    if record.retrip_pending() {
        return reopen(app, &me, state, original).await;
    }
    let full = match original.provisioned_poller_config {
        Some(pollers) => Scaling::Pollers(pollers.effective()),
        None => Scaling::Concurrency(original.maximum_concurrency),
    };
    let settled = state.ramp.and_then(|p| p.settled);
    let restore = settled.unwrap_or(full);
    let after = retry_in_use(policy, "restore", || esm.enable(&config.esm_uuid, restore)).await?;
    alarms
        .set_ok(&format!(
            "sqs-circuit-breaker {}: circuit closed; re-arming the alarm",
            config.circuit_name
        ))
        .await?;
    // Let go, unless a re-trip reached the record meanwhile (then the write conflicts, and the
    // re-read shows it).
    let mut released_ok = false;
    for _ in 0..MAX_CONFLICTS {
        let current = owned(records.load().await?, &me)?;
        if current.retrip_pending() {
            return reopen(app, &me, state, original).await;
        }
        let release = match settled {
            Some(level) => released_settled(&current, level, clock.now_ms()),
            None => released(&current, clock.now_ms()),
        };
        if records.save(&release).await? {
            released_ok = true;
            break;
        }
    }
    if !released_ok {
        return Err(HandlerError::RecordContended(MAX_CONFLICTS));
    }
    let now = clock.now_ms();
    let open_seconds = state.open_seconds(now);
    let event = BreakerEvent::for_state(DetailType::Closed, config, &state, now);
    let event = match settled {
        None => {
            let event = event.with("restoredMaximumConcurrency", original.maximum_concurrency);
            match restore {
                Scaling::Pollers(pollers) => event.with("restoredProvisionedPollerConfig", pollers),
                Scaling::Concurrency(_) => event,
            }
        }
        Some(level) => {
            let event = event
                .with("settledBelowOriginal", true)
                .with("originalMaximumConcurrency", original.maximum_concurrency);
            match level {
                Scaling::Concurrency(limit) => event.with("settledMaximumConcurrency", limit),
                Scaling::Pollers(pollers) => event
                    .with("settledProvisionedPollerConfig", pollers)
                    .with("originalProvisionedPollerConfig", full),
            }
        }
    }
    .with("esmState", after.state.as_str())
    .with("alarmReset", true);
    events.put(&event).await?;
    match settled {
        Some(level) => {
            warn!(esm = %config.esm_uuid, settled = ?level, original = ?full, open_seconds, attempts = state.attempt, "circuit closed below the original: the ramp settled at a lower level")
        }
        None => {
            info!(esm = %config.esm_uuid, restored = ?restore, open_seconds, attempts = state.attempt, "circuit closed")
        }
    }
    Ok(CloseOutput {
        version: Version,
        action: CloseAction::Closed,
        closed: true,
        open_seconds,
        state: None,
    })
}

fn owned(record: Option<CircuitRecord>, me: &str) -> Result<CircuitRecord, HandlerError> {
    match record {
        Some(r) if r.is_owned_by(me) => Ok(r),
        other => Err(HandlerError::NotOwner {
            me: me.to_owned(),
            owner: other.and_then(|r| r.owner),
        }),
    }
}

/// Honour a re-trip: disable the mapping again (the record keeps the original), announce it and
/// hand the state back to the backoff loop.
async fn reopen<P: Ports>(
    app: &App<P>,
    me: &str,
    mut state: CircuitState,
    original: OriginalConfig,
) -> Result<CloseOutput, HandlerError> {
    let (config, ports) = (&app.config, &app.ports);
    let (before, after) = disable_and_wait(ports.esm(), &config.esm_uuid, &app.esm_policy).await?;
    let now = ports.clock().now_ms();
    let record = update_owned(ports.records(), me, |current| {
        opened(current, original, now).0
    })
    .await?;
    state.saved_scaling = original.scaling();
    state.attempt = record.attempt.max(state.attempt);
    state.ramp = None;
    state.reopened_at_ms = Some(now);
    let event = BreakerEvent::for_state(DetailType::Opened, config, &state, now)
        .with("reason", "re-trip while half-open")
        .with("executionArn", me)
        .with("previousEsmState", before.state.as_str())
        .with("esmState", after.state.as_str())
        .with("savedMaximumConcurrency", original.maximum_concurrency);
    ports.events().put(&event).await?;
    info!(esm = %config.esm_uuid, "a trip arrived while half-open: circuit opened again");
    Ok(CloseOutput {
        version: Version,
        action: CloseAction::Reopen,
        closed: false,
        open_seconds: state.open_seconds(now),
        state: Some(state),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use breaker_core::ports::EsmState;
    use serde_json::json;

    use breaker_core::record::Phase;

    use super::*;
    use crate::esm::EsmPolicy;
    use crate::testing::{
        EsmCall, FakeAlarms, FakeEsm, FakeEvents, FakeRecords, Fakes, FixedClock, config,
        state_json,
    };

    const ME: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-a";

    /// The record of a recovery `ME` owns, half-open since 1,500,000, with `original`.
    fn half_open(original: Option<u32>) -> CircuitRecord {
        CircuitRecord {
            revision: 5,
            owner: Some(ME.into()),
            last_owner: Some(ME.into()),
            phase: Phase::HalfOpen,
            original: Some(OriginalConfig {
                enabled: true,
                maximum_concurrency: original,
                provisioned_poller_config: None,
            }),
            opened_at_ms: Some(1_000_000),
            attempt: 4,
            owned_since_ms: Some(1_000_000),
            half_open_at_ms: Some(1_500_000),
            ..CircuitRecord::new_closed(1)
        }
    }

    /// `{"state": state, "executionArn": ME}`.
    fn owned_input(state: Value) -> Value {
        json!({ "state": state, "executionArn": ME })
    }

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
        let saved = input
            .pointer("/state/savedScaling/maximumConcurrency")
            .and_then(Value::as_u64)
            .map(|v| v as u32);
        let records = FakeRecords::holding(half_open(saved));
        run_with(input, esm, alarms, &records, events).await
    }

    async fn run_with(
        input: Value,
        esm: &FakeEsm,
        alarms: &FakeAlarms,
        records: &FakeRecords,
        events: &FakeEvents,
    ) -> Result<CloseOutput, HandlerError> {
        let ports = Fakes {
            esm: esm.clone(),
            alarms: alarms.clone(),
            records: records.clone(),
            events: events.clone(),
            clock: FixedClock::at(1_000_000 + 754_000),
            ..Fakes::default()
        };
        let app = App {
            config: config(&[]),
            ports,
            esm_policy: policy(),
        };
        close(input, &app).await
    }

    #[tokio::test]
    async fn close_restores_the_original_limit_resets_the_alarm_and_announces_it() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(17)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let out = run(
            owned_input(state_json(1_000_000, 4, 2, Some(50))),
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
                action: CloseAction::Closed,
                closed: true,
                open_seconds: 754,
                state: None,
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
            json!({ "version": 1, "action": "closed", "closed": true, "openSeconds": 754 })
        );
    }

    /// Issue 13 item 2: on main, close restored only `MaximumConcurrency`, so a mapping in
    /// provisioned mode kept the ramp's poller configuration. Now its `ProvisionedPollerConfig`
    /// is restored exactly, and no concurrency limit is sent to it.
    #[tokio::test]
    async fn close_restores_a_provisioned_mappings_poller_configuration_exactly() {
        let original = breaker_core::ports::PollerConfig {
            minimum_pollers: Some(3),
            maximum_pollers: Some(40),
        };
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, None).provisioned_pollers(Some(3), Some(15)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let mut record = half_open(None);
        record.original = Some(OriginalConfig {
            enabled: true,
            maximum_concurrency: None,
            provisioned_poller_config: Some(original),
        });
        let records = FakeRecords::holding(record);
        let out = run_with(
            owned_input(state_json(1_000_000, 4, 2, None)),
            &esm,
            &alarms,
            &records,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(out.action, CloseAction::Closed);
        let now = esm.snapshot();
        assert_eq!(
            (
                now.state,
                now.maximum_concurrency,
                now.provisioned_poller_config
            ),
            (EsmState::Enabled, None, Some(original))
        );
        assert_eq!(
            events.events()[0].detail["restoredProvisionedPollerConfig"],
            json!({ "minimumPollers": 3, "maximumPollers": 40 })
        );
    }

    /// A recorded original that leaves a field out is restored with that field at its
    /// documented default, so no ramp level stays behind whichever way the service reads an
    /// absent field.
    #[tokio::test]
    async fn close_restores_a_field_the_original_left_out_at_its_default() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, None).provisioned_pollers(Some(2), Some(15)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let mut record = half_open(None);
        record.original = Some(OriginalConfig {
            enabled: true,
            maximum_concurrency: None,
            provisioned_poller_config: Some(breaker_core::ports::PollerConfig {
                minimum_pollers: Some(4),
                maximum_pollers: None,
            }),
        });
        let records = FakeRecords::holding(record);
        run_with(
            owned_input(state_json(1_000_000, 4, 2, None)),
            &esm,
            &alarms,
            &records,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(
            esm.updates(),
            vec![EsmCall::EnablePollers(breaker_core::ports::PollerConfig {
                minimum_pollers: Some(4),
                maximum_pollers: Some(200),
            })]
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
            owned_input(state_json(1_000_000, 1, 1, None)),
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
            owned_input(state_json(1_000_000, 1, 1, Some(3))),
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
        match run(owned_input(bad), &esm, &alarms, &events).await {
            Err(HandlerError::Input(e)) => {
                assert_eq!(e.field, "state.savedScaling.maximumConcurrency")
            }
            other => panic!("{other:?}"),
        }
        assert!(esm.calls().is_empty() && alarms.resets().is_empty() && events.events().is_empty());
    }

    #[tokio::test]
    async fn close_restores_the_original_from_the_record_and_lets_go_of_it() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let records = FakeRecords::holding(half_open(Some(50)));
        // The state carries a ramp level as "saved" (an interrupted outage): the record wins.
        let out = run_with(
            owned_input(state_json(1_000_000, 4, 2, Some(2))),
            &esm,
            &alarms,
            &records,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(out.action, CloseAction::Closed);
        assert_eq!(esm.updates(), vec![EsmCall::Enable(Some(50))]);
        let r = records.stored().unwrap();
        assert_eq!(
            (r.owner, r.phase, r.original, r.pending_trip_at_ms),
            (None, Phase::Closed, None, None)
        );
        assert_eq!(r.last_owner.as_deref(), Some(ME));
    }

    /// Issue 12, defect 3: on main, a trip arriving after close reset the alarm but while the
    /// execution still ran ended as a duplicate and was lost (the alarm stayed in ALARM, no new
    /// state change came). Now the release is conditional: the trip is seen and honoured.
    #[tokio::test]
    async fn a_retrip_between_the_alarm_reset_and_the_release_reopens_the_circuit() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let records = FakeRecords::holding(half_open(Some(50)));
        records.before_next_save(|stored| {
            let r = stored.as_mut().unwrap();
            r.pending_trip_at_ms = Some(1_750_000);
            r.duplicates.push("arn:retrip".into());
            r.revision += 1;
        });
        let out = run_with(
            owned_input(state_json(1_000_000, 4, 2, Some(50))),
            &esm,
            &alarms,
            &records,
            &events,
        )
        .await
        .unwrap();
        assert_eq!((out.action, out.closed), (CloseAction::Reopen, false));
        let state = out.state.unwrap();
        assert_eq!(
            (state.saved_scaling.maximum_concurrency, state.opened_at_ms),
            (Some(50), 1_000_000)
        );
        assert_eq!(
            state.reopened_at_ms,
            Some(1_754_000),
            "the backoff's long-outage clock starts again at the reopen"
        );
        assert_eq!(
            esm.snapshot().state,
            EsmState::Disabled,
            "the consumer is protected again"
        );
        assert_eq!(events.detail_types(), vec![DetailType::Opened]);
        assert_eq!(
            events.events()[0].detail["reason"],
            "re-trip while half-open"
        );
        let r = records.stored().unwrap();
        assert_eq!(
            (r.owner.as_deref(), r.phase, r.pending_trip_at_ms),
            (Some(ME), Phase::Open, None)
        );
        assert_eq!(r.original.unwrap().maximum_concurrency, Some(50));
        assert_eq!(
            serde_json::to_value(CloseOutput {
                state: None,
                ..out_without_state()
            })
            .unwrap()["action"],
            "reopen"
        );
    }

    fn out_without_state() -> CloseOutput {
        CloseOutput {
            version: Version,
            action: CloseAction::Reopen,
            closed: false,
            open_seconds: 0,
            state: None,
        }
    }

    #[tokio::test]
    async fn a_retrip_already_pending_reopens_without_enabling_first() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let mut record = half_open(None);
        record.pending_trip_at_ms = Some(1_600_000);
        let records = FakeRecords::holding(record);
        let out = run_with(
            owned_input(state_json(1_000_000, 4, 2, None)),
            &esm,
            &alarms,
            &records,
            &events,
        )
        .await
        .unwrap();
        assert_eq!(out.action, CloseAction::Reopen);
        assert_eq!(esm.updates(), vec![EsmCall::Disable]);
        assert!(alarms.resets().is_empty());
    }

    #[tokio::test]
    async fn close_by_an_execution_that_does_not_own_the_circuit_changes_nothing() {
        let (esm, alarms, events) = (
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeAlarms::default(),
            FakeEvents::default(),
        );
        let mut record = half_open(Some(50));
        record.owner = Some("arn:someone-else".into());
        let records = FakeRecords::holding(record.clone());
        let err = run_with(
            owned_input(state_json(1_000_000, 4, 2, Some(50))),
            &esm,
            &alarms,
            &records,
            &events,
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable");
        assert!(err.to_string().contains("arn:someone-else"), "{err}");
        assert!(esm.calls().is_empty() && alarms.resets().is_empty() && events.events().is_empty());
        assert_eq!(records.stored(), Some(record));
    }
}
