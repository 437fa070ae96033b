//! The SDK's time limits, from [`breaker_core::timeouts`]: [`sdk_timeouts`] for every client,
//! [`invoke_timeouts`] for the probe's `Invoke` of the consumer.

use std::time::Duration;

use aws_smithy_types::timeout::TimeoutConfig;
use breaker_core::timeouts::{
    SDK_ATTEMPT_TIMEOUT_SECONDS, SDK_CONNECT_TIMEOUT_SECONDS, SDK_OPERATION_TIMEOUT_SECONDS,
    invoke_timeout_seconds,
};

/// Every SDK client's timeouts: connect 3 s, attempt 10 s, call with retries 30 s. A hung call
/// fails as a retryable timeout (`error::is_unanswered`) well inside the handler's own timeout.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(SDK_CONNECT_TIMEOUT_SECONDS))
        .operation_attempt_timeout(Duration::from_secs(SDK_ATTEMPT_TIMEOUT_SECONDS))
        .operation_timeout(Duration::from_secs(SDK_OPERATION_TIMEOUT_SECONDS))
        .build()
}

/// The timeouts of one `Invoke` of a consumer with this timeout: the call (a single attempt)
/// may last the consumer's timeout plus the invoke margin.
pub fn invoke_timeouts(consumer_timeout_seconds: u32) -> TimeoutConfig {
    let limit = Duration::from_secs(u64::from(invoke_timeout_seconds(consumer_timeout_seconds)));
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(SDK_CONNECT_TIMEOUT_SECONDS))
        .operation_attempt_timeout(limit)
        .operation_timeout(limit)
        .build()
}
