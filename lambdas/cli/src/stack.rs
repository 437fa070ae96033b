//! The breaker's resources, named by the stack's CloudFormation outputs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::CliError;

/// Output keys, as the example stack defines them (`example-stack/lib/orders-stack.ts`, `OUTPUTS`).
pub mod keys {
    /// Orders queue URL.
    pub const QUEUE_URL: &str = "QueueUrl";
    /// Orders queue ARN.
    pub const QUEUE_ARN: &str = "QueueArn";
    /// Dead-letter queue URL.
    pub const DLQ_URL: &str = "DlqUrl";
    /// Event-source mapping UUID.
    pub const ESM_UUID: &str = "EventSourceMappingUuid";
    /// Consumer function name.
    pub const CONSUMER_NAME: &str = "ConsumerFunctionName";
    /// Trigger alarm name.
    pub const ALARM_NAME: &str = "AlarmName";
    /// Recovery state machine ARN.
    pub const STATE_MACHINE_ARN: &str = "StateMachineArn";
    /// Failure flag parameter name (example only).
    pub const FLAG_PARAMETER_NAME: &str = "FlagParameterName";
    /// Circuit name.
    pub const CIRCUIT_NAME: &str = "CircuitName";
    /// The DynamoDB table of the durable circuit record (optional: stacks of older breakers).
    pub const CIRCUIT_TABLE_NAME: &str = "CircuitTableName";
}

/// What the commands operate on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackResources {
    /// The stack these came from.
    pub stack_name: String,
    /// Circuit name (falls back to the stack name).
    pub circuit_name: String,
    /// Orders queue URL.
    pub queue_url: String,
    /// Dead-letter queue URL, if the stack has one.
    pub dlq_url: Option<String>,
    /// Event-source mapping UUID.
    pub esm_uuid: String,
    /// Consumer function name.
    pub consumer_name: String,
    /// Trigger alarm name.
    pub alarm_name: String,
    /// Recovery state machine ARN.
    pub state_machine_arn: String,
    /// Failure flag parameter, if the stack has one (the example does).
    pub flag_parameter_name: Option<String>,
    /// The circuit record's table, when the stack outputs it.
    pub circuit_table_name: Option<String>,
}

impl StackResources {
    /// Picks the resources out of a stack's outputs; a missing required output is named.
    pub fn from_outputs(
        stack_name: &str,
        outputs: &BTreeMap<String, String>,
    ) -> Result<Self, CliError> {
        let required = |key: &'static str| {
            outputs
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(CliError::MissingOutput {
                    stack: stack_name.to_owned(),
                    output: key,
                })
        };
        let optional = |key: &str| outputs.get(key).filter(|v| !v.is_empty()).cloned();
        Ok(Self {
            stack_name: stack_name.to_owned(),
            circuit_name: optional(keys::CIRCUIT_NAME).unwrap_or_else(|| stack_name.to_owned()),
            queue_url: required(keys::QUEUE_URL)?,
            dlq_url: optional(keys::DLQ_URL),
            esm_uuid: required(keys::ESM_UUID)?,
            consumer_name: required(keys::CONSUMER_NAME)?,
            alarm_name: required(keys::ALARM_NAME)?,
            state_machine_arn: required(keys::STATE_MACHINE_ARN)?,
            flag_parameter_name: optional(keys::FLAG_PARAMETER_NAME),
            circuit_table_name: optional(keys::CIRCUIT_TABLE_NAME),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn outputs() -> BTreeMap<String, String> {
        [
            (keys::QUEUE_URL, "http://localhost:5400/123456789012/orders"),
            (keys::QUEUE_ARN, "arn:aws:sqs:us-east-1:123456789012:orders"),
            (
                keys::DLQ_URL,
                "http://localhost:5400/123456789012/orders-dlq",
            ),
            (keys::ESM_UUID, "2f0c8e4a-0000-4000-8000-00000000e5a1"),
            (keys::CONSUMER_NAME, "orders-consumer"),
            (keys::ALARM_NAME, "orders-breaker-errors"),
            (
                keys::STATE_MACHINE_ARN,
                "arn:aws:states:us-east-1:123456789012:stateMachine:orders-breaker",
            ),
            (keys::FLAG_PARAMETER_NAME, "/orders/flag"),
            (keys::CIRCUIT_NAME, "orders"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn resolves_every_resource_from_the_outputs() {
        let r = StackResources::from_outputs("Example", &outputs()).unwrap();
        assert_eq!(r.circuit_name, "orders");
        assert_eq!(r.esm_uuid, "2f0c8e4a-0000-4000-8000-00000000e5a1");
        assert_eq!(
            r.dlq_url.as_deref(),
            Some("http://localhost:5400/123456789012/orders-dlq")
        );
        assert_eq!(r.flag_parameter_name.as_deref(), Some("/orders/flag"));
    }

    #[test]
    fn a_missing_required_output_is_named() {
        let mut o = outputs();
        o.remove(keys::STATE_MACHINE_ARN);
        let err = StackResources::from_outputs("Example", &o).unwrap_err();
        assert_eq!(
            err,
            CliError::MissingOutput {
                stack: "Example".into(),
                output: "StateMachineArn"
            }
        );
        assert!(
            err.to_string()
                .starts_with("stack Example has no output StateMachineArn")
        );
    }

    #[test]
    fn optional_outputs_may_be_absent() {
        let mut o = outputs();
        for k in [keys::DLQ_URL, keys::FLAG_PARAMETER_NAME, keys::CIRCUIT_NAME] {
            o.remove(k);
        }
        let r = StackResources::from_outputs("Example", &o).unwrap();
        assert_eq!((r.dlq_url, r.flag_parameter_name), (None, None));
        assert_eq!(r.circuit_name, "Example");
    }
}
