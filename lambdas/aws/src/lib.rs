//! AWS SDK adapters for the breaker's ports (`breaker_core::ports`). Each adapter wraps one SDK
//! client, maps SDK errors to classified [`breaker_core::ports::PortError`]s and never leaks an
//! SDK type to the handlers.
//!
//! - [`sqs`]: [`sqs::SqsQueue`], the `Queue` port (receive with every attribute, faithful batch
//!   sends, batch deletes, visibility, queue facts).

pub mod sqs;
