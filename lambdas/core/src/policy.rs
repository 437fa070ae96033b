//! The breaker's decisions that are not tied to one message: the backoff step (wait, stuck,
//! continue-as-new, or a keep-alive pass via [`with_keep_alive`]), single flight among running
//! executions, and ramp relapse.

use crate::config::Config;
use crate::contract::CircuitState;
use crate::history;
use crate::keepalive::{self, KeepAliveStep};
use crate::mapping::MetricResolution;
use crate::ports::{ConsumerStats, RunningExecution};

/// What the backoff step decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffDecision {
    /// Wait this many seconds, then probe.
    Wait(u64),
    /// The circuit has been open for `MAX_OPEN_SECONDS`: stay open, announce it, stop.
    Stuck,
    /// One more cycle could take this execution past its history-event budget: continue as a
    /// new execution.
    Continue,
    /// A keep-alive pass is due ([`with_keep_alive`]): copy the queue, then decide again.
    KeepAlive,
}

/// Decide the backoff step for `state` at `now_ms`. Stuck wins over continue; a wait never
/// overshoots the max open duration by more than a second (so the last probe happens in time).
/// Every loop passes through here (unhealthy probe, `ProbeFailed`, ramp relapse), so this is
/// where an execution continues as new: when the events it has used plus the worst case of one
/// more full cycle ([`history::Budget::cycle_reserve`]) would exceed `HISTORY_EVENT_BUDGET`.
pub fn backoff_decision<R: rand::Rng + ?Sized>(
    state: &CircuitState,
    config: &Config,
    now_ms: u64,
    rng: &mut R,
) -> BackoffDecision {
    let open_ms = now_ms.saturating_sub(state.opened_at_ms);
    if let Some(max) = config.max_open_seconds
        && open_ms >= max.saturating_mul(1000)
    {
        return BackoffDecision::Stuck;
    }
    let budget = history::Budget::of(config);
    if budget.used(state).saturating_add(budget.cycle_reserve()) > budget.limit {
        return BackoffDecision::Continue;
    }
    let mut wait = config
        .backoff
        .next_wait(state.attempt, state.sick_seconds(now_ms), rng);
    if let Some(max) = config.max_open_seconds {
        let remaining = (max.saturating_mul(1000) - open_ms).div_ceil(1000);
        wait = wait.min(remaining.max(crate::backoff::MIN_WAIT_SECONDS));
    }
    BackoffDecision::Wait(wait)
}

/// Keep-alive on top of a backoff decision (`crate::keepalive`): a wait becomes a pass when one
/// is due, or is capped to end by the due time. Stuck and continue-as-new are left alone (the
/// new execution decides on its first turn; a circuit stuck open was given up on by config).
/// `retention_seconds` `None` (the queue did not say) leaves the decision unchanged.
pub fn with_keep_alive(
    decision: BackoffDecision,
    state: &CircuitState,
    retention_seconds: Option<u64>,
    now_ms: u64,
) -> BackoffDecision {
    let (BackoffDecision::Wait(wait), Some(retention)) = (decision, retention_seconds) else {
        return decision;
    };
    match keepalive::step(state.opened_at_ms, state.refreshed_at_ms, retention, now_ms) {
        KeepAliveStep::PassNow => BackoffDecision::KeepAlive,
        KeepAliveStep::DueIn(ms) => BackoffDecision::Wait(keepalive::cap_wait_seconds(wait, ms)),
    }
}

/// The state machine ARN an execution ARN belongs to
/// (`arn:aws:states:r:a:execution:Machine:Name` → `arn:aws:states:r:a:stateMachine:Machine`).
pub fn state_machine_arn(execution_arn: &str) -> Option<String> {
    let parts: Vec<&str> = execution_arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "states",
            region,
            account,
            "execution",
            machine,
            name,
        ] if !machine.is_empty() && !name.is_empty() => Some(format!(
            "arn:{partition}:states:{region}:{account}:stateMachine:{machine}"
        )),
        _ => None,
    }
}

/// Single flight: is `me` the recovery that owns the circuit? The owner is the oldest RUNNING
/// execution by start time, ties broken by ARN. `ignore` (the execution that continued as
/// `me`) is left out. If the listing does not show `me` yet (it is eventually consistent), `me`
/// counts as started at `now_ms`.
pub fn owns_recovery(
    running: &[RunningExecution],
    me: &str,
    ignore: Option<&str>,
    now_ms: u64,
) -> bool {
    let mut candidates: Vec<(u64, &str)> = running
        .iter()
        .filter(|e| Some(e.arn.as_str()) != ignore || e.arn == me)
        .map(|e| (e.start_ms, e.arn.as_str()))
        .collect();
    if !candidates.iter().any(|(_, arn)| *arn == me) {
        candidates.push((now_ms, me));
    }
    candidates
        .into_iter()
        .min()
        .map(|(_, arn)| arn == me)
        .unwrap_or(true)
}

/// The period of Lambda's standard metrics (`Errors`, `Invocations`): "Lambda sends metric data
/// to CloudWatch in 1-minute intervals" (Lambda developer guide, "Using CloudWatch metrics with
/// Lambda").
pub const LAMBDA_METRIC_PERIOD_SECONDS: u64 = 60;

/// How long after the last invocation of a minute ends Lambda's own metrics (`AWS/Lambda`,
/// [`MetricResolution::Standard`]) for that minute are sent: 60 s. Lambda sends its metrics "in
/// 1-minute intervals" (Lambda developer guide, "Using CloudWatch metrics with Lambda"), so an
/// invocation's counts can reach CloudWatch up to one interval after it ends; AWS documents no
/// tighter bound. The minute itself is complete only later ([`publication_lag_ms`]): Lambda stamps
/// each invocation with its start.
pub const STANDARD_PUBLICATION_LAG_MS: u64 = 60_000;

/// The telemetry extension's buffering: the Telemetry API's shortest `timeoutMs` (25 ms, the
/// minimum of the subscription's buffering; `fasttrip-contract`), after which the extension
/// prints the EMF line at once.
pub const TELEMETRY_BUFFER_MS: u64 = 25;

/// EMF log line → high-resolution metric datapoint in CloudWatch: 5 s. AWS documents no bound:
/// Lambda ships the function's (and its extensions') stdout to CloudWatch Logs itself, and
/// CloudWatch Logs extracts the metric. CloudWatch's guidance for alarms on high-resolution EMF
/// metrics is to flush logs every 5 s or less ("to avoid introducing an additional delay, which
/// can cause alarming on partial or missing data"; *Setting alarms on metrics created with the
/// embedded metric format*), and AWS answers put the data "a few seconds" behind. 5 s is the
/// conservative end of "a few seconds".
pub const EMF_INGESTION_MS: u64 = 5_000;

/// How long after a period ends the telemetry extension's high-resolution metrics
/// ([`MetricResolution::High`], `SqsCircuitBreaker/Consumer`) are complete (every
/// `platform.runtimeDone` of the period printed and ingested): [`TELEMETRY_BUFFER_MS`] +
/// [`EMF_INGESTION_MS`] = 5,025 ms. The simulator models the extension's delivery with this value.
pub const EXTENSION_DELIVERY_MS: u64 = TELEMETRY_BUFFER_MS + EMF_INGESTION_MS;

/// How long after a period ends a metric of this resolution is complete, so that the ramp may
/// judge it. The one source of this lag: the ramp handler and the simulator reach it through
/// [`complete_periods`] and [`first_complete_at`].
///
/// - [`MetricResolution::Standard`] (Lambda's `Errors`, `Invocations`): the consumer's timeout
///   plus [`STANDARD_PUBLICATION_LAG_MS`]. Lambda stamps these metrics with the invocation's
///   start: "Note that the timestamp on an error metric reflects when the function was invoked,
///   not when the error occurred." (Lambda developer guide, *Types of metrics for Lambda
///   functions*). An invocation begun at the end of a period may run for
///   `consumer_timeout_seconds` and is sent up to a minute after it ends; a period read sooner
///   may lack its errors, which reads as healthy.
/// - [`MetricResolution::High`] (the telemetry extension's per-second metrics): stamped at
///   `platform.runtimeDone`, the invocation's end, so [`EXTENSION_DELIVERY_MS`] (~5 s) whatever
///   the timeout.
pub const fn publication_lag_ms(
    resolution: MetricResolution,
    consumer_timeout_seconds: u32,
) -> u64 {
    match resolution {
        MetricResolution::Standard => {
            consumer_timeout_seconds as u64 * 1000 + STANDARD_PUBLICATION_LAG_MS
        }
        MetricResolution::High => EXTENSION_DELIVERY_MS,
    }
}

/// The complete metric periods a ramp step may judge, `(start_ms, end_ms)` on CloudWatch's period
/// boundaries (multiples of the period since the epoch, as CloudWatch aligns them): every period
/// that began at or after `ramp_started_ms` (the mapping re-enabled for the ramp: the outage's
/// errors are not counted) and ended at least [`publication_lag_ms`] of `resolution` and
/// `consumer_timeout_seconds` (the consumer's, `CONSUMER_TIMEOUT_SECONDS`) before `now_ms`.
/// `None` while no such period exists: that step gives no verdict, and a later step reads these
/// periods (a relapse is caught one or two steps late).
pub fn complete_periods(
    now_ms: u64,
    ramp_started_ms: u64,
    period_seconds: u64,
    resolution: MetricResolution,
    consumer_timeout_seconds: u32,
) -> Option<(u64, u64)> {
    let period = period_seconds.max(1) * 1000;
    let lag = publication_lag_ms(resolution, consumer_timeout_seconds);
    let start = ramp_started_ms.div_ceil(period) * period;
    let end = now_ms.saturating_sub(lag) / period * period;
    (end > start).then_some((start, end))
}

/// The earliest `now_ms` at which [`complete_periods`] since `from_ms` is not `None`: the end of
/// the first whole period that begins at or after `from_ms`, plus [`publication_lag_ms`] of
/// `resolution` and `consumer_timeout_seconds`. The ramp waits at least until then, so that its
/// next step has an interval to judge.
pub fn first_complete_at(
    from_ms: u64,
    period_seconds: u64,
    resolution: MetricResolution,
    consumer_timeout_seconds: u32,
) -> u64 {
    let period = period_seconds.max(1) * 1000;
    from_ms.div_ceil(period) * period
        + period
        + publication_lag_ms(resolution, consumer_timeout_seconds)
}

/// A ramp step relapsed if the consumer's error rate reached `threshold_percent` (no
/// invocations means no evidence of failure).
pub fn relapsed(stats: ConsumerStats, threshold_percent: f64) -> bool {
    stats.invocations > 0.0 && stats.errors * 100.0 / stats.invocations >= threshold_percent
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::config::tests::minimal_env;
    use crate::contract::{SavedScaling, Trigger};

    const MINUTE: u64 = 60_000;

    const STANDARD: MetricResolution = MetricResolution::Standard;
    const HIGH: MetricResolution = MetricResolution::High;
    /// A consumer's timeout (the simulator's consumer's): a standard minute is complete
    /// T + 60 s = 90 s after it ends.
    const T: u32 = 30;

    #[test]
    fn complete_periods_start_at_the_first_boundary_after_the_ramp_began() {
        // Ramp re-enabled at 10:00:20 (600 min + 20 s); periods of one minute, lag T + 60 s
        // (T = 30 s).
        let began = 600 * MINUTE + 20_000;
        // At 10:02:00 the period 10:01–10:02 has not passed its lag, and 10:00–10:01 began
        // before the ramp: nothing to judge yet.
        assert_eq!(complete_periods(602 * MINUTE, began, 60, STANDARD, T), None);
        // At 10:03:29 still nothing; at 10:03:30 the period 10:01–10:02 is complete.
        assert_eq!(
            complete_periods(603 * MINUTE + 29_999, began, 60, STANDARD, T),
            None
        );
        assert_eq!(
            complete_periods(603 * MINUTE + 30_000, began, 60, STANDARD, T),
            Some((601 * MINUTE, 602 * MINUTE))
        );
        // Later steps read every complete period since the ramp began.
        assert_eq!(
            complete_periods(605 * MINUTE + 30_000, began, 60, STANDARD, T),
            Some((601 * MINUTE, 604 * MINUTE))
        );
    }

    #[test]
    fn complete_periods_on_a_boundary_and_with_short_periods() {
        // A ramp begun exactly on a boundary counts that period.
        assert_eq!(
            complete_periods(602 * MINUTE + 30_000, 600 * MINUTE, 60, STANDARD, T),
            Some((600 * MINUTE, 601 * MINUTE))
        );
        // 10 s periods read from one-minute metrics would still wait the minute's lag.
        let began = 600 * MINUTE + 5_000;
        assert_eq!(
            complete_periods(601 * MINUTE + 45_000, began, 10, STANDARD, T),
            None
        );
        assert_eq!(
            complete_periods(601 * MINUTE + 59_000, began, 10, STANDARD, T),
            Some((600 * MINUTE + 10_000, 600 * MINUTE + 20_000))
        );
        // A clock before the lag never underflows.
        assert_eq!(complete_periods(1_000, 0, 60, STANDARD, T), None);
        assert_eq!(complete_periods(1_000, 0, 10, HIGH, T), None);
    }

    /// The telemetry extension's metrics are complete once its EMF lines are ingested, ~5 s
    /// after the period ends, so a 10 s period can be judged 5,025 ms after it ends, not a
    /// minute later.
    #[test]
    fn high_resolution_periods_are_judged_about_5_s_after_they_end() {
        assert_eq!(publication_lag_ms(HIGH, T), 5_025);
        assert_eq!(
            EXTENSION_DELIVERY_MS,
            TELEMETRY_BUFFER_MS + EMF_INGESTION_MS
        );
        // Ramp re-enabled at 10:00:05: the first whole 10 s period is 10:00:10–10:00:20.
        let began = 600 * MINUTE + 5_000;
        let ends = 600 * MINUTE + 20_000;
        assert_eq!(complete_periods(ends + 5_024, began, 10, HIGH, T), None);
        assert_eq!(
            complete_periods(ends + 5_025, began, 10, HIGH, T),
            Some((600 * MINUTE + 10_000, ends))
        );
        assert_eq!(first_complete_at(began, 10, HIGH, T), ends + 5_025);
        // Later steps read every 10 s period that ended ~5 s ago.
        assert_eq!(
            complete_periods(601 * MINUTE + 6_000, began, 10, HIGH, T),
            Some((600 * MINUTE + 10_000, 601 * MINUTE))
        );
    }

    /// Lambda stamps `Errors`/`Invocations` with the invocation's start ("Note that the timestamp
    /// on an error metric reflects when the function was invoked, not when the error
    /// occurred."): a minute's sums grow until every invocation begun in it has ended, up to the
    /// consumer's timeout T, and are sent within Lambda's one-minute interval after that. The
    /// brief's example: T = 30 s, an invocation starts at 10:00:50 and errors at 10:01:20 (sent
    /// by ~10:02:20); a step at 10:02:00 must not judge 10:00–10:01 (with a 60 s lag it did, and
    /// called it clean). High resolution is stamped at `platform.runtimeDone`, the end: no T.
    #[test]
    fn a_standard_minute_is_complete_a_consumer_timeout_and_a_minute_after_it_ends() {
        assert_eq!(publication_lag_ms(STANDARD, 30), 90_000);
        assert_eq!(publication_lag_ms(STANDARD, 300), 360_000);
        assert_eq!(publication_lag_ms(STANDARD, 795), 855_000);
        assert_eq!(publication_lag_ms(HIGH, 30), EXTENSION_DELIVERY_MS);
        assert_eq!(publication_lag_ms(HIGH, 795), EXTENSION_DELIVERY_MS);

        let began = 600 * MINUTE;
        assert_eq!(
            complete_periods(602 * MINUTE, began, 60, STANDARD, 30),
            None
        );
        assert_eq!(
            complete_periods(602 * MINUTE + 29_999, began, 60, STANDARD, 30),
            None
        );
        assert_eq!(
            complete_periods(602 * MINUTE + 30_000, began, 60, STANDARD, 30),
            Some((600 * MINUTE, 601 * MINUTE))
        );
        assert_eq!(
            first_complete_at(began, 60, STANDARD, 30),
            602 * MINUTE + 30_000
        );
        // T = 300 s: the first minute after a level set at 10:00:20 (10:01–10:02) is complete
        // at 10:02 + 300 s + 60 s = 10:08.
        let set = 600 * MINUTE + 20_000;
        assert_eq!(first_complete_at(set, 60, STANDARD, 300), 608 * MINUTE);
        assert_eq!(
            complete_periods(608 * MINUTE - 1, set, 60, STANDARD, 300),
            None
        );
        // The high-resolution lag ignores T.
        assert_eq!(
            first_complete_at(began + 5_000, 10, HIGH, 795),
            began + 20_000 + 5_025
        );
    }

    #[test]
    fn first_complete_at_is_the_first_moment_complete_periods_has_one() {
        for resolution in [STANDARD, HIGH] {
            for (from, period, timeout) in [
                (600 * MINUTE + 20_000, 60, T),
                (600 * MINUTE, 60, 1),
                (600 * MINUTE + 5_000, 10, 795),
                (0, 1, 300),
            ] {
                let at = first_complete_at(from, period, resolution, timeout);
                assert!(
                    complete_periods(at, from, period, resolution, timeout).is_some(),
                    "{from} {period} {resolution:?} {timeout}"
                );
                assert_eq!(
                    complete_periods(at - 1, from, period, resolution, timeout),
                    None,
                    "{from} {period} {resolution:?} {timeout}"
                );
            }
        }
    }

    fn config(extra: &[(&'static str, &str)]) -> Config {
        let mut env = minimal_env();
        for (k, v) in extra {
            env.insert(k, (*v).to_owned());
        }
        Config::from_lookup(|k| env.get(k).cloned()).unwrap()
    }

    fn state(opened_at_ms: u64, attempt: u32, iteration: u32) -> CircuitState {
        let mut s = CircuitState::opened(
            opened_at_ms,
            SavedScaling {
                maximum_concurrency: None,
            },
            Trigger::Alarm,
        );
        s.attempt = attempt;
        s.iteration = iteration;
        s
    }

    #[test]
    fn backoff_waits_within_the_ceiling_of_the_attempt() {
        let c = config(&[]);
        let mut rng = StdRng::seed_from_u64(3);
        for attempt in 0..12 {
            match backoff_decision(&state(0, attempt, 0), &c, 1_000, &mut rng) {
                BackoffDecision::Wait(w) => {
                    assert!((1..=c.backoff.ceiling(attempt, 1)).contains(&w))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Issue 16: a long outage is probed more rarely (the cap grows to a sixth of the time
    /// sick, up to `BACKOFF_LONG_MAX_SECONDS`), so that it costs the downstream fewer calls than
    /// the 900 s cap did; within the first half hour the 300 s cap stays.
    #[test]
    fn backoff_probes_a_long_outage_more_rarely() {
        let c = config(&[]);
        let mut rng = StdRng::seed_from_u64(3);
        let hour = 3_600_000;
        let waits = |rng: &mut StdRng, open_ms: u64| -> Vec<u64> {
            (0..500)
                .map(
                    |_| match backoff_decision(&state(0, 20, 0), &c, open_ms, rng) {
                        BackoffDecision::Wait(w) => w,
                        other => panic!("{other:?}"),
                    },
                )
                .collect()
        };
        let half_hour = waits(&mut rng, hour / 2);
        assert!(half_hour.iter().all(|w| *w <= 300), "{half_hour:?}");
        let six_hours = waits(&mut rng, 6 * hour);
        assert!(
            six_hours.iter().all(|w| (600..=900).contains(w)),
            "{six_hours:?}"
        );
        // A relapse 5 h in (the downstream was just seen healthy) starts the clock again: 20
        // minutes later the cap is 300 s.
        let mut relapsed = state(0, 20, 0);
        relapsed.reopened_at_ms = Some(5 * hour);
        for _ in 0..500 {
            match backoff_decision(&relapsed, &c, 5 * hour + hour / 3, &mut rng) {
                BackoffDecision::Wait(w) => assert!(w <= 300, "{w}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn backoff_is_stuck_after_max_open_seconds() {
        let c = config(&[("MAX_OPEN_SECONDS", "3600")]);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(
            backoff_decision(&state(0, 3, 0), &c, 3_600_000, &mut rng),
            BackoffDecision::Stuck
        );
        assert!(matches!(
            backoff_decision(&state(0, 3, 0), &c, 3_599_000, &mut rng),
            BackoffDecision::Wait(1)
        ));
    }

    #[test]
    fn backoff_never_gets_stuck_without_max_open_seconds() {
        let c = config(&[]);
        let mut rng = StdRng::seed_from_u64(3);
        let fourteen_days = 14 * 86_400_000;
        assert!(matches!(
            backoff_decision(&state(0, 9_000, 0), &c, fourteen_days, &mut rng),
            BackoffDecision::Wait(_)
        ));
    }

    #[test]
    fn backoff_continues_as_new_before_one_more_cycle_could_pass_the_history_budget() {
        let c = config(&[("HISTORY_EVENT_BUDGET", "5000")]);
        let last_fit = 5_000 - history::Budget::of(&c).cycle_reserve();
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = state(0, 50, 10);
        s.history_events = last_fit + 1;
        assert_eq!(
            backoff_decision(&s, &c, 1, &mut rng),
            BackoffDecision::Continue
        );
        s.history_events = last_fit;
        assert!(matches!(
            backoff_decision(&s, &c, 1, &mut rng),
            BackoffDecision::Wait(_)
        ));
        s.history_events = last_fit + 1;
        let stuck_too = config(&[("HISTORY_EVENT_BUDGET", "5000"), ("MAX_OPEN_SECONDS", "1")]);
        assert_eq!(
            backoff_decision(&s, &stuck_too, 5_000, &mut rng),
            BackoffDecision::Stuck
        );
    }

    const FOUR_DAYS_S: u64 = 4 * 86_400;

    /// Today's failure (issue 12): a circuit open for 5 days on a queue retaining 4 days backs
    /// off and probes, but no decision ever re-sends the queue, so messages expire. With
    /// keep-alive, a pass is due at least every half retention and no wait overshoots it.
    #[test]
    fn five_day_open_circuit_keeps_messages_alive_every_half_retention() {
        let c = config(&[]);
        let mut rng = StdRng::seed_from_u64(5);
        let mut s = state(0, 0, 0);
        let mut now = 0u64;
        let mut passes = Vec::new();
        while now < 5 * 86_400_000 {
            let d = with_keep_alive(
                backoff_decision(&s, &c, now, &mut rng),
                &s,
                Some(FOUR_DAYS_S),
                now,
            );
            match d {
                BackoffDecision::Wait(w) => {
                    now += w * 1000 + 2_000; // the wait, then a probe of ~2 s
                    s.attempt += 1;
                }
                BackoffDecision::KeepAlive => {
                    passes.push(now);
                    s.refreshed_at_ms = Some(crate::rejitter::cutoff_ms(now));
                    now += 60_000;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(passes.len(), 2, "passes at {passes:?}");
        let mut last = 0;
        for p in passes {
            let half = 2 * 86_400_000;
            assert!(
                p >= last + half - 1_000 && p <= last + half + 2_000,
                "pass at {p}"
            );
            last = p;
        }
    }

    #[test]
    fn keep_alive_caps_the_wait_to_the_due_time() {
        let c = config(&[]);
        let mut rng = StdRng::seed_from_u64(3);
        let s = state(0, 10, 0);
        let due = 60_000; // retention 120 s: due at open + 60 s
        for now in [0, 30_000, 59_000] {
            match with_keep_alive(backoff_decision(&s, &c, now, &mut rng), &s, Some(120), now) {
                BackoffDecision::Wait(w) => {
                    assert!((1..=(due - now).div_ceil(1000)).contains(&w), "{now}: {w}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            with_keep_alive(backoff_decision(&s, &c, due, &mut rng), &s, Some(120), due),
            BackoffDecision::KeepAlive
        );
    }

    #[test]
    fn keep_alive_leaves_stuck_continue_and_unknown_retention_alone() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = state(0, 3, 10);
        let budget = config(&[]);
        s.history_events = budget.history_event_budget;
        let late = 10 * 86_400_000;
        assert_eq!(
            with_keep_alive(
                backoff_decision(&s, &budget, late, &mut rng),
                &s,
                Some(60),
                late
            ),
            BackoffDecision::Continue
        );
        let stuck = config(&[("MAX_OPEN_SECONDS", "1")]);
        assert_eq!(
            with_keep_alive(
                backoff_decision(&s, &stuck, late, &mut rng),
                &s,
                Some(60),
                late
            ),
            BackoffDecision::Stuck
        );
        let s = state(0, 3, 0);
        assert_eq!(
            with_keep_alive(BackoffDecision::Wait(900), &s, None, late),
            BackoffDecision::Wait(900)
        );
    }

    #[test]
    fn turns_alone_no_longer_end_an_execution() {
        let c = config(&[]);
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = state(0, 5_000, 5_000);
        s.history_events = history::OPENED;
        assert!(matches!(
            backoff_decision(&s, &c, 1, &mut rng),
            BackoffDecision::Wait(_)
        ));
    }

    #[test]
    fn state_machine_arn_is_derived_from_the_execution_arn() {
        assert_eq!(
            state_machine_arn("arn:aws:states:eu-west-1:123456789012:execution:Breaker:run-1")
                .as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:stateMachine:Breaker")
        );
        assert_eq!(
            state_machine_arn("arn:aws:states:eu-west-1:1:stateMachine:Breaker"),
            None
        );
        assert_eq!(state_machine_arn("nonsense"), None);
    }

    fn exec(arn: &str, start_ms: u64) -> RunningExecution {
        RunningExecution {
            arn: arn.into(),
            start_ms,
        }
    }

    #[test]
    fn oldest_running_execution_owns_the_recovery() {
        let running = [exec("b", 200), exec("a", 100), exec("c", 300)];
        assert!(owns_recovery(&running, "a", None, 1_000));
        assert!(!owns_recovery(&running, "b", None, 1_000));
    }

    #[test]
    fn start_time_ties_are_broken_by_arn() {
        let running = [exec("b", 100), exec("a", 100)];
        assert!(owns_recovery(&running, "a", None, 1_000));
        assert!(!owns_recovery(&running, "b", None, 1_000));
    }

    #[test]
    fn previous_execution_of_a_continue_as_new_is_ignored() {
        let running = [exec("prev", 100), exec("me", 200)];
        assert!(owns_recovery(&running, "me", Some("prev"), 1_000));
        assert!(!owns_recovery(&running, "me", None, 1_000));
    }

    #[test]
    fn execution_missing_from_the_listing_counts_as_newest() {
        assert!(owns_recovery(&[], "me", None, 1_000));
        assert!(!owns_recovery(&[exec("other", 500)], "me", None, 1_000));
    }

    #[test]
    fn relapse_is_an_error_rate_at_or_above_the_threshold() {
        assert!(relapsed(
            ConsumerStats {
                throttles: 0.0,
                errors: 5.0,
                invocations: 10.0
            },
            50.0
        ));
        assert!(!relapsed(
            ConsumerStats {
                throttles: 0.0,
                errors: 4.0,
                invocations: 10.0
            },
            50.0
        ));
        assert!(!relapsed(
            ConsumerStats {
                throttles: 0.0,
                errors: 0.0,
                invocations: 0.0
            },
            50.0
        ));
    }
}
