//! CloudWatch model: the consumer's 1-minute Lambda metrics and one metric alarm on them.
//!
//! Assumptions:
//! - Lambda publishes `Invocations` and `Errors` as 1-minute sums, stamped with the minute the
//!   invocation ended. Probe invocations count like any other (they invoke the consumer).
//! - The alarm is an error-rate alarm with a minimum number of invocations (metric math
//!   `IF(invocations >= min, 100 * errors / invocations, 0)`): a minute with too few
//!   invocations is a non-breaching datapoint, a minute with none is *missing* data.
//! - The alarm is evaluated once per period, `lag` after the period ends (the metric's
//!   publication delay), over the last `evaluation_periods` complete periods; it goes to ALARM
//!   when at least `datapoints_to_alarm` of them breach ("M out of N").
//! - Missing data: `notBreaching`/`breaching` count a missing datapoint as such; `ignore` keeps
//!   the current state when every datapoint is missing; `missing` goes to INSUFFICIENT_DATA then.
//! - `SetAlarmState` changes the state at once; the next evaluation recomputes it from data.
//! - Only changes of state produce an EventBridge event.

use serde::Serialize;

use crate::time::{MINUTE, Millis, SECOND};

/// Per-minute `Invocations` / `Errors` of the consumer.
#[derive(Debug, Default)]
pub struct LambdaMetrics {
    minutes: Vec<(u32, u32)>,
}

impl LambdaMetrics {
    /// Records one invocation that ended at `t`.
    pub fn record(&mut self, t: Millis, error: bool) {
        let m = (t / MINUTE) as usize;
        if self.minutes.len() <= m {
            self.minutes.resize(m + 1, (0, 0));
        }
        self.minutes[m].0 += 1;
        if error {
            self.minutes[m].1 += 1;
        }
    }

    /// `(invocations, errors)` of minute `m`.
    pub fn minute(&self, m: u64) -> (u32, u32) {
        self.minutes.get(m as usize).copied().unwrap_or((0, 0))
    }

    /// `(invocations, errors)` over whole minutes `[from, to)`.
    pub fn sum_minutes(&self, from: u64, to: u64) -> (u32, u32) {
        (from..to)
            .map(|m| self.minute(m))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
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

/// Alarm settings (period fixed at one minute: Lambda's own metrics are 1-minute).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AlarmConfig {
    /// N.
    pub evaluation_periods: u32,
    /// M.
    pub datapoints_to_alarm: u32,
    /// Error rate (percent) at or above which a datapoint breaches.
    pub threshold_percent: f64,
    /// Fewer invocations than this in a minute make a non-breaching datapoint.
    pub min_invocations: u32,
    /// Missing data treatment.
    pub missing: MissingData,
    /// Delay between the end of a period and its evaluation.
    pub lag: Millis,
}

impl AlarmConfig {
    /// The alarm of every standard scenario: 2 of 3 one-minute datapoints at ≥ 10 % errors (a
    /// minute with fewer than 5 invocations does not breach), missing data not breaching,
    /// evaluated 20 s after each period.
    pub const STANDARD: AlarmConfig = AlarmConfig {
        evaluation_periods: 3,
        datapoints_to_alarm: 2,
        threshold_percent: 10.0,
        min_invocations: 5,
        missing: MissingData::NotBreaching,
        lag: 20 * SECOND,
    };
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

    /// The datapoint of minute `m`: `None` when missing, else whether it breaches.
    pub fn datapoint(&self, metrics: &LambdaMetrics, m: u64) -> Option<bool> {
        let (inv, err) = metrics.minute(m);
        if inv == 0 {
            return None;
        }
        if inv < self.config.min_invocations {
            return Some(false);
        }
        Some(100.0 * err as f64 / inv as f64 >= self.config.threshold_percent)
    }

    /// Evaluates at `now` (call it once per minute at `lag` past the minute); returns the new
    /// state when it changed.
    pub fn evaluate(&mut self, now: Millis, metrics: &LambdaMetrics) -> Option<AlarmState> {
        let complete = now.saturating_sub(self.config.lag) / MINUTE;
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
    use crate::time::SECOND;

    const CONFIG: AlarmConfig = AlarmConfig::STANDARD;

    fn minute(metrics: &mut LambdaMetrics, m: u64, invocations: u32, errors: u32) {
        for i in 0..invocations {
            metrics.record(m * MINUTE + i as u64, i < errors);
        }
    }

    fn eval_after(alarm: &mut Alarm, metrics: &LambdaMetrics, m: u64) -> Option<AlarmState> {
        alarm.evaluate((m + 1) * MINUTE + CONFIG.lag, metrics)
    }

    #[test]
    fn two_breaching_minutes_out_of_three_raise_the_alarm() {
        let mut metrics = LambdaMetrics::default();
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
        let mut metrics = LambdaMetrics::default();
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
        let mut metrics = LambdaMetrics::default();
        let mut alarm = Alarm::new(CONFIG);
        for m in 0..3 {
            minute(&mut metrics, m, 4, 4);
        }
        assert_eq!(eval_after(&mut alarm, &metrics, 2), Some(AlarmState::Ok));
    }

    #[test]
    fn missing_data_treatment_decides_silent_minutes() {
        let metrics = LambdaMetrics::default();
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
        let mut metrics = LambdaMetrics::default();
        let mut alarm = Alarm::new(CONFIG);
        for m in 0..3 {
            minute(&mut metrics, m, 10, 10);
        }
        assert_eq!(eval_after(&mut alarm, &metrics, 2), Some(AlarmState::Alarm));
        alarm.set_state(AlarmState::Ok);
        assert_eq!(eval_after(&mut alarm, &metrics, 2), Some(AlarmState::Alarm));
    }
}
