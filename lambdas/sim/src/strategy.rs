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
//!   `maxReceiveCount` is re-sent fresh) → re-jitter the backlog → ramp `MaximumConcurrency`
//!   with relapse checks → close (restore the scaling config, alarm set to OK). Single flight.

use breaker_core::backoff::Backoff;
use breaker_core::config::defaults;
use breaker_core::ramp::Ramp;
use breaker_core::rejitter::DelayWindow;
use serde::Serialize;

use crate::time::{Millis, SECOND};

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
}

impl Strategy {
    /// All strategies, in table order.
    pub const ALL: [Strategy; 3] = [Strategy::NoBreaker, Strategy::Reference, Strategy::Ours];

    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::NoBreaker => "no breaker",
            Strategy::Reference => "reference",
            Strategy::Ours => "ours",
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

/// Our policy's settings (the construct's defaults except where noted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OursConfig {
    /// Backoff between probes.
    pub backoff: Backoff,
    /// Half-open ramp.
    pub ramp: Ramp,
    /// Time at each ramp level before checking health.
    pub ramp_interval: Millis,
    /// Error rate (percent of invocations) during a ramp step that reopens the circuit.
    pub relapse_error_percent: f64,
    /// Visibility while probing (> consumer timeout).
    pub probe_visibility: Millis,
    /// Re-send a probed message fresh when its receive count is within this of
    /// `maxReceiveCount`.
    pub probe_resend_margin: u32,
    /// Re-jitter delay window (≤ 900 s).
    pub rejitter_window: DelayWindow,
    /// Parallel re-jitter workers.
    pub rejitter_workers: u32,
    /// Messages one worker moves per second (batched receive/send/delete).
    pub rejitter_per_worker_second: u32,
    /// Time budget of one worker invocation.
    pub rejitter_slice: Millis,
}

impl Default for OursConfig {
    fn default() -> Self {
        Self {
            backoff: defaults::BACKOFF,
            ramp: defaults::RAMP,
            ramp_interval: defaults::RAMP_INTERVAL_SECONDS * SECOND,
            relapse_error_percent: 20.0,
            probe_visibility: Millis::from(defaults::PROBE_VISIBILITY_SECONDS) * SECOND,
            probe_resend_margin: 2,
            rejitter_window: DelayWindow::new(0, 900).expect("0..=900 s is a valid window"),
            rejitter_workers: defaults::REJITTER_WORKERS,
            rejitter_per_worker_second: 500,
            rejitter_slice: defaults::REJITTER_SLICE_SECONDS * SECOND,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_defaults_are_the_contract_defaults_except_window_and_relapse() {
        let c = OursConfig::default();
        assert_eq!(
            c.backoff,
            Backoff {
                initial_seconds: 30,
                max_seconds: 900,
                multiplier: 2.0
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
            (0, 900)
        );
        assert_eq!(c.relapse_error_percent, 20.0);
    }
}
