//! Time limits of the breaker's AWS calls and of the probe, in one place (the probe's budget is
//! the table's `probeBudget` in `cdk/src/limits.json`, which the construct reads; the test
//! `probe_budget_follows_the_table` keeps these constants equal to it; `CONTRACT.md` "Timeouts").
//!
//! Every SDK call gives up: an attempt after [`SDK_ATTEMPT_TIMEOUT_SECONDS`], the call with its
//! retries after [`SDK_OPERATION_TIMEOUT_SECONDS`], well inside the shortest handler timeout
//! (60 s), so a hung call fails as `Retryable` inside the handler instead of the handler being
//! killed. The probe's `Invoke` of the consumer is the exception: it may last the consumer's
//! timeout plus [`INVOKE_MARGIN_SECONDS`] ([`invoke_timeout_seconds`]), in one attempt.

// An SDK call gives up well inside the shortest handler timeout (60 s), an attempt before the call.
const _: () = assert!(SDK_OPERATION_TIMEOUT_SECONDS * 2 <= 60);
const _: () = assert!(SDK_ATTEMPT_TIMEOUT_SECONDS < SDK_OPERATION_TIMEOUT_SECONDS);

/// Time to establish a connection to an AWS endpoint.
pub const SDK_CONNECT_TIMEOUT_SECONDS: u64 = 3;

/// One attempt of an SDK call (the longest long poll the handlers use is 2 s).
pub const SDK_ATTEMPT_TIMEOUT_SECONDS: u64 = 10;

/// An SDK call with all its retries: half the shortest handler timeout (60 s).
pub const SDK_OPERATION_TIMEOUT_SECONDS: u64 = 30;

/// How much longer than the consumer's timeout the probe's `Invoke` may last: the consumer's
/// initialisation (at most 10 s) and the network.
pub const INVOKE_MARGIN_SECONDS: u32 = 15;

/// The probe function's timeout, Lambda's maximum.
pub const PROBE_FUNCTION_TIMEOUT_SECONDS: u32 = 900;

/// What the probe reserves before the invoke: its receive, an SDK call.
pub const PROBE_RECEIVE_SECONDS: u32 = SDK_OPERATION_TIMEOUT_SECONDS as u32;

/// What the probe reserves after the invoke to settle the messages (queue attributes, re-send,
/// delete or release, one event): two SDK calls' worth.
pub const PROBE_SETTLE_SECONDS: u32 = 2 * SDK_OPERATION_TIMEOUT_SECONDS as u32;

/// The longest consumer timeout the probe function holds: 795 s.
pub const MAX_CONSUMER_TIMEOUT_SECONDS: u32 = PROBE_FUNCTION_TIMEOUT_SECONDS
    - PROBE_RECEIVE_SECONDS
    - INVOKE_MARGIN_SECONDS
    - PROBE_SETTLE_SECONDS;

/// How long the probe's `Invoke` of a consumer with this timeout may last.
pub const fn invoke_timeout_seconds(consumer_timeout_seconds: u32) -> u32 {
    consumer_timeout_seconds + INVOKE_MARGIN_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_holds_a_consumer_of_795_seconds() {
        assert_eq!(MAX_CONSUMER_TIMEOUT_SECONDS, 795);
        assert_eq!(
            PROBE_RECEIVE_SECONDS
                + invoke_timeout_seconds(MAX_CONSUMER_TIMEOUT_SECONDS)
                + PROBE_SETTLE_SECONDS,
            PROBE_FUNCTION_TIMEOUT_SECONDS
        );
    }

    #[test]
    fn probe_budget_follows_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cdk/src/limits.json");
        let table: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let b = &table["probeBudget"];
        let n = |k: &str| {
            b[k].as_u64()
                .unwrap_or_else(|| panic!("limits.json probeBudget.{k} is not a number"))
        };
        assert_eq!(
            n("functionSeconds"),
            u64::from(PROBE_FUNCTION_TIMEOUT_SECONDS)
        );
        assert_eq!(n("receiveSeconds"), u64::from(PROBE_RECEIVE_SECONDS));
        assert_eq!(n("invokeMarginSeconds"), u64::from(INVOKE_MARGIN_SECONDS));
        assert_eq!(n("settleSeconds"), u64::from(PROBE_SETTLE_SECONDS));
    }
}
