//! The downstream the consumer calls: a scripted health curve and a capacity limit.
//!
//! Assumptions:
//! - Health is a script of phases; outside every phase the downstream is healthy.
//!   A phase sets a failure probability, a call latency and a capacity factor.
//! - Capacity is a rate: at most `capacity × factor` calls are served in each 1-second
//!   bucket; every call beyond that fails fast (an overloaded service sheds load with 503s).
//!   So a recovering downstream hit too hard fails again, and the failures feed back into the
//!   consumer's error metric and the messages' receive counts.
//! - A poison message fails inside the consumer before any downstream call.
//! - Load is counted per 1-second bucket of the call's start time; every attempted call counts.

use rand::RngExt;

use crate::time::{Millis, SECOND};

/// How the downstream behaves during a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// Probability that a call (within capacity) fails.
    pub fail_probability: f64,
    /// Latency of a call; failures take `fail_latency` unless the phase is slow.
    pub latency: Option<Millis>,
    /// Multiplier on the capacity.
    pub capacity_factor: f64,
}

impl Health {
    /// Every call fails fast.
    pub const DOWN: Health = Health {
        fail_probability: 1.0,
        latency: None,
        capacity_factor: 1.0,
    };
    /// Normal service.
    pub const HEALTHY: Health = Health {
        fail_probability: 0.0,
        latency: None,
        capacity_factor: 1.0,
    };
}

/// One scripted phase `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Start (inclusive).
    pub start: Millis,
    /// End (exclusive).
    pub end: Millis,
    /// Behaviour during the phase.
    pub health: Health,
}

/// Downstream settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamConfig {
    /// Calls per second served when healthy.
    pub capacity_per_second: u32,
    /// Latency of a successful call.
    pub latency: Millis,
    /// Latency of a fast failure (5xx, connection refused, shed load).
    pub fail_latency: Millis,
    /// The health script.
    pub phases: Vec<Phase>,
}

impl DownstreamConfig {
    /// Health at `t` (healthy outside every phase).
    pub fn health_at(&self, t: Millis) -> Health {
        self.phases
            .iter()
            .find(|p| p.start <= t && t < p.end)
            .map(|p| p.health)
            .unwrap_or(Health::HEALTHY)
    }

    /// Calls per second served at `t`.
    pub fn capacity_at(&self, t: Millis) -> u32 {
        (self.capacity_per_second as f64 * self.health_at(t).capacity_factor).round() as u32
    }
}

/// Result of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallResult {
    /// Whether the call succeeded.
    pub ok: bool,
    /// How long it took.
    pub latency: Millis,
}

/// The downstream with its per-second load record.
#[derive(Debug)]
pub struct Downstream {
    config: DownstreamConfig,
    /// Calls started in each second.
    pub load: Vec<u32>,
    /// Calls that failed in each second.
    pub failures: Vec<u32>,
}

impl Downstream {
    /// A downstream following `config`.
    pub fn new(config: DownstreamConfig) -> Self {
        Self {
            config,
            load: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DownstreamConfig {
        &self.config
    }

    /// Health at `t`.
    pub fn health(&self, t: Millis) -> Health {
        self.config.health_at(t)
    }

    /// Calls per second it can serve at `t`.
    pub fn capacity(&self, t: Millis) -> u32 {
        self.config.capacity_at(t)
    }

    /// One call starting at `t`.
    pub fn call<R: rand::Rng + ?Sized>(&mut self, t: Millis, rng: &mut R) -> CallResult {
        let second = (t / SECOND) as usize;
        if self.load.len() <= second {
            self.load.resize(second + 1, 0);
            self.failures.resize(second + 1, 0);
        }
        let health = self.health(t);
        let capacity = self.capacity(t);
        let in_bucket = self.load[second];
        self.load[second] += 1;
        let result = if in_bucket >= capacity {
            CallResult {
                ok: false,
                latency: self.config.fail_latency,
            }
        } else if health.fail_probability > 0.0 && rng.random_bool(health.fail_probability) {
            CallResult {
                ok: false,
                latency: health.latency.unwrap_or(self.config.fail_latency),
            }
        } else {
            CallResult {
                ok: true,
                latency: health.latency.unwrap_or(self.config.latency),
            }
        };
        if !result.ok {
            self.failures[second] += 1;
        }
        result
    }

    /// Calls started in `[from, to)`.
    pub fn calls_between(&self, from: Millis, to: Millis) -> u64 {
        let (a, b) = ((from / SECOND) as usize, (to / SECOND) as usize);
        self.load.iter().take(b).skip(a).map(|c| *c as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn config(phases: Vec<Phase>) -> DownstreamConfig {
        DownstreamConfig {
            capacity_per_second: 3,
            latency: 100,
            fail_latency: 20,
            phases,
        }
    }

    #[test]
    fn calls_beyond_capacity_in_one_second_fail_fast() {
        let mut d = Downstream::new(config(vec![]));
        let mut rng = StdRng::seed_from_u64(1);
        let results: Vec<bool> = (0..5).map(|i| d.call(1000 + i * 10, &mut rng).ok).collect();
        assert_eq!(results, vec![true, true, true, false, false]);
        assert!(d.call(2000, &mut rng).ok, "a new second has fresh capacity");
        assert_eq!(d.load[1], 5);
        assert_eq!(d.failures[1], 2);
    }

    #[test]
    fn scripted_outage_fails_every_call_then_heals() {
        let down = Phase {
            start: 10 * SECOND,
            end: 20 * SECOND,
            health: Health::DOWN,
        };
        let mut d = Downstream::new(config(vec![down]));
        let mut rng = StdRng::seed_from_u64(1);
        assert!(d.call(9_999, &mut rng).ok);
        let failed = d.call(10 * SECOND, &mut rng);
        assert_eq!(
            failed,
            CallResult {
                ok: false,
                latency: 20
            }
        );
        assert!(d.call(20 * SECOND, &mut rng).ok);
    }

    #[test]
    fn slow_phase_returns_its_latency_and_reduced_capacity_phase_sheds_more() {
        let slow = Health {
            fail_probability: 0.0,
            latency: Some(40 * SECOND),
            capacity_factor: 1.0,
        };
        let weak = Health {
            fail_probability: 0.0,
            latency: None,
            capacity_factor: 1.0 / 3.0,
        };
        let mut d = Downstream::new(config(vec![
            Phase {
                start: 0,
                end: SECOND,
                health: slow,
            },
            Phase {
                start: SECOND,
                end: 2 * SECOND,
                health: weak,
            },
        ]));
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(d.call(0, &mut rng).latency, 40 * SECOND);
        assert_eq!(d.capacity(SECOND), 1);
        assert!(d.call(SECOND, &mut rng).ok);
        assert!(!d.call(SECOND + 1, &mut rng).ok);
    }

    #[test]
    fn partial_failure_fails_about_the_given_share() {
        let half = Health {
            fail_probability: 0.5,
            latency: None,
            capacity_factor: 1000.0,
        };
        let mut d = Downstream::new(config(vec![Phase {
            start: 0,
            end: 100 * SECOND,
            health: half,
        }]));
        let mut rng = StdRng::seed_from_u64(3);
        let ok = (0..2000).filter(|i| d.call(i * 10, &mut rng).ok).count();
        assert!((900..1100).contains(&ok), "{ok}");
        assert_eq!(d.calls_between(0, 20 * SECOND), 2000);
    }
}
