//! The breaker's Lambda handlers, generic over the ports in `breaker_core::ports`, and the
//! dispatch from the function's handler name to the handler.
//!
//! - [`app`]: [`app::HandlerName`] (from `_HANDLER`) and [`app::App`] (the configuration, the
//!   ports and the mapping-update policy, built once) with the dispatch to the handler.
//! - [`aws`]: [`aws::AwsPorts`], the ports as the AWS adapters, and how their SDK clients are
//!   built.
//! - [`ports`]: [`ports::Ports`], every port as one bundle, and [`ports_bundle!`] to declare one.
//! - [`open`], [`backoff`], [`probe`], [`ramp`], [`close`], [`stuck`]: one module per handler of
//!   `CONTRACT.md`; each handler is an async function taking its input document and the
//!   [`app::App`] (`backoff` also its random source).
//! - [`rejitter`]: `rejitter-plan` and `rejitter` (spread the backlog over a delay window).
//! - [`record`]: claiming the durable circuit record (single flight) and changing it as its
//!   owner.
//! - [`esm`]: event-source mapping updates retried on `ResourceInUseException`, bounded wait
//!   for `Disabled`.
//! - [`error`]: [`error::HandlerError`] and its mapping to the runtime's `Diagnostic`
//!   (`Retryable`, `NonRetryable`, `ProbeFailed`).
//! - `testing` (tests, or feature `testing`): in-memory fakes of the ports (and, in this crate's
//!   unit tests, `Fakes`, the bundle of them).

pub mod app;
pub mod aws;
pub mod backoff;
pub mod close;
pub mod error;
pub mod esm;
pub mod open;
pub mod ports;
pub mod probe;
pub mod ramp;
pub mod record;
pub mod rejitter;
pub mod stuck;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
