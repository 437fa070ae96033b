//! The ports implemented on AWS. The Lambda, CloudWatch, Step Functions and SQS calls are
//! `breaker-aws`'s adapters (the same the breaker's handlers use); only what is the CLI's own
//! stays here: CloudFormation stack outputs, the SSM failure flag, and turning the adapters'
//! [`PortError`]s into [`CliError`]s an operator can act on.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use breaker_aws::cloudwatch::CloudWatchAlarm;
use breaker_aws::dynamodb::DynamoCircuitRecords;
use breaker_aws::error::{classify, is_unanswered};
use breaker_aws::lambda::LambdaEsm;
use breaker_aws::sfn::{HistoryEntry, StateMachineExecutions};
use breaker_aws::sqs::SqsQueue;
use breaker_aws::timeouts::sdk_timeouts;
use breaker_core::message::{AttributeValue, OutgoingMessage};
use breaker_core::ports::CircuitRecords as _;
use breaker_core::ports::{AlarmState, Executions, PortError, Queue};
use breaker_core::record::CircuitRecord;
use serde_json::Value;

use crate::error::CliError;
use crate::ports::{Alarms, FlagStore, Mappings, Queues, Records, Recoveries, StackOutputs};
use crate::stack::StackOutput;
use crate::status::{
    AlarmStatus, Execution, MappingStatus, Progress, QueueDepth, find_circuit_state,
};

/// How many of the newest history events `progress` reads.
const HISTORY_EVENTS: i32 = 200;

/// Every client and adapter the CLI uses, built from one configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    /// Where calls go, for error messages: `--endpoint-url`, or the region's endpoints.
    endpoint: String,
    region: String,
    cfn: aws_sdk_cloudformation::Client,
    ssm: aws_sdk_ssm::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sqs: aws_sdk_sqs::Client,
    esm: LambdaEsm,
    executions: StateMachineExecutions,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Aws {
    /// Loads the standard AWS configuration (profile, environment), overridden by `region` and
    /// `endpoint_url`. Fails only when no region is known; credentials are checked by the first
    /// call.
    pub async fn connect(
        region: Option<String>,
        endpoint_url: Option<String>,
    ) -> Result<Self, CliError> {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).timeout_config(sdk_timeouts());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r));
        }
        if let Some(url) = &endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        let region = config.region().ok_or(CliError::NoRegion)?.to_string();
        let endpoint =
            endpoint_url.unwrap_or_else(|| format!("the AWS endpoints of region {region}"));
        Ok(Self::new(&config, region, endpoint))
    }

    fn new(config: &aws_config::SdkConfig, region: String, endpoint: String) -> Self {
        Self {
            endpoint,
            region,
            cfn: aws_sdk_cloudformation::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            esm: LambdaEsm::new(aws_sdk_lambda::Client::new(config)),
            executions: StateMachineExecutions::new(aws_sdk_sfn::Client::new(config)),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
        }
    }

    fn err(&self, error: PortError) -> CliError {
        translate(&self.endpoint, error)
    }

    fn queue(&self, url: &str) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), url)
    }
}

/// Error codes that mean the credentials were rejected.
const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "MissingAuthenticationToken",
];

/// Turns a classified AWS error into something an operator can act on: rejected or missing
/// credentials, a missing permission, an unreachable `endpoint`, or the service's own error.
pub fn translate(endpoint: &str, error: PortError) -> CliError {
    let unanswered = is_unanswered(&error);
    let PortError {
        operation,
        code,
        message,
        ..
    } = error;
    match code {
        Some(code) if CREDENTIAL_CODES.contains(&code.as_str()) => {
            CliError::BadCredentials { code, message }
        }
        Some(code) if code.starts_with("AccessDenied") => {
            CliError::AccessDenied { operation, message }
        }
        Some(code) => CliError::Service {
            operation,
            code,
            message,
        },
        None if is_credentials_problem(&message) => CliError::NoCredentials,
        None if unanswered => CliError::Unreachable {
            endpoint: endpoint.to_owned(),
            detail: short(&message),
        },
        None => CliError::Service {
            operation,
            code: "Client".into(),
            message: short(&message),
        },
    }
}

fn is_credentials_problem(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("credentials")
        && (d.contains("no credentials")
            || d.contains("not loaded")
            || d.contains("credential provider"))
}

/// The innermost cause of a chained error text, which is what tells the operator something
/// ("Connection refused (os error 111)"), without the SDK's nesting.
fn short(detail: &str) -> String {
    detail
        .rsplit(": ")
        .next()
        .unwrap_or(detail)
        .trim()
        .to_owned()
}

/// The execution's name: the last part of its ARN (`…:execution:<machine>:<name>`).
fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Where an execution is, from its history (newest first): the state it entered last and the
/// newest circuit state any event carried.
fn progress_of(history: Vec<HistoryEntry>) -> Progress {
    let mut progress = Progress::default();
    for event in history {
        if progress.step.is_none() && event.event_type.ends_with("StateEntered") {
            progress.step = event.entered_state;
        }
        if progress.circuit_state.is_none() {
            progress.circuit_state = event
                .document
                .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                .and_then(|v| find_circuit_state(&v).cloned());
        }
        if progress.step.is_some() && progress.circuit_state.is_some() {
            break;
        }
    }
    progress
}

/// A stack's outputs as the CLI reads them.
fn outputs_of(stack: &aws_sdk_cloudformation::types::Stack) -> Vec<StackOutput> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| {
            Some(StackOutput {
                key: o.output_key()?.to_owned(),
                value: o.output_value()?.to_owned(),
                description: o.description().map(str::to_owned),
            })
        })
        .collect()
}

impl StackOutputs for Aws {
    async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CliError> {
        let no_such_stack = || CliError::NoSuchStack {
            stack: stack.to_owned(),
            region: self.region.clone(),
        };
        let out = match self.cfn.describe_stacks().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) => {
                let not_found = e
                    .as_service_error()
                    .and_then(|s| s.message())
                    .is_some_and(|m| m.contains("does not exist"));
                return Err(if not_found {
                    no_such_stack()
                } else {
                    self.err(classify("DescribeStacks", e))
                });
            }
        };
        let found = out.stacks().first().ok_or_else(no_such_stack)?;
        Ok(outputs_of(found))
    }

    async fn all_stacks(&self) -> Result<BTreeMap<String, Vec<StackOutput>>, CliError> {
        let mut stacks = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .cfn
                .describe_stacks()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.err(classify("DescribeStacks", e)))?;
            for stack in out.stacks() {
                if let Some(name) = stack.stack_name() {
                    stacks.insert(name.to_owned(), outputs_of(stack));
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(stacks),
            }
        }
    }
}

impl Mappings for Aws {
    async fn mapping(&self, uuid: &str) -> Result<MappingStatus, CliError> {
        let d = self.esm.describe(uuid).await.map_err(|e| self.err(e))?;
        Ok(MappingStatus {
            uuid: uuid.to_owned(),
            state: d.snapshot.state.as_str().to_owned(),
            maximum_concurrency: d.snapshot.maximum_concurrency,
            batch_size: d.batch_size,
        })
    }
}

impl Alarms for Aws {
    async fn alarm(&self, name: &str) -> Result<AlarmStatus, CliError> {
        let d = CloudWatchAlarm::new(self.cloudwatch.clone(), name)
            .describe()
            .await
            .map_err(|e| self.err(e))?;
        let state = match d.state {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        };
        Ok(AlarmStatus {
            name: name.to_owned(),
            state: state.to_owned(),
            reason: d.reason,
        })
    }
}

impl Records for Aws {
    async fn record(&self, table: &str, circuit: &str) -> Result<Option<CircuitRecord>, CliError> {
        DynamoCircuitRecords::new(self.dynamodb.clone(), table, circuit)
            .load()
            .await
            .map_err(|e| self.err(e))
    }
}

impl Recoveries for Aws {
    async fn running(&self, state_machine_arn: &str) -> Result<Vec<Execution>, CliError> {
        let running = self
            .executions
            .list_running(state_machine_arn)
            .await
            .map_err(|e| self.err(e))?;
        let mut executions: Vec<Execution> = running
            .into_iter()
            .map(|e| Execution {
                name: execution_name(&e.arn).to_owned(),
                arn: e.arn,
                started_at_ms: e.start_ms,
            })
            .collect();
        executions.sort_by(|a, b| (a.started_at_ms, &a.arn).cmp(&(b.started_at_ms, &b.arn)));
        Ok(executions)
    }

    async fn progress(&self, execution_arn: &str) -> Result<Progress, CliError> {
        let history = self
            .executions
            .recent_history(execution_arn, HISTORY_EVENTS)
            .await
            .map_err(|e| self.err(e))?;
        Ok(progress_of(history))
    }

    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, CliError> {
        self.executions
            .start(state_machine_arn, name, &input.to_string())
            .await
            .map_err(|e| self.err(e))
    }

    async fn stop(&self, execution_arn: &str, error: &str, cause: &str) -> Result<(), CliError> {
        self.executions
            .stop(execution_arn, error, cause)
            .await
            .map_err(|e| self.err(e))
    }
}

impl Queues for Aws {
    async fn depth(&self, url: &str) -> Result<QueueDepth, CliError> {
        let info = self.queue(url).info().await.map_err(|e| self.err(e))?;
        Ok(QueueDepth {
            visible: info.visible,
            in_flight: info.in_flight,
            delayed: info.delayed,
        })
    }

    async fn send_batch(
        &self,
        url: &str,
        entries: Vec<(String, String)>,
    ) -> Result<Vec<String>, CliError> {
        let source = AttributeValue {
            data_type: "String".into(),
            string_value: Some("breaker-cli".into()),
            binary_value: None,
        };
        let messages = entries
            .into_iter()
            .map(|(id, body)| OutgoingMessage {
                id,
                body,
                message_attributes: BTreeMap::from([("source".to_owned(), source.clone())]),
                trace_header: None,
                delay_seconds: 0,
                fifo: None,
            })
            .collect();
        let outcome = self
            .queue(url)
            .send_batch(messages)
            .await
            .map_err(|e| self.err(e))?;
        Ok(outcome.failed.into_iter().map(|f| f.id).collect())
    }
}

impl FlagStore for Aws {
    async fn get(&self, name: &str) -> Result<String, CliError> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| self.err(classify("GetParameter", e)))?;
        Ok(out
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_owned())
    }

    async fn put(&self, name: &str, value: &str) -> Result<(), CliError> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| self.err(classify("PutParameter", e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::error::ErrorMetadata;
    use aws_sdk_cloudformation::operation::describe_stacks::{
        DescribeStacksError, DescribeStacksOutput,
    };
    use aws_sdk_cloudformation::primitives::DateTime;
    use aws_sdk_cloudformation::types::{Output as CfnOutput, Stack, StackStatus};
    use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingError;
    use aws_sdk_lambda::types::error::ResourceNotFoundException;
    use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
    use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::ports::FaultKind;
    use serde_json::json;

    use super::*;

    /// An `Aws` whose clients are not mocked: any call through them fails the test.
    fn aws() -> Aws {
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        Aws::new(&shared, "eu-west-1".into(), "http://localhost:5400".into())
    }

    fn with_cfn(rules: &[&Rule]) -> Aws {
        Aws {
            cfn: mock_client!(aws_sdk_cloudformation, RuleMode::Sequential, rules),
            ..aws()
        }
    }

    fn with_sfn(rules: &[&Rule]) -> Aws {
        let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, rules);
        Aws {
            executions: StateMachineExecutions::new(client),
            ..aws()
        }
    }

    /// What `outputs` makes of a DescribeStacks error with this code and message.
    async fn outputs_error(code: &'static str, message: &'static str) -> CliError {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(move || {
            DescribeStacksError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            )
        });
        with_cfn(&[&rule]).outputs("Example").await.unwrap_err()
    }

    fn stack(name: &str, outputs: &[(&str, &str, Option<&str>)]) -> Stack {
        let mut b = Stack::builder()
            .stack_name(name)
            .stack_status(StackStatus::CreateComplete)
            .creation_time(DateTime::from_secs(0));
        for (key, value, description) in outputs {
            b = b.outputs(
                CfnOutput::builder()
                    .output_key(*key)
                    .output_value(*value)
                    .set_description(description.map(str::to_owned))
                    .build(),
            );
        }
        b.build()
    }

    #[tokio::test]
    async fn stack_outputs_keep_key_value_and_description() {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("Example"))
            .then_output(move || {
                DescribeStacksOutput::builder()
                    .stacks(stack(
                        "Example",
                        &[
                            ("QueueUrl", "http://q", None),
                            (
                                "BreakerCliDescriptor1",
                                "{}",
                                Some("sqs-circuit-breaker descriptor v1: circuit a"),
                            ),
                        ],
                    ))
                    .build()
            });
        let outputs = with_cfn(&[&rule]).outputs("Example").await.unwrap();
        assert_eq!(outputs.len(), 2);
        assert_eq!(outputs[0], StackOutput::new("QueueUrl", "http://q"));
        assert!(outputs[1].is_descriptor());
    }

    #[tokio::test]
    async fn all_stacks_follows_every_page() {
        let first = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(|r| r.stack_name().is_none() && r.next_token().is_none())
            .then_output(|| {
                DescribeStacksOutput::builder()
                    .stacks(stack("A", &[("X", "1", None)]))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeStacksOutput::builder()
                    .stacks(stack("B", &[]))
                    .build()
            });
        let stacks = with_cfn(&[&first, &second]).all_stacks().await.unwrap();
        assert_eq!(stacks.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(stacks["A"], vec![StackOutput::new("X", "1")]);
    }

    #[tokio::test]
    async fn a_missing_stack_is_reported_with_name_and_region() {
        let err = outputs_error("ValidationError", "Stack with id Example does not exist").await;
        assert_eq!(
            err,
            CliError::NoSuchStack {
                stack: "Example".into(),
                region: "eu-west-1".into()
            }
        );
    }

    #[tokio::test]
    async fn rejected_credentials_are_named_as_such() {
        let err = outputs_error(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
        .await;
        assert_eq!(err.kind(), "BadCredentials");
        assert_eq!(
            err.to_string(),
            "AWS rejected the credentials (InvalidClientTokenId): The security token included in the request is invalid."
        );
    }

    #[tokio::test]
    async fn access_denied_names_the_operation() {
        let err = outputs_error(
            "AccessDenied",
            "not authorized to perform: cloudformation:DescribeStacks",
        )
        .await;
        assert_eq!(
            err.to_string(),
            "DescribeStacks: access denied: not authorized to perform: cloudformation:DescribeStacks"
        );
    }

    #[test]
    fn an_unanswered_call_names_the_endpoint_and_the_innermost_cause() {
        let error = PortError::new(
            "GetEventSourceMapping",
            FaultKind::Retryable,
            "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)",
        );
        assert_eq!(
            translate("http://127.0.0.1:9", error),
            CliError::Unreachable {
                endpoint: "http://127.0.0.1:9".into(),
                detail: "Connection refused (os error 111)".into()
            }
        );
    }

    #[test]
    fn missing_credentials_are_named_whatever_the_call() {
        let error = PortError::new(
            "ListExecutions",
            FaultKind::NonRetryable,
            "failed to construct request: no credentials in the property bag: the credential provider was not enabled",
        );
        assert_eq!(translate("x", error), CliError::NoCredentials);
    }

    #[test]
    fn service_errors_keep_operation_code_and_message() {
        let error = PortError {
            code: Some("ExecutionDoesNotExist".into()),
            ..PortError::new(
                "StopExecution",
                FaultKind::NonRetryable,
                "Execution does not exist",
            )
        };
        assert_eq!(
            translate("x", error).to_string(),
            "StopExecution failed (ExecutionDoesNotExist): Execution does not exist"
        );
        let malformed = PortError::new(
            "DescribeAlarms",
            FaultKind::NonRetryable,
            "alarm a not found",
        );
        assert_eq!(
            translate("x", malformed).to_string(),
            "DescribeAlarms failed (Client): alarm a not found"
        );
    }

    #[tokio::test]
    async fn a_missing_mapping_is_reported_with_the_service_code() {
        let rule = mock!(aws_sdk_lambda::Client::get_event_source_mapping).then_error(|| {
            GetEventSourceMappingError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("The resource you requested does not exist.")
                    .meta(
                        aws_sdk_lambda::error::ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .message("The resource you requested does not exist.")
                            .build(),
                    )
                    .build(),
            )
        });
        let aws = Aws {
            esm: LambdaEsm::new(mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&rule])),
            ..aws()
        };
        assert_eq!(
            aws.mapping("esm-1").await.unwrap_err().to_string(),
            "GetEventSourceMapping failed (ResourceNotFoundException): The resource you requested does not exist."
        );
    }

    #[tokio::test]
    async fn running_recoveries_are_named_from_their_arn_oldest_first() {
        let item = |name: &str, start_ms: i64| {
            ExecutionListItem::builder()
                .execution_arn(format!(
                    "arn:aws:states:eu-west-1:1:execution:breaker:{name}"
                ))
                .state_machine_arn("arn:aws:states:eu-west-1:1:stateMachine:breaker")
                .name(name)
                .status(ExecutionStatus::Running)
                .start_date(aws_sdk_sfn::primitives::DateTime::from_millis(start_ms))
                .build()
                .unwrap()
        };
        let rule = mock!(aws_sdk_sfn::Client::list_executions).then_output(move || {
            ListExecutionsOutput::builder()
                .executions(item("manual-open-9", 9_000))
                .executions(item("alarm-1", 1_000))
                .build()
                .unwrap()
        });
        let running = with_sfn(&[&rule])
            .running("arn:aws:states:eu-west-1:1:stateMachine:breaker")
            .await
            .unwrap();
        assert_eq!(
            running
                .iter()
                .map(|e| (e.name.as_str(), e.started_at_ms))
                .collect::<Vec<_>>(),
            vec![("alarm-1", 1_000), ("manual-open-9", 9_000)]
        );
    }

    #[test]
    fn progress_is_the_last_state_entered_and_the_newest_circuit_state() {
        let state = json!({"version":1,"openedAtMs":5,"attempt":2,"iteration":2,"generation":0,"savedScaling":{"maximumConcurrency":10},"trigger":"alarm"});
        let older = json!({"version":1,"verdict":"unhealthy","probed":1,"state":{"openedAtMs":5,"savedScaling":{},"attempt":1}});
        let event =
            |event_type: &str, entered: Option<&str>, document: Option<String>| HistoryEntry {
                event_type: event_type.into(),
                entered_state: entered.map(str::to_owned),
                document,
            };
        let history = vec![
            event(
                "WaitStateEntered",
                Some("Back Off"),
                Some(r#"{"waitSeconds":30}"#.into()),
            ),
            event(
                "TaskStateExited",
                None,
                Some(json!({"action":"wait","state":state}).to_string()),
            ),
            event("TaskStateEntered", Some("Compute Backoff"), None),
            event("TaskStateExited", None, Some(older.to_string())),
        ];
        let progress = progress_of(history);
        assert_eq!(progress.step.as_deref(), Some("Back Off"));
        assert_eq!(progress.circuit_state, Some(state));
        assert_eq!(progress_of(vec![]), Progress::default());
    }

    #[tokio::test]
    async fn test_orders_carry_a_source_attribute_and_failed_ids_come_back() {
        let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                r.queue_url() == Some("http://q")
                    && r.entries().iter().all(|e| {
                        e.message_attributes()
                            .and_then(|a| a.get("source"))
                            .and_then(|v| v.string_value())
                            == Some("breaker-cli")
                    })
            })
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .successful(
                        SendMessageBatchResultEntry::builder()
                            .id("m0")
                            .message_id("x")
                            .md5_of_message_body("y")
                            .build()
                            .unwrap(),
                    )
                    .failed(
                        BatchResultErrorEntry::builder()
                            .id("m1")
                            .code("InternalError")
                            .sender_fault(false)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap()
            });
        let aws = Aws {
            sqs: mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule]),
            ..aws()
        };
        let failed = aws
            .send_batch(
                "http://q",
                vec![("m0".into(), "{}".into()), ("m1".into(), "{}".into())],
            )
            .await
            .unwrap();
        assert_eq!(failed, vec!["m1"]);
        assert_eq!(rule.num_calls(), 1);
    }

    #[test]
    fn short_keeps_the_innermost_cause() {
        assert_eq!(
            short(
                "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)"
            ),
            "Connection refused (os error 111)"
        );
    }
}
