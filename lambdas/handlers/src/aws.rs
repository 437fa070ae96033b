//! The ports as the AWS adapters: [`AwsPorts`], built once per execution environment from the
//! loaded SDK configuration by [`aws_ports`].

use aws_config::{ConfigLoader, SdkConfig};
use breaker_aws::cloudwatch::{CloudWatchAlarm, ConsumerMetrics};
use breaker_aws::dynamodb::DynamoCircuitRecords;
use breaker_aws::eventbridge::EventBus;
use breaker_aws::lambda::{LambdaConsumer, LambdaEsm};
use breaker_aws::sfn::StateMachineExecutions;
use breaker_aws::sqs::SqsQueue;
use breaker_aws::timeouts::sdk_timeouts;
use breaker_core::config::Config;
use breaker_core::ports::SystemClock;

crate::ports_bundle! {
    /// The ports as the AWS adapters (SDK clients built once per execution environment).
    #[derive(Debug, Clone)]
    pub struct AwsPorts {
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

/// The loader of the SDK configuration the handlers use: the standard chain (environment,
/// `AWS_ENDPOINT_URL`), every call with operation timeouts ([`sdk_timeouts`]) so that a hung call
/// fails as `Retryable` inside the handler's own timeout.
pub fn sdk_loader() -> ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(sdk_timeouts())
}

/// The SDK configuration the handlers use ([`sdk_loader`], loaded).
pub async fn load_sdk_config() -> SdkConfig {
    sdk_loader().load().await
}

/// Every port as an AWS adapter, the SDK clients built from `sdk` for `config`'s circuit.
pub fn aws_ports(sdk: &SdkConfig, config: &Config) -> AwsPorts {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    AwsPorts {
        esm: LambdaEsm::new(lambda.clone()),
        consumer: LambdaConsumer::new(
            lambda,
            &config.consumer_function_name,
            config.consumer_timeout_seconds,
        ),
        queue: SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url),
        alarms: CloudWatchAlarm::new(cloudwatch.clone(), &config.alarm_name),
        metrics: ConsumerMetrics::new(
            cloudwatch,
            breaker_core::mapping::consumer_metric_source(
                &config.consumer_function_name,
                config.consumer_metric_resolution,
            ),
            config.consumer_metric_period_seconds,
        ),
        events: EventBus::new(
            aws_sdk_eventbridge::Client::new(sdk),
            &config.event_bus_name,
        ),
        executions: StateMachineExecutions::new(aws_sdk_sfn::Client::new(sdk)),
        records: DynamoCircuitRecords::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.circuit_table_name,
            &config.circuit_name,
        ),
        clock: SystemClock,
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use breaker_aws::error::is_unanswered;
    use breaker_core::ports::{Consumer, Metrics, PortError, Queue};
    use tokio::time::Instant;

    use super::*;
    use crate::ports::Ports;
    use crate::testing::config;

    /// An endpoint that accepts connections (counting them) and never answers.
    fn hung_endpoint() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        (url, connections)
    }

    /// An endpoint that records every request it receives (head and body), then hangs up
    /// without answering.
    fn recording_endpoint() -> (String, Arc<std::sync::Mutex<Vec<u8>>>) {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    recorded.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        (url, received)
    }

    /// What the relapse check asks CloudWatch for, as sent on the wire (`GetMetricData` in CBOR:
    /// strings travel verbatim).
    async fn relapse_query(extra: &[(&str, &str)]) -> String {
        let (endpoint, received) = recording_endpoint();
        let ports = ports_at(&endpoint, extra).await;
        let result = ports.metrics().consumer_stats(600_000, 660_000).await;
        assert!(result.is_err(), "the endpoint never answers");
        let bytes = received.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Issue 15: with `CONSUMER_METRIC_RESOLUTION=high` (the construct's default when it adds
    /// the telemetry layer) the relapse check reads the extension's per-second
    /// `SqsCircuitBreaker/Consumer` metrics under `FunctionName` (what the extension publishes),
    /// and in both resolutions it counts the consumer's `PartialFailures` as errors, as the alarm
    /// does. On main it read `AWS/Lambda` only, whatever the alarm read.
    #[tokio::test]
    async fn the_relapse_check_reads_the_metrics_of_the_resolution_and_partial_failures() {
        let high = relapse_query(&[
            ("CONSUMER_METRIC_RESOLUTION", "high"),
            ("CONSUMER_METRIC_PERIOD_SECONDS", "10"),
            ("CONSUMER_FUNCTION_NAME", "orders-consumer:live"),
        ])
        .await;
        assert!(high.contains("GetMetricData"), "{high}");
        assert!(high.contains("SqsCircuitBreaker/Consumer"), "{high}");
        assert!(high.contains("PartialFailures"), "{high}");
        // Only `Throttles` is read from `AWS/Lambda` (under the alias's dimensions): a refused
        // invocation never ran, so the extension cannot count it (issue 16).
        assert!(high.contains("Throttles"), "{high}");
        assert_eq!(
            high.matches("AWS/Lambda").count(),
            high.matches("Throttles").count(),
            "{high}"
        );
        let standard = relapse_query(&[("CONSUMER_FUNCTION_NAME", "orders-consumer:live")]).await;
        assert!(standard.contains("AWS/Lambda"), "{standard}");
        assert!(standard.contains("orders-consumer:live"), "{standard}");
        assert!(standard.contains("PartialFailures"), "{standard}");
    }

    async fn ports_at(endpoint: &str, extra: &[(&str, &str)]) -> AwsPorts {
        let sdk = sdk_loader()
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "AKID", "SECRET", None, None, "test",
            ))
            .load()
            .await;
        aws_ports(&sdk, &config(extra))
    }

    /// Run `call` on the paused clock; its error and how long (virtual time) it took. A call
    /// still hanging after an hour fails the test.
    async fn timed<T: std::fmt::Debug>(
        call: impl Future<Output = Result<T, PortError>>,
    ) -> (PortError, Duration) {
        let start = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(3600), call)
            .await
            .expect("the call hung for an hour: no operation timeout");
        (result.unwrap_err(), start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_queue_call_fails_as_unanswered_well_inside_the_handlers_timeout() {
        let (endpoint, _) = hung_endpoint();
        let ports = ports_at(&endpoint, &[]).await;
        let (err, took) = timed(ports.queue().receive(1, 2, 960)).await;
        assert!(is_unanswered(&err), "{err}");
        assert!(took <= Duration::from_secs(30), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_invoke_fails_once_after_the_consumer_timeout_and_its_margin() {
        let (endpoint, connections) = hung_endpoint();
        let ports = ports_at(&endpoint, &[("CONSUMER_TIMEOUT_SECONDS", "100")]).await;
        let (err, took) = timed(ports.consumer().invoke(b"{}".to_vec())).await;
        assert!(is_unanswered(&err), "{err}");
        // Not cut short by the ordinary operation timeout: the consumer may run 100 s.
        assert!(
            (Duration::from_secs(100)..=Duration::from_secs(115)).contains(&took),
            "{took:?}"
        );
        assert!(connections.load(Ordering::SeqCst) <= 1, "invoked twice");
    }
}
