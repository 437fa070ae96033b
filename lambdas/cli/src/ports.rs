//! The capabilities the commands need, one small trait per AWS service. [`crate::aws`] implements
//! them with the SDK; tests use [`testing::Fake`].

use std::collections::BTreeMap;
use std::future::Future;

use breaker_core::record::CircuitRecord;
use serde_json::Value;

use crate::error::CliError;
use crate::stack::StackOutput;
use crate::status::{AlarmStatus, Execution, MappingStatus, Progress, QueueDepth};

/// CloudFormation: stacks' outputs.
pub trait StackOutputs: Send + Sync {
    /// The outputs of `stack`.
    fn outputs(
        &self,
        stack: &str,
    ) -> impl Future<Output = Result<Vec<StackOutput>, CliError>> + Send;
    /// Every stack of the account and region with its outputs, by stack name.
    fn all_stacks(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<StackOutput>>, CliError>> + Send;
}

/// Lambda: the consumer's event-source mapping.
pub trait Mappings: Send + Sync {
    /// State and scaling of mapping `uuid`.
    fn mapping(&self, uuid: &str) -> impl Future<Output = Result<MappingStatus, CliError>> + Send;
}

/// DynamoDB: the durable circuit record the breaker's handlers keep.
pub trait Records: Send + Sync {
    /// The record of `circuit` in `table` (a consistent read); `None` if never written.
    fn record(
        &self,
        table: &str,
        circuit: &str,
    ) -> impl Future<Output = Result<Option<CircuitRecord>, CliError>> + Send;
}

/// CloudWatch: the trigger alarm.
pub trait Alarms: Send + Sync {
    /// State of alarm `name`.
    fn alarm(&self, name: &str) -> impl Future<Output = Result<AlarmStatus, CliError>> + Send;
}

/// Step Functions: recovery executions.
pub trait Recoveries: Send + Sync {
    /// RUNNING executions of `state_machine_arn`, oldest first.
    fn running(
        &self,
        state_machine_arn: &str,
    ) -> impl Future<Output = Result<Vec<Execution>, CliError>> + Send;
    /// The state an execution is in and the latest circuit state it carried.
    fn progress(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<Progress, CliError>> + Send;
    /// Starts an execution named `name` with `input`; returns its ARN.
    fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> impl Future<Output = Result<String, CliError>> + Send;
    /// Stops an execution with an error and cause.
    fn stop(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<(), CliError>> + Send;
}

/// SQS: depths and test orders.
pub trait Queues: Send + Sync {
    /// Approximate message counts of queue `url`.
    fn depth(&self, url: &str) -> impl Future<Output = Result<QueueDepth, CliError>> + Send;
    /// Sends up to 10 `(entry id, body)` messages in one batch; returns the ids that failed.
    fn send_batch(
        &self,
        url: &str,
        entries: Vec<(String, String)>,
    ) -> impl Future<Output = Result<Vec<String>, CliError>> + Send;
}

/// SSM: the example consumer's failure flag.
pub trait FlagStore: Send + Sync {
    /// Current raw value of parameter `name`.
    fn get(&self, name: &str) -> impl Future<Output = Result<String, CliError>> + Send;
    /// Overwrites parameter `name`.
    fn put(&self, name: &str, value: &str) -> impl Future<Output = Result<(), CliError>> + Send;
}

/// In-memory implementations for tests.
#[cfg(test)]
pub mod testing {
    use std::sync::Mutex;

    use super::*;

    /// One fake cloud implementing every port; record of calls in `log`.
    #[derive(Default)]
    pub struct Fake {
        pub outputs: BTreeMap<String, Vec<StackOutput>>,
        pub mapping: Option<MappingStatus>,
        pub alarm: Option<AlarmStatus>,
        pub running: Mutex<Vec<Execution>>,
        pub progress: BTreeMap<String, Progress>,
        pub depths: BTreeMap<String, QueueDepth>,
        pub flags: Mutex<BTreeMap<String, String>>,
        /// Entry ids `send_batch` reports as failed.
        pub failing_sends: Vec<String>,
        pub sent: Mutex<Vec<(String, String)>>,
        pub log: Mutex<Vec<String>>,
        /// The circuit record, if the table holds one.
        pub record: Option<CircuitRecord>,
    }

    impl Records for Fake {
        async fn record(
            &self,
            table: &str,
            circuit: &str,
        ) -> Result<Option<CircuitRecord>, CliError> {
            self.note(format!("record {table} {circuit}"));
            Ok(self.record.clone())
        }
    }

    impl Fake {
        fn note(&self, s: String) {
            self.log.lock().unwrap().push(s);
        }
        pub fn calls(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    fn missing(operation: &'static str, what: &str) -> CliError {
        CliError::Service {
            operation,
            code: "ResourceNotFoundException".into(),
            message: format!("{what} not found"),
        }
    }

    impl StackOutputs for Fake {
        async fn all_stacks(&self) -> Result<BTreeMap<String, Vec<StackOutput>>, CliError> {
            Ok(self.outputs.clone())
        }
        async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CliError> {
            self.outputs
                .get(stack)
                .cloned()
                .ok_or(CliError::NoSuchStack {
                    stack: stack.into(),
                    region: "us-east-1".into(),
                })
        }
    }

    impl Mappings for Fake {
        async fn mapping(&self, uuid: &str) -> Result<MappingStatus, CliError> {
            self.mapping
                .clone()
                .filter(|m| m.uuid == uuid)
                .ok_or_else(|| missing("GetEventSourceMapping", uuid))
        }
    }

    impl Alarms for Fake {
        async fn alarm(&self, name: &str) -> Result<AlarmStatus, CliError> {
            self.alarm
                .clone()
                .filter(|a| a.name == name)
                .ok_or_else(|| missing("DescribeAlarms", name))
        }
    }

    impl Recoveries for Fake {
        async fn running(&self, _sm: &str) -> Result<Vec<Execution>, CliError> {
            Ok(self.running.lock().unwrap().clone())
        }
        async fn progress(&self, arn: &str) -> Result<Progress, CliError> {
            Ok(self.progress.get(arn).cloned().unwrap_or_default())
        }
        async fn start(&self, sm: &str, name: &str, input: &Value) -> Result<String, CliError> {
            self.note(format!("start {name} {input}"));
            let arn = format!("{}:{name}", sm.replace(":stateMachine:", ":execution:"));
            self.running.lock().unwrap().push(Execution {
                arn: arn.clone(),
                name: name.into(),
                started_at_ms: 0,
            });
            Ok(arn)
        }
        async fn stop(&self, arn: &str, error: &str, cause: &str) -> Result<(), CliError> {
            self.note(format!("stop {arn} {error}: {cause}"));
            self.running.lock().unwrap().retain(|e| e.arn != arn);
            Ok(())
        }
    }

    impl Queues for Fake {
        async fn depth(&self, url: &str) -> Result<QueueDepth, CliError> {
            self.depths
                .get(url)
                .cloned()
                .ok_or_else(|| missing("GetQueueAttributes", url))
        }
        async fn send_batch(
            &self,
            _url: &str,
            entries: Vec<(String, String)>,
        ) -> Result<Vec<String>, CliError> {
            assert!(entries.len() <= 10, "a batch holds at most 10 entries");
            self.note(format!("send_batch {}", entries.len()));
            let mut failed = vec![];
            for (id, body) in entries {
                if self.failing_sends.contains(&id) {
                    failed.push(id);
                } else {
                    self.sent.lock().unwrap().push((id, body));
                }
            }
            Ok(failed)
        }
    }

    impl FlagStore for Fake {
        async fn get(&self, name: &str) -> Result<String, CliError> {
            self.flags
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .ok_or_else(|| missing("GetParameter", name))
        }
        async fn put(&self, name: &str, value: &str) -> Result<(), CliError> {
            self.note(format!("put {name}={value}"));
            self.flags.lock().unwrap().insert(name.into(), value.into());
            Ok(())
        }
    }
}
