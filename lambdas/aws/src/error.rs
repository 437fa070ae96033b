//! Classifying SDK errors into [`PortError`]s, the same way for every service:
//! `ResourceInUseException` / `ResourceConflictException` (a concurrent update of the same
//! resource) are [`FaultKind::InUse`]; configuration errors that waiting will not heal are
//! [`FaultKind::NonRetryable`] even when the service answers them with a 5xx (Lambda's KMS,
//! runtime, package, subnet and security-group errors come as 502); throttling, other 5xx, 408,
//! timeouts, dispatch and response failures are [`FaultKind::Retryable`]; everything else is
//! [`FaultKind::NonRetryable`].

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
    // DynamoDB (the circuit record): capacity and transaction conflicts settle by themselves.
    "ProvisionedThroughputExceededException",
    "RequestLimitExceededException",
    "TransactionConflictException",
    // Lambda Invoke: a function's file system, SnapStart snapshot or network interface is not
    // ready yet or was slow to answer (408/409/502); they settle without anyone acting.
    "EFSMountConnectivityException",
    "EFSMountTimeoutException",
    "S3FilesMountConnectivityException",
    "S3FilesMountTimeoutException",
    "SnapStartNotReadyException",
    "SnapStartTimeoutException",
    "ENINotReadyException",
    "CodeArtifactUserPendingException",
];

/// Codes that no amount of waiting heals: a missing resource or permission, a request the
/// service refuses as it stands (too large, malformed), or a function whose configuration is
/// broken (KMS key, runtime, package, network) — someone has to change something. Checked
/// before the HTTP status, because Lambda answers several of them with 502.
const NON_RETRYABLE_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "ResourceNotFoundException",
    "RequestTooLargeException",
    "SerializedRequestEntityTooLargeException",
    "InvalidRequestContentException",
    "UnsupportedMediaTypeException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
    "InvalidRuntimeException",
    "InvalidZipFileException",
    "InvalidSecurityGroupIDException",
    "InvalidSubnetIDException",
    "EC2AccessDeniedException",
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
                Some(c) if NON_RETRYABLE_CODES.contains(&c) => FaultKind::NonRetryable,
                Some(c) if RETRYABLE_CODES.contains(&c) => FaultKind::Retryable,
                _ if status >= 500 || status == 429 || status == 408 => FaultKind::Retryable,
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
        SdkError::TimeoutError(_) => unanswered(operation, TIMEOUT, &err),
        SdkError::DispatchFailure(_) => unanswered(operation, DISPATCH_FAILURE, &err),
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

/// Message prefix of a call whose request could not be sent or whose connection failed.
const DISPATCH_FAILURE: &str = "dispatch failure";
/// Message prefix of a call that timed out.
const TIMEOUT: &str = "timeout";

/// A retryable error for a call that got no answer: `what: <the causes>`.
fn unanswered(operation: &'static str, what: &str, err: &(dyn StdError + 'static)) -> PortError {
    let message = match err.source() {
        Some(source) => format!("{what}: {}", chain(source)),
        None => what.to_owned(),
    };
    PortError::new(operation, FaultKind::Retryable, message)
}

/// True when `err` is a call that got no answer at all (the endpoint could not be reached or did
/// not answer in time), as opposed to an answer the service gave.
pub fn is_unanswered(err: &PortError) -> bool {
    err.code.is_none()
        && err.kind == FaultKind::Retryable
        && [DISPATCH_FAILURE, TIMEOUT].iter().any(|p| {
            err.message
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(": "))
        })
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

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::error::ConnectorError;
    use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingError;

    use super::*;

    type Error = SdkError<GetEventSourceMappingError, HttpResponse>;

    fn refused() -> Box<dyn StdError + Send + Sync> {
        Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ))
    }

    #[test]
    fn a_refused_connection_is_an_unanswered_retryable_call_naming_the_cause() {
        let err = classify(
            "GetEventSourceMapping",
            Error::dispatch_failure(ConnectorError::io(refused())),
        );
        assert_eq!(err.kind, FaultKind::Retryable);
        assert!(err.message.starts_with("dispatch failure: "), "{err}");
        assert!(
            err.message.ends_with("Connection refused (os error 111)"),
            "{err}"
        );
        assert!(is_unanswered(&err));
    }

    #[test]
    fn a_timeout_is_unanswered() {
        let err = classify("GetEventSourceMapping", Error::timeout_error(refused()));
        assert!(err.message.starts_with("timeout: "), "{err}");
        assert!(is_unanswered(&err));
    }

    #[test]
    fn a_service_answer_or_a_malformed_response_is_not_unanswered() {
        let throttled = PortError {
            operation: "GetEventSourceMapping",
            kind: FaultKind::Retryable,
            code: Some("TooManyRequestsException".into()),
            message: "timeout: slow down".into(),
        };
        assert!(!is_unanswered(&throttled));
        assert!(!is_unanswered(&malformed("DescribeAlarms", "timeout")));
        assert!(!is_unanswered(&PortError::new(
            "ListExecutions",
            FaultKind::Retryable,
            "timeouts everywhere"
        )));
    }
}
