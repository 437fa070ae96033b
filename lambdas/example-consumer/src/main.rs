//! `example-consumer`: the example stack's SQS consumer. See the library docs for the flag.

use example_consumer::{Config, FlaggedDownstream, SsmFlagSource, handle_batch};
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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        handle_batch(event.payload, event.context.deadline(), downstream)
    }))
    .await
}
