//! AWS SDK adapters for the breaker's ports (`breaker_core::ports`). Each adapter wraps one SDK
//! client, maps SDK errors to classified [`breaker_core::ports::PortError`]s and never leaks an
//! SDK type to the handlers.
//!
//! - [`sqs`]: [`sqs::SqsQueue`], the `Queue` port (receive with every attribute, faithful batch
//!   sends, batch deletes, visibility, queue facts).
//! - [`error`]: SDK error classification for the other adapters (retryable / in use /
//!   non-retryable), and [`error::is_unanswered`] for calls that got no answer at all.
//! - [`lambda`]: the consumer's event-source mapping and the consumer itself.
//! - [`cloudwatch`]: the trigger alarm and the consumer's metrics.
//! - [`eventbridge`]: the breaker's event bus.
//! - [`dynamodb`]: [`dynamodb::DynamoCircuitRecords`], the durable circuit record (conditional
//!   writes on its revision).
//! - [`sfn`]: running executions of the breaker's state machine; starting, stopping and reading
//!   the history of executions (operator CLI).
//! - [`timeouts`]: the SDK timeouts of every client and of the consumer's `Invoke`.

pub mod cloudwatch;
pub mod dynamodb;
pub mod error;
pub mod eventbridge;
pub mod lambda;
pub mod sfn;
pub mod sqs;
pub mod timeouts;
