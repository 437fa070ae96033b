//! CloudWatch model: the consumer's metrics at two resolutions and one metric alarm on them.
//!
//! Assumptions:
//! - Lambda publishes `Invocations` and `Errors` (`AWS/Lambda`) as 1-minute sums, stamped with
//!   the minute the invocation *started*: "Note that the timestamp on an error metric reflects
//!   when the function was invoked, not when the error occurred." (Lambda developer guide,
//!   *Types of metrics for Lambda functions*). An invocation's counts reach CloudWatch
//!   [`LAMBDA_PUBLICATION`] (20 s) after the end of the minute in which it *ended* (Lambda sends
//!   its metrics "in 1-minute intervals"; the same delay as when the model stamped each
//!   invocation with its end, [`LambdaMetrics`]). So a minute's datapoint grows until every
//!   invocation begun in it has ended and been sent: up to the consumer's timeout later. Probe
//!   invocations count like any other (they invoke the consumer).
//! - The breaker's telemetry extension (issue 15, `SqsCircuitBreaker/Consumer`) counts the same
//!   invocations per second of their `platform.runtimeDone` (`StorageResolution` 1, high
//!   resolution); it runs in the consumer's environment, so probe invocations count too.
//! - The alarm is an error-rate alarm with a minimum number of invocations (metric math
//!   `IF(invocations >= min, 100 * errors / invocations, 0)`): a period with too few
//!   invocations is a non-breaching datapoint, a period with none is *missing* data.
//! - The alarm's period is a whole multiple of its metrics' storage resolution; an alarm with a
//!   shorter period than the data (10 s over Lambda's 1-minute metrics) sees only missing data,
//!   which is what CloudWatch does ("it does not receive data for the attempts that do not
//!   correspond to a one-minute data resolution", `PutMetricAlarm` `Period`).
//! - The alarm is evaluated every [`AlarmConfig::evaluation_interval`] (one minute for periods of
//!   a minute or more; every 10 s for the high-resolution periods 10, 20 and 30 s: "If the alarm
//!   period is 10 seconds or 30 seconds, the alarm is evaluated every 10 seconds", CloudWatch
//!   user guide, *Create a CloudWatch alarm based on a static threshold*), `lag` after a period
//!   boundary, over the last `evaluation_periods` periods that ended at least `lag` ago, on the
//!   data published by then; it goes to ALARM when at least `datapoints_to_alarm` of them breach
//!   ("M out of N"). `lag` is the publication delay plus the wait for the next evaluation
//!   ([`AlarmConfig::STANDARD`], [`HIGH_RESOLUTION_LAG`]). A one-minute datapoint read then is
//!   complete only for invocations that ended in that minute: a slow consumer's invocation begun
//!   in it and ended after it is not there yet (it would be read as missing or healthy), as
//!   CloudWatch evaluates the data it has; a later evaluation reads it while the minute is still
//!   among the last `evaluation_periods` (the construct sizes N to hold the consumer's timeout,
//!   [`construct_evaluation_periods`]). The model never shows a datapoint data that is not
//!   published yet.
//! - Missing data: `notBreaching`/`breaching` count a missing datapoint as such; `ignore` keeps
//!   the current state when every datapoint is missing; `missing` goes to INSUFFICIENT_DATA then.
//! - `SetAlarmState` changes the state at once; the next evaluation recomputes it from data.
//! - Only changes of state produce an EventBridge event.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::time::{MINUTE, Millis, SECOND};

/// A 10 s datapoint is complete (every record of it published) this long after it ends: the
/// product's own value, `breaker_core::policy::EXTENSION_DELIVERY_MS` (the Telemetry API's 25 ms
/// buffering + 5 s of EMF ingestion, sourced there), which the product's ramp waits for before
/// it judges a high-resolution period. One number for both.
pub const EXTENSION_DELIVERY: Millis = breaker_core::policy::EXTENSION_DELIVERY_MS;

/// Minute end → Lambda's one-minute metrics of the invocations that *ended* in that minute are in
/// CloudWatch (stamped with the minute each one started, [`LambdaMetrics`]). AWS documents only
/// that Lambda sends them "in 1-minute intervals"; the model takes 20 s, when the one-minute
/// alarm evaluates ([`AlarmConfig::STANDARD`]). The product's ramp waits longer: the consumer's
/// timeout plus 60 s (`breaker_core::policy::publication_lag_ms`).
pub const LAMBDA_PUBLICATION: Millis = 20 * SECOND;

/// How often CloudWatch evaluates a high-resolution alarm (periods of 10, 20 or 30 s).
pub const HIGH_RESOLUTION_EVALUATION: Millis = 10 * SECOND;

/// Period end → the evaluation that first counts that period, for the high-resolution alarm:
/// [`EXTENSION_DELIVERY`] plus, at worst, a whole evaluation interval (CloudWatch's evaluation
/// phase is not documented; the model assumes the evaluation ran just before the datapoint was
/// complete), rounded up to the engine's 1 s clock: 25 ms + 5 s + 10 s → 16 s.
pub const HIGH_RESOLUTION_LAG: Millis =
    (EXTENSION_DELIVERY + HIGH_RESOLUTION_EVALUATION).div_ceil(SECOND) * SECOND;

/// Which metrics an alarm (or a relapse check) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// Lambda's own `AWS/Lambda` metrics: 1-minute sums.
    Standard,
    /// The telemetry extension's `SqsCircuitBreaker/Consumer` metrics: per-second sums.
    High,
}

impl Resolution {
    /// The storage resolution of these metrics.
    pub fn storage(self) -> Millis {
        match self {
            Resolution::Standard => MINUTE,
            Resolution::High => SECOND,
        }
    }
}

/// The consumer's `Invocations` / `Errors`, summed per storage interval.
#[derive(Debug)]
pub struct Metrics {
    resolution: Millis,
    sums: Vec<(u32, u32)>,
}

impl Default for Metrics {
    /// Lambda's own 1-minute metrics.
    fn default() -> Self {
        Self::new(Resolution::Standard)
    }
}

impl Metrics {
    /// Empty metrics of this resolution.
    pub fn new(resolution: Resolution) -> Self {
        Self {
            resolution: resolution.storage(),
            sums: Vec::new(),
        }
    }

    /// The storage resolution (length of one stored datapoint).
    pub fn resolution(&self) -> Millis {
        self.resolution
    }

    /// Records one invocation stamped at `t` (Lambda's metrics: its start; the extension's: its
    /// `platform.runtimeDone`, its end).
    pub fn record(&mut self, t: Millis, error: bool) {
        let i = (t / self.resolution) as usize;
        if self.sums.len() <= i {
            self.sums.resize(i + 1, (0, 0));
        }
        self.sums[i].0 += 1;
        if error {
            self.sums[i].1 += 1;
        }
    }

    /// `(invocations, errors)` of the stored datapoints that start in `[from, to)`.
    pub fn sum(&self, from: Millis, to: Millis) -> (u32, u32) {
        let a = (from.div_ceil(self.resolution) as usize).min(self.sums.len());
        let b = (to.div_ceil(self.resolution) as usize).min(self.sums.len());
        self.sums[a..b.max(a)]
            .iter()
            .fold((0, 0), |s, p| (s.0 + p.0, s.1 + p.1))
    }
}

/// Lambda's own one-minute `Invocations` / `Errors` as CloudWatch holds them: each invocation
/// counted in the minute it *started*, and visible only once published, [`LAMBDA_PUBLICATION`]
/// after the end of the minute in which it *ended*. Readers (the alarm, the ramp) see
/// [`LambdaMetrics::published`]: never a count CloudWatch would not have yet.
#[derive(Debug, Default)]
pub struct LambdaMetrics {
    published: Metrics,
    /// Recorded, not yet published: `(published at, started at, error)`, soonest first.
    pending: BinaryHeap<Reverse<(Millis, Millis, bool)>>,
}

impl LambdaMetrics {
    /// When Lambda's metrics of an invocation that ended at `ended` are in CloudWatch.
    pub fn published_at(ended: Millis) -> Millis {
        (ended / MINUTE + 1) * MINUTE + LAMBDA_PUBLICATION
    }

    /// Records one invocation that started at `started` and ended at `ended`.
    pub fn record(&mut self, started: Millis, ended: Millis, error: bool) {
        debug_assert!(started <= ended);
        self.pending
            .push(Reverse((Self::published_at(ended), started, error)));
    }

    /// The sums CloudWatch holds at `now`: every record published by then.
    pub fn published(&mut self, now: Millis) -> &Metrics {
        while let Some(&Reverse((at, started, error))) = self.pending.peek() {
            if at > now {
                break;
            }
            self.pending.pop();
            self.published.record(started, error);
        }
        &self.published
    }

    /// Invocations started in `[from, to)` whose counts are not published yet.
    pub fn unpublished(&self, from: Millis, to: Millis) -> u32 {
        let n = self
            .pending
            .iter()
            .filter(|Reverse((_, started, _))| (from..to).contains(started))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MissingData {
    /// Missing datapoints are good.
    NotBreaching,
    /// Missing datapoints are bad.
    Breaching,
    /// Keep the current state when all are missing.
    Ignore,
    /// INSUFFICIENT_DATA when all are missing.
    Missing,
}

/// Alarm settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AlarmConfig {
    /// The metrics it reads (`alarmSettings.resolution`).
    pub resolution: Resolution,
    /// Length of one datapoint: a whole multiple of a minute, or 10, 20 or 30 s on
    /// high-resolution metrics.
    pub period: Millis,
    /// N.
    pub evaluation_periods: u32,
    /// M.
    pub datapoints_to_alarm: u32,
    /// Error rate (percent) at or above which a datapoint breaches.
    pub threshold_percent: f64,
    /// Fewer invocations than this in a period make a non-breaching datapoint.
    pub min_invocations: u32,
    /// Missing data treatment.
    pub missing: MissingData,
    /// Delay between the end of a period and the evaluation that first counts it (publication
    /// delay plus the wait for the next evaluation); evaluations run every
    /// [`AlarmConfig::evaluation_interval`] at `lag` past a boundary of that interval.
    pub lag: Millis,
}

/// `alarmSettings.evaluationPeriods` as the construct defaults it for a consumer whose timeout is
/// known (`cdk/src/config.ts`, `defaultEvaluationPeriods`): enough periods to hold two timeouts
/// of one concurrent invocation, `ceil(timeout / period) + 1`, never fewer than the default.
/// Rows: `alarmDefaultExamples` in `cdk/src/limits.json`.
pub fn construct_evaluation_periods(default: u32, period: Millis, timeout: Millis) -> u32 {
    let needed = u32::try_from(timeout.div_ceil(period) + 1).unwrap_or(u32::MAX);
    default.max(needed)
}

/// `alarmSettings.minInvocations` as the construct resolves its default (`cdk/src/config.ts`,
/// `SlowConsumerLimit`): a consumer that times out ends at most `concurrency × period / timeout`
/// invocations per period, so a default above that (at least 1) is lowered to it when the
/// mapping's `MaximumConcurrency` is known.
pub fn construct_min_invocations(
    default: u32,
    maximum_concurrency: Option<u32>,
    period: Millis,
    timeout: Millis,
) -> u32 {
    match maximum_concurrency {
        Some(c) if timeout > 0 => {
            let reachable = (u64::from(c) * period / timeout).max(1);
            u32::try_from(reachable).unwrap_or(u32::MAX).min(default)
        }
        _ => default,
    }
}

impl AlarmConfig {
    /// The alarm of every standard scenario: 2 of 3 one-minute datapoints at ≥ 10 % errors (a
    /// minute with fewer than 5 invocations does not breach), missing data not breaching,
    /// evaluated 20 s after each period.
    pub const STANDARD: AlarmConfig = AlarmConfig {
        resolution: Resolution::Standard,
        period: MINUTE,
        evaluation_periods: 3,
        datapoints_to_alarm: 2,
        threshold_percent: 10.0,
        min_invocations: 5,
        missing: MissingData::NotBreaching,
        lag: LAMBDA_PUBLICATION,
    };

    /// The fast trip (`alarmSettings.resolution: 'high'`): the same threshold, minimum
    /// invocations and missing-data treatment, on the extension's metrics with a period of
    /// `period` (10, 20 or 30 s), `datapoints_to_alarm` of `evaluation_periods` datapoints,
    /// evaluated every 10 s, each period counted [`HIGH_RESOLUTION_LAG`] after it ends.
    pub fn high_resolution(
        self,
        period: Millis,
        evaluation_periods: u32,
        datapoints_to_alarm: u32,
    ) -> AlarmConfig {
        assert!(
            [10, 20, 30].contains(&(period / SECOND)) && period.is_multiple_of(SECOND),
            "a high-resolution alarm period is 10, 20 or 30 s, not {period} ms"
        );
        AlarmConfig {
            resolution: Resolution::High,
            period,
            evaluation_periods,
            datapoints_to_alarm,
            lag: HIGH_RESOLUTION_LAG,
            ..self
        }
    }

    /// How often CloudWatch evaluates the alarm: every 10 s for a period under a minute,
    /// else every minute.
    pub fn evaluation_interval(&self) -> Millis {
        if self.period < MINUTE {
            HIGH_RESOLUTION_EVALUATION
        } else {
            MINUTE
        }
    }

    /// Whether CloudWatch evaluates the alarm at `now` (a multiple of a second).
    pub fn evaluates_at(&self, now: Millis) -> bool {
        let every = self.evaluation_interval();
        now % every == self.lag % every
    }
}

/// Alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlarmState {
    /// OK.
    Ok,
    /// ALARM.
    Alarm,
    /// INSUFFICIENT_DATA.
    InsufficientData,
}

/// A metric alarm.
#[derive(Debug)]
pub struct Alarm {
    /// Settings.
    pub config: AlarmConfig,
    /// Current state.
    pub state: AlarmState,
}

impl Alarm {
    /// A new alarm (AWS starts new alarms in INSUFFICIENT_DATA).
    pub fn new(config: AlarmConfig) -> Self {
        Self {
            config,
            state: AlarmState::InsufficientData,
        }
    }

    /// The datapoint of period `i` (`[i × period, (i + 1) × period)`): `None` when missing,
    /// else whether it breaches. Metrics coarser than the period have no datapoint for it.
    pub fn datapoint(&self, metrics: &Metrics, i: u64) -> Option<bool> {
        let period = self.config.period;
        if !period.is_multiple_of(metrics.resolution()) {
            return None;
        }
        let (inv, err) = metrics.sum(i * period, (i + 1) * period);
        if inv == 0 {
            return None;
        }
        if inv < self.config.min_invocations {
            return Some(false);
        }
        Some(100.0 * err as f64 / inv as f64 >= self.config.threshold_percent)
    }

    /// Evaluates at `now` (call it when [`AlarmConfig::evaluates_at`] says so) on the metrics
    /// of its [`AlarmConfig::resolution`]; returns the new state when it changed.
    pub fn evaluate(&mut self, now: Millis, metrics: &Metrics) -> Option<AlarmState> {
        let complete = now.saturating_sub(self.config.lag) / self.config.period;
        let n = self.config.evaluation_periods as u64;
        let from = complete.saturating_sub(n);
        let points: Vec<Option<bool>> = (from..complete)
            .map(|m| self.datapoint(metrics, m))
            .collect();
        let all_missing = points.iter().all(Option::is_none);
        let breaching = points
            .iter()
            .filter(|p| match (p, self.config.missing) {
                (Some(b), _) => *b,
                (None, MissingData::Breaching) => true,
                (None, _) => false,
            })
            .count() as u32;
        let next = if all_missing && self.config.missing == MissingData::Ignore {
            self.state
        } else if all_missing && self.config.missing == MissingData::Missing {
            AlarmState::InsufficientData
        } else if breaching >= self.config.datapoints_to_alarm {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }

    /// `SetAlarmState`.
    pub fn set_state(&mut self, state: AlarmState) {
        self.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_defaults_follow_the_constructs_rows_in_limits_json() {
        let table: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../cdk/src/limits.json"
        )))
        .expect("limits.json is JSON");
        let rows = table["alarmDefaultExamples"]["rows"]
            .as_array()
            .expect("alarmDefaultExamples.rows");
        assert!(rows.len() >= 5);
        for row in rows {
            let default = if row["resolution"] == "high" {
                10 * SECOND
            } else {
                MINUTE
            };
            let timeout = row["timeoutSeconds"].as_u64().unwrap() * SECOND;
            let concurrency = row["concurrency"].as_u64().map(|c| c as u32);
            let period = default;
            assert_eq!(
                period,
                row["periodSeconds"].as_u64().unwrap() * SECOND,
                "{row}"
            );
            assert_eq!(
                construct_evaluation_periods(3, period, timeout),
                row["evaluationPeriods"].as_u64().unwrap() as u32,
                "{row}"
            );
            assert_eq!(
                construct_min_invocations(5, concurrency, period, timeout),
                row["minInvocations"].as_u64().unwrap() as u32,
                "{row}"
            );
        }
    }
    use crate::time::SECOND;

    const CONFIG: AlarmConfig = AlarmConfig::STANDARD;

    fn minute(metrics: &mut Metrics, m: u64, invocations: u32, errors: u32) {
        for i in 0..invocations {
            metrics.record(m * MINUTE + i as u64, i < errors);
        }
    }

    fn eval_after(alarm: &mut Alarm, metrics: &Metrics, m: u64) -> Option<AlarmState> {
        alarm.evaluate((m + 1) * MINUTE + CONFIG.lag, metrics)
    }

    #[test]
    fn two_breaching_minutes_out_of_three_raise_the_alarm() {
        let mut metrics = Metrics::default();
        let mut alarm = Alarm::new(CONFIG);
        minute(&mut metrics, 0, 10, 0);
        minute(&mut metrics, 1, 10, 5);
        assert_eq!(eval_after(&mut alarm, &metrics, 1), Some(AlarmState::Ok));
        minute(&mut metrics, 2, 10, 0);
        assert_eq!(
            eval_after(&mut alarm, &metrics, 2),
            None,
            "1 of 3 breaching stays OK"
        );
        minute(&mut metrics, 3, 10, 9);
        assert_eq!(eval_after(&mut alarm, &metrics, 3), Some(AlarmState::Alarm));
    }

    #[test]
    fn an_incomplete_minute_is_not_evaluated() {
        let mut metrics = Metrics::default();
        let mut alarm = Alarm::new(CONFIG);
        minute(&mut metrics, 0, 10, 10);
        minute(&mut metrics, 1, 10, 10);
        assert_eq!(
            alarm.evaluate(2 * MINUTE + 10 * SECOND, &metrics),
            Some(AlarmState::Ok)
        );
        assert_eq!(
            alarm.evaluate(2 * MINUTE + CONFIG.lag, &metrics),
            Some(AlarmState::Alarm)
        );
    }

    #[test]
    fn too_few_invocations_never_breach_so_probes_cannot_hold_the_alarm() {
        let mut metrics = Metrics::default();
        let mut alarm = Alarm::new(CONFIG);
        for m in 0..3 {
            minute(&mut metrics, m, 4, 4);
        }
        assert_eq!(eval_after(&mut alarm, &metrics, 2), Some(AlarmState::Ok));
    }

    #[test]
    fn missing_data_treatment_decides_silent_minutes() {
        let metrics = Metrics::default();
        let cases = [
            (MissingData::NotBreaching, Some(AlarmState::Ok)),
            (MissingData::Breaching, Some(AlarmState::Alarm)),
            (MissingData::Ignore, None),
            (MissingData::Missing, None),
        ];
        for (missing, expected) in cases {
            let mut alarm = Alarm::new(AlarmConfig { missing, ..CONFIG });
            assert_eq!(eval_after(&mut alarm, &metrics, 5), expected, "{missing:?}");
        }
        let mut alarm = Alarm::new(AlarmConfig {
            missing: MissingData::Ignore,
            ..CONFIG
        });
        alarm.set_state(AlarmState::Alarm);
        assert_eq!(
            eval_after(&mut alarm, &metrics, 5),
            None,
            "ignore keeps ALARM"
        );
    }

    #[test]
    fn set_state_ok_is_undone_by_the_next_evaluation_while_still_breaching() {
        let mut metrics = Metrics::default();
        let mut alarm = Alarm::new(CONFIG);
        for m in 0..3 {
            minute(&mut metrics, m, 10, 10);
        }
        assert_eq!(eval_after(&mut alarm, &metrics, 2), Some(AlarmState::Alarm));
        alarm.set_state(AlarmState::Ok);
        assert_eq!(eval_after(&mut alarm, &metrics, 2), Some(AlarmState::Alarm));
    }

    const FAST: AlarmConfig = AlarmConfig {
        resolution: Resolution::High,
        period: 10 * SECOND,
        lag: HIGH_RESOLUTION_LAG,
        ..CONFIG
    };

    #[test]
    fn the_standard_alarm_is_evaluated_once_a_minute_and_the_fast_one_every_10_s() {
        let at: Vec<Millis> = (0..120)
            .map(|s| s * SECOND)
            .filter(|t| CONFIG.evaluates_at(*t))
            .collect();
        assert_eq!(at, vec![20 * SECOND, 80 * SECOND]);
        let at: Vec<Millis> = (0..40)
            .map(|s| s * SECOND)
            .filter(|t| FAST.evaluates_at(*t))
            .collect();
        assert_eq!(at, vec![6 * SECOND, 16 * SECOND, 26 * SECOND, 36 * SECOND]);
        assert_eq!(
            CONFIG.high_resolution(10 * SECOND, 3, 2),
            FAST,
            "same threshold, minimum and missing-data treatment"
        );
    }

    #[test]
    fn the_delivery_delay_is_the_telemetry_buffer_plus_ingestion_and_one_evaluation() {
        assert_eq!(EXTENSION_DELIVERY, 5_025);
        assert_eq!(HIGH_RESOLUTION_LAG, 16 * SECOND);
    }

    #[test]
    fn per_second_metrics_sum_into_any_whole_period() {
        let mut metrics = Metrics::new(Resolution::High);
        metrics.record(9_999, true);
        metrics.record(10_000, false);
        metrics.record(59_000, true);
        metrics.record(61_000, false);
        assert_eq!(metrics.sum(0, 10 * SECOND), (1, 1));
        assert_eq!(metrics.sum(10 * SECOND, 20 * SECOND), (1, 0));
        assert_eq!(metrics.sum(0, MINUTE), (3, 2));
        assert_eq!(metrics.sum(MINUTE, 2 * MINUTE), (1, 0));
        assert_eq!(metrics.sum(5 * MINUTE, 6 * MINUTE), (0, 0));
    }

    #[test]
    fn two_breaching_10_s_datapoints_of_three_trip_the_fast_alarm_once_delivered() {
        let mut metrics = Metrics::new(Resolution::High);
        let mut alarm = Alarm::new(FAST);
        // Healthy until 600 s, then every invocation fails (2 a second).
        for t in (540..640).map(|s| s * SECOND) {
            metrics.record(t, t >= 600 * SECOND);
            metrics.record(t + 500, t >= 600 * SECOND);
        }
        // [600, 610) and [610, 620) breach; the second is counted 16 s after it ends.
        let mut tripped = None;
        for t in (600..660)
            .map(|s| s * SECOND)
            .filter(|t| FAST.evaluates_at(*t))
        {
            if alarm.evaluate(t, &metrics) == Some(AlarmState::Alarm) {
                tripped = Some(t);
                break;
            }
        }
        assert_eq!(tripped, Some(636 * SECOND));
        // The same data in Lambda's 1-minute metrics trips the standard alarm only at 2:20 past.
        let mut minutes = Metrics::default();
        for t in (540..720).map(|s| s * SECOND) {
            minutes.record(t, t >= 600 * SECOND);
        }
        let mut standard = Alarm::new(CONFIG);
        let first = (600..800)
            .map(|s| s * SECOND)
            .filter(|t| CONFIG.evaluates_at(*t))
            .find(|t| standard.evaluate(*t, &minutes) == Some(AlarmState::Alarm));
        assert_eq!(first, Some(740 * SECOND));
    }

    #[test]
    fn a_10_s_alarm_on_one_minute_metrics_sees_only_missing_data() {
        let mut minutes = Metrics::default();
        for t in (0..120).map(|s| s * SECOND) {
            minutes.record(t, true);
        }
        let mut alarm = Alarm::new(AlarmConfig {
            missing: MissingData::Missing,
            ..FAST
        });
        alarm.set_state(AlarmState::Ok);
        assert_eq!(
            alarm.evaluate(96 * SECOND, &minutes),
            Some(AlarmState::InsufficientData)
        );
        let mut alarm = Alarm::new(FAST);
        assert_eq!(alarm.evaluate(96 * SECOND, &minutes), Some(AlarmState::Ok));
    }
}
