//! The handlers' error type and its mapping to the Lambda runtime's [`Diagnostic`], whose
//! `errorType` the state machine's `Retry`/`Catch` match on.

use breaker_core::config::ConfigError;
use breaker_core::contract::InputError;
use breaker_core::ports::{FaultKind, PortError};
use breaker_core::rejitter::WindowError;
use lambda_runtime::Diagnostic;

/// `errorType` for throttling, 5xx, timeouts, ResourceInUse after the handler's own retries.
pub const RETRYABLE: &str = "Retryable";
/// `errorType` for bad input, bad config, missing resource or permission.
pub const NON_RETRYABLE: &str = "NonRetryable";
/// `errorType` when a probe could not be judged (e.g. the consumer invoke itself failed).
pub const PROBE_FAILED: &str = "ProbeFailed";

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The input document is malformed; nothing was called.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The function's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A dependency failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The event-source mapping did not reach the wanted state in time.
    #[error(
        "event-source mapping {uuid} did not become {target} within {waited_ms} ms (last state {last})"
    )]
    NotSettled {
        /// The mapping.
        uuid: String,
        /// The state waited for.
        target: &'static str,
        /// The last state seen.
        last: String,
        /// How long the handler waited.
        waited_ms: u64,
    },
    /// The probe could not be judged: the consumer invoke itself failed.
    #[error("probe could not be judged: {0}")]
    ProbeFailed(#[source] PortError),
    /// `_HANDLER` names no handler of this binary.
    #[error("unknown handler {0:?}; expected one of {names}", names = crate::app::HandlerName::names())]
    UnknownHandler(String),
    /// This execution acts on a circuit another execution owns (or nobody does): it changed
    /// nothing. Only an execution that lost the record (an operator stopped it and took over) can
    /// see this.
    #[error("execution {me} does not own the circuit (owner: {})", owner.as_deref().unwrap_or("nobody"))]
    NotOwner {
        /// This execution.
        me: String,
        /// The owner in the record.
        owner: Option<String>,
    },
    /// The configured event-source mapping is not the consumer's and queue's this breaker was
    /// built for: nothing was disabled.
    /// The mapping's `FilterCriteria` cannot be applied (invalid, unsupported or unreadable).
    #[error(transparent)]
    Filter(#[from] breaker_core::filter::FilterError),
    #[error(transparent)]
    Mapping(#[from] Box<breaker_core::mapping::MappingMismatch>),
    /// The circuit record changed under every one of this many conditional writes.
    #[error("the circuit record kept changing under {0} conditional writes; try again")]
    RecordContended(u32),
    /// The re-jitter settings are invalid (names the variable).
    #[error("invalid re-jitter configuration: {0}")]
    RejitterSettings(#[from] WindowError),
}

impl HandlerError {
    /// The `errorType` Step Functions sees.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Input(_) | Self::Config(_) | Self::UnknownHandler(_) => NON_RETRYABLE,
            Self::RejitterSettings(_) => NON_RETRYABLE,
            Self::Port(e) => match e.kind {
                FaultKind::Retryable | FaultKind::InUse => RETRYABLE,
                FaultKind::NonRetryable => NON_RETRYABLE,
            },
            Self::NotSettled { .. } | Self::RecordContended(_) => RETRYABLE,
            Self::NotOwner { .. } | Self::Mapping(_) | Self::Filter(_) => NON_RETRYABLE,
            Self::ProbeFailed(_) => PROBE_FAILED,
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_contract_error_types() {
        let port = |kind| HandlerError::Port(PortError::new("X", kind, "m"));
        assert_eq!(port(FaultKind::Retryable).error_type(), "Retryable");
        assert_eq!(port(FaultKind::InUse).error_type(), "Retryable");
        assert_eq!(port(FaultKind::NonRetryable).error_type(), "NonRetryable");
        assert_eq!(
            HandlerError::Input(InputError::new("state", "missing")).error_type(),
            "NonRetryable"
        );
        assert_eq!(
            HandlerError::Config(ConfigError::Missing("ESM_UUID")).error_type(),
            "NonRetryable"
        );
        let probe =
            HandlerError::ProbeFailed(PortError::new("Invoke", FaultKind::Retryable, "throttled"));
        assert_eq!(probe.error_type(), "ProbeFailed");
        let window = breaker_core::rejitter::DelayWindow::new(10, 5).unwrap_err();
        let settings = HandlerError::RejitterSettings(window);
        assert_eq!(settings.error_type(), "NonRetryable");
        assert!(
            settings
                .to_string()
                .starts_with("invalid re-jitter configuration: "),
            "{settings}"
        );
        let d = Diagnostic::from(HandlerError::Input(InputError::new(
            "state.attempt",
            "missing field",
        )));
        assert_eq!(d.error_type, "NonRetryable");
        assert!(d.error_message.contains("state.attempt"));
    }
}
