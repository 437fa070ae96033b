//! The queue message model: what probing and re-jitter receive, and the faithful copy they send.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A message attribute value as SQS stores it (`String`, `Number` and `Binary` data types and
/// their custom `Type.label` variants). Exactly one of `string_value` / `binary_value` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeValue {
    /// The data type, e.g. `String`, `Number`, `Binary`, `String.json`.
    pub data_type: String,
    /// Set for `String` and `Number` types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// Set for `Binary` types: the raw bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    /// A string-valued attribute (`String`, `Number` or a custom `String.*` / `Number.*` type).
    pub fn string(data_type: &str, value: impl Into<String>) -> Self {
        Self {
            data_type: data_type.into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    /// A binary attribute (`Binary` or a custom `Binary.*` type) holding `bytes`.
    pub fn binary(data_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            data_type: data_type.into(),
            string_value: None,
            binary_value: Some(bytes),
        }
    }
}

/// A message received from the queue, with everything needed to judge it, rebuild a faithful
/// SQS event from it, or copy it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedMessage {
    /// The SQS message id.
    pub message_id: String,
    /// The receipt handle of *this* receive; always delete with the newest one.
    pub receipt_handle: String,
    /// The body, unchanged.
    pub body: String,
    /// MD5 of the body as SQS reported it.
    pub md5_of_body: String,
    /// MD5 of the message attributes as SQS reported it, if there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_of_message_attributes: Option<String>,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, `SenderId`,
    /// `ApproximateFirstReceiveTimestamp`, `AWSTraceHeader`, `MessageGroupId`, ...).
    pub attributes: BTreeMap<String, String>,
    /// User message attributes, all of them.
    pub message_attributes: BTreeMap<String, AttributeValue>,
}

impl ReceivedMessage {
    /// `ApproximateReceiveCount`, including the receive that produced this copy (0 if absent).
    pub fn receive_count(&self) -> u32 {
        self.attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// `SentTimestamp` in epoch milliseconds, if present.
    pub fn sent_timestamp_ms(&self) -> Option<u64> {
        self.attributes
            .get("SentTimestamp")
            .and_then(|v| v.parse().ok())
    }

    /// The X-Ray trace header the message carries, if any.
    pub fn trace_header(&self) -> Option<&str> {
        self.attributes.get("AWSTraceHeader").map(String::as_str)
    }

    /// A faithful copy of this message (body, every message attribute, the trace header),
    /// delivered after `delay_seconds`.
    pub fn faithful_copy(&self, id: impl Into<String>, delay_seconds: u32) -> OutgoingMessage {
        OutgoingMessage {
            id: id.into(),
            body: self.body.clone(),
            message_attributes: self.message_attributes.clone(),
            trace_header: self.trace_header().map(str::to_owned),
            delay_seconds,
            fifo: None,
        }
    }

    /// `MessageGroupId` of a message received from a FIFO queue, if it has one.
    pub fn message_group_id(&self) -> Option<&str> {
        self.attributes.get("MessageGroupId").map(String::as_str)
    }

    /// A faithful copy of this message for a FIFO queue: body, every message attribute and the
    /// trace header as [`Self::faithful_copy`], the same message group, and the deduplication id
    /// [`copy_deduplication_id`] (a retried send of the same copy is then deduplicated by SQS
    /// instead of enqueued twice). No per-message delay: FIFO queues refuse `DelaySeconds` on a
    /// message. `None` when the message carries no `MessageGroupId` (not from a FIFO queue).
    pub fn faithful_fifo_copy(&self, id: impl Into<String>) -> Option<OutgoingMessage> {
        let group_id = self.message_group_id()?.to_owned();
        Some(OutgoingMessage {
            fifo: Some(FifoIds {
                group_id,
                deduplication_id: copy_deduplication_id(&self.message_id),
            }),
            ..self.faithful_copy(id, 0)
        })
    }
}

/// The `MessageDeduplicationId` of the breaker's copy of message `message_id` on a FIFO queue:
/// `breaker-copy-<message id>` (SQS allows 128 characters; a message id is 36 or 100 at most).
pub fn copy_deduplication_id(message_id: &str) -> String {
    format!("breaker-copy-{message_id}")
}

/// The FIFO-only send parameters of a message: its group and its deduplication id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FifoIds {
    /// `MessageGroupId`: the group the message joins (at the end of it).
    pub group_id: String,
    /// `MessageDeduplicationId`: a second send with the same id within SQS's 5-minute
    /// deduplication interval is accepted but not enqueued.
    pub deduplication_id: String,
}

/// What is left of a received message once its copy took the body and attributes: enough to
/// delete the original (after the copy is confirmed) or to release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The SQS message id (for logs).
    pub message_id: String,
    /// The receipt handle of the receive that produced the copy.
    pub receipt_handle: String,
}

impl ReceivedMessage {
    /// [`ReceivedMessage::faithful_copy`] without cloning: the body and attributes move into the
    /// copy, the original keeps only its id and receipt handle.
    pub fn into_faithful_copy(
        mut self,
        id: impl Into<String>,
        delay_seconds: u32,
    ) -> (OutgoingMessage, Original) {
        let trace_header = self.attributes.remove("AWSTraceHeader");
        let copy = OutgoingMessage {
            id: id.into(),
            body: std::mem::take(&mut self.body),
            message_attributes: std::mem::take(&mut self.message_attributes),
            trace_header,
            delay_seconds,
            // Re-jitter, the one mover, never runs on a FIFO queue (it is skipped there).
            fifo: None,
        };
        let original = Original {
            message_id: self.message_id,
            receipt_handle: self.receipt_handle,
        };
        (copy, original)
    }
}

/// A message to send: one entry of a `SendMessageBatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingMessage {
    /// Batch entry id, unique within one batch.
    pub id: String,
    /// The body.
    pub body: String,
    /// User message attributes.
    pub message_attributes: BTreeMap<String, AttributeValue>,
    /// `AWSTraceHeader` system attribute to carry over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_header: Option<String>,
    /// Per-message delay, 0–900 s. Not sent for a FIFO message ([`Self::fifo`] set): FIFO
    /// queues refuse a per-message `DelaySeconds`, even 0.
    pub delay_seconds: u32,
    /// Set for a message to a FIFO queue: its group and deduplication id (sent instead of a
    /// per-message delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo: Option<FifoIds>,
}

impl OutgoingMessage {
    /// Size SQS counts against the 1 MiB batch limit: body plus attribute names, types and values.
    pub fn payload_size(&self) -> usize {
        self.body.len()
            + self
                .message_attributes
                .iter()
                .map(|(name, v)| {
                    name.len()
                        + v.data_type.len()
                        + v.string_value.as_ref().map_or(0, String::len)
                        + v.binary_value.as_ref().map_or(0, Vec::len)
                })
                .sum::<usize>()
    }
}

/// Outcome of one batch entry: the batch APIs fail per entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryFailure {
    /// The entry id that failed.
    pub id: String,
    /// SQS error code, e.g. `InternalError`.
    pub code: String,
    /// True when SQS says the fault was the sender's (retrying will not help).
    pub sender_fault: bool,
    /// Human-readable message.
    pub message: String,
}

/// Result of a batch call: ids that succeeded and the per-entry failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutcome {
    /// Entry ids confirmed.
    pub succeeded: Vec<String>,
    /// Entries that failed.
    pub failed: Vec<EntryFailure>,
}

/// Queue facts the breaker needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueInfo {
    /// `ApproximateNumberOfMessages` (visible).
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible` (in flight).
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
    /// `maxReceiveCount` of the RedrivePolicy, if the queue has a dead-letter queue.
    pub max_receive_count: Option<u32>,
    /// True for FIFO queues.
    pub fifo: bool,
    /// `MessageRetentionPeriod` in seconds (60 s – 14 days); `None` when SQS did not say.
    /// Keep-alive passes are scheduled from it (`crate::keepalive`).
    #[serde(default)]
    pub retention_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_constructors_set_exactly_one_value_and_keep_the_data_type() {
        assert_eq!(
            AttributeValue::string("Number.price", "4.5"),
            AttributeValue {
                data_type: "Number.price".into(),
                string_value: Some("4.5".into()),
                binary_value: None,
            }
        );
        assert_eq!(
            AttributeValue::binary("Binary.gz", vec![0, 255]),
            AttributeValue {
                data_type: "Binary.gz".into(),
                string_value: None,
                binary_value: Some(vec![0, 255]),
            }
        );
    }

    fn message() -> ReceivedMessage {
        ReceivedMessage {
            message_id: "m-1".into(),
            receipt_handle: "rh".into(),
            body: "{\"order\":1}".into(),
            md5_of_body: "x".into(),
            md5_of_message_attributes: None,
            attributes: BTreeMap::from([
                ("ApproximateReceiveCount".into(), "3".into()),
                ("SentTimestamp".into(), "1700000000000".into()),
                ("AWSTraceHeader".into(), "Root=1-abc".into()),
            ]),
            message_attributes: BTreeMap::from([(
                "tenant".into(),
                AttributeValue {
                    data_type: "String".into(),
                    string_value: Some("acme".into()),
                    binary_value: None,
                },
            )]),
        }
    }

    #[test]
    fn faithful_copy_keeps_body_attributes_and_trace_header() {
        let copy = message().faithful_copy("0", 30);
        assert_eq!(copy.body, "{\"order\":1}");
        assert_eq!(copy.message_attributes, message().message_attributes);
        assert_eq!(copy.trace_header.as_deref(), Some("Root=1-abc"));
        assert_eq!(copy.delay_seconds, 30);
    }

    #[test]
    fn fifo_copy_keeps_the_group_sets_a_deterministic_deduplication_id_and_no_delay() {
        let mut m = message();
        m.attributes
            .insert("MessageGroupId".into(), "customer-7".into());
        let copy = m.faithful_fifo_copy("0").expect("a FIFO message");
        assert_eq!(
            copy.fifo,
            Some(FifoIds {
                group_id: "customer-7".into(),
                deduplication_id: "breaker-copy-m-1".into(),
            })
        );
        assert_eq!(copy.delay_seconds, 0);
        assert_eq!(copy.body, m.body);
        assert_eq!(copy.message_attributes, m.message_attributes);
        assert_eq!(copy.trace_header.as_deref(), Some("Root=1-abc"));
        assert_eq!(
            message().faithful_fifo_copy("0"),
            None,
            "no group: not FIFO"
        );
        assert_eq!(message().faithful_copy("0", 0).fifo, None);
    }

    #[test]
    fn the_moving_copy_equals_the_faithful_copy_and_keeps_the_handle() {
        let (copy, original) = message().into_faithful_copy("0", 30);
        assert_eq!(copy, message().faithful_copy("0", 30));
        assert_eq!(
            original,
            Original {
                message_id: "m-1".into(),
                receipt_handle: "rh".into()
            }
        );
    }

    #[test]
    fn receive_count_and_sent_timestamp_are_parsed_from_system_attributes() {
        assert_eq!(message().receive_count(), 3);
        assert_eq!(message().sent_timestamp_ms(), Some(1_700_000_000_000));
    }

    #[test]
    fn payload_size_counts_body_and_attributes() {
        let copy = message().faithful_copy("0", 0);
        assert_eq!(
            copy.payload_size(),
            11 + "tenant".len() + "String".len() + "acme".len()
        );
    }
}
