//! [`SqsQueue`]: the [`Queue`] port on the AWS SDK for SQS.
//!
//! Receives ask for every system attribute (`MessageSystemAttributeNames=All`) and every message
//! attribute (`All`), so a copy can be faithful. Sends carry the body, every message attribute,
//! the per-message delay and `AWSTraceHeader` as a message *system* attribute (the only system
//! attribute a sender may set). Errors are classified into [`PortError`]s: throttling, 5xx,
//! timeouts and transport failures are [`FaultKind::Retryable`], everything else
//! [`FaultKind::NonRetryable`].

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use breaker_core::message::{
    AttributeValue, BatchOutcome, EntryFailure, OutgoingMessage, QueueInfo, ReceivedMessage,
};
use breaker_core::ports::{FaultKind, PortError, Queue};
use tracing::debug;

/// Error codes SQS (and KMS behind it) use for throttling and transient server trouble.
const RETRYABLE_CODES: &[&str] = &[
    "RequestThrottled",
    "ThrottlingException",
    "Throttling",
    "KmsThrottled",
    "KMS.ThrottlingException",
    "OverLimit",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// The consumer's queue, reached through one SQS client.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// Wrap `client` for the queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue URL this adapter talks to.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// Classify an SDK error: throttling, 5xx, timeouts, dispatch and response (I/O) failures are
/// retryable; construction failures and other service errors (4xx) are not.
pub fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let (kind, code, message) = match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().map(str::to_owned);
            let retryable = status >= 500
                || status == 429
                || code
                    .as_deref()
                    .is_some_and(|c| RETRYABLE_CODES.contains(&c));
            let kind = if retryable {
                FaultKind::Retryable
            } else {
                FaultKind::NonRetryable
            };
            let message = ctx
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}: {}", DisplayChain(ctx.err())));
            (kind, code, message)
        }
        // One wording for calls that got no answer, whichever the service (see
        // `crate::error::is_unanswered`).
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            return crate::error::classify(operation, err);
        }
        SdkError::ResponseError(_) => (FaultKind::Retryable, None, DisplayChain(&err).to_string()),
        _ => (
            FaultKind::NonRetryable,
            None,
            DisplayChain(&err).to_string(),
        ),
    };
    PortError {
        operation,
        kind,
        code,
        message,
    }
}

/// Displays an error with its whole `source()` chain (SDK errors hide the useful part there).
struct DisplayChain<'a>(&'a (dyn StdError + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

fn to_received(m: Message) -> ReceivedMessage {
    let attributes: BTreeMap<String, String> = m
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    let message_attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let value = AttributeValue {
                data_type: v.data_type,
                string_value: v.string_value,
                binary_value: v.binary_value.map(Blob::into_inner),
            };
            (k, value)
        })
        .collect();
    ReceivedMessage {
        message_id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        md5_of_body: m.md5_of_body.unwrap_or_default(),
        md5_of_message_attributes: m.md5_of_message_attributes,
        attributes,
        message_attributes,
    }
}

fn to_sdk_attribute(name: &str, v: &AttributeValue) -> Result<MessageAttributeValue, PortError> {
    MessageAttributeValue::builder()
        .data_type(&v.data_type)
        .set_string_value(v.string_value.clone())
        .set_binary_value(v.binary_value.clone().map(Blob::new))
        .build()
        .map_err(|e| {
            PortError::new(
                "SendMessageBatch",
                FaultKind::NonRetryable,
                format!("message attribute `{name}`: {e}"),
            )
        })
}

fn to_sdk_entry(m: OutgoingMessage) -> Result<SendMessageBatchRequestEntry, PortError> {
    let attributes = m
        .message_attributes
        .iter()
        .map(|(k, v)| Ok((k.clone(), to_sdk_attribute(k, v)?)))
        .collect::<Result<HashMap<_, _>, PortError>>()?;
    let system = match m.trace_header {
        Some(header) => {
            let value = MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(header)
                .build()
                .map_err(|e| {
                    PortError::new("SendMessageBatch", FaultKind::NonRetryable, e.to_string())
                })?;
            Some(HashMap::from([(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                value,
            )]))
        }
        None => None,
    };
    let delay = i32::try_from(m.delay_seconds).map_err(|_| {
        PortError::new(
            "SendMessageBatch",
            FaultKind::NonRetryable,
            format!("delaySeconds {} out of range", m.delay_seconds),
        )
    })?;
    // FIFO: group and deduplication id, and no DelaySeconds at all ("When you set FifoQueue, you
    // can't set DelaySeconds per message", SendMessageBatchRequestEntry in the SQS API reference).
    let (group, dedup, delay) = match m.fifo {
        Some(ids) if m.delay_seconds == 0 => (Some(ids.group_id), Some(ids.deduplication_id), None),
        Some(_) => {
            return Err(PortError::new(
                "SendMessageBatch",
                FaultKind::NonRetryable,
                format!(
                    "delaySeconds {} on a FIFO message: FIFO queues have no per-message delay",
                    m.delay_seconds
                ),
            ));
        }
        None => (None, None, Some(delay)),
    };
    SendMessageBatchRequestEntry::builder()
        .id(m.id)
        .message_body(m.body)
        .set_delay_seconds(delay)
        .set_message_group_id(group)
        .set_message_deduplication_id(dedup)
        .set_message_attributes((!attributes.is_empty()).then_some(attributes))
        .set_message_system_attributes(system)
        .build()
        .map_err(|e| PortError::new("SendMessageBatch", FaultKind::NonRetryable, e.to_string()))
}

fn to_failure(e: BatchResultErrorEntry) -> EntryFailure {
    EntryFailure {
        id: e.id,
        code: e.code,
        sender_fault: e.sender_fault,
        message: e.message.unwrap_or_default(),
    }
}

/// Reads `maxReceiveCount` from a RedrivePolicy document; SQS writes it as a number, some
/// emulators as a string.
fn max_receive_count(redrive_policy: &str) -> Option<u32> {
    let doc: serde_json::Value = serde_json::from_str(redrive_policy).ok()?;
    match doc.get("maxReceiveCount")? {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Queue for SqsQueue {
    async fn receive(
        &self,
        max: u8,
        wait_seconds: u8,
        visibility_timeout: u32,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let visibility = i32::try_from(visibility_timeout.min(43_200)).unwrap_or(43_200);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::from(max.clamp(1, 10)))
            .wait_time_seconds(i32::from(wait_seconds.min(20)))
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| classify("ReceiveMessage", e))?;
        let messages: Vec<ReceivedMessage> = out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(to_received)
            .collect();
        debug!(queue = %self.queue_url, received = messages.len(), "received");
        Ok(messages)
    }

    async fn send_batch(&self, entries: Vec<OutgoingMessage>) -> Result<BatchOutcome, PortError> {
        let entries = entries
            .into_iter()
            .map(to_sdk_entry)
            .collect::<Result<Vec<_>, PortError>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("SendMessageBatch", e))?;
        Ok(BatchOutcome {
            succeeded: out.successful.into_iter().map(|s| s.id).collect(),
            failed: out.failed.into_iter().map(to_failure).collect(),
        })
    }

    async fn delete_batch(
        &self,
        entries: Vec<(String, String)>,
    ) -> Result<BatchOutcome, PortError> {
        let entries = entries
            .into_iter()
            .map(|(id, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(handle)
                    .build()
                    .map_err(|e| {
                        PortError::new("DeleteMessageBatch", FaultKind::NonRetryable, e.to_string())
                    })
            })
            .collect::<Result<Vec<_>, PortError>>()?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("DeleteMessageBatch", e))?;
        Ok(BatchOutcome {
            succeeded: out.successful.into_iter().map(|s| s.id).collect(),
            failed: out.failed.into_iter().map(to_failure).collect(),
        })
    }

    async fn change_visibility(&self, receipt_handle: &str, seconds: u32) -> Result<(), PortError> {
        let seconds = i32::try_from(seconds.min(43_200)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| classify("ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn info(&self) -> Result<QueueInfo, PortError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?;
        let attrs = out.attributes.unwrap_or_default();
        let count = |name: QueueAttributeName| {
            attrs
                .get(&name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueInfo {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            max_receive_count: attrs
                .get(&QueueAttributeName::RedrivePolicy)
                .and_then(|p| max_receive_count(p)),
            fifo: attrs
                .get(&QueueAttributeName::FifoQueue)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                || self.queue_url.ends_with(".fifo"),
            retention_seconds: attrs
                .get(&QueueAttributeName::MessageRetentionPeriod)
                .and_then(|v| v.parse::<u64>().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::config::retry::RetryConfig;
    use aws_sdk_sqs::error::ErrorMetadata;
    use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput;
    use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::receive_message::{ReceiveMessageError, ReceiveMessageOutput};
    use aws_sdk_sqs::operation::send_message_batch::{
        SendMessageBatchError, SendMessageBatchOutput,
    };
    use aws_sdk_sqs::types::error::{QueueDoesNotExist, RequestThrottled};
    use aws_sdk_sqs::types::{DeleteMessageBatchResultEntry, SendMessageBatchResultEntry};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    const URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";

    fn queue(rules: &[&Rule]) -> SqsQueue {
        let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        SqsQueue::new(client, URL)
    }

    fn outgoing(id: &str) -> OutgoingMessage {
        OutgoingMessage {
            id: id.into(),
            body: format!("body-{id}"),
            message_attributes: BTreeMap::from([
                ("tenant".into(), AttributeValue::string("String", "acme")),
                (
                    "blob".into(),
                    AttributeValue::binary("Binary.gz", vec![0, 1, 2, 255]),
                ),
            ]),
            trace_header: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
            delay_seconds: 42,
            fifo: None,
        }
    }

    fn sent_ok(id: &str) -> SendMessageBatchResultEntry {
        SendMessageBatchResultEntry::builder()
            .id(id)
            .message_id(format!("new-{id}"))
            .md5_of_message_body("x")
            .build()
            .unwrap()
    }

    fn entry_error(id: &str, code: &str, sender_fault: bool) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .code(code)
            .sender_fault(sender_fault)
            .message("boom")
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn receive_requests_all_attributes_and_maps_the_message() {
        let rule = mock!(Client::receive_message)
            .match_requests(|r| {
                r.queue_url() == Some(URL)
                    && r.max_number_of_messages() == Some(10)
                    && r.wait_time_seconds() == Some(1)
                    && r.visibility_timeout() == Some(30)
                    && r.message_system_attribute_names() == [MessageSystemAttributeName::All]
                    && r.message_attribute_names() == ["All".to_owned()]
            })
            .then_output(|| {
                ReceiveMessageOutput::builder()
                    .messages(
                        Message::builder()
                            .message_id("m-1")
                            .receipt_handle("rh-1")
                            .body("hello")
                            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
                            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
                            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
                            .attributes(MessageSystemAttributeName::AwsTraceHeader, "Root=1-a")
                            .message_attributes(
                                "bin",
                                MessageAttributeValue::builder()
                                    .data_type("Binary")
                                    .binary_value(Blob::new(vec![9, 8]))
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .build()
            });
        let q = queue(&[&rule]);
        let got = q.receive(10, 1, 30).await.unwrap();
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.message_id, "m-1");
        assert_eq!(m.receipt_handle, "rh-1");
        assert_eq!(m.body, "hello");
        assert_eq!(m.sent_timestamp_ms(), Some(1_700_000_000_000));
        assert_eq!(m.receive_count(), 2);
        assert_eq!(m.trace_header(), Some("Root=1-a"));
        assert_eq!(
            m.message_attributes["bin"].binary_value.as_deref(),
            Some(&[9u8, 8][..])
        );
        assert_eq!(m.message_attributes["bin"].data_type, "Binary");
    }

    #[tokio::test]
    async fn send_batch_carries_body_attributes_delay_and_trace_header() {
        let rule = mock!(Client::send_message_batch)
            .match_requests(|r| {
                let e = &r.entries().first().expect("one entry");
                let trace = e
                    .message_system_attributes()
                    .and_then(|s| s.get(&MessageSystemAttributeNameForSends::AwsTraceHeader))
                    .and_then(|v| v.string_value());
                let attrs = e.message_attributes().expect("attributes");
                r.entries().len() == 1
                    && e.id() == "7"
                    && e.message_body() == "body-7"
                    && e.delay_seconds() == Some(42)
                    && trace == Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
                    && attrs["tenant"].string_value() == Some("acme")
                    && attrs["tenant"].data_type() == "String"
                    && attrs["blob"].binary_value().map(|b| b.as_ref())
                        == Some(&[0u8, 1, 2, 255][..])
                    && attrs["blob"].data_type() == "Binary.gz"
            })
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .successful(sent_ok("7"))
                    .set_failed(Some(vec![]))
                    .build()
                    .unwrap()
            });
        let q = queue(&[&rule]);
        let out = q.send_batch(vec![outgoing("7")]).await.unwrap();
        assert_eq!(out.succeeded, vec!["7".to_owned()]);
        assert!(out.failed.is_empty());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn send_batch_gives_a_fifo_entry_its_group_and_deduplication_id_and_no_delay() {
        let rule = mock!(Client::send_message_batch)
            .match_requests(|r| {
                let e = &r.entries()[0];
                e.message_group_id() == Some("g-1")
                    && e.message_deduplication_id() == Some("breaker-copy-m-1")
                    && e.delay_seconds().is_none()
            })
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .successful(sent_ok("7"))
                    .set_failed(Some(vec![]))
                    .build()
                    .unwrap()
            });
        let q = queue(&[&rule]);
        let fifo = Some(breaker_core::message::FifoIds {
            group_id: "g-1".into(),
            deduplication_id: "breaker-copy-m-1".into(),
        });
        let mut m = outgoing("7");
        m.delay_seconds = 0;
        m.fifo = fifo.clone();
        assert_eq!(q.send_batch(vec![m]).await.unwrap().succeeded, vec!["7"]);
        assert_eq!(rule.num_calls(), 1);
        // A delay on a FIFO message is refused before any call.
        let mut delayed = outgoing("8");
        delayed.fifo = fifo;
        let err = q.send_batch(vec![delayed]).await.unwrap_err();
        assert_eq!(err.kind, FaultKind::NonRetryable);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn send_batch_reports_partial_failures_per_entry() {
        let rule = mock!(Client::send_message_batch).then_output(|| {
            SendMessageBatchOutput::builder()
                .successful(sent_ok("0"))
                .failed(entry_error("1", "InternalError", false))
                .failed(entry_error("2", "InvalidParameterValue", true))
                .build()
                .unwrap()
        });
        let q = queue(&[&rule]);
        let out = q
            .send_batch(vec![outgoing("0"), outgoing("1"), outgoing("2")])
            .await
            .unwrap();
        assert_eq!(out.succeeded, vec!["0".to_owned()]);
        assert_eq!(out.failed.len(), 2);
        assert_eq!(out.failed[0].id, "1");
        assert_eq!(out.failed[0].code, "InternalError");
        assert!(!out.failed[0].sender_fault);
        assert!(out.failed[1].sender_fault);
    }

    #[tokio::test]
    async fn send_batch_throttling_is_retryable() {
        let rule = mock!(Client::send_message_batch).then_error(|| {
            SendMessageBatchError::RequestThrottled(
                RequestThrottled::builder()
                    .message("slow down")
                    .meta(ErrorMetadata::builder().code("RequestThrottled").build())
                    .build(),
            )
        });
        let q = queue(&[&rule]);
        let err = q.send_batch(vec![outgoing("0")]).await.unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable);
        assert_eq!(err.operation, "SendMessageBatch");
    }

    #[tokio::test]
    async fn receive_http_500_is_retryable() {
        let rule = mock!(Client::receive_message)
            .sequence()
            .http_status(500, None)
            .build();
        let q = queue(&[&rule]);
        let err = q.receive(10, 0, 30).await.unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable, "{err}");
        assert_eq!(err.operation, "ReceiveMessage");
    }

    #[tokio::test]
    async fn receive_http_503_with_json_error_body_is_retryable() {
        let rule = mock!(Client::receive_message)
            .sequence()
            .http_status(
                503,
                Some(
                    r#"{"__type":"com.amazonaws.sqs#ServiceUnavailable","message":"busy"}"#.into(),
                ),
            )
            .build();
        let q = queue(&[&rule]);
        let err = q.receive(10, 0, 30).await.unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable, "{err}");
    }

    #[tokio::test]
    async fn missing_queue_is_not_retryable() {
        let rule = mock!(Client::receive_message).then_error(|| {
            ReceiveMessageError::QueueDoesNotExist(
                QueueDoesNotExist::builder()
                    .message("no such queue")
                    .meta(ErrorMetadata::builder().code("QueueDoesNotExist").build())
                    .build(),
            )
        });
        let q = queue(&[&rule]);
        let err = q.receive(10, 0, 30).await.unwrap_err();
        assert_eq!(err.kind, FaultKind::NonRetryable);
        assert_eq!(err.code.as_deref(), Some("QueueDoesNotExist"));
    }

    #[tokio::test]
    async fn delete_batch_reports_partial_failures_per_entry() {
        let rule = mock!(Client::delete_message_batch)
            .match_requests(|r| r.entries().len() == 2 && r.entries()[1].receipt_handle() == "rh-b")
            .then_output(|| {
                DeleteMessageBatchOutput::builder()
                    .successful(
                        DeleteMessageBatchResultEntry::builder()
                            .id("a")
                            .build()
                            .unwrap(),
                    )
                    .failed(entry_error("b", "ReceiptHandleIsInvalid", true))
                    .build()
                    .unwrap()
            });
        let q = queue(&[&rule]);
        let out = q
            .delete_batch(vec![
                ("a".into(), "rh-a".into()),
                ("b".into(), "rh-b".into()),
            ])
            .await
            .unwrap();
        assert_eq!(out.succeeded, vec!["a".to_owned()]);
        assert_eq!(out.failed[0].code, "ReceiptHandleIsInvalid");
    }

    #[tokio::test]
    async fn change_visibility_sends_handle_and_seconds() {
        let rule = mock!(Client::change_message_visibility)
            .match_requests(|r| {
                r.receipt_handle() == Some("rh") && r.visibility_timeout() == Some(0)
            })
            .then_output(|| ChangeMessageVisibilityOutput::builder().build());
        let q = queue(&[&rule]);
        q.change_visibility("rh", 0).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn info_reads_counts_redrive_fifo_and_retention() {
        let rule =
            mock!(Client::get_queue_attributes).then_output(|| {
                GetQueueAttributesOutput::builder()
                .attributes(QueueAttributeName::ApproximateNumberOfMessages, "1234")
                .attributes(QueueAttributeName::ApproximateNumberOfMessagesNotVisible, "5")
                .attributes(QueueAttributeName::ApproximateNumberOfMessagesDelayed, "6")
                .attributes(
                    QueueAttributeName::RedrivePolicy,
                    r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":5}"#,
                )
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::MessageRetentionPeriod, "345600")
                .build()
            });
        let q = queue(&[&rule]);
        let info = q.info().await.unwrap();
        assert_eq!(
            info,
            QueueInfo {
                visible: 1234,
                in_flight: 5,
                delayed: 6,
                max_receive_count: Some(5),
                fifo: true,
                retention_seconds: Some(345_600),
            }
        );
    }

    #[test]
    fn max_receive_count_accepts_number_or_string() {
        assert_eq!(max_receive_count(r#"{"maxReceiveCount":3}"#), Some(3));
        assert_eq!(max_receive_count(r#"{"maxReceiveCount":"7"}"#), Some(7));
        assert_eq!(max_receive_count("not json"), None);
    }
}
