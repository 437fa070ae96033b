//! The example stack's demo consumer: an SQS batch handler that "calls a downstream" whose health
//! is set by a **failure flag** an operator flips at run time (`breaker flag ...`).
//!
//! - [`flag`]: the decision the flag (`ok`, `fail`, `slow`, `percent:N`, `partial`) implies. Pure.
//!   The flag's text format and the order body are `breaker_core::example`'s, shared with the
//!   `breaker` CLI, which writes them.
//! - [`source`]: where the flag lives (an SSM String parameter), behind the [`FlagSource`] trait,
//!   and [`CachedFlag`], which re-reads it at most every `FLAG_CACHE_SECONDS`.
//! - [`handler`]: the batch handler; failed messages are reported with `ReportBatchItemFailures`,
//!   and an invocation that reports any prints the `PartialFailures` EMF line.
//! - [`config`]: the environment the function reads, in one place.
//!
//! # Why an SSM parameter
//! The flag must change without a redeploy and be seen within seconds. Updating the function's
//! environment through `UpdateFunctionConfiguration` would also do that, but it replaces every
//! warm execution environment (cold starts in the middle of the experiment), puts the function in
//! the `Pending`/`InProgress` update state during which further updates fail, and races with
//! CloudFormation, which owns the environment. A parameter read with a 2 s cache costs one
//! `GetParameter` per warm environment per 2 s, is visible to every environment within the TTL,
//! needs only `ssm:GetParameter` on one parameter, and works the same in moto.

pub mod config;
pub mod flag;
pub mod handler;
pub mod source;

pub use config::{Config, ConfigError};
pub use flag::{Decide, Flag, FlagParseError, Outcome};
pub use handler::{BatchError, FlaggedDownstream, Order, handle_batch, partial_failure_line};
pub use source::{CachedFlag, FlagSource, SourceError, SsmFlagSource};
