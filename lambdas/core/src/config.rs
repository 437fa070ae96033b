//! The breaker's configuration, read from the environment in one place (see `CONTRACT.md`).
//! Every error names the variable that is missing or malformed.
//!
//! Defaults ([`defaults`]) and accepted ranges ([`limits`]) follow the one table of tunables,
//! `cdk/src/limits.json`, that the construct validates its props against; the test
//! `limits_follow_the_table` loads every variable at and beyond the table's bounds.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::backoff::Backoff;
use crate::ramp::Ramp;
use crate::timeouts::MAX_CONSUMER_TIMEOUT_SECONDS;

/// A configuration problem, naming the environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but its value is not acceptable.
    #[error("environment variable {name} is invalid ({value:?}): {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

/// The defaults for settings the environment leaves unset (CONTRACT.md), shared with the
/// simulator so that it models the deployed breaker.
pub mod defaults {
    use crate::backoff::Backoff;
    use crate::ramp::Ramp;

    /// `BACKOFF_INITIAL_SECONDS` / `BACKOFF_MAX_SECONDS` / `BACKOFF_MULTIPLIER`: ceilings 30,
    /// 60, 120, 240, then 300 s, so at the cap a probe every 150.5 s on average (about 24 calls
    /// an hour). The cap was 900 s (8 calls an hour); chosen in the simulator over seeds 42–61
    /// (issue 16, lambdas/sim/README.md, *Probing cadence*): a healed downstream is found within
    /// minutes, at 3× the calls per hour while the downstream stays sick.
    /// `BACKOFF_LONG_MAX_SECONDS`: after 30 minutes sick the cap grows to a sixth of that time,
    /// up to 900 s (`crate::backoff`): waits of 600–900 s from 90 minutes on, ~4.8 calls an
    /// hour, fewer than the 900 s cap's ~8, so that a long outage costs the downstream no more
    /// than it did (an unset variable is 3 × `BACKOFF_MAX_SECONDS`,
    /// `Backoff::default_long_max_seconds`).
    pub const BACKOFF: Backoff = Backoff {
        initial_seconds: 30,
        max_seconds: 300,
        multiplier: 2.0,
        long_max_seconds: 900,
    };
    /// `PROBE_COUNT`.
    pub const PROBE_COUNT: u8 = 1;
    /// `PROBE_VISIBILITY_SECONDS`.
    pub const PROBE_VISIBILITY_SECONDS: u32 = 960;
    /// `RAMP_START` / `RAMP_STEPS`.
    pub const RAMP: Ramp = Ramp { start: 2, steps: 3 };
    /// `RAMP_INTERVAL_SECONDS`.
    pub const RAMP_INTERVAL_SECONDS: u64 = 60;
    /// `RELAPSE_ERROR_RATE_PERCENT`.
    pub const RELAPSE_ERROR_RATE_PERCENT: f64 = 20.0;
    /// `REJITTER_ENABLED`.
    pub const REJITTER_ENABLED: bool = true;
    /// `REJITTER_MIN_SECONDS`.
    pub const REJITTER_MIN_SECONDS: u32 = 0;
    /// `REJITTER_MAX_SECONDS`.
    pub const REJITTER_MAX_SECONDS: u32 = 300;
    /// `REJITTER_WORKERS`.
    pub const REJITTER_WORKERS: u32 = 4;
    /// `REJITTER_SLICE_SECONDS`.
    pub const REJITTER_SLICE_SECONDS: u64 = 60;
    /// `HISTORY_EVENT_BUDGET`: well under Step Functions' 25,000 history events per execution
    /// (see [`crate::history`]).
    pub const HISTORY_EVENT_BUDGET: u32 = 10_000;
}

/// The accepted range of each numeric variable (`cdk/src/limits.json`); `RELAPSE_ERROR_RATE_PERCENT`
/// is a percentage in (0, 100].
pub mod limits {
    use std::ops::RangeInclusive;

    use super::{MAX_HISTORY_EVENT_BUDGET, MIN_HISTORY_EVENT_BUDGET};
    use crate::ramp::{MAX_MAXIMUM_CONCURRENCY, MIN_MAXIMUM_CONCURRENCY};

    /// One day: the longest backoff delay and ramp interval (probe at least once a day).
    pub(super) const DAY: u64 = 86_400;

    /// `BACKOFF_INITIAL_SECONDS` (and at most `BACKOFF_MAX_SECONDS`).
    pub const BACKOFF_INITIAL_SECONDS: RangeInclusive<u64> = 1..=DAY;
    /// `BACKOFF_MAX_SECONDS`.
    pub const BACKOFF_MAX_SECONDS: RangeInclusive<u64> = 1..=DAY;
    /// `BACKOFF_LONG_MAX_SECONDS` (and at least `BACKOFF_MAX_SECONDS`).
    pub const BACKOFF_LONG_MAX_SECONDS: RangeInclusive<u64> = 1..=DAY;
    /// `BACKOFF_MULTIPLIER` (1 is a constant backoff).
    pub const BACKOFF_MULTIPLIER: RangeInclusive<f64> = 1.0..=100.0;
    /// `MAX_OPEN_SECONDS`: at most 366 days.
    pub const MAX_OPEN_SECONDS: RangeInclusive<u64> = 1..=366 * DAY;
    /// `PROBE_COUNT`: SQS receives at most 10 messages at once.
    pub const PROBE_COUNT: RangeInclusive<u8> = 1..=10;
    /// `CONSUMER_TIMEOUT_SECONDS`: derived by the construct from the consumer, not a tunable of
    /// `limits.json`; at most what the probe function holds (`crate::timeouts`).
    pub const CONSUMER_TIMEOUT_SECONDS: RangeInclusive<u32> =
        1..=crate::timeouts::MAX_CONSUMER_TIMEOUT_SECONDS;
    /// `CONSUMER_METRIC_PERIOD_SECONDS`: a CloudWatch period (1, 5, 10, 20, 30 s for
    /// high-resolution metrics, else a multiple of 60) of at most a day; not a tunable.
    pub const CONSUMER_METRIC_PERIOD_SECONDS: RangeInclusive<u64> = 1..=DAY;
    /// `PROBE_VISIBILITY_SECONDS`: the SQS visibility limit.
    pub const PROBE_VISIBILITY_SECONDS: RangeInclusive<u32> = 1..=43_200;
    /// `RAMP_START`: the range of an event-source mapping's `MaximumConcurrency`.
    pub const RAMP_START: RangeInclusive<u32> = MIN_MAXIMUM_CONCURRENCY..=MAX_MAXIMUM_CONCURRENCY;
    /// `RAMP_STEPS`.
    pub const RAMP_STEPS: RangeInclusive<u32> = 1..=100;
    /// `RAMP_INTERVAL_SECONDS`.
    pub const RAMP_INTERVAL_SECONDS: RangeInclusive<u64> = 1..=DAY;
    /// `REJITTER_MIN_SECONDS`: the SQS `DelaySeconds` limit.
    pub const REJITTER_MIN_SECONDS: RangeInclusive<u32> = 0..=900;
    /// `REJITTER_MAX_SECONDS`: the SQS `DelaySeconds` limit.
    pub const REJITTER_MAX_SECONDS: RangeInclusive<u32> = 1..=900;
    /// `REJITTER_WORKERS`: the workers run as the iterations of an inline Map state, and Step
    /// Functions runs at most 40 of those at once.
    pub const REJITTER_WORKERS: RangeInclusive<u32> = 1..=40;
    /// `REJITTER_SLICE_SECONDS`: leave room in Lambda's 900 s limit.
    pub const REJITTER_SLICE_SECONDS: RangeInclusive<u64> = 1..=840;
    /// `HISTORY_EVENT_BUDGET`: Step Functions keeps at most 25,000 events per execution.
    pub const HISTORY_EVENT_BUDGET: RangeInclusive<u32> =
        MIN_HISTORY_EVENT_BUDGET..=MAX_HISTORY_EVENT_BUDGET;
}

/// The largest `HISTORY_EVENT_BUDGET` accepted: a margin of 5,000 below Step Functions' limit of
/// 25,000 history events per execution.
pub const MAX_HISTORY_EVENT_BUDGET: u32 = 20_000;
/// The smallest `HISTORY_EVENT_BUDGET` accepted (the configuration must also fit one full cycle,
/// [`crate::history::Budget::min_limit`]).
pub const MIN_HISTORY_EVENT_BUDGET: u32 = 3_000;

/// Everything a breaker function needs to know about its circuit and policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `CIRCUIT_NAME`: name of this breaker (events, logs).
    pub circuit_name: String,
    /// `ESM_UUID`: the consumer's event-source mapping.
    pub esm_uuid: String,
    /// `QUEUE_URL`: the consumer's queue.
    pub queue_url: String,
    /// `QUEUE_ARN`: the consumer's queue.
    pub queue_arn: String,
    /// The region, taken from `QUEUE_ARN` (the probe event's `awsRegion`).
    pub region: String,
    /// `CONSUMER_FUNCTION_NAME`: the consumer the probe invokes (qualified for an alias or a
    /// version; its metric dimensions follow from it, [`crate::mapping::metric_dimensions`]).
    pub consumer_function_name: String,
    /// `CONSUMER_METRIC_PERIOD_SECONDS`: the period of the consumer's `Errors`/`Invocations` the
    /// relapse check reads (default 60, Lambda's; 1, 5, 10, 20, 30 or a multiple of 60 up to a
    /// day). Set by the construct, not a tunable of `limits.json`.
    pub consumer_metric_period_seconds: u64,
    /// `CONSUMER_METRIC_RESOLUTION`: `high` (the telemetry extension's per-second metrics) or
    /// `standard` (Lambda's, the default); the relapse check reads what the alarm reads. Set by
    /// the construct from `alarmSettings.resolution`, not a tunable of `limits.json`.
    pub consumer_metric_resolution: crate::mapping::MetricResolution,
    /// `ALARM_NAME`: the trigger alarm, reset to OK on close.
    pub alarm_name: String,
    /// `EVENT_BUS_NAME`: bus for breaker events (default `default`).
    pub event_bus_name: String,
    /// `CIRCUIT_TABLE_NAME`: the DynamoDB table holding the durable circuit record.
    pub circuit_table_name: String,
    /// `BACKOFF_INITIAL_SECONDS` / `BACKOFF_MAX_SECONDS` / `BACKOFF_MULTIPLIER` (30 / 300 / 2).
    pub backoff: Backoff,
    /// `MAX_OPEN_SECONDS`: give up after this long open; `None` = never.
    pub max_open_seconds: Option<u64>,
    /// `PROBE_COUNT`: messages per probe, 1–10 (default 1).
    pub probe_count: u8,
    /// `CONSUMER_TIMEOUT_SECONDS`: the consumer's timeout, 1–795 (default 795, the longest the
    /// probe function holds; see [`crate::timeouts`]); the probe's invoke may last this plus
    /// [`crate::timeouts::INVOKE_MARGIN_SECONDS`].
    pub consumer_timeout_seconds: u32,
    /// `PROBE_VISIBILITY_SECONDS`: visibility while probing, longer than the consumer's timeout
    /// (default 960, at most 43,200).
    pub probe_visibility_seconds: u32,
    /// `RAMP_START` / `RAMP_STEPS` (2 / 3).
    pub ramp: Ramp,
    /// `RAMP_INTERVAL_SECONDS`: time between ramp steps (default 60).
    pub ramp_interval_seconds: u64,
    /// `RELAPSE_ERROR_RATE_PERCENT`: error rate during a ramp step that reopens (default 20).
    pub relapse_error_rate_percent: f64,
    /// `REJITTER_ENABLED` (default true).
    pub rejitter_enabled: bool,
    /// `REJITTER_MIN_SECONDS` (default 0).
    pub rejitter_min_seconds: u32,
    /// `REJITTER_MAX_SECONDS` (default 300, at most 900).
    pub rejitter_max_seconds: u32,
    /// `REJITTER_WORKERS`: max parallel re-jitter workers (default 4).
    pub rejitter_workers: u32,
    /// `REJITTER_SLICE_SECONDS`: time budget of one re-jitter invocation (default 60).
    pub rejitter_slice_seconds: u64,
    /// `HISTORY_EVENT_BUDGET`: history events one execution may use before it continues as new
    /// (default 10,000; see [`crate::history`]).
    pub history_event_budget: u32,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, set by Lambda: the function's memory in MiB (128 when
    /// unset, Lambda's default). Re-jitter sizes its lanes by it (`crate::rejitter::lane_plan`).
    pub function_memory_mib: u64,
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let queue_arn = env.required("QUEUE_ARN")?;
        let region = region_of_arn(&queue_arn).ok_or_else(|| ConfigError::Invalid {
            name: "QUEUE_ARN",
            value: queue_arn.clone(),
            reason: "expected arn:<partition>:sqs:<region>:<account>:<queue>".into(),
        })?;
        let max_seconds =
            env.parsed("BACKOFF_MAX_SECONDS", defaults::BACKOFF.max_seconds, |v| {
                within(
                    v,
                    limits::BACKOFF_MAX_SECONDS,
                    " (probe at least once a day)",
                )
            })?;
        let backoff = Backoff {
            initial_seconds: env.parsed(
                "BACKOFF_INITIAL_SECONDS",
                defaults::BACKOFF.initial_seconds,
                |v| within(v, limits::BACKOFF_INITIAL_SECONDS, ""),
            )?,
            max_seconds,
            multiplier: env.parsed("BACKOFF_MULTIPLIER", defaults::BACKOFF.multiplier, |v| {
                within(v, limits::BACKOFF_MULTIPLIER, " (1 is a constant backoff)")
            })?,
            long_max_seconds: env.parsed(
                "BACKOFF_LONG_MAX_SECONDS",
                Backoff::default_long_max_seconds(max_seconds, limits::DAY),
                |v| {
                    within(
                        v,
                        limits::BACKOFF_LONG_MAX_SECONDS,
                        " (probe at least once a day)",
                    )
                },
            )?,
        };
        if backoff.max_seconds < backoff.initial_seconds {
            return Err(ConfigError::Invalid {
                name: "BACKOFF_MAX_SECONDS",
                value: backoff.max_seconds.to_string(),
                reason: format!(
                    "must be ≥ BACKOFF_INITIAL_SECONDS ({})",
                    backoff.initial_seconds
                ),
            });
        }
        if backoff.long_max_seconds < backoff.max_seconds {
            return Err(ConfigError::Invalid {
                name: "BACKOFF_LONG_MAX_SECONDS",
                value: backoff.long_max_seconds.to_string(),
                reason: format!("must be ≥ BACKOFF_MAX_SECONDS ({})", backoff.max_seconds),
            });
        }
        let rejitter_min_seconds = env.parsed(
            "REJITTER_MIN_SECONDS",
            defaults::REJITTER_MIN_SECONDS,
            |v| {
                within(
                    v,
                    limits::REJITTER_MIN_SECONDS,
                    " (the SQS DelaySeconds limit)",
                )
            },
        )?;
        let rejitter_max_seconds = env.parsed(
            "REJITTER_MAX_SECONDS",
            defaults::REJITTER_MAX_SECONDS,
            |v| {
                within(
                    v,
                    limits::REJITTER_MAX_SECONDS,
                    " (the SQS DelaySeconds limit)",
                )
            },
        )?;
        if rejitter_max_seconds < rejitter_min_seconds {
            return Err(ConfigError::Invalid {
                name: "REJITTER_MAX_SECONDS",
                value: rejitter_max_seconds.to_string(),
                reason: format!("must be ≥ REJITTER_MIN_SECONDS ({rejitter_min_seconds})"),
            });
        }
        let config = Self {
            circuit_name: env.required("CIRCUIT_NAME")?,
            esm_uuid: env.required("ESM_UUID")?,
            queue_url: env.required("QUEUE_URL")?,
            queue_arn,
            region,
            consumer_function_name: env.required("CONSUMER_FUNCTION_NAME")?,
            consumer_metric_period_seconds: env.parsed(
                "CONSUMER_METRIC_PERIOD_SECONDS",
                crate::policy::LAMBDA_METRIC_PERIOD_SECONDS,
                |v| {
                    within(v, limits::CONSUMER_METRIC_PERIOD_SECONDS, " (one day)")?;
                    check(
                        [1, 5, 10, 20, 30].contains(v) || v % 60 == 0,
                        "must be 1, 5, 10, 20 or 30 (high-resolution metrics) or a multiple of 60 \
                         (CloudWatch periods)",
                    )
                },
            )?,
            consumer_metric_resolution: match env.optional("CONSUMER_METRIC_RESOLUTION") {
                None => crate::mapping::MetricResolution::default(),
                Some(raw) => raw.parse().map_err(|reason| ConfigError::Invalid {
                    name: "CONSUMER_METRIC_RESOLUTION",
                    value: raw,
                    reason,
                })?,
            },
            alarm_name: env.required("ALARM_NAME")?,
            event_bus_name: env
                .optional("EVENT_BUS_NAME")
                .unwrap_or_else(|| "default".into()),
            circuit_table_name: env.required("CIRCUIT_TABLE_NAME")?,
            backoff,
            max_open_seconds: match env.optional("MAX_OPEN_SECONDS") {
                None => None,
                Some(_) => Some(env.parsed("MAX_OPEN_SECONDS", 0u64, |v| {
                    within(v, limits::MAX_OPEN_SECONDS, " (366 days)")
                })?),
            },
            probe_count: env.parsed("PROBE_COUNT", defaults::PROBE_COUNT, |v| {
                within(v, limits::PROBE_COUNT, "")
            })?,
            consumer_timeout_seconds: env.parsed(
                "CONSUMER_TIMEOUT_SECONDS",
                MAX_CONSUMER_TIMEOUT_SECONDS,
                |v| {
                    within(
                        v,
                        limits::CONSUMER_TIMEOUT_SECONDS,
                        " (the probe function holds its receive, the invoke and settling the \
                         messages in Lambda's 900 s)",
                    )
                },
            )?,
            probe_visibility_seconds: env.parsed(
                "PROBE_VISIBILITY_SECONDS",
                defaults::PROBE_VISIBILITY_SECONDS,
                |v| {
                    within(
                        v,
                        limits::PROBE_VISIBILITY_SECONDS,
                        " (the SQS visibility limit)",
                    )
                },
            )?,
            ramp: Ramp {
                start: env.parsed("RAMP_START", defaults::RAMP.start, |v| {
                    within(v, limits::RAMP_START, " (the ESM MaximumConcurrency range)")
                })?,
                steps: env.parsed("RAMP_STEPS", defaults::RAMP.steps, |v| {
                    within(v, limits::RAMP_STEPS, "")
                })?,
            },
            ramp_interval_seconds: env.parsed(
                "RAMP_INTERVAL_SECONDS",
                defaults::RAMP_INTERVAL_SECONDS,
                |v| within(v, limits::RAMP_INTERVAL_SECONDS, ""),
            )?,
            relapse_error_rate_percent: env.parsed(
                "RELAPSE_ERROR_RATE_PERCENT",
                defaults::RELAPSE_ERROR_RATE_PERCENT,
                |v| {
                    check(
                        v.is_finite() && *v > 0.0 && *v <= 100.0,
                        "must be a percentage in (0, 100]",
                    )
                },
            )?,
            rejitter_enabled: env.parsed_bool("REJITTER_ENABLED", defaults::REJITTER_ENABLED)?,
            rejitter_min_seconds,
            rejitter_max_seconds,
            rejitter_workers: env.parsed("REJITTER_WORKERS", defaults::REJITTER_WORKERS, |v| {
                within(
                    v,
                    limits::REJITTER_WORKERS,
                    " (a Step Functions inline Map runs at most 40 iterations at once)",
                )
            })?,
            rejitter_slice_seconds: env.parsed(
                "REJITTER_SLICE_SECONDS",
                defaults::REJITTER_SLICE_SECONDS,
                |v| {
                    within(
                        v,
                        limits::REJITTER_SLICE_SECONDS,
                        " (leave room in Lambda's 900 s limit)",
                    )
                },
            )?,
            history_event_budget: env.parsed(
                "HISTORY_EVENT_BUDGET",
                defaults::HISTORY_EVENT_BUDGET,
                |v| {
                    within(
                        v,
                        limits::HISTORY_EVENT_BUDGET,
                        " (Step Functions keeps at most 25,000 events per execution)",
                    )
                },
            )?,
            function_memory_mib: env.parsed(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                crate::rejitter::DEFAULT_FUNCTION_MEMORY_BYTES / (1024 * 1024),
                |v| within(v, 128..=10_240, " (Lambda's memory sizes, MiB)"),
            )?,
        };
        // Lambda's own metrics are per minute: a shorter period over them has no data.
        if config.consumer_metric_resolution == crate::mapping::MetricResolution::Standard
            && !config.consumer_metric_period_seconds.is_multiple_of(60)
        {
            return Err(ConfigError::Invalid {
                name: "CONSUMER_METRIC_PERIOD_SECONDS",
                value: config.consumer_metric_period_seconds.to_string(),
                reason: "must be a multiple of 60 with CONSUMER_METRIC_RESOLUTION=standard \
                         (Lambda's metrics are per minute); set CONSUMER_METRIC_RESOLUTION=high \
                         for the telemetry extension's per-second metrics"
                    .into(),
            });
        }
        let needed = crate::history::Budget::of(&config).min_limit();
        if config.history_event_budget < needed {
            return Err(ConfigError::Invalid {
                name: "HISTORY_EVENT_BUDGET",
                value: config.history_event_budget.to_string(),
                reason: format!(
                    "must hold one full cycle of this configuration (probe, re-jitter, \
                     RAMP_STEPS={} ramp, relapse): at least {needed}",
                    config.ramp.steps
                ),
            });
        }
        Ok(config)
    }
}

/// The region of an ARN (`arn:partition:service:region:account:resource`).
pub fn region_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_tag, _partition, _service, region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn_tag == "arn" && !region.is_empty() && !resource.is_empty()).then(|| region.to_owned())
}

fn check(ok: bool, reason: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(reason.to_owned()) }
}

/// `Ok` when `v` lies in `range`, else a reason naming the range and `why` it is so.
fn within<T: PartialOrd + Display>(
    v: &T,
    range: RangeInclusive<T>,
    why: &str,
) -> Result<(), String> {
    check(
        range.contains(v),
        &format!("must be {}–{}{why}", range.start(), range.end()),
    )
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    fn parsed<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        valid: impl Fn(&T) -> Result<(), String>,
    ) -> Result<T, ConfigError> {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name,
            value: raw.clone(),
            reason,
        };
        let value: T = raw
            .parse()
            .map_err(|_| invalid("not a valid number for this setting".into()))?;
        valid(&value).map_err(invalid)?;
        Ok(value)
    }

    fn parsed_bool(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self
            .optional(name)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                name,
                value: other.into(),
                reason: "expected true or false".into(),
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A complete, valid environment with only the required variables.
    pub(crate) fn minimal_env() -> HashMap<&'static str, String> {
        HashMap::from([
            ("CIRCUIT_NAME", "orders".to_owned()),
            ("ESM_UUID", "esm-1".to_owned()),
            (
                "QUEUE_URL",
                "http://127.0.0.1/123456789012/orders".to_owned(),
            ),
            (
                "QUEUE_ARN",
                "arn:aws:sqs:eu-west-1:123456789012:orders".to_owned(),
            ),
            ("CONSUMER_FUNCTION_NAME", "orders-consumer".to_owned()),
            ("ALARM_NAME", "orders-errors".to_owned()),
            ("CIRCUIT_TABLE_NAME", "orders-circuit".to_owned()),
        ])
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = load(&minimal_env()).unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.event_bus_name, "default");
        assert_eq!(
            c.backoff,
            Backoff {
                initial_seconds: 30,
                max_seconds: 300,
                multiplier: 2.0,
                long_max_seconds: 900,
            }
        );
        assert_eq!(c.max_open_seconds, None);
        assert_eq!((c.probe_count, c.probe_visibility_seconds), (1, 960));
        assert_eq!(c.consumer_timeout_seconds, 795);
        assert_eq!(c.consumer_metric_period_seconds, 60);
        assert_eq!(c.ramp, Ramp { start: 2, steps: 3 });
        assert_eq!(c.ramp_interval_seconds, 60);
        assert_eq!(c.relapse_error_rate_percent, 20.0);
        assert!(c.rejitter_enabled);
        assert_eq!((c.rejitter_min_seconds, c.rejitter_max_seconds), (0, 300));
        assert_eq!(
            (
                c.rejitter_workers,
                c.rejitter_slice_seconds,
                c.history_event_budget
            ),
            (4, 60, 10_000)
        );
    }

    #[test]
    fn every_variable_is_read() {
        let mut env = minimal_env();
        for (k, v) in [
            ("EVENT_BUS_NAME", "ops"),
            ("BACKOFF_INITIAL_SECONDS", "5"),
            ("BACKOFF_MAX_SECONDS", "60"),
            ("BACKOFF_MULTIPLIER", "1.5"),
            ("BACKOFF_LONG_MAX_SECONDS", "600"),
            ("MAX_OPEN_SECONDS", "3600"),
            ("PROBE_COUNT", "3"),
            ("PROBE_VISIBILITY_SECONDS", "120"),
            ("CONSUMER_TIMEOUT_SECONDS", "60"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "10"),
            ("CONSUMER_METRIC_RESOLUTION", "high"),
            ("RAMP_START", "4"),
            ("RAMP_STEPS", "5"),
            ("RAMP_INTERVAL_SECONDS", "30"),
            ("RELAPSE_ERROR_RATE_PERCENT", "25"),
            ("REJITTER_ENABLED", "FALSE"),
            ("REJITTER_MIN_SECONDS", "10"),
            ("REJITTER_MAX_SECONDS", "900"),
            ("REJITTER_WORKERS", "8"),
            ("REJITTER_SLICE_SECONDS", "30"),
            ("HISTORY_EVENT_BUDGET", "5000"),
        ] {
            env.insert(k, v.to_owned());
        }
        let c = load(&env).unwrap();
        assert_eq!(c.event_bus_name, "ops");
        assert_eq!(
            c.backoff,
            Backoff {
                initial_seconds: 5,
                max_seconds: 60,
                multiplier: 1.5,
                long_max_seconds: 600,
            }
        );
        assert_eq!(c.max_open_seconds, Some(3600));
        assert_eq!((c.probe_count, c.probe_visibility_seconds), (3, 120));
        assert_eq!(c.consumer_timeout_seconds, 60);
        assert_eq!(c.consumer_metric_period_seconds, 10);
        assert_eq!(c.ramp, Ramp { start: 4, steps: 5 });
        assert_eq!(c.ramp_interval_seconds, 30);
        assert_eq!(c.relapse_error_rate_percent, 25.0);
        assert!(!c.rejitter_enabled);
        assert_eq!((c.rejitter_min_seconds, c.rejitter_max_seconds), (10, 900));
        assert_eq!(
            (
                c.rejitter_workers,
                c.rejitter_slice_seconds,
                c.history_event_budget
            ),
            (8, 30, 5_000)
        );
    }

    /// Issue 15: the relapse check reads the metrics the construct's alarm reads. The construct
    /// passes `CONSUMER_METRIC_RESOLUTION` (`high`: the telemetry extension's per-second
    /// `SqsCircuitBreaker/Consumer` metrics; `standard`: Lambda's own); unset is `standard`, as
    /// before, and a standard period under a minute is refused (Lambda's metrics are per minute).
    #[test]
    fn metric_resolution_is_read_and_a_standard_period_is_whole_minutes() {
        use crate::mapping::MetricResolution;
        assert_eq!(
            load(&minimal_env()).unwrap().consumer_metric_resolution,
            MetricResolution::Standard
        );
        let mut env = minimal_env();
        env.insert("CONSUMER_METRIC_RESOLUTION", "high".into());
        env.insert("CONSUMER_METRIC_PERIOD_SECONDS", "10".into());
        let c = load(&env).unwrap();
        assert_eq!(
            (
                c.consumer_metric_resolution,
                c.consumer_metric_period_seconds
            ),
            (MetricResolution::High, 10)
        );
        env.insert("CONSUMER_METRIC_RESOLUTION", "standard".into());
        match load(&env) {
            Err(ConfigError::Invalid { name, reason, .. }) => {
                assert_eq!(name, "CONSUMER_METRIC_PERIOD_SECONDS");
                assert!(
                    reason.contains("CONSUMER_METRIC_RESOLUTION=standard"),
                    "{reason}"
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        env.insert("CONSUMER_METRIC_RESOLUTION", "fast".into());
        match load(&env) {
            Err(ConfigError::Invalid { name, .. }) => {
                assert_eq!(name, "CONSUMER_METRIC_RESOLUTION")
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn missing_required_variable_is_named() {
        for name in [
            "CIRCUIT_NAME",
            "ESM_UUID",
            "QUEUE_URL",
            "QUEUE_ARN",
            "CONSUMER_FUNCTION_NAME",
            "ALARM_NAME",
            "CIRCUIT_TABLE_NAME",
        ] {
            let mut env = minimal_env();
            env.remove(name);
            let err = load(&env).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn malformed_values_are_rejected_naming_the_variable() {
        for (name, value) in [
            ("PROBE_COUNT", "11"),
            ("PROBE_COUNT", "0"),
            ("PROBE_COUNT", "one"),
            ("BACKOFF_MULTIPLIER", "0.5"),
            ("BACKOFF_MAX_SECONDS", "10"),
            ("RAMP_START", "1"),
            ("REJITTER_MAX_SECONDS", "901"),
            ("REJITTER_ENABLED", "yes"),
            ("PROBE_VISIBILITY_SECONDS", "43201"),
            ("CONSUMER_TIMEOUT_SECONDS", "0"),
            ("CONSUMER_TIMEOUT_SECONDS", "796"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "0"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "45"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "86460"),
            ("RELAPSE_ERROR_RATE_PERCENT", "0"),
            ("MAX_OPEN_SECONDS", "-1"),
            ("HISTORY_EVENT_BUDGET", "999"),
            ("HISTORY_EVENT_BUDGET", "20001"),
            ("QUEUE_ARN", "orders"),
        ] {
            let mut env = minimal_env();
            env.insert(name, value.to_owned());
            match load(&env) {
                Err(ConfigError::Invalid { name: n, .. }) => assert_eq!(n, name, "{name}={value}"),
                other => panic!("{name}={value}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn history_budget_must_hold_one_full_cycle_of_the_configuration() {
        let mut env = minimal_env();
        env.insert("RAMP_STEPS", "100".into());
        env.insert("HISTORY_EVENT_BUDGET", "5000".into());
        let err = load(&env).unwrap_err();
        assert!(
            err.to_string().contains("HISTORY_EVENT_BUDGET")
                && err.to_string().contains("RAMP_STEPS=100"),
            "{err}"
        );
        env.insert("RAMP_STEPS", "3".into());
        assert_eq!(load(&env).unwrap().history_event_budget, 5_000);
    }

    /// Reads one setting of a loaded configuration, as `cdk/src/limits.json` writes it.
    type Setting = fn(&Config) -> serde_json::Value;

    /// Each variable of the loader that has a default, and its setting.
    const TUNABLES: [(&str, Setting); 18] = [
        ("BACKOFF_INITIAL_SECONDS", |c| {
            c.backoff.initial_seconds.into()
        }),
        ("BACKOFF_MAX_SECONDS", |c| c.backoff.max_seconds.into()),
        ("BACKOFF_MULTIPLIER", |c| c.backoff.multiplier.into()),
        ("BACKOFF_LONG_MAX_SECONDS", |c| {
            c.backoff.long_max_seconds.into()
        }),
        ("MAX_OPEN_SECONDS", |c| c.max_open_seconds.into()),
        ("PROBE_COUNT", |c| c.probe_count.into()),
        ("PROBE_VISIBILITY_SECONDS", |c| {
            c.probe_visibility_seconds.into()
        }),
        ("RAMP_START", |c| c.ramp.start.into()),
        ("RAMP_STEPS", |c| c.ramp.steps.into()),
        ("RAMP_INTERVAL_SECONDS", |c| c.ramp_interval_seconds.into()),
        ("RELAPSE_ERROR_RATE_PERCENT", |c| {
            c.relapse_error_rate_percent.into()
        }),
        ("REJITTER_ENABLED", |c| c.rejitter_enabled.into()),
        ("REJITTER_MIN_SECONDS", |c| c.rejitter_min_seconds.into()),
        ("REJITTER_MAX_SECONDS", |c| c.rejitter_max_seconds.into()),
        ("REJITTER_WORKERS", |c| c.rejitter_workers.into()),
        ("REJITTER_SLICE_SECONDS", |c| {
            c.rejitter_slice_seconds.into()
        }),
        ("HISTORY_EVENT_BUDGET", |c| c.history_event_budget.into()),
        ("EVENT_BUS_NAME", |c| c.event_bus_name.clone().into()),
    ];

    /// Numbers compare by value (`2` and `2.0` are the same default).
    fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        }
    }

    /// Settings a probe of `name` at `value` needs so that only `name` is judged: the backoff
    /// delays and the re-jitter window are ordered pairs.
    fn companions(name: &str) -> &'static [(&'static str, &'static str)] {
        match name {
            "BACKOFF_INITIAL_SECONDS" => &[("BACKOFF_MAX_SECONDS", "86400")],
            "BACKOFF_MAX_SECONDS" => &[("BACKOFF_INITIAL_SECONDS", "1")],
            "BACKOFF_LONG_MAX_SECONDS" => &[
                ("BACKOFF_INITIAL_SECONDS", "1"),
                ("BACKOFF_MAX_SECONDS", "1"),
            ],
            "REJITTER_MIN_SECONDS" => &[("REJITTER_MAX_SECONDS", "900")],
            _ => &[],
        }
    }

    /// The one table of tunables (`cdk/src/limits.json`, which the construct validates its props
    /// against and `CONTRACT.md` lists): every variable in it is read here with its default, its
    /// bounds are accepted and the values just beyond them refused, naming the variable.
    #[test]
    fn limits_follow_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cdk/src/limits.json");
        let table: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let defaults = load(&minimal_env()).unwrap();
        let mut in_table = Vec::new();
        for (key, limit) in table["settings"].as_object().unwrap() {
            let Some(wanted) = limit["env"].as_str() else {
                continue;
            };
            let &(name, value_of) = TUNABLES
                .iter()
                .find(|(n, _)| *n == wanted)
                .unwrap_or_else(|| panic!("{key}: the loader reads no variable {wanted}"));
            in_table.push(name);
            assert!(
                same(&value_of(&defaults), &limit["default"]),
                "{name}: the loader's default is {}, the table's {}",
                value_of(&defaults),
                limit["default"]
            );
            let (Some(min), Some(max)) = (limit["min"].as_f64(), limit["max"].as_f64()) else {
                continue;
            };
            let kind = limit["kind"].as_str().unwrap();
            let step = if kind == "integer" || kind == "seconds" {
                1.0
            } else {
                0.5
            };
            let mut accepted = vec![max];
            let mut refused = vec![max + step];
            if kind == "percent" {
                // (min, max]: the minimum itself is refused.
                accepted.push(min + step);
                refused.push(min);
            } else {
                accepted.push(min);
                refused.push(min - step);
            }
            let probe = |value: f64| {
                let mut env = minimal_env();
                for (k, v) in companions(name) {
                    env.insert(k, (*v).to_owned());
                }
                env.insert(name, value.to_string());
                load(&env)
            };
            for value in accepted {
                match probe(value) {
                    Ok(c) => assert!(
                        same(&value_of(&c), &value.into()),
                        "{name}={value} read as {}",
                        value_of(&c)
                    ),
                    Err(e) => panic!("{name}={value} is within the table's range but refused: {e}"),
                }
            }
            for value in refused {
                match probe(value) {
                    Err(ConfigError::Invalid { name: n, .. }) => {
                        assert_eq!(n, name, "{name}={value}")
                    }
                    other => panic!("{name}={value} is outside the table's range: {other:?}"),
                }
            }
        }
        let mut tunables: Vec<&str> = TUNABLES
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != "EVENT_BUS_NAME")
            .collect();
        tunables.sort_unstable();
        in_table.sort_unstable();
        assert_eq!(tunables, in_table, "tunables of the loader and of {path}");
    }

    #[test]
    fn rejitter_window_must_not_be_inverted() {
        let mut env = minimal_env();
        env.insert("REJITTER_MIN_SECONDS", "200".into());
        env.insert("REJITTER_MAX_SECONDS", "100".into());
        let err = load(&env).unwrap_err();
        assert!(err.to_string().contains("REJITTER_MAX_SECONDS"), "{err}");
    }

    #[test]
    fn the_long_outage_cap_defaults_to_three_times_the_cap_and_is_never_below_it() {
        // The factor is the table's (`perMaxDelay`), so the construct computes the same.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cdk/src/limits.json");
        let table: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(
            table["settings"]["backoffLongMaxSeconds"]["perMaxDelay"],
            crate::backoff::LONG_MAX_PER_MAX
        );
        let mut env = minimal_env();
        env.insert("BACKOFF_MAX_SECONDS", "3600".into());
        assert_eq!(load(&env).unwrap().backoff.long_max_seconds, 10_800);
        env.insert("BACKOFF_MAX_SECONDS", "86400".into());
        assert_eq!(load(&env).unwrap().backoff.long_max_seconds, 86_400);
        env.insert("BACKOFF_MAX_SECONDS", "60".into());
        assert_eq!(load(&env).unwrap().backoff.long_max_seconds, 180);
        env.insert("BACKOFF_LONG_MAX_SECONDS", "60".into());
        assert_eq!(load(&env).unwrap().backoff.long_max_seconds, 60);
        env.insert("BACKOFF_LONG_MAX_SECONDS", "59".into());
        let err = load(&env).unwrap_err().to_string();
        assert!(
            err.contains("BACKOFF_LONG_MAX_SECONDS") && err.contains("BACKOFF_MAX_SECONDS (60)"),
            "{err}"
        );
    }
}
