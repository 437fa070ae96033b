//! CloudWatch adapters: [`CloudWatchAlarm`] (the [`Alarms`] port, plus
//! [`CloudWatchAlarm::describe`] for the operator CLI) and [`ConsumerMetrics`] (the [`Metrics`]
//! port: `Errors` and `Invocations` of the consumer where its [`ConsumerMetricSource`] says —
//! `AWS/Lambda` under the dimensions Lambda publishes them with (`FunctionName=<fn>`, plus
//! `Resource=<fn>:<qualifier>` for an alias or a version), or the telemetry extension's per-second
//! `SqsCircuitBreaker/Consumer` metrics under `FunctionName=<fn>` — plus the consumer's
//! `PartialFailures`, counted as errors, and Lambda's `Throttles` (one-minute only: an invocation
//! Lambda refused never ran, so the extension cannot count it),
//! [`breaker_core::mapping::consumer_metric_source`]).

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use breaker_core::mapping::{
    CONSUMER_NAMESPACE, ConsumerMetricSource, LAMBDA_NAMESPACE, MetricDimensions,
};
use breaker_core::policy::LAMBDA_METRIC_PERIOD_SECONDS;
use breaker_core::ports::{AlarmState, Alarms, ConsumerStats, Metrics, PortError};

use crate::error::{classify, malformed};

/// The trigger alarm.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarm {
    client: Client,
    alarm_name: String,
}

/// The alarm's state and CloudWatch's reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmDescription {
    /// The state.
    pub state: AlarmState,
    /// `StateReason`, when CloudWatch gives one.
    pub reason: Option<String>,
}

impl CloudWatchAlarm {
    /// The alarm `alarm_name` through `client`.
    pub fn new(client: Client, alarm_name: impl Into<String>) -> Self {
        Self {
            client,
            alarm_name: alarm_name.into(),
        }
    }

    /// `DescribeAlarms` of this alarm (metric or composite): its state and the reason.
    pub async fn describe(&self) -> Result<AlarmDescription, PortError> {
        const OP: &str = "DescribeAlarms";
        let out = self
            .client
            .describe_alarms()
            .alarm_names(&self.alarm_name)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let name = Some(self.alarm_name.as_str());
        let (value, reason) = out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == name)
            .map(|a| (a.state_value(), a.state_reason()))
            .or_else(|| {
                out.composite_alarms()
                    .iter()
                    .find(|a| a.alarm_name() == name)
                    .map(|a| (a.state_value(), a.state_reason()))
            })
            .ok_or_else(|| malformed(OP, format!("alarm {} not found", self.alarm_name)))?;
        let state = match value {
            Some(StateValue::Ok) => AlarmState::Ok,
            Some(StateValue::Alarm) => AlarmState::Alarm,
            Some(StateValue::InsufficientData) => AlarmState::InsufficientData,
            other => {
                return Err(malformed(
                    OP,
                    format!("alarm {} has an unknown state {other:?}", self.alarm_name),
                ));
            }
        };
        Ok(AlarmDescription {
            state,
            reason: reason.map(str::to_owned),
        })
    }
}

impl Alarms for CloudWatchAlarm {
    async fn set_ok(&self, reason: &str) -> Result<(), PortError> {
        self.client
            .set_alarm_state()
            .alarm_name(&self.alarm_name)
            .state_value(StateValue::Ok)
            .state_reason(reason)
            .send()
            .await
            .map_err(|e| classify("SetAlarmState", e))?;
        Ok(())
    }

    async fn state(&self) -> Result<AlarmState, PortError> {
        Ok(self.describe().await?.state)
    }
}

/// The consumer's metrics.
#[derive(Debug, Clone)]
pub struct ConsumerMetrics {
    client: Client,
    source: ConsumerMetricSource,
    period_seconds: u64,
}

impl ConsumerMetrics {
    /// Metrics of the consumer where `source` says (CloudWatch matches dimensions exactly: an
    /// alias needs `Resource` in `AWS/Lambda`), in periods of `period_seconds`, through `client`.
    pub fn new(client: Client, source: ConsumerMetricSource, period_seconds: u64) -> Self {
        Self {
            client,
            source,
            period_seconds,
        }
    }

    fn query(
        &self,
        id: &str,
        namespace: &str,
        metric_name: &str,
        dims: &MetricDimensions,
    ) -> MetricDataQuery {
        self.query_in(id, namespace, metric_name, dims, self.period_seconds)
    }

    fn query_in(
        &self,
        id: &str,
        namespace: &str,
        metric_name: &str,
        dims: &MetricDimensions,
        period_seconds: u64,
    ) -> MetricDataQuery {
        let dimension =
            |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
        let mut dimensions = vec![dimension("FunctionName", &dims.function_name)];
        if let Some(resource) = &dims.resource {
            dimensions.push(dimension("Resource", resource));
        }
        let metric = Metric::builder()
            .namespace(namespace)
            .metric_name(metric_name)
            .set_dimensions(Some(dimensions))
            .build();
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(i32::try_from(period_seconds).unwrap_or(i32::MAX))
                    .stat("Sum")
                    .build(),
            )
            .return_data(true)
            .build()
    }
}

impl Metrics for ConsumerMetrics {
    async fn consumer_stats(
        &self,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<ConsumerStats, PortError> {
        const OP: &str = "GetMetricData";
        let mut stats = ConsumerStats::default();
        let mut next_token: Option<String> = None;
        let source = &self.source;
        let (namespace, dims) = (source.namespace, &source.dimensions);
        loop {
            let out = self
                .client
                .get_metric_data()
                .metric_data_queries(self.query("errors", namespace, "Errors", dims))
                .metric_data_queries(self.query("invocations", namespace, "Invocations", dims))
                // Items a consumer reports failed (`batchItemFailures`) are no Lambda `Errors`:
                // an invocation that reported any counts as one error, as in the alarm.
                .metric_data_queries(self.query(
                    "partialFailures",
                    CONSUMER_NAMESPACE,
                    "PartialFailures",
                    &source.partial_failures,
                ))
                // Lambda's `Throttles`, per minute whatever the resolution (a shorter period
                // on a one-minute metric has nothing more to show).
                .metric_data_queries(self.query_in(
                    "throttles",
                    LAMBDA_NAMESPACE,
                    "Throttles",
                    &source.throttles,
                    self.period_seconds.max(LAMBDA_METRIC_PERIOD_SECONDS),
                ))
                .start_time(DateTime::from_millis(since_ms as i64))
                .end_time(DateTime::from_millis(until_ms.max(since_ms + 1) as i64))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for result in out.metric_data_results() {
                let sum: f64 = result.values().iter().sum();
                match result.id() {
                    Some("errors" | "partialFailures") => stats.errors += sum,
                    Some("invocations") => stats.invocations += sum,
                    Some("throttles") => stats.throttles += sum,
                    _ => {}
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => return Ok(stats),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::config::retry::RetryConfig;
    use aws_sdk_cloudwatch::error::ErrorMetadata;
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataInput, GetMetricDataOutput};
    use aws_sdk_cloudwatch::operation::set_alarm_state::{SetAlarmStateError, SetAlarmStateOutput};
    use aws_sdk_cloudwatch::types::error::ResourceNotFound;
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, MetricDataResult};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::mapping::{MetricResolution, consumer_metric_source};
    use breaker_core::ports::FaultKind;

    use super::*;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    #[tokio::test]
    async fn set_ok_sets_the_named_alarm_to_ok() {
        let rule = mock!(Client::set_alarm_state)
            .match_requests(|r| {
                r.alarm_name() == Some("orders-errors") && r.state_value() == Some(&StateValue::Ok)
            })
            .then_output(|| SetAlarmStateOutput::builder().build());
        CloudWatchAlarm::new(client(&[&rule]), "orders-errors")
            .set_ok("circuit closed")
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn set_ok_on_a_missing_alarm_is_not_retryable() {
        let rule = mock!(Client::set_alarm_state).then_error(|| {
            SetAlarmStateError::ResourceNotFound(ResourceNotFound::builder().build())
        });
        let err = CloudWatchAlarm::new(client(&[&rule]), "x")
            .set_ok("r")
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::NonRetryable);
    }

    #[tokio::test]
    async fn throttled_set_ok_is_retryable() {
        let rule = mock!(Client::set_alarm_state).then_error(|| {
            SetAlarmStateError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = CloudWatchAlarm::new(client(&[&rule]), "x")
            .set_ok("r")
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable, "{err}");
    }

    #[tokio::test]
    async fn state_reads_the_alarm_state() {
        let rule = mock!(Client::describe_alarms).then_output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("orders-errors")
                        .state_value(StateValue::Alarm)
                        .build(),
                )
                .build()
        });
        let state = CloudWatchAlarm::new(client(&[&rule]), "orders-errors")
            .state()
            .await
            .unwrap();
        assert_eq!(state, AlarmState::Alarm);
    }

    #[tokio::test]
    async fn describe_reads_a_composite_alarm_with_its_reason_and_reports_a_missing_one() {
        let rule = mock!(Client::describe_alarms)
            .match_requests(|r| r.alarm_names() == ["orders-errors"])
            .sequence()
            .output(|| {
                DescribeAlarmsOutput::builder()
                    .composite_alarms(
                        CompositeAlarm::builder()
                            .alarm_name("orders-errors")
                            .state_value(StateValue::Ok)
                            .state_reason("reset by the breaker")
                            .build(),
                    )
                    .build()
            })
            .output(|| DescribeAlarmsOutput::builder().build())
            .build();
        let alarm = CloudWatchAlarm::new(client(&[&rule]), "orders-errors");
        assert_eq!(
            alarm.describe().await.unwrap(),
            AlarmDescription {
                state: AlarmState::Ok,
                reason: Some("reset by the breaker".into())
            }
        );
        let err = alarm.describe().await.unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (FaultKind::NonRetryable, "alarm orders-errors not found")
        );
    }

    fn plain(name: &str) -> ConsumerMetricSource {
        breaker_core::mapping::consumer_metric_source(name, MetricResolution::Standard)
    }

    /// One query as `(namespace, metric, dimensions, period)`.
    type Query = (String, String, Vec<(String, String)>, i32);

    /// Each query of a request.
    fn queries(r: &GetMetricDataInput) -> Vec<Query> {
        r.metric_data_queries()
            .iter()
            .map(|q| {
                let stat = q.metric_stat().unwrap();
                let metric = stat.metric().unwrap();
                let dims = metric
                    .dimensions()
                    .iter()
                    .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
                    .collect();
                (
                    metric.namespace().unwrap().to_owned(),
                    metric.metric_name().unwrap().to_owned(),
                    dims,
                    stat.period().unwrap(),
                )
            })
            .collect()
    }

    /// Issue 15: at high resolution the relapse check reads what the construct's alarm reads —
    /// the telemetry extension's per-second `Errors`/`Invocations` under `FunctionName` — and in
    /// both resolutions the consumer's `PartialFailures` (an invocation that reported failed
    /// items), which Lambda's `Errors` never counts.
    #[tokio::test]
    async fn a_high_resolution_consumer_is_queried_in_the_extension_namespace_with_partial_failures()
     {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let f = || vec![("FunctionName".to_owned(), "orders".to_owned())];
                queries(r)
                    == vec![
                        (
                            "SqsCircuitBreaker/Consumer".into(),
                            "Errors".into(),
                            f(),
                            10,
                        ),
                        (
                            "SqsCircuitBreaker/Consumer".into(),
                            "Invocations".into(),
                            f(),
                            10,
                        ),
                        (
                            "SqsCircuitBreaker/Consumer".into(),
                            "PartialFailures".into(),
                            f(),
                            10,
                        ),
                        (
                            "AWS/Lambda".into(),
                            "Throttles".into(),
                            vec![
                                ("FunctionName".to_owned(), "orders".to_owned()),
                                ("Resource".to_owned(), "orders:live".to_owned()),
                            ],
                            60,
                        ),
                    ]
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder().id("errors").values(1.0).build(),
                    )
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("partialFailures")
                            .values(2.0)
                            .values(3.0)
                            .build(),
                    )
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("invocations")
                            .values(12.0)
                            .build(),
                    )
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("throttles")
                            .values(4.0)
                            .build(),
                    )
                    .build()
            });
        let source = consumer_metric_source("orders:live", MetricResolution::High);
        let stats = ConsumerMetrics::new(client(&[&rule]), source, 10)
            .consumer_stats(600_000, 660_000)
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(
            stats,
            ConsumerStats {
                errors: 6.0,
                invocations: 12.0,
                throttles: 4.0
            }
        );
    }

    /// Issue 13 item 4: on main the query named `FunctionName=<fn>:<alias>`, which Lambda never
    /// publishes, so the ramp saw no invocations of an alias consumer and never a relapse.
    #[tokio::test]
    async fn an_alias_consumer_is_queried_by_function_name_and_resource_in_its_periods() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let queries = r.metric_data_queries();
                let dims = |q: &MetricDataQuery| {
                    let stat = q.metric_stat().unwrap();
                    let pairs: Vec<(String, String)> = stat
                        .metric()
                        .unwrap()
                        .dimensions()
                        .iter()
                        .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
                        .collect();
                    (pairs, stat.period())
                };
                let want = vec![
                    ("FunctionName".to_owned(), "orders".to_owned()),
                    ("Resource".to_owned(), "orders:live".to_owned()),
                ];
                let bare = vec![("FunctionName".to_owned(), "orders".to_owned())];
                queries.len() == 4
                    && queries[..2]
                        .iter()
                        .all(|q| dims(q) == (want.clone(), Some(60)))
                    && dims(&queries[2]) == (bare, Some(60))
                    && dims(&queries[3]) == (want.clone(), Some(60))
                    && r.start_time() == Some(&DateTime::from_millis(600_000))
                    && r.end_time() == Some(&DateTime::from_millis(660_000))
            })
            .then_output(|| GetMetricDataOutput::builder().build());
        let dimensions = plain("arn:aws:lambda:eu-west-1:123456789012:function:orders:live");
        ConsumerMetrics::new(client(&[&rule]), dimensions, 60)
            .consumer_stats(600_000, 660_000)
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn consumer_stats_sums_errors_invocations_and_throttles_over_pages() {
        let rule = mock!(Client::get_metric_data)
            .sequence()
            .output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("errors")
                            .values(2.0)
                            .values(1.0)
                            .build(),
                    )
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("invocations")
                            .values(10.0)
                            .build(),
                    )
                    .next_token("page-2")
                    .build()
            })
            .output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("invocations")
                            .values(5.0)
                            .build(),
                    )
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("throttles")
                            .values(1.0)
                            .values(2.0)
                            .build(),
                    )
                    .build()
            })
            .build();
        let stats = ConsumerMetrics::new(client(&[&rule]), plain("consumer"), 60)
            .consumer_stats(0, 120_000)
            .await
            .unwrap();
        assert_eq!(
            stats,
            ConsumerStats {
                errors: 3.0,
                invocations: 15.0,
                throttles: 3.0
            }
        );
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn metrics_server_error_is_retryable() {
        let rule = mock!(Client::get_metric_data)
            .sequence()
            .http_status(500, None)
            .build();
        let err = ConsumerMetrics::new(client(&[&rule]), plain("c"), 60)
            .consumer_stats(0, 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable);
    }
}
