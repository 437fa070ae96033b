//! The breakers of a stack, named by its CloudFormation outputs.
//!
//! Every `SqsCircuitBreaker` outputs a **descriptor** (`cdk/README.md`, "Operating it with the
//! CLI"): an output whose description starts with [`DESCRIPTOR_PREFIX`] and whose value is a JSON
//! object naming the breaker's resources. A stack may hold several. A stack without any falls back
//! to the example stack's fixed output keys ([`keys`]), so stacks deployed before descriptors keep
//! working.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

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

/// The description every descriptor output starts with (the construct's
/// `cdk/src/descriptor.ts`, `DESCRIPTOR_DESCRIPTION_PREFIX`).
pub const DESCRIPTOR_PREFIX: &str = "sqs-circuit-breaker descriptor v1";

/// The descriptor format this CLI reads (field `v`).
pub const DESCRIPTOR_VERSION: u64 = 1;

/// One CloudFormation output of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOutput {
    /// Output key (derived from the construct path for descriptors).
    pub key: String,
    /// Output value.
    pub value: String,
    /// Output description, if any.
    pub description: Option<String>,
}

impl StackOutput {
    /// An output without a description.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            description: None,
        }
    }

    /// Whether this output is a breaker descriptor (its description starts with the prefix).
    pub fn is_descriptor(&self) -> bool {
        self.description
            .as_deref()
            .is_some_and(|d| d.starts_with(DESCRIPTOR_PREFIX))
    }
}

/// Where a breaker's resources were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The construct's descriptor output.
    Descriptor,
    /// The example stack's fixed output keys (stacks deployed before descriptors).
    ExampleOutputs,
}

/// What the commands operate on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackResources {
    /// The stack these came from.
    pub stack_name: String,
    /// Where they were read from.
    pub source: Source,
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
    /// Reads one descriptor (the value of output `output_key` of `stack`); a missing or invalid
    /// field is named. `flag_parameter_name` is the example stack's flag, if the stack has one.
    pub fn from_descriptor(
        stack_name: &str,
        output_key: &str,
        json: &str,
        flag_parameter_name: Option<String>,
    ) -> Result<Self, CliError> {
        let invalid = |problem: String| CliError::InvalidDescriptor {
            stack: stack_name.to_owned(),
            output: output_key.to_owned(),
            problem,
        };
        let value: Value =
            serde_json::from_str(json).map_err(|e| invalid(format!("not JSON ({e})")))?;
        let object = value
            .as_object()
            .ok_or_else(|| invalid("not a JSON object".into()))?;
        match object.get("v") {
            Some(v) if v.as_u64() == Some(DESCRIPTOR_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "version {v} is not the version this breaker CLI reads ({DESCRIPTOR_VERSION}): update the CLI"
                )));
            }
            None => return Err(invalid("field v is missing".into())),
        }
        let field = |name: &str| -> Result<Option<String>, CliError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(other) => Err(invalid(format!(
                    "field {name} must be a non-empty string, not {other}"
                ))),
            }
        };
        let required =
            |name: &str| field(name)?.ok_or_else(|| invalid(format!("field {name} is missing")));
        Ok(Self {
            stack_name: stack_name.to_owned(),
            source: Source::Descriptor,
            circuit_name: required("circuitName")?,
            queue_url: required("queueUrl")?,
            dlq_url: field("dlqUrl")?,
            esm_uuid: required("eventSourceMappingUuid")?,
            consumer_name: required("consumerFunctionName")?,
            alarm_name: required("alarmName")?,
            state_machine_arn: required("stateMachineArn")?,
            flag_parameter_name,
            circuit_table_name: Some(required("circuitTableName")?),
        })
    }

    /// Picks the resources out of the example stack's fixed output keys; a missing required
    /// output is named.
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
            source: Source::ExampleOutputs,
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

/// Every breaker of `stack`: one per descriptor output, or, when it has none, the example stack's
/// fixed outputs if it has any of them. A stack with neither has none (an empty list).
pub fn breakers(stack: &str, outputs: &[StackOutput]) -> Result<Vec<StackResources>, CliError> {
    let flag = outputs
        .iter()
        .find(|o| o.key == keys::FLAG_PARAMETER_NAME && !o.value.is_empty())
        .map(|o| o.value.clone());
    let descriptors: Vec<&StackOutput> = outputs.iter().filter(|o| o.is_descriptor()).collect();
    if !descriptors.is_empty() {
        return descriptors
            .into_iter()
            .map(|o| StackResources::from_descriptor(stack, &o.key, &o.value, flag.clone()))
            .collect();
    }
    let legacy = [
        keys::QUEUE_URL,
        keys::ESM_UUID,
        keys::CONSUMER_NAME,
        keys::ALARM_NAME,
        keys::STATE_MACHINE_ARN,
    ];
    if !outputs.iter().any(|o| legacy.contains(&o.key.as_str())) {
        return Ok(vec![]);
    }
    let map: BTreeMap<String, String> = outputs
        .iter()
        .map(|o| (o.key.clone(), o.value.clone()))
        .collect();
    Ok(vec![StackResources::from_outputs(stack, &map)?])
}

/// The breaker the command operates on: the one named `circuit`, or the stack's only one.
pub fn select(
    stack: &str,
    mut breakers: Vec<StackResources>,
    circuit: Option<&str>,
) -> Result<StackResources, CliError> {
    let names = || {
        breakers
            .iter()
            .map(|b| b.circuit_name.clone())
            .collect::<Vec<_>>()
    };
    match circuit {
        Some(name) => match breakers.iter().position(|b| b.circuit_name == name) {
            Some(i) => Ok(breakers.swap_remove(i)),
            None if breakers.is_empty() => Err(CliError::NoBreaker {
                stack: stack.to_owned(),
            }),
            None => Err(CliError::UnknownCircuit {
                stack: stack.to_owned(),
                circuit: name.to_owned(),
                names: names(),
            }),
        },
        None => match breakers.len() {
            0 => Err(CliError::NoBreaker {
                stack: stack.to_owned(),
            }),
            1 => Ok(breakers.remove(0)),
            _ => Err(CliError::SeveralCircuits {
                stack: stack.to_owned(),
                names: names(),
            }),
        },
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

    /// A descriptor as the construct writes it (cdk/src/descriptor.ts).
    pub(crate) fn descriptor(circuit: &str) -> Value {
        serde_json::json!({
            "v": 1,
            "circuitName": circuit,
            "queueUrl": format!("http://localhost:5400/123456789012/{circuit}"),
            "queueArn": format!("arn:aws:sqs:us-east-1:123456789012:{circuit}"),
            "dlqUrl": format!("http://localhost:5400/123456789012/{circuit}-dlq"),
            "eventSourceMappingUuid": format!("uuid-{circuit}"),
            "consumerFunctionName": format!("{circuit}-consumer"),
            "alarmName": format!("{circuit}-alarm"),
            "stateMachineArn": format!("arn:aws:states:us-east-1:123456789012:stateMachine:{circuit}"),
            "circuitTableName": format!("{circuit}-table"),
        })
    }

    /// A descriptor output of circuit `circuit` under key `key`.
    pub(crate) fn descriptor_output(key: &str, value: &Value) -> StackOutput {
        StackOutput {
            key: key.into(),
            value: value.to_string(),
            description: Some(format!(
                "{DESCRIPTOR_PREFIX}: circuit {} (read by the breaker CLI)",
                value["circuitName"].as_str().unwrap_or("?")
            )),
        }
    }

    /// The example's fixed outputs as a stack's output list.
    pub(crate) fn legacy_outputs() -> Vec<StackOutput> {
        outputs()
            .into_iter()
            .map(|(k, v)| StackOutput::new(k, v))
            .collect()
    }

    fn invalid(d: Value) -> String {
        let o = descriptor_output("OrdersBreakerCliDescriptorC4DEEF89", &d);
        match breakers("Orders", &[o]).unwrap_err() {
            CliError::InvalidDescriptor { problem, .. } => problem,
            other => panic!("expected an invalid descriptor, got {other:?}"),
        }
    }

    #[test]
    fn a_descriptor_names_every_resource() {
        let o = descriptor_output("OrdersBreakerCliDescriptorC4DEEF89", &descriptor("orders"));
        let found = breakers("Orders", &[o, StackOutput::new("Other", "x")]).unwrap();
        assert_eq!(found.len(), 1);
        let r = &found[0];
        assert_eq!(r.source, Source::Descriptor);
        assert_eq!(
            (r.stack_name.as_str(), r.circuit_name.as_str()),
            ("Orders", "orders")
        );
        assert_eq!(r.queue_url, "http://localhost:5400/123456789012/orders");
        assert_eq!(
            r.dlq_url.as_deref(),
            Some("http://localhost:5400/123456789012/orders-dlq")
        );
        assert_eq!(r.esm_uuid, "uuid-orders");
        assert_eq!(r.consumer_name, "orders-consumer");
        assert_eq!(r.alarm_name, "orders-alarm");
        assert_eq!(
            r.state_machine_arn,
            "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
        );
        assert_eq!(r.circuit_table_name.as_deref(), Some("orders-table"));
        assert_eq!(r.flag_parameter_name, None);
    }

    #[test]
    fn descriptors_win_over_the_example_keys_and_keep_the_example_flag() {
        let mut outputs = legacy_outputs();
        outputs.push(descriptor_output(
            "BreakerCliDescriptor1",
            &descriptor("orders"),
        ));
        let found = breakers("Example", &outputs).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].source, Source::Descriptor);
        assert_eq!(
            found[0].flag_parameter_name.as_deref(),
            Some("/orders/flag")
        );
    }

    #[test]
    fn without_descriptors_the_example_keys_are_read() {
        let found = breakers("Example", &legacy_outputs()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].source, Source::ExampleOutputs);
        assert_eq!(found[0].circuit_name, "orders");
    }

    #[test]
    fn a_stack_with_neither_has_no_breaker() {
        assert_eq!(
            breakers("Other", &[StackOutput::new("BucketName", "b")]),
            Ok(vec![])
        );
        let err = select("Other", vec![], None).unwrap_err();
        assert_eq!(err.kind(), "NoBreaker");
        assert!(
            err.to_string()
                .starts_with("stack Other has no circuit breaker"),
            "{err}"
        );
    }

    #[test]
    fn a_descriptor_without_the_prefix_is_not_read() {
        let mut o = descriptor_output("X", &descriptor("orders"));
        o.description = Some("something else".into());
        assert_eq!(breakers("Orders", &[o]), Ok(vec![]));
    }

    #[test]
    fn a_missing_descriptor_field_is_named() {
        for field in [
            "circuitName",
            "queueUrl",
            "eventSourceMappingUuid",
            "consumerFunctionName",
            "alarmName",
            "stateMachineArn",
            "circuitTableName",
            "v",
        ] {
            let mut d = descriptor("orders");
            d.as_object_mut().unwrap().remove(field);
            assert_eq!(invalid(d), format!("field {field} is missing"));
        }
        let mut d = descriptor("orders");
        d.as_object_mut().unwrap().remove("dlqUrl");
        let o = descriptor_output("K", &d);
        assert_eq!(breakers("Orders", &[o]).unwrap()[0].dlq_url, None);
    }

    #[test]
    fn an_invalid_descriptor_field_is_named_with_the_stack_and_output() {
        let mut d = descriptor("orders");
        d["queueUrl"] = serde_json::json!(5);
        assert_eq!(
            invalid(d),
            "field queueUrl must be a non-empty string, not 5"
        );
        let mut d = descriptor("orders");
        d["alarmName"] = serde_json::json!("");
        assert_eq!(
            invalid(d),
            r#"field alarmName must be a non-empty string, not """#
        );
        let mut d = descriptor("orders");
        d["v"] = serde_json::json!(2);
        assert!(invalid(d).starts_with("version 2 is not the version this breaker CLI reads (1)"));
        let bad = StackOutput {
            value: "{not json".into(),
            ..descriptor_output("OrdersBreakerCliDescriptorC4DEEF89", &descriptor("orders"))
        };
        let err = breakers("Orders", &[bad]).unwrap_err();
        assert_eq!(err.kind(), "InvalidDescriptor");
        assert!(
            err.to_string().starts_with(
                "stack Orders: output OrdersBreakerCliDescriptorC4DEEF89 is not a valid breaker descriptor: not JSON"
            ),
            "{err}"
        );
    }

    fn two_breakers() -> Vec<StackResources> {
        breakers(
            "Shop",
            &[
                descriptor_output("A", &descriptor("orders")),
                descriptor_output("B", &descriptor("payments")),
            ],
        )
        .unwrap()
    }

    #[test]
    fn circuit_picks_one_of_several() {
        let r = select("Shop", two_breakers(), Some("payments")).unwrap();
        assert_eq!(r.circuit_name, "payments");
        assert_eq!(r.esm_uuid, "uuid-payments");
        let only = select("Shop", two_breakers()[..1].to_vec(), None).unwrap();
        assert_eq!(only.circuit_name, "orders");
    }

    #[test]
    fn several_breakers_without_circuit_is_an_error_listing_the_names_and_the_fix() {
        let err = select("Shop", two_breakers(), None).unwrap_err();
        assert_eq!(err.kind(), "SeveralCircuits");
        assert_eq!(
            err.to_string(),
            "stack Shop has 2 circuit breakers (orders, payments): pick one with --circuit NAME (`breaker list` lists them)"
        );
    }

    #[test]
    fn an_unknown_circuit_is_an_error_listing_the_names() {
        let err = select("Shop", two_breakers(), Some("refunds")).unwrap_err();
        assert_eq!(err.kind(), "UnknownCircuit");
        assert_eq!(
            err.to_string(),
            "stack Shop has no circuit refunds; its circuits: orders, payments (pass one of them to --circuit)"
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
