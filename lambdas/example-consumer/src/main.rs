//! `example-consumer`: the example stack's SQS consumer. See the library docs for the flag.

use std::time::{SystemTime, UNIX_EPOCH};

use example_consumer::{
    Config, FlaggedDownstream, SsmFlagSource, handle_batch, partial_failure_line,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let source = SsmFlagSource::new(
        aws_sdk_ssm::Client::new(&aws),
        config.flag_parameter_name.clone(),
    );
    let downstream = &FlaggedDownstream::new(source, &config);
    let function_name = config.function_name.as_str();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        let response = handle_batch(event.payload, event.context.deadline(), downstream).await?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let failed = response.batch_item_failures.len();
        // Straight to stdout, one line: CloudWatch Logs extracts the metrics (EMF).
        if let Some(line) = partial_failure_line(function_name, now_ms, failed) {
            println!("{line}");
        }
        Ok::<_, example_consumer::BatchError>(response)
    }))
    .await
}
