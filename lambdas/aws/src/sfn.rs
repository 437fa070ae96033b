//! Step Functions adapter: [`StateMachineExecutions`], the [`Executions`] port
//! (`ListExecutions` with status RUNNING, every page).

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use breaker_core::ports::{Executions, PortError, RunningExecution};

use crate::error::classify;

/// Executions of the breaker's state machine.
#[derive(Debug, Clone)]
pub struct StateMachineExecutions {
    client: Client,
}

impl StateMachineExecutions {
    /// Wrap `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl Executions for StateMachineExecutions {
    async fn list_running(
        &self,
        state_machine_arn: &str,
    ) -> Result<Vec<RunningExecution>, PortError> {
        let mut running = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_executions()
                .state_machine_arn(state_machine_arn)
                .status_filter(ExecutionStatus::Running)
                .max_results(1000)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify("ListExecutions", e))?;
            running.extend(
                out.executions()
                    .iter()
                    .filter(|e| e.status() == &ExecutionStatus::Running)
                    .map(|e| RunningExecution {
                        arn: e.execution_arn().to_owned(),
                        start_ms: e
                            .start_date()
                            .to_millis()
                            .ok()
                            .and_then(|m| u64::try_from(m).ok())
                            .unwrap_or(0),
                    }),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => return Ok(running),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::config::retry::RetryConfig;
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::list_executions::{ListExecutionsError, ListExecutionsOutput};
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::ExecutionListItem;
    use aws_sdk_sfn::types::error::StateMachineDoesNotExist;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::ports::FaultKind;

    use super::*;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_sfn, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn item(arn: &str, start_ms: i64) -> ExecutionListItem {
        ExecutionListItem::builder()
            .execution_arn(arn)
            .state_machine_arn("arn:aws:states:eu-west-1:1:stateMachine:B")
            .name(arn)
            .status(ExecutionStatus::Running)
            .start_date(DateTime::from_millis(start_ms))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn lists_running_executions_of_every_page() {
        let rule = mock!(Client::list_executions)
            .match_requests(|r| {
                r.status_filter() == Some(&ExecutionStatus::Running)
                    && r.state_machine_arn() == Some("arn:aws:states:eu-west-1:1:stateMachine:B")
            })
            .sequence()
            .output(|| {
                ListExecutionsOutput::builder()
                    .executions(item("a", 1_000))
                    .next_token("t")
                    .build()
                    .unwrap()
            })
            .output(|| {
                ListExecutionsOutput::builder()
                    .executions(item("b", 2_000))
                    .build()
                    .unwrap()
            })
            .build();
        let running = StateMachineExecutions::new(client(&[&rule]))
            .list_running("arn:aws:states:eu-west-1:1:stateMachine:B")
            .await
            .unwrap();
        assert_eq!(
            running,
            vec![
                RunningExecution {
                    arn: "a".into(),
                    start_ms: 1_000
                },
                RunningExecution {
                    arn: "b".into(),
                    start_ms: 2_000
                },
            ]
        );
    }

    #[tokio::test]
    async fn throttling_is_retryable_and_missing_machine_is_not() {
        let rule = mock!(Client::list_executions)
            .sequence()
            .http_status(
                400,
                Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
            )
            .build();
        let err = StateMachineExecutions::new(client(&[&rule]))
            .list_running("arn")
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable, "{err}");
        let rule = mock!(Client::list_executions).then_error(|| {
            ListExecutionsError::StateMachineDoesNotExist(
                StateMachineDoesNotExist::builder()
                    .meta(
                        ErrorMetadata::builder()
                            .code("StateMachineDoesNotExist")
                            .build(),
                    )
                    .build(),
            )
        });
        let err = StateMachineExecutions::new(client(&[&rule]))
            .list_running("arn")
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::NonRetryable);
    }
}
