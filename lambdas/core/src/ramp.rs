//! The half-open ramp: after a healthy probe the ESM is re-enabled with a small
//! `MaximumConcurrency` that is raised step by step to the original setting.
//!
//! A mapping in provisioned mode (`ProvisionedPollerConfig`) cannot take a `MaximumConcurrency`:
//! AWS documents the two as mutually exclusive on an SQS mapping. Its ramp goes through
//! `MaximumPollers` instead ([`Ramp::poller_schedule`]): from the poller count that carries the
//! ramp's start concurrency (each poller runs up to [`INVOCATIONS_PER_POLLER`] invocations at
//! once), at least the 2 AWS accepts, up to the original, whose configuration is the last level.

use serde::{Deserialize, Serialize};

use crate::ports::{PollerConfig, Scaling};

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
