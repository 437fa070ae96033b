//! Safe operations on the consumer's event-source mapping: updates retried on
//! `ResourceInUseException` with exponential backoff, and a bounded wait for `Disabled`.

use std::future::Future;
use std::time::Duration;

use breaker_core::ports::{EsmSnapshot, EsmState, EventSourceMappings, FaultKind, PortError};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::error::HandlerError;

/// Retry and wait bounds for event-source mapping updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsmPolicy {
    /// Attempts of one update while the mapping is in use (≥ 1).
    pub in_use_attempts: u32,
    /// First pause after a `ResourceInUseException`; doubles per attempt.
    pub in_use_base: Duration,
    /// Longest pause between in-use retries.
    pub in_use_cap: Duration,
    /// How long to wait for `Disabled`.
    pub settle_timeout: Duration,
    /// Pause between state polls.
    pub poll_interval: Duration,
}

impl Default for EsmPolicy {
    fn default() -> Self {
        Self {
            in_use_attempts: 6,
            in_use_base: Duration::from_millis(250),
            in_use_cap: Duration::from_secs(4),
            settle_timeout: Duration::from_secs(40),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Run `op`, retrying it while it fails with [`FaultKind::InUse`], with exponential backoff.
/// After the last attempt the in-use error is returned (the handler maps it to `Retryable`).
pub async fn retry_in_use<T, F, Fut>(
    policy: &EsmPolicy,
    what: &str,
    mut op: F,
) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let mut pause = policy.in_use_base;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.kind == FaultKind::InUse && attempt < policy.in_use_attempts.max(1) => {
                warn!(what, attempt, pause_ms = pause.as_millis() as u64, error = %e, "mapping in use; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(policy.in_use_cap);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Disable the mapping idempotently and wait (bounded) until it reports `Disabled`. Returns the
/// snapshot read *before* any change (its scaling is the one to remember) and the final one.
pub async fn disable_and_wait<E: EventSourceMappings>(
    esm: &E,
    uuid: &str,
    policy: &EsmPolicy,
) -> Result<(EsmSnapshot, EsmSnapshot), HandlerError> {
    let started = Instant::now();
    let before = esm.get(uuid).await?;
    let mut current = before.clone();
    loop {
        match &current.state {
            EsmState::Disabled => {
                info!(
                    esm = uuid,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "event-source mapping disabled"
                );
                return Ok((before, current));
            }
            EsmState::Deleting => {
                return Err(PortError::new(
                    "UpdateEventSourceMapping",
                    FaultKind::NonRetryable,
                    format!("event-source mapping {uuid} is being deleted"),
                )
                .into());
            }
            EsmState::Disabling => debug!(esm = uuid, "waiting for Disabled"),
            state => {
                debug!(esm = uuid, state = state.as_str(), "disabling");
                current = retry_in_use(policy, "disable", || esm.disable(uuid)).await?;
                if current.state == EsmState::Disabled {
                    continue;
                }
            }
        }
        if started.elapsed() >= policy.settle_timeout {
            return Err(HandlerError::NotSettled {
                uuid: uuid.to_owned(),
                target: "Disabled",
                last: current.state.as_str().to_owned(),
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        tokio::time::sleep(policy.poll_interval).await;
        current = esm.get(uuid).await?;
    }
}
