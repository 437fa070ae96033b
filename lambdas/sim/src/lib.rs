//! Deterministic discrete-event simulator of the SQS circuit breaker.
//!
//! It compares four strategies — no breaker, the reference sample's policy, ours (driven by
//! `breaker_core`'s backoff, ramp schedule and re-jitter draw) and ours with the fast trip (a
//! 10 s alarm on the telemetry extension's metrics) — on outage scenarios, with the same
//! scenarios and seeds for each, in virtual time.
//!
//! - [`time`]: virtual time in milliseconds.
//! - [`queue`]: SQS standard queue (visibility, receive counts, DLQ redrive, retention, delays).
//! - [`esm`]: Lambda event-source mapping scaling (pollers, error back-off, `MaximumConcurrency`,
//!   `Enabled`).
//! - [`cloudwatch`]: Lambda's 1-minute metrics, the extension's per-second metrics and their
//!   delivery, and an M-of-N error-rate alarm with a period and missing-data treatment.
//! - [`downstream`]: scripted health curve and a capacity limit (overload fails again).
//! - [`strategy`]: the strategies and their settings (EventBridge / Step Functions latency).
//! - [`scenario`]: the standard scenarios.
//! - [`engine`]: the event loop and the measurements of one run.
//! - [`report`]: comparison table and JSON; [`chart`]: SVG charts.
//!
//! Each module's docs list the assumptions its model makes.

pub mod chart;
pub mod cloudwatch;
pub mod downstream;
pub mod engine;
pub mod esm;
pub mod queue;
pub mod report;
pub mod scenario;
pub mod strategy;
pub mod time;

#[cfg(test)]
mod acceptance;
