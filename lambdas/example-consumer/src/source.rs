//! Where the flag lives: an SSM String parameter, read through [`FlagSource`] and cached by
//! [`CachedFlag`] so a busy consumer makes at most one `GetParameter` per TTL per environment.

use std::future::Future;
use std::time::Duration;

use aws_sdk_ssm::error::{DisplayErrorContext, SdkError};
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::flag::Flag;

/// Reading the flag's raw text failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The parameter does not exist.
    #[error("flag parameter {0} does not exist")]
    NotFound(String),
    /// Any other failure (throttling, network, permissions), with the service's message.
    #[error("reading flag parameter {name} failed: {message}")]
    Service {
        /// The parameter.
        name: String,
        /// What the SDK reported.
        message: String,
    },
}

/// Something that holds the flag's raw text.
pub trait FlagSource: Send + Sync {
    /// The current raw value.
    fn read(&self) -> impl Future<Output = Result<String, SourceError>> + Send;
}

/// The flag as an SSM String parameter.
#[derive(Debug, Clone)]
pub struct SsmFlagSource {
    client: aws_sdk_ssm::Client,
    name: String,
}

impl SsmFlagSource {
    /// Reads parameter `name` with `client`.
    pub fn new(client: aws_sdk_ssm::Client, name: String) -> Self {
        Self { client, name }
    }
}

impl FlagSource for SsmFlagSource {
    async fn read(&self) -> Result<String, SourceError> {
        let result = self.client.get_parameter().name(&self.name).send().await;
        match result {
            Ok(out) => out
                .parameter
                .and_then(|p| p.value)
                .ok_or_else(|| SourceError::Service {
                    name: self.name.clone(),
                    message: "GetParameter returned no value".into(),
                }),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), GetParameterError::ParameterNotFound(_)) =>
            {
                Err(SourceError::NotFound(self.name.clone()))
            }
            Err(e) => Err(SourceError::Service {
                name: self.name.clone(),
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}

struct Cached {
    flag: Flag,
    read_at: Instant,
}

/// The flag, re-read from its source at most once per `ttl`.
///
/// A value that cannot be read or parsed does not change the behaviour: the last good value is
/// kept (and `ok` before any good read), a warning is logged, and the next read is attempted after
/// another `ttl`, so a typo in the parameter neither crashes the consumer nor trips the breaker.
pub struct CachedFlag<S> {
    source: S,
    ttl: Duration,
    cached: Mutex<Option<Cached>>,
}

impl<S: FlagSource> CachedFlag<S> {
    /// Caches `source` for `ttl`.
    pub fn new(source: S, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The flag now: cached if read less than `ttl` ago, otherwise read again.
    pub async fn current(&self) -> Flag {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.read_at.elapsed() < self.ttl
        {
            return c.flag;
        }
        let previous = cached.as_ref().map(|c| c.flag);
        let fallback = previous.unwrap_or(Flag::Ok);
        let flag = match self.source.read().await {
            Ok(raw) => match raw.parse::<Flag>() {
                Ok(flag) => {
                    if previous != Some(flag) {
                        info!(flag = %flag, previous = ?previous.map(|f| f.to_string()), "failure flag changed");
                    }
                    flag
                }
                Err(e) => {
                    warn!(error = %e, keeping = %fallback, "ignoring invalid failure flag");
                    fallback
                }
            },
            Err(e) => {
                warn!(error = %e, keeping = %fallback, "could not read failure flag");
                fallback
            }
        };
        *cached = Some(Cached {
            flag,
            read_at: Instant::now(),
        });
        flag
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    /// Returns the scripted values in order (the last one repeats) and counts reads.
    struct Script {
        values: Vec<Result<String, SourceError>>,
        reads: Arc<AtomicUsize>,
    }

    impl FlagSource for Script {
        async fn read(&self) -> Result<String, SourceError> {
            let n = self.reads.fetch_add(1, Ordering::SeqCst);
            self.values[n.min(self.values.len() - 1)].clone()
        }
    }

    fn script(values: Vec<Result<&str, SourceError>>) -> (Script, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let values = values.into_iter().map(|v| v.map(str::to_owned)).collect();
        (
            Script {
                values,
                reads: reads.clone(),
            },
            reads,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn reuses_the_value_within_the_ttl_and_rereads_after() {
        let (source, reads) = script(vec![Ok("ok"), Ok("fail")]);
        let flag = CachedFlag::new(source, Duration::from_secs(2));
        assert_eq!(flag.current().await, Flag::Ok);
        tokio::time::advance(Duration::from_millis(1_900)).await;
        assert_eq!(flag.current().await, Flag::Ok);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(flag.current().await, Flag::Fail);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_reads_every_time() {
        let (source, reads) = script(vec![Ok("ok"), Ok("slow"), Ok("percent:5")]);
        let flag = CachedFlag::new(source, Duration::ZERO);
        assert_eq!(flag.current().await, Flag::Ok);
        assert_eq!(flag.current().await, Flag::Slow);
        assert_eq!(flag.current().await, Flag::Percent(5));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_value_keeps_the_last_good_flag() {
        let (source, _) = script(vec![Ok("fail"), Ok("fial")]);
        let flag = CachedFlag::new(source, Duration::from_secs(1));
        assert_eq!(flag.current().await, Flag::Fail);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(flag.current().await, Flag::Fail);
    }

    #[tokio::test(start_paused = true)]
    async fn read_error_before_any_good_value_means_ok_and_is_retried_after_the_ttl() {
        let (source, reads) = script(vec![
            Err(SourceError::Service {
                name: "/f".into(),
                message: "throttled".into(),
            }),
            Ok("fail"),
        ]);
        let flag = CachedFlag::new(source, Duration::from_secs(2));
        assert_eq!(flag.current().await, Flag::Ok);
        assert_eq!(flag.current().await, Flag::Ok);
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "a failed read is not retried within the ttl"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(flag.current().await, Flag::Fail);
    }

    #[tokio::test]
    async fn ssm_source_returns_the_parameter_value() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter)
            .match_requests(|r| r.name() == Some("/orders/flag"))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name("/orders/flag")
                            .value("percent:20")
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule]);
        let source = SsmFlagSource::new(client, "/orders/flag".into());
        assert_eq!(source.read().await, Ok("percent:20".to_owned()));
    }

    #[tokio::test]
    async fn ssm_source_reports_a_missing_parameter_by_name() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let client = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule]);
        let source = SsmFlagSource::new(client, "/orders/flag".into());
        assert_eq!(
            source.read().await,
            Err(SourceError::NotFound("/orders/flag".into()))
        );
    }

    #[tokio::test]
    async fn ssm_source_reports_other_errors_with_the_service_message() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter)
            .then_error(|| GetParameterError::unhandled("Rate exceeded"));
        let client = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule]);
        let source = SsmFlagSource::new(client, "/orders/flag".into());
        match source.read().await {
            Err(SourceError::Service { name, message }) => {
                assert_eq!(name, "/orders/flag");
                assert!(message.contains("Rate exceeded"), "{message}");
            }
            other => panic!("expected a service error, got {other:?}"),
        }
    }
}
