//! The batch handler: one simulated downstream call per order, governed by the failure flag. A
//! batch from a FIFO queue stops at its first failed message (it and the rest are reported failed).
//! An invocation that reports failed items prints one EMF line ([`partial_failure_line`]): Lambda
//! publishes nothing for items reported failed, so this is what lets the circuit breaker's alarm
//! count them.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::Diagnostic;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::{info, warn};

pub use breaker_core::example::Order;

use crate::config::Config;
use crate::flag::{Decide, Flag, Outcome};
use crate::source::{CachedFlag, FlagSource};

/// How long past the deadline a hanging invocation sleeps (Lambda has stopped it by then).
const PAST_DEADLINE: Duration = Duration::from_secs(1);
/// Lambda's maximum timeout: the longest a hanging invocation ever sleeps.
const MAX_HANG: Duration = Duration::from_secs(900);

/// The whole invocation failed; Lambda counts it in `Errors` and redelivers the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The flag says the downstream is down.
    #[error("downstream unavailable (flag {flag}): {records} order(s) not processed")]
    DownstreamUnavailable {
        /// The flag in force.
        flag: Flag,
        /// Records in the batch.
        records: usize,
    },
    /// The downstream hung past the function's deadline.
    #[error(
        "downstream did not answer before the function deadline: {records} order(s) not processed"
    )]
    DownstreamTimeout {
        /// Records in the batch.
        records: usize,
    },
}

impl From<BatchError> for Diagnostic {
    fn from(error: BatchError) -> Self {
        let error_type = match error {
            BatchError::DownstreamUnavailable { .. } => "DownstreamUnavailable",
            BatchError::DownstreamTimeout { .. } => "DownstreamTimeout",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// The simulated downstream: healthy or not as the flag says, with a fixed latency per call.
pub struct FlaggedDownstream<S> {
    flag: CachedFlag<S>,
    latency: Duration,
    rng: Mutex<StdRng>,
}

impl<S: FlagSource> FlaggedDownstream<S> {
    /// The production setup: flag cached for `config.flag_cache`, OS-seeded randomness.
    pub fn new(source: S, config: &Config) -> Self {
        Self::with_rng(
            source,
            config.flag_cache,
            config.downstream_latency,
            rand::make_rng(),
        )
    }

    /// Full control, for tests.
    pub fn with_rng(source: S, flag_cache: Duration, latency: Duration, rng: StdRng) -> Self {
        Self {
            flag: CachedFlag::new(source, flag_cache),
            latency,
            rng: Mutex::new(rng),
        }
    }

    /// Seeded, for reproducible tests.
    pub fn seeded(source: S, flag_cache: Duration, latency: Duration, seed: u64) -> Self {
        Self::with_rng(source, flag_cache, latency, StdRng::seed_from_u64(seed))
    }

    async fn outcome(&self) -> (Flag, Outcome) {
        let flag = self.flag.current().await;
        let outcome = flag.decide(&mut *self.rng.lock().unwrap_or_else(|p| p.into_inner()));
        (flag, outcome)
    }
}

/// Handles one SQS batch. Returns the messages that failed individually (malformed orders) in
/// `batchItemFailures`, or an error for the whole invocation when the downstream is down or hangs.
/// `deadline` is the invocation's deadline (`Context::deadline()`).
///
/// From a FIFO queue ([`is_fifo`]) the first failed message stops the batch: it and every later
/// message are reported failed, unprocessed, as AWS documents for `ReportBatchItemFailures` on
/// FIFO queues ("stop processing messages after the first failure and return all failed and
/// unprocessed messages in batchItemFailures"), so no message overtakes an earlier one of its
/// group.
pub async fn handle_batch<S: FlagSource>(
    event: SqsEvent,
    deadline: SystemTime,
    downstream: &FlaggedDownstream<S>,
) -> Result<SqsBatchResponse, BatchError> {
    let records = event.records.len();
    let mut response = SqsBatchResponse::default();
    if records == 0 {
        return Ok(response);
    }
    let (flag, outcome) = downstream.outcome().await;
    match outcome {
        Outcome::Hang => {
            let remaining = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            warn!(flag = %flag, records, remaining_ms = remaining.as_millis() as u64, "downstream hangs");
            tokio::time::sleep((remaining + PAST_DEADLINE).min(MAX_HANG)).await;
            Err(BatchError::DownstreamTimeout { records })
        }
        Outcome::Fail => {
            tokio::time::sleep(downstream.latency).await;
            warn!(flag = %flag, records, "downstream unavailable");
            Err(BatchError::DownstreamUnavailable { flag, records })
        }
        Outcome::RejectEach => {
            tokio::time::sleep(downstream.latency).await;
            for record in &event.records {
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
            warn!(flag = %flag, records, "downstream rejected every order");
            Ok(response)
        }
        Outcome::Process => {
            let fifo = event.records.iter().any(is_fifo);
            for record in &event.records {
                let message_id = record.message_id.clone().unwrap_or_default();
                if fifo && !response.batch_item_failures.is_empty() {
                    response.add_failure(message_id);
                    continue;
                }
                match parse_order(record) {
                    Ok(order) => {
                        tokio::time::sleep(downstream.latency).await;
                        info!(
                            order_id = %order.order_id,
                            message_id = %message_id,
                            receive_count = record.attributes.get("ApproximateReceiveCount").map(String::as_str).unwrap_or(""),
                            "order processed"
                        );
                    }
                    Err(reason) => {
                        warn!(message_id = %message_id, reason = %reason, "malformed order");
                        response.add_failure(message_id);
                    }
                }
            }
            info!(flag = %flag, records, failed = response.batch_item_failures.len(), "batch done");
            Ok(response)
        }
    }
}

/// The fast-trip contract's EMF line for an invocation that reported `failed_items` failed items
/// (`batchItemFailures`), at `timestamp_ms`: `PartialFailures` 1 and `FailedItems` n in namespace
/// `SqsCircuitBreaker/Consumer`, dimension `FunctionName` (`AWS_LAMBDA_FUNCTION_NAME`), at
/// one-second resolution. Printed to stdout as one line, CloudWatch Logs turns it into metrics
/// (the embedded metric format). `None` when no item failed.
pub fn partial_failure_line(
    function_name: &str,
    timestamp_ms: u64,
    failed_items: usize,
) -> Option<String> {
    (failed_items > 0).then(|| {
        let metric = |name: &str| {
            serde_json::json!({ "Name": name, "Unit": "Count", "StorageResolution": 1 })
        };
        serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": "SqsCircuitBreaker/Consumer",
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [metric("PartialFailures"), metric("FailedItems")],
                }],
            },
            "FunctionName": function_name,
            "PartialFailures": 1,
            "FailedItems": failed_items,
        })
        .to_string()
    })
}

/// True for a record from a FIFO queue: its source ARN ends in `.fifo`, or it has a
/// `MessageGroupId` attribute.
pub fn is_fifo(record: &SqsMessage) -> bool {
    record
        .event_source_arn
        .as_deref()
        .is_some_and(|arn| arn.ends_with(".fifo"))
        || record.attributes.contains_key("MessageGroupId")
}

fn parse_order(record: &SqsMessage) -> Result<Order, String> {
    let body = record.body.as_deref().ok_or("message has no body")?;
    serde_json::from_str::<Order>(body).map_err(|e| format!("body is not an order: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::source::SourceError;

    struct Fixed(&'static str, Arc<AtomicUsize>);

    impl FlagSource for Fixed {
        async fn read(&self) -> Result<String, SourceError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Ok(self.0.to_owned())
        }
    }

    fn downstream(flag: &'static str) -> FlaggedDownstream<Fixed> {
        FlaggedDownstream::seeded(
            Fixed(flag, Arc::default()),
            Duration::from_secs(2),
            Duration::from_millis(5),
            42,
        )
    }

    /// A real SQS event as Lambda delivers it (two orders and one malformed body).
    fn event() -> SqsEvent {
        serde_json::from_str(include_str!("../fixtures/sqs-event.json")).unwrap()
    }

    fn ids(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    fn in_10s() -> SystemTime {
        SystemTime::now() + Duration::from_secs(10)
    }

    #[tokio::test(start_paused = true)]
    async fn ok_processes_orders_and_reports_only_the_malformed_one() {
        let response = handle_batch(event(), in_10s(), &downstream("ok"))
            .await
            .unwrap();
        assert_eq!(ids(&response), vec!["c0ffee00-0000-4000-8000-000000000003"]);
    }

    /// The fixture from a FIFO queue, malformed order second: it and the order after it fail.
    #[tokio::test(start_paused = true)]
    async fn fifo_batch_reports_the_first_failure_and_every_later_message() {
        let mut event = event();
        event.records.swap(1, 2);
        for r in &mut event.records {
            r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:orders.fifo".into());
        }
        let response = handle_batch(event.clone(), in_10s(), &downstream("ok"))
            .await
            .unwrap();
        assert_eq!(
            ids(&response),
            vec![
                "c0ffee00-0000-4000-8000-000000000003",
                "c0ffee00-0000-4000-8000-000000000002"
            ]
        );
        // The same batch from a standard queue: only the malformed one.
        for r in &mut event.records {
            r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:orders".into());
        }
        let response = handle_batch(event, in_10s(), &downstream("ok"))
            .await
            .unwrap();
        assert_eq!(ids(&response), vec!["c0ffee00-0000-4000-8000-000000000003"]);
    }

    #[tokio::test(start_paused = true)]
    async fn response_serializes_as_report_batch_item_failures() {
        let response = handle_batch(event(), in_10s(), &downstream("ok"))
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures":[{"itemIdentifier":"c0ffee00-0000-4000-8000-000000000003"}]})
        );
    }

    /// Issue 15: under `partial` every message is reported failed and the invocation succeeds.
    #[tokio::test(start_paused = true)]
    async fn partial_reports_every_message_failed_and_the_invocation_succeeds() {
        let response = handle_batch(event(), in_10s(), &downstream("partial"))
            .await
            .unwrap();
        assert_eq!(
            ids(&response),
            vec![
                "c0ffee00-0000-4000-8000-000000000001",
                "c0ffee00-0000-4000-8000-000000000002",
                "c0ffee00-0000-4000-8000-000000000003"
            ]
        );
    }

    /// Issue 15 (the fast-trip contract): an invocation that reports failed items prints one EMF
    /// line, `PartialFailures` 1 and `FailedItems` n at one-second resolution under
    /// `FunctionName`; one that reports none prints nothing.
    #[test]
    fn partial_failures_print_the_contracts_emf_line() {
        let line = partial_failure_line("orders-consumer", 1_700_000_000_123, 3).unwrap();
        assert!(!line.contains('\n'), "one line: {line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "SqsCircuitBreaker/Consumer",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "PartialFailures", "Unit": "Count", "StorageResolution": 1},
                            {"Name": "FailedItems", "Unit": "Count", "StorageResolution": 1}
                        ]
                    }]
                },
                "FunctionName": "orders-consumer",
                "PartialFailures": 1,
                "FailedItems": 3
            })
        );
        assert_eq!(partial_failure_line("orders-consumer", 1, 0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn fail_fails_the_whole_invocation_with_a_typed_error() {
        let err = handle_batch(event(), in_10s(), &downstream("fail"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            BatchError::DownstreamUnavailable {
                flag: Flag::Fail,
                records: 3
            }
        );
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "DownstreamUnavailable");
        assert_eq!(
            diagnostic.error_message,
            "downstream unavailable (flag fail): 3 order(s) not processed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_sleeps_past_the_deadline_then_fails() {
        let started = tokio::time::Instant::now();
        let err = handle_batch(event(), in_10s(), &downstream("slow"))
            .await
            .unwrap_err();
        let slept = started.elapsed();
        assert_eq!(err, BatchError::DownstreamTimeout { records: 3 });
        assert!(
            slept > Duration::from_secs(10),
            "slept {slept:?}, deadline was 10 s away"
        );
        assert!(slept <= Duration::from_secs(11), "slept {slept:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn percentage_fails_about_that_share_of_invocations() {
        let downstream = downstream("percent:40");
        let mut failed = 0;
        for _ in 0..500 {
            if handle_batch(event(), in_10s(), &downstream).await.is_err() {
                failed += 1;
            }
        }
        assert!(
            (160..=240).contains(&failed),
            "{failed} of 500 invocations failed at 40 %"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn empty_batch_succeeds_without_reading_the_flag() {
        let reads = Arc::new(AtomicUsize::new(0));
        let downstream = FlaggedDownstream::seeded(
            Fixed("fail", reads.clone()),
            Duration::ZERO,
            Duration::ZERO,
            1,
        );
        let response = handle_batch(SqsEvent::default(), in_10s(), &downstream)
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(reads.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn order_needs_an_order_id_and_defaults_the_rest() {
        let order: Order = serde_json::from_str(r#"{"orderId":"o-1"}"#).unwrap();
        assert_eq!(
            order,
            Order {
                order_id: "o-1".into(),
                amount_cents: 0,
                created_at_ms: 0
            }
        );
        assert!(serde_json::from_str::<Order>(r#"{"amountCents":5}"#).is_err());
    }
}
