//! Classifying SDK errors into [`PortError`]s, the same way for every service:
//! throttling, 5xx, timeouts, dispatch and response failures are [`FaultKind::Retryable`];
//! `ResourceInUseException` / `ResourceConflictException` (a concurrent update of the same
//! resource) are [`FaultKind::InUse`]; everything else is [`FaultKind::NonRetryable`].

use std::error::Error as StdError;

use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use breaker_core::ports::{FaultKind, PortError};

/// Service error codes that mean "slow down" or "try again" across Lambda, CloudWatch,
/// EventBridge and Step Functions.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "LimitExceededException",
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServiceFault",
    "InternalException",
    "RequestTimeout",
    "RequestTimeoutException",
    "EC2ThrottledException",
    "ENILimitReachedException",
    "ResourceNotReadyException",
];

/// Codes that mean another operation on the same resource is in progress.
const IN_USE_CODES: &[&str] = &["ResourceInUseException", "ResourceConflictException"];

/// Classify `err` from `operation`.
pub fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().map(str::to_owned);
            let kind = match code.as_deref() {
                Some(c) if IN_USE_CODES.contains(&c) => FaultKind::InUse,
                Some(c) if RETRYABLE_CODES.contains(&c) => FaultKind::Retryable,
                _ if status >= 500 || status == 429 => FaultKind::Retryable,
                _ => FaultKind::NonRetryable,
            };
            let message = ctx
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}: {}", chain(ctx.err())));
            PortError {
                operation,
                kind,
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) => PortError::new(
            operation,
            FaultKind::Retryable,
            format!("timeout: {}", chain(&err)),
        ),
        SdkError::DispatchFailure(_) => PortError::new(
            operation,
            FaultKind::Retryable,
            format!("dispatch failure: {}", chain(&err)),
        ),
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            PortError::new(
                operation,
                FaultKind::Retryable,
                format!("bad response (HTTP {status}): {}", chain(&err)),
            )
        }
        _ => PortError::new(operation, FaultKind::NonRetryable, chain(&err)),
    }
}

/// A port error for a response the adapter could not make sense of.
pub(crate) fn malformed(operation: &'static str, message: impl Into<String>) -> PortError {
    PortError::new(operation, FaultKind::NonRetryable, message)
}

/// The error and all its sources, `: `-separated.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
