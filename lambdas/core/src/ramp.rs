//! The half-open ramp: after a healthy probe the ESM is re-enabled with a small
//! `MaximumConcurrency` that is raised step by step to the original setting.
//!
//! A mapping in provisioned mode (`ProvisionedPollerConfig`) cannot take a `MaximumConcurrency`:
//! AWS documents the two as mutually exclusive on an SQS mapping. Its ramp goes through
//! `MaximumPollers` instead ([`Ramp::poller_schedule`]): from the poller count that carries the
//! ramp's start concurrency (each poller runs up to [`INVOCATIONS_PER_POLLER`] invocations at
//! once), at least the 2 AWS accepts, up to the original, whose configuration is the last level.
//!
//! How the ramp moves along those levels is [`Follow::decide`] (issue 16: a ramp that follows
//! health): after each complete interval at the current level it steps up when the interval was
//! clean (no errors, no throttles), steps back one level when a raise brought errors or a mild
//! error rate shows at a level already proven, and reopens only on a severe error rate (the
//! relapse threshold) at a proven level. After a step back it settles: the levels at and above
//! the one that failed are not tried again in this ramp, and after [`Follow::settle_intervals`]
//! clean intervals at the settled level the ramp ends there ([`Move::Settle`]) instead of
//! restoring the original. Every ramp ends within [`Follow::max_intervals`] plus twice the
//! number of levels.
//!
//! While no level has failed, each level the ramp climbs to gets an early look ([`Timing`],
//! [`Progress::early`]): the next call comes as soon as the first metric period at the level is
//! complete, not after the whole ramp interval, and raises (or closes at the top) if that
//! interval is clean with at least [`Follow::min_evidence`] invocations. Anything else is no
//! verdict yet ([`Move::Wait`]): the ramp waits out the interval since the level was set and
//! judges all of it, as without the look. Only evidence of health speeds the ramp up; errors are
//! still judged over the whole interval (a short one is noisy near the severe rate).
//!
//! A level only limits the consumer while the consumer fills it: when a step would raise from a
//! level the consumer did not fill (nothing visible on the queue, under half the level's room in
//! flight: [`Demand`]), the ramp closes instead ([`Follow::close_if_unlimited`]): the rest of the
//! backlog comes back at the pace of its re-jitter delays whatever the limit, so the levels above
//! would add no steady load.

use serde::{Deserialize, Serialize};

use crate::policy;
use crate::ports::{ConsumerStats, PollerConfig, Scaling};

/// Smallest `MaximumConcurrency` SQS event-source mappings accept.
pub const MIN_MAXIMUM_CONCURRENCY: u32 = 2;
/// Largest `MaximumConcurrency` SQS event-source mappings accept.
pub const MAX_MAXIMUM_CONCURRENCY: u32 = 1000;
/// Smallest `MinimumPollers` and `MaximumPollers` an SQS mapping in provisioned mode accepts.
pub const MIN_POLLERS: u32 = 2;
/// `MinimumPollers` of an SQS mapping that does not set it.
pub const DEFAULT_MINIMUM_POLLERS: u32 = 2;
/// `MaximumPollers` of an SQS mapping that does not set it.
pub const DEFAULT_MAXIMUM_POLLERS: u32 = 200;
/// Concurrent invocations one SQS event poller in provisioned mode runs at most.
pub const INVOCATIONS_PER_POLLER: u32 = 10;

/// Ramp policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ramp {
    /// First `MaximumConcurrency` after re-enabling (≥ 2).
    pub start: u32,
    /// Number of raises after the start level; the last one reaches the target.
    pub steps: u32,
}

/// One level of the ramp: a concurrency limit, or `None` for "no limit" (the ESM had none).
pub type Level = Option<u32>;

impl Ramp {
    /// The levels from the start to `target` (the ESM's original `MaximumConcurrency`, `None`
    /// when it had no limit), geometric in between and never decreasing.
    ///
    /// With no original limit the intermediate levels grow towards the API maximum (1000) and
    /// the last level removes the limit. With a target at or below the start level the ramp is
    /// just the target.
    pub fn schedule(&self, target: Level) -> Vec<Level> {
        let start = self
            .start
            .clamp(MIN_MAXIMUM_CONCURRENCY, MAX_MAXIMUM_CONCURRENCY);
        let top = target.unwrap_or(MAX_MAXIMUM_CONCURRENCY);
        let mut levels: Vec<Level> = climb(start, top, self.steps)
            .into_iter()
            .map(Some)
            .collect();
        if levels.last() != Some(&target) {
            levels.push(target);
        }
        levels
    }

    /// The levels of a mapping in provisioned mode whose original poller configuration is
    /// `original`: `MaximumPollers` climbs geometrically from the start (the ramp's start
    /// concurrency in pollers, rounded up, at least [`MIN_POLLERS`]) to the original maximum,
    /// with `MinimumPollers` the original minimum or the level's maximum if that is lower (AWS
    /// keeps the minimum at or below the maximum). The last level is the original with the
    /// fields it leaves out at their documented defaults ([`PollerConfig::effective`]), so
    /// that whatever the ramp set is replaced. With an original maximum at or below the start
    /// the ramp is just the original.
    pub fn poller_schedule(&self, original: PollerConfig) -> Vec<PollerConfig> {
        let target = original.effective();
        let (minimum, top) = (
            target.minimum_pollers.unwrap_or(DEFAULT_MINIMUM_POLLERS),
            target.maximum_pollers.unwrap_or(DEFAULT_MAXIMUM_POLLERS),
        );
        let start = self.start.div_ceil(INVOCATIONS_PER_POLLER).max(MIN_POLLERS);
        let mut levels: Vec<PollerConfig> = climb(start, top, self.steps)
            .into_iter()
            .map(|maximum| PollerConfig {
                minimum_pollers: Some(minimum.min(maximum)),
                maximum_pollers: Some(maximum),
            })
            .collect();
        if levels.last() != Some(&target) {
            levels.push(target);
        }
        levels
    }

    /// The levels for a mapping found with `maximum_concurrency`, or in provisioned mode with
    /// `pollers`: [`Self::poller_schedule`] when it has pollers, else [`Self::schedule`].
    pub fn levels(
        &self,
        maximum_concurrency: Level,
        pollers: Option<PollerConfig>,
    ) -> Vec<Scaling> {
        match pollers {
            Some(p) => self
                .poller_schedule(p)
                .into_iter()
                .map(Scaling::Pollers)
                .collect(),
            None => self
                .schedule(maximum_concurrency)
                .into_iter()
                .map(Scaling::Concurrency)
                .collect(),
        }
    }
}

/// What one complete interval at the ramp's current level showed (sums over the interval).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalHealth {
    /// The consumer's invocations.
    pub invocations: f64,
    /// The consumer's errors.
    pub errors: f64,
    /// The consumer's throttles.
    pub throttles: f64,
}

impl From<ConsumerStats> for IntervalHealth {
    fn from(s: ConsumerStats) -> Self {
        Self {
            invocations: s.invocations,
            errors: s.errors,
            throttles: s.throttles,
        }
    }
}

impl IntervalHealth {
    /// No errors and no throttles (no invocations at all is clean too: no evidence of failure).
    pub fn clean(&self) -> bool {
        self.errors <= 0.0 && self.throttles <= 0.0
    }
}

/// Tunables of the health-following ramp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// An error rate (percent of invocations) at or above this at a proven level is a relapse:
    /// the ramp reopens the circuit.
    pub relapse_percent: f64,
    /// Clean intervals in a row at the level the ramp stepped back to before it ends there.
    pub settle_intervals: u32,
    /// Intervals after which a ramp that holds (settling, or a mild error rate at the start
    /// level) ends: settled if the last interval was clean, reopened otherwise.
    pub max_intervals: u32,
    /// Invocations a clean interval needs to prove its level: a raise from a level proven by
    /// fewer (a quiet interval) that then fails severely reopens instead of stepping back, as
    /// nothing shows that the level below carries the load.
    pub min_evidence: f64,
}

/// [`Follow::settle_intervals`] by default: five intervals (five minutes at the default 60 s).
pub const DEFAULT_SETTLE_INTERVALS: u32 = 5;
/// [`Follow::max_intervals`] by default: thirty intervals (half an hour at the default 60 s).
pub const DEFAULT_MAX_INTERVALS: u32 = 30;
/// [`Follow::min_evidence`] by default: ten invocations.
pub const DEFAULT_MIN_EVIDENCE: f64 = 10.0;

/// Where a health-following ramp stands between intervals (it travels with the ramp's state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Index of the current level in the ramp's levels.
    pub level: usize,
    /// The lowest level that failed in this ramp, if one did: never tried again.
    pub ceiling: Option<usize>,
    /// The current level was entered by a raise and has not been judged yet.
    pub raised: bool,
    /// Clean intervals in a row at the current level.
    pub healthy: u32,
    /// Intervals judged so far.
    pub intervals: u32,
    /// Invocations of the clean interval that raised to the current level (what proved the
    /// level below), 0 at the start.
    #[serde(default)]
    pub evidence: f64,
    /// The next call is the early look at the current level ([`Timing::after_set`]): it acts
    /// only on a clean interval with at least [`Follow::min_evidence`] invocations, and otherwise
    /// waits out the ramp interval since the level was set ([`Move::Wait`]).
    #[serde(default)]
    pub early: bool,
}

/// What the ramp does after an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Move {
    /// Raise to the next level ([`Progress::level`] is already the new one).
    StepUp,
    /// Stay at this level for another interval.
    Hold,
    /// The early look at this level showed too little to raise on: no verdict, nothing
    /// changes, and the interval since the level was set is judged whole once the ramp interval
    /// has passed ([`Timing::after_wait`]).
    Wait,
    /// Lower to the previous level ([`Progress::level`] is already the new one).
    StepBack,
    /// A relapse: disable the mapping and go back to backoff.
    Reopen,
    /// The last level (the original configuration) was clean: close as usual.
    Close,
    /// The ramp settled below a level that failed: close at the current level, below the
    /// original (the operator is told: the circuit closed below its configuration).
    Settle,
}

impl Default for Follow {
    fn default() -> Self {
        Follow {
            relapse_percent: crate::config::defaults::RELAPSE_ERROR_RATE_PERCENT,
            settle_intervals: DEFAULT_SETTLE_INTERVALS,
            max_intervals: DEFAULT_MAX_INTERVALS,
            min_evidence: DEFAULT_MIN_EVIDENCE,
        }
    }
}

impl Follow {
    /// The move after one complete interval whose health is `h`, at `p.level` of a ramp whose
    /// last level (the original configuration) is `top`, and the progress after it.
    ///
    /// - Not clean, at a level just raised from a level proven by at least
    ///   [`Follow::min_evidence`] invocations: step back (the level below carried the load; the
    ///   raise is the likeliest cause, even of a severe rate); the failed level becomes the
    ///   ceiling. Raised on less evidence, a severe rate reopens.
    /// - Not clean at a proven level: a severe rate ([`policy::relapsed`] at
    ///   [`Follow::relapse_percent`]) reopens; a mild one steps back, or holds at the first
    ///   level (reopening once [`Follow::max_intervals`] have passed).
    /// - Clean with no ceiling: step up, or close at the top.
    /// - Clean below a ceiling: hold until [`Follow::settle_intervals`] clean intervals in a row
    ///   (or [`Follow::max_intervals`] in all), then settle.
    ///
    /// It terminates: a step up needs no ceiling and a step back sets or lowers it, so there are
    /// at most `top` of each; every hold counts towards `max_intervals`, after which a hold
    /// becomes a settle or a reopen.
    pub fn decide(&self, p: Progress, top: usize, h: IntervalHealth) -> (Move, Progress) {
        let mut n = p;
        n.intervals = p.intervals.saturating_add(1);
        let over = n.intervals >= self.max_intervals;
        if !h.clean() {
            n.healthy = 0;
            let severe = policy::relapsed(
                ConsumerStats {
                    errors: h.errors,
                    invocations: h.invocations,
                    throttles: h.throttles,
                },
                self.relapse_percent,
            );
            let proven_below = p.raised && p.evidence >= self.min_evidence;
            if p.level > 0 && (proven_below || !severe) {
                n.ceiling = Some(p.ceiling.map_or(p.level, |c| c.min(p.level)));
                n.level = p.level - 1;
                n.raised = false;
                return (Move::StepBack, n);
            }
            if severe || over {
                return (Move::Reopen, n);
            }
            n.raised = false;
            return (Move::Hold, n);
        }
        n.healthy = p.healthy.saturating_add(1);
        n.raised = false;
        match p.ceiling {
            None if p.level < top => {
                n.level = p.level + 1;
                n.raised = true;
                n.healthy = 0;
                n.evidence = h.invocations;
                (Move::StepUp, n)
            }
            None => (Move::Close, n),
            Some(_) if n.healthy >= self.settle_intervals || over => (Move::Settle, n),
            Some(_) => (Move::Hold, n),
        }
    }
}

impl Follow {
    /// The move when a step finds no complete interval to judge at its level (the metrics of the
    /// time since the level was set, or since the last interval judged, are not all published
    /// yet): hold, counting the step towards [`Follow::max_intervals`] like any other, so that
    /// every step of a ramp counts and the ramp's length stays bounded ([`Follow::max_calls`]).
    /// Past the bound it ends on what the last judged interval showed: clean (`healthy` > 0)
    /// closes at the top or settles below it; otherwise it reopens.
    pub fn wait(&self, p: Progress, top: usize) -> (Move, Progress) {
        let mut n = p;
        n.intervals = p.intervals.saturating_add(1);
        if n.intervals < self.max_intervals {
            return (Move::Hold, n);
        }
        match (p.healthy > 0, p.level >= top) {
            (true, true) => (Move::Close, n),
            (true, false) => (Move::Settle, n),
            (false, _) => (Move::Reopen, n),
        }
    }

    /// The most `ramp` calls one ramp of `levels` levels makes, the one that sets the first level
    /// included: one per level and one more (as the fixed schedule made), or
    /// [`Follow::max_intervals`] and one more if that is larger. The workflow's history budget
    /// reserves this many (`crate::history`); [`Follow::next`] ends the ramp at the last of them.
    pub fn max_calls(&self, levels: usize) -> u32 {
        let levels = u32::try_from(levels).unwrap_or(u32::MAX);
        levels.max(self.max_intervals).saturating_add(1)
    }

    /// Whether a ramp of `levels` levels gets early looks ([`Progress::early`]): when a look and
    /// a verdict at every level fit [`Follow::max_intervals`] (an early look counts as an
    /// interval), so that the looks never bring the ramp's bound ([`Follow::max_calls`]) closer
    /// and the history budget stays as it was: up to 15 levels by default (`RAMP_STEPS` ≤ 14).
    pub fn looks(&self, levels: usize) -> bool {
        levels.saturating_mul(2) <= self.max_intervals as usize
    }

    /// The move of one `ramp` call after the first: [`Follow::decide`] on the interval's health
    /// `h`, or [`Follow::wait`] when there was no complete interval to judge (`None`). On the
    /// ramp's `last` call ([`Follow::max_calls`]) a move that would go on ends the ramp on what
    /// this call saw: not clean (or, with nothing judged, no clean interval last) reopens; clean
    /// with no level failed closes (the original is restored, as the fixed schedule did); clean
    /// below a level that failed settles at the current level.
    ///
    /// An early look ([`Progress::early`]) decides only on a clean interval with at least
    /// [`Follow::min_evidence`] invocations (a raise, or a close at the top); with less it is
    /// [`Move::Wait`], which counts towards [`Follow::max_intervals`] like a hold but changes
    /// nothing else, unless it is the last call.
    pub fn next(
        &self,
        p: Progress,
        top: usize,
        h: Option<IntervalHealth>,
        last: bool,
    ) -> (Move, Progress) {
        let mut p = p;
        if std::mem::take(&mut p.early) {
            let proves = h.is_some_and(|h| h.clean() && h.invocations >= self.min_evidence);
            if !proves && !last {
                p.intervals = p.intervals.saturating_add(1);
                return (Move::Wait, p);
            }
        }
        let (m, mut n) = match h {
            Some(h) => self.decide(p, top, h),
            None => self.wait(p, top),
        };
        if !last || matches!(m, Move::Close | Move::Reopen | Move::Settle) {
            return (m, n);
        }
        let clean = h.map_or(p.healthy > 0, |h| h.clean());
        n.level = p.level;
        n.raised = false;
        let m = match (clean, p.ceiling) {
            (false, _) => Move::Reopen,
            (true, None) => Move::Close,
            (true, Some(_)) => Move::Settle,
        };
        (m, n)
    }
}

/// What a step reads before it raises a level: whether the consumer fills the level it runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// `ApproximateNumberOfMessages`: messages waiting visible.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: messages received and not yet deleted.
    pub in_flight: u64,
    /// The most messages the current level holds in flight ([`Demand::room`]).
    pub room: u64,
}

impl Demand {
    /// The messages a level holds in flight at most: its concurrent invocations
    /// (`MaximumConcurrency`, or `MaximumPollers` × [`INVOCATIONS_PER_POLLER`] in provisioned
    /// mode) times the mapping's `BatchSize`; `None` for a level without a limit.
    pub fn room(level: Scaling, batch_size: u32) -> Option<u64> {
        let invocations = match level {
            Scaling::Concurrency(limit) => limit?,
            Scaling::Pollers(pollers) => pollers
                .effective()
                .maximum_pollers?
                .saturating_mul(INVOCATIONS_PER_POLLER),
        };
        Some(u64::from(invocations) * u64::from(batch_size))
    }

    /// Whether the level may be what holds the consumer back: messages wait visible, or at least
    /// half of the level's room is in flight (a level that busy may be near its limit, and a
    /// higher one would let bursts through at more concurrency).
    pub fn fills_level(&self) -> bool {
        self.visible > 0 || self.in_flight.saturating_mul(2) >= self.room
    }
}

impl Follow {
    /// Issue 16: a raise the consumer does not need is skipped. [`Move::StepUp`] after a clean
    /// interval at a level the consumer does not fill ([`Demand::fills_level`] false: nothing
    /// visible on the queue and less than half of the level's room in flight, so the consumer
    /// takes every message as soon as it can be received) becomes [`Move::Close`] at that level:
    /// the original configuration is restored now instead of one level per interval. Raising a
    /// limit the consumer does not reach adds no steady load on the downstream: the re-jittered
    /// copies still come back at the pace of their delays, and new messages at the producers'
    /// pace, while the alarm, armed again by the close, guards the rest. Any other move, or a
    /// level the consumer fills, is left as it is.
    pub fn close_if_unlimited(&self, m: Move, n: Progress, demand: Demand) -> (Move, Progress) {
        if m != Move::StepUp || demand.fills_level() {
            return (m, n);
        }
        let closed = Progress {
            level: n.level.saturating_sub(1),
            raised: false,
            early: false,
            healthy: 1,
            ..n
        };
        (Move::Close, closed)
    }
}

/// When the ramp's calls come: the ramp interval (`RAMP_INTERVAL_SECONDS`) and the consumer's
/// metrics the ramp judges (the alarm's period and resolution, and with the consumer's timeout
/// how long after a period ends it is complete: [`policy::first_complete_at`]). Every wait is in
/// whole seconds, at least 1 (a Step Functions wait of 0 would spin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The ramp interval, seconds.
    pub interval_seconds: u64,
    /// The consumer metric's period, seconds.
    pub period_seconds: u64,
    /// The consumer metric's resolution.
    pub resolution: crate::mapping::MetricResolution,
    /// The consumer's timeout, seconds (`CONSUMER_TIMEOUT_SECONDS`): Lambda's one-minute metrics
    /// are complete only this long plus a minute after their period
    /// ([`policy::publication_lag_ms`]).
    pub consumer_timeout_seconds: u32,
}

impl Timing {
    /// After a level was set at `set_ms` (the ramp's first, a raise or a step back): the wait
    /// from `now_ms` until the next call, and whether that call is an early look
    /// ([`Progress::early`]). A level climbed to with no level failed (`climbing`) is looked at
    /// as soon as its first period is complete, when that is before the ramp interval has
    /// passed (with the telemetry extension's 10 s periods: ~16–25 s instead of 60 s); otherwise
    /// the call comes after the ramp interval, and no sooner than that period is complete.
    pub fn after_set(&self, set_ms: u64, now_ms: u64, climbing: bool) -> (u64, bool) {
        let ready = self.first_complete_at(set_ms);
        let full = set_ms.saturating_add(self.interval_seconds.saturating_mul(1000));
        if climbing && ready < full {
            return (seconds_until(ready, now_ms), true);
        }
        (seconds_until(ready.max(full), now_ms), false)
    }

    /// [`policy::first_complete_at`] of these metrics since `from_ms`.
    fn first_complete_at(&self, from_ms: u64) -> u64 {
        policy::first_complete_at(
            from_ms,
            self.period_seconds,
            self.resolution,
            self.consumer_timeout_seconds,
        )
    }

    /// After an early look found too little ([`Move::Wait`]) at a level set at `set_ms`: until
    /// the ramp interval since then has passed and its first period is complete.
    pub fn after_wait(&self, set_ms: u64, now_ms: u64) -> u64 {
        self.after_set(set_ms, now_ms, false).0
    }

    /// After a hold whose next interval begins at `judge_from_ms`: the ramp interval from now,
    /// and no sooner than a period since `judge_from_ms` is complete.
    pub fn after_hold(&self, judge_from_ms: u64, now_ms: u64) -> u64 {
        let ready = self.first_complete_at(judge_from_ms);
        self.interval_seconds
            .max(seconds_until(ready, now_ms))
            .max(crate::backoff::MIN_WAIT_SECONDS)
    }
}

/// Whole seconds from `now_ms` until `at_ms`, rounded up, at least
/// [`crate::backoff::MIN_WAIT_SECONDS`].
fn seconds_until(at_ms: u64, now_ms: u64) -> u64 {
    at_ms
        .saturating_sub(now_ms)
        .div_ceil(1000)
        .max(crate::backoff::MIN_WAIT_SECONDS)
}

/// The intermediate levels from `start` towards `top`: `steps` geometric points from `start`,
/// rounded, kept within `[start, top]`, strictly increasing (repeats dropped). Empty when `top`
/// is at or below `start` or there are no steps.
fn climb(start: u32, top: u32, steps: u32) -> Vec<u32> {
    if top <= start || steps == 0 {
        return Vec::new();
    }
    let ratio = top as f64 / start as f64;
    let mut levels = Vec::with_capacity(steps as usize);
    let mut last = 0;
    for i in 0..steps {
        let level = (start as f64 * ratio.powf(i as f64 / steps as f64)).round() as u32;
        let level = level.clamp(start, top).max(last);
        if level != last {
            levels.push(level);
            last = level;
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(invocations: f64) -> IntervalHealth {
        IntervalHealth {
            invocations,
            errors: 0.0,
            throttles: 0.0,
        }
    }

    fn errors(invocations: f64, errors: f64) -> IntervalHealth {
        IntervalHealth {
            invocations,
            errors,
            throttles: 0.0,
        }
    }

    const FOLLOW: Follow = Follow {
        relapse_percent: 20.0,
        settle_intervals: 3,
        max_intervals: 30,
        min_evidence: 10.0,
    };

    #[test]
    fn clean_intervals_climb_to_the_original_and_close() {
        let mut p = Progress::default();
        let mut moves = Vec::new();
        loop {
            let (m, next) = FOLLOW.decide(p, 3, clean(10.0));
            moves.push(m);
            p = next;
            if m == Move::Close {
                break;
            }
        }
        assert_eq!(
            moves,
            vec![Move::StepUp, Move::StepUp, Move::StepUp, Move::Close]
        );
        assert_eq!(p.level, 3);
    }

    #[test]
    fn an_empty_interval_is_clean() {
        let (m, _) = FOLLOW.decide(Progress::default(), 3, clean(0.0));
        assert_eq!(m, Move::StepUp);
    }

    #[test]
    fn errors_after_a_raise_step_back_even_when_severe_and_the_failed_level_is_not_retried() {
        let p = Progress {
            level: 3,
            raised: true,
            evidence: 10.0,
            ..Progress::default()
        };
        let (m, p) = FOLLOW.decide(p, 3, errors(10.0, 9.0));
        assert_eq!(m, Move::StepBack);
        assert_eq!((p.level, p.ceiling), (2, Some(3)));
        // Clean at the settled level: hold, then settle after 3 clean intervals.
        let (m1, p) = FOLLOW.decide(p, 3, clean(10.0));
        let (m2, p) = FOLLOW.decide(p, 3, clean(10.0));
        let (m3, p) = FOLLOW.decide(p, 3, clean(10.0));
        assert_eq!((m1, m2, m3), (Move::Hold, Move::Hold, Move::Settle));
        assert_eq!(p.level, 2);
    }

    #[test]
    fn a_severe_rate_after_a_raise_from_a_quiet_interval_reopens() {
        // The level below was "clean" over 3 invocations: no proof it carries the load.
        let (m, p) = FOLLOW.decide(Progress::default(), 3, clean(3.0));
        assert_eq!((m, p.evidence), (Move::StepUp, 3.0));
        assert_eq!(FOLLOW.decide(p, 3, errors(10.0, 9.0)).0, Move::Reopen);
        // A mild rate still steps back.
        assert_eq!(FOLLOW.decide(p, 3, errors(100.0, 5.0)).0, Move::StepBack);
    }

    #[test]
    fn a_severe_rate_at_a_proven_level_reopens() {
        // The start level is proven by definition (nothing below it to step back to).
        let (m, _) = FOLLOW.decide(Progress::default(), 3, errors(10.0, 2.0));
        assert_eq!(m, Move::Reopen);
        // A settled level that was clean once.
        let p = Progress {
            level: 1,
            ceiling: Some(2),
            healthy: 1,
            ..Progress::default()
        };
        assert_eq!(FOLLOW.decide(p, 3, errors(10.0, 5.0)).0, Move::Reopen);
    }

    #[test]
    fn a_mild_rate_at_a_proven_level_steps_back_and_at_the_start_holds() {
        let p = Progress {
            level: 2,
            healthy: 1,
            ..Progress::default()
        };
        let (m, p) = FOLLOW.decide(p, 3, errors(100.0, 5.0));
        assert_eq!((m, p.level, p.ceiling), (Move::StepBack, 1, Some(2)));
        let (m, p) = FOLLOW.decide(p, 3, errors(100.0, 5.0));
        assert_eq!((m, p.level, p.ceiling), (Move::StepBack, 0, Some(1)));
        let (m, p) = FOLLOW.decide(p, 3, errors(100.0, 5.0));
        assert_eq!((m, p.level), (Move::Hold, 0));
    }

    #[test]
    fn throttles_alone_make_an_interval_unclean() {
        let p = Progress {
            level: 1,
            raised: true,
            evidence: 50.0,
            ..Progress::default()
        };
        let h = IntervalHealth {
            invocations: 10.0,
            errors: 0.0,
            throttles: 1.0,
        };
        assert_eq!(FOLLOW.decide(p, 3, h).0, Move::StepBack);
    }

    #[test]
    fn a_mild_rate_at_the_start_level_reopens_after_the_bound() {
        let mut p = Progress::default();
        let mut last = Move::Hold;
        for _ in 0..FOLLOW.max_intervals {
            (last, p) = FOLLOW.decide(p, 3, errors(100.0, 5.0));
        }
        assert_eq!(last, Move::Reopen);
        assert_eq!(p.intervals, FOLLOW.max_intervals);
    }

    #[test]
    fn every_ramp_ends_within_the_bound_whatever_the_intervals_show() {
        // A small deterministic generator over clean / mild / severe / throttled intervals.
        let healths = [
            clean(10.0),
            errors(100.0, 5.0),
            errors(10.0, 9.0),
            IntervalHealth {
                invocations: 10.0,
                errors: 0.0,
                throttles: 2.0,
            },
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for top in 0..6usize {
            for _ in 0..2000 {
                let mut p = Progress::default();
                let mut n = 0;
                loop {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // One in five steps finds no complete interval (a wait).
                    let (m, next) = if x % 5 == 4 {
                        FOLLOW.wait(p, top)
                    } else {
                        FOLLOW.decide(p, top, healths[(x % 4) as usize])
                    };
                    n += 1;
                    assert!(next.level <= top);
                    if let Some(c) = next.ceiling {
                        assert!(next.level < c, "{next:?}");
                    }
                    p = next;
                    if matches!(m, Move::Close | Move::Reopen | Move::Settle) {
                        break;
                    }
                    assert!(
                        n <= FOLLOW.max_intervals as usize + 2 * top,
                        "ramp still going after {n} intervals: {p:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_wait_holds_and_past_the_bound_ends_on_the_last_verdict() {
        let p = Progress {
            level: 1,
            healthy: 1,
            ..Progress::default()
        };
        let (m, n) = FOLLOW.wait(p, 3);
        assert_eq!((m, n.level, n.intervals, n.healthy), (Move::Hold, 1, 1, 1));
        let over = Progress {
            intervals: FOLLOW.max_intervals - 1,
            ..p
        };
        assert_eq!(FOLLOW.wait(over, 3).0, Move::Settle);
        assert_eq!(FOLLOW.wait(over, 1).0, Move::Close);
        let failing = Progress { healthy: 0, ..over };
        assert_eq!(FOLLOW.wait(failing, 3).0, Move::Reopen);
    }

    #[test]
    fn the_last_call_ends_the_ramp_on_what_it_saw() {
        assert_eq!(FOLLOW.max_calls(4), FOLLOW.max_intervals + 1);
        assert_eq!(FOLLOW.max_calls(101), 102, "one per level and one more");
        let climbing = Progress {
            level: 1,
            ..Progress::default()
        };
        // Not the last call: the usual decision.
        assert_eq!(
            FOLLOW.next(climbing, 3, Some(clean(10.0)), false).0,
            Move::StepUp
        );
        // The last: clean with nothing failed closes, as the fixed schedule ended.
        assert_eq!(
            FOLLOW.next(climbing, 3, Some(clean(10.0)), true).0,
            Move::Close
        );
        assert_eq!(
            FOLLOW.next(climbing, 3, Some(errors(100.0, 5.0)), true).0,
            Move::Reopen
        );
        let settling = Progress {
            level: 1,
            ceiling: Some(2),
            healthy: 1,
            ..Progress::default()
        };
        let (m, n) = FOLLOW.next(settling, 3, Some(clean(10.0)), true);
        assert_eq!((m, n.level), (Move::Settle, 1));
        assert_eq!(FOLLOW.next(settling, 3, None, true).0, Move::Settle);
        let fresh = Progress {
            healthy: 0,
            ..settling
        };
        assert_eq!(FOLLOW.next(fresh, 3, None, true).0, Move::Reopen);
    }

    /// Issue 16: an early look raises on evidence of health only; anything else waits out the
    /// interval, changing nothing but the count of intervals (every call counts).
    #[test]
    fn an_early_look_raises_on_a_clean_interval_with_evidence_and_otherwise_waits() {
        let looking = Progress {
            level: 1,
            raised: true,
            evidence: 40.0,
            intervals: 1,
            early: true,
            ..Progress::default()
        };
        let (m, n) = FOLLOW.next(looking, 3, Some(clean(FOLLOW.min_evidence)), false);
        assert_eq!((m, n.level, n.early), (Move::StepUp, 2, false));
        let top = Progress {
            level: 3,
            ..looking
        };
        assert_eq!(FOLLOW.next(top, 3, Some(clean(50.0)), false).0, Move::Close);
        let waited = Progress {
            early: false,
            intervals: 2,
            ..looking
        };
        for h in [
            None,
            Some(clean(FOLLOW.min_evidence - 1.0)),
            Some(errors(100.0, 1.0)),
            Some(errors(100.0, 90.0)),
        ] {
            assert_eq!(
                FOLLOW.next(looking, 3, h, false),
                (Move::Wait, waited),
                "{h:?}"
            );
        }
        // The interval waited out is judged whole, as without the look.
        assert_eq!(
            FOLLOW.next(waited, 3, Some(errors(100.0, 90.0)), false).0,
            Move::StepBack
        );
        // A ramp gets looks while a look and a verdict at each level fit its intervals.
        assert!(FOLLOW.looks(15) && !FOLLOW.looks(16));
        assert!(Follow::default().looks(4), "the default ramp's 4 levels");
        // The last call ends the ramp on what it saw, early or not.
        assert_eq!(
            FOLLOW.next(looking, 3, Some(clean(1.0)), true).0,
            Move::Close
        );
        assert_eq!(
            FOLLOW.next(looking, 3, Some(errors(10.0, 9.0)), true).0,
            Move::Reopen
        );
    }

    /// Issue 16: a clean verdict at a level the consumer did not fill (nothing visible on the
    /// queue, under half the level's room in flight) closes at once instead of raising one level
    /// per interval; a level it fills, or any other move, changes nothing.
    #[test]
    fn a_raise_the_consumer_does_not_need_closes_the_ramp() {
        let idle = Demand {
            visible: 0,
            in_flight: 9,
            room: 20,
        };
        let proven = Progress {
            level: 1,
            healthy: 1,
            intervals: 2,
            ..Progress::default()
        };
        let (m, n) = FOLLOW.next(proven, 3, Some(clean(40.0)), false);
        assert_eq!((m, n.level), (Move::StepUp, 2));
        let (m, c) = FOLLOW.close_if_unlimited(m, n, idle);
        assert_eq!(
            (m, c.level, c.raised, c.early),
            (Move::Close, 1, false, false)
        );
        assert_eq!(c.intervals, n.intervals, "the call still counts");
        for filled in [
            Demand { visible: 1, ..idle },
            Demand {
                in_flight: 10,
                ..idle
            },
        ] {
            assert_eq!(
                FOLLOW.close_if_unlimited(Move::StepUp, n, filled),
                (Move::StepUp, n),
                "{filled:?}"
            );
        }
        // An early look that proves its level closes too; one that waits, a step back, a hold
        // and a reopen are never turned into a close.
        let looking = Progress {
            early: true,
            raised: true,
            evidence: 40.0,
            ..proven
        };
        let (m, n) = FOLLOW.next(looking, 3, Some(clean(40.0)), false);
        assert_eq!(FOLLOW.close_if_unlimited(m, n, idle).0, Move::Close);
        for (given, h) in [
            (looking, clean(1.0)),
            (proven, errors(100.0, 5.0)),
            (proven, errors(100.0, 90.0)),
        ] {
            let (m, n) = FOLLOW.next(given, 3, Some(h), false);
            assert_ne!(m, Move::StepUp);
            assert_eq!(FOLLOW.close_if_unlimited(m, n, idle), (m, n), "{h:?}");
        }
        let below_ceiling = Progress {
            ceiling: Some(2),
            ..proven
        };
        let (m, n) = FOLLOW.next(below_ceiling, 3, Some(clean(40.0)), false);
        assert_eq!(FOLLOW.close_if_unlimited(m, n, idle), (Move::Hold, n));
    }

    /// A level's room: its concurrency (or pollers × 10 invocations) times the batch size.
    #[test]
    fn a_levels_room_is_its_invocations_times_the_batch_size() {
        assert_eq!(Demand::room(Scaling::Concurrency(Some(2)), 10), Some(20));
        assert_eq!(Demand::room(Scaling::Concurrency(None), 10), None);
        let pollers = PollerConfig {
            minimum_pollers: Some(2),
            maximum_pollers: Some(5),
        };
        assert_eq!(Demand::room(Scaling::Pollers(pollers), 4), Some(200));
        let default = PollerConfig {
            minimum_pollers: None,
            maximum_pollers: None,
        };
        assert_eq!(
            Demand::room(Scaling::Pollers(default), 1),
            Some(u64::from(DEFAULT_MAXIMUM_POLLERS * INVOCATIONS_PER_POLLER))
        );
    }

    /// The calls after a level is set: with 10 s periods complete ~5 s after they end, a level
    /// climbed to at :03 is looked at when :10–:20 is complete (:25.025, so 23 s), not after
    /// the 60 s interval (the timeout does not matter: the extension stamps each invocation's
    /// end); with Lambda's one-minute metrics (complete the consumer's timeout and a minute
    /// after the minute) the first period is never complete before the interval, so there is no
    /// early look.
    #[test]
    fn a_level_climbed_to_is_looked_at_when_its_first_period_is_complete() {
        use crate::mapping::MetricResolution::{High, Standard};
        let high = Timing {
            interval_seconds: 60,
            period_seconds: 10,
            resolution: High,
            consumer_timeout_seconds: 795,
        };
        let set = 1_000_003_000; // :03 past a 10 s boundary
        assert_eq!(high.after_set(set, set, true), (23, true));
        assert_eq!(
            high.after_set(set, set + 500, true),
            (22, true),
            "rounded up"
        );
        assert_eq!(high.after_set(set, set, false), (60, false), "a step back");
        assert_eq!(
            high.after_wait(set, set + 23_000),
            37,
            "the rest of the interval"
        );
        assert_eq!(high.after_wait(set, set + 70_000), 1, "never 0");
        assert_eq!(high.after_hold(set, set), 60);
        let short = Timing {
            interval_seconds: 5,
            ..high
        };
        assert_eq!(
            short.after_set(set, set, true),
            (23, false),
            "no sooner than ready"
        );
        let standard = Timing {
            interval_seconds: 60,
            period_seconds: 60,
            resolution: Standard,
            consumer_timeout_seconds: 30,
        };
        let minute = 1_000_020_000; // :00 of a minute
        // The first whole minute after :03 ends at 2:00, complete 30 s + 60 s later.
        assert_eq!(
            standard.after_set(minute + 3_000, minute + 3_000, true),
            (207, false)
        );
    }

    #[test]
    fn ramp_climbs_geometrically_to_the_original_limit() {
        let ramp = Ramp { start: 2, steps: 3 };
        assert_eq!(
            ramp.schedule(Some(50)),
            vec![Some(2), Some(6), Some(17), Some(50)]
        );
    }

    #[test]
    fn ramp_removes_the_limit_when_the_esm_had_none() {
        let ramp = Ramp { start: 2, steps: 2 };
        let levels = ramp.schedule(None);
        assert_eq!(levels.first(), Some(&Some(2)));
        assert_eq!(levels.last(), Some(&None));
        assert_eq!(levels.len(), 3);
    }

    #[test]
    fn target_at_or_below_start_is_reached_in_one_step() {
        let ramp = Ramp { start: 5, steps: 4 };
        assert_eq!(ramp.schedule(Some(3)), vec![Some(3)]);
        assert_eq!(ramp.schedule(Some(5)), vec![Some(5)]);
    }

    #[test]
    fn levels_never_decrease_and_have_no_repeats() {
        let ramp = Ramp {
            start: 2,
            steps: 10,
        };
        let levels: Vec<u32> = ramp
            .schedule(Some(4))
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert!(levels.windows(2).all(|w| w[0] < w[1]), "{levels:?}");
        assert_eq!(levels.last(), Some(&4));
    }

    fn pollers(minimum: u32, maximum: u32) -> PollerConfig {
        PollerConfig {
            minimum_pollers: Some(minimum),
            maximum_pollers: Some(maximum),
        }
    }

    #[test]
    fn a_provisioned_ramp_climbs_maximum_pollers_from_two_to_the_original() {
        let ramp = Ramp { start: 2, steps: 3 };
        assert_eq!(
            ramp.poller_schedule(pollers(3, 40)),
            vec![pollers(2, 2), pollers(3, 5), pollers(3, 15), pollers(3, 40)]
        );
    }

    #[test]
    fn the_provisioned_start_is_the_start_concurrency_in_pollers() {
        // 45 concurrent invocations need 5 pollers of 10.
        let ramp = Ramp {
            start: 45,
            steps: 1,
        };
        assert_eq!(
            ramp.poller_schedule(pollers(2, 50)),
            vec![pollers(2, 5), pollers(2, 50)]
        );
    }

    #[test]
    fn minimum_pollers_never_exceed_the_levels_maximum() {
        let ramp = Ramp { start: 2, steps: 4 };
        let levels = ramp.poller_schedule(pollers(20, 100));
        assert!(
            levels
                .iter()
                .all(|l| l.minimum_pollers.unwrap() <= l.maximum_pollers.unwrap()),
            "{levels:?}"
        );
        let maxima: Vec<u32> = levels.iter().map(|l| l.maximum_pollers.unwrap()).collect();
        assert!(maxima.windows(2).all(|w| w[0] < w[1]), "{maxima:?}");
        assert_eq!(levels.last(), Some(&pollers(20, 100)));
    }

    #[test]
    fn a_provisioned_original_leaving_fields_out_ends_at_the_documented_defaults() {
        let ramp = Ramp { start: 2, steps: 2 };
        let levels = ramp.poller_schedule(PollerConfig {
            minimum_pollers: None,
            maximum_pollers: None,
        });
        assert_eq!(levels.first(), Some(&pollers(2, 2)));
        assert_eq!(levels.last(), Some(&pollers(2, 200)));
        assert_eq!(levels.len(), 3);
    }

    #[test]
    fn a_provisioned_original_at_the_start_is_one_level() {
        let ramp = Ramp { start: 2, steps: 3 };
        assert_eq!(ramp.poller_schedule(pollers(2, 2)), vec![pollers(2, 2)]);
    }

    #[test]
    fn levels_pick_pollers_for_a_provisioned_mapping_and_concurrency_otherwise() {
        let ramp = Ramp { start: 2, steps: 1 };
        assert_eq!(
            ramp.levels(Some(10), None),
            vec![
                Scaling::Concurrency(Some(2)),
                Scaling::Concurrency(Some(10))
            ]
        );
        assert_eq!(
            ramp.levels(None, Some(pollers(2, 8))),
            vec![
                Scaling::Pollers(pollers(2, 2)),
                Scaling::Pollers(pollers(2, 8))
            ]
        );
    }

    #[test]
    fn start_below_the_api_minimum_is_raised_to_two() {
        let ramp = Ramp { start: 1, steps: 1 };
        assert_eq!(ramp.schedule(Some(10)), vec![Some(2), Some(10)]);
    }
}
