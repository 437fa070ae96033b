//! Step Functions adapter: [`StateMachineExecutions`], the [`Executions`] port
//! (`ListExecutions` with status RUNNING, every page), plus what the operator CLI does with
//! executions: [`StateMachineExecutions::start`], [`StateMachineExecutions::stop`],
//! [`StateMachineExecutions::recent`] and [`StateMachineExecutions::recent_history`].

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use breaker_core::ports::{Executions, PortError, RunningExecution};

use crate::error::classify;

/// Executions of the breaker's state machine.
#[derive(Debug, Clone)]
pub struct StateMachineExecutions {
    client: Client,
}

/// One event of an execution's history, reduced to what tells where the execution is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The event type, e.g. `TaskStateEntered`.
    pub event_type: String,
    /// The state entered, on `…StateEntered` events.
    pub entered_state: Option<String>,
    /// The JSON document the event carries: a state's input (entered) or output (exited), or
    /// the execution's input (started). `None` for other events or when the data is withheld.
    pub document: Option<String>,
    /// When the event happened, epoch ms.
    pub timestamp_ms: u64,
}

/// One execution as `ListExecutions` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSummary {
    /// Execution ARN.
    pub arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, ...
    pub status: String,
    /// Start, epoch ms.
    pub start_ms: u64,
    /// Stop, epoch ms; `None` while it runs.
    pub stop_ms: Option<u64>,
}

fn millis(t: &aws_sdk_sfn::primitives::DateTime) -> u64 {
    t.to_millis()
        .ok()
        .and_then(|m| u64::try_from(m).ok())
        .unwrap_or(0)
}

impl From<&HistoryEvent> for HistoryEntry {
    fn from(event: &HistoryEvent) -> Self {
        let entered = event.state_entered_event_details();
        let document = event
            .state_exited_event_details()
            .and_then(|d| d.output())
            .or_else(|| entered.and_then(|d| d.input()))
            .or_else(|| {
                event
                    .execution_started_event_details()
                    .and_then(|d| d.input())
            });
        Self {
            event_type: event.r#type().as_str().to_owned(),
            entered_state: entered.map(|d| d.name().to_owned()),
            document: document.map(str::to_owned),
            timestamp_ms: millis(event.timestamp()),
        }
    }
}

impl StateMachineExecutions {
    /// Wrap `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `StartExecution` named `name` with the JSON `input`; returns the execution ARN.
    pub async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, PortError> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| classify("StartExecution", e))?;
        Ok(out.execution_arn().to_owned())
    }

    /// `StopExecution` with an error name and a cause.
    pub async fn stop(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), PortError> {
        self.client
            .stop_execution()
            .execution_arn(execution_arn)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| classify("StopExecution", e))?;
        Ok(())
    }

    /// The newest `max` (1–1000) events of an execution's history, newest first, with their
    /// data (`GetExecutionHistory`, one page).
    pub async fn recent_history(
        &self,
        execution_arn: &str,
        max: i32,
    ) -> Result<Vec<HistoryEntry>, PortError> {
        let out = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(max.clamp(1, 1000))
            .include_execution_data(true)
            .send()
            .await
            .map_err(|e| classify("GetExecutionHistory", e))?;
        Ok(out.events().iter().map(HistoryEntry::from).collect())
    }

    /// The newest `max` (1–1000) executions of a state machine, whatever their status, newest
    /// first (`ListExecutions`, one page).
    pub async fn recent(
        &self,
        state_machine_arn: &str,
        max: i32,
    ) -> Result<Vec<ExecutionSummary>, PortError> {
        let out = self
            .client
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .max_results(max.clamp(1, 1000))
            .send()
            .await
            .map_err(|e| classify("ListExecutions", e))?;
        let mut executions: Vec<ExecutionSummary> = out
            .executions()
            .iter()
            .map(|e| ExecutionSummary {
                arn: e.execution_arn().to_owned(),
                status: e.status().as_str().to_owned(),
                start_ms: millis(e.start_date()),
                stop_ms: e.stop_date().map(millis),
            })
            .collect();
        // the API's order is newest first; say so whatever a stand-in does
        executions.sort_by(|a, b| (b.start_ms, &b.arn).cmp(&(a.start_ms, &a.arn)));
        Ok(executions)
    }
}

impl Executions for StateMachineExecutions {
    async fn is_running(&self, execution_arn: &str) -> Result<bool, PortError> {
        match self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.status() == &ExecutionStatus::Running),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("DescribeExecution", e)),
        }
    }

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
                        start_ms: millis(e.start_date()),
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
    use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
    use aws_sdk_sfn::operation::list_executions::{ListExecutionsError, ListExecutionsOutput};
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::operation::stop_execution::{StopExecutionError, StopExecutionOutput};
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::builders::HistoryEventBuilder;
    use aws_sdk_sfn::types::error::{ExecutionDoesNotExist, StateMachineDoesNotExist};
    use aws_sdk_sfn::types::{
        ExecutionListItem, ExecutionStartedEventDetails, HistoryEventType,
        StateEnteredEventDetails, StateExitedEventDetails,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::ports::FaultKind;

    use super::*;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_sfn, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    #[tokio::test]
    async fn is_running_reads_the_status_and_a_missing_execution_is_not_running() {
        use aws_sdk_sfn::operation::describe_execution::{
            DescribeExecutionError, DescribeExecutionOutput,
        };
        let described = |status: ExecutionStatus| {
            DescribeExecutionOutput::builder()
                .execution_arn("arn:e")
                .state_machine_arn("arn:m")
                .status(status)
                .start_date(DateTime::from_millis(1))
                .build()
                .unwrap()
        };
        let running = mock!(Client::describe_execution)
            .then_output(move || described(ExecutionStatus::Running));
        let aborted = mock!(Client::describe_execution)
            .then_output(move || described(ExecutionStatus::Aborted));
        let missing = mock!(Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(
                ExecutionDoesNotExist::builder().message("no").build(),
            )
        });
        let throttled = mock!(Client::describe_execution).then_error(|| {
            DescribeExecutionError::generic(
                ErrorMetadata::builder().code("ThrottlingException").build(),
            )
        });
        let x = StateMachineExecutions::new(client(&[&running, &aborted, &missing, &throttled]));
        assert!(x.is_running("arn:e").await.unwrap());
        assert!(!x.is_running("arn:e").await.unwrap());
        assert!(!x.is_running("arn:e").await.unwrap());
        let err = x.is_running("arn:e").await.unwrap_err();
        assert_eq!(
            (err.operation, err.kind),
            ("DescribeExecution", FaultKind::Retryable)
        );
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
    async fn start_names_the_execution_and_passes_the_input() {
        let rule = mock!(Client::start_execution)
            .match_requests(|r| {
                r.state_machine_arn() == Some("arn:sm")
                    && r.name() == Some("manual-close-9")
                    && r.input() == Some(r#"{"trigger":"manual-close"}"#)
            })
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn:exec")
                    .start_date(DateTime::from_millis(9))
                    .build()
                    .unwrap()
            });
        let arn = StateMachineExecutions::new(client(&[&rule]))
            .start("arn:sm", "manual-close-9", r#"{"trigger":"manual-close"}"#)
            .await
            .unwrap();
        assert_eq!(arn, "arn:exec");
    }

    #[tokio::test]
    async fn stop_sends_error_and_cause_and_a_missing_execution_is_not_retryable() {
        let rule = mock!(Client::stop_execution)
            .match_requests(|r| {
                r.execution_arn() == Some("arn:exec")
                    && r.error() == Some("ManualClose")
                    && r.cause() == Some("operator")
            })
            .sequence()
            .output(|| {
                StopExecutionOutput::builder()
                    .stop_date(DateTime::from_millis(1))
                    .build()
                    .unwrap()
            })
            .error(|| {
                StopExecutionError::ExecutionDoesNotExist(
                    ExecutionDoesNotExist::builder()
                        .meta(
                            ErrorMetadata::builder()
                                .code("ExecutionDoesNotExist")
                                .build(),
                        )
                        .build(),
                )
            })
            .build();
        let executions = StateMachineExecutions::new(client(&[&rule]));
        executions
            .stop("arn:exec", "ManualClose", "operator")
            .await
            .unwrap();
        let err = executions
            .stop("arn:exec", "ManualClose", "operator")
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_deref(), err.operation),
            (
                FaultKind::NonRetryable,
                Some("ExecutionDoesNotExist"),
                "StopExecution"
            )
        );
    }

    fn history_event(id: i64, kind: HistoryEventType) -> HistoryEventBuilder {
        HistoryEvent::builder()
            .id(id)
            .timestamp(DateTime::from_millis(id))
            .r#type(kind)
    }

    #[tokio::test]
    async fn recent_history_asks_newest_first_with_data_and_keeps_states_and_documents() {
        let rule = mock!(Client::get_execution_history)
            .match_requests(|r| {
                r.execution_arn() == Some("arn:exec")
                    && r.reverse_order() == Some(true)
                    && r.include_execution_data() == Some(true)
                    && r.max_results() == Some(200)
            })
            .then_output(|| {
                let entered = StateEnteredEventDetails::builder()
                    .name("Back Off")
                    .input(r#"{"waitSeconds":30}"#);
                let exited = StateExitedEventDetails::builder()
                    .name("Compute Backoff")
                    .output(r#"{"state":{}}"#);
                let started =
                    ExecutionStartedEventDetails::builder().input(r#"{"trigger":"manual"}"#);
                let events = [
                    history_event(3, HistoryEventType::WaitStateEntered)
                        .state_entered_event_details(entered.build().unwrap()),
                    history_event(2, HistoryEventType::TaskStateExited)
                        .state_exited_event_details(exited.build().unwrap()),
                    history_event(1, HistoryEventType::ExecutionStarted)
                        .execution_started_event_details(started.build()),
                ];
                GetExecutionHistoryOutput::builder()
                    .set_events(Some(
                        events.into_iter().map(|e| e.build().unwrap()).collect(),
                    ))
                    .build()
                    .unwrap()
            });
        let history = StateMachineExecutions::new(client(&[&rule]))
            .recent_history("arn:exec", 200)
            .await
            .unwrap();
        let entry =
            |event_type: &str, entered: Option<&str>, document: &str, at: u64| HistoryEntry {
                event_type: event_type.into(),
                entered_state: entered.map(str::to_owned),
                document: Some(document.into()),
                timestamp_ms: at,
            };
        assert_eq!(
            history,
            vec![
                entry(
                    "WaitStateEntered",
                    Some("Back Off"),
                    r#"{"waitSeconds":30}"#,
                    3
                ),
                entry("TaskStateExited", None, r#"{"state":{}}"#, 2),
                entry("ExecutionStarted", None, r#"{"trigger":"manual"}"#, 1),
            ]
        );
    }

    #[tokio::test]
    async fn recent_lists_every_status_newest_first_with_start_and_stop() {
        let rule = mock!(Client::list_executions)
            .match_requests(|r| {
                r.state_machine_arn() == Some("arn:sm")
                    && r.status_filter().is_none()
                    && r.max_results() == Some(20)
            })
            .then_output(|| {
                let item = |name: &str, status: ExecutionStatus, start: i64, stop: Option<i64>| {
                    ExecutionListItem::builder()
                        .execution_arn(format!("arn:exec:{name}"))
                        .state_machine_arn("arn:sm")
                        .name(name)
                        .status(status)
                        .start_date(DateTime::from_millis(start))
                        .set_stop_date(stop.map(DateTime::from_millis))
                        .build()
                        .unwrap()
                };
                ListExecutionsOutput::builder()
                    .executions(item("old", ExecutionStatus::Succeeded, 1_000, Some(9_000)))
                    .executions(item("new", ExecutionStatus::Running, 5_000, None))
                    .build()
                    .unwrap()
            });
        let recent = StateMachineExecutions::new(client(&[&rule]))
            .recent("arn:sm", 20)
            .await
            .unwrap();
        assert_eq!(
            recent,
            vec![
                ExecutionSummary {
                    arn: "arn:exec:new".into(),
                    status: "RUNNING".into(),
                    start_ms: 5_000,
                    stop_ms: None
                },
                ExecutionSummary {
                    arn: "arn:exec:old".into(),
                    status: "SUCCEEDED".into(),
                    start_ms: 1_000,
                    stop_ms: Some(9_000)
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
