//! Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
//! Blog): the n-th wait is drawn uniformly from `[floor, min(cap, initial × multiplier^n)]`.
//!
//! Probes get rarer as an outage gets long (issue 16: a long outage costs the downstream no
//! more calls than the 900 s cap did, while a short one is probed every few minutes). Once the
//! downstream has been sick for more than [`LONG_OUTAGE_SHARE`] × `max_seconds` (30 minutes at
//! the defaults), the cap grows to a [`LONG_OUTAGE_SHARE`]-th of that time, up to
//! `long_max_seconds`; a wait above `max_seconds` is drawn from the `max_seconds` below its
//! ceiling, not from 1 s, so that the same calls an hour find a healed downstream sooner (a
//! uniform draw over `[a, b]` leaves on average `(a² + ab + b²) / 3(a + b)` to wait, about
//! 380 s for `[600, 900]`, against 500 s for the full jitter over `[1, 1500]` of the same mean).
//! At the defaults: ~24 probes an hour in the first half hour, ~4.8 an hour (waits of 600–900 s)
//! from 90 minutes on.

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Backoff policy. All times in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// Ceiling of the first wait (attempt 0).
    pub initial_seconds: u64,
    /// Cap on every ceiling.
    pub max_seconds: u64,
    /// Growth of the ceiling per attempt (≥ 1).
    pub multiplier: f64,
    /// Cap on every ceiling once the outage is long (≥ `max_seconds`; equal to it keeps the cap
    /// at `max_seconds` however long the outage).
    pub long_max_seconds: u64,
}

/// A wait's ceiling may grow to this fraction (1 / share) of the time the downstream has been
/// sick, between `max_seconds` and `long_max_seconds`. At 6 and the default 300 s cap the cap
/// starts to grow after 30 minutes, so a 30-minute outage is probed as often as a short one
/// (issue 16: healed→closed within a fifth of the reference's).
pub const LONG_OUTAGE_SHARE: u64 = 6;

/// `long_max_seconds` left unset is this many times `max_seconds` (at most a day):
/// `perMaxDelay` of `backoffLongMaxSeconds` in `cdk/src/limits.json`, whose default (900 s) is
/// this times the default cap. It scales with the cadence an owner chose: a 60 s cap grows to
/// 180 s, not to 15 minutes.
pub const LONG_MAX_PER_MAX: u64 = 3;

/// Shortest wait ever returned: Step Functions waits of 0 s would spin.
pub const MIN_WAIT_SECONDS: u64 = 1;

impl Backoff {
    /// `long_max_seconds` when it is not set: [`LONG_MAX_PER_MAX`] × `max_seconds`, at most
    /// `day`.
    pub fn default_long_max_seconds(max_seconds: u64, day: u64) -> u64 {
        max_seconds.saturating_mul(LONG_MAX_PER_MAX).min(day)
    }

    /// The cap on a ceiling after the downstream has been sick `sick_seconds`: `max_seconds`,
    /// or a [`LONG_OUTAGE_SHARE`]-th of that time when that is more, at most `long_max_seconds`.
    pub fn cap(&self, sick_seconds: u64) -> u64 {
        (sick_seconds / LONG_OUTAGE_SHARE)
            .min(self.long_max_seconds)
            .max(self.max_seconds)
    }

    /// The upper bound of the wait before probe number `attempt` (0-based) after the
    /// downstream has been sick `sick_seconds`, capped by [`Backoff::cap`].
    pub fn ceiling(&self, attempt: u32, sick_seconds: u64) -> u64 {
        let grown =
            self.initial_seconds as f64 * self.multiplier.max(1.0).powi(attempt.min(1_000) as i32);
        let capped = grown.min(self.cap(sick_seconds) as f64);
        (capped.round() as u64).max(MIN_WAIT_SECONDS)
    }

    /// Draw the wait before probe number `attempt`, `sick_seconds` into the outage: uniform
    /// over `[1, ceiling]` (full jitter), or over the `max_seconds` below a ceiling above
    /// `max_seconds`.
    pub fn next_wait<R: rand::Rng + ?Sized>(
        &self,
        attempt: u32,
        sick_seconds: u64,
        rng: &mut R,
    ) -> u64 {
        let ceiling = self.ceiling(attempt, sick_seconds);
        let floor = ceiling
            .saturating_sub(self.max_seconds)
            .max(MIN_WAIT_SECONDS);
        rng.random_range(floor..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const POLICY: Backoff = Backoff {
        initial_seconds: 10,
        max_seconds: 300,
        multiplier: 2.0,
        long_max_seconds: 900,
    };

    #[test]
    fn ceiling_grows_exponentially_then_caps() {
        let ceilings: Vec<u64> = (0..7).map(|a| POLICY.ceiling(a, 600)).collect();
        assert_eq!(ceilings, vec![10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn ceiling_survives_huge_attempt_numbers() {
        assert_eq!(POLICY.ceiling(u32::MAX, 0), 300);
        assert_eq!(POLICY.ceiling(u32::MAX, u64::MAX), 900);
    }

    #[test]
    fn the_cap_grows_to_a_sixth_of_the_time_sick_after_half_an_hour_up_to_the_long_cap() {
        let minute = 60;
        let caps: Vec<u64> = [0, 30, 31, 60, 90, 120, 360, 24 * 60]
            .iter()
            .map(|m| POLICY.cap(m * minute))
            .collect();
        assert_eq!(caps, vec![300, 300, 310, 600, 900, 900, 900, 900]);
        // Early attempts stay exponential: the long cap lifts only the cap.
        assert_eq!(POLICY.ceiling(2, 6 * 3_600), 40);
        assert_eq!(POLICY.ceiling(20, 6 * 3_600), 900);
        // A long cap equal to the cap keeps the cap.
        let flat = Backoff {
            long_max_seconds: 300,
            ..POLICY
        };
        assert_eq!(flat.ceiling(20, 30 * 86_400), 300);
    }

    #[test]
    fn above_the_cap_a_wait_varies_over_the_cap_below_its_ceiling() {
        let mut rng = StdRng::seed_from_u64(5);
        let waits: Vec<u64> = (0..2_000)
            .map(|_| POLICY.next_wait(20, 6 * 3_600, &mut rng))
            .collect();
        assert!(waits.iter().all(|w| (600..=900).contains(w)), "{waits:?}");
        let (low, high) = (
            waits.iter().filter(|w| **w < 650).count(),
            waits.iter().filter(|w| **w > 850).count(),
        );
        assert!(low > 200 && high > 200, "low {low} high {high}");
        // At or below the cap it is full jitter from 1 s.
        let waits: Vec<u64> = (0..2_000)
            .map(|_| POLICY.next_wait(20, 60, &mut rng))
            .collect();
        assert!(waits.iter().any(|w| *w < 10) && waits.iter().all(|w| *w <= 300));
    }

    #[test]
    fn an_unset_long_cap_is_three_times_the_cap_at_most_a_day() {
        assert_eq!(Backoff::default_long_max_seconds(300, 86_400), 900);
        assert_eq!(Backoff::default_long_max_seconds(60, 86_400), 180);
        assert_eq!(Backoff::default_long_max_seconds(86_400, 86_400), 86_400);
    }

    #[test]
    fn waits_stay_within_one_second_and_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..20 {
            for _ in 0..200 {
                let w = POLICY.next_wait(attempt, 600, &mut rng);
                assert!(
                    (1..=POLICY.ceiling(attempt, 600)).contains(&w),
                    "attempt {attempt}: {w}"
                );
            }
        }
    }

    #[test]
    fn full_jitter_spreads_waits_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let waits: Vec<u64> = (0..1000)
            .map(|_| POLICY.next_wait(5, 0, &mut rng))
            .collect();
        let low = waits.iter().filter(|w| **w < 100).count();
        let high = waits.iter().filter(|w| **w > 200).count();
        assert!(low > 200 && high > 200, "low {low} high {high}");
    }

    #[test]
    fn multiplier_below_one_is_treated_as_constant_backoff() {
        let flat = Backoff {
            initial_seconds: 30,
            max_seconds: 300,
            multiplier: 0.5,
            long_max_seconds: 300,
        };
        assert_eq!(flat.ceiling(4, 0), 30);
    }
}
