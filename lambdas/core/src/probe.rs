//! Judging a probe and deciding what happens to each probed message.
//!
//! Healthy iff the consumer returned no `FunctionError` and no `batchItemFailures` entry names a
//! probed message. An entry Lambda itself would treat as a whole-batch failure (empty, `null` or
//! unknown `itemIdentifier`) makes every probed message failed, as it would under a real ESM.
//! A failed message is released (visibility 0) unless its receive count is within
//! [`NEAR_LIMIT_MARGIN`] of the queue's `maxReceiveCount`: then a faithful copy is sent and the
//! original deleted, so probing never moves a message to the dead-letter queue.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::contract::Verdict;

/// A failed message whose receive count is this close to `maxReceiveCount` is re-sent.
pub const NEAR_LIMIT_MARGIN: u32 = 2;

/// The consumer's answer to the probe invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerReply {
    /// Lambda's `FunctionError` (`Unhandled`, `Handled`), if the function failed.
    pub function_error: Option<String>,
    /// The response payload.
    pub payload: Vec<u8>,
}

/// The outcome of judging a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// `Healthy` or `Unhealthy` (never `Empty`: that is decided before invoking).
    pub verdict: Verdict,
    /// Message ids the consumer failed.
    pub failed: BTreeSet<String>,
    /// Why, for logs and the `Probe Failed` event.
    pub reason: Option<String>,
}

/// Judge the consumer's reply to a probe of `probed` message ids.
pub fn judge(probed: &[&str], reply: &ConsumerReply) -> Judgement {
    let all = || {
        probed
            .iter()
            .map(|id| (*id).to_owned())
            .collect::<BTreeSet<_>>()
    };
    let unhealthy = |failed, reason: String| Judgement {
        verdict: Verdict::Unhealthy,
        failed,
        reason: Some(reason),
    };
    if let Some(error) = &reply.function_error {
        let detail = String::from_utf8_lossy(&reply.payload);
        return unhealthy(
            all(),
            format!("function error {error}: {}", truncate(&detail, 512)),
        );
    }
    let failures = serde_json::from_slice::<Value>(&reply.payload)
        .ok()
        .and_then(|v| v.get("batchItemFailures").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut failed = BTreeSet::new();
    for entry in &failures {
        match entry.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if probed.contains(&id) => {
                failed.insert(id.to_owned());
            }
            other => {
                return unhealthy(
                    all(),
                    format!(
                        "batchItemFailures entry {entry} ({}) fails the whole batch",
                        match other {
                            Some(_) => "unknown itemIdentifier",
                            None => "missing itemIdentifier",
                        }
                    ),
                );
            }
        }
    }
    if failed.is_empty() {
        Judgement {
            verdict: Verdict::Healthy,
            failed,
            reason: None,
        }
    } else {
        let reason = format!(
            "batchItemFailures named {} of {} probed messages",
            failed.len(),
            probed.len()
        );
        unhealthy(failed, reason)
    }
}

/// What to do with one probed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Processed: delete it with the newest receipt handle.
    Delete,
    /// Failed, far from the limit: make it visible again (visibility 0).
    Release,
    /// Failed, near the limit: send a faithful copy, then delete the original.
    Resend,
}

/// The disposition of a failed message with `receive_count` receives on a queue whose
/// RedrivePolicy has `max_receive_count` (`None`: no dead-letter queue, so never near a limit).
pub fn failed_disposition(receive_count: u32, max_receive_count: Option<u32>) -> Disposition {
    match max_receive_count {
        Some(max) if receive_count.saturating_add(NEAR_LIMIT_MARGIN) >= max => Disposition::Resend,
        _ => Disposition::Release,
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reply(payload: Value) -> ConsumerReply {
        ConsumerReply {
            function_error: None,
            payload: payload.to_string().into_bytes(),
        }
    }

    #[test]
    fn probe_is_healthy_without_function_error_or_batch_item_failures() {
        for payload in [
            json!(null),
            json!({}),
            json!({ "batchItemFailures": [] }),
            json!({ "batchItemFailures": null }),
            json!("ok"),
        ] {
            let j = judge(&["m1"], &reply(payload.clone()));
            assert_eq!(j.verdict, Verdict::Healthy, "{payload}");
            assert!(j.failed.is_empty());
        }
        let j = judge(
            &["m1"],
            &ConsumerReply {
                function_error: None,
                payload: b"not json".to_vec(),
            },
        );
        assert_eq!(j.verdict, Verdict::Healthy);
    }

    #[test]
    fn probe_counts_function_error_as_unhealthy_for_every_message() {
        let j = judge(
            &["m1", "m2"],
            &ConsumerReply {
                function_error: Some("Unhandled".into()),
                payload: br#"{"errorMessage":"downstream 503"}"#.to_vec(),
            },
        );
        assert_eq!(j.verdict, Verdict::Unhealthy);
        assert_eq!(j.failed, BTreeSet::from(["m1".to_owned(), "m2".to_owned()]));
        assert!(j.reason.unwrap().contains("downstream 503"));
    }

    #[test]
    fn probe_counts_batch_item_failure_as_unhealthy_for_the_named_message_only() {
        let j = judge(
            &["m1", "m2"],
            &reply(json!({ "batchItemFailures": [{ "itemIdentifier": "m2" }] })),
        );
        assert_eq!(j.verdict, Verdict::Unhealthy);
        assert_eq!(j.failed, BTreeSet::from(["m2".to_owned()]));
    }

    #[test]
    fn malformed_batch_item_failure_fails_the_whole_batch_as_lambda_would() {
        for entry in [
            json!({ "itemIdentifier": "" }),
            json!({ "itemIdentifier": null }),
            json!({ "id": "m1" }),
            json!({ "itemIdentifier": "other" }),
        ] {
            let j = judge(
                &["m1", "m2"],
                &reply(json!({ "batchItemFailures": [entry.clone()] })),
            );
            assert_eq!(j.verdict, Verdict::Unhealthy, "{entry}");
            assert_eq!(j.failed.len(), 2, "{entry}");
        }
    }

    #[test]
    fn failed_message_near_max_receive_count_is_resent() {
        assert_eq!(failed_disposition(1, Some(3)), Disposition::Resend);
        assert_eq!(failed_disposition(3, Some(5)), Disposition::Resend);
        assert_eq!(failed_disposition(7, Some(5)), Disposition::Resend);
    }

    #[test]
    fn failed_message_far_from_max_receive_count_is_released() {
        assert_eq!(failed_disposition(2, Some(5)), Disposition::Release);
        assert_eq!(failed_disposition(1, Some(10)), Disposition::Release);
        assert_eq!(failed_disposition(500, None), Disposition::Release);
    }
}
