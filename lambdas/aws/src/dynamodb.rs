//! DynamoDB adapter: [`DynamoCircuitRecords`], the [`CircuitRecords`] port. One item per circuit
//! (partition key `circuit`), read strongly consistently and written whole with `PutItem`
//! conditioned on the revision that was read, so that of two writers that read the same revision
//! exactly one wins. The item keeps `revision`, `owner` and `phase` as top-level attributes (for
//! a person looking at the table) and the whole record as JSON in `record`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use breaker_core::ports::{CircuitRecords, FaultKind, PortError};
use breaker_core::record::CircuitRecord;

use crate::error::classify;

/// The partition key of the circuit table (the construct creates the table with it).
pub const KEY: &str = "circuit";

/// The durable record of one circuit in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCircuitRecords {
    client: Client,
    table: String,
    circuit: String,
}

impl DynamoCircuitRecords {
    /// The record of `circuit` in `table`.
    pub fn new(client: Client, table: impl Into<String>, circuit: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            circuit: circuit.into(),
        }
    }
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<CircuitRecord, PortError> {
    let bad = |what: String| PortError::new("GetItem", FaultKind::NonRetryable, what);
    let json = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| bad("the circuit item has no string attribute `record`".into()))?;
    let mut record: CircuitRecord = serde_json::from_str(json).map_err(|e| {
        bad(format!(
            "the circuit item's `record` is not a circuit record: {e}"
        ))
    })?;
    record.revision = item
        .get("revision")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| bad("the circuit item has no numeric attribute `revision`".into()))?;
    Ok(record)
}

impl CircuitRecords for DynamoCircuitRecords {
    async fn load(&self) -> Result<Option<CircuitRecord>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.circuit.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        out.item().map(decode).transpose()
    }

    async fn save(&self, record: &CircuitRecord) -> Result<bool, PortError> {
        let next = CircuitRecord {
            revision: record.revision + 1,
            ..record.clone()
        };
        let json = serde_json::to_string(&next).expect("a circuit record always serializes");
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(self.circuit.clone()))
            .item("revision", AttributeValue::N(next.revision.to_string()))
            .item("phase", AttributeValue::S(next.phase.as_str().to_owned()))
            .item("record", AttributeValue::S(json));
        if let Some(owner) = &next.owner {
            put = put.item("owner", AttributeValue::S(owner.clone()));
        }
        put = if record.revision == 0 {
            put.condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", KEY)
        } else {
            put.condition_expression("#r = :r")
                .expression_attribute_names("#r", "revision")
                .expression_attribute_values(":r", AttributeValue::N(record.revision.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("PutItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::record::Phase;

    use super::*;

    fn records(rules: &[&Rule]) -> DynamoCircuitRecords {
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        DynamoCircuitRecords::new(client, "breaker-table", "orders")
    }

    fn owned(revision: u64) -> CircuitRecord {
        CircuitRecord {
            revision,
            owner: Some("arn:exec:a".into()),
            phase: Phase::Open,
            ..CircuitRecord::new_closed(5)
        }
    }

    #[tokio::test]
    async fn load_reads_consistently_and_takes_the_revision_attribute() {
        let stored = owned(3);
        let json = serde_json::to_string(&CircuitRecord {
            revision: 99,
            ..stored.clone()
        })
        .unwrap();
        let rule = mock!(Client::get_item)
            .match_requests(|r| {
                r.table_name() == Some("breaker-table")
                    && r.consistent_read() == Some(true)
                    && r.key().and_then(|k| k.get(KEY)).and_then(|v| v.as_s().ok())
                        == Some(&"orders".to_owned())
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .item(KEY, AttributeValue::S("orders".into()))
                    .item("revision", AttributeValue::N("3".into()))
                    .item("record", AttributeValue::S(json.clone()))
                    .build()
            });
        let none = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let r = records(&[&rule, &none]);
        assert_eq!(r.load().await.unwrap(), Some(stored));
        assert_eq!(r.load().await.unwrap(), None);
    }

    #[tokio::test]
    async fn load_of_a_malformed_item_names_the_attribute() {
        let rule = mock!(Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item("revision", AttributeValue::N("1".into()))
                .item("record", AttributeValue::S("{\"revision\":1}".into()))
                .build()
        });
        let err = records(&[&rule]).load().await.unwrap_err();
        assert_eq!(err.kind, FaultKind::NonRetryable);
        assert!(err.message.contains("`record`"), "{err}");
    }

    #[tokio::test]
    async fn the_first_write_requires_that_nothing_is_stored() {
        let rule = mock!(Client::put_item)
            .match_requests(|r| {
                r.condition_expression() == Some("attribute_not_exists(#k)")
                    && r.item()
                        .and_then(|i| i.get("revision"))
                        .and_then(|v| v.as_n().ok())
                        == Some(&"1".to_owned())
                    && r.item().and_then(|i| i.get("owner")).is_none()
            })
            .then_output(|| PutItemOutput::builder().build());
        assert!(
            records(&[&rule])
                .save(&CircuitRecord::new_closed(1))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn later_writes_are_conditioned_on_the_revision_read() {
        let rule = mock!(Client::put_item)
            .match_requests(|r| {
                let item = r.item().unwrap();
                let record: CircuitRecord =
                    serde_json::from_str(item["record"].as_s().unwrap()).unwrap();
                r.condition_expression() == Some("#r = :r")
                    && r.expression_attribute_values().and_then(|v| v.get(":r"))
                        == Some(&AttributeValue::N("4".into()))
                    && item["revision"] == AttributeValue::N("5".into())
                    && item["owner"] == AttributeValue::S("arn:exec:a".into())
                    && item["phase"] == AttributeValue::S("open".into())
                    && record.revision == 5
            })
            .then_output(|| PutItemOutput::builder().build());
        assert!(records(&[&rule]).save(&owned(4)).await.unwrap());
    }

    #[tokio::test]
    async fn a_failed_condition_is_a_conflict_and_throttling_is_retryable() {
        let conflict = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("no")
                    .build(),
            )
        });
        let throttled = mock!(Client::put_item).then_error(|| {
            PutItemError::generic(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .build(),
            )
        });
        let r = records(&[&conflict, &throttled]);
        assert!(!r.save(&owned(4)).await.unwrap());
        let err = r.save(&owned(4)).await.unwrap_err();
        assert_eq!((err.operation, err.kind), ("PutItem", FaultKind::Retryable));
    }
}
