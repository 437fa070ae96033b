//! Test-only helpers shared by the breaker's crates. Use from `[dev-dependencies]` only; nothing
//! here ships in a Lambda.
//!
//! - [`fake_queue`]: [`FakeQueue`], an in-memory SQS queue implementing
//!   `breaker_core::ports::Queue` with visibility timeouts, receive counts, per-message delays,
//!   batch limits, a dead-letter queue, per-receive receipt handles and fault injection.
//! - [`moto`]: [`MotoServer`], a private `moto_server` per test on a free loopback port, with SDK
//!   configuration pointed at it; killed on drop.

pub mod fake_queue;
pub mod moto;

pub use fake_queue::{FakeQueue, Op, StoredMessage};
pub use moto::MotoServer;
