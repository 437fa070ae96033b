//! EventBridge adapter: [`EventBus`], the [`Events`] port (`PutEvents` with source
//! `sqs-circuit-breaker`).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use breaker_core::events::{BreakerEvent, EVENT_SOURCE};
use breaker_core::ports::{Events, FaultKind, PortError};

use crate::error::classify;

/// The breaker's event bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: Client,
    bus_name: String,
}

impl EventBus {
    /// Put events on `bus_name` through `client`.
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

impl Events for EventBus {
    async fn put(&self, event: &BreakerEvent) -> Result<(), PortError> {
        const OP: &str = "PutEvents";
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(event.detail_type.as_str())
            .detail(event.detail_json())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        let failed = out.entries().iter().find(|e| e.error_code().is_some());
        let code = failed.and_then(|e| e.error_code()).map(str::to_owned);
        let kind = match code.as_deref() {
            Some("ThrottlingException" | "InternalFailure" | "InternalException") | None => {
                FaultKind::Retryable
            }
            Some(_) => FaultKind::NonRetryable,
        };
        let message = failed
            .and_then(|e| e.error_message())
            .unwrap_or("entry rejected")
            .to_owned();
        Err(PortError {
            operation: OP,
            kind,
            code,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::config::retry::RetryConfig;
    use aws_sdk_eventbridge::error::ErrorMetadata;
    use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsOutput};
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_sdk_eventbridge::types::error::InternalException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::events::DetailType;
    use serde_json::{Map, Value, json};

    use super::*;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn event() -> BreakerEvent {
        let Value::Object(detail) = json!({ "circuit": "orders", "attempt": 3 }) else {
            unreachable!()
        };
        BreakerEvent {
            detail_type: DetailType::Closed,
            detail,
        }
    }

    #[tokio::test]
    async fn put_sends_source_detail_type_bus_and_detail() {
        let rule = mock!(Client::put_events)
            .match_requests(|r| {
                let e = &r.entries()[0];
                let detail: Map<String, Value> =
                    serde_json::from_str(e.detail().unwrap_or("")).unwrap_or_default();
                r.entries().len() == 1
                    && e.source() == Some("sqs-circuit-breaker")
                    && e.detail_type() == Some("Circuit Closed")
                    && e.event_bus_name() == Some("ops")
                    && detail.get("attempt") == Some(&json!(3))
            })
            .then_output(|| {
                PutEventsOutput::builder()
                    .failed_entry_count(0)
                    .entries(PutEventsResultEntry::builder().event_id("e-1").build())
                    .build()
            });
        EventBus::new(client(&[&rule]), "ops")
            .put(&event())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    /// The error `put` returns when `PutEvents` answers with this one failed entry.
    async fn put_rejected(entry: PutEventsResultEntry) -> PortError {
        let rule = mock!(Client::put_events).then_output(move || {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(entry.clone())
                .build()
        });
        EventBus::new(client(&[&rule]), "default")
            .put(&event())
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn rejected_entry_is_an_error() {
        let err = put_rejected(
            PutEventsResultEntry::builder()
                .error_code("ThrottlingException")
                .error_message("slow down")
                .build(),
        )
        .await;
        assert_eq!(
            (err.kind, err.code.as_deref()),
            (FaultKind::Retryable, Some("ThrottlingException"))
        );
        let err = put_rejected(
            PutEventsResultEntry::builder()
                .error_code("AccessDeniedException")
                .build(),
        )
        .await;
        assert_eq!(err.kind, FaultKind::NonRetryable);
    }

    #[tokio::test]
    async fn internal_exception_and_5xx_are_retryable() {
        let rule = mock!(Client::put_events).then_error(|| {
            PutEventsError::InternalException(
                InternalException::builder()
                    .meta(ErrorMetadata::builder().code("InternalException").build())
                    .build(),
            )
        });
        let err = EventBus::new(client(&[&rule]), "default")
            .put(&event())
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable);
        let rule = mock!(Client::put_events)
            .sequence()
            .http_status(502, None)
            .build();
        let err = EventBus::new(client(&[&rule]), "default")
            .put(&event())
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable);
    }
}
