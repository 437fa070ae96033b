//! `bootstrap`: one binary for every breaker function; Lambda's `_HANDLER` picks the handler.
//! Configuration and SDK clients are built once per execution environment. An unknown handler
//! or a bad configuration fails every invocation with `NonRetryable` (visible to Step Functions)
//! instead of crashing the runtime.

use breaker_core::config::Config;
use breaker_handlers::app::{App, HandlerName};
use breaker_handlers::aws::{AwsPorts, aws_ports, load_sdk_config};
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

async fn setup() -> Result<(HandlerName, App<AwsPorts>), HandlerError> {
    let name: HandlerName = std::env::var("_HANDLER").unwrap_or_default().parse()?;
    let config = Config::from_env()?;
    let sdk = load_sdk_config().await;
    let ports = aws_ports(&sdk, &config);
    Ok((name, App::new(config, ports)))
}
