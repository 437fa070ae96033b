//! The breaker's Lambda handlers, generic over the ports in `breaker_core::ports`, and the
//! dispatch from the function's handler name to the handler.
//!
//! - [`rejitter`]: `rejitter-plan` and `rejitter` (spread the backlog over a delay window).

pub mod rejitter;
