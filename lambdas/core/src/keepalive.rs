//! Keep-alive: no queued message expires because the circuit is open.
//!
//! While the event-source mapping is disabled nothing consumes the queue, so a message whose
//! `MessageRetentionPeriod` (R) runs out is deleted by SQS: lost, where without the breaker it
//! would at worst have reached the dead-letter queue. A *keep-alive pass* re-sends a fresh copy
//! of every message sent before its cutoff (the re-jitter machinery: same faithful copy, delete
//! after confirm, `crate::rejitter::Eligibility` with delay 0) — a copy starts a new retention
//! clock — so after the pass every queued message is younger than the pass's cutoff.
//!
//! # The rule
//! Passes are due every `P = R / 2` ([`interval_ms`]), counted from the cutoff of the previous
//! pass (`state.refreshedAtMs`), or from `openedAtMs` before the first pass ([`due_at_ms`]).
//! The backoff step decides ([`step`]): when the pass is due it answers "keep alive" instead of
//! a wait; otherwise it caps its wait so that the loop is back at the backoff step by the due
//! time ([`cap_wait_seconds`]). The loop is late by at most `L` (one probe after the capped
//! wait, plus task retries), and a pass takes `D` to copy the queue.
//!
//! # The guarantee (as long as `L + D < R / 2`)
//! - every message sent while the circuit is open is kept alive: sent at `x` after the cutoff
//!   `c` of the previous pass (or the open), it is copied by the next pass, which ends before
//!   `c + P + L + D < x + R`;
//! - a message already queued when the circuit opened is kept alive if it was younger than
//!   `R / 2 − (L + D)` then (the first pass ends by `open + P + L + D`). Older ones may expire
//!   before the first pass: they had already spent over half their retention unconsumed. The
//!   breaker cannot see their age without receiving them, and a pass at every open would copy
//!   the whole backlog even for a five-minute outage.
//!
//! With the default 4-day retention, `P` is 2 days: messages up to ~2 days old at the open and
//! all later ones survive any outage; the pass and the probe take minutes, far inside the
//! 2-day margin. With SQS's minimum of 60 s, `P` is 30 s and the margin holds only while a
//! probe plus a pass take under 30 s.
//!
//! FIFO queues are not copied: a copy goes to the end of its message group, which breaks the
//! group's order. The backoff step emits `Messages At Risk` once per interval instead.

use crate::backoff::MIN_WAIT_SECONDS;

/// `P` is the retention divided by this.
pub const INTERVAL_DIVISOR: u64 = 2;

/// The interval between keep-alive passes for a queue retaining messages `retention_seconds`.
pub fn interval_ms(retention_seconds: u64) -> u64 {
    retention_seconds.saturating_mul(1000) / INTERVAL_DIVISOR
}

/// When the next pass is due: `P` after the last pass's cutoff, or after the open.
pub fn due_at_ms(opened_at_ms: u64, refreshed_at_ms: Option<u64>, retention_seconds: u64) -> u64 {
    refreshed_at_ms
        .unwrap_or(opened_at_ms)
        .saturating_add(interval_ms(retention_seconds))
}

/// What keep-alive asks of the backoff step at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveStep {
    /// The pass is due: run it now.
    PassNow,
    /// The pass is due in this many milliseconds: be back by then.
    DueIn(u64),
}

/// Whether a pass is due at `now_ms`.
pub fn step(
    opened_at_ms: u64,
    refreshed_at_ms: Option<u64>,
    retention_seconds: u64,
    now_ms: u64,
) -> KeepAliveStep {
    let due = due_at_ms(opened_at_ms, refreshed_at_ms, retention_seconds);
    if now_ms >= due {
        KeepAliveStep::PassNow
    } else {
        KeepAliveStep::DueIn(due - now_ms)
    }
}

/// A backoff wait capped so the loop wakes by the due time (never below the minimum wait).
pub fn cap_wait_seconds(wait_seconds: u64, due_in_ms: u64) -> u64 {
    wait_seconds
        .min(due_in_ms.div_ceil(1000))
        .max(MIN_WAIT_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: u64 = 86_400;
    const DAY_MS: u64 = DAY_S * 1000;

    #[test]
    fn interval_is_half_the_retention() {
        assert_eq!(interval_ms(4 * DAY_S), 2 * DAY_MS);
        assert_eq!(interval_ms(60), 30_000);
        assert_eq!(interval_ms(u64::MAX), u64::MAX / INTERVAL_DIVISOR);
    }

    #[test]
    fn first_pass_is_due_half_a_retention_after_the_open_then_after_each_cutoff() {
        assert_eq!(due_at_ms(1_000, None, 120), 61_000);
        assert_eq!(due_at_ms(1_000, Some(50_000), 120), 110_000);
    }

    #[test]
    fn pass_is_due_at_or_after_the_due_time() {
        assert_eq!(step(0, None, 120, 59_999), KeepAliveStep::DueIn(1));
        assert_eq!(step(0, None, 120, 60_000), KeepAliveStep::PassNow);
        assert_eq!(
            step(0, Some(60_000), 120, 60_500),
            KeepAliveStep::DueIn(59_500)
        );
    }

    #[test]
    fn waits_are_capped_to_wake_by_the_due_time_but_never_below_a_second() {
        assert_eq!(cap_wait_seconds(900, 10 * DAY_MS), 900);
        assert_eq!(cap_wait_seconds(900, 30_000), 30);
        assert_eq!(
            cap_wait_seconds(900, 30_001),
            31,
            "rounded up: wakes at or after due"
        );
        assert_eq!(cap_wait_seconds(900, 1), 1);
        assert_eq!(cap_wait_seconds(5, 30_000), 5);
    }

    /// The guarantee in the module docs, checked on a timeline: with passes at every due time
    /// plus a lateness `L` and a duration `D` (`L + D < R/2`), a message sent at any time while
    /// the circuit is open is copied before it expires.
    #[test]
    fn messages_sent_while_open_are_always_copied_before_they_expire() {
        let retention_s = 120;
        let r = retention_s * 1000;
        let (late, duration) = (20_000, 35_000); // L + D = 55 s < R/2 = 60 s
        let opened = 1_000_000;
        // Pass k: starts at due + L, cutoff at its start, ends D later.
        let mut passes = Vec::new();
        let mut refreshed = None;
        for _ in 0..20 {
            let start = due_at_ms(opened, refreshed, retention_s) + late;
            passes.push((start, start + duration));
            refreshed = Some(start);
        }
        for sent in (opened..opened + 10 * r).step_by(997) {
            let (_, copied_by) = passes
                .iter()
                .find(|(cutoff, _)| *cutoff > sent)
                .copied()
                .expect("a later pass");
            assert!(
                copied_by < sent + r,
                "message sent at {sent} expired before its copy"
            );
        }
        // Old at the open: protected below R/2 − (L + D).
        let protected_age = r / 2 - (late + duration) - 1;
        assert!(passes[0].1 < opened - protected_age + r);
    }
}
