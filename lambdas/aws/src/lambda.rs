//! Lambda adapters: [`LambdaEsm`] (the [`EventSourceMappings`] port, plus
//! [`LambdaEsm::describe`] for the operator CLI) and [`LambdaConsumer`] (the [`Consumer`] port, a
//! synchronous `Invoke`).

use aws_sdk_lambda::Client;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;
use aws_sdk_lambda::operation::update_event_source_mapping::UpdateEventSourceMappingOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    FilterCriteria, FilterCriteriaError, InvocationType, ProvisionedPollerConfig, ScalingConfig,
};
use breaker_core::ports::{
    Consumer, EsmSnapshot, EsmState, EventSourceMappings, InvokeResult, PollerConfig, PortError,
    Scaling,
};
use tracing::debug;

use crate::error::{classify, malformed};
use crate::timeouts::invoke_timeouts;

/// Event-source mappings through one Lambda client.
#[derive(Debug, Clone)]
pub struct LambdaEsm {
    client: Client,
}

/// An event-source mapping as an operator sees it: the breaker's snapshot and the batch size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsmDescription {
    /// State and scaling.
    pub snapshot: EsmSnapshot,
    /// `BatchSize`, when the service reports one.
    pub batch_size: Option<u32>,
}

impl LambdaEsm {
    /// Wrap `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `GetEventSourceMapping`: the snapshot [`EventSourceMappings::get`] returns, and the batch
    /// size.
    pub async fn describe(&self, uuid: &str) -> Result<EsmDescription, PortError> {
        const OP: &str = "GetEventSourceMapping";
        let out = self
            .client
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let snapshot = snapshot_of_get(OP, uuid, &out)?;
        Ok(EsmDescription {
            batch_size: snapshot.batch_size,
            snapshot,
        })
    }

    async fn update(
        &self,
        uuid: &str,
        enabled: Option<bool>,
        scaling: Option<Scaling>,
    ) -> Result<EsmSnapshot, PortError> {
        const OP: &str = "UpdateEventSourceMapping";
        let mut req = self
            .client
            .update_event_source_mapping()
            .uuid(uuid)
            .set_enabled(enabled);
        match scaling {
            // An empty ScalingConfig removes the limit.
            Some(Scaling::Concurrency(limit)) => {
                let config = ScalingConfig::builder()
                    .set_maximum_concurrency(limit.map(to_i32))
                    .build();
                req = req.scaling_config(config);
            }
            // Provisioned mode: the poller configuration alone (AWS refuses a ScalingConfig
            // with MaximumConcurrency on such a mapping).
            Some(Scaling::Pollers(pollers)) => {
                let config = ProvisionedPollerConfig::builder()
                    .set_minimum_pollers(pollers.minimum_pollers.map(to_i32))
                    .set_maximum_pollers(pollers.maximum_pollers.map(to_i32))
                    .build();
                req = req.provisioned_poller_config(config);
            }
            None => {}
        }
        let out = req.send().await.map_err(|e| classify(OP, e))?;
        debug!(esm = uuid, ?enabled, ?scaling, state = ?out.state(), "event-source mapping updated");
        snapshot_of_update(OP, uuid, &out)
    }
}

impl EventSourceMappings for LambdaEsm {
    async fn get(&self, uuid: &str) -> Result<EsmSnapshot, PortError> {
        Ok(self.describe(uuid).await?.snapshot)
    }

    async fn disable(&self, uuid: &str) -> Result<EsmSnapshot, PortError> {
        self.update(uuid, Some(false), None).await
    }

    async fn enable(&self, uuid: &str, scaling: Scaling) -> Result<EsmSnapshot, PortError> {
        self.update(uuid, Some(true), Some(scaling)).await
    }

    async fn update_scaling(&self, uuid: &str, scaling: Scaling) -> Result<EsmSnapshot, PortError> {
        self.update(uuid, None, Some(scaling)).await
    }
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// What `GetEventSourceMapping` and `UpdateEventSourceMapping` both answer, as the snapshot needs
/// it.
struct Reported<'a> {
    uuid: &'a str,
    state: Option<&'a str>,
    scaling: Option<&'a ScalingConfig>,
    function_arn: Option<&'a str>,
    event_source_arn: Option<&'a str>,
    pollers: Option<&'a ProvisionedPollerConfig>,
    filter: Option<&'a FilterCriteria>,
    filter_error: Option<&'a FilterCriteriaError>,
    batch_size: Option<i32>,
}

fn snapshot(operation: &'static str, reported: Reported<'_>) -> Result<EsmSnapshot, PortError> {
    let Reported {
        uuid,
        state,
        scaling,
        function_arn,
        event_source_arn,
        pollers,
        filter,
        filter_error,
        batch_size,
    } = reported;
    let state = state.ok_or_else(|| {
        malformed(
            operation,
            format!("event-source mapping {uuid} has no State"),
        )
    })?;
    let maximum_concurrency = scaling
        .and_then(ScalingConfig::maximum_concurrency)
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| malformed(operation, format!("MaximumConcurrency {v} is negative")))
        })
        .transpose()?;
    let pollers_field = |v: Option<i32>, name: &str| {
        v.map(|n| {
            u32::try_from(n).map_err(|_| malformed(operation, format!("{name} {n} is negative")))
        })
        .transpose()
    };
    let provisioned_poller_config = match pollers {
        Some(p) => Some(PollerConfig {
            minimum_pollers: pollers_field(p.minimum_pollers(), "MinimumPollers")?,
            maximum_pollers: pollers_field(p.maximum_pollers(), "MaximumPollers")?,
        }),
        None => None,
    };
    Ok(EsmSnapshot {
        uuid: uuid.to_owned(),
        state: EsmState::parse(state),
        maximum_concurrency,
        function_arn: function_arn.map(str::to_owned),
        event_source_arn: event_source_arn.map(str::to_owned),
        provisioned_poller_config,
        // A filter without a pattern is kept as "" so that applying it fails, never matches all.
        filter_patterns: filter
            .map(|f| {
                f.filters()
                    .iter()
                    .map(|p| p.pattern().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        filter_criteria_error: filter_error.map(|e| {
            format!(
                "{}: {}",
                e.error_code().unwrap_or("FilterCriteriaError"),
                e.message().unwrap_or("(no message)")
            )
        }),
        batch_size: batch_size.and_then(|b| u32::try_from(b).ok()),
    })
}

fn snapshot_of_get(
    op: &'static str,
    uuid: &str,
    out: &GetEventSourceMappingOutput,
) -> Result<EsmSnapshot, PortError> {
    snapshot(
        op,
        Reported {
            uuid: out.uuid().unwrap_or(uuid),
            state: out.state(),
            scaling: out.scaling_config(),
            function_arn: out.function_arn(),
            event_source_arn: out.event_source_arn(),
            pollers: out.provisioned_poller_config(),
            filter: out.filter_criteria(),
            filter_error: out.filter_criteria_error(),
            batch_size: out.batch_size(),
        },
    )
}

fn snapshot_of_update(
    op: &'static str,
    uuid: &str,
    out: &UpdateEventSourceMappingOutput,
) -> Result<EsmSnapshot, PortError> {
    snapshot(
        op,
        Reported {
            uuid: out.uuid().unwrap_or(uuid),
            state: out.state(),
            scaling: out.scaling_config(),
            function_arn: out.function_arn(),
            event_source_arn: out.event_source_arn(),
            pollers: out.provisioned_poller_config(),
            filter: out.filter_criteria(),
            filter_error: out.filter_criteria_error(),
            batch_size: out.batch_size(),
        },
    )
}

/// The consumer function, invoked synchronously through one Lambda client. The SDK never
/// retries the `Invoke` (whatever the client's retry configuration): an attempt that failed may
/// have reached the consumer, and the probe must not hand it the same messages twice.
#[derive(Debug, Clone)]
pub struct LambdaConsumer {
    client: Client,
    function_name: String,
    timeouts: TimeoutConfig,
}

impl LambdaConsumer {
    /// Invoke `function_name` through `client`; an invoke gives up `consumer_timeout_seconds`
    /// plus the invoke margin after it started ([`crate::timeouts::invoke_timeouts`]), whatever
    /// the client's own timeouts.
    pub fn new(
        client: Client,
        function_name: impl Into<String>,
        consumer_timeout_seconds: u32,
    ) -> Self {
        Self {
            client,
            function_name: function_name.into(),
            timeouts: invoke_timeouts(consumer_timeout_seconds),
        }
    }
}

impl Consumer for LambdaConsumer {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeResult, PortError> {
        const OP: &str = "Invoke";
        let out = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .customize()
            // Never retried by the SDK: a 5xx or a timeout may come after the consumer already
            // ran, and a second attempt would process the probed messages twice. The probe
            // settles the messages and the workflow probes again later instead.
            .config_override(
                aws_sdk_lambda::Config::builder()
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(self.timeouts.clone()),
            )
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(InvokeResult {
            status: u16::try_from(out.status_code()).unwrap_or(0),
            function_error: out.function_error().map(str::to_owned),
            payload: out
                .payload()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::error::ErrorMetadata;
    use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingError;
    use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
    use aws_sdk_lambda::operation::update_event_source_mapping::UpdateEventSourceMappingError;
    use aws_sdk_lambda::types::Filter;
    use aws_sdk_lambda::types::error::{
        ResourceInUseException, ResourceNotFoundException, TooManyRequestsException,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use breaker_core::ports::FaultKind;

    use super::*;

    /// Error metadata as the SDK's deserializer sets it from the response.
    fn code(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message("from service")
            .build()
    }

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_lambda, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    const CONSUMER_ARN: &str =
        "arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer:live";
    const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:orders";

    /// `GetEventSourceMapping` of `esm-1` answering with this state, limit and batch size.
    fn mapping_rule(state: &'static str, limit: i32, batch_size: i32) -> Rule {
        mock!(Client::get_event_source_mapping)
            .match_requests(|r| r.uuid() == Some("esm-1"))
            .then_output(move || {
                GetEventSourceMappingOutput::builder()
                    .uuid("esm-1")
                    .state(state)
                    .batch_size(batch_size)
                    .function_arn(CONSUMER_ARN)
                    .event_source_arn(QUEUE_ARN)
                    .scaling_config(ScalingConfig::builder().maximum_concurrency(limit).build())
                    .build()
            })
    }

    #[tokio::test]
    async fn get_reports_the_filter_patterns_in_order() {
        let rule = mock!(Client::get_event_source_mapping).then_output(|| {
            GetEventSourceMappingOutput::builder()
                .uuid("esm-1")
                .state("Disabled")
                .filter_criteria(
                    FilterCriteria::builder()
                        .filters(
                            Filter::builder()
                                .pattern(r#"{"body":{"kind":["a"]}}"#)
                                .build(),
                        )
                        .filters(Filter::builder().build())
                        .build(),
                )
                .build()
        });
        let got = LambdaEsm::new(client(&[&rule])).get("esm-1").await.unwrap();
        assert_eq!(
            got.filter_patterns,
            vec![r#"{"body":{"kind":["a"]}}"#.to_owned(), String::new()],
            "a filter without a pattern stays visible (and is refused when applied)"
        );
        assert_eq!(got.filter_criteria_error, None);
    }

    #[tokio::test]
    async fn get_reports_filter_criteria_it_cannot_read() {
        let rule = mock!(Client::get_event_source_mapping).then_output(|| {
            GetEventSourceMappingOutput::builder()
                .uuid("esm-1")
                .state("Disabled")
                .filter_criteria_error(
                    FilterCriteriaError::builder()
                        .error_code("KMSAccessDeniedException")
                        .message("no kms:Decrypt")
                        .build(),
                )
                .build()
        });
        let got = LambdaEsm::new(client(&[&rule])).get("esm-1").await.unwrap();
        assert!(got.filter_patterns.is_empty());
        assert_eq!(
            got.filter_criteria_error.as_deref(),
            Some("KMSAccessDeniedException: no kms:Decrypt")
        );
    }

    #[tokio::test]
    async fn get_reports_a_provisioned_mappings_poller_configuration() {
        let rule = mock!(Client::get_event_source_mapping).then_output(|| {
            GetEventSourceMappingOutput::builder()
                .uuid("esm-1")
                .state("Enabled")
                .provisioned_poller_config(
                    ProvisionedPollerConfig::builder()
                        .minimum_pollers(2)
                        .maximum_pollers(20)
                        .build(),
                )
                .build()
        });
        let esm = LambdaEsm::new(client(&[&rule]));
        let got = esm.get("esm-1").await.unwrap();
        assert_eq!(
            got.provisioned_poller_config,
            Some(PollerConfig {
                minimum_pollers: Some(2),
                maximum_pollers: Some(20),
            })
        );
        assert_eq!(got.maximum_concurrency, None);
    }

    #[tokio::test]
    async fn get_reports_state_and_maximum_concurrency() {
        let rule = mapping_rule("Enabled", 50, 10);
        let esm = LambdaEsm::new(client(&[&rule]));
        let snap = esm.get("esm-1").await.unwrap();
        assert_eq!(
            snap,
            EsmSnapshot {
                uuid: "esm-1".into(),
                state: EsmState::Enabled,
                maximum_concurrency: Some(50),
                function_arn: Some(CONSUMER_ARN.into()),
                event_source_arn: Some(QUEUE_ARN.into()),
                provisioned_poller_config: None,
                filter_patterns: Vec::new(),
                filter_criteria_error: None,
                batch_size: Some(10),
            }
        );
    }

    #[tokio::test]
    async fn get_without_scaling_config_means_no_limit() {
        let rule = mock!(Client::get_event_source_mapping).then_output(|| {
            GetEventSourceMappingOutput::builder()
                .uuid("esm-1")
                .state("Disabling")
                .build()
        });
        let snap = LambdaEsm::new(client(&[&rule])).get("esm-1").await.unwrap();
        assert_eq!(
            (snap.state, snap.maximum_concurrency),
            (EsmState::Disabling, None)
        );
        assert_eq!(
            (snap.function_arn, snap.event_source_arn),
            (None, None),
            "not reported is None, never a guess"
        );
    }

    #[tokio::test]
    async fn update_reports_the_function_and_the_queue_of_the_mapping() {
        let rule = mock!(Client::update_event_source_mapping).then_output(|| {
            UpdateEventSourceMappingOutput::builder()
                .uuid("esm-1")
                .state("Disabling")
                .function_arn(CONSUMER_ARN)
                .event_source_arn(QUEUE_ARN)
                .build()
        });
        let snap = LambdaEsm::new(client(&[&rule]))
            .disable("esm-1")
            .await
            .unwrap();
        assert_eq!(
            (
                snap.function_arn.as_deref(),
                snap.event_source_arn.as_deref()
            ),
            (Some(CONSUMER_ARN), Some(QUEUE_ARN))
        );
    }

    #[tokio::test]
    async fn disable_sends_enabled_false_and_leaves_scaling_alone() {
        let rule = mock!(Client::update_event_source_mapping)
            .match_requests(|r| {
                r.uuid() == Some("esm-1")
                    && r.enabled() == Some(false)
                    && r.scaling_config().is_none()
            })
            .then_output(|| {
                UpdateEventSourceMappingOutput::builder()
                    .uuid("esm-1")
                    .state("Disabling")
                    .build()
            });
        let snap = LambdaEsm::new(client(&[&rule]))
            .disable("esm-1")
            .await
            .unwrap();
        assert_eq!(snap.state, EsmState::Disabling);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn enable_sets_enabled_and_scaling_in_one_update() {
        let rule = mock!(Client::update_event_source_mapping)
            .match_requests(|r| {
                r.enabled() == Some(true)
                    && r.scaling_config().and_then(|s| s.maximum_concurrency()) == Some(2)
            })
            .then_output(|| {
                UpdateEventSourceMappingOutput::builder()
                    .uuid("esm-1")
                    .state("Enabling")
                    .build()
            });
        LambdaEsm::new(client(&[&rule]))
            .enable("esm-1", Some(2).into())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_poller_configuration_is_sent_alone_without_a_scaling_config() {
        let rule = mock!(Client::update_event_source_mapping)
            .match_requests(|r| {
                r.enabled() == Some(true)
                    && r.scaling_config().is_none()
                    && r.provisioned_poller_config().is_some_and(|p| {
                        (p.minimum_pollers(), p.maximum_pollers()) == (Some(3), Some(40))
                    })
            })
            .then_output(|| {
                UpdateEventSourceMappingOutput::builder()
                    .uuid("esm-1")
                    .state("Enabling")
                    .provisioned_poller_config(
                        ProvisionedPollerConfig::builder()
                            .minimum_pollers(3)
                            .maximum_pollers(40)
                            .build(),
                    )
                    .build()
            });
        let pollers = PollerConfig {
            minimum_pollers: Some(3),
            maximum_pollers: Some(40),
        };
        let snap = LambdaEsm::new(client(&[&rule]))
            .enable("esm-1", Scaling::Pollers(pollers))
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(snap.provisioned_poller_config, Some(pollers));
    }

    #[tokio::test]
    async fn no_limit_is_sent_as_an_empty_scaling_config() {
        let rule = mock!(Client::update_event_source_mapping)
            .match_requests(|r| {
                r.enabled().is_none()
                    && r.scaling_config()
                        .is_some_and(|s| s.maximum_concurrency().is_none())
            })
            .then_output(|| {
                UpdateEventSourceMappingOutput::builder()
                    .uuid("esm-1")
                    .state("Updating")
                    .build()
            });
        LambdaEsm::new(client(&[&rule]))
            .update_scaling("esm-1", None.into())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn resource_in_use_is_classified_in_use() {
        let rule = mock!(Client::update_event_source_mapping).then_error(|| {
            UpdateEventSourceMappingError::ResourceInUseException(
                ResourceInUseException::builder()
                    .message("busy")
                    .meta(code("ResourceInUseException"))
                    .build(),
            )
        });
        let err = LambdaEsm::new(client(&[&rule]))
            .disable("esm-1")
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::InUse);
        assert_eq!(err.code.as_deref(), Some("ResourceInUseException"));
        assert_eq!(err.operation, "UpdateEventSourceMapping");
    }

    #[tokio::test]
    async fn resource_in_use_from_the_wire_is_classified_in_use() {
        let rule = mock!(Client::update_event_source_mapping)
            .sequence()
            .http_response(|| {
                let mut response = aws_sdk_lambda::config::http::HttpResponse::new(
                    409.try_into().unwrap(),
                    aws_smithy_types::body::SdkBody::from(
                        r#"{"Type":"User","message":"The resource is in use"}"#,
                    ),
                );
                response.headers_mut().insert(
                    "X-Amzn-ErrorType",
                    "ResourceInUseException:http://internal.amazon.com/",
                );
                response
            })
            .build();
        let err = LambdaEsm::new(client(&[&rule]))
            .update_scaling("esm-1", Some(4).into())
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_deref()),
            (FaultKind::InUse, Some("ResourceInUseException")),
            "{err}"
        );
    }

    /// The error `get` returns when `GetEventSourceMapping` answers with `rule`.
    async fn get_error(rule: Rule) -> PortError {
        LambdaEsm::new(client(&[&rule]))
            .get("esm-1")
            .await
            .unwrap_err()
    }

    /// The error `get` returns when `GetEventSourceMapping` fails with the modelled `exception`
    /// wrapped in its `variant`.
    async fn get_modelled_error<X: Clone + Send + Sync + 'static>(
        variant: fn(X) -> GetEventSourceMappingError,
        exception: X,
    ) -> PortError {
        get_error(
            mock!(Client::get_event_source_mapping).then_error(move || variant(exception.clone())),
        )
        .await
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let err = get_modelled_error(
            GetEventSourceMappingError::TooManyRequestsException,
            TooManyRequestsException::builder()
                .meta(code("TooManyRequestsException"))
                .build(),
        )
        .await;
        assert_eq!(err.kind, FaultKind::Retryable);
    }

    #[tokio::test]
    async fn server_error_is_retryable() {
        let err = get_error(
            mock!(Client::get_event_source_mapping)
                .sequence()
                .http_status(503, None)
                .build(),
        )
        .await;
        assert_eq!(err.kind, FaultKind::Retryable, "{err}");
    }

    #[tokio::test]
    async fn missing_mapping_is_not_retryable() {
        let err = get_modelled_error(
            GetEventSourceMappingError::ResourceNotFoundException,
            ResourceNotFoundException::builder()
                .meta(code("ResourceNotFoundException"))
                .build(),
        )
        .await;
        assert_eq!(err.kind, FaultKind::NonRetryable);
    }

    #[tokio::test]
    async fn describe_adds_the_batch_size_to_the_snapshot() {
        let rule = mapping_rule("Disabled", 5, 10);
        let description = LambdaEsm::new(client(&[&rule]))
            .describe("esm-1")
            .await
            .unwrap();
        assert_eq!(
            description,
            EsmDescription {
                snapshot: EsmSnapshot {
                    uuid: "esm-1".into(),
                    state: EsmState::Disabled,
                    maximum_concurrency: Some(5),
                    function_arn: Some(CONSUMER_ARN.into()),
                    event_source_arn: Some(QUEUE_ARN.into()),
                    provisioned_poller_config: None,
                    filter_patterns: Vec::new(),
                    filter_criteria_error: None,
                    batch_size: Some(10),
                },
                batch_size: Some(10)
            }
        );
    }

    #[tokio::test]
    async fn invoke_is_synchronous_and_returns_function_error_and_payload() {
        let rule = mock!(Client::invoke)
            .match_requests(|r| {
                r.function_name() == Some("consumer")
                    && r.invocation_type() == Some(&InvocationType::RequestResponse)
                    && r.payload().map(|p| p.as_ref()) == Some(b"{\"Records\":[]}".as_slice())
            })
            .then_output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .function_error("Unhandled")
                    .payload(Blob::new(b"{\"errorMessage\":\"boom\"}".to_vec()))
                    .build()
            });
        let consumer = LambdaConsumer::new(client(&[&rule]), "consumer", 60);
        let out = consumer.invoke(b"{\"Records\":[]}".to_vec()).await.unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(out.payload, b"{\"errorMessage\":\"boom\"}");
    }

    /// The error `LambdaConsumer::invoke` returns when Lambda answers `status` with error `code`
    /// in the `X-Amzn-ErrorType` header (`None`: no header, e.g. a front end's bare answer), as it
    /// does on the wire.
    async fn invoke_error_from_wire(status: u16, code: Option<&'static str>) -> PortError {
        let rule = mock!(Client::invoke)
            .sequence()
            .http_response(move || {
                let mut response = aws_sdk_lambda::config::http::HttpResponse::new(
                    status.try_into().unwrap(),
                    aws_smithy_types::body::SdkBody::from(
                        r#"{"Type":"User","message":"from the service"}"#,
                    ),
                );
                if let Some(code) = code {
                    response.headers_mut().insert(
                        "X-Amzn-ErrorType",
                        format!("{code}:http://internal.amazon.com/"),
                    );
                }
                response
            })
            .build();
        LambdaConsumer::new(client(&[&rule]), "consumer", 60)
            .invoke(b"{}".to_vec())
            .await
            .unwrap_err()
    }

    /// Asserts that every `(status, code)` Invoke answer is classified `kind`, naming each case
    /// that is not.
    async fn assert_invoke_errors_are(kind: FaultKind, cases: &[(u16, Option<&'static str>)]) {
        let mut wrong = Vec::new();
        for &(status, code) in cases {
            let err = invoke_error_from_wire(status, code).await;
            if err.kind != kind || err.code.as_deref() != code || err.operation != "Invoke" {
                wrong.push(format!("{status} {code:?} -> {err}"));
            }
        }
        assert!(wrong.is_empty(), "not {kind:?}: {wrong:#?}");
    }

    #[tokio::test]
    async fn invoke_errors_that_waiting_will_not_heal_are_non_retryable() {
        // Status codes as documented for Invoke; several configuration errors come as 502.
        assert_invoke_errors_are(
            FaultKind::NonRetryable,
            &[
                (403, Some("AccessDeniedException")),
                (404, Some("ResourceNotFoundException")),
                (413, Some("RequestTooLargeException")),
                (413, Some("SerializedRequestEntityTooLargeException")),
                (413, None),
                (400, Some("InvalidRequestContentException")),
                (415, Some("UnsupportedMediaTypeException")),
                (502, Some("KMSAccessDeniedException")),
                (502, Some("KMSDisabledException")),
                (502, Some("KMSInvalidStateException")),
                (502, Some("KMSNotFoundException")),
                (502, Some("InvalidRuntimeException")),
                (502, Some("InvalidZipFileException")),
                (502, Some("InvalidSecurityGroupIDException")),
                (502, Some("InvalidSubnetIDException")),
                (502, Some("EC2AccessDeniedException")),
                (403, Some("EFSMountFailureException")),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn transient_invoke_errors_are_retryable() {
        assert_invoke_errors_are(
            FaultKind::Retryable,
            &[
                (429, Some("TooManyRequestsException")),
                (500, Some("ServiceException")),
                (503, None),
                (502, Some("ResourceNotReadyException")),
                (502, Some("EC2ThrottledException")),
                (502, Some("EC2UnexpectedException")),
                (502, Some("ENILimitReachedException")),
                (502, Some("SubnetIPAddressLimitReachedException")),
                (408, Some("EFSMountConnectivityException")),
                (408, Some("EFSMountTimeoutException")),
                (408, Some("SnapStartTimeoutException")),
                (409, Some("SnapStartNotReadyException")),
                (408, None),
            ],
        )
        .await;
    }

    /// A client that retries like the SDK's default (three attempts), with a tiny backoff.
    fn retrying_client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_lambda, RuleMode::Sequential, rules, |c| c
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ))
    }

    #[tokio::test]
    async fn invoke_is_never_retried_by_the_sdk_even_when_the_client_retries() {
        // A 5xx (or a timeout) may come after the consumer already ran: a second Invoke would
        // process the probed messages twice.
        let rule = mock!(Client::invoke)
            .sequence()
            .http_status(503, None)
            .output(|| InvokeOutput::builder().status_code(200).build())
            .build();
        let err = LambdaConsumer::new(retrying_client(&[&rule]), "consumer", 60)
            .invoke(b"{}".to_vec())
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable, "{err}");
        assert_eq!(rule.num_calls(), 1, "the consumer was invoked twice");
    }

    #[tokio::test]
    async fn the_mappings_keep_the_sdk_retries_of_the_shared_client() {
        let rule = mock!(Client::get_event_source_mapping)
            .sequence()
            .http_status(503, None)
            .output(|| {
                GetEventSourceMappingOutput::builder()
                    .uuid("esm-1")
                    .state("Enabled")
                    .build()
            })
            .build();
        let snap = LambdaEsm::new(retrying_client(&[&rule]))
            .get("esm-1")
            .await
            .unwrap();
        assert_eq!(snap.state, EsmState::Enabled);
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn invoke_throttling_is_retryable() {
        let rule = mock!(Client::invoke).then_error(|| {
            InvokeError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .meta(code("TooManyRequestsException"))
                    .build(),
            )
        });
        let err = LambdaConsumer::new(client(&[&rule]), "consumer", 60)
            .invoke(vec![])
            .await
            .unwrap_err();
        assert_eq!(err.kind, FaultKind::Retryable);
    }
}
