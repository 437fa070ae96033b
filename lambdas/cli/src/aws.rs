//! The ports implemented with the AWS SDK, and SDK errors classified into [`CliError`]s.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::Value;

use crate::error::CliError;
use crate::ports::{Alarms, FlagStore, Mappings, Queues, Recoveries, StackOutputs};
use crate::status::{
    AlarmStatus, Execution, MappingStatus, Progress, QueueDepth, find_circuit_state,
};

/// Where calls go, for error messages.
#[derive(Debug, Clone)]
struct Target {
    region: String,
    endpoint: String,
}

/// Every SDK client the CLI uses, built from one configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    target: Target,
    cfn: aws_sdk_cloudformation::Client,
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sfn: aws_sdk_sfn::Client,
    sqs: aws_sdk_sqs::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Aws {
    /// Loads the standard AWS configuration (profile, environment), overridden by `region` and
    /// `endpoint_url`. Fails only when no region is known; credentials are checked by the first
    /// call.
    pub async fn connect(
        region: Option<String>,
        endpoint_url: Option<String>,
    ) -> Result<Self, CliError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
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
        Ok(Self {
            target: Target { region, endpoint },
            cfn: aws_sdk_cloudformation::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        })
    }

    fn err<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> CliError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        classify(&self.target.endpoint, operation, error)
    }
}

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

/// Turns an SDK error into something an operator can act on.
pub fn classify<E, R>(endpoint: &str, operation: &'static str, error: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let message = e.message().unwrap_or_default().to_owned();
            if CREDENTIAL_CODES.contains(&code.as_str()) {
                CliError::BadCredentials { code, message }
            } else if code.starts_with("AccessDenied") {
                CliError::AccessDenied { operation, message }
            } else {
                CliError::Service {
                    operation,
                    code,
                    message,
                }
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let detail = DisplayErrorContext(&error).to_string();
            if is_credentials_problem(&detail) {
                CliError::NoCredentials
            } else {
                CliError::Unreachable {
                    endpoint: endpoint.to_owned(),
                    detail: short(&detail),
                }
            }
        }
        _ => {
            let detail = DisplayErrorContext(&error).to_string();
            if is_credentials_problem(&detail) {
                CliError::NoCredentials
            } else {
                CliError::Service {
                    operation,
                    code: "Client".into(),
                    message: short(&detail),
                }
            }
        }
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

impl StackOutputs for Aws {
    async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, CliError> {
        let out = match self.cfn.describe_stacks().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) => {
                let not_found = e
                    .as_service_error()
                    .and_then(|s| s.message())
                    .is_some_and(|m| m.contains("does not exist"));
                return Err(if not_found {
                    CliError::NoSuchStack {
                        stack: stack.to_owned(),
                        region: self.target.region.clone(),
                    }
                } else {
                    self.err("DescribeStacks", e)
                });
            }
        };
        let found = out.stacks().first().ok_or_else(|| CliError::NoSuchStack {
            stack: stack.to_owned(),
            region: self.target.region.clone(),
        })?;
        Ok(found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect())
    }
}

impl Mappings for Aws {
    async fn mapping(&self, uuid: &str) -> Result<MappingStatus, CliError> {
        let out = self
            .lambda
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(|e| self.err("GetEventSourceMapping", e))?;
        Ok(MappingStatus {
            uuid: uuid.to_owned(),
            state: out.state().unwrap_or("Unknown").to_owned(),
            maximum_concurrency: out.scaling_config().and_then(|s| s.maximum_concurrency()),
            batch_size: out.batch_size(),
        })
    }
}

impl Alarms for Aws {
    async fn alarm(&self, name: &str) -> Result<AlarmStatus, CliError> {
        let out = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(|e| self.err("DescribeAlarms", e))?;
        if let Some(a) = out.metric_alarms().first() {
            return Ok(AlarmStatus {
                name: name.to_owned(),
                state: a.state_value().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
                reason: a.state_reason().map(str::to_owned),
            });
        }
        if let Some(a) = out.composite_alarms().first() {
            return Ok(AlarmStatus {
                name: name.to_owned(),
                state: a.state_value().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
                reason: a.state_reason().map(str::to_owned),
            });
        }
        Err(CliError::Service {
            operation: "DescribeAlarms",
            code: "NotFound".into(),
            message: format!("alarm {name} does not exist"),
        })
    }
}

impl Recoveries for Aws {
    async fn running(&self, state_machine_arn: &str) -> Result<Vec<Execution>, CliError> {
        let mut executions = vec![];
        let mut pages = self
            .sfn
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .status_filter(ExecutionStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("ListExecutions", e))?;
            for e in page.executions() {
                executions.push(Execution {
                    arn: e.execution_arn().to_owned(),
                    name: e.name().to_owned(),
                    started_at_ms: e.start_date().to_millis().unwrap_or(0),
                });
            }
        }
        executions.sort_by(|a, b| (a.started_at_ms, &a.arn).cmp(&(b.started_at_ms, &b.arn)));
        Ok(executions)
    }

    async fn progress(&self, execution_arn: &str) -> Result<Progress, CliError> {
        let out = self
            .sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(200)
            .include_execution_data(true)
            .send()
            .await
            .map_err(|e| self.err("GetExecutionHistory", e))?;
        let mut progress = Progress::default();
        for event in out.events() {
            if progress.step.is_none()
                && event.r#type().as_str().ends_with("StateEntered")
                && let Some(d) = event.state_entered_event_details()
            {
                progress.step = Some(d.name().to_owned());
            }
            if progress.circuit_state.is_none() {
                let docs = [
                    event.state_exited_event_details().and_then(|d| d.output()),
                    event.state_entered_event_details().and_then(|d| d.input()),
                    event
                        .execution_started_event_details()
                        .and_then(|d| d.input()),
                ];
                progress.circuit_state = docs
                    .into_iter()
                    .flatten()
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .find_map(|v| find_circuit_state(&v).cloned());
            }
            if progress.step.is_some() && progress.circuit_state.is_some() {
                break;
            }
        }
        Ok(progress)
    }

    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, CliError> {
        let out = self
            .sfn
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| self.err("StartExecution", e))?;
        Ok(out.execution_arn().to_owned())
    }

    async fn stop(&self, execution_arn: &str, error: &str, cause: &str) -> Result<(), CliError> {
        self.sfn
            .stop_execution()
            .execution_arn(execution_arn)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| self.err("StopExecution", e))?;
        Ok(())
    }
}

impl Queues for Aws {
    async fn depth(&self, url: &str) -> Result<QueueDepth, CliError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| self.err("GetQueueAttributes", e))?;
        let count = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn send_batch(
        &self,
        url: &str,
        entries: Vec<(String, String)>,
    ) -> Result<Vec<String>, CliError> {
        let source = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("breaker-cli")
            .build()
            .expect("data type is set");
        let entries = entries
            .into_iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .message_attributes("source", source.clone())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.err("SendMessageBatch", e))?;
        Ok(out.failed().iter().map(|f| f.id().to_owned()).collect())
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
            .map_err(|e| self.err("GetParameter", e))?;
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
            .map_err(|e| self.err("PutParameter", e))?;
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
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn aws_with_cfn(cfn: aws_sdk_cloudformation::Client) -> Aws {
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        Aws {
            target: Target {
                region: "eu-west-1".into(),
                endpoint: "http://localhost:5400".into(),
            },
            cfn,
            lambda: aws_sdk_lambda::Client::new(&shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            sfn: aws_sdk_sfn::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
            ssm: aws_sdk_ssm::Client::new(&shared),
        }
    }

    #[tokio::test]
    async fn stack_outputs_become_a_map() {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("Example"))
            .then_output(|| {
                DescribeStacksOutput::builder()
                    .stacks(
                        Stack::builder()
                            .stack_name("Example")
                            .stack_status(StackStatus::CreateComplete)
                            .creation_time(DateTime::from_secs(0))
                            .outputs(
                                CfnOutput::builder()
                                    .output_key("QueueUrl")
                                    .output_value("http://q")
                                    .build(),
                            )
                            .outputs(
                                CfnOutput::builder()
                                    .output_key("AlarmName")
                                    .output_value("a")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let aws = aws_with_cfn(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::Sequential,
            [&rule]
        ));
        let outputs = aws.outputs("Example").await.unwrap();
        assert_eq!(
            outputs.get("QueueUrl").map(String::as_str),
            Some("http://q")
        );
        assert_eq!(outputs.len(), 2);
    }

    #[tokio::test]
    async fn a_missing_stack_is_reported_with_name_and_region() {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(|| {
            DescribeStacksError::generic(
                ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("Stack with id Nope does not exist")
                    .build(),
            )
        });
        let aws = aws_with_cfn(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::Sequential,
            [&rule]
        ));
        let err = aws.outputs("Nope").await.unwrap_err();
        assert_eq!(
            err,
            CliError::NoSuchStack {
                stack: "Nope".into(),
                region: "eu-west-1".into()
            }
        );
    }

    #[tokio::test]
    async fn rejected_credentials_are_named_as_such() {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(|| {
            DescribeStacksError::generic(
                ErrorMetadata::builder()
                    .code("InvalidClientTokenId")
                    .message("The security token included in the request is invalid.")
                    .build(),
            )
        });
        let aws = aws_with_cfn(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::Sequential,
            [&rule]
        ));
        let err = aws.outputs("Example").await.unwrap_err();
        assert_eq!(err.kind(), "BadCredentials");
        assert_eq!(
            err.to_string(),
            "AWS rejected the credentials (InvalidClientTokenId): The security token included in the request is invalid."
        );
    }

    #[tokio::test]
    async fn access_denied_names_the_operation() {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(|| {
            DescribeStacksError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("not authorized to perform: cloudformation:DescribeStacks")
                    .build(),
            )
        });
        let aws = aws_with_cfn(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::Sequential,
            [&rule]
        ));
        let err = aws.outputs("Example").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "DescribeStacks: access denied: not authorized to perform: cloudformation:DescribeStacks"
        );
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
