//! The handlers' side of the durable circuit record (`breaker_core::record`): claim the circuit
//! for an execution (single flight), and change the record as its owner. Both re-read and decide
//! again when another writer came first (a conditional-write conflict), a bounded number of times.

use breaker_core::ports::{CircuitRecords, Clock, Executions};
use breaker_core::record::{
    Acquire, CircuitRecord, Claim, MAX_CONFLICTS, acquire, acquire_from_dead, as_duplicate,
};
use tracing::info;

use crate::error::HandlerError;

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per claim, read once by open: boxing the record buys nothing"
)]
pub enum Claimed {
    /// This execution owns the circuit; the record as written.
    Owner(CircuitRecord),
    /// Another execution runs and owns it; it was told (the record names this duplicate, and a
    /// re-trip is left pending for the owner).
    Duplicate {
        /// The running owner.
        owner: String,
    },
    /// A continuation whose recovery no longer owns the circuit: nothing to do.
    Stale,
}

/// Claim the circuit for `me`: take it if nobody owns it, if the owner hands over (`claim`), or
/// if the owner no longer runs; otherwise record `me` as a duplicate.
pub async fn claim<R, X, C>(
    records: &R,
    executions: &X,
    clock: &C,
    me: &str,
    claim: &Claim<'_>,
) -> Result<Claimed, HandlerError>
where
    R: CircuitRecords,
    X: Executions,
    C: Clock,
{
    for _ in 0..MAX_CONFLICTS {
        let current = records.load().await?;
        let now = clock.now_ms();
        let (write, outcome) = match acquire(current.as_ref(), me, claim, now) {
            Acquire::Take(r) => (r.clone(), Claimed::Owner(r)),
            Acquire::Stale => return Ok(Claimed::Stale),
            Acquire::AskOwner(owner) => {
                let current = current.expect("an owner implies a stored record");
                if executions.is_running(&owner).await? {
                    let d = as_duplicate(&current, me, claim, clock.now_ms());
                    (d, Claimed::Duplicate { owner })
                } else {
                    info!(ended = %owner, me, "the owner of the circuit has ended; taking over");
                    let r = acquire_from_dead(&current, me, clock.now_ms());
                    (r.clone(), Claimed::Owner(r))
                }
            }
        };
        if records.save(&write).await? {
            return Ok(match outcome {
                Claimed::Owner(r) => Claimed::Owner(CircuitRecord {
                    revision: r.revision + 1,
                    ..r
                }),
                d => d,
            });
        }
    }
    Err(HandlerError::RecordContended(MAX_CONFLICTS))
}

/// As owner `me`, apply `change` to the record and write it; `change` sees the record as stored
/// now. Fails with [`HandlerError::NotOwner`] (changing nothing) if `me` no longer owns it.
pub async fn update_owned<R: CircuitRecords>(
    records: &R,
    me: &str,
    mut change: impl FnMut(&CircuitRecord) -> CircuitRecord,
) -> Result<CircuitRecord, HandlerError> {
    for _ in 0..MAX_CONFLICTS {
        let current = records.load().await?;
        let current = match current {
            Some(r) if r.is_owned_by(me) => r,
            other => {
                return Err(HandlerError::NotOwner {
                    me: me.to_owned(),
                    owner: other.and_then(|r| r.owner),
                });
            }
        };
        let next = change(&current);
        if records.save(&next).await? {
            return Ok(CircuitRecord {
                revision: next.revision + 1,
                ..next
            });
        }
    }
    Err(HandlerError::RecordContended(MAX_CONFLICTS))
}
