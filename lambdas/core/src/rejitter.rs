//! Re-jitter planning: which messages to move, with what delay, in which batches, by how many
//! workers. Pure: no I/O, no clock (times come in as arguments), randomness from a caller's RNG.
//!
//! # How a pass recognises its own copies: the `cutoffMs` rule
//! `rejitter-plan` fixes a cutoff on the wall clock ([`cutoff_ms`]). A worker re-jitters only
//! messages whose SQS `SentTimestamp` is *before* the cutoff ([`Eligibility::of`]). A copy is sent
//! after the plan, so SQS stamps it later than the cutoff and no pass of this recovery moves it
//! twice. Nothing is added to the message: users who already use all 10 message attributes are
//! unaffected and the copy is byte-for-byte the original (body, attributes, trace header).
//!
//! Clock skew: `SentTimestamp` comes from SQS's clock, the cutoff from the planning Lambda's.
//! The cutoff is set [`CUTOFF_SKEW_MARGIN_MS`] (1 s) in the past, so a Lambda clock up to 1 s
//! *ahead* of SQS still never re-jitters a copy; a Lambda clock behind SQS only leaves the few
//! messages sent in the last second(s) before the plan alone. Both Lambda and SQS hosts are
//! synchronised by the Amazon Time Sync Service (sub-millisecond in practice), so the margin is
//! generous. Even if skew exceeded it, the only effect is that such a copy is moved once more
//! (still lossless, still faithful). A message without a `SentTimestamp` is left alone.
//!
//! # A pass never leaves its own receive on a message: [`Eligibility::Refresh`]
//! A message sent at or after the cutoff (a copy this recovery made, or an arrival since the
//! plan) that a pass receives anyway — a copy drawn a delay shorter than the pass comes back while
//! the pass is still receiving — has had its `ApproximateReceiveCount` raised by that receive.
//! Leaving it hidden (as passes once did) hands the consumer a message with one attempt fewer:
//! with a failing consumer (the simulator's `partial-50`, 50 % of calls failing) such copies
//! reached `maxReceiveCount` and were dead-lettered because of the breaker. So the pass moves it
//! fresh: a new copy (receive count 0) with a delay from [`refresh_delay_seconds`], then the
//! original is deleted, exactly as for an old message (deleted only after the copy is confirmed).
//! The breaker's receive dies with the original; whatever the consumer does later counts from 0.
//! Refreshes do not count as progress: a lane that receives only refreshes
//! [`EMPTY_ROUNDS_TO_DRAIN`] times in a row has reached its own copies and ends
//! ([`Eligibility::moves_backlog`]), so a pass cannot chase its own copies until its deadline.
//! A message without a `SentTimestamp` is left hidden ([`Eligibility::Skip`]) unless one more
//! receive could dead-letter it ([`Eligibility::NearReceiveLimit`]: moved fresh, delayed by
//! [`near_limit_delay_seconds`], two slices, so neither this slice nor one beside it sees it again).
//!
//! # The window follows the backlog
//! A fixed window delays every message by up to its maximum even when the backlog is small: 100
//! messages spread over 300 s come back one every 3 s although the consumer could take them in
//! a second. [`window_for_backlog`] shrinks the window's maximum to the time the ramp's first
//! level needs to take the backlog (`ceil(backlog / messages_per_second)`), kept within the
//! configured window; the minimum stays the configured one. The rate is
//! [`ramp_rate`]: the ramp's starting concurrency times the healthy probe's messages per second
//! of its synchronous invoke — conservative on purpose: it assumes no speed-up from larger
//! batches, so the window errs towards spreading more, never less, than the consumer can take.
//! Without a measured rate (a manual close has no probe) the configured window is used.
//!
//! `SendMessageBatch` takes ≤ 10 entries and ≤ 1 MiB in all. [`split_batches`] packs copies in
//! order into batches of ≤ 10 entries and ≤ [`BATCH_BUDGET_BYTES`] (1 MiB minus 16 KiB of
//! headroom for the trace header and SQS's own accounting); a message larger than the budget on
//! its own (up to SQS's 1 MiB message limit) is sent alone.
//!
//! # Memory
//! A message may be 1 MiB (body plus attributes), and `ReceiveMessage` returns up to 10 of them.
//! A worker's lanes therefore share a byte budget derived from the function's memory
//! ([`memory_budget_bytes`]: [`MEMORY_USE_PERCENT`] of it, less [`RUNTIME_OVERHEAD_BYTES`]), and
//! [`lane_plan`] sizes each lane's receives so that the worst case — every message as large as
//! SQS allows — fits. A lane holds each received byte at most [`HOLDS_PER_RECEIVED_BYTE`] (4)
//! times: in its receive stage the SDK's response and the parsed messages (later: the batch
//! waiting to be handed on), the batch in the one-slot channel, and the batch in the send stage.
//! The copy *moves* the body and attributes out of the received message (only the message id
//! and receipt handle stay behind to delete or release the original), and the send stage sends
//! one `SendMessageBatch` (≤ 1 MiB) at a time, so on top a lane holds [`SEND_TRANSIENT_BYTES`]:
//! that attempt's copy of the entries and the serialised request.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::message::{OutgoingMessage, ReceivedMessage};

/// SQS's maximum `DelaySeconds`.
pub const MAX_DELAY_SECONDS: u32 = 900;
/// Entries per `SendMessageBatch` / `DeleteMessageBatch` / `ReceiveMessage`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's limit on one batch's total payload (and on one message).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What [`split_batches`] packs into one batch: the limit minus 16 KiB of headroom.
pub const BATCH_BUDGET_BYTES: usize = MAX_BATCH_BYTES - 16 * 1024;
/// Share of the function's memory a worker plans to use at most, percent.
pub const MEMORY_USE_PERCENT: u64 = 80;
/// Memory the function holds besides the messages: the runtime, tokio, the SDK clients and their
/// connection pools, TLS, logging (the benchmark `rejitter_memory` measures ~20 MiB).
pub const RUNTIME_OVERHEAD_BYTES: u64 = 32 * 1024 * 1024;
/// Lambda's default function memory, assumed when `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` is unset.
pub const DEFAULT_FUNCTION_MEMORY_BYTES: u64 = 128 * 1024 * 1024;
/// How many times a lane may hold each received byte at once (see the module docs).
pub const HOLDS_PER_RECEIVED_BYTE: u64 = 4;
/// Per lane, on top: one `SendMessageBatch` in flight (its attempt's copy and the request).
pub const SEND_TRANSIENT_BYTES: u64 = 2 * MAX_BATCH_BYTES as u64;
/// SQS's limit on one message (body plus attribute names, types and values), bytes.
pub const MAX_MESSAGE_BYTES: u64 = MAX_BATCH_BYTES as u64;
/// How far before "now" the cutoff is set, to absorb clock skew between Lambda and SQS.
pub const CUTOFF_SKEW_MARGIN_MS: u64 = 1_000;
/// Backlog one worker is expected to move; more backlog adds workers (up to the maximum).
pub const MESSAGES_PER_WORKER: u64 = 20_000;
/// Consecutive receives without an eligible message after which a worker's lane counts as
/// drained: copies (and new arrivals) come back after their delay and would otherwise keep a
/// pass over a large backlog receiving for ever.
pub const EMPTY_ROUNDS_TO_DRAIN: u32 = 3;

/// Invalid re-jitter settings; each names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `max_seconds` above SQS's 900 s.
    #[error("REJITTER_MAX_SECONDS must be at most {MAX_DELAY_SECONDS}, got {0}")]
    MaxTooLarge(u32),
    /// `min_seconds` above `max_seconds`.
    #[error("REJITTER_MIN_SECONDS ({min}) must not exceed REJITTER_MAX_SECONDS ({max})")]
    MinAboveMax {
        /// The minimum given.
        min: u32,
        /// The maximum given.
        max: u32,
    },
}

/// The window copies are delayed over: uniform over `[min_seconds, max_seconds]`, max ≤ 900.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayWindow {
    min_seconds: u32,
    max_seconds: u32,
}

impl DelayWindow {
    /// A validated window.
    pub fn new(min_seconds: u32, max_seconds: u32) -> Result<Self, WindowError> {
        if max_seconds > MAX_DELAY_SECONDS {
            return Err(WindowError::MaxTooLarge(max_seconds));
        }
        if min_seconds > max_seconds {
            return Err(WindowError::MinAboveMax {
                min: min_seconds,
                max: max_seconds,
            });
        }
        Ok(Self {
            min_seconds,
            max_seconds,
        })
    }

    /// Lower bound, seconds.
    pub fn min_seconds(&self) -> u32 {
        self.min_seconds
    }

    /// Upper bound, seconds.
    pub fn max_seconds(&self) -> u32 {
        self.max_seconds
    }

    /// A delay drawn uniformly from the window (both ends included).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        rng.random_range(self.min_seconds..=self.max_seconds)
    }
}

/// The messages per second the ramp's first level can carry: `ramp_start` concurrent invokes,
/// each taking `messages` in `duration_ms` as the healthy probe did (no batch speed-up assumed:
/// conservative on purpose). `None` when there is no measurement (no messages, or no duration).
pub fn ramp_rate(ramp_start: u32, messages: u32, duration_ms: u64) -> Option<f64> {
    if messages == 0 || ramp_start == 0 {
        return None;
    }
    // A probe faster than the clock's millisecond counts as 1 ms.
    let seconds = duration_ms.max(1) as f64 / 1_000.0;
    Some(f64::from(ramp_start) * f64::from(messages) / seconds)
}

/// The window sized to the backlog (see the module docs): max =
/// `clamp(ceil(backlog / messages_per_second), configured.min, configured.max)`, min =
/// `configured.min`. A zero, negative, non-finite or unknown (`None`) rate keeps `configured`.
pub fn window_for_backlog(
    backlog: u64,
    messages_per_second: Option<f64>,
    configured: DelayWindow,
) -> DelayWindow {
    let Some(rate) = messages_per_second.filter(|r| r.is_finite() && *r > 0.0) else {
        return configured;
    };
    let needed = (backlog as f64 / rate).ceil();
    let max = if needed >= f64::from(configured.max_seconds) {
        configured.max_seconds
    } else {
        (needed as u32).max(configured.min_seconds)
    };
    DelayWindow {
        min_seconds: configured.min_seconds,
        max_seconds: max,
    }
}

/// The longest delay a copy gets on a queue of `retention_seconds`: a quarter of it, so the copy
/// is visible with most of its retention left ([`within_retention`], [`near_limit_delay_seconds`]).
fn retention_quarter(retention_seconds: u64) -> u64 {
    retention_seconds / 4
}

/// Whether `window`'s minimum fits a queue of `retention_seconds` (unknown: it does): at most a
/// quarter of the retention, the bound [`within_retention`] keeps the window's maximum to. A
/// copy's retention counts from its send, delay included, so a larger minimum would bring
/// copies back with little or none of their retention left (at SQS's shortest retention, 60 s,
/// a 60 s minimum expires every copy before it is visible); `rejitter-plan` skips re-jitter
/// then, naming both figures.
pub fn minimum_fits_retention(window: DelayWindow, retention_seconds: Option<u64>) -> bool {
    retention_seconds.is_none_or(|r| u64::from(window.min_seconds) <= retention_quarter(r))
}

/// `window` kept within a quarter of the queue's retention when it is known (as
/// [`near_limit_delay_seconds`] keeps a near-limit copy's delay), never below the window's
/// minimum: a copy's retention counts from its send, delay included, so a copy delayed past
/// the retention would expire before anyone could receive it, and one delayed close to it
/// would leave the consumer little time. With SQS's default 4-day retention (or any of an hour
/// or more) the 900 s delay limit binds first and the window is unchanged.
pub fn within_retention(window: DelayWindow, retention_seconds: Option<u64>) -> DelayWindow {
    let Some(retention) = retention_seconds else {
        return window;
    };
    let cap = u32::try_from(retention_quarter(retention))
        .unwrap_or(u32::MAX)
        .max(window.min_seconds);
    DelayWindow {
        min_seconds: window.min_seconds,
        max_seconds: window.max_seconds.min(cap),
    }
}

/// The delay of a fresh copy of a message near the receive limit: two slices, so neither the
/// slice that moved it nor any other worker's slice running beside it receives it again (a later
/// slice may move it once more, fresh each time: bounded by the slices left), at most SQS's
/// longest delay (900 s); on a queue whose retention is under an hour, at most a quarter of the
/// retention, so the copy is visible with most of its retention left. Not longer than that: the
/// copy waits for the consumer, which gets it once the mapping is enabled.
pub fn near_limit_delay_seconds(retention_seconds: Option<u64>, slice_seconds: u64) -> u32 {
    let retention_cap = retention_seconds.map_or(u64::MAX, retention_quarter);
    let delay = slice_seconds
        .saturating_mul(2)
        .min(retention_cap)
        .min(u64::from(MAX_DELAY_SECONDS));
    u32::try_from(delay).unwrap_or(MAX_DELAY_SECONDS)
}

/// The cutoff a plan made at `now_ms` hands to its workers (see the module docs).
pub fn cutoff_ms(now_ms: u64) -> u64 {
    now_ms.saturating_sub(CUTOFF_SKEW_MARGIN_MS)
}

/// What a worker does with a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// Sent before the cutoff: copy with a drawn delay, then delete the original.
    Rejitter,
    /// Sent at/after the cutoff (this recovery's copy, or an arrival since the plan): the pass's
    /// receive raised its receive count, so it is moved fresh (a copy starts at 0), then the
    /// original deleted; not progress (see the module docs).
    Refresh,
    /// Undated, far from the receive limit: leave it hidden.
    Skip,
    /// Undated, and one more receive could dead-letter it: move it fresh now.
    NearReceiveLimit,
}

impl Eligibility {
    /// Classify `m` for a pass with this cutoff on a queue with this `maxReceiveCount`.
    pub fn of(m: &ReceivedMessage, cutoff_ms: u64, max_receive_count: Option<u32>) -> Self {
        match m.sent_timestamp_ms() {
            Some(sent) if sent < cutoff_ms => Eligibility::Rejitter,
            Some(_) => Eligibility::Refresh,
            None if max_receive_count
                .is_some_and(|max| m.receive_count().saturating_add(1) >= max) =>
            {
                Eligibility::NearReceiveLimit
            }
            None => Eligibility::Skip,
        }
    }

    /// Whether moving this message is progress on the backlog (an old message): a lane whose
    /// receives bring none for [`EMPTY_ROUNDS_TO_DRAIN`] rounds in a row is drained.
    pub fn moves_backlog(self) -> bool {
        self == Eligibility::Rejitter
    }

    /// The delay of this message's copy, `None` when it is left alone: an old message gets a
    /// draw from `window` (0 in a keep-alive pass, whose copies only renew retention); a refresh
    /// gets [`refresh_delay_seconds`]; an undated message near the receive limit
    /// `near_limit_delay` ([`near_limit_delay_seconds`]).
    pub fn copy_delay<R: Rng + ?Sized>(
        self,
        window: &DelayWindow,
        keep_alive: bool,
        near_limit_delay: u32,
        rng: &mut R,
    ) -> Option<u32> {
        match self {
            Eligibility::Rejitter if keep_alive => Some(0),
            Eligibility::Rejitter => Some(window.draw(rng)),
            Eligibility::Refresh => Some(refresh_delay_seconds(
                window,
                keep_alive,
                near_limit_delay,
                rng,
            )),
            Eligibility::NearReceiveLimit => Some(near_limit_delay),
            Eligibility::Skip => None,
        }
    }
}

/// The delay of a refreshed message's fresh copy ([`Eligibility::Refresh`]): a new draw from the
/// pass's window, so the copies stay spread as the window meant them to be (the ramp's first
/// level carries them); in a keep-alive pass (delay 0, the mapping is disabled) the near-limit
/// delay, so the copy does not come straight back to the pass.
pub fn refresh_delay_seconds<R: Rng + ?Sized>(
    window: &DelayWindow,
    keep_alive: bool,
    near_limit_delay: u32,
    rng: &mut R,
) -> u32 {
    if keep_alive {
        near_limit_delay
    } else {
        window.draw(rng)
    }
}

/// Bytes a copy counts against the batch limit: body, message attributes and the trace header
/// system attribute.
pub fn entry_size(m: &OutgoingMessage) -> usize {
    m.payload_size()
        + m.trace_header
            .as_ref()
            .map_or(0, |t| "AWSTraceHeader".len() + "String".len() + t.len())
}

/// Pack `messages`, in order, into batches of ≤ [`MAX_BATCH_ENTRIES`] entries and
/// ≤ [`BATCH_BUDGET_BYTES`]; a message over the budget by itself travels alone.
pub fn split_batches(messages: Vec<OutgoingMessage>) -> Vec<Vec<OutgoingMessage>> {
    let mut batches: Vec<Vec<OutgoingMessage>> = Vec::new();
    let mut current: Vec<OutgoingMessage> = Vec::new();
    let mut current_size = 0usize;
    for m in messages {
        let size = entry_size(&m);
        if !current.is_empty()
            && (current.len() >= MAX_BATCH_ENTRIES || current_size + size > BATCH_BUDGET_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current_size += size;
        current.push(m);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The byte budget of a worker's lanes in a function with `function_memory_bytes` of memory:
/// [`MEMORY_USE_PERCENT`] of it less [`RUNTIME_OVERHEAD_BYTES`] (never below one lane's
/// minimum, [`lane_bytes`]`(1)`: a function too small for that still moves one message at a time).
pub fn memory_budget_bytes(function_memory_bytes: u64) -> u64 {
    (function_memory_bytes / 100 * MEMORY_USE_PERCENT)
        .saturating_sub(RUNTIME_OVERHEAD_BYTES)
        .max(lane_bytes(1))
}

/// What one lane may hold at its peak when it receives `receive_max` messages at a time, every
/// one as large as SQS allows.
pub fn lane_bytes(receive_max: u8) -> u64 {
    HOLDS_PER_RECEIVED_BYTE * u64::from(receive_max) * MAX_MESSAGE_BYTES + SEND_TRANSIENT_BYTES
}

/// How a worker runs its lanes within a byte budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanePlan {
    /// Concurrent lanes.
    pub lanes: usize,
    /// `MaxNumberOfMessages` of each lane's receives, 1–10.
    pub receive_max: u8,
}

/// Up to `wanted_lanes` lanes (fewer when the budget cannot hold that many receiving one message
/// each), each receiving as many messages (≤ 10) as its share of `budget_bytes` holds at
/// [`lane_bytes`].
pub fn lane_plan(budget_bytes: u64, wanted_lanes: usize) -> LanePlan {
    let fit = usize::try_from(budget_bytes / lane_bytes(1)).unwrap_or(usize::MAX);
    let lanes = wanted_lanes.min(fit).max(1);
    let share = budget_bytes / lanes as u64;
    let receive_max = (share.saturating_sub(SEND_TRANSIENT_BYTES)
        / (HOLDS_PER_RECEIVED_BYTE * MAX_MESSAGE_BYTES))
        .clamp(1, MAX_BATCH_ENTRIES as u64);
    LanePlan {
        lanes,
        receive_max: u8::try_from(receive_max).unwrap_or(1),
    }
}

/// How many parallel workers (Map iterations) to start for a visible backlog: none for an empty
/// queue, one per [`MESSAGES_PER_WORKER`] messages (rounded up), at most `max_workers`.
pub fn worker_count(backlog: u64, max_workers: u32) -> u32 {
    if backlog == 0 || max_workers == 0 {
        return 0;
    }
    let wanted = backlog.div_ceil(MESSAGES_PER_WORKER);
    u32::try_from(wanted)
        .unwrap_or(u32::MAX)
        .clamp(1, max_workers)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::message::AttributeValue;

    #[test]
    fn a_minimum_fits_a_retention_up_to_a_quarter_of_it() {
        let w = |min, max| DelayWindow::new(min, max).unwrap();
        assert!(minimum_fits_retention(w(30, 300), Some(120)));
        assert!(!minimum_fits_retention(w(31, 300), Some(120)));
        assert!(!minimum_fits_retention(w(60, 60), Some(60)));
        assert!(minimum_fits_retention(w(900, 900), Some(3_600)));
        assert!(minimum_fits_retention(w(900, 900), None));
    }

    #[test]
    fn a_window_stays_within_a_quarter_of_a_known_retention_and_not_below_its_minimum() {
        let w = |min, max| DelayWindow::new(min, max).unwrap();
        assert_eq!(within_retention(w(0, 127), Some(120)), w(0, 30));
        assert_eq!(within_retention(w(0, 20), Some(120)), w(0, 20));
        assert_eq!(within_retention(w(45, 300), Some(120)), w(45, 45));
        assert_eq!(within_retention(w(0, 900), Some(345_600)), w(0, 900));
        assert_eq!(within_retention(w(0, 900), Some(3_600)), w(0, 900));
        assert_eq!(within_retention(w(0, 300), None), w(0, 300));
    }

    #[test]
    fn a_near_limit_copy_waits_two_slices_at_most_900_s_and_a_quarter_of_a_short_retention() {
        assert_eq!(near_limit_delay_seconds(None, 10), 20);
        assert_eq!(near_limit_delay_seconds(Some(4 * 86_400), 60), 120);
        assert_eq!(near_limit_delay_seconds(Some(4 * 86_400), 840), 900);
        assert_eq!(near_limit_delay_seconds(None, 840), 900);
        assert_eq!(near_limit_delay_seconds(Some(3_600), 840), 900);
        assert_eq!(near_limit_delay_seconds(Some(120), 60), 30);
        assert_eq!(near_limit_delay_seconds(Some(60), 10), 15);
    }

    fn outgoing(id: usize, body_len: usize) -> OutgoingMessage {
        OutgoingMessage {
            id: id.to_string(),
            body: "x".repeat(body_len),
            message_attributes: BTreeMap::new(),
            trace_header: None,
            delay_seconds: 0,
            fifo: None,
        }
    }

    fn received(sent_ms: Option<u64>, receive_count: u32) -> ReceivedMessage {
        let mut attributes = BTreeMap::from([(
            "ApproximateReceiveCount".to_owned(),
            receive_count.to_string(),
        )]);
        if let Some(s) = sent_ms {
            attributes.insert("SentTimestamp".into(), s.to_string());
        }
        ReceivedMessage {
            message_id: "m".into(),
            receipt_handle: "rh".into(),
            body: "b".into(),
            md5_of_body: String::new(),
            md5_of_message_attributes: None,
            attributes,
            message_attributes: BTreeMap::new(),
        }
    }

    fn configured(min: u32, max: u32) -> DelayWindow {
        DelayWindow::new(min, max).unwrap()
    }

    #[test]
    fn a_hundred_messages_come_back_within_seconds() {
        // Ramp start 2 × 1 message in 100 ms = 20 messages/s: 100 messages need 5 s.
        let rate = ramp_rate(2, 1, 100);
        assert_eq!(rate, Some(20.0));
        let w = window_for_backlog(100, rate, configured(0, 300));
        assert_eq!((w.min_seconds(), w.max_seconds()), (0, 5));
    }

    #[test]
    fn a_million_messages_use_the_whole_configured_window() {
        let w = window_for_backlog(1_000_000, ramp_rate(2, 1, 100), configured(0, 300));
        assert_eq!(w, configured(0, 300));
    }

    #[test]
    fn the_window_is_never_below_the_configured_minimum_nor_above_the_maximum() {
        let rate = Some(1_000.0);
        assert_eq!(
            window_for_backlog(10, rate, configured(30, 300)),
            configured(30, 30)
        );
        assert_eq!(
            window_for_backlog(0, rate, configured(5, 60)),
            configured(5, 5)
        );
        assert_eq!(
            window_for_backlog(u64::MAX, rate, configured(5, 60)),
            configured(5, 60)
        );
        assert_eq!(
            window_for_backlog(59_001, rate, configured(5, 60)),
            configured(5, 60)
        );
        assert_eq!(
            window_for_backlog(45_001, rate, configured(5, 60)),
            configured(5, 46)
        );
    }

    #[test]
    fn a_zero_or_unknown_rate_uses_the_configured_window() {
        let c = configured(10, 300);
        assert_eq!(window_for_backlog(100, None, c), c);
        assert_eq!(window_for_backlog(100, Some(0.0), c), c);
        assert_eq!(window_for_backlog(100, Some(-3.0), c), c);
        assert_eq!(window_for_backlog(100, Some(f64::NAN), c), c);
        assert_eq!(ramp_rate(2, 0, 100), None);
        assert_eq!(ramp_rate(0, 1, 100), None);
        // A probe faster than a millisecond counts as 1 ms, not as an infinite rate.
        assert_eq!(ramp_rate(2, 1, 0), Some(2_000.0));
    }

    #[test]
    fn window_rejects_max_above_900_and_min_above_max() {
        assert_eq!(DelayWindow::new(0, 901), Err(WindowError::MaxTooLarge(901)));
        assert_eq!(
            DelayWindow::new(10, 5),
            Err(WindowError::MinAboveMax { min: 10, max: 5 })
        );
        assert!(DelayWindow::new(0, 900).is_ok());
        assert!(DelayWindow::new(7, 7).is_ok());
        let msg = DelayWindow::new(0, 901).unwrap_err().to_string();
        assert!(msg.contains("REJITTER_MAX_SECONDS"), "{msg}");
    }

    #[test]
    fn draws_stay_inside_the_window_and_reach_both_ends() {
        let w = DelayWindow::new(3, 9).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<u32> = (0..10_000).map(|_| w.draw(&mut rng)).collect();
        assert!(draws.iter().all(|d| (3..=9).contains(d)));
        assert!(draws.contains(&3) && draws.contains(&9));
        // Uniform: every value appears roughly 1/7 of the time.
        for v in 3..=9 {
            let n = draws.iter().filter(|d| **d == v).count();
            assert!((1_200..1_660).contains(&n), "value {v} drawn {n} times");
        }
    }

    #[test]
    fn fixed_window_always_draws_its_single_value() {
        let w = DelayWindow::new(42, 42).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..100).all(|_| w.draw(&mut rng) == 42));
    }

    #[test]
    fn cutoff_is_one_second_before_the_plan_time() {
        assert_eq!(cutoff_ms(1_700_000_001_000), 1_700_000_000_000);
        assert_eq!(cutoff_ms(5), 0);
    }

    #[test]
    fn only_messages_sent_before_the_cutoff_are_rejittered() {
        let cutoff = 1_000;
        assert_eq!(
            Eligibility::of(&received(Some(999), 1), cutoff, None),
            Eligibility::Rejitter
        );
        assert_eq!(
            Eligibility::of(&received(Some(1_000), 1), cutoff, None),
            Eligibility::Refresh
        );
        assert_eq!(
            Eligibility::of(&received(Some(5_000), 1), cutoff, None),
            Eligibility::Refresh
        );
        assert_eq!(
            Eligibility::of(&received(None, 1), cutoff, None),
            Eligibility::Skip
        );
    }

    #[test]
    fn undated_message_close_to_the_receive_limit_is_moved_fresh() {
        let cutoff = 1_000;
        // maxReceiveCount 5: after this 4th receive, the next receive is the 5th (the last
        // allowed); move it fresh so the breaker never pushes it to the DLQ.
        assert_eq!(
            Eligibility::of(&received(None, 4), cutoff, Some(5)),
            Eligibility::NearReceiveLimit
        );
        assert_eq!(
            Eligibility::of(&received(None, 3), cutoff, Some(5)),
            Eligibility::Skip
        );
        // Old messages are moved anyway (the copy starts at receive count 0).
        assert_eq!(
            Eligibility::of(&received(Some(10), 4), cutoff, Some(5)),
            Eligibility::Rejitter
        );
    }

    /// `partial-50`'s regression: a copy drawn a short delay came back while its pass was still
    /// receiving; the pass left it hidden with its receive count raised, and the failing consumer
    /// used up the rest. Whatever its receive count, a message sent at/after the cutoff that the
    /// pass receives is moved fresh (a copy starts at 0): the breaker's receive never stays on a
    /// message, and moving it is not progress, so a lane seeing only those ends.
    #[test]
    fn a_pass_moves_its_own_copies_fresh_at_any_receive_count_and_not_as_progress() {
        let cutoff = 1_000;
        for count in 1..=4 {
            let e = Eligibility::of(&received(Some(1_500), count), cutoff, Some(5));
            assert_eq!(e, Eligibility::Refresh, "receive count {count}");
            assert!(!e.moves_backlog());
        }
        assert!(Eligibility::Rejitter.moves_backlog());
        assert!(!Eligibility::NearReceiveLimit.moves_backlog());
        assert!(!Eligibility::Skip.moves_backlog());
        let mut rng = StdRng::seed_from_u64(3);
        let w = configured(2, 6);
        // A refresh is spread over the pass's window again; in a keep-alive pass it waits the
        // near-limit delay instead of coming straight back; an old message in a keep-alive
        // pass gets 0; an undated one is left alone.
        for _ in 0..100 {
            let d = Eligibility::Refresh.copy_delay(&w, false, 120, &mut rng);
            assert!(matches!(d, Some(2..=6)), "{d:?}");
        }
        assert_eq!(
            Eligibility::Refresh.copy_delay(&w, true, 120, &mut rng),
            Some(120)
        );
        assert_eq!(
            Eligibility::Rejitter.copy_delay(&w, true, 120, &mut rng),
            Some(0)
        );
        assert_eq!(
            Eligibility::NearReceiveLimit.copy_delay(&w, false, 120, &mut rng),
            Some(120)
        );
        assert_eq!(Eligibility::Skip.copy_delay(&w, false, 120, &mut rng), None);
    }

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let batches = split_batches((0..25).map(|i| outgoing(i, 10)).collect());
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let ids: Vec<String> = batches.concat().into_iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            (0..25).map(|i| i.to_string()).collect::<Vec<_>>(),
            "order kept"
        );
    }

    #[test]
    fn batches_split_by_payload_size_with_headroom() {
        // 300 KiB each: three fit in 1 MiB - 16 KiB (900 KiB), a fourth would not.
        let batches = split_batches((0..7).map(|i| outgoing(i, 300 * 1024)).collect());
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        for b in &batches {
            assert!(b.iter().map(entry_size).sum::<usize>() <= BATCH_BUDGET_BYTES);
        }
    }

    #[test]
    fn message_near_one_mib_travels_alone() {
        let near = MAX_BATCH_BYTES - 100;
        let msgs = vec![
            outgoing(0, 10),
            outgoing(1, near),
            outgoing(2, 10),
            outgoing(3, 10),
        ];
        let batches = split_batches(msgs);
        let ids: Vec<Vec<String>> = batches
            .iter()
            .map(|b| b.iter().map(|m| m.id.clone()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["0"], vec!["1"], vec!["2", "3"]]);
    }

    #[test]
    fn entry_size_counts_attributes_and_trace_header() {
        let mut m = outgoing(0, 100);
        m.message_attributes
            .insert("k".into(), AttributeValue::string("String", "vv"));
        m.trace_header = Some("Root=1".into());
        assert_eq!(entry_size(&m), 100 + 1 + 6 + 2 + 14 + 6 + 6);
    }

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn the_budget_is_80_percent_of_memory_less_the_runtime_and_at_least_one_lane() {
        assert_eq!(
            memory_budget_bytes(512 * MIB),
            512 * MIB / 100 * 80 - 32 * MIB
        );
        assert_eq!(
            memory_budget_bytes(128 * MIB),
            128 * MIB / 100 * 80 - 32 * MIB
        );
        // Below a lane's minimum (a 32 MiB function): one lane, one message.
        assert_eq!(memory_budget_bytes(32 * MIB), lane_bytes(1));
        assert_eq!(lane_bytes(1), 4 * MIB + 2 * MIB);
        assert_eq!(lane_bytes(10), 40 * MIB + 2 * MIB);
    }

    #[test]
    fn lanes_receive_what_their_share_of_the_budget_holds_at_1_mib_a_message() {
        // 128 MiB: ~70 MiB for 8 lanes, ~8.8 MiB each: one 1 MiB message at a time.
        let small = lane_plan(memory_budget_bytes(128 * MIB), 8);
        assert_eq!(
            small,
            LanePlan {
                lanes: 8,
                receive_max: 1
            }
        );
        // 512 MiB: ~378 MiB, ~47 MiB a lane: all ten.
        let big = lane_plan(memory_budget_bytes(512 * MIB), 8);
        assert_eq!(
            big,
            LanePlan {
                lanes: 8,
                receive_max: 10
            }
        );
        assert_eq!(lane_plan(memory_budget_bytes(256 * MIB), 8).receive_max, 4);
        // Too small for 8 lanes: fewer lanes, one message each; never none.
        assert_eq!(
            lane_plan(20 * MIB, 8),
            LanePlan {
                lanes: 3,
                receive_max: 1
            }
        );
        assert_eq!(lane_plan(0, 8).lanes, 1);
        // Whatever the memory, the plan's worst case stays within the budget.
        for mib in [128, 192, 256, 384, 512, 1024, 3008, 10_240] {
            let budget = memory_budget_bytes(mib * MIB);
            let plan = lane_plan(budget, 8);
            assert!(
                plan.lanes as u64 * lane_bytes(plan.receive_max) <= budget,
                "{mib} MiB: {plan:?}"
            );
        }
    }

    #[test]
    fn worker_count_scales_with_backlog_and_is_capped() {
        assert_eq!(worker_count(0, 4), 0);
        assert_eq!(worker_count(1, 4), 1);
        assert_eq!(worker_count(MESSAGES_PER_WORKER, 4), 1);
        assert_eq!(worker_count(MESSAGES_PER_WORKER + 1, 4), 2);
        assert_eq!(worker_count(10_000_000, 4), 4);
        assert_eq!(worker_count(10_000_000, 0), 0);
    }
}
