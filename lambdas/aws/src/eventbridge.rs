//! EventBridge adapter: [`EventBus`], the [`Events`] port (`PutEvents` with source
//! `sqs-circuit-breaker`). Every event the bus accepts is also printed as its metric line
//! ([`BreakerEvent::emf_line`]): on Lambda, CloudWatch Logs turns that line into the breaker's
//! metrics (`SqsCircuitBreaker`, dimension `Circuit`) with no call and no permission beyond logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use breaker_core::events::{BreakerEvent, EVENT_SOURCE};
use breaker_core::ports::{Events, FaultKind, PortError};

use crate::error::classify;

/// Where [`EventBus`] prints the metric line of each event it put.
#[derive(Debug, Clone, Default)]
pub enum MetricLines {
    /// The process's standard output (a Lambda function's log).
    #[default]
    Stdout,
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

impl MetricLines {
    fn print(&self, line: &str) {
        match self {
            // One write of the whole line under the lock, so that no log line interleaves.
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Self::Memory(lines) => lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line.to_owned()),
        }
    }
}

/// The breaker's event bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: Client,
    bus_name: String,
    metric_lines: MetricLines,
}

impl EventBus {
    /// Put events on `bus_name` through `client`; print each accepted event's metric line on
    /// stdout.
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            metric_lines: MetricLines::Stdout,
        }
    }

    /// The same bus, printing the metric lines to `metric_lines`.
    pub fn with_metric_lines(mut self, metric_lines: MetricLines) -> Self {
        self.metric_lines = metric_lines;
        self
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
            // Counted once the bus has the event: a rejected put is retried by the caller and
            // counted then.
            if let Some(line) = event.emf_line() {
                self.metric_lines.print(&line);
            }
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
        let Value::Object(detail) =
            json!({ "circuit": "orders", "attempt": 3, "atMs": 1_700_000_000_000_u64 })
        else {
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

    #[tokio::test]
    async fn an_accepted_event_prints_its_metric_line_once() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .entries(PutEventsResultEntry::builder().event_id("e-1").build())
                .build()
        });
        let lines = Arc::new(Mutex::new(Vec::new()));
        EventBus::new(client(&[&rule]), "ops")
            .with_metric_lines(MetricLines::Memory(lines.clone()))
            .put(&event())
            .await
            .unwrap();
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines, vec![event().emf_line().unwrap()]);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            (doc["Closes"].clone(), doc["CircuitState"].clone()),
            (json!(1), json!(0))
        );
    }

    /// The error `put` returns when `PutEvents` answers with this one failed entry; and that no
    /// metric line was printed for it.
    async fn put_rejected(entry: PutEventsResultEntry) -> PortError {
        let rule = mock!(Client::put_events).then_output(move || {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(entry.clone())
                .build()
        });
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = EventBus::new(client(&[&rule]), "default")
            .with_metric_lines(MetricLines::Memory(lines.clone()))
            .put(&event())
            .await
            .unwrap_err();
        assert!(
            lines.lock().unwrap().is_empty(),
            "a rejected event is not counted"
        );
        err
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
