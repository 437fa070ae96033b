//! Pure core of the SQS circuit breaker: everything that decides, nothing that calls AWS.
//!
//! - [`config`]: the breaker's configuration from the environment (`Config::from_env`).
//! - [`contract`]: the versioned JSON documents the state machine and the handlers exchange.
//! - [`message`]: the queue message model shared by probing and re-jitter (no SDK types).
//! - [`ports`]: the small capability traits the handlers are generic over; the `breaker-aws`
//!   crate implements them with the AWS SDK, tests implement them in memory.
//! - [`backoff`]: exponential backoff with full jitter, capped.
//! - [`history`]: the per-execution history-event budget and the table of what each workflow
//!   path costs.
//! - [`mapping`]: checking that the configured event-source mapping is the consumer's (function
//!   and queue) before the breaker touches it.
//! - [`policy`]: backoff step (wait / stuck / continue-as-new), single flight, ramp relapse.
//! - [`probe`]: judging a probe and what happens to each probed message.
//! - [`sqs_event`]: the faithful SQS event a probe invokes the consumer with.
//! - [`example`]: the example consumer's wire formats (failure flag, test order), shared by the
//!   example consumer and the `breaker` CLI.
//! - [`events`]: the breaker's EventBridge events.
//! - [`filter`]: the event-source mapping's `FilterCriteria`, applied to an SQS record as Lambda
//!   applies it (the probe invokes the consumer only with messages the mapping would deliver).
//! - [`keepalive`]: when the open circuit re-sends the queue so no message expires.
//! - [`ramp`]: the half-open concurrency schedule.
//! - [`record`]: the durable circuit record (owner, phase, original configuration, pending
//!   re-trip) and the pure decisions on it.
//! - [`rejitter`]: re-jitter planning: delay window, copy recognition (`cutoffMs`), batch
//!   splitting by count and size, worker sizing.
//! - [`timeouts`]: time limits of every SDK call, of the probe's invoke and the probe's budget.
//!
//! The same policy code runs in the Lambdas and in the simulator (`lambdas/sim`).

pub mod backoff;
pub mod config;
pub mod contract;
pub mod events;
pub mod example;
pub mod filter;
pub mod history;
pub mod keepalive;
pub mod mapping;
pub mod message;
pub mod policy;
pub mod ports;
pub mod probe;
pub mod ramp;
pub mod record;
pub mod rejitter;
pub mod sqs_event;
pub mod timeouts;
