//! Pure core of the SQS circuit breaker: everything that decides, nothing that calls AWS.
//!
//! - [`message`]: the queue message model shared by probing and re-jitter (no SDK types).
//! - [`ports`]: the small capability traits the handlers are generic over; the `breaker-aws`
//!   crate implements them with the AWS SDK, tests implement them in memory.
//! - [`backoff`]: exponential backoff with full jitter, capped.
//! - [`ramp`]: the half-open concurrency schedule.
//! - [`rejitter`]: re-jitter planning: delay window, copy recognition (`cutoffMs`), batch
//!   splitting by count and size, worker sizing.
//!
//! The same policy code runs in the Lambdas and in the simulator (`lambdas/sim`).

pub mod backoff;
pub mod message;
pub mod ports;
pub mod ramp;
pub mod rejitter;
