//! The standard scenarios and the system they run on.
//!
//! The standard system: 2 messages/s (Poisson) into a standard queue (visibility 180 s = 6 × the
//! consumer's 30 s timeout, `maxReceiveCount` 5, retention 4 days unless a scenario says
//! otherwise); an ESM with batch size 10 and `MaximumConcurrency` 5 (the team sized it for the
//! downstream: 5 × ~9.7 calls/s ≈ 48 calls/s); a 512 MB consumer that calls the downstream once
//! per message (100 ms when healthy, 20 ms fast failures); a downstream that serves 60 calls/s; an alarm on the consumer's error rate ≥ 10 % with ≥ 5 invocations per
//! minute, 2 of 3 one-minute datapoints, missing data not breaching. Every scenario starts healthy
//! and the trouble begins 10 minutes in.

use crate::cloudwatch::AlarmConfig;
use crate::downstream::{DownstreamConfig, Health, Phase};
use crate::esm::EsmConfig;
use crate::queue::QueueConfig;
use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND};

/// What the consumer function is like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsumerConfig {
    /// Function timeout.
    pub timeout: Millis,
    /// Memory (for GB-seconds).
    pub memory_mb: u32,
    /// Per-invocation overhead (runtime, event parsing, response).
    pub overhead: Millis,
}

/// Incoming traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Mean messages per second (Poisson arrivals, drawn per second).
    pub arrival_per_second: f64,
    /// `[start, end)` spans with no traffic.
    pub pauses: Vec<(Millis, Millis)>,
    /// Times at which a poison message is sent.
    pub poison_at: Vec<Millis>,
}

/// One scenario: the system, its trouble, and how long to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name (CLI, file names).
    pub name: String,
    /// One line for the table.
    pub description: String,
    /// Traffic.
    pub workload: Workload,
    /// Downstream (with the trouble script).
    pub downstream: DownstreamConfig,
    /// Queue settings.
    pub queue: QueueConfig,
    /// ESM scaling settings.
    pub esm: EsmConfig,
    /// The ESM's configured `MaximumConcurrency`.
    pub maximum_concurrency: Option<u32>,
    /// Consumer function.
    pub consumer: ConsumerConfig,
    /// The trigger alarm.
    pub alarm: AlarmConfig,
    /// When the trouble starts.
    pub trouble_start: Millis,
    /// When the downstream is healthy again for good (full capacity may come later).
    pub healed_at: Millis,
    /// End of the run.
    pub horizon: Millis,
}

/// Trouble starts this long into every scenario.
pub const WARMUP: Millis = 10 * MINUTE;

fn base(name: &str, description: &str, phases: Vec<Phase>, healed_at: Millis) -> Scenario {
    Scenario {
        name: name.to_string(),
        description: description.to_string(),
        workload: Workload {
            arrival_per_second: 2.0,
            pauses: vec![],
            poison_at: vec![],
        },
        downstream: DownstreamConfig {
            capacity_per_second: 60,
            latency: 100,
            fail_latency: 20,
            phases,
        },
        queue: QueueConfig {
            visibility_timeout: 180 * SECOND,
            max_receive_count: 5,
            retention: 4 * DAY,
        },
        esm: EsmConfig::default(),
        maximum_concurrency: Some(5),
        consumer: ConsumerConfig {
            timeout: 30 * SECOND,
            memory_mb: 512,
            overhead: 30,
        },
        alarm: AlarmConfig::STANDARD,
        trouble_start: WARMUP,
        healed_at,
        horizon: healed_at + 8 * HOUR,
    }
}

fn down(from: Millis, to: Millis) -> Phase {
    Phase {
        start: from,
        end: to,
        health: Health::DOWN,
    }
}

/// The downstream in `health` for `length` from [`WARMUP`], then healthy.
fn degraded(name: &str, description: &str, health: Health, length: Millis) -> Scenario {
    let end = WARMUP + length;
    base(
        name,
        description,
        vec![Phase {
            start: WARMUP,
            end,
            health,
        }],
        end,
    )
}

/// A plain outage of `length`.
pub fn outage(name: &str, length: Millis) -> Scenario {
    degraded(name, "downstream down, then healthy", Health::DOWN, length)
}

/// All standard scenarios, in table order.
pub fn standard() -> Vec<Scenario> {
    let mut v = vec![
        outage("outage-5m", 5 * MINUTE),
        outage("outage-30m", 30 * MINUTE),
        outage("outage-6h", 6 * HOUR),
    ];
    let mut three_days = outage("outage-3d", 3 * DAY);
    three_days.description = "3-day outage, 14-day retention".into();
    three_days.queue.retention = 14 * DAY;
    v.push(three_days);

    let flaps: Vec<Phase> = (0..12)
        .map(|i| {
            down(
                WARMUP + i * 5 * MINUTE,
                WARMUP + i * 5 * MINUTE + 3 * MINUTE,
            )
        })
        .collect();
    let flap_end = WARMUP + 11 * 5 * MINUTE + 3 * MINUTE;
    v.push(base(
        "flapping",
        "down 3 min / up 2 min for an hour",
        flaps,
        flap_end,
    ));

    let half = Health {
        fail_probability: 0.5,
        latency: None,
        capacity_factor: 1.0,
    };
    v.push(degraded(
        "partial-50",
        "50% of calls fail for 30 min",
        half,
        30 * MINUTE,
    ));

    let slow = Health {
        fail_probability: 0.0,
        latency: Some(40 * SECOND),
        capacity_factor: 1.0,
    };
    v.push(degraded(
        "slow",
        "calls take 40 s (> 30 s timeout) for 30 min",
        slow,
        30 * MINUTE,
    ));

    let weak = Health {
        fail_probability: 0.0,
        latency: None,
        capacity_factor: 0.3,
    };
    let healed = WARMUP + 30 * MINUTE;
    v.push(base(
        "limited-capacity",
        "30 min down, then 30% capacity for 1 h",
        vec![
            down(WARMUP, healed),
            Phase {
                start: healed,
                end: healed + HOUR,
                health: weak,
            },
        ],
        healed,
    ));

    let mut empty = outage("empty-queue", 30 * MINUTE);
    empty.description = "30 min down, traffic stops 2 min in (queue drains)".into();
    empty.workload.pauses = vec![(WARMUP + 2 * MINUTE, WARMUP + 90 * MINUTE)];
    v.push(empty);

    let mut retention = outage("retention-4d", 3 * DAY + 12 * HOUR);
    retention.description = "3.5-day outage, 4-day retention".into();
    retention.horizon = retention.healed_at + DAY;
    v.push(retention);

    // Longer than the retention: only keep-alive passes save the messages of the first day.
    let mut beyond = outage("retention-5d", 5 * DAY);
    beyond.description = "5-day outage, 4-day retention (longer than the retention)".into();
    beyond.horizon = beyond.healed_at + DAY;
    v.push(beyond);

    let mut oversized = outage("oversized-6h", 6 * HOUR);
    oversized.description =
        "6 h outage, consumer sized above the downstream (MaximumConcurrency 10)".into();
    oversized.maximum_concurrency = Some(10);
    v.push(oversized);

    let mut poison = base(
        "poison",
        "healthy downstream, one poison message",
        vec![],
        WARMUP,
    );
    poison.workload.poison_at = vec![WARMUP];
    poison.horizon = WARMUP + 2 * HOUR;
    v.push(poison);
    v
}

/// The standard scenario with this name.
pub fn by_name(name: &str) -> Option<Scenario> {
    standard().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_scenarios_have_unique_names_and_heal_before_the_horizon() {
        let all = standard();
        let mut names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(
            all.iter()
                .all(|s| s.trouble_start <= s.healed_at && s.healed_at < s.horizon)
        );
    }

    #[test]
    fn scenarios_are_found_by_name() {
        assert_eq!(by_name("outage-30m").unwrap().healed_at, 40 * MINUTE);
        assert!(by_name("nope").is_none());
    }
}
