//! SQS standard queue model.
//!
//! Assumptions (AWS facts from `DESIGN.md`):
//! - Every receive increments the message's receive count and hides it for the visibility
//!   timeout; each receive produces a new receipt handle, and deleting with an older handle
//!   "succeeds" without deleting (the message stays and is delivered again: a duplicate).
//! - Redrive: a message already received `max_receive_count` times is moved to the DLQ by the
//!   next receive that would have returned it, instead of being returned.
//! - Per-message `DelaySeconds` (0–900 s) hides a newly sent message until the delay ends.
//! - Retention: a message older than the retention period (counted from *its own* send time,
//!   so a re-sent copy starts a new clock) is deleted by SQS: lost.
//! - Ordering: a standard queue is only roughly FIFO; the model returns visible messages in the
//!   order they became visible (ties by send order). A released message (visibility 0) therefore
//!   goes behind messages that have been visible longer.
//!
//! Time is virtual, in milliseconds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::time::{Millis, SECOND};

/// Queue settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Default visibility timeout.
    pub visibility_timeout: Millis,
    /// Redrive policy `maxReceiveCount`.
    pub max_receive_count: u32,
    /// `MessageRetentionPeriod` (60 s – 14 days).
    pub retention: Millis,
}

/// Largest per-message `DelaySeconds`.
pub const MAX_DELAY: Millis = 900 * SECOND;
/// Largest visibility timeout (`ChangeMessageVisibility`).
pub const MAX_VISIBILITY: Millis = 43_200 * SECOND;
/// Most messages one `ReceiveMessage` returns.
pub const MAX_RECEIVE_BATCH: usize = 10;

/// Who received a message: the breaker's own receives are tracked so a dead-lettered message can
/// be blamed on the breaker when they pushed it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// The event-source mapping feeding the consumer.
    Esm,
    /// A breaker probe or re-jitter worker.
    Breaker,
}

/// The payload the simulator cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// Id of the first message of this lineage (copies keep it), for duplicate accounting.
    pub lineage: u64,
    /// When the first message of this lineage was sent.
    pub origin_sent: Millis,
    /// A poison message fails in the consumer whatever the downstream's health.
    pub poison: bool,
}

/// A message as the queue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message id (unique per send; a copy gets a new id).
    pub id: u64,
    /// The payload.
    pub body: Body,
    /// When this copy was sent (retention clock).
    pub sent: Millis,
    /// When it is (or becomes) visible.
    pub visible_at: Millis,
    /// `ApproximateReceiveCount`.
    pub receive_count: u32,
    /// Receipt generation: the newest receive's handle is the only one that deletes.
    pub receipt: u64,
    /// Receives by the breaker (probe / re-jitter).
    pub breaker_receives: u32,
}

/// One received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Message id.
    pub id: u64,
    /// Receipt handle of this receive.
    pub receipt: u64,
    /// Receive count including this receive.
    pub receive_count: u32,
    /// The payload.
    pub body: Body,
}

/// Why a message left the queue without being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message.
    pub body: Body,
    /// Whether the breaker's receives contributed to exhausting `maxReceiveCount`.
    pub caused_by_breaker: bool,
}

/// Hasher for sequential message ids: one multiply (Fibonacci hashing) instead of SipHash.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        // Blocks of 16 consecutive ids, which are sent, received and deleted together, sit in
        // neighbouring slots (the multi-day scenarios hold millions of messages: a slot per id
        // scattered over the table cost a cache miss per lookup), and the blocks are scattered
        // by the Fibonacci hash (ids laid out in one run made long probe sequences past the
        // deleted ones); the top 7 bits (the table's tag byte) come from the id's own hash, so
        // the tags in a block differ.
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        const TAG: u64 = 0x7F << 57;
        self.0 = ((id >> 4).wrapping_mul(K) & !TAG & !15) | (id & 15) | (id.wrapping_mul(K) & TAG);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// A priority queue of entries keyed by time, for entries pushed in increasing order within
/// each time (the queue's sequence numbers and message ids only grow): it pops by (time, push
/// order), the same order as a min-heap of `(time, entry)`, but a push or pop costs a lookup
/// among the distinct pending times (whole seconds, mostly) instead of a sift through every
/// entry: the multi-day scenarios hold millions of messages, and the heap's sifts were most of
/// their CPU (issue 16's 5-minute budget for the multi-seed run).
#[derive(Debug)]
struct Calendar<T> {
    slots: BTreeMap<Millis, VecDeque<T>>,
}

impl<T: Copy + Ord> Calendar<T> {
    fn new() -> Self {
        Self {
            slots: BTreeMap::new(),
        }
    }

    fn push(&mut self, at: Millis, entry: T) {
        let slot = self.slots.entry(at).or_default();
        debug_assert!(
            slot.back().is_none_or(|last| *last < entry),
            "entries at one time are pushed in increasing order"
        );
        slot.push_back(entry);
    }

    fn peek(&self) -> Option<(Millis, T)> {
        let (at, slot) = self.slots.first_key_value()?;
        Some((*at, *slot.front().expect("no empty slot is kept")))
    }

    fn pop(&mut self) -> Option<(Millis, T)> {
        let mut first = self.slots.first_entry()?;
        let entry = first.get_mut().pop_front().expect("no empty slot is kept");
        let at = *first.key();
        if first.get().is_empty() {
            first.remove();
        }
        Some((at, entry))
    }
}

/// The queue with its dead-letter queue.
#[derive(Debug)]
pub struct SqsQueue {
    config: QueueConfig,
    messages: IdMap<Message>,
    /// visible_at → (sequence, id, receipt) — stale entries are skipped lazily.
    visible: Calendar<(u64, u64, u64)>,
    /// expires_at → id.
    expiry: Calendar<u64>,
    next_id: u64,
    seq: u64,
    /// Messages moved to the DLQ, in order.
    pub dead_letters: Vec<DeadLetter>,
    /// Messages deleted by retention expiry.
    pub expired: Vec<Body>,
    /// Lineages first sent before this time are "backlog" for drain accounting.
    backlog_before: Millis,
    backlog_live: usize,
}

impl SqsQueue {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            config,
            messages: IdMap::default(),
            visible: Calendar::new(),
            expiry: Calendar::new(),
            next_id: 1,
            seq: 0,
            dead_letters: Vec::new(),
            expired: Vec::new(),
            backlog_before: 0,
            backlog_live: 0,
        }
    }

    /// Counts messages whose lineage started before `t` as backlog (see [`Self::backlog`]).
    /// Call before sending anything.
    pub fn track_backlog_before(&mut self, t: Millis) {
        self.backlog_before = t;
    }

    /// Messages in the queue whose lineage started before the tracked time.
    pub fn backlog(&self) -> usize {
        self.backlog_live
    }

    fn removed(&mut self, body: Body) {
        if body.origin_sent < self.backlog_before {
            self.backlog_live -= 1;
        }
    }

    /// The queue's settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// `SendMessage` of a new message (its own lineage) with a delay; returns its id.
    pub fn send_new(&mut self, now: Millis, poison: bool, delay: Millis) -> u64 {
        let lineage = self.next_id;
        self.send(
            now,
            Body {
                lineage,
                origin_sent: now,
                poison,
            },
            delay,
        )
    }

    /// `SendMessage` of a body (a copy keeps the lineage) with a delay (clamped to 900 s).
    pub fn send(&mut self, now: Millis, body: Body, delay: Millis) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let visible_at = now + delay.min(MAX_DELAY);
        let msg = Message {
            id,
            body,
            sent: now,
            visible_at,
            receive_count: 0,
            receipt: 0,
            breaker_receives: 0,
        };
        self.seq += 1;
        self.visible.push(visible_at, (self.seq, id, 0));
        self.expiry.push(now + self.config.retention, id);
        self.messages.insert(id, msg);
        if body.origin_sent < self.backlog_before {
            self.backlog_live += 1;
        }
        id
    }

    /// Messages in the queue: visible, in flight and delayed (not the DLQ).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the queue holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// A stored message.
    pub fn get(&self, id: u64) -> Option<&Message> {
        self.messages.get(&id)
    }

    /// `ApproximateNumberOfMessagesNotVisible`: messages received and still hidden at `now`
    /// (a delayed message never received is not in flight). Scans the queue: for the rare
    /// receive that finds nothing visible.
    pub fn in_flight(&self, now: Millis) -> usize {
        self.messages
            .values()
            .filter(|m| m.receive_count > 0 && m.visible_at > now)
            .count()
    }

    /// `ApproximateNumberOfMessages`: messages visible at `now` (never received and past their
    /// delay, or back from an expired visibility timeout). Scans the queue: for the ramp's
    /// verdicts, a few per recovery.
    pub fn visible(&self, now: Millis) -> usize {
        self.messages
            .values()
            .filter(|m| m.visible_at <= now)
            .count()
    }

    /// All stored messages (any order).
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    /// Deletes messages whose retention has passed.
    pub fn expire(&mut self, now: Millis) {
        while let Some((at, id)) = self.expiry.peek() {
            if at > now {
                break;
            }
            self.expiry.pop();
            // A message id is never reused, so an expiry entry matches at most one message.
            if let Some(msg) = self.messages.remove(&id) {
                self.removed(msg.body);
                self.expired.push(msg.body);
            }
        }
    }

    /// When the next message becomes visible (`None` when the queue is empty).
    pub fn next_visible_at(&mut self) -> Option<Millis> {
        while let Some((at, (_, id, receipt))) = self.visible.peek() {
            match self.messages.get(&id) {
                Some(m) if m.receipt == receipt && m.visible_at == at => return Some(at),
                _ => {
                    self.visible.pop();
                }
            }
        }
        None
    }

    /// `ReceiveMessage`: up to `max` visible messages, hidden for `visibility`.
    pub fn receive(
        &mut self,
        now: Millis,
        max: usize,
        visibility: Millis,
        who: Receiver,
    ) -> Vec<Received> {
        self.expire(now);
        let max = max.clamp(1, MAX_RECEIVE_BATCH);
        let mut out = Vec::with_capacity(max);
        while out.len() < max {
            let Some(at) = self.next_visible_at() else {
                break;
            };
            if at > now {
                break;
            }
            let (_, (_, id, _)) = self.visible.pop().expect("peeked");
            let msg = self
                .messages
                .get_mut(&id)
                .expect("checked by next_visible_at");
            if msg.receive_count >= self.config.max_receive_count {
                let msg = self.messages.remove(&id).expect("present");
                self.removed(msg.body);
                self.dead_letters.push(DeadLetter {
                    body: msg.body,
                    caused_by_breaker: msg.breaker_receives > 0,
                });
                continue;
            }
            msg.receive_count += 1;
            msg.receipt += 1;
            if who == Receiver::Breaker {
                msg.breaker_receives += 1;
            }
            msg.visible_at = now + visibility.min(MAX_VISIBILITY);
            self.seq += 1;
            self.visible
                .push(msg.visible_at, (self.seq, id, msg.receipt));
            out.push(Received {
                id,
                receipt: msg.receipt,
                receive_count: msg.receive_count,
                body: msg.body,
            });
        }
        out
    }

    /// `DeleteMessage`: returns whether the message was really deleted (a stale receipt handle
    /// "succeeds" without deleting).
    pub fn delete(&mut self, id: u64, receipt: u64) -> bool {
        match self.messages.get(&id) {
            Some(m) if m.receipt == receipt => {
                let body = m.body;
                self.messages.remove(&id);
                self.removed(body);
                true
            }
            _ => false,
        }
    }

    /// `ChangeMessageVisibility` with the newest receipt (0 releases the message at once).
    pub fn change_visibility(&mut self, now: Millis, id: u64, receipt: u64, visibility: Millis) {
        if let Some(m) = self.messages.get_mut(&id)
            && m.receipt == receipt
        {
            m.visible_at = now + visibility.min(MAX_VISIBILITY);
            self.seq += 1;
            self.visible.push(m.visible_at, (self.seq, id, m.receipt));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY;

    const CONFIG: QueueConfig = QueueConfig {
        visibility_timeout: 30 * SECOND,
        max_receive_count: 3,
        retention: 3600 * SECOND,
    };

    fn receive_one(q: &mut SqsQueue, now: Millis) -> Option<Received> {
        q.receive(now, 1, CONFIG.visibility_timeout, Receiver::Esm)
            .into_iter()
            .next()
    }

    #[test]
    fn message_received_max_receive_count_times_moves_to_the_dlq_on_the_next_receive() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 0);
        for n in 1..=3 {
            let now = (n as u64 - 1) * 31 * SECOND;
            let r = receive_one(&mut q, now).expect("delivered");
            assert_eq!(r.receive_count, n);
        }
        assert!(receive_one(&mut q, 93 * SECOND).is_none());
        assert_eq!(q.dead_letters.len(), 1);
        assert!(!q.dead_letters[0].caused_by_breaker);
        assert!(q.is_empty());
    }

    #[test]
    fn breaker_receives_are_blamed_when_they_exhaust_the_receive_count() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 0);
        q.receive(0, 1, 0, Receiver::Breaker);
        q.receive(0, 1, 0, Receiver::Esm);
        q.receive(0, 1, 0, Receiver::Esm);
        assert!(q.receive(0, 1, 0, Receiver::Esm).is_empty());
        assert!(q.dead_letters[0].caused_by_breaker);
    }

    #[test]
    fn delayed_message_is_invisible_until_its_delay_ends() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 120 * SECOND);
        assert!(receive_one(&mut q, 119_999).is_none());
        assert!(receive_one(&mut q, 120 * SECOND).is_some());
    }

    #[test]
    fn delay_is_capped_at_900_seconds() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 5000 * SECOND);
        assert!(receive_one(&mut q, 900 * SECOND).is_some());
    }

    #[test]
    fn received_message_stays_hidden_for_the_visibility_timeout() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 0);
        assert!(receive_one(&mut q, 0).is_some());
        assert!(receive_one(&mut q, 29_999).is_none());
        assert_eq!(receive_one(&mut q, 30 * SECOND).unwrap().receive_count, 2);
    }

    #[test]
    fn releasing_with_visibility_zero_makes_it_visible_at_once() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 0);
        let r = receive_one(&mut q, 0).unwrap();
        q.change_visibility(5, r.id, r.receipt, 0);
        assert!(receive_one(&mut q, 5).is_some());
    }

    #[test]
    fn stale_receipt_handle_does_not_delete() {
        let mut q = SqsQueue::new(CONFIG);
        q.send_new(0, false, 0);
        let first = receive_one(&mut q, 0).unwrap();
        let second = receive_one(&mut q, 30 * SECOND).unwrap();
        assert!(!q.delete(first.id, first.receipt));
        assert_eq!(q.len(), 1);
        assert!(q.delete(second.id, second.receipt));
        assert!(q.is_empty());
    }

    #[test]
    fn messages_expire_after_the_retention_period_counted_from_their_own_send() {
        let mut q = SqsQueue::new(CONFIG);
        let original = q.send_new(0, false, 0);
        let body = q.get(original).unwrap().body;
        q.send(1800 * SECOND, body, 0);
        q.expire(3600 * SECOND);
        assert_eq!(q.expired.len(), 1);
        assert_eq!(q.len(), 1, "the copy has a fresh retention clock");
        q.expire(5400 * SECOND);
        assert_eq!(q.expired.len(), 2);
    }

    #[test]
    fn backlog_counts_lineages_started_before_the_mark_until_they_leave() {
        let mut q = SqsQueue::new(CONFIG);
        q.track_backlog_before(10 * SECOND);
        let old = q.send_new(0, false, 0);
        q.send_new(20 * SECOND, false, 0);
        assert_eq!(q.backlog(), 1);
        let copy = q.send(30 * SECOND, q.get(old).unwrap().body, 0);
        let r = q.receive(30 * SECOND, 1, 0, Receiver::Breaker)[0];
        assert!(q.delete(r.id, r.receipt));
        assert_eq!(q.backlog(), 1, "the copy is still backlog");
        q.expire(DAY);
        assert_eq!(q.backlog(), 0);
        assert!(q.get(copy).is_none());
    }

    #[test]
    fn the_calendar_pops_in_the_order_of_a_min_heap_of_time_and_entry() {
        use rand::{RngExt, SeedableRng};
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let mut calendar = Calendar::new();
        let mut heap = BinaryHeap::new();
        let mut next = 0u64;
        for _ in 0..20_000 {
            if rng.random_bool(0.55) {
                let at = rng.random_range(0..50u64) * SECOND + rng.random_range(0..3u64);
                next += 1;
                calendar.push(at, next);
                heap.push(Reverse((at, next)));
            } else {
                assert_eq!(calendar.pop(), heap.pop().map(|Reverse(e)| e));
            }
            assert_eq!(calendar.peek(), heap.peek().map(|Reverse(e)| *e));
        }
        while let Some(Reverse(e)) = heap.pop() {
            assert_eq!(calendar.pop(), Some(e));
        }
        assert_eq!(calendar.pop(), None);
    }

    #[test]
    fn receive_returns_oldest_visible_first_and_at_most_ten() {
        let mut q = SqsQueue::new(CONFIG);
        for i in 0..15 {
            q.send_new(i, false, 0);
        }
        let got = q.receive(100, 50, CONFIG.visibility_timeout, Receiver::Esm);
        assert_eq!(got.len(), 10);
        assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    }
}
