//! `breaker`, the operator CLI of the SQS circuit breaker.
//!
//! - [`cli`]: the command line (clap).
//! - [`stack`]: a stack's breakers, read from their descriptor outputs (or the example stack's
//!   fixed outputs), and `--circuit` selection.
//! - [`ports`]: the small capability traits the commands use (one per AWS service they touch);
//!   [`aws`] implements them with the SDK, tests with in-memory fakes.
//! - [`status`]: the status model and how a circuit's phase is derived from it.
//! - [`commands`]: `list`, `status`, `open`, `close`, `flag`, `send`.
//! - [`output`]: human and JSON rendering.
//! - [`error`]: errors an operator can act on (no SDK dumps).

pub mod aws;
pub mod cli;
pub mod commands;
pub mod error;
pub mod output;
pub mod ports;
pub mod stack;
pub mod status;

pub use cli::{Cli, Command};
pub use commands::run;
pub use error::CliError;
pub use output::Output;
