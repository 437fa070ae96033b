//! `ramp` (half-open): step 0 re-enables the mapping at the first ramp level and announces
//! `Circuit Half-Open`; each later step judges the complete interval at the current level with
//! `breaker_core::ramp::Follow` (issue 16: a ramp that follows health) and moves as it says: up
//! one level on a clean interval (no errors, no throttles), back one level on errors after a raise
//! or a mild error rate, hold (settling below a level that failed, or with no complete interval to
//! judge yet), reopen on a severe rate at a proven level (mapping disabled again, `Circuit
//! Opened`), and `done` when the original level was clean or the ramp settled below it (`close`
//! then keeps the settled level). Where the ramp stands (`RampProgress`) travels in the state, so
//! a retried step (same input) decides from the same place: an interval is judged once, no level
//! is skipped, and a retry that decides otherwise puts the mapping back at its level.
//!
//! An interval is the complete, published metric periods since the level was set or since the
//! last interval judged (`breaker_core::policy::complete_periods`); each step waits until the next
//! one is complete (`first_complete_at`), at least `RAMP_INTERVAL_SECONDS`
//! (`breaker_core::ramp::Timing`). A level climbed to with no level failed is looked at early, as
//! soon as its first period is complete: a clean look with enough invocations raises at once, and
//! anything else waits out the interval (`Move::Wait`) and judges it whole. A raise from a level
//! the consumer did not fill (nothing visible and under half the level's room in flight:
//! `GetQueueAttributes`, and the mapping's `BatchSize`) closes the ramp instead
//! (`Follow::close_if_unlimited`): the levels above would add no steady load. Every step acts only
//! as the owner in the circuit record: step 0 marks the record half-open *before* it enables (a
//! trip after that is a re-trip the owner must honour), a reopen marks it open again, and an
//! execution that no longer owns the circuit changes nothing. Each answer charges the state with
//! the worst case of the path it sends the workflow on (`breaker_core::history`); the ramp loop
//! is bounded (`Follow::max_calls`: `step` only grows, and the call at the bound ends the ramp),
//! and backoff and the re-jitter plan reserve all of it.

use breaker_core::contract::{
    InputError, RampAction, RampInput, RampOutput, RampProgress, Version, parse,
};
use breaker_core::events::{BreakerEvent, DetailType, Measure, Measurement};
use breaker_core::history::{self, COSTS};
use breaker_core::policy::complete_periods;
use breaker_core::ports::{
    CircuitRecords, Clock, EventSourceMappings, Events, Metrics, PollerConfig, PortError, Queue,
    Scaling,
};
use breaker_core::ramp::{Demand, Follow, IntervalHealth, Move, Timing};
use breaker_core::record::{CircuitRecord, OriginalConfig, half_opened, opened};
use serde_json::Value;
use tracing::{info, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::esm::{disable_and_wait, retry_in_use};
use crate::ports::Ports;
use crate::record::update_owned;

/// Handle `ramp` (see `CONTRACT.md`).
///
/// The levels come from the mapping's original configuration: `MaximumConcurrency` levels up to
/// the state's saved limit, or, for a mapping the record shows in provisioned mode,
/// `ProvisionedPollerConfig` levels up to the recorded poller configuration
/// (`breaker_core::ramp::Ramp::levels`). A provisioned mapping never gets a `MaximumConcurrency`:
/// AWS refuses it together with a poller configuration. The decision is `Follow::next` with
/// `RELAPSE_ERROR_RATE_PERCENT` as the severe rate and the core's defaults otherwise.
pub async fn ramp<P: Ports>(input: Value, app: &App<P>) -> Result<RampOutput, HandlerError> {
    let (config, policy) = (&app.config, &app.esm_policy);
    let ports = &app.ports;
    let (esm, metrics, records) = (ports.esm(), ports.metrics(), ports.records());
    let (events, clock) = (ports.events(), ports.clock());
    let RampInput {
        mut state,
        step,
        execution_arn: me,
    } = parse(input)?;
    let interval = config.ramp_interval_seconds;
    let period = config.consumer_metric_period_seconds;
    // The metrics the interval reads (the alarm's resolution) and the consumer's timeout, and so
    // how long after a period ends it is complete (`breaker_core::policy::publication_lag_ms`:
    // Lambda stamps its one-minute metrics with the invocation's start).
    let (resolution, timeout) = (
        config.consumer_metric_resolution,
        config.consumer_timeout_seconds,
    );
    let follow = Follow {
        relapse_percent: config.relapse_error_rate_percent,
        ..Follow::default()
    };
    // When the next step comes: after the ramp interval and once its periods are complete, or
    // early at a level climbed to.
    let timing = Timing {
        interval_seconds: interval,
        period_seconds: period,
        resolution,
        consumer_timeout_seconds: timeout,
    };
    let levels_of = |record: &CircuitRecord| {
        let pollers = record
            .original
            .and_then(|original| original.provisioned_poller_config);
        config
            .ramp
            .levels(state.saved_scaling.maximum_concurrency, pollers)
    };
    let output = |action, step, wait_seconds, level: Option<Scaling>, mut state| {
        let cost = match action {
            RampAction::Step => COSTS.ramp_step,
            RampAction::Reopen => COSTS.ramp_reopen,
            RampAction::Done => COSTS.ramp_done,
        };
        history::Budget::of(config).charge(&mut state, cost);
        let (maximum_concurrency, provisioned_poller_config) = match level {
            Some(Scaling::Concurrency(limit)) => (limit, None),
            Some(Scaling::Pollers(pollers)) => (None, Some(pollers)),
            None => (None, None),
        };
        RampOutput {
            version: Version,
            action,
            step,
            wait_seconds,
            maximum_concurrency,
            provisioned_poller_config,
            state,
        }
    };

    if step == 0 {
        let now = clock.now_ms();
        let record = update_owned(records, &me, |r| half_opened(r, state.attempt, now)).await?;
        let levels = levels_of(&record);
        let level = levels[0];
        retry_in_use(policy, "enable", || esm.enable(&config.esm_uuid, level)).await?;
        let now = clock.now_ms();
        let event = BreakerEvent::for_state(DetailType::HalfOpen, config, &state, now);
        let event = match level {
            Scaling::Concurrency(limit) => event
                .with("maximumConcurrency", limit)
                .with("levels", concurrency_levels(&levels)),
            Scaling::Pollers(pollers) => event
                .with("provisionedPollerConfig", pollers)
                .with("levels", poller_levels(&levels)),
        }
        .with("stepSeconds", interval);
        events.put(&event).await?;
        measure_level(app, level.limit(), now);
        info!(esm = %config.esm_uuid, level = ?level, levels = ?levels, "half-open: mapping re-enabled");
        let (wait, early) = timing.after_set(now, now, follow.looks(levels.len()));
        state.ramp = Some(RampProgress {
            early,
            ..RampProgress::start(now)
        });
        return Ok(output(RampAction::Step, 1, wait, Some(level), state));
    }

    let record = records.load().await?;
    let record = match record {
        Some(r) if r.is_owned_by(&me) => r,
        other => {
            return Err(HandlerError::NotOwner {
                me,
                owner: other.and_then(|r| r.owner),
            });
        }
    };
    let levels = levels_of(&record);
    let top = levels.len() - 1;
    let calls = follow.max_calls(levels.len());
    if step >= calls {
        return Err(InputError::new(
            "step",
            format!(
                "must be 0–{} for this ramp of {} levels",
                calls - 1,
                levels.len()
            ),
        )
        .into());
    }
    let now = clock.now_ms();
    // A state from before the progress travelled with it: the level the fixed schedule set for
    // this step, judged over the complete periods since the ramp began (as it was).
    let given = state.ramp.unwrap_or_else(|| RampProgress {
        level: (step - 1).min(top as u32),
        raised: step > 1,
        judge_from_ms: record.half_open_at_ms.unwrap_or(now),
        ..RampProgress::start(now)
    });
    if given.level as usize > top || given.settled.is_some() {
        return Err(InputError::new(
            "state.ramp",
            format!(
                "must stand at one of the ramp's {} levels, not settled",
                levels.len()
            ),
        )
        .into());
    }
    let current = levels[given.level as usize];
    // Only complete, published periods since the level was set or the last interval judged
    // (`complete_periods`); none yet: no verdict, the step holds (and counts).
    let window = complete_periods(now, given.judge_from_ms, period, resolution, timeout);
    let stats = match window {
        Some((since, until)) => Some(metrics.consumer_stats(since, until).await?),
        None => {
            info!(esm = %config.esm_uuid, step, judge_from_ms = given.judge_from_ms, "no complete interval at this level yet: no verdict");
            None
        }
    };
    let last = step + 1 >= calls;
    let (decision, next) =
        follow.next(given.progress(), top, stats.map(IntervalHealth::from), last);
    // A raise is skipped when the consumer did not fill this level (nothing visible on the
    // queue, under half the level's room in flight): the ramp closes now
    // (`Follow::close_if_unlimited`). The queue and the mapping's batch size are read only for a
    // raise; if either cannot be read, the ramp raises one level as before.
    let (decision, next) = match decision {
        Move::StepUp => match demand_at(app, current).await {
            Ok(Some(demand)) => {
                info!(esm = %config.esm_uuid, step, level = ?current, ?demand, "demand at the level");
                follow.close_if_unlimited(decision, next, demand)
            }
            Ok(None) => {
                info!(esm = %config.esm_uuid, step, "the mapping reports no BatchSize: raising one level");
                (decision, next)
            }
            Err(e) => {
                warn!(esm = %config.esm_uuid, step, error = %e, "demand at the level unknown: raising one level");
                (decision, next)
            }
        },
        _ => (decision, next),
    };
    let judged_until = window.map_or(given.judge_from_ms, |(_, until)| until);
    let target = levels[next.level];
    match decision {
        Move::Reopen => {
            let found = record.original.unwrap_or(OriginalConfig {
                enabled: true,
                maximum_concurrency: state.saved_scaling.maximum_concurrency,
                provisioned_poller_config: None,
            });
            update_owned(records, &me, |r| opened(r, found, now).0).await?;
            disable_and_wait(esm, &config.esm_uuid, policy).await?;
            let seen = stats.unwrap_or_default();
            let reason = if stats.is_some() {
                "relapse during ramp"
            } else {
                "ramp ended without a clean interval"
            };
            let event = BreakerEvent::for_state(DetailType::Opened, config, &state, clock.now_ms())
                .with("reason", reason)
                .with("rampStep", step);
            let event = match current {
                Scaling::Concurrency(limit) => event.with("maximumConcurrency", limit),
                Scaling::Pollers(pollers) => event.with("provisionedPollerConfig", pollers),
            }
            .with("errors", seen.errors)
            .with("invocations", seen.invocations)
            .with("throttles", seen.throttles)
            .with("esmState", "Disabled");
            events.put(&event).await?;
            measure_level(app, Some(0), clock.now_ms());
            warn!(esm = %config.esm_uuid, step, level = ?current, errors = seen.errors, invocations = seen.invocations, throttles = seen.throttles, reason, "ramp reopened the circuit");
            state.ramp = None;
            state.reopened_at_ms = Some(now);
            Ok(output(RampAction::Reopen, step, 0, None, state))
        }
        Move::Close => {
            if next.level < top {
                // Done below the original (a level the consumer did not fill, or the ramp's last
                // call): close restores the original next.
                info!(esm = %config.esm_uuid, level = ?current, original = ?levels[top], stats = ?stats, "ramp complete below the original: close restores it");
                measure_level(app, levels[top].limit(), now);
            } else {
                info!(esm = %config.esm_uuid, level = ?current, stats = ?stats, "ramp complete");
            }
            state.ramp = Some(RampProgress::of(next, judged_until));
            Ok(output(RampAction::Done, step + 1, 0, Some(current), state))
        }
        Move::Settle => {
            info!(esm = %config.esm_uuid, level = ?target, original = ?levels[top], stats = ?stats, "ramp settled below the original");
            let mut progress = RampProgress::of(next, judged_until);
            progress.settled = Some(target);
            state.ramp = Some(progress);
            Ok(output(RampAction::Done, step + 1, 0, Some(target), state))
        }
        Move::StepUp | Move::StepBack => {
            retry_in_use(policy, "scale", || {
                esm.update_scaling(&config.esm_uuid, target)
            })
            .await?;
            let set_at = clock.now_ms();
            measure_level(app, target.limit(), set_at);
            if decision == Move::StepBack {
                warn!(esm = %config.esm_uuid, step, from = ?current, to = ?target, ceiling = ?next.ceiling, judged = ?window, stats = ?stats, "ramp stepped back");
            } else {
                info!(esm = %config.esm_uuid, step, level = ?target, judged = ?window, stats = ?stats, "ramp raised");
            }
            let climbing = decision == Move::StepUp && follow.looks(levels.len());
            let (wait, early) = timing.after_set(set_at, set_at, climbing);
            state.ramp = Some(RampProgress {
                early,
                ..RampProgress::of(next, set_at)
            });
            Ok(output(
                RampAction::Step,
                step + 1,
                wait,
                Some(target),
                state,
            ))
        }
        Move::Hold | Move::Wait => {
            // A retry of a step that moved the mapping before it crashed may decide to hold (or
            // wait): the mapping goes back to the level held.
            let found = esm.get(&config.esm_uuid).await?;
            let at = OriginalConfig {
                enabled: true,
                maximum_concurrency: found.maximum_concurrency,
                provisioned_poller_config: found.provisioned_poller_config,
            };
            if !at.runs_at(target) {
                warn!(esm = %config.esm_uuid, step, level = ?target, found = ?found, "mapping not at the level held; setting it");
                retry_in_use(policy, "scale", || {
                    esm.update_scaling(&config.esm_uuid, target)
                })
                .await?;
                measure_level(app, target.limit(), clock.now_ms());
            }
            // A hold judged its interval, the next begins where it ended; a wait after an early
            // look judged nothing: the interval since the level was set is judged whole once
            // the ramp interval has passed.
            let (judge_from, wait) = if decision == Move::Wait {
                info!(esm = %config.esm_uuid, step, level = ?target, looked = ?window, stats = ?stats, "early look: too little to raise on, waiting out the interval");
                let set_at = given.judge_from_ms;
                (set_at, timing.after_wait(set_at, now))
            } else {
                info!(esm = %config.esm_uuid, step, level = ?target, judged = ?window, stats = ?stats, healthy = next.healthy, "ramp holds");
                (judged_until, timing.after_hold(judged_until, now))
            };
            state.ramp = Some(RampProgress::of(next, judge_from));
            Ok(output(
                RampAction::Step,
                step + 1,
                wait,
                Some(target),
                state,
            ))
        }
    }
}

/// What the consumer demands of `level`: the queue's visible and in-flight messages, and the
/// level's room from the mapping's `BatchSize` (`None` when the mapping reports none, or the
/// level has no limit).
async fn demand_at<P: Ports>(app: &App<P>, level: Scaling) -> Result<Option<Demand>, PortError> {
    let queue = app.ports.queue().info().await?;
    let mapping = app.ports.esm().get(&app.config.esm_uuid).await?;
    Ok(mapping
        .batch_size
        .and_then(|batch| Demand::room(level, batch))
        .map(|room| Demand {
            visible: queue.visible,
            in_flight: queue.in_flight,
            room,
        }))
}

/// Record the `RampLevel` the mapping runs at now (0: disabled again); nothing for a level
/// without a limit.
fn measure_level<P: Ports>(app: &App<P>, limit: Option<u32>, now_ms: u64) {
    if let Some(limit) = limit {
        let level = Measurement::new(Measure::RampLevel, &app.config, f64::from(limit), now_ms);
        app.ports.events().measure(&level);
    }
}

/// The `ProvisionedPollerConfig` of each level of a provisioned mapping's ramp.
fn poller_levels(levels: &[Scaling]) -> Vec<PollerConfig> {
    levels
        .iter()
        .filter_map(|level| match level {
            Scaling::Pollers(pollers) => Some(*pollers),
            Scaling::Concurrency(_) => None,
        })
        .collect()
}

/// The `MaximumConcurrency` of each level, as `Circuit Half-Open` has always listed them.
fn concurrency_levels(levels: &[Scaling]) -> Vec<Option<u32>> {
    levels
        .iter()
        .map(|level| match level {
            Scaling::Concurrency(limit) => *limit,
            Scaling::Pollers(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use breaker_core::ports::EsmState;
    use serde_json::json;

    use breaker_core::record::{CircuitRecord, Phase};

    use super::*;
    use crate::esm::EsmPolicy;
    use crate::testing::{
        EsmCall, FakeEsm, FakeEvents, FakeMetrics, FakeRecords, Fakes, FixedClock, config,
        state_json,
    };
    use breaker_core::contract::{CircuitState, RampProgress};
    use breaker_core::message::OutgoingMessage;
    use breaker_core::ports::FaultKind;
    use breaker_testkit::Op;

    const MINUTE: u64 = 60_000;
    /// The fixed clock: 166 min 40 s.
    const T0: u64 = 10_000_000;

    const ME: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-a";
    /// When the fixtures' ramp began (step 0 marked the record half-open): three minutes before
    /// the fixed clock, so a step at the clock has complete periods to judge.
    const HALF_OPEN_AT: u64 = 10_000_000 - 180_000;
    /// The consumer's timeout in the fixtures (`CONSUMER_TIMEOUT_SECONDS`): a one-minute period
    /// is complete 30 s + 60 s after it ends (`breaker_core::policy::publication_lag_ms`).
    const TIMEOUT: &str = "30";

    fn owned_by(owner: &str) -> CircuitRecord {
        CircuitRecord {
            revision: 2,
            owner: Some(owner.into()),
            phase: Phase::Open,
            original: Some(OriginalConfig {
                enabled: true,
                maximum_concurrency: Some(50),
                provisioned_poller_config: None,
            }),
            opened_at_ms: Some(1_000),
            half_open_at_ms: Some(HALF_OPEN_AT),
            ..CircuitRecord::new_closed(1)
        }
    }

    struct World {
        esm: FakeEsm,
        metrics: FakeMetrics,
        records: FakeRecords,
        events: FakeEvents,
        clock: FixedClock,
        /// The consumer's queue: by default one message waits visible, so a level limits the
        /// consumer and a clean interval raises one level (`Follow::close_if_unlimited`).
        queue: breaker_testkit::FakeQueue,
        /// Environment variables besides the test configuration's (by default a consumer
        /// timeout of [`TIMEOUT`]).
        env: Vec<(&'static str, &'static str)>,
    }

    impl World {
        fn new(esm: FakeEsm, metrics: FakeMetrics) -> Self {
            Self {
                esm,
                metrics,
                records: FakeRecords::holding(owned_by(ME)),
                events: FakeEvents::default(),
                clock: FixedClock::at(10_000_000),
                queue: waiting(1),
                env: vec![("CONSUMER_TIMEOUT_SECONDS", TIMEOUT)],
            }
        }

        /// The count in the state every step is given.
        fn charged_before(&self) -> u32 {
            1_000
        }

        async fn step(&self, saved: Option<u32>, step: u32) -> Result<RampOutput, HandlerError> {
            let policy = EsmPolicy {
                in_use_base: Duration::from_millis(5),
                ..EsmPolicy::default()
            };
            let mut state = state_json(1_000, 3, 2, saved);
            state["historyEvents"] = json!(self.charged_before());
            let input = json!({ "state": state, "step": step, "executionArn": ME });
            ramp(input, &self.app(policy)).await
        }

        /// The state a step is given, the ramp standing at `progress`.
        fn state_at(&self, saved: Option<u32>, progress: RampProgress) -> CircuitState {
            let mut state: CircuitState =
                serde_json::from_value(state_json(1_000, 3, 2, saved)).unwrap();
            state.history_events = self.charged_before();
            state.ramp = Some(progress);
            state
        }

        /// Call `ramp` with `state` at `step`.
        async fn call(&self, state: &CircuitState, step: u32) -> Result<RampOutput, HandlerError> {
            let policy = EsmPolicy {
                in_use_base: Duration::from_millis(5),
                ..EsmPolicy::default()
            };
            let input = json!({ "state": state, "step": step, "executionArn": ME });
            ramp(input, &self.app(policy)).await
        }

        /// Call `ramp` with what `out` answered, after its wait.
        async fn after(&self, out: &RampOutput) -> Result<RampOutput, HandlerError> {
            self.clock.advance_ms(out.wait_seconds * 1000);
            self.call(&out.state, out.step).await
        }

        /// The app on this world's fakes.
        fn app(&self, esm_policy: EsmPolicy) -> App<Fakes> {
            let ports = Fakes {
                esm: self.esm.clone(),
                metrics: self.metrics.clone(),
                records: self.records.clone(),
                events: self.events.clone(),
                clock: self.clock.clone(),
                queue: self.queue.clone(),
                ..Fakes::default()
            };
            App {
                config: config(&self.env),
                ports,
                esm_policy,
            }
        }
    }

    /// A queue with `n` messages waiting visible.
    fn waiting(n: usize) -> breaker_testkit::FakeQueue {
        let queue = breaker_testkit::FakeQueue::new();
        for i in 0..n {
            queue.push_body(format!("order-{i}"));
        }
        queue
    }

    /// Issue 16: a clean interval at a level the consumer did not fill (nothing visible on the
    /// queue when the step judges it) closes the ramp: the mapping is left at the level and
    /// `close` restores the original next, measured now; the levels above are not stepped
    /// through (on the handler before this: raised to 17, then 50 a minute or more later).
    /// Messages waiting, or a queue that cannot be read, raise one level as before.
    #[tokio::test]
    async fn a_clean_level_the_consumer_did_not_fill_closes_the_ramp() {
        // The mapping at level 1 (6 of 2, 6, 17, 50, `BatchSize` 10) with `esm`, errors at
        // `errors` per 100 invocations, and `queue`.
        let world = |esm: FakeEsm, errors: f64, queue| World {
            queue,
            ..World::new(esm, FakeMetrics::steady(errors, 100.0))
        };
        let at_six = || FakeEsm::new(EsmState::Enabled, Some(6));
        let given = RampProgress {
            raised: true,
            evidence: 100,
            ..at(1)
        };
        let raised_one_level = |out: RampOutput| {
            assert_eq!(
                (out.action, out.maximum_concurrency),
                (RampAction::Step, Some(17))
            )
        };

        // A delayed copy (re-jittered, not yet visible) does not hold the consumer back.
        let w = world(at_six(), 0.0, waiting(0));
        w.queue.push(OutgoingMessage {
            id: "copy".into(),
            body: "order-1".into(),
            message_attributes: Default::default(),
            trace_header: None,
            delay_seconds: 300,
            fifo: None,
        });
        let out = w.call(&w.state_at(Some(50), given), 2).await.unwrap();
        assert_eq!(
            (out.action, out.step, out.maximum_concurrency),
            (RampAction::Done, 3, Some(6))
        );
        assert!(w.esm.updates().is_empty(), "{:?}", w.esm.updates());
        let p = progress(&out);
        assert_eq!((p.level, p.settled, p.intervals), (1, None, 1));
        assert_eq!(w.events.measured(), vec![(Measure::RampLevel, 50.0)]);

        // One message waiting: the level may be what holds the consumer back.
        let w = world(at_six(), 0.0, waiting(1));
        raised_one_level(w.call(&w.state_at(Some(50), given), 2).await.unwrap());

        // Nothing visible, but half the level's room (6 × `BatchSize` 10) in flight: the level
        // may be near its limit; one fewer in flight, the consumer does not fill it.
        for (in_flight, action) in [(30, RampAction::Step), (29, RampAction::Done)] {
            let w = world(at_six(), 0.0, waiting(in_flight));
            for _ in 0..in_flight.div_ceil(10) {
                w.queue.receive(10, 0, 300).await.unwrap();
            }
            let out = w.call(&w.state_at(Some(50), given), 2).await.unwrap();
            assert_eq!(out.action, action, "{in_flight} in flight");
        }

        // The queue cannot be read: raise one level, as before.
        let w = world(at_six(), 0.0, waiting(0));
        w.queue
            .fail_calls(Op::Info, None, FaultKind::Retryable, "ThrottlingException");
        raised_one_level(w.call(&w.state_at(Some(50), given), 2).await.unwrap());
        // Nor can the mapping (its `BatchSize`).
        let throttled = PortError::new("GetEventSourceMapping", FaultKind::Retryable, "throttled");
        let w = world(at_six().failing_get(throttled), 0.0, waiting(0));
        raised_one_level(w.call(&w.state_at(Some(50), given), 2).await.unwrap());

        // A step back or a hold never reads the queue.
        let w = world(at_six(), 10.0, waiting(0));
        let out = w.call(&w.state_at(Some(50), proven(1)), 2).await.unwrap();
        assert_eq!(
            (out.action, out.maximum_concurrency),
            (RampAction::Step, Some(2))
        );
        assert_eq!(w.queue.call_count(Op::Info), 0);
    }

    /// The ramp at `level`, its next interval beginning when the fixtures' ramp began (so a step
    /// at the fixed clock judges the one complete period 164–165 min).
    fn at(level: u32) -> RampProgress {
        RampProgress {
            level,
            judge_from_ms: HALF_OPEN_AT,
            ..RampProgress::start(0)
        }
    }

    /// A level proven by a clean interval (not just raised).
    fn proven(level: u32) -> RampProgress {
        RampProgress {
            healthy: 1,
            ..at(level)
        }
    }

    fn progress(out: &RampOutput) -> RampProgress {
        out.state
            .ramp
            .expect("every ramp step writes its progress into the state")
    }

    /// Issue 16: a step judges the complete interval at its level with `Follow::decide`: clean,
    /// it raises one level, and the next interval begins when that level was set; it waits until
    /// that interval is complete and published (on today's handler: a fixed 60 s and no progress).
    #[tokio::test]
    async fn a_clean_interval_steps_up_and_the_next_interval_begins_at_the_new_level() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(0.0, 100.0),
        );
        let given = RampProgress {
            raised: true,
            evidence: 100,
            ..at(1)
        };
        let out = w.call(&w.state_at(Some(50), given), 2).await.unwrap();
        assert_eq!(
            (out.action, out.step, out.maximum_concurrency),
            (RampAction::Step, 3, Some(17))
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::UpdateScaling(Some(17))]);
        assert_eq!(w.metrics.asked(), vec![(164 * MINUTE, 165 * MINUTE)]);
        let p = progress(&out);
        assert_eq!(
            (p.level, p.raised, p.evidence, p.intervals, p.judge_from_ms),
            (2, true, 100, 1, T0)
        );
        // The first period after 166:40 is 167–168 min, complete 30 s + 60 s later (169:30):
        // 170 s away.
        assert_eq!(out.wait_seconds, 170);
        assert_eq!(w.events.measured(), vec![(Measure::RampLevel, 17.0)]);
    }

    /// With the telemetry extension's high-resolution metrics (`CONSUMER_METRIC_RESOLUTION=high`,
    /// 10 s periods) a period is complete once the extension's EMF lines are ingested, about 5 s
    /// after it ends, not Lambda's one-minute publication lag: a step judges every period that
    /// ended 5 s ago, and a new level waits for its first period plus 5 s (on h/follow before
    /// this: plus 60 s, ~80 s per level in the demo profile).
    #[tokio::test]
    async fn high_resolution_steps_wait_for_the_period_and_the_extensions_delivery() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(0.0, 100.0),
        );
        w.env = vec![
            ("CONSUMER_METRIC_RESOLUTION", "high"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "10"),
            ("RAMP_INTERVAL_SECONDS", "5"),
        ];
        let given = RampProgress {
            raised: true,
            evidence: 100,
            ..at(1)
        };
        let out = w.call(&w.state_at(Some(50), given), 2).await.unwrap();
        assert_eq!(
            (out.action, out.maximum_concurrency),
            (RampAction::Step, Some(17))
        );
        // At 166:40 every 10 s period since the interval began that ended by 166:35 is
        // complete: up to 166:30.
        assert_eq!(w.metrics.asked(), vec![(HALF_OPEN_AT, T0 - 10_000)]);
        // Level 17 set at 166:40: its first period 166:40–166:50 is complete at 166:55.025.
        assert_eq!(out.wait_seconds, 16, "period + ~5 s, not + 60 s");
        let next = w.after(&out).await.unwrap();
        assert_eq!(w.metrics.asked()[1], (T0, T0 + 10_000));
        assert_eq!(
            (next.action, next.maximum_concurrency, next.wait_seconds),
            (RampAction::Step, Some(50), 20),
            "set at 166:56: its first whole period 167:00–167:10 is complete at 167:15.025"
        );
    }

    /// Issue 16: with no complete interval at its level yet, a step holds at that level without
    /// reading metrics (on today's handler it raised on a fixed schedule).
    #[tokio::test]
    async fn a_step_with_no_complete_interval_at_its_level_holds() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(30.0, 40.0),
        );
        let given = RampProgress {
            judge_from_ms: T0 - 30_000,
            ..proven(1)
        };
        let out = w.call(&w.state_at(Some(50), given), 4).await.unwrap();
        assert_eq!(
            (out.action, out.step, out.maximum_concurrency),
            (RampAction::Step, 5, Some(6))
        );
        assert!(w.esm.updates().is_empty(), "{:?}", w.esm.updates());
        assert!(w.metrics.asked().is_empty());
        assert!(w.events.events().is_empty() && w.events.measured().is_empty());
        let p = progress(&out);
        assert_eq!(
            (p.level, p.healthy, p.intervals, p.judge_from_ms),
            (1, 1, 1, T0 - 30_000),
            "the hold counts towards the bound; the interval still begins where it did"
        );
        assert_eq!(
            out.wait_seconds, 170,
            "until 167–168 min is complete (169:30)"
        );
    }

    /// Lambda stamps `Errors`/`Invocations` with the invocation's start ("Note that the timestamp
    /// on an error metric reflects when the function was invoked, not when the error occurred."),
    /// so a minute is complete only a consumer timeout plus Lambda's one-minute interval after it
    /// ends. With `CONSUMER_TIMEOUT_SECONDS=300`, a step 180 s after the level was set (163:40)
    /// has no complete minute: it holds without reading metrics or touching the mapping (on the
    /// handler before this it judged 164–165 min, whose invocations may still be running, and
    /// raised), and it waits until the first whole minute after the level, 164–165, is complete:
    /// 165:00 + 300 s + 60 s = 171:00.
    #[tokio::test]
    async fn a_standard_minute_is_judged_only_a_consumer_timeout_after_its_interval() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(0.0, 100.0),
        );
        w.env = vec![("CONSUMER_TIMEOUT_SECONDS", "300")];
        let set_at = T0 - 180_000;
        let given = RampProgress {
            raised: true,
            evidence: 100,
            judge_from_ms: set_at,
            ..at(1)
        };
        let out = w.call(&w.state_at(Some(50), given), 2).await.unwrap();
        assert!(w.metrics.asked().is_empty(), "{:?}", w.metrics.asked());
        assert_eq!(
            (out.action, out.step, out.maximum_concurrency),
            (RampAction::Step, 3, Some(6)),
            "no verdict: the step holds at its level"
        );
        assert!(w.esm.updates().is_empty(), "{:?}", w.esm.updates());
        assert!(w.events.events().is_empty() && w.events.measured().is_empty());
        assert_eq!(progress(&out).judge_from_ms, set_at);
        let complete = 165 * MINUTE + 300_000 + 60_000;
        assert_eq!(T0 + out.wait_seconds * 1000, complete, "171:00");
        // Then the minute is judged, clean: up one level.
        let next = w.after(&out).await.unwrap();
        assert_eq!(w.metrics.asked(), vec![(164 * MINUTE, 165 * MINUTE)]);
        assert_eq!(next.maximum_concurrency, Some(17));
    }

    /// Issue 16: a mild error rate (below RELAPSE_ERROR_RATE_PERCENT) at a proven level steps
    /// back one level instead of going on (today: raised) or reopening.
    #[tokio::test]
    async fn a_mild_error_rate_at_a_proven_level_steps_back_one_level() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(17)),
            FakeMetrics::steady(5.0, 100.0),
        );
        let out = w.call(&w.state_at(Some(50), proven(2)), 3).await.unwrap();
        assert_eq!(
            (out.action, out.maximum_concurrency),
            (RampAction::Step, Some(6))
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::UpdateScaling(Some(6))]);
        let p = progress(&out);
        assert_eq!((p.level, p.ceiling, p.raised), (1, Some(2), false));
        assert_eq!(w.events.measured(), vec![(Measure::RampLevel, 6.0)]);
        assert!(
            w.events.events().is_empty(),
            "no circuit event: still half-open"
        );
    }

    /// Issue 16: throttles alone make an interval unclean: after a raise, step back.
    #[tokio::test]
    async fn throttles_after_a_raise_step_back() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::answering(&[(0.0, 100.0, 3.0)]),
        );
        let given = RampProgress {
            raised: true,
            evidence: 100,
            ..at(1)
        };
        let out = w.call(&w.state_at(Some(50), given), 2).await.unwrap();
        assert_eq!(
            (out.action, out.maximum_concurrency),
            (RampAction::Step, Some(2))
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::UpdateScaling(Some(2))]);
        assert_eq!((progress(&out).level, progress(&out).ceiling), (0, Some(1)));
    }

    /// Issue 16: a severe rate (at or above the relapse threshold) at a proven level reopens; the
    /// state forgets the ramp so that the next one starts afresh.
    #[tokio::test]
    async fn a_severe_rate_at_a_proven_level_reopens_and_forgets_the_ramp() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(30.0, 40.0),
        );
        let out = w.call(&w.state_at(Some(50), proven(1)), 5).await.unwrap();
        assert_eq!(out.action, RampAction::Reopen);
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(w.events.detail_types(), vec![DetailType::Opened]);
        assert_eq!(w.events.events()[0].detail["reason"], "relapse during ramp");
        assert_eq!(out.state.ramp, None);
        assert_eq!(w.events.measured(), vec![(Measure::RampLevel, 0.0)]);
    }

    /// Issue 16: below a level that failed, `settle_intervals` (5) clean intervals in a row end
    /// the ramp there: `done` with the settled level, which `close` keeps (the mapping stays at
    /// it), naming it and the original in `Circuit Closed`; the record keeps the original.
    #[tokio::test]
    async fn clean_intervals_below_a_ceiling_settle_and_close_keeps_the_settled_level() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(0.0, 100.0),
        );
        let given = RampProgress {
            ceiling: Some(2),
            ..at(1)
        };
        let mut out = w.call(&w.state_at(Some(50), given), 6).await.unwrap();
        let mut holds = 0;
        while out.action == RampAction::Step {
            assert_eq!(out.maximum_concurrency, Some(6));
            holds += 1;
            out = w.after(&out).await.unwrap();
        }
        assert_eq!(holds, 4);
        assert_eq!(
            (out.action, out.maximum_concurrency),
            (RampAction::Done, Some(6))
        );
        assert_eq!(progress(&out).settled, Some(Scaling::Concurrency(Some(6))));
        assert!(w.esm.updates().is_empty(), "holds leave the mapping alone");
        let asked = w.metrics.asked();
        assert_eq!(asked.len(), 5);
        assert!(
            asked.windows(2).all(|p| p[0].1 == p[1].0),
            "each interval judged once, one after the other: {asked:?}"
        );

        let input = json!({ "state": out.state, "executionArn": ME });
        let closed = crate::close::close(input, &w.app(EsmPolicy::default()))
            .await
            .unwrap();
        assert!(closed.closed);
        assert_eq!(w.esm.updates(), vec![EsmCall::Enable(Some(6))]);
        let event = w.events.events().pop().unwrap();
        assert_eq!(event.detail_type, DetailType::Closed);
        assert_eq!(event.detail["settledBelowOriginal"], true);
        assert_eq!(event.detail["settledMaximumConcurrency"], 6);
        assert_eq!(event.detail["originalMaximumConcurrency"], 50);
        let r = w.records.stored().unwrap();
        assert_eq!((r.phase, r.owner), (Phase::Closed, None));
        assert_eq!(r.original.unwrap().maximum_concurrency, Some(50));
        assert_eq!(r.settled, Some(Scaling::Concurrency(Some(6))));
    }

    /// Issue 16: a ramp step retried with the same input (a crash after its
    /// UpdateEventSourceMapping) decides from the same progress: the interval is counted once and
    /// no level is skipped; a retry that decides otherwise leaves the mapping at its level.
    #[tokio::test]
    async fn a_retried_step_decides_from_the_same_progress() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(0.0, 100.0),
        );
        let state = w.state_at(Some(50), proven(1));
        let first = w.call(&state, 3).await.unwrap();
        w.clock.advance_ms(MINUTE);
        let retry = w.call(&state, 3).await.unwrap();
        for out in [&first, &retry] {
            assert_eq!((out.step, out.maximum_concurrency), (4, Some(17)));
            assert_eq!((progress(out).level, progress(out).intervals), (2, 1));
        }
        assert_eq!(w.esm.snapshot().maximum_concurrency, Some(17), "not 50");

        // At the first level: the first attempt raised, the retry sees a mild rate and holds.
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeMetrics::steady(0.0, 100.0),
        );
        let state = w.state_at(Some(50), proven(0));
        let first = w.call(&state, 1).await.unwrap();
        assert_eq!(first.maximum_concurrency, Some(6));
        w.metrics.set(5.0, 100.0, 0.0);
        let retry = w.call(&state, 1).await.unwrap();
        assert_eq!(
            (retry.action, retry.maximum_concurrency),
            (RampAction::Step, Some(2))
        );
        assert_eq!(
            w.esm.updates(),
            vec![
                EsmCall::UpdateScaling(Some(6)),
                EsmCall::UpdateScaling(Some(2))
            ]
        );
        assert_eq!(w.esm.snapshot().maximum_concurrency, Some(2));
    }

    /// Issue 16: a provisioned mapping steps back through its pollers, never a concurrency limit.
    #[tokio::test]
    async fn a_provisioned_ramp_steps_back_through_its_pollers() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Enabled, None).provisioned_pollers(Some(3), Some(15)),
            FakeMetrics::steady(5.0, 100.0),
        );
        w.records = FakeRecords::holding(provisioned(pollers(3, 40)));
        let out = w.call(&w.state_at(None, proven(2)), 3).await.unwrap();
        assert_eq!(
            (
                out.action,
                out.maximum_concurrency,
                out.provisioned_poller_config
            ),
            (RampAction::Step, None, Some(pollers(3, 5)))
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::UpdatePollers(pollers(3, 5))]);
        assert_eq!(w.esm.snapshot().maximum_concurrency, None);
        assert_eq!(w.events.measured(), vec![(Measure::RampLevel, 5.0)]);
    }

    /// Issue 16: a whole ramp from step 0 on a consumer that fails above 6: it climbs to 17,
    /// steps back to 6 and settles there; each level the mapping was set to is measured once.
    #[tokio::test]
    async fn a_ramp_that_fails_above_a_level_settles_there_measuring_each_level_change() {
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, Some(50)),
            FakeMetrics::answering(&[
                (0.0, 100.0, 0.0),
                (0.0, 100.0, 0.0),
                (10.0, 100.0, 0.0),
                (0.0, 100.0, 0.0),
            ]),
        );
        let mut out = w.step(Some(50), 0).await.unwrap();
        let mut seen = vec![out.maximum_concurrency];
        while out.action == RampAction::Step {
            out = w.after(&out).await.unwrap();
            seen.push(out.maximum_concurrency);
        }
        assert_eq!(out.action, RampAction::Done);
        assert_eq!(
            seen,
            [2, 6, 17, 6, 6, 6, 6, 6, 6].map(Some).to_vec(),
            "up, up, back, four holds, settled"
        );
        assert_eq!(
            w.events.measured(),
            [2.0, 6.0, 17.0, 6.0].map(|l| (Measure::RampLevel, l))
        );
    }

    /// Issue 16, recovering as fast as the downstream allows: with the telemetry extension's 10 s
    /// periods a level is looked at as soon as its first period is complete, not after the 60 s
    /// ramp interval. A look with too few invocations changes nothing and waits out the
    /// interval, which is then judged whole; a clean look with enough raises at once (on the
    /// handler before this: every level waited 60 s).
    #[tokio::test]
    async fn a_level_climbed_to_is_looked_at_early_and_raised_on_evidence_of_health() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Disabled, Some(50)),
            FakeMetrics::steady(0.0, 3.0),
        );
        w.env = vec![
            ("CONSUMER_METRIC_RESOLUTION", "high"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "10"),
        ];
        // Step 0 at 166:40 sets 2; its first period 166:40–166:50 is complete at 166:55.025.
        let first = w.step(Some(50), 0).await.unwrap();
        assert_eq!(
            (first.maximum_concurrency, first.wait_seconds),
            (Some(2), 16)
        );
        assert!(progress(&first).early);
        let enabled = w.esm.updates();
        // The look finds 3 invocations, clean: too little to raise on. Nothing changes; the
        // interval since 166:40 is judged at 167:40.
        let look = w.after(&first).await.unwrap();
        assert_eq!(w.metrics.asked(), vec![(T0, T0 + 10_000)]);
        assert_eq!(
            (look.action, look.maximum_concurrency, look.wait_seconds),
            (RampAction::Step, Some(2), 44)
        );
        let waited = progress(&look);
        assert_eq!(
            (
                waited.level,
                waited.early,
                waited.judge_from_ms,
                waited.intervals
            ),
            (0, false, T0, 1)
        );
        assert_eq!(w.esm.updates(), enabled, "the look changes nothing");
        // At 167:40 the whole interval 166:40–167:30 is judged: clean with 100 a period, raise.
        w.metrics.set(0.0, 100.0, 0.0);
        let raised = w.after(&look).await.unwrap();
        assert_eq!(w.metrics.asked()[1], (T0, T0 + 50_000));
        assert_eq!(
            (raised.maximum_concurrency, raised.wait_seconds),
            (Some(6), 16)
        );
        assert!(progress(&raised).early);
        // Its look at 167:56 is clean with 100 invocations: raised at once, and looked at again.
        let next = w.after(&raised).await.unwrap();
        assert_eq!(w.metrics.asked()[2], (T0 + 60_000, T0 + 70_000));
        assert_eq!(
            (next.maximum_concurrency, next.wait_seconds),
            (Some(17), 20),
            "set at 167:56: 168:00–168:10 is complete at 168:15.025"
        );
        assert!(progress(&next).early);
    }

    /// Issue 16: after a ramp settled below the original, the next trip finds the mapping at the
    /// settled level; it must save and restore the original (kept in the record), so its full
    /// ramp climbs to 50 and close restores 50.
    #[tokio::test(start_paused = true)]
    async fn a_trip_after_a_settled_close_restores_the_original_on_its_next_full_ramp() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(0.0, 100.0),
        );
        let settled = RampProgress {
            settled: Some(Scaling::Concurrency(Some(6))),
            ceiling: Some(2),
            ..proven(1)
        };
        let input = json!({ "state": w.state_at(Some(50), settled), "executionArn": ME });
        crate::close::close(input, &w.app(EsmPolicy::default()))
            .await
            .unwrap();
        assert_eq!(w.esm.snapshot().maximum_concurrency, Some(6));

        // The next trip, by another execution.
        const NEXT: &str = "arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-b";
        let trip = json!({ "executionArn": NEXT, "input": {
            "version": "0", "id": "e-2", "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "detail": { "alarmName": "orders-errors", "state": { "value": "ALARM" },
                        "previousState": { "value": "OK" } }
        }});
        let opened = crate::open::open(trip, &w.app(EsmPolicy::default()))
            .await
            .unwrap();
        let state = opened.state.unwrap();
        assert_eq!(state.saved_scaling.maximum_concurrency, Some(50));
        let r = w.records.stored().unwrap();
        assert_eq!(
            (r.original.unwrap().maximum_concurrency, r.settled),
            (Some(50), None)
        );

        let policy = EsmPolicy {
            in_use_base: Duration::from_millis(5),
            ..EsmPolicy::default()
        };
        let mut out = ramp(
            json!({ "state": state, "step": 0, "executionArn": NEXT }),
            &w.app(policy),
        )
        .await
        .unwrap();
        let mut levels = vec![out.maximum_concurrency];
        while out.action == RampAction::Step {
            w.clock.advance_ms(out.wait_seconds * 1000);
            let input = json!({ "state": out.state, "step": out.step, "executionArn": NEXT });
            out = ramp(input, &w.app(policy)).await.unwrap();
            levels.push(out.maximum_concurrency);
        }
        assert_eq!(out.action, RampAction::Done);
        assert_eq!(levels, [2, 6, 17, 50, 50].map(Some).to_vec());
        let input = json!({ "state": out.state, "executionArn": NEXT });
        crate::close::close(input, &w.app(EsmPolicy::default()))
            .await
            .unwrap();
        assert_eq!(w.esm.snapshot().maximum_concurrency, Some(50));
        let r = w.records.stored().unwrap();
        assert_eq!((r.original, r.settled), (None, None));
    }

    #[tokio::test]
    async fn step_zero_enables_at_the_ramp_start_and_announces_half_open() {
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, Some(50)),
            FakeMetrics::steady(0.0, 0.0),
        );
        let out = w.step(Some(50), 0).await.unwrap();
        assert_eq!(
            (
                out.action,
                out.step,
                out.wait_seconds,
                out.maximum_concurrency
            ),
            (RampAction::Step, 1, 170, Some(2))
        );
        // Issue 16: the next step waits until the first interval at this level is complete and
        // published (167–168 min, by 169:30), not a fixed RAMP_INTERVAL_SECONDS.
        assert_eq!(out.state.ramp, Some(RampProgress::start(10_000_000)));
        assert_eq!(
            out.state.history_events - w.charged_before(),
            COSTS.ramp_step,
            "a step pays for the ramp task, its choice and the hold"
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::Enable(Some(2))]);
        assert_eq!(w.events.detail_types(), vec![DetailType::HalfOpen]);
        assert!(w.metrics.asked().is_empty());
        let r = w.records.stored().unwrap();
        assert_eq!(
            (r.phase, r.half_open_at_ms),
            (Phase::HalfOpen, Some(10_000_000))
        );
    }

    /// Issue 12, defect 1 (the harm): on main an execution that lost single flight could still
    /// ramp and throttle the mapping back to the ramp's start after another had closed. Now a
    /// ramp step of an execution that does not own the circuit changes nothing.
    #[tokio::test]
    async fn a_ramp_step_of_an_execution_that_does_not_own_the_circuit_changes_nothing() {
        for step in [0, 1, 2] {
            let mut w = World::new(
                FakeEsm::new(EsmState::Enabled, Some(50)),
                FakeMetrics::steady(9.0, 10.0),
            );
            w.records = FakeRecords::holding(owned_by("arn:someone-else"));
            let err = w.step(Some(50), step).await.unwrap_err();
            assert_eq!(err.error_type(), "NonRetryable", "step {step}: {err}");
            assert!(w.esm.calls().is_empty(), "step {step}: {:?}", w.esm.calls());
            assert!(w.events.events().is_empty());
            assert_eq!(
                w.records.stored().unwrap().owner.as_deref(),
                Some("arn:someone-else")
            );
        }
    }

    #[tokio::test]
    async fn healthy_steps_climb_to_the_original_limit_then_finish() {
        // Issue 16: healthy is now clean, no errors at all (the fixed schedule climbed through
        // 1 error in 100 too; the health-following ramp holds or steps back on it).
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, Some(50)),
            FakeMetrics::steady(0.0, 100.0),
        );
        let mut levels = vec![];
        let mut step = 0;
        let mut state: Option<CircuitState> = None;
        loop {
            let given = state
                .as_ref()
                .map_or(w.charged_before(), |s| s.history_events);
            let out = match &state {
                None => w.step(Some(50), step).await.unwrap(),
                Some(s) => w.call(s, step).await.unwrap(),
            };
            if out.action == RampAction::Done {
                assert_eq!((out.wait_seconds, out.maximum_concurrency), (0, Some(50)));
                assert_eq!(out.state.history_events - given, COSTS.ramp_done);
                break;
            }
            assert_eq!(out.action, RampAction::Step);
            levels.push(out.maximum_concurrency);
            step = out.step;
            w.clock.advance_ms(out.wait_seconds * 1000);
            state = Some(out.state);
        }
        assert_eq!(levels, vec![Some(2), Some(6), Some(17), Some(50)]);
        assert_eq!(w.esm.snapshot().maximum_concurrency, Some(50));
        assert_eq!(
            w.events.measured(),
            [2.0, 6.0, 17.0, 50.0].map(|l| (Measure::RampLevel, l)),
            "each level the ramp set is measured once, when set"
        );
        // Issue 16: ramp began at 10,000,000 ms (166 min 40 s); each step waits until the first
        // period after its level was set is complete (the 30 s timeout and a minute after it
        // ends: 169:30, 172:30, 175:30, 178:30), and judges that interval alone (on the fixed
        // schedule steps came every minute and read every period since the ramp began).
        assert_eq!(
            w.metrics.asked(),
            vec![
                (167 * MINUTE, 168 * MINUTE),
                (170 * MINUTE, 171 * MINUTE),
                (173 * MINUTE, 174 * MINUTE),
                (176 * MINUTE, 177 * MINUTE)
            ],
            "each level, the original's included, is judged on the interval since it was set"
        );
    }

    #[tokio::test]
    async fn ramp_without_an_original_limit_ends_with_no_limit() {
        let w = World::new(
            FakeEsm::new(EsmState::Disabled, None),
            FakeMetrics::steady(0.0, 10.0),
        );
        let mut out = w.step(None, 0).await.unwrap();
        let mut last = None;
        let mut limits = vec![];
        for _ in 0..10 {
            if out.action == RampAction::Done {
                break;
            }
            last = Some(out.maximum_concurrency);
            limits.extend(
                out.maximum_concurrency
                    .map(|l| (Measure::RampLevel, f64::from(l))),
            );
            out = w.after(&out).await.unwrap();
        }
        assert_eq!(last, Some(None));
        assert!(!limits.is_empty());
        assert_eq!(
            w.events.measured(),
            limits,
            "the levels with a limit are measured; the last, without one, is not"
        );
        assert_eq!(w.esm.updates().last(), Some(&EsmCall::UpdateScaling(None)));
        assert_eq!(w.esm.snapshot().maximum_concurrency, None);
    }

    /// The record of a recovery `ME` owns, of a mapping in provisioned mode with `pollers`.
    fn provisioned(pollers: PollerConfig) -> CircuitRecord {
        let mut r = owned_by(ME);
        r.original = Some(OriginalConfig {
            enabled: true,
            maximum_concurrency: None,
            provisioned_poller_config: Some(pollers),
        });
        r
    }

    fn pollers(minimum: u32, maximum: u32) -> PollerConfig {
        PollerConfig {
            minimum_pollers: Some(minimum),
            maximum_pollers: Some(maximum),
        }
    }

    /// Issue 13 item 2: on main, step 0 set `MaximumConcurrency` on a mapping in provisioned
    /// mode, which AWS refuses (the two are mutually exclusive), so the recovery of such a
    /// mapping ended "Stuck Open". Now the ramp goes through `MaximumPollers`, from the smallest
    /// AWS accepts (2) to the original, and never sends a concurrency limit.
    #[tokio::test]
    async fn a_provisioned_mapping_ramps_through_its_maximum_pollers_to_the_original() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Disabled, None).provisioned_pollers(Some(3), Some(40)),
            FakeMetrics::steady(0.0, 10.0),
        );
        w.records = FakeRecords::holding(provisioned(pollers(3, 40)));
        let mut seen = vec![];
        let mut out = w.step(None, 0).await.expect("every ramp step succeeds");
        for _ in 0..10 {
            let now = w.esm.snapshot();
            assert_eq!(now.maximum_concurrency, None, "never a concurrency limit");
            assert_eq!(now.state, EsmState::Enabled);
            if out.action == RampAction::Done {
                break;
            }
            seen.push(now.provisioned_poller_config.unwrap());
            out = w.after(&out).await.expect("every ramp step succeeds");
        }
        assert_eq!(
            seen,
            vec![pollers(2, 2), pollers(3, 5), pollers(3, 15), pollers(3, 40)]
        );
        assert_eq!(w.events.detail_types(), vec![DetailType::HalfOpen]);
        assert_eq!(
            w.events.measured(),
            [2.0, 5.0, 15.0, 40.0].map(|l| (Measure::RampLevel, l)),
            "a provisioned ramp's level is its maximum pollers"
        );
    }

    #[tokio::test]
    async fn a_relapse_on_a_provisioned_ramp_disables_again_and_keeps_the_original_pollers() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Enabled, None).provisioned_pollers(Some(3), Some(5)),
            FakeMetrics::steady(30.0, 40.0),
        );
        w.records = FakeRecords::holding(provisioned(pollers(3, 40)));
        let out = w.step(None, 2).await.unwrap();
        assert_eq!(out.action, RampAction::Reopen);
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(
            w.records
                .stored()
                .unwrap()
                .original
                .unwrap()
                .provisioned_poller_config,
            Some(pollers(3, 40))
        );
        let d = &w.events.events()[0].detail;
        assert_eq!(
            d["provisionedPollerConfig"],
            json!({ "minimumPollers": 3, "maximumPollers": 5 })
        );
    }

    #[tokio::test]
    async fn relapse_during_the_ramp_disables_again_and_reopens() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(6)),
            FakeMetrics::steady(30.0, 40.0),
        );
        let out = w.step(Some(50), 2).await.unwrap();
        assert_eq!(
            (
                out.action,
                out.step,
                out.wait_seconds,
                out.maximum_concurrency
            ),
            (RampAction::Reopen, 2, 0, None)
        );
        assert_eq!(
            out.state.history_events - w.charged_before(),
            COSTS.ramp_reopen
        );
        assert_eq!(
            out.state.saved_scaling.maximum_concurrency,
            Some(50),
            "the original limit is kept for the next close"
        );
        assert_eq!(w.esm.updates(), vec![EsmCall::Disable]);
        assert_eq!(w.esm.snapshot().state, EsmState::Disabled);
        assert_eq!(w.events.detail_types(), vec![DetailType::Opened]);
        assert_eq!(w.events.events()[0].detail["reason"], "relapse during ramp");
        assert_eq!(
            w.events.measured(),
            vec![(Measure::RampLevel, 0.0)],
            "a relapse takes the level to 0"
        );
        assert_eq!(
            out.state.reopened_at_ms,
            Some(10_000_000),
            "the backoff's long-outage clock starts again at the relapse"
        );
    }

    /// Issue 13 item 4: on main a step read the last `RAMP_INTERVAL_SECONDS` up to now, a minute
    /// Lambda has not published yet (and, early in the ramp, the outage's own errors). Now it
    /// reads the complete one-minute periods, on CloudWatch's boundaries, that began at or after
    /// the ramp began and ended at least the publication lag ago (the consumer's timeout, 30 s
    /// here, plus 60 s: `breaker_core::policy::publication_lag_ms`).
    #[tokio::test]
    async fn a_step_judges_the_complete_periods_since_the_ramp_began_after_the_lag() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeMetrics::steady(0.0, 10.0),
        );
        // Ramp began at 9,820,000 ms (163 min 40 s): the first whole period starts at 164 min;
        // at 10,000,000 ms (166 min 40 s) the periods ended by 165 min 10 s are 164–165 min.
        w.step(Some(50), 1).await.unwrap();
        assert_eq!(w.metrics.asked(), vec![(164 * 60_000, 165 * 60_000)]);
        // A later step reads every complete period since then, the earlier ones included.
        w.clock.advance_ms(120_000);
        w.step(Some(50), 2).await.unwrap();
        assert_eq!(w.metrics.asked()[1], (164 * 60_000, 167 * 60_000));
    }

    /// Issue 13 item 4: with no complete period since the ramp began, a step has nothing to
    /// judge: no verdict (on main it read the unpublished minute, or the outage's errors just
    /// before the ramp, and could reopen on them). Issue 16: it holds at its level (the fixed
    /// schedule stepped on to 6).
    #[tokio::test]
    async fn a_step_with_no_complete_period_since_the_ramp_began_gives_no_verdict() {
        let mut w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeMetrics::steady(30.0, 40.0),
        );
        let mut record = owned_by(ME);
        record.half_open_at_ms = Some(10_000_000 - 60_000);
        w.records = FakeRecords::holding(record);
        let out = w.step(Some(50), 1).await.unwrap();
        assert_eq!(
            (out.action, out.maximum_concurrency),
            (RampAction::Step, Some(2))
        );
        assert!(w.esm.updates().is_empty());
        assert!(w.metrics.asked().is_empty(), "{:?}", w.metrics.asked());
        assert!(w.events.events().is_empty());
    }

    #[tokio::test]
    async fn error_rate_below_the_threshold_is_not_a_relapse() {
        // 10 % against the default threshold of 20 % (issue 16 lowered it from 50 %).
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeMetrics::steady(1.0, 10.0),
        );
        assert_eq!(w.step(Some(50), 1).await.unwrap().action, RampAction::Step);
    }

    #[tokio::test]
    async fn raising_the_limit_retries_resource_in_use() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(2)).in_use_for(2),
            FakeMetrics::steady(0.0, 5.0),
        );
        let out = w.step(Some(50), 1).await.unwrap();
        assert_eq!(out.maximum_concurrency, Some(6));
        assert_eq!(w.esm.updates(), vec![EsmCall::UpdateScaling(Some(6)); 3]);
    }

    #[tokio::test]
    async fn step_beyond_the_ramp_or_malformed_input_changes_nothing() {
        let w = World::new(
            FakeEsm::new(EsmState::Enabled, Some(2)),
            FakeMetrics::steady(0.0, 5.0),
        );
        // Issue 16: the bound is the health-following ramp's (31 calls, steps 0–30), no longer
        // one call per level (step 9 was beyond the fixed schedule).
        match w.step(Some(50), 31).await {
            Err(HandlerError::Input(e)) => assert_eq!(e.field, "step"),
            other => panic!("{other:?}"),
        }
        let policy = EsmPolicy::default();
        for (input, field) in [
            (
                json!({ "state": state_json(1, 1, 1, None), "executionArn": ME }),
                "step",
            ),
            (
                json!({ "state": state_json(1, 1, 1, None), "step": "one", "executionArn": ME }),
                "step",
            ),
        ] {
            match ramp(input, &w.app(policy)).await {
                Err(HandlerError::Input(e)) => assert_eq!(e.field, field),
                other => panic!("{other:?}"),
            }
        }
        assert!(
            w.esm.calls().is_empty()
                && w.metrics.asked().is_empty()
                && w.events.events().is_empty()
        );
    }
}
