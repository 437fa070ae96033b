//! Is the configured event-source mapping really the consumer's? [`verify_mapping`] compares the
//! mapping's `FunctionArn` and `EventSourceArn` (as `GetEventSourceMapping` reports them) with
//! `CONSUMER_FUNCTION_NAME` and `QUEUE_ARN`, so that a wrong `ESM_UUID` never makes the breaker
//! disable another consumer's mapping.
//!
//! The rule:
//! - `CONSUMER_FUNCTION_NAME` may be a name (`orders-consumer`), a partial ARN
//!   (`123456789012:function:orders-consumer`) or a full ARN
//!   (`arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer`), each optionally with a
//!   qualifier (`:live`, `:7`). The mapping's `FunctionArn` is a full ARN, optionally qualified.
//! - The function names must be equal, and so must whatever else the configured value spells out:
//!   the account (partial or full ARN), the region and the partition (full ARN).
//! - The qualifiers must be equal, no qualifier meaning `$LATEST`. The probe invokes exactly
//!   `CONSUMER_FUNCTION_NAME`, so it must be the code the mapping feeds: a mapping on
//!   `orders-consumer:live` does not match a configured `orders-consumer` (that would probe
//!   `$LATEST`), nor `orders-consumer:7` even if `live` points to version 7 today (an alias can be
//!   moved; resolving it would take an API call and would still race).
//! - The event source ARN must equal `QUEUE_ARN` exactly.
//! - A mapping that reports no `FunctionArn` or no `EventSourceArn`, or a value that is not a
//!   function reference, is a mismatch: nothing shows the mapping is this breaker's.
//!
//! [`metric_dimensions`] names the same consumer to CloudWatch: Lambda publishes an alias's or a
//! version's invocations under `FunctionName=<fn>, Resource=<fn>:<qualifier>` (and, for all of
//! the function's invocations, `FunctionName=<fn>`), never under `FunctionName=<fn>:<qualifier>`.
//! [`consumer_metric_source`] says where the ramp's relapse check reads the consumer's errors and
//! invocations for a [`MetricResolution`]: Lambda's own `AWS/Lambda` metrics (standard), or the
//! telemetry extension's per-second `SqsCircuitBreaker/Consumer` metrics (high), plus, in both,
//! the `PartialFailures` a consumer with `ReportBatchItemFailures` publishes.

use crate::config::Config;
use crate::ports::EsmSnapshot;

/// The qualifier an unqualified function reference invokes.
pub const LATEST: &str = "$LATEST";

/// The configured event-source mapping is not the configured consumer's, or does not read the
/// configured queue. Names the expected and the actual function and queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event-source mapping {uuid} is not this breaker's ({}): it invokes {} and reads {}, but the \
     breaker is configured for consumer {expected_function} (CONSUMER_FUNCTION_NAME) and queue \
     {expected_queue} (QUEUE_ARN)",
    differences(*.function_matches, *.queue_matches),
    shown(.actual_function.as_deref()),
    shown(.actual_queue.as_deref())
)]
pub struct MappingMismatch {
    /// The mapping's UUID.
    pub uuid: String,
    /// `CONSUMER_FUNCTION_NAME`.
    pub expected_function: String,
    /// The mapping's `FunctionArn`, if it reported one.
    pub actual_function: Option<String>,
    /// `QUEUE_ARN`.
    pub expected_queue: String,
    /// The mapping's `EventSourceArn`, if it reported one.
    pub actual_queue: Option<String>,
    /// Whether the function matched (see the module's rule).
    pub function_matches: bool,
    /// Whether the queue matched.
    pub queue_matches: bool,
}

fn differences(function_matches: bool, queue_matches: bool) -> &'static str {
    match (function_matches, queue_matches) {
        (false, false) => "wrong function and wrong queue",
        (false, true) => "wrong function",
        (true, false) => "wrong queue",
        (true, true) => "no difference",
    }
}

fn shown(value: Option<&str>) -> &str {
    value.unwrap_or("(not reported)")
}

/// Check that `snapshot` is the mapping from `config.queue_arn` to
/// `config.consumer_function_name` (see the module documentation for the matching rule).
#[expect(
    clippy::result_large_err,
    reason = "checked once per recovery, before any change; the error carries the four names it reports"
)]
pub fn verify_mapping(snapshot: &EsmSnapshot, config: &Config) -> Result<(), MappingMismatch> {
    let function_matches = snapshot
        .function_arn
        .as_deref()
        .is_some_and(|actual| function_matches(&config.consumer_function_name, actual));
    let queue_matches = snapshot.event_source_arn.as_deref() == Some(config.queue_arn.as_str());
    if function_matches && queue_matches {
        return Ok(());
    }
    Err(MappingMismatch {
        uuid: snapshot.uuid.clone(),
        expected_function: config.consumer_function_name.clone(),
        actual_function: snapshot.function_arn.clone(),
        expected_queue: config.queue_arn.clone(),
        actual_queue: snapshot.event_source_arn.clone(),
        function_matches,
        queue_matches,
    })
}

/// The CloudWatch dimensions (namespace `AWS/Lambda`) of the consumer's own invocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDimensions {
    /// `FunctionName`: the bare function name.
    pub function_name: String,
    /// `Resource`: `<fn>:<qualifier>` for an alias or a version; `None` for the unqualified
    /// function (`$LATEST`), which Lambda publishes under `FunctionName` alone.
    pub resource: Option<String>,
}

/// Namespace of Lambda's own (one-minute) metrics.
pub const LAMBDA_NAMESPACE: &str = "AWS/Lambda";

/// Namespace of the per-second consumer metrics (the fast-trip contract): `Invocations`, `Errors`,
/// `Timeouts` from the telemetry extension and `PartialFailures`, `FailedItems` from a consumer
/// that reports batch item failures, all under `FunctionName=<fn>` (the bare function name: the
/// extension and the consumer know `AWS_LAMBDA_FUNCTION_NAME`, not the alias they serve).
pub const CONSUMER_NAMESPACE: &str = "SqsCircuitBreaker/Consumer";

/// Which metrics count the consumer's invocations and errors (`CONSUMER_METRIC_RESOLUTION`, set by
/// the construct from `alarmSettings.resolution`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricResolution {
    /// The telemetry extension's per-second metrics ([`CONSUMER_NAMESPACE`]).
    High,
    /// Lambda's own one-minute metrics ([`LAMBDA_NAMESPACE`]); the default.
    #[default]
    Standard,
}

impl std::str::FromStr for MetricResolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "high" => Ok(Self::High),
            "standard" => Ok(Self::Standard),
            _ => Err("must be high or standard".into()),
        }
    }
}

/// Where the ramp reads the consumer's health: `Errors` and `Invocations` in `namespace` under
/// `dimensions`, `PartialFailures` in [`CONSUMER_NAMESPACE`] under `partial_failures`, which
/// count as errors (Lambda's `Errors` ignores items reported failed), and `Throttles` in
/// [`LAMBDA_NAMESPACE`] under `throttles` (an invocation Lambda refused never ran, so no extension
/// sees it: Lambda's one-minute metric is the only source, whatever the resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMetricSource {
    /// Namespace of `Errors` and `Invocations`.
    pub namespace: &'static str,
    /// Dimensions of `Errors` and `Invocations`.
    pub dimensions: MetricDimensions,
    /// Dimensions of `PartialFailures` (`FunctionName` alone).
    pub partial_failures: MetricDimensions,
    /// Dimensions of `Throttles` in [`LAMBDA_NAMESPACE`] (as Lambda publishes them,
    /// [`metric_dimensions`]).
    pub throttles: MetricDimensions,
}

/// The metrics of `consumer` (`CONSUMER_FUNCTION_NAME`) at `resolution`: Lambda's, under the
/// dimensions it publishes ([`metric_dimensions`]), or the extension's, under `FunctionName`
/// alone (an alias's or a version's invocations are counted with the function's).
pub fn consumer_metric_source(
    consumer: &str,
    resolution: MetricResolution,
) -> ConsumerMetricSource {
    let lambda = metric_dimensions(consumer);
    let function = MetricDimensions {
        function_name: lambda.function_name.clone(),
        resource: None,
    };
    match resolution {
        MetricResolution::High => ConsumerMetricSource {
            namespace: CONSUMER_NAMESPACE,
            dimensions: function.clone(),
            partial_failures: function,
            throttles: lambda,
        },
        MetricResolution::Standard => ConsumerMetricSource {
            namespace: LAMBDA_NAMESPACE,
            dimensions: lambda.clone(),
            partial_failures: function,
            throttles: lambda,
        },
    }
}

/// The dimensions under which Lambda publishes the invocations of `consumer`
/// (`CONSUMER_FUNCTION_NAME`: name, partial or full ARN, optionally qualified). A value that is no
/// function reference is taken as a bare name.
pub fn metric_dimensions(consumer: &str) -> MetricDimensions {
    match FunctionRef::parse(consumer) {
        Some(f) => MetricDimensions {
            function_name: f.name.to_owned(),
            resource: (f.qualifier != LATEST).then(|| format!("{}:{}", f.name, f.qualifier)),
        },
        None => MetricDimensions {
            function_name: consumer.to_owned(),
            resource: None,
        },
    }
}

/// A function reference taken apart; the parts a short form leaves out are `None`.
#[derive(Debug, PartialEq, Eq)]
struct FunctionRef<'a> {
    partition: Option<&'a str>,
    region: Option<&'a str>,
    account: Option<&'a str>,
    name: &'a str,
    qualifier: &'a str,
}

impl<'a> FunctionRef<'a> {
    /// Parse a name, partial ARN or full ARN, each optionally qualified; `None` if it is none of
    /// them.
    fn parse(s: &'a str) -> Option<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let (partition, region, account, rest) = match parts.as_slice() {
            [
                "arn",
                partition,
                "lambda",
                region,
                account,
                "function",
                rest @ ..,
            ] => (Some(*partition), Some(*region), Some(*account), rest),
            [account, "function", rest @ ..] => (None, None, Some(*account), rest),
            rest => (None, None, None, rest),
        };
        let (name, qualifier) = match rest {
            [name] => (*name, LATEST),
            [name, qualifier] => (*name, *qualifier),
            _ => return None,
        };
        Some(Self {
            partition,
            region,
            account,
            name,
            qualifier,
        })
    }

    /// True when this reference is a full ARN.
    fn is_full(&self) -> bool {
        self.partition.is_some() && self.region.is_some() && self.account.is_some()
    }
}

/// True when the mapping's `actual` function ARN is what `configured` names.
fn function_matches(configured: &str, actual: &str) -> bool {
    let (Some(configured), Some(actual)) =
        (FunctionRef::parse(configured), FunctionRef::parse(actual))
    else {
        return false;
    };
    let same_if_given = |c: Option<&str>, a: Option<&str>| c.is_none() || c == a;
    actual.is_full()
        && configured.name == actual.name
        && configured.qualifier == actual.qualifier
        && same_if_given(configured.account, actual.account)
        && same_if_given(configured.region, actual.region)
        && same_if_given(configured.partition, actual.partition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::minimal_env;
    use crate::ports::EsmState;

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:123456789012:orders";

    /// Issue 13 item 4: an alias consumer's metrics are `FunctionName=<fn>, Resource=<fn>:<alias>`.
    #[test]
    fn the_metric_source_follows_the_resolution() {
        let high = consumer_metric_source("orders:live", MetricResolution::High);
        let bare = MetricDimensions {
            function_name: "orders".into(),
            resource: None,
        };
        assert_eq!(
            high,
            ConsumerMetricSource {
                namespace: "SqsCircuitBreaker/Consumer",
                dimensions: bare.clone(),
                partial_failures: bare.clone(),
                throttles: MetricDimensions {
                    function_name: "orders".into(),
                    resource: Some("orders:live".into()),
                },
            }
        );
        let standard = consumer_metric_source("orders:live", MetricResolution::Standard);
        assert_eq!(standard.namespace, "AWS/Lambda");
        assert_eq!(standard.dimensions.resource.as_deref(), Some("orders:live"));
        assert_eq!(standard.partial_failures, bare);
        assert_eq!(standard.throttles, standard.dimensions);
        assert_eq!("high".parse(), Ok(MetricResolution::High));
        assert_eq!("standard".parse(), Ok(MetricResolution::Standard));
        assert!("High".parse::<MetricResolution>().is_err());
    }

    #[test]
    fn metric_dimensions_of_an_alias_or_version_name_the_function_and_the_resource() {
        let dims = |f: &str, r: Option<&str>| MetricDimensions {
            function_name: f.into(),
            resource: r.map(Into::into),
        };
        for (consumer, want) in [
            ("orders-consumer", dims("orders-consumer", None)),
            ("orders-consumer:$LATEST", dims("orders-consumer", None)),
            (
                "orders-consumer:live",
                dims("orders-consumer", Some("orders-consumer:live")),
            ),
            (
                "123456789012:function:orders-consumer:7",
                dims("orders-consumer", Some("orders-consumer:7")),
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer:live",
                dims("orders-consumer", Some("orders-consumer:live")),
            ),
            (FN_ARN, dims("orders-consumer", None)),
        ] {
            assert_eq!(metric_dimensions(consumer), want, "{consumer}");
        }
    }
    const FN_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer";

    fn config(consumer: &str) -> Config {
        let mut env = minimal_env();
        env.insert("CONSUMER_FUNCTION_NAME", consumer.to_owned());
        Config::from_lookup(|k| env.get(k).cloned()).unwrap()
    }

    fn mapping(function_arn: Option<&str>, event_source_arn: Option<&str>) -> EsmSnapshot {
        EsmSnapshot {
            uuid: "esm-1".into(),
            state: EsmState::Enabled,
            maximum_concurrency: None,
            function_arn: function_arn.map(str::to_owned),
            event_source_arn: event_source_arn.map(str::to_owned),
            provisioned_poller_config: None,
            filter_patterns: Vec::new(),
            filter_criteria_error: None,
            batch_size: None,
        }
    }

    #[test]
    fn the_configured_function_in_any_form_matches_the_mapping_of_that_function() {
        let alias_arn = format!("{FN_ARN}:live");
        let cases: &[(&str, &str)] = &[
            ("orders-consumer", FN_ARN),
            ("123456789012:function:orders-consumer", FN_ARN),
            (FN_ARN, FN_ARN),
            ("orders-consumer:$LATEST", FN_ARN),
            ("orders-consumer", &format!("{FN_ARN}:$LATEST")),
            ("orders-consumer:live", &alias_arn),
            ("123456789012:function:orders-consumer:live", &alias_arn),
            (&alias_arn, &alias_arn),
            ("orders-consumer:7", &format!("{FN_ARN}:7")),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders-consumer",
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders-consumer",
            ),
        ];
        for (configured, actual) in cases {
            assert_eq!(
                verify_mapping(&mapping(Some(actual), Some(QUEUE)), &config(configured)),
                Ok(()),
                "{configured} vs {actual}"
            );
        }
    }

    #[test]
    fn another_function_qualifier_account_or_region_is_a_function_mismatch() {
        let cases: &[(&str, &str)] = &[
            // another function
            (
                "orders-consumer",
                "arn:aws:lambda:eu-west-1:123456789012:function:payments",
            ),
            (
                "orders-consumer",
                "arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer-v2",
            ),
            ("Orders-Consumer", FN_ARN),
            // an alias on one side only, or different qualifiers
            ("orders-consumer", &format!("{FN_ARN}:live")),
            ("orders-consumer:live", FN_ARN),
            ("orders-consumer:live", &format!("{FN_ARN}:canary")),
            ("orders-consumer:live", &format!("{FN_ARN}:7")),
            (&format!("{FN_ARN}:live"), FN_ARN),
            // the same name in another account, region or partition
            ("210987654321:function:orders-consumer", FN_ARN),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:orders-consumer",
                FN_ARN,
            ),
            (
                "arn:aws-cn:lambda:eu-west-1:123456789012:function:orders-consumer",
                FN_ARN,
            ),
            // not function references
            ("orders-consumer", "orders-consumer"),
            (
                "orders-consumer",
                "arn:aws:lambda:eu-west-1:123456789012:layer:orders-consumer",
            ),
            ("orders-consumer", ""),
            ("orders-consumer:", FN_ARN),
            ("a:b:c:d", FN_ARN),
        ];
        for (configured, actual) in cases {
            let err = verify_mapping(&mapping(Some(actual), Some(QUEUE)), &config(configured))
                .expect_err(&format!("{configured} vs {actual} must not match"));
            assert_eq!(
                (err.function_matches, err.queue_matches),
                (false, true),
                "{configured} vs {actual}"
            );
        }
    }

    #[test]
    fn another_queue_is_a_queue_mismatch() {
        for actual in [
            "arn:aws:sqs:eu-west-1:123456789012:payments",
            "arn:aws:sqs:eu-west-1:123456789012:orders-dlq",
            "arn:aws:sqs:us-east-1:123456789012:orders",
            "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
        ] {
            let err = verify_mapping(
                &mapping(Some(FN_ARN), Some(actual)),
                &config("orders-consumer"),
            )
            .expect_err(actual);
            assert_eq!(
                (err.function_matches, err.queue_matches),
                (true, false),
                "{actual}"
            );
        }
    }

    #[test]
    fn missing_function_or_queue_is_a_mismatch() {
        let cfg = config("orders-consumer");
        let no_function = verify_mapping(&mapping(None, Some(QUEUE)), &cfg).unwrap_err();
        assert_eq!(
            (no_function.function_matches, no_function.queue_matches),
            (false, true)
        );
        let no_queue = verify_mapping(&mapping(Some(FN_ARN), None), &cfg).unwrap_err();
        assert_eq!(
            (no_queue.function_matches, no_queue.queue_matches),
            (true, false)
        );
        let neither = verify_mapping(&mapping(None, None), &cfg).unwrap_err();
        assert_eq!(
            (neither.function_matches, neither.queue_matches),
            (false, false)
        );
        assert!(
            neither
                .to_string()
                .contains("invokes (not reported) and reads (not reported)"),
            "{neither}"
        );
    }

    #[test]
    fn mismatch_names_the_expected_and_the_actual_function_and_queue() {
        let payments_fn = "arn:aws:lambda:eu-west-1:123456789012:function:payments";
        let payments_q = "arn:aws:sqs:eu-west-1:123456789012:payments";
        let err = verify_mapping(
            &mapping(Some(payments_fn), Some(payments_q)),
            &config("orders-consumer"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "event-source mapping esm-1 is not this breaker's (wrong function and wrong \
                 queue): it invokes {payments_fn} and reads {payments_q}, but the breaker is \
                 configured for consumer orders-consumer (CONSUMER_FUNCTION_NAME) and queue \
                 {QUEUE} (QUEUE_ARN)"
            )
        );
        let wrong_fn = verify_mapping(
            &mapping(Some(payments_fn), Some(QUEUE)),
            &config("orders-consumer"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            wrong_fn.contains("(wrong function)") && wrong_fn.contains(payments_fn),
            "{wrong_fn}"
        );
    }
}
