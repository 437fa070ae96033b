//! The half-open ramp: after a healthy probe the ESM is re-enabled with a small
//! `MaximumConcurrency` that is raised step by step to the original setting.

use serde::{Deserialize, Serialize};

/// Smallest `MaximumConcurrency` SQS event-source mappings accept.
pub const MIN_MAXIMUM_CONCURRENCY: u32 = 2;
/// Largest `MaximumConcurrency` SQS event-source mappings accept.
pub const MAX_MAXIMUM_CONCURRENCY: u32 = 1000;

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
        if top <= start || self.steps == 0 {
            return vec![target];
        }
        let ratio = top as f64 / start as f64;
        let mut levels: Vec<Level> = Vec::with_capacity(self.steps as usize + 1);
        let mut last = 0;
        for i in 0..self.steps {
            let level = (start as f64 * ratio.powf(i as f64 / self.steps as f64)).round() as u32;
            let level = level.clamp(start, top).max(last);
            if level != last {
                levels.push(Some(level));
                last = level;
            }
        }
        if levels.last() != Some(&target) {
            levels.push(target);
        }
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn start_below_the_api_minimum_is_raised_to_two() {
        let ramp = Ramp { start: 1, steps: 1 };
        assert_eq!(ramp.schedule(Some(10)), vec![Some(2), Some(10)]);
    }
}
