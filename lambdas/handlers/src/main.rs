//! `bootstrap`: one binary for every breaker function; Lambda's `_HANDLER` picks the handler.
//! Configuration and SDK clients are built once per execution environment. An unknown handler
//! or a bad configuration fails every invocation with `NonRetryable` (visible to Step Functions)
//! instead of crashing the runtime.

use breaker_aws::cloudwatch::{CloudWatchAlarm, ConsumerMetrics};
use breaker_aws::dynamodb::DynamoCircuitRecords;
use breaker_aws::eventbridge::EventBus;
use breaker_aws::lambda::{LambdaConsumer, LambdaEsm};
use breaker_aws::sfn::StateMachineExecutions;
use breaker_aws::sqs::SqsQueue;
use breaker_core::config::Config;
use breaker_core::ports::SystemClock;
use breaker_handlers::app::{App, HandlerName};
use breaker_handlers::error::HandlerError;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A setup failure is reported on every invocation (as `NonRetryable`), not as a crash.
    let setup = setup().await.map_err(|e| {
        tracing::error!(error = %e, "bootstrap cannot serve this function");
        Diagnostic::from(e)
    });
    let setup = &setup;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (name, app) = setup.as_ref().map_err(Clone::clone)?;
        app.dispatch(*name, event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}

breaker_handlers::ports_bundle! {
    /// The ports as the AWS adapters (SDK clients built once per execution environment).
    #[derive(Debug, Clone)]
    struct AwsPorts {
        esm: LambdaEsm,
        consumer: LambdaConsumer,
        queue: SqsQueue,
        alarms: CloudWatchAlarm,
        metrics: ConsumerMetrics,
        events: EventBus,
        executions: StateMachineExecutions,
        records: DynamoCircuitRecords,
        clock: SystemClock,
    }
}

async fn setup() -> Result<(HandlerName, App<AwsPorts>), HandlerError> {
    let name: HandlerName = std::env::var("_HANDLER").unwrap_or_default().parse()?;
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let ports = AwsPorts {
        esm: LambdaEsm::new(lambda.clone()),
        consumer: LambdaConsumer::new(lambda, &config.consumer_function_name),
        queue: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.queue_url),
        alarms: CloudWatchAlarm::new(cloudwatch.clone(), &config.alarm_name),
        metrics: ConsumerMetrics::new(cloudwatch, &config.consumer_function_name),
        events: EventBus::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            &config.event_bus_name,
        ),
        executions: StateMachineExecutions::new(aws_sdk_sfn::Client::new(&sdk)),
        records: DynamoCircuitRecords::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.circuit_table_name,
            &config.circuit_name,
        ),
        clock: SystemClock,
    };
    Ok((name, App::new(config, ports)))
}
