//! The strategies compared, and their settings.
//!
//! - [`Strategy::NoBreaker`]: the ESM's native behaviour only.
//! - [`Strategy::Reference`]: the reference sample's policy — disable; wait 10 s; probe one
//!   message (an empty queue crashes the execution, leaving the ESM disabled); on failure wait
//!   20 s, doubling, for at most 10 probes, then give up leaving the ESM disabled; on success
//!   re-jitter for a fixed 60 s with delays of 60 + U(0, 118) s (one `SendMessage` per message)
//!   and re-enable fully. Nothing stops two executions running at once; the failed probe
//!   message is left invisible (its receive counts towards `maxReceiveCount`).
//! - [`Strategy::Ours`]: the breaker's policy, driven by `breaker_core` (backoff, ramp
//!   schedule, re-jitter window, cutoff, copy recognition and worker sizing): open → backoff → probe (a message near
//!   `maxReceiveCount` is re-sent fresh; nothing visible while messages are in flight is no
//!   evidence of health) → re-jitter the backlog → ramp `MaximumConcurrency`, each level judged
//!   as the product's ramp judges it (`ramp::Follow` on the complete, published periods of the
//!   alarm's metrics since the level was set: Lambda's one-minute metrics the consumer's timeout
//!   plus 60 s after the minute ends, `policy::complete_periods`) → close (restore the scaling config, alarm set to OK).
//!   Single flight.
//! - [`Strategy::OursFast`]: ours with the fast trip (issue 15, `alarmSettings.resolution:
//!   'high'`): the alarm reads the telemetry extension's per-second metrics in 10 s periods
//!   ([`FastTrip`]) instead of Lambda's 1-minute metrics, and the ramp judges the same 10 s
//!   periods once delivered (5.025 s after they end). The recovery policy is ours.

use breaker_core::backoff::Backoff;
use breaker_core::config::defaults;
use breaker_core::ramp::{Follow, Ramp};
use breaker_core::rejitter::DelayWindow;
use serde::Serialize;

use crate::time::{Millis, SECOND};

/// The construct's table of tunables, `cdk/src/limits.json` (one source of truth).
const LIMITS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../cdk/src/limits.json"
));

/// The default of setting `key` in `cdk/src/limits.json`.
fn limits_default(key: &str) -> u64 {
    let table: serde_json::Value =
        serde_json::from_str(LIMITS).expect("cdk/src/limits.json is JSON");
    table["settings"][key]["default"]
        .as_u64()
        .unwrap_or_else(|| panic!("limits.json settings.{key}.default is not a whole number"))
}

/// A strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// ESM native behaviour only.
    NoBreaker,
    /// The reference sample.
    Reference,
    /// This project.
    Ours,
    /// This project with the fast trip (high-resolution alarm on the extension's metrics).
    OursFast,
}

impl Strategy {
    /// All strategies, in table order.
    pub const ALL: [Strategy; 4] = [
        Strategy::NoBreaker,
        Strategy::Reference,
        Strategy::Ours,
        Strategy::OursFast,
    ];

    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::NoBreaker => "no breaker",
            Strategy::Reference => "reference",
            Strategy::Ours => "ours",
            Strategy::OursFast => "ours-fast",
        }
    }
}

/// Timing of the AWS plumbing between the alarm and the breaker's Lambdas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plumbing {
    /// Alarm state change → EventBridge rule → `StartExecution`.
    pub eventbridge: Millis,
    /// Execution start → first task running.
    pub sfn_start: Millis,
    /// One breaker Lambda call (warm) including the Step Functions transition.
    pub task: Millis,
    /// Memory of the breaker Lambdas (GB-seconds).
    pub breaker_memory_mb: u32,
}

impl Default for Plumbing {
    fn default() -> Self {
        Self {
            eventbridge: 500,
            sfn_start: 200,
            task: 150,
            breaker_memory_mb: 128,
        }
    }
}

/// The reference sample's fixed policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceConfig {
    /// Wait after disabling, before the first probe.
    pub first_wait: Millis,
    /// First wait after a failed probe (doubles).
    pub retry_wait: Millis,
    /// Probes before giving up (ESM left disabled).
    pub max_attempts: u32,
    /// Fixed re-jitter duration.
    pub rejitter_for: Millis,
    /// Delay = base + U(0, spread) seconds.
    pub delay_base_seconds: u64,
    /// See `delay_base_seconds`.
    pub delay_spread_seconds: u64,
    /// Messages moved per second (one `SendMessage` each, ESM-driven re-jitter Lambda).
    pub rejitter_per_second: u32,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        Self {
            first_wait: 10 * SECOND,
            retry_wait: 20 * SECOND,
            max_attempts: 10,
            rejitter_for: 60 * SECOND,
            delay_base_seconds: 60,
            delay_spread_seconds: 118,
            rejitter_per_second: 100,
        }
    }
}

/// The fast trip's alarm: `alarmSettings.resolution: 'high'` with the construct's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastTrip {
    /// The alarm period (and the relapse check's): 10 s, the shortest high-resolution alarm
    /// period and the construct's default for `resolution: 'high'`.
    pub period: Millis,
    /// N: `alarmSettings.evaluationPeriods` (`evaluationPeriods` in `limits.json`).
    pub evaluation_periods: u32,
    /// M: `alarmSettings.datapointsToAlarm` (`datapointsToAlarm` in `limits.json`).
    pub datapoints_to_alarm: u32,
}

impl Default for FastTrip {
    fn default() -> Self {
        Self {
            period: 10 * SECOND,
            evaluation_periods: limits_default("evaluationPeriods") as u32,
            datapoints_to_alarm: limits_default("datapointsToAlarm") as u32,
        }
    }
}

/// Our policy's settings (the construct's defaults except where noted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OursConfig {
    /// Backoff between probes.
    pub backoff: Backoff,
    /// Half-open ramp.
    pub ramp: Ramp,
    /// Time at each ramp level before checking health, with the one-minute alarm (ours:
    /// `ramp.stepInterval` for `alarmSettings.resolution: standard`).
    pub ramp_interval: Millis,
    /// The same with the fast trip (ours-fast: `ramp.stepInterval` for `resolution: high`).
    pub ramp_interval_high: Millis,
    /// The health-following ramp (`breaker_core::ramp::Follow`): its relapse threshold (error
    /// rate, percent of invocations, at a proven level that reopens the circuit), and how long
    /// it settles below a level that failed.
    pub follow: Follow,
    /// A first ramp rung below the first level (experiment, issue 16): the first level's
    /// concurrency with this `BatchSize`, before the mapping's own batch size.
    pub first_rung_batch: Option<usize>,
    /// Visibility while probing (> consumer timeout).
    pub probe_visibility: Millis,
    /// The configured re-jitter delay window (≤ 900 s): `rejitter.minDelay` / `maxDelay`; each
    /// pass sizes its window to the backlog within it (`rejitter::window_for_backlog`).
    pub rejitter_window: DelayWindow,
    /// Parallel re-jitter workers.
    pub rejitter_workers: u32,
    /// Messages one worker moves per second (batched receive/send/delete).
    pub rejitter_per_worker_second: u32,
    /// Time budget of one worker invocation.
    pub rejitter_slice: Millis,
    /// The alarm of [`Strategy::OursFast`] (the other strategies use the scenario's).
    pub fast_trip: FastTrip,
}

impl Default for OursConfig {
    fn default() -> Self {
        Self {
            backoff: defaults::BACKOFF,
            ramp: defaults::RAMP,
            ramp_interval: defaults::RAMP_INTERVAL_SECONDS * SECOND,
            ramp_interval_high: defaults::RAMP_INTERVAL_SECONDS * SECOND,
            follow: Follow::default(),
            first_rung_batch: None,
            probe_visibility: Millis::from(defaults::PROBE_VISIBILITY_SECONDS) * SECOND,
            // The construct's default window (issue 16: the simulator runs the product).
            rejitter_window: DelayWindow::new(
                limits_default("rejitterMinSeconds") as u32,
                limits_default("rejitterMaxSeconds") as u32,
            )
            .expect("limits.json's default re-jitter window is valid"),
            rejitter_workers: defaults::REJITTER_WORKERS,
            rejitter_per_worker_second: 500,
            rejitter_slice: defaults::REJITTER_SLICE_SECONDS * SECOND,
            fast_trip: FastTrip::default(),
        }
    }
}

impl OursConfig {
    /// The product's configuration for these settings, loaded by `breaker_core`'s own loader
    /// (`Config::from_lookup`, the handlers' `from_env`): the sim's settings go in as the
    /// environment variables the construct sets, every other setting takes the product's
    /// default. The simulator's decisions (`policy::backoff_decision`) read this.
    /// `fast`: the settings of ours-fast (`resolution: high`), else of ours. `consumer_timeout`:
    /// the scenario consumer's timeout, which the construct passes as `CONSUMER_TIMEOUT_SECONDS`
    /// (the function's own timeout, whole seconds).
    pub fn core_config(
        &self,
        fast: bool,
        consumer_timeout: Millis,
    ) -> breaker_core::config::Config {
        let interval = if fast {
            self.ramp_interval_high
        } else {
            self.ramp_interval
        };
        let env = [
            ("CIRCUIT_NAME", "sim".to_owned()),
            ("ESM_UUID", "sim-esm".to_owned()),
            (
                "QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/sim".to_owned(),
            ),
            (
                "QUEUE_ARN",
                "arn:aws:sqs:eu-west-1:123456789012:sim".to_owned(),
            ),
            ("CONSUMER_FUNCTION_NAME", "sim-consumer".to_owned()),
            (
                "CONSUMER_TIMEOUT_SECONDS",
                consumer_timeout.div_ceil(SECOND).to_string(),
            ),
            ("ALARM_NAME", "sim-alarm".to_owned()),
            ("CIRCUIT_TABLE_NAME", "sim-circuit".to_owned()),
            (
                "BACKOFF_INITIAL_SECONDS",
                self.backoff.initial_seconds.to_string(),
            ),
            ("BACKOFF_MAX_SECONDS", self.backoff.max_seconds.to_string()),
            ("BACKOFF_MULTIPLIER", self.backoff.multiplier.to_string()),
            (
                "BACKOFF_LONG_MAX_SECONDS",
                self.backoff.long_max_seconds.to_string(),
            ),
            ("RAMP_START", self.ramp.start.to_string()),
            ("RAMP_STEPS", self.ramp.steps.to_string()),
            (
                "RAMP_INTERVAL_SECONDS",
                (interval / SECOND).max(1).to_string(),
            ),
            (
                "PROBE_VISIBILITY_SECONDS",
                (self.probe_visibility / SECOND).to_string(),
            ),
            (
                "REJITTER_MIN_SECONDS",
                self.rejitter_window.min_seconds().to_string(),
            ),
            (
                "REJITTER_MAX_SECONDS",
                self.rejitter_window.max_seconds().to_string(),
            ),
            ("REJITTER_WORKERS", self.rejitter_workers.to_string()),
            // What the ramp judges: the alarm's metrics (the construct sets these from
            // `alarmSettings`: the extension's 10 s periods for `resolution: high`).
            (
                "CONSUMER_METRIC_RESOLUTION",
                if fast { "high" } else { "standard" }.to_owned(),
            ),
            (
                "CONSUMER_METRIC_PERIOD_SECONDS",
                if fast {
                    self.fast_trip.period / SECOND
                } else {
                    breaker_core::policy::LAMBDA_METRIC_PERIOD_SECONDS
                }
                .to_string(),
            ),
            (
                "REJITTER_SLICE_SECONDS",
                (self.rejitter_slice / SECOND).to_string(),
            ),
        ];
        breaker_core::config::Config::from_lookup(|name| {
            env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|e| panic!("the simulator's settings are not a valid configuration: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_defaults_are_the_contract_defaults() {
        let c = OursConfig::default();
        assert_eq!(
            c.backoff,
            Backoff {
                initial_seconds: 30,
                max_seconds: 300,
                multiplier: 2.0,
                long_max_seconds: limits_default("backoffLongMaxSeconds"),
            }
        );
        assert_eq!(c.ramp, Ramp { start: 2, steps: 3 });
        assert_eq!(c.ramp_interval, 60 * SECOND);
        assert_eq!(c.probe_visibility, 960 * SECOND);
        assert_eq!(
            (
                c.rejitter_window.min_seconds(),
                c.rejitter_window.max_seconds()
            ),
            (
                limits_default("rejitterMinSeconds") as u32,
                limits_default("rejitterMaxSeconds") as u32
            )
        );
        // Issue 16: the simulator runs the product's ramp with the product's defaults, the
        // relapse threshold included (the construct's `ramp.relapseErrorRatePercent`).
        assert_eq!(c.follow, Follow::default());
        assert_eq!(
            c.follow.relapse_percent,
            limits_default("relapseErrorRatePercent") as f64
        );
    }

    #[test]
    fn the_product_configuration_carries_the_simulated_settings() {
        let c = OursConfig {
            backoff: Backoff {
                initial_seconds: 5,
                max_seconds: 120,
                multiplier: 1.5,
                long_max_seconds: 600,
            },
            ..OursConfig::default()
        };
        let core = c.core_config(false, 45 * SECOND);
        assert_eq!(core.backoff, c.backoff);
        // The consumer's timeout, as the construct sets it: the ramp's one-minute periods are
        // complete that long and a minute after they end (`policy::publication_lag_ms`).
        assert_eq!(core.consumer_timeout_seconds, 45);
        assert_eq!(core.ramp, c.ramp);
        assert_eq!(core.ramp_interval_seconds * SECOND, c.ramp_interval);
        assert_eq!(core.max_open_seconds, None);
        assert_eq!(
            core.history_event_budget,
            breaker_core::config::defaults::HISTORY_EVENT_BUDGET
        );
    }

    #[test]
    fn the_fast_trip_takes_n_and_m_from_the_table_of_tunables() {
        let fast = FastTrip::default();
        assert_eq!(fast.period, 10 * SECOND);
        assert_eq!(
            (fast.evaluation_periods, fast.datapoints_to_alarm),
            (
                limits_default("evaluationPeriods") as u32,
                limits_default("datapointsToAlarm") as u32
            )
        );
        assert_eq!((fast.evaluation_periods, fast.datapoints_to_alarm), (3, 2));
        // The standard scenarios' 1-minute alarm uses the same N and M.
        let standard = crate::cloudwatch::AlarmConfig::STANDARD;
        assert_eq!(
            (standard.evaluation_periods, standard.datapoints_to_alarm),
            (fast.evaluation_periods, fast.datapoints_to_alarm)
        );
        assert_eq!(Strategy::OursFast.label(), "ours-fast");
        assert_eq!(
            serde_json::to_string(&Strategy::OursFast).unwrap(),
            "\"ours-fast\""
        );
    }
}
