//! Lambda event-source mapping (SQS, standard mode) scaling model.
//!
//! Assumptions (AWS docs, "Configuring scaling behavior for SQS event source mappings" and
//! "Backoff strategy for failed invocations"):
//! - When messages are available the ESM processes 5 batches concurrently; while messages are
//!   still available (a poll returned a full batch in the last second) it adds up to 300
//!   concurrent batches per minute (modelled as +5 per second), up to 1,000.
//! - `ScalingConfig.MaximumConcurrency` (2–1,000, `None` = no limit) caps concurrent batches.
//! - An empty long poll (20 s) lets a poller above the 5-poller floor retire.
//! - A function error (the function threw or timed out) makes Lambda "gradually back off,
//!   reducing the concurrency allocated": modelled as −1 per errored invocation, floor 2. A
//!   batch with reported item failures is a successful invocation and does not back off.
//! - `Enabled = false` stops new polls once the state change has taken effect; invocations in
//!   flight finish. Enabling restarts at 5 concurrent batches.

use crate::time::{Millis, SECOND};

/// ESM settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsmConfig {
    /// `BatchSize` (1–10 here: no batching window modelled).
    pub batch_size: usize,
    /// Concurrent batches right after enabling or at low traffic.
    pub initial_concurrency: u32,
    /// Concurrency added per second while messages remain (300 / minute).
    pub scale_up_per_second: u32,
    /// Hard maximum of concurrent batches.
    pub max_concurrency: u32,
    /// Floor the error back-off reduces concurrency to.
    pub min_concurrency_on_errors: u32,
    /// Long-poll wait.
    pub long_poll: Millis,
    /// Time from `UpdateEventSourceMapping` to the new setting taking effect.
    pub update_latency: Millis,
}

impl Default for EsmConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            initial_concurrency: 5,
            scale_up_per_second: 5,
            max_concurrency: 1000,
            min_concurrency_on_errors: 2,
            long_poll: 20 * SECOND,
            update_latency: 3 * SECOND,
        }
    }
}

/// The mapping's settings and scaling state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esm {
    /// Settings.
    pub config: EsmConfig,
    /// `Enabled` (as in effect).
    pub enabled: bool,
    /// `ScalingConfig.MaximumConcurrency` (as in effect).
    pub maximum_concurrency: Option<u32>,
    /// Current scaling target (concurrent batches Lambda wants to run).
    pub target: u32,
    /// Whether a poll returned a full batch since the last scaling tick.
    pub saw_full_batch: bool,
}

impl Esm {
    /// An enabled mapping with the given limit.
    pub fn new(config: EsmConfig, maximum_concurrency: Option<u32>) -> Self {
        Self {
            config,
            enabled: true,
            maximum_concurrency,
            target: config.initial_concurrency,
            saw_full_batch: false,
        }
    }

    /// How many batches may run concurrently now.
    pub fn limit(&self) -> u32 {
        if !self.enabled {
            return 0;
        }
        let cap = self
            .maximum_concurrency
            .unwrap_or(self.config.max_concurrency);
        self.target.min(cap).min(self.config.max_concurrency)
    }

    /// Applies an `UpdateEventSourceMapping` (after its latency).
    pub fn update(&mut self, enabled: bool, maximum_concurrency: Option<u32>) {
        if enabled && !self.enabled {
            self.target = self.config.initial_concurrency;
        }
        self.enabled = enabled;
        self.maximum_concurrency = maximum_concurrency;
    }

    /// One-second scaling tick: grow while polls come back full.
    pub fn scale_tick(&mut self) {
        if self.enabled && self.saw_full_batch {
            let cap = self
                .maximum_concurrency
                .unwrap_or(self.config.max_concurrency);
            let grown = self.target.saturating_add(self.config.scale_up_per_second);
            self.target = grown
                .min(cap.max(self.target))
                .min(self.config.max_concurrency);
        }
        self.saw_full_batch = false;
    }

    /// A function error: back off by one batch.
    pub fn on_function_error(&mut self) {
        self.target = self
            .target
            .saturating_sub(1)
            .max(self.config.min_concurrency_on_errors);
    }

    /// An empty long poll: shrink towards the initial concurrency.
    pub fn on_empty_poll(&mut self) {
        if self.target > self.config.initial_concurrency {
            self.target -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_five_batches_and_grows_300_per_minute_while_polls_are_full() {
        let mut esm = Esm::new(EsmConfig::default(), None);
        assert_eq!(esm.limit(), 5);
        for _ in 0..60 {
            esm.saw_full_batch = true;
            esm.scale_tick();
        }
        assert_eq!(esm.limit(), 305);
    }

    #[test]
    fn maximum_concurrency_caps_the_scaling() {
        let mut esm = Esm::new(EsmConfig::default(), Some(7));
        for _ in 0..10 {
            esm.saw_full_batch = true;
            esm.scale_tick();
        }
        assert_eq!(esm.limit(), 7);
        esm.update(true, Some(2));
        assert_eq!(esm.limit(), 2);
    }

    #[test]
    fn disabled_mapping_runs_nothing_and_restarts_at_five_when_enabled() {
        let mut esm = Esm::new(EsmConfig::default(), None);
        for _ in 0..10 {
            esm.saw_full_batch = true;
            esm.scale_tick();
        }
        esm.update(false, None);
        assert_eq!(esm.limit(), 0);
        esm.update(true, None);
        assert_eq!(esm.limit(), 5);
    }

    #[test]
    fn function_errors_back_off_gradually_to_two() {
        let mut esm = Esm::new(EsmConfig::default(), None);
        esm.on_function_error();
        assert_eq!(esm.limit(), 4);
        for _ in 0..10 {
            esm.on_function_error();
        }
        assert_eq!(esm.limit(), 2);
    }

    #[test]
    fn no_growth_without_full_batches() {
        let mut esm = Esm::new(EsmConfig::default(), None);
        esm.scale_tick();
        assert_eq!(esm.limit(), 5);
    }
}
