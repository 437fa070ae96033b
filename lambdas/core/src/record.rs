//! The durable circuit record: one item per circuit, outside any execution, written only by
//! compare-and-swap on its `revision` (see [`crate::ports::CircuitRecords`]). It holds who owns the
//! recovery (single flight), the phase, the mapping's configuration as found before the first open
//! of an outage (restored on close, whatever happened to the executions in between) and a trip
//! that arrived while the owner was half-open or closing (honoured before the owner lets go).
//!
//! Everything here is pure: the handlers load the record, ask these functions what to write, and
//! write it with the revision they read. A lost race is a conflict; they reload and decide again.

use serde::{Deserialize, Serialize};

use crate::contract::SavedScaling;
use crate::ports::{PollerConfig, Scaling};

/// How many times a handler re-reads and re-decides after a conflicting write before giving up
/// (retryably). Each conflict means another writer made progress, so this is never reached in
/// practice; it bounds the loop.
pub const MAX_CONFLICTS: u32 = 8;

/// How many duplicate executions the record remembers (the newest last).
pub const DUPLICATES_KEPT: usize = 10;

/// Where the circuit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No outage: consumption is normal (also the phase of a record never written).
    Closed,
    /// The mapping is disabled; backing off and probing.
    Open,
    /// The ramp has re-enabled the mapping and raises it step by step (or close is restoring).
    HalfOpen,
    /// A recovery failed or gave up; the mapping is left as "Circuit Stuck Open" said.
    Stuck,
}

impl Phase {
    /// The phase as written in the record (`closed`, `open`, `half-open`, `stuck`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
            Self::Stuck => "stuck",
        }
    }
}

/// The mapping's configuration before the breaker touched it, restored exactly on close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OriginalConfig {
    /// Whether the mapping was enabled.
    pub enabled: bool,
    /// `ScalingConfig.MaximumConcurrency`; `None` when it had no limit.
    pub maximum_concurrency: Option<u32>,
    /// `ProvisionedPollerConfig` where the mapping was in provisioned mode (absent otherwise, and
    /// in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_poller_config: Option<crate::ports::PollerConfig>,
}

impl OriginalConfig {
    /// Whether a mapping found like this runs at `scaling` (a provisioned mapping compared with
    /// its omitted fields at their defaults).
    pub fn runs_at(&self, scaling: Scaling) -> bool {
        match scaling {
            Scaling::Concurrency(limit) => {
                self.provisioned_poller_config.is_none() && self.maximum_concurrency == limit
            }
            Scaling::Pollers(pollers) => {
                self.provisioned_poller_config.map(PollerConfig::effective)
                    == Some(pollers.effective())
            }
        }
    }

    /// The scaling part, as the circuit state carries it.
    pub fn scaling(&self) -> SavedScaling {
        SavedScaling {
            maximum_concurrency: self.maximum_concurrency,
        }
    }
}

/// The record of one circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitRecord {
    /// Bumped by every write; a write names the revision it read.
    pub revision: u64,
    /// The execution that owns the recovery (`None`: nobody).
    #[serde(default)]
    pub owner: Option<String>,
    /// Where the circuit is.
    pub phase: Phase,
    /// The mapping's configuration before the first open of the current outage; `None` once a
    /// recovery closed the circuit, unless its ramp settled below it ([`Self::settled`]).
    #[serde(default)]
    pub original: Option<OriginalConfig>,
    /// The scaling a ramp settled at when it closed the circuit below [`Self::original`] (issue
    /// 16), which the record then keeps: a trip that finds the mapping still at this level
    /// restores the original, not the settled level; a mapping changed since (an operator set it
    /// by hand) is taken as found. `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Scaling>,
    /// When the current outage opened (epoch ms).
    #[serde(default)]
    pub opened_at_ms: Option<u64>,
    /// Probes done in the current outage.
    #[serde(default)]
    pub attempt: u32,
    /// When the owner took the circuit (epoch ms).
    #[serde(default)]
    pub owned_since_ms: Option<u64>,
    /// When the owner re-enabled the mapping (ramp step 0); trips after it are re-trips.
    #[serde(default)]
    pub half_open_at_ms: Option<u64>,
    /// A trip that arrived while the owner was half-open (epoch ms of the trigger).
    #[serde(default)]
    pub pending_trip_at_ms: Option<u64>,
    /// The newest executions that found the circuit owned and ended as duplicates.
    #[serde(default)]
    pub duplicates: Vec<String>,
    /// The last execution that owned the circuit, kept after it lets go.
    #[serde(default)]
    pub last_owner: Option<String>,
    /// Why the circuit is stuck, when it is.
    #[serde(default)]
    pub stuck_reason: Option<String>,
    /// Last write (epoch ms).
    pub updated_at_ms: u64,
}

impl CircuitRecord {
    /// The record of a circuit nobody has written yet.
    pub fn new_closed(now_ms: u64) -> Self {
        Self {
            revision: 0,
            owner: None,
            phase: Phase::Closed,
            original: None,
            settled: None,
            opened_at_ms: None,
            attempt: 0,
            owned_since_ms: None,
            half_open_at_ms: None,
            pending_trip_at_ms: None,
            duplicates: Vec::new(),
            last_owner: None,
            stuck_reason: None,
            updated_at_ms: now_ms,
        }
    }

    /// The original of an outage under way (or interrupted), not the one a settled close keeps.
    pub fn outage_original(&self) -> Option<OriginalConfig> {
        self.original.filter(|_| self.settled.is_none())
    }

    /// Is `execution` the owner?
    pub fn is_owned_by(&self, execution: &str) -> bool {
        self.owner.as_deref() == Some(execution)
    }

    /// The trip to honour before the owner lets go: one that arrived after the mapping was
    /// re-enabled (a trip while it is disabled is already served by the open circuit).
    pub fn retrip_pending(&self) -> bool {
        matches!(
            (self.pending_trip_at_ms, self.half_open_at_ms),
            (Some(trip), Some(half_open)) if trip >= half_open
        )
    }
}

/// What a trigger wants from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<'a> {
    /// A new trip (alarm or `breaker open`) at `trip_at_ms`.
    Trip {
        /// When the trigger happened (the alarm's state-change time, or now for an operator).
        trip_at_ms: u64,
    },
    /// Continue-as-new: take over from `previous`, the execution that started this one.
    Continue {
        /// The execution handing over.
        previous: Option<&'a str>,
    },
    /// `breaker close`: take over from `previous` (the recovery the operator stopped), or from
    /// nobody (a stuck circuit).
    ManualClose {
        /// The stopped recovery, if any.
        previous: Option<&'a str>,
    },
}

impl Claim<'_> {
    fn previous(&self) -> Option<&str> {
        match self {
            Self::Trip { .. } => None,
            Self::Continue { previous } | Self::ManualClose { previous } => *previous,
        }
    }
}

/// What to do about the record's current owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per claim, moved once into a write: boxing the record buys nothing"
)]
pub enum Acquire {
    /// Write this record (with the revision read) and act as the owner.
    Take(CircuitRecord),
    /// A continuation of a recovery that no longer owns anything (the circuit was closed or
    /// taken since): end without acting.
    Stale,
    /// The owner is another execution: ask whether it still runs, then call
    /// [`acquire_from_dead`] (not running) or [`as_duplicate`] (running).
    AskOwner(String),
}

/// Decide how `me` claims the circuit given the record read (`None`: never written).
pub fn acquire(
    record: Option<&CircuitRecord>,
    me: &str,
    claim: &Claim<'_>,
    now_ms: u64,
) -> Acquire {
    let current = record
        .cloned()
        .unwrap_or_else(|| CircuitRecord::new_closed(now_ms));
    match current.owner.as_deref() {
        None if matches!(claim, Claim::Continue { .. }) => Acquire::Stale,
        None => Acquire::Take(taken(current, me, now_ms)),
        Some(owner) if owner == me => Acquire::Take(current),
        Some(owner) if claim.previous() == Some(owner) => Acquire::Take(taken(current, me, now_ms)),
        Some(owner) => Acquire::AskOwner(owner.to_owned()),
    }
}

/// The owner has ended (succeeded, failed, timed out or was stopped) without letting go: take
/// over, keeping the outage's original configuration.
pub fn acquire_from_dead(record: &CircuitRecord, me: &str, now_ms: u64) -> CircuitRecord {
    taken(record.clone(), me, now_ms)
}

/// The owner runs: `me` is a duplicate. The returned record remembers it and, for a trip that
/// arrives while the owner is half-open, leaves a pending trip for the owner to honour.
pub fn as_duplicate(
    record: &CircuitRecord,
    me: &str,
    claim: &Claim<'_>,
    now_ms: u64,
) -> CircuitRecord {
    let mut r = record.clone();
    if let Claim::Trip { trip_at_ms } = claim
        && r.phase == Phase::HalfOpen
    {
        r.pending_trip_at_ms = Some(r.pending_trip_at_ms.unwrap_or(0).max(*trip_at_ms));
    }
    r.duplicates.push(me.to_owned());
    if r.duplicates.len() > DUPLICATES_KEPT {
        let excess = r.duplicates.len() - DUPLICATES_KEPT;
        r.duplicates.drain(..excess);
    }
    r.updated_at_ms = now_ms;
    r
}

fn taken(mut r: CircuitRecord, me: &str, now_ms: u64) -> CircuitRecord {
    r.owner = Some(me.to_owned());
    r.last_owner = Some(me.to_owned());
    r.owned_since_ms = Some(now_ms);
    r.updated_at_ms = now_ms;
    r
}

/// The owner opens (or re-opens) the circuit: phase open, the original configuration kept if the
/// outage already has one (an interrupted recovery), otherwise `found` (the mapping as it is now).
/// After a close that settled below the original, the kept original stays if the mapping is
/// found still at the settled level, and `found` replaces it if the mapping was changed since.
/// Returns the record to write and the original to restore on close.
pub fn opened(
    record: &CircuitRecord,
    found: OriginalConfig,
    now_ms: u64,
) -> (CircuitRecord, OriginalConfig) {
    let mut r = record.clone();
    if let Some(settled) = r.settled.take()
        && !found.runs_at(settled)
    {
        r.original = None;
    }
    let original = *r.original.get_or_insert(found);
    if r.opened_at_ms.is_none() || r.phase == Phase::Closed {
        r.opened_at_ms = Some(now_ms);
        r.attempt = 0;
    }
    r.phase = Phase::Open;
    r.half_open_at_ms = None;
    r.pending_trip_at_ms = None;
    r.stuck_reason = None;
    r.updated_at_ms = now_ms;
    (r, original)
}

/// The owner re-enabled the mapping (ramp step 0).
pub fn half_opened(record: &CircuitRecord, attempt: u32, now_ms: u64) -> CircuitRecord {
    let mut r = record.clone();
    r.phase = Phase::HalfOpen;
    r.half_open_at_ms = Some(now_ms);
    r.attempt = attempt;
    r.updated_at_ms = now_ms;
    r
}

/// The owner lets go: the circuit is closed and the outage's original is forgotten.
pub fn released(record: &CircuitRecord, now_ms: u64) -> CircuitRecord {
    let mut r = record.clone();
    r.owner = None;
    r.phase = Phase::Closed;
    r.original = None;
    r.settled = None;
    r.opened_at_ms = None;
    r.owned_since_ms = None;
    r.half_open_at_ms = None;
    r.pending_trip_at_ms = None;
    r.stuck_reason = None;
    r.updated_at_ms = now_ms;
    r
}

/// The owner lets go after a ramp that settled at `settled`, below the original: closed, like
/// [`released`], but the original stays with the level it settled at ([`CircuitRecord::settled`]),
/// so that the next trip restores the original.
pub fn released_settled(record: &CircuitRecord, settled: Scaling, now_ms: u64) -> CircuitRecord {
    let mut r = released(record, now_ms);
    r.original = record.original;
    r.settled = Some(settled);
    r
}

/// A recovery failed or gave up: phase stuck with the reason; the owner and the original stay so
/// that the next trigger takes over from the ended owner and still restores the original.
pub fn stuck(record: &CircuitRecord, reason: &str, now_ms: u64) -> CircuitRecord {
    let mut r = record.clone();
    r.phase = Phase::Stuck;
    r.stuck_reason = Some(reason.chars().take(1_000).collect());
    r.updated_at_ms = now_ms;
    r
}

/// Epoch milliseconds of an RFC 3339 UTC timestamp as EventBridge and CloudWatch write them
/// (`2026-11-30T12:00:00Z`, `2026-11-30T12:00:00.123+0000`, `...+00:00`). `None` if it is not one.
pub fn parse_utc_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        let part = s.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    if !matches!(rest, "Z" | "z" | "+0000" | "+00:00" | "-0000" | "-00:00") {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm), proleptic Gregorian, from 1970-01-01.
    let y = if month <= 2 {
        year as i64 - 1
    } else {
        year as i64
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (hour * 3_600 + minute * 60 + second) as i64;
    u64::try_from(secs).ok().map(|s| s * 1_000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "exec-me";
    const OTHER: &str = "exec-other";
    #[test]
    fn a_record_without_poller_configuration_parses_and_one_with_it_round_trips() {
        let old: OriginalConfig =
            serde_json::from_value(serde_json::json!({ "enabled": true, "maximumConcurrency": 5 }))
                .unwrap();
        assert_eq!(old.provisioned_poller_config, None);
        let with = OriginalConfig {
            provisioned_poller_config: Some(crate::ports::PollerConfig {
                minimum_pollers: Some(1),
                maximum_pollers: None,
            }),
            ..old
        };
        let json = serde_json::to_value(with).unwrap();
        assert_eq!(
            json["provisionedPollerConfig"],
            serde_json::json!({ "minimumPollers": 1, "maximumPollers": null })
        );
        assert_eq!(
            serde_json::from_value::<OriginalConfig>(json).unwrap(),
            with
        );
    }

    const ORIGINAL: OriginalConfig = OriginalConfig {
        enabled: true,
        maximum_concurrency: Some(50),
        provisioned_poller_config: None,
    };

    fn owned_by(owner: &str, phase: Phase) -> CircuitRecord {
        CircuitRecord {
            revision: 7,
            owner: Some(owner.into()),
            phase,
            original: Some(ORIGINAL),
            opened_at_ms: Some(1_000),
            attempt: 3,
            owned_since_ms: Some(1_000),
            half_open_at_ms: (phase == Phase::HalfOpen).then_some(5_000),
            ..CircuitRecord::new_closed(1_000)
        }
    }

    #[test]
    fn a_circuit_nobody_owns_is_taken() {
        let trip = Claim::Trip { trip_at_ms: 9 };
        let Acquire::Take(r) = acquire(None, ME, &trip, 100) else {
            panic!()
        };
        assert_eq!(
            (r.owner.as_deref(), r.revision, r.owned_since_ms),
            (Some(ME), 0, Some(100))
        );
        let closed = CircuitRecord {
            revision: 4,
            ..CircuitRecord::new_closed(1)
        };
        let Acquire::Take(r) = acquire(Some(&closed), ME, &trip, 100) else {
            panic!()
        };
        assert_eq!(
            (r.owner.as_deref(), r.revision),
            (Some(ME), 4),
            "the read revision is kept for the conditional write"
        );
    }

    #[test]
    fn an_owned_circuit_sends_the_claimant_to_ask_whether_the_owner_runs() {
        let r = owned_by(OTHER, Phase::Open);
        for claim in [
            Claim::Trip { trip_at_ms: 1 },
            Claim::Continue { previous: None },
            Claim::Continue {
                previous: Some("x"),
            },
            Claim::ManualClose { previous: None },
        ] {
            assert_eq!(
                acquire(Some(&r), ME, &claim, 2),
                Acquire::AskOwner(OTHER.into())
            );
        }
    }

    #[test]
    fn a_handover_from_the_owner_is_taken_and_keeps_the_outage() {
        let r = owned_by(OTHER, Phase::Open);
        for claim in [
            Claim::Continue {
                previous: Some(OTHER),
            },
            Claim::ManualClose {
                previous: Some(OTHER),
            },
        ] {
            let Acquire::Take(t) = acquire(Some(&r), ME, &claim, 9_000) else {
                panic!()
            };
            assert_eq!(t.owner.as_deref(), Some(ME));
            assert_eq!(
                (t.original, t.opened_at_ms, t.attempt),
                (Some(ORIGINAL), Some(1_000), 3)
            );
        }
    }

    #[test]
    fn a_continuation_of_a_released_circuit_is_stale_but_a_manual_close_takes_it() {
        let closed = CircuitRecord {
            revision: 4,
            ..CircuitRecord::new_closed(1)
        };
        assert_eq!(
            acquire(
                Some(&closed),
                ME,
                &Claim::Continue {
                    previous: Some(OTHER)
                },
                2
            ),
            Acquire::Stale
        );
        assert!(matches!(
            acquire(Some(&closed), ME, &Claim::ManualClose { previous: None }, 2),
            Acquire::Take(_)
        ));
    }

    #[test]
    fn the_owner_claiming_again_changes_nothing() {
        let r = owned_by(ME, Phase::Open);
        assert_eq!(
            acquire(Some(&r), ME, &Claim::Trip { trip_at_ms: 1 }, 2),
            Acquire::Take(r)
        );
    }

    #[test]
    fn a_trip_while_the_owner_is_half_open_is_left_pending_and_one_while_open_is_not() {
        let half = owned_by(OTHER, Phase::HalfOpen);
        let d = as_duplicate(&half, ME, &Claim::Trip { trip_at_ms: 6_000 }, 6_001);
        assert_eq!(d.pending_trip_at_ms, Some(6_000));
        assert!(d.retrip_pending());
        assert_eq!(d.duplicates, vec![ME.to_owned()]);
        let old_delivery = as_duplicate(&half, ME, &Claim::Trip { trip_at_ms: 900 }, 6_001);
        assert!(
            !old_delivery.retrip_pending(),
            "a late delivery of the event that opened the circuit is no re-trip"
        );
        let open = owned_by(OTHER, Phase::Open);
        let d = as_duplicate(&open, ME, &Claim::Trip { trip_at_ms: 6_000 }, 6_001);
        assert_eq!(d.pending_trip_at_ms, None);
        let handover = as_duplicate(&half, ME, &Claim::ManualClose { previous: None }, 6_001);
        assert_eq!(handover.pending_trip_at_ms, None);
    }

    #[test]
    fn the_record_keeps_only_the_newest_duplicates() {
        let mut r = owned_by(OTHER, Phase::Open);
        for i in 0..25 {
            r = as_duplicate(&r, &format!("d{i}"), &Claim::Trip { trip_at_ms: 1 }, 2);
        }
        assert_eq!(r.duplicates.len(), DUPLICATES_KEPT);
        assert_eq!(r.duplicates.last().map(String::as_str), Some("d24"));
    }

    #[test]
    fn an_interrupted_outage_keeps_its_original_configuration() {
        // A recovery died mid-ramp: the mapping runs at a ramp level (2) now.
        let died = owned_by(OTHER, Phase::HalfOpen);
        let taken = acquire_from_dead(&died, ME, 20_000);
        let at_ramp_level = OriginalConfig {
            enabled: true,
            maximum_concurrency: Some(2),
            provisioned_poller_config: None,
        };
        let (r, original) = opened(&taken, at_ramp_level, 20_000);
        assert_eq!(original, ORIGINAL);
        assert_eq!(
            (r.phase, r.opened_at_ms, r.attempt),
            (Phase::Open, Some(1_000), 3)
        );
        assert_eq!((r.half_open_at_ms, r.pending_trip_at_ms), (None, None));
    }

    #[test]
    fn a_new_outage_records_the_mapping_as_found() {
        let Acquire::Take(t) = acquire(None, ME, &Claim::Trip { trip_at_ms: 1 }, 10) else {
            panic!()
        };
        let found = OriginalConfig {
            enabled: true,
            maximum_concurrency: None,
            provisioned_poller_config: None,
        };
        let (r, original) = opened(&t, found, 10);
        assert_eq!(
            (original, r.original, r.opened_at_ms, r.attempt),
            (found, Some(found), Some(10), 0)
        );
    }

    #[test]
    fn release_forgets_the_outage_and_keeps_the_last_owner() {
        let r = released(&owned_by(ME, Phase::HalfOpen), 9);
        assert_eq!(
            (r.owner, r.phase, r.original, r.opened_at_ms),
            (None, Phase::Closed, None, None)
        );
        assert_eq!(r.last_owner, None, "last_owner is written when taken");
        let Acquire::Take(t) = acquire(None, ME, &Claim::Trip { trip_at_ms: 1 }, 10) else {
            panic!()
        };
        assert_eq!(released(&t, 11).last_owner.as_deref(), Some(ME));
    }

    /// Issue 16: a ramp that settled below the original closes the circuit but keeps the
    /// original, so the next trip saves and restores the original, not the settled level.
    #[test]
    fn a_settled_close_keeps_the_original_for_the_next_trip_unless_the_mapping_changed() {
        let settled = Scaling::Concurrency(Some(17));
        let r = released_settled(&owned_by(ME, Phase::HalfOpen), settled, 9);
        assert_eq!(
            (
                r.owner.clone(),
                r.phase,
                r.original,
                r.settled,
                r.opened_at_ms
            ),
            (None, Phase::Closed, Some(ORIGINAL), Some(settled), None)
        );
        assert_eq!(r.outage_original(), None, "no outage under way");
        let at_settled = OriginalConfig {
            maximum_concurrency: Some(17),
            ..ORIGINAL
        };
        let (next, original) = opened(&r, at_settled, 20);
        assert_eq!((original, next.settled), (ORIGINAL, None));
        assert_eq!(next.opened_at_ms, Some(20));
        // An operator set the mapping by hand since: what they set is the original now.
        let by_hand = OriginalConfig {
            maximum_concurrency: Some(30),
            ..ORIGINAL
        };
        let (next, original) = opened(&r, by_hand, 20);
        assert_eq!(
            (original, next.original, next.settled),
            (by_hand, Some(by_hand), None)
        );
        // A plain release forgets it.
        assert_eq!(released(&next, 21).settled, None);
    }

    #[test]
    fn stuck_keeps_owner_and_original_for_the_next_trigger() {
        let r = stuck(&owned_by(ME, Phase::HalfOpen), &"x".repeat(5_000), 9);
        assert_eq!(
            (r.phase, r.owner.as_deref(), r.original),
            (Phase::Stuck, Some(ME), Some(ORIGINAL))
        );
        assert_eq!(r.stuck_reason.map(|s| s.len()), Some(1_000));
    }

    #[test]
    fn record_round_trips_as_json() {
        let r = owned_by(ME, Phase::HalfOpen);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["phase"], "half-open");
        assert_eq!(json["original"]["maximumConcurrency"], 50);
        assert_eq!(serde_json::from_value::<CircuitRecord>(json).unwrap(), r);
    }

    #[test]
    fn utc_timestamps_parse_to_epoch_ms() {
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_ms("2026-11-30T12:34:56Z"),
            Some(1_796_042_096_000)
        );
        assert_eq!(
            parse_utc_ms("2026-11-30T12:34:56.789+0000"),
            Some(1_796_042_096_789)
        );
        assert_eq!(
            parse_utc_ms("2024-02-29T00:00:00.5+00:00"),
            Some(1_709_164_800_500)
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-11-30T12:34:56+0100",
            "2026-11-30T12:34:56",
            "x026-11-30T12:34:56Z",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad}");
        }
    }
}
