//! Building the faithful SQS event the probe invokes the consumer with: the same shape an
//! event-source mapping delivers (`aws_lambda_events::sqs::SqsEvent`).

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};

use crate::message::ReceivedMessage;

/// `eventSource` of every SQS record.
pub const EVENT_SOURCE: &str = "aws:sqs";

/// The SQS event for `messages` received from the queue `queue_arn` in `region`: messageId,
/// receiptHandle, body, md5OfBody, md5OfMessageAttributes, every system attribute
/// (ApproximateReceiveCount, SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp,
/// AWSTraceHeader, ...), every message attribute, eventSource, eventSourceARN and awsRegion.
pub fn sqs_event(messages: &[ReceivedMessage], queue_arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| sqs_record(m, queue_arn, region))
        .collect();
    event
}

/// One record of [`sqs_event`]: what the consumer gets for `m`, and what the mapping's
/// `FilterCriteria` are matched against (`crate::filter`).
pub fn sqs_record(m: &ReceivedMessage, queue_arn: &str, region: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = Some(m.message_id.clone());
    r.receipt_handle = Some(m.receipt_handle.clone());
    r.body = Some(m.body.clone());
    r.md5_of_body = Some(m.md5_of_body.clone());
    r.md5_of_message_attributes = m.md5_of_message_attributes.clone();
    r.attributes = m
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    r.message_attributes = m
        .message_attributes
        .iter()
        .map(|(name, v)| {
            let mut a = SqsMessageAttribute::default();
            a.data_type = Some(v.data_type.clone());
            a.string_value = v.string_value.clone();
            a.binary_value = v.binary_value.as_ref().map(|bytes| {
                let mut data = Base64Data::default();
                *data = bytes.clone();
                data
            });
            (name.clone(), a)
        })
        .collect();
    r.event_source = Some(EVENT_SOURCE.to_owned());
    r.event_source_arn = Some(queue_arn.to_owned());
    r.aws_region = Some(region.to_owned());
    r
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::message::AttributeValue;

    fn message() -> ReceivedMessage {
        ReceivedMessage {
            message_id: "059f36b4-87a3-44ab-83d2-661975830a7d".into(),
            receipt_handle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a".into(),
            body: "{\"order\":42}".into(),
            md5_of_body: "e4e68fb7bd0e697a0ae8f1bb342846b3".into(),
            md5_of_message_attributes: Some("00484c68...59e48f06".into()),
            attributes: BTreeMap::from([
                ("ApproximateReceiveCount".into(), "2".into()),
                ("SentTimestamp".into(), "1545082649183".into()),
                ("SenderId".into(), "AIDAIENQZJOLO23YVJ4VO".into()),
                (
                    "ApproximateFirstReceiveTimestamp".into(),
                    "1545082649185".into(),
                ),
                (
                    "AWSTraceHeader".into(),
                    "Root=1-5759e988-bd862e3fe1be46a994272793".into(),
                ),
            ]),
            message_attributes: BTreeMap::from([
                ("tenant".into(), AttributeValue::string("String", "acme")),
                (
                    "blob".into(),
                    AttributeValue::binary("Binary", vec![1, 2, 255]),
                ),
            ]),
        }
    }

    #[test]
    fn event_has_the_shape_an_event_source_mapping_delivers() {
        let event = sqs_event(
            &[message()],
            "arn:aws:sqs:eu-west-1:123456789012:orders",
            "eu-west-1",
        );
        let v = serde_json::to_value(&event).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["messageId"], "059f36b4-87a3-44ab-83d2-661975830a7d");
        assert_eq!(r["receiptHandle"], "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a");
        assert_eq!(r["body"], "{\"order\":42}");
        assert_eq!(r["md5OfBody"], "e4e68fb7bd0e697a0ae8f1bb342846b3");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(
            r["eventSourceARN"],
            "arn:aws:sqs:eu-west-1:123456789012:orders"
        );
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(r["attributes"]["SentTimestamp"], "1545082649183");
        assert_eq!(
            r["attributes"]["AWSTraceHeader"],
            "Root=1-5759e988-bd862e3fe1be46a994272793"
        );
        assert_eq!(
            r["messageAttributes"]["tenant"],
            json!({
                "stringValue": "acme", "binaryValue": null, "stringListValues": [], "binaryListValues": [], "dataType": "String"
            })
        );
        assert_eq!(r["messageAttributes"]["blob"]["binaryValue"], "AQL/");
    }

    #[test]
    fn event_deserializes_as_the_consumer_would_read_it() {
        let json = serde_json::to_string(&sqs_event(&[message(), message()], "arn:q", "us-east-1"))
            .unwrap();
        let back: SqsEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.records.len(), 2);
        assert_eq!(
            back.records[0].message_attributes["blob"]
                .binary_value
                .as_ref()
                .map(|b| b.0.clone()),
            Some(vec![1, 2, 255])
        );
        let raw: Value = serde_json::from_str(&json).unwrap();
        assert!(raw.get("Records").is_some());
    }
}
