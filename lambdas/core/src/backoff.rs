//! Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
//! Blog): the n-th wait is drawn uniformly from `[floor, min(cap, initial × multiplier^n)]`.

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
}

/// Shortest wait ever returned: Step Functions waits of 0 s would spin.
pub const MIN_WAIT_SECONDS: u64 = 1;

impl Backoff {
    /// The upper bound of the wait before probe number `attempt` (0-based), capped.
    pub fn ceiling(&self, attempt: u32) -> u64 {
        let grown =
            self.initial_seconds as f64 * self.multiplier.max(1.0).powi(attempt.min(1_000) as i32);
        let capped = grown.min(self.max_seconds as f64);
        (capped.round() as u64).max(MIN_WAIT_SECONDS)
    }

    /// Draw the wait before probe number `attempt`: full jitter over `[1, ceiling(attempt)]`.
    pub fn next_wait<R: rand::Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> u64 {
        let ceiling = self.ceiling(attempt);
        rng.random_range(MIN_WAIT_SECONDS..=ceiling)
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
    };

    #[test]
    fn ceiling_grows_exponentially_then_caps() {
        let ceilings: Vec<u64> = (0..7).map(|a| POLICY.ceiling(a)).collect();
        assert_eq!(ceilings, vec![10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn ceiling_survives_huge_attempt_numbers() {
        assert_eq!(POLICY.ceiling(u32::MAX), 300);
    }

    #[test]
    fn waits_stay_within_one_second_and_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..20 {
            for _ in 0..200 {
                let w = POLICY.next_wait(attempt, &mut rng);
                assert!(
                    (1..=POLICY.ceiling(attempt)).contains(&w),
                    "attempt {attempt}: {w}"
                );
            }
        }
    }

    #[test]
    fn full_jitter_spreads_waits_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let waits: Vec<u64> = (0..1000).map(|_| POLICY.next_wait(5, &mut rng)).collect();
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
        };
        assert_eq!(flat.ceiling(4), 30);
    }
}
