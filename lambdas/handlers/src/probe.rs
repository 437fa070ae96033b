//! `probe`: receive up to `PROBE_COUNT` real messages (hidden for longer than the consumer's
//! timeout), invoke the consumer synchronously with a faithful SQS event, judge the reply, and
//! settle every probed message without ever losing it or pushing it into the dead-letter queue:
//! processed → deleted with the newest receipt handle; failed → released (visibility 0), or,
//! when its receive count is near `maxReceiveCount`, re-sent as a faithful copy and only then
//! deleted. An empty queue is verdict `empty`; nothing visible while messages are in flight (received
//! before the trip, outcome unknown) is `unhealthy` with nothing probed. On a FIFO queue the copy keeps the original's
//! `MessageGroupId`, carries the `MessageDeduplicationId` `breaker-copy-<message id>` (a retried
//! send is deduplicated, not enqueued twice) and no `DelaySeconds` (FIFO queues refuse one); it
//! joins the end of its group, the price of not dead-lettering the message.
//!
//! The consumer gets only messages the mapping would deliver: the mapping's `FilterCriteria`
//! (read with `GetEventSourceMapping` on every probe) are applied to each received record as
//! Lambda applies them (`breaker_core::filter`); a message they do not deliver is deleted, as the
//! mapping deletes it, counted in `filteredOut`, and the probe receives again (at most
//! [`FILTER_RECEIVES`] times). Patterns it cannot apply fail the probe `NonRetryable` before it
//! touches the queue.
//!
//! The SQS event never exceeds Lambda's synchronous payload limit
//! ([`SYNC_INVOKE_PAYLOAD_LIMIT_BYTES`]): messages that do not fit are put back at once, as failed
//! ones are, and the consumer is invoked with the rest. When the invoke itself fails, the
//! messages are put back the same way; a transient failure emits `Probe Failed` and ends with
//! `ProbeFailed` (the workflow backs off and probes again), a failure waiting will not heal
//! (missing function or permission, a request Lambda refuses, a broken function configuration)
//! ends with `NonRetryable` naming it, so the workflow reports the circuit stuck open at once.
//!
//! The probe times its synchronous invoke of the consumer. A healthy verdict records the messages
//! and the milliseconds in the state (`healthyProbe`), from which `rejitter-plan` sizes the
//! re-jitter window (`breaker_core::rejitter::window_for_backlog`); any other verdict clears it.

use std::collections::BTreeMap;

use breaker_core::config::Config;
use breaker_core::contract::{
    CircuitState, ProbeOutput, ProbeTiming, StateInput, Verdict, Version, parse,
};
use breaker_core::events::{BreakerEvent, DetailType};
use breaker_core::filter::{FilterCriteria, FilterError};
use breaker_core::message::ReceivedMessage;
use breaker_core::ports::{Clock, Consumer, EventSourceMappings, Events, PortError, Queue};
use breaker_core::probe::{ConsumerReply, Disposition, failed_disposition, judge};
use breaker_core::sqs_event::{sqs_event, sqs_record};
use breaker_core::timeouts::PROBE_RECEIVE_SECONDS;
use serde_json::Value;
use tracing::{info, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::ports::Ports;

/// Long-poll time of the probe's receive: long enough that an empty answer means an empty
/// queue (short polls sample a subset of servers), short enough to keep the probe cheap.
pub const PROBE_WAIT_SECONDS: u8 = 2;
// The long poll ends well before an SDK attempt gives up.
const _: () =
    assert!((PROBE_WAIT_SECONDS as u64) * 2 <= breaker_core::timeouts::SDK_ATTEMPT_TIMEOUT_SECONDS);

/// At most this many receives per probe when the mapping's `FilterCriteria` filters messages
/// out: the probe deletes those (as the mapping would) and receives again for a message the
/// mapping delivers.
pub const FILTER_RECEIVES: u8 = 5;

/// Lambda's limit on the request payload of a synchronous (`RequestResponse`) invocation:
/// 6 MB, 6,291,456 bytes. The probe's SQS event is kept at or under it.
pub const SYNC_INVOKE_PAYLOAD_LIMIT_BYTES: usize = 6_291_456;

/// What happened to the probed messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Deleted after the consumer processed them.
    pub deleted: u32,
    /// Released with visibility 0.
    pub released: u32,
    /// Re-sent as a fresh copy, original deleted.
    pub resent: u32,
    /// Problems that left a message in the queue (never lost; logged).
    pub problems: Vec<String>,
}

/// Handle `probe` (see `CONTRACT.md`).
pub async fn probe<P: Ports>(input: Value, app: &App<P>) -> Result<ProbeOutput, HandlerError> {
    let (config, ports) = (&app.config, &app.ports);
    let (queue, consumer) = (ports.queue(), ports.consumer());
    let (events, clock) = (ports.events(), ports.clock());
    let StateInput { mut state, .. } = parse(input)?;
    let filter = mapping_filter(ports.esm(), config).await?;
    let Received {
        messages,
        filtered_out,
        exhausted,
    } = receive_deliverable(queue, &filter, config, clock).await?;
    state.attempt += 1;
    state.healthy_probe = None;
    // Nothing to probe: no evidence of health either way when the receive found only messages
    // the mapping would not deliver, or found nothing visible while some are in flight (the
    // consumer received them before the trip; their visibility has not ended and their outcome
    // is not known). The circuit stays open and the next probe goes on.
    let no_evidence = |reason: String, in_flight: Option<u64>, mut state: CircuitState| async move {
        let mut event =
            BreakerEvent::for_state(DetailType::ProbeFailed, config, &state, clock.now_ms())
                .with("probed", 0)
                .with("failed", 0)
                .with("released", 0)
                .with("resent", 0)
                .with("filteredOut", filtered_out)
                .with("reason", &reason);
        if let Some(n) = in_flight {
            event = event.with("inFlight", n);
        }
        events.put(&event).await?;
        info!(esm = %config.esm_uuid, attempt = state.attempt, filtered_out, "probe: {reason}");
        state.healthy_probe = None;
        Ok::<_, HandlerError>(ProbeOutput {
            version: Version,
            verdict: Verdict::Unhealthy,
            probed: 0,
            filtered_out,
            state,
        })
    };
    if messages.is_empty() && exhausted {
        let reason = format!(
            "no message the mapping's FilterCriteria deliver within {FILTER_RECEIVES} receives \
             ({filtered_out} filtered out and deleted, as the mapping deletes them)"
        );
        return no_evidence(reason, None, state).await;
    }
    if messages.is_empty() {
        let in_flight = queue.info().await?.in_flight;
        if in_flight > 0 {
            let reason = format!(
                "nothing visible, {in_flight} message(s) in flight: received before the trip, \
                 outcome unknown until their visibility timeout ends"
            );
            return no_evidence(reason, Some(in_flight), state).await;
        }
        info!(esm = %config.esm_uuid, attempt = state.attempt, filtered_out, "probe: queue empty");
        return Ok(ProbeOutput {
            version: Version,
            verdict: Verdict::Empty,
            probed: 0,
            filtered_out,
            state,
        });
    }
    let (fitting, payload) = fitting_event(&messages, config);
    let (messages, held_back) = messages.split_at(fitting);
    if !held_back.is_empty() {
        // Not probed: put back at once, exactly as a failed message would be.
        let held_back: Vec<&ReceivedMessage> = held_back.iter().collect();
        let settled = settle_failed(queue, &held_back).await;
        log_problems(config, &settled);
        info!(
            esm = %config.esm_uuid, probing = fitting, held_back = held_back.len(),
            released = settled.released, resent = settled.resent,
            limit = SYNC_INVOKE_PAYLOAD_LIMIT_BYTES,
            "probe: messages beyond Lambda's synchronous payload limit put back"
        );
    }
    let probed = messages.len() as u32;
    let invoked_at = clock.now_ms();
    let reply = match consumer.invoke(payload).await {
        Ok(r) => ConsumerReply {
            function_error: r.function_error,
            payload: r.payload,
        },
        Err(e) => {
            return Err(invoke_failed(e, messages, &state, config, queue, events, clock).await);
        }
    };
    let duration_ms = clock.now_ms().saturating_sub(invoked_at);
    let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    let judgement = judge(&ids, &reply);
    if judgement.verdict == Verdict::Healthy {
        state.healthy_probe = Some(ProbeTiming {
            messages: probed,
            duration_ms,
        });
    }
    let (failed, processed): (Vec<&ReceivedMessage>, Vec<&ReceivedMessage>) = messages
        .iter()
        .partition(|m| judgement.failed.contains(&m.message_id));

    let mut settled = delete(queue, &processed).await;
    let failed_settled = settle_failed(queue, &failed).await;
    settled.released += failed_settled.released;
    settled.resent += failed_settled.resent;
    settled.deleted += failed_settled.deleted;
    settled.problems.extend(failed_settled.problems);
    log_problems(config, &settled);

    if judgement.verdict == Verdict::Unhealthy {
        let now = clock.now_ms();
        let event = BreakerEvent::for_state(DetailType::ProbeFailed, config, &state, now)
            .with("probed", probed)
            .with("failed", failed.len())
            .with("released", settled.released)
            .with("resent", settled.resent)
            .with("filteredOut", filtered_out)
            .with("reason", &judgement.reason);
        events.put(&event).await?;
    }
    info!(
        esm = %config.esm_uuid, attempt = state.attempt, verdict = ?judgement.verdict, probed, duration_ms,
        deleted = settled.deleted, released = settled.released, resent = settled.resent, filtered_out,
        "probe judged"
    );
    Ok(ProbeOutput {
        version: Version,
        verdict: judgement.verdict,
        probed,
        filtered_out,
        state,
    })
}

/// The mapping's `FilterCriteria`, read now (the probe must hand the consumer only what the
/// mapping would deliver today). Patterns the matcher cannot apply, or criteria Lambda would not
/// show, fail the probe before it touches the queue.
async fn mapping_filter<E: EventSourceMappings>(
    esm: &E,
    config: &Config,
) -> Result<FilterCriteria, HandlerError> {
    let mapping = esm.get(&config.esm_uuid).await?;
    if let Some(error) = mapping.filter_criteria_error {
        return Err(FilterError::Unreadable(error).into());
    }
    Ok(FilterCriteria::parse(&mapping.filter_patterns)?)
}

/// What the probe received for the consumer.
struct Received {
    /// Messages the mapping delivers, in the order received (at most `PROBE_COUNT`).
    messages: Vec<ReceivedMessage>,
    /// Messages the mapping does not deliver, deleted as the mapping deletes them.
    filtered_out: u32,
    /// The last receive still found only messages the mapping does not deliver (the limit of
    /// [`FILTER_RECEIVES`] receives, or of the receive budget, was reached).
    exhausted: bool,
}

/// Receive up to `PROBE_COUNT` messages the mapping delivers. Messages its `FilterCriteria` do
/// not deliver are deleted at once ("If an Amazon SQS message doesn't satisfy your filter
/// criteria, Lambda automatically removes the message from the queue"), and the probe receives
/// again, at most [`FILTER_RECEIVES`] times and only within half the receive budget
/// (`PROBE_RECEIVE_SECONDS`). Without a filter this is the single receive it always was. A
/// failed first receive fails the probe; a failed later one ends the search with what was found.
async fn receive_deliverable<Q: Queue, C: Clock>(
    queue: &Q,
    filter: &FilterCriteria,
    config: &Config,
    clock: &C,
) -> Result<Received, PortError> {
    let started = clock.now_ms();
    let budget_ms = u64::from(PROBE_RECEIVE_SECONDS) * 1_000 / 2;
    let mut received = Received {
        messages: Vec::new(),
        filtered_out: 0,
        exhausted: false,
    };
    for round in 0..FILTER_RECEIVES {
        let wanted = config.probe_count - received.messages.len() as u8;
        let batch = match queue
            .receive(wanted, PROBE_WAIT_SECONDS, config.probe_visibility_seconds)
            .await
        {
            Ok(batch) => batch,
            Err(e) if round == 0 => return Err(e),
            Err(e) => {
                warn!(esm = %config.esm_uuid, error = %e, "probe: a further receive failed; probing what was found");
                break;
            }
        };
        if batch.is_empty() {
            break;
        }
        let (deliver, drop): (Vec<ReceivedMessage>, Vec<ReceivedMessage>) =
            batch.into_iter().partition(|m| {
                let record = serde_json::to_value(sqs_record(m, &config.queue_arn, &config.region))
                    .expect("an SQS record always serializes");
                filter.matches(&record)
            });
        received.messages.extend(deliver);
        if drop.is_empty() {
            break;
        }
        let dropped: Vec<&ReceivedMessage> = drop.iter().collect();
        let settled = delete(queue, &dropped).await;
        received.filtered_out += settled.deleted;
        log_problems(config, &settled);
        info!(
            esm = %config.esm_uuid, filtered_out = settled.deleted, round,
            "probe: messages the mapping's FilterCriteria do not deliver deleted, as the mapping deletes them"
        );
        let full = received.messages.len() >= usize::from(config.probe_count);
        let out_of_time = clock.now_ms().saturating_sub(started) >= budget_ms;
        if full {
            break;
        }
        if round + 1 == FILTER_RECEIVES || out_of_time {
            received.exhausted = received.messages.is_empty();
            break;
        }
    }
    Ok(received)
}

/// The SQS event for a prefix of `messages` whose JSON fits in
/// [`SYNC_INVOKE_PAYLOAD_LIMIT_BYTES`] (all of them when they fit; otherwise as many as the
/// average record size says, fewer if that still does not fit), and how many messages it holds.
/// Never fewer than one: a
/// single SQS message (≤ 1 MiB, at most about twice that once JSON-escaped and base64-encoded)
/// always fits.
fn fitting_event(messages: &[ReceivedMessage], config: &Config) -> (usize, Vec<u8>) {
    let event = |n: usize| {
        serde_json::to_vec(&sqs_event(
            &messages[..n],
            &config.queue_arn,
            &config.region,
        ))
        .expect("an SqsEvent always serializes")
    };
    let mut n = messages.len();
    loop {
        let payload = event(n);
        if payload.len() <= SYNC_INVOKE_PAYLOAD_LIMIT_BYTES || n <= 1 {
            return (n, payload);
        }
        // Estimate how many records fit from the average record size, then check.
        let average = payload.len() / n;
        n = (SYNC_INVOKE_PAYLOAD_LIMIT_BYTES / average.max(1)).clamp(1, n - 1);
    }
}

/// The consumer invoke failed: put every probed message back safely, then choose the error.
/// Transient (`Retryable`/`InUse`): emit `Probe Failed` (a put failure is only logged) and fail
/// with `ProbeFailed`, so the workflow backs off and probes again. Anything else will not heal by
/// waiting: fail with a `NonRetryable` error naming the consumer and the cause, so the workflow
/// reports the circuit stuck open instead of probing in vain.
async fn invoke_failed<Q: Queue, V: Events, C: Clock>(
    error: PortError,
    messages: &[ReceivedMessage],
    state: &CircuitState,
    config: &Config,
    queue: &Q,
    events: &V,
    clock: &C,
) -> HandlerError {
    let all: Vec<&ReceivedMessage> = messages.iter().collect();
    let settled = settle_failed(queue, &all).await;
    log_problems(config, &settled);
    if !error.is_retryable() {
        warn!(
            esm = %config.esm_uuid, consumer = %config.consumer_function_name, error = %error,
            released = settled.released, resent = settled.resent,
            "probe invoke failed and waiting will not heal it"
        );
        return HandlerError::Port(PortError {
            message: format!(
                "consumer {} cannot be invoked, and waiting will not heal this: {}",
                config.consumer_function_name, error.message
            ),
            ..error
        });
    }
    warn!(
        esm = %config.esm_uuid, error = %error, released = settled.released,
        resent = settled.resent, "probe invoke failed"
    );
    let event = BreakerEvent::for_state(DetailType::ProbeFailed, config, state, clock.now_ms())
        .with("probed", messages.len())
        .with("failed", messages.len())
        .with("released", settled.released)
        .with("resent", settled.resent)
        .with("reason", INVOKE_FAILED)
        .with("error", error.to_string());
    if let Err(put) = events.put(&event).await {
        warn!(esm = %config.esm_uuid, error = %put, "could not put the Probe Failed event");
    }
    HandlerError::ProbeFailed(error)
}

/// `reason` of the `Probe Failed` event when the consumer invoke itself failed.
pub const INVOKE_FAILED: &str = "invoke failed";

fn log_problems(config: &Config, settled: &Settlement) {
    for problem in &settled.problems {
        warn!(esm = %config.esm_uuid, problem = %problem, "probe settlement problem (message kept in the queue)");
    }
}

/// Delete processed messages with the receipt handles of this receive (the newest).
async fn delete<Q: Queue>(queue: &Q, messages: &[&ReceivedMessage]) -> Settlement {
    let mut s = Settlement::default();
    if messages.is_empty() {
        return s;
    }
    let entries = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (i.to_string(), m.receipt_handle.clone()))
        .collect();
    match queue.delete_batch(entries).await {
        Ok(outcome) => {
            s.deleted += outcome.succeeded.len() as u32;
            s.problems.extend(outcome.failed.iter().map(|f| {
                format!(
                    "delete of processed message failed ({}): {}",
                    f.code, f.message
                )
            }));
        }
        Err(e) => s
            .problems
            .push(format!("delete of processed messages failed: {e}")),
    }
    s
}

/// Put failed messages back without ever dead-lettering them: release (visibility 0), or
/// re-send a faithful copy and delete the original when near `maxReceiveCount`. If the copy
/// cannot be confirmed, the original is released instead (never deleted).
async fn settle_failed<Q: Queue>(queue: &Q, messages: &[&ReceivedMessage]) -> Settlement {
    let mut s = Settlement::default();
    if messages.is_empty() {
        return s;
    }
    let (max_receive_count, fifo) = match queue.info().await {
        Ok(info) => (info.max_receive_count, Some(info.fifo)),
        Err(e) => {
            // Unknown limit: assume the tightest one so a re-send protects the message.
            s.problems.push(format!(
                "queue attributes unavailable ({e}); re-sending to be safe"
            ));
            (Some(0), None)
        }
    };
    let mut to_release: Vec<&ReceivedMessage> = Vec::new();
    let mut to_resend: BTreeMap<String, &ReceivedMessage> = BTreeMap::new();
    let mut copies = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if failed_disposition(m.receive_count(), max_receive_count) != Disposition::Resend {
            to_release.push(m);
            continue;
        }
        // FIFO (or, when the queue could not be read, a message with a group): the copy keeps
        // its group, carries a deduplication id naming the original and has no delay.
        let copy = if fifo.unwrap_or_else(|| m.message_group_id().is_some()) {
            m.faithful_fifo_copy(i.to_string())
        } else {
            Some(m.faithful_copy(i.to_string(), 0))
        };
        match copy {
            Some(copy) => {
                copies.push(copy);
                to_resend.insert(i.to_string(), m);
            }
            None => {
                s.problems.push(format!(
                    "message {} on a FIFO queue has no MessageGroupId; released instead of re-sent",
                    m.message_id
                ));
                to_release.push(m);
            }
        }
    }
    if !to_resend.is_empty() {
        // Up to 10 messages of up to 1 MiB each: one `SendMessageBatch` holds ≤ 1 MiB in all.
        let mut confirmed: Vec<String> = Vec::new();
        for batch in breaker_core::rejitter::split_batches(copies) {
            match queue.send_batch(batch).await {
                Ok(outcome) => {
                    s.problems.extend(
                        outcome
                            .failed
                            .iter()
                            .map(|f| format!("re-send failed ({}): {}", f.code, f.message)),
                    );
                    confirmed.extend(outcome.succeeded);
                }
                Err(e) => s.problems.push(format!("re-send failed: {e}")),
            }
        }
        let originals: Vec<(String, String)> = confirmed
            .iter()
            .filter_map(|id| {
                to_resend
                    .get(id)
                    .map(|m| (id.clone(), m.receipt_handle.clone()))
            })
            .collect();
        for (id, m) in &to_resend {
            if !confirmed.contains(id) {
                to_release.push(m);
            }
        }
        s.resent += originals.len() as u32;
        if !originals.is_empty() {
            // The copy exists; a failed delete only leaves a duplicate behind, never a loss.
            match queue.delete_batch(originals).await {
                Ok(outcome) => s.problems.extend(outcome.failed.iter().map(|f| {
                    format!(
                        "delete of re-sent original failed ({}): {}; a duplicate remains",
                        f.code, f.message
                    )
                })),
                Err(e) => s.problems.push(format!(
                    "delete of re-sent originals failed: {e}; duplicates remain"
                )),
            }
        }
    }
    for m in to_release {
        match queue.change_visibility(&m.receipt_handle, 0).await {
            Ok(()) => s.released += 1,
            Err(e) => s.problems.push(release_problem(&e)),
        }
    }
    s
}

fn release_problem(e: &PortError) -> String {
    format!("release failed ({e}); the message reappears when its visibility timeout ends")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use breaker_core::message::{AttributeValue, OutgoingMessage};
    use breaker_core::ports::{FaultKind, InvokeResult, PortError};
    use breaker_testkit::{FakeQueue, Op, StoredMessage};
    use serde_json::json;

    use super::*;
    use breaker_core::ports::EsmState;

    use crate::testing::{
        FakeConsumer, FakeEsm, FakeEvents, Fakes, FixedClock, config, state_json,
    };

    fn order(n: u32) -> OutgoingMessage {
        OutgoingMessage {
            id: String::new(),
            body: format!("{{\"order\":{n}}}"),
            message_attributes: BTreeMap::from([
                ("tenant".into(), AttributeValue::string("String", "acme")),
                (
                    "sig".into(),
                    AttributeValue::binary("Binary", vec![0, 159, 255]),
                ),
            ]),
            trace_header: Some(format!("Root=1-5759e988-bd862e3fe1be46a99427{n:04}")),
            delay_seconds: 0,
            fifo: None,
        }
    }

    async fn run(
        queue: &FakeQueue,
        consumer: &FakeConsumer,
        events: &FakeEvents,
        extra: &[(&str, &str)],
    ) -> Result<ProbeOutput, HandlerError> {
        run_input(
            json!({ "state": state_json(1_000, 4, 2, Some(10)) }),
            queue,
            consumer,
            events,
            extra,
            31_000,
        )
        .await
    }

    async fn run_input(
        input: Value,
        queue: &FakeQueue,
        consumer: &FakeConsumer,
        events: &FakeEvents,
        extra: &[(&str, &str)],
        now_ms: u64,
    ) -> Result<ProbeOutput, HandlerError> {
        let esm = FakeEsm::new(EsmState::Disabled, Some(10));
        run_with(esm, input, queue, consumer, events, extra, now_ms).await
    }

    /// [`run`] against a mapping configured by the test (its `FilterCriteria`).
    async fn run_filtered(
        esm: FakeEsm,
        queue: &FakeQueue,
        consumer: &FakeConsumer,
        events: &FakeEvents,
        extra: &[(&str, &str)],
    ) -> Result<ProbeOutput, HandlerError> {
        let input = json!({ "state": state_json(1_000, 4, 2, Some(10)) });
        run_with(esm, input, queue, consumer, events, extra, 31_000).await
    }

    async fn run_with(
        esm: FakeEsm,
        input: Value,
        queue: &FakeQueue,
        consumer: &FakeConsumer,
        events: &FakeEvents,
        extra: &[(&str, &str)],
        now_ms: u64,
    ) -> Result<ProbeOutput, HandlerError> {
        let ports = Fakes {
            esm,
            queue: queue.clone(),
            consumer: consumer.clone(),
            events: events.clone(),
            clock: FixedClock::at(now_ms),
            ..Fakes::default()
        };
        probe(input, &App::new(config(extra), ports)).await
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_probe_deletes_the_message_and_sends_a_faithful_sqs_event() {
        let queue = FakeQueue::new();
        let id = queue.push(order(1));
        let (consumer, events) = (FakeConsumer::healthy(), FakeEvents::default());
        let out = run(&queue, &consumer, &events, &[]).await.unwrap();
        assert_eq!(
            (out.verdict, out.probed, out.state.attempt),
            (Verdict::Healthy, 1, 5)
        );
        assert!(queue.is_empty(), "processed message deleted");
        assert!(events.events().is_empty());
        let event = &consumer.invocations()[0];
        let r = &event["Records"][0];
        assert_eq!(event["Records"].as_array().unwrap().len(), 1);
        assert_eq!(r["messageId"], id.as_str());
        assert_eq!(r["body"], "{\"order\":1}");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(
            r["eventSourceARN"],
            "arn:aws:sqs:eu-west-1:123456789012:orders"
        );
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert!(
            r["attributes"]["SentTimestamp"]
                .as_str()
                .is_some_and(|s| s.parse::<u64>().is_ok())
        );
        assert_eq!(
            r["attributes"]["AWSTraceHeader"],
            "Root=1-5759e988-bd862e3fe1be46a994270001"
        );
        assert_eq!(r["messageAttributes"]["tenant"]["stringValue"], "acme");
        assert_eq!(r["messageAttributes"]["sig"]["binaryValue"], "AJ//");
        assert!(r["receiptHandle"].as_str().is_some_and(|h| !h.is_empty()));
    }

    /// Issue 16: the healthy probe's invoke is timed and recorded for the re-jitter plan; an
    /// unhealthy one clears an earlier timing.
    #[tokio::test(start_paused = true)]
    async fn a_healthy_probe_records_how_long_the_consumer_took_and_an_unhealthy_one_clears_it() {
        let probe_taking = |ms: u64, healthy: bool, input: Value| {
            let clock = FixedClock::at(31_000);
            let during = clock.clone();
            let consumer = FakeConsumer::new(move |_| {
                during.advance_ms(ms);
                Ok(InvokeResult {
                    status: 200,
                    function_error: (!healthy).then(|| "Unhandled".to_owned()),
                    payload: b"null".to_vec(),
                })
            });
            let queue = FakeQueue::new();
            queue.push(order(1));
            queue.push(order(2));
            let ports = Fakes {
                esm: FakeEsm::new(EsmState::Disabled, Some(10)),
                queue,
                consumer,
                clock,
                ..Fakes::default()
            };
            async move {
                probe(input, &App::new(config(&[("PROBE_COUNT", "2")]), ports))
                    .await
                    .unwrap()
            }
        };
        let input = json!({ "state": state_json(1_000, 4, 2, Some(10)) });
        let out = probe_taking(250, true, input).await;
        assert_eq!(out.verdict, Verdict::Healthy);
        assert_eq!(
            out.state.healthy_probe,
            Some(ProbeTiming {
                messages: 2,
                duration_ms: 250
            })
        );
        let timed = json!({ "state": serde_json::to_value(&out.state).unwrap() });
        let out = probe_taking(250, false, timed).await;
        assert_eq!(out.verdict, Verdict::Unhealthy);
        assert_eq!(out.state.healthy_probe, None);
    }

    #[tokio::test(start_paused = true)]
    async fn probed_message_stays_hidden_while_the_consumer_runs() {
        let queue = FakeQueue::new();
        queue.push(order(1));
        let seen = queue.clone();
        let consumer = FakeConsumer::new(move |_| {
            let m = &seen.messages()[0];
            assert!(
                m.in_flight && m.receive_count == 1,
                "hidden during the invoke: {m:?}"
            );
            Ok(InvokeResult {
                status: 200,
                function_error: Some("Unhandled".into()),
                payload: b"{}".to_vec(),
            })
        });
        let out = run(&queue, &consumer, &FakeEvents::default(), &[])
            .await
            .unwrap();
        assert_eq!(out.verdict, Verdict::Unhealthy);
        assert_eq!(consumer.invocations().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_probe_releases_a_message_far_from_max_receive_count_and_announces_it() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        let id = queue.push(order(1));
        let (consumer, events) = (FakeConsumer::failing(), FakeEvents::default());
        let out = run(&queue, &consumer, &events, &[]).await.unwrap();
        assert_eq!(
            (out.verdict, out.probed, out.state.attempt),
            (Verdict::Unhealthy, 1, 5)
        );
        let m = &queue.messages()[0];
        assert_eq!(
            (m.message_id.as_str(), m.receive_count, m.in_flight),
            (id.as_str(), 1, false)
        );
        assert_eq!(queue.call_count(Op::ChangeVisibility), 1);
        assert_eq!(queue.call_count(Op::SendBatch), 0);
        assert_eq!(events.detail_types(), vec![DetailType::ProbeFailed]);
        let d = &events.events()[0].detail;
        assert_eq!(
            (
                d["attempt"].clone(),
                d["probed"].clone(),
                d["released"].clone(),
                d["openSeconds"].clone()
            ),
            (json!(5), json!(1), json!(1), json!(30))
        );
        assert!(d["reason"].as_str().unwrap().contains("503 from payments"));
    }

    /// Probes once against a consumer that always fails, asserts the verdict is unhealthy and
    /// exactly one message is left in the queue, and returns the queue's messages.
    async fn probe_unhealthy_leaving_one(queue: &FakeQueue) -> Vec<StoredMessage> {
        let out = run(queue, &FakeConsumer::failing(), &FakeEvents::default(), &[])
            .await
            .unwrap();
        assert_eq!(out.verdict, Verdict::Unhealthy);
        let messages = queue.messages();
        assert_eq!(messages.len(), 1);
        messages
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_probe_resends_a_message_near_max_receive_count_faithfully() {
        let queue = FakeQueue::builder().max_receive_count(3).build();
        let id = queue.push(order(7));
        let messages = probe_unhealthy_leaving_one(&queue).await;
        let copy = &messages[0];
        assert_ne!(
            copy.message_id, id,
            "the original was replaced by a fresh copy"
        );
        assert_eq!(copy.receive_count, 0);
        assert_eq!(copy.body, order(7).body);
        assert_eq!(copy.message_attributes, order(7).message_attributes);
        assert_eq!(copy.trace_header, order(7).trace_header);
        assert_eq!(copy.delay_seconds, 0);
        assert!(queue.dead_lettered().is_empty());
    }

    /// Issue 13 item 6: the fresh copies of three 600 KiB messages near the limit cannot share
    /// one `SendMessageBatch` (≤ 1 MiB in all): each is re-sent, none released (its next receive
    /// would dead-letter it).
    #[tokio::test(start_paused = true)]
    async fn near_limit_resends_of_large_messages_are_split_under_the_batch_limit() {
        let queue = FakeQueue::builder().max_receive_count(2).build();
        let big = |n: u32| {
            let mut m = order(n);
            m.body = format!("{{\"order\":{n},\"pad\":\"{}\"}}", "p".repeat(600 * 1024));
            m
        };
        for n in 0..3 {
            queue.push(big(n));
        }
        let out = run(
            &queue,
            &FakeConsumer::failing(),
            &FakeEvents::default(),
            &[("PROBE_COUNT", "3")],
        )
        .await
        .unwrap();
        assert_eq!((out.verdict, out.probed), (Verdict::Unhealthy, 3));
        let mut left = queue.messages();
        left.sort_by(|a, b| a.body.cmp(&b.body));
        let counts: Vec<u32> = left.iter().map(|m| m.receive_count).collect();
        assert_eq!(counts, vec![0, 0, 0], "each re-sent fresh, none released");
        for (n, m) in (0..3).zip(&left) {
            assert!(m.body == big(n).body, "order {n}'s body");
            assert_eq!(m.message_attributes, big(n).message_attributes);
            assert_eq!(m.trace_header, big(n).trace_header);
        }
        assert!(queue.dead_lettered().is_empty());
        assert_eq!(queue.call_count(Op::SendBatch), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn thirty_failed_probes_never_dead_letter_or_lose_the_message() {
        let queue = FakeQueue::builder().max_receive_count(3).build();
        queue.push(order(9));
        let (consumer, events) = (FakeConsumer::failing(), FakeEvents::default());
        for _ in 0..30 {
            assert_eq!(
                run(&queue, &consumer, &events, &[]).await.unwrap().verdict,
                Verdict::Unhealthy
            );
        }
        assert_eq!(consumer.invocations().len(), 30);
        assert!(queue.dead_lettered().is_empty());
        let messages = queue.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            (messages[0].body.clone(), messages[0].trace_header.clone()),
            (order(9).body, order(9).trace_header)
        );
    }

    fn fifo_order(n: u32, group: &str) -> OutgoingMessage {
        OutgoingMessage {
            fifo: Some(breaker_core::message::FifoIds {
                group_id: group.into(),
                deduplication_id: format!("order-{n}"),
            }),
            ..order(n)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_near_limit_copy_keeps_its_group_and_thirty_failed_probes_never_dead_letter_it() {
        let queue = FakeQueue::builder().fifo(true).max_receive_count(3).build();
        let id = queue.push(fifo_order(7, "customer-1"));
        let (consumer, events) = (FakeConsumer::failing(), FakeEvents::default());
        for _ in 0..30 {
            let out = run(&queue, &consumer, &events, &[]).await.unwrap();
            assert_eq!(out.verdict, Verdict::Unhealthy);
        }
        assert!(
            queue.dead_lettered().is_empty(),
            "dead-lettered by the probe"
        );
        let messages = queue.messages();
        assert_eq!(messages.len(), 1);
        let copy = &messages[0];
        assert_ne!(copy.message_id, id, "re-sent fresh near the limit");
        assert_eq!(copy.message_group_id.as_deref(), Some("customer-1"));
        assert_eq!(copy.delay_seconds, 0);
        assert_eq!(
            (&copy.body, &copy.message_attributes, &copy.trace_header),
            (
                &order(7).body,
                &order(7).message_attributes,
                &order(7).trace_header
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_copy_deduplication_id_names_the_original_so_a_retried_send_is_not_enqueued_twice()
    {
        let queue = FakeQueue::builder().fifo(true).max_receive_count(2).build();
        let id = queue.push(fifo_order(3, "g"));
        // The first receive leaves it at 1, the probe's at 2 = the limit: re-sent.
        let _ = queue.receive(1, 0, 0).await.unwrap();
        let out = run(
            &queue,
            &FakeConsumer::failing(),
            &FakeEvents::default(),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(out.verdict, Verdict::Unhealthy);
        // A retry of the same copy (same deduplication id) within 5 minutes is not enqueued.
        let copy = ReceivedMessage {
            message_id: id.clone(),
            receipt_handle: String::new(),
            body: order(3).body,
            md5_of_body: String::new(),
            md5_of_message_attributes: None,
            attributes: BTreeMap::from([("MessageGroupId".into(), "g".into())]),
            message_attributes: order(3).message_attributes,
        }
        .faithful_fifo_copy("0")
        .unwrap();
        assert_eq!(
            copy.fifo.as_ref().unwrap().deduplication_id,
            format!("breaker-copy-{id}")
        );
        queue.send_batch(vec![copy]).await.unwrap();
        assert_eq!(queue.len(), 1, "one copy, not two");
    }

    #[tokio::test(start_paused = true)]
    async fn empty_queue_is_verdict_empty_without_invoking_the_consumer() {
        let queue = FakeQueue::new();
        let consumer = FakeConsumer::healthy();
        let out = run(&queue, &consumer, &FakeEvents::default(), &[])
            .await
            .unwrap();
        assert_eq!(
            (out.verdict, out.probed, out.state.attempt),
            (Verdict::Empty, 0, 5)
        );
        assert!(consumer.invocations().is_empty());
        assert_eq!(queue.calls(), vec![Op::Receive, Op::Info]);
    }

    /// Messages the consumer received before the trip stay invisible until their visibility
    /// timeout ends, and their outcome is not known: a receive that finds nothing visible while
    /// some are in flight is no evidence of health. Reading it as `empty` re-enabled the
    /// mapping into a downstream still down (the simulator's `empty-queue`: the consumer then
    /// dead-lettered 221 of them over four half-open cycles). The circuit stays open, the next
    /// probe goes on (`unhealthy`, nothing probed), and nothing is changed or invoked.
    #[tokio::test(start_paused = true)]
    async fn a_receive_that_finds_nothing_visible_while_messages_are_in_flight_is_no_evidence_of_health()
     {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        queue.push(order(1));
        queue.push(order(2));
        // The consumer's last batch before the trip: received, hidden for 180 s, not deleted.
        let hidden = queue.receive(10, 0, 180).await.unwrap();
        assert_eq!(hidden.len(), 2);
        let consumer = FakeConsumer::healthy();
        let events = FakeEvents::default();
        let out = run(&queue, &consumer, &events, &[]).await.unwrap();
        assert_eq!(
            (out.verdict, out.probed, out.state.attempt),
            (Verdict::Unhealthy, 0, 5)
        );
        assert!(consumer.invocations().is_empty());
        assert_eq!(queue.calls(), vec![Op::Receive, Op::Receive, Op::Info]);
        assert!(
            queue
                .messages()
                .iter()
                .all(|m| m.in_flight && m.receive_count == 1),
            "nothing changed: {:?}",
            queue.messages()
        );
        let failed = events.events();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].detail_type, DetailType::ProbeFailed);
        assert_eq!(failed[0].detail["inFlight"], 2);
        assert!(
            failed[0].detail["reason"]
                .as_str()
                .is_some_and(|r| r.contains("in flight")),
            "{failed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn batch_item_failure_naming_a_probed_message_is_unhealthy_and_only_that_one_is_kept() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        let first = queue.push(order(1));
        let second = queue.push(order(2));
        let failing = second.clone();
        let consumer = FakeConsumer::new(move |_| {
            Ok(InvokeResult {
                status: 200,
                function_error: None,
                payload: json!({ "batchItemFailures": [{ "itemIdentifier": failing }] })
                    .to_string()
                    .into_bytes(),
            })
        });
        let out = run(
            &queue,
            &consumer,
            &FakeEvents::default(),
            &[("PROBE_COUNT", "2")],
        )
        .await
        .unwrap();
        assert_eq!((out.verdict, out.probed), (Verdict::Unhealthy, 2));
        let left: Vec<String> = queue.messages().into_iter().map(|m| m.message_id).collect();
        assert_eq!(left, vec![second]);
        assert!(!left.contains(&first));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_invoke_is_probe_failed_and_puts_the_message_back() {
        let queue = FakeQueue::builder().max_receive_count(3).build();
        queue.push(order(3));
        let consumer = FakeConsumer::new(|_| {
            Err(PortError::new(
                "Invoke",
                FaultKind::Retryable,
                "TooManyRequestsException",
            ))
        });
        let err = run(&queue, &consumer, &FakeEvents::default(), &[])
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "ProbeFailed");
        let messages = queue.messages();
        assert_eq!(messages.len(), 1, "nothing lost");
        assert!(!messages[0].in_flight);
        assert_eq!(
            messages[0].receive_count, 0,
            "near the limit it was re-sent fresh"
        );
        assert!(queue.dead_lettered().is_empty());
    }

    /// A consumer whose every invoke fails with `kind`/`code`.
    fn invoke_failing(kind: FaultKind, code: &'static str) -> FakeConsumer {
        FakeConsumer::new(move |_| {
            Err(PortError {
                operation: "Invoke",
                kind,
                code: Some(code.into()),
                message: format!("{code} from the service"),
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_invoke_error_ends_the_probe_non_retryable_naming_the_cause() {
        for code in [
            "AccessDeniedException",
            "ResourceNotFoundException",
            "RequestTooLargeException",
            "KMSDisabledException",
        ] {
            // One message far from the limit (released), one near it (re-sent fresh).
            let queue = FakeQueue::builder().max_receive_count(3).build();
            let far = queue.push(order(1));
            let consumer = invoke_failing(FaultKind::NonRetryable, code);
            let events = FakeEvents::default();
            let err = run(&queue, &consumer, &events, &[]).await.unwrap_err();
            assert_eq!(err.error_type(), "NonRetryable", "{code}: {err}");
            let message = err.to_string();
            assert!(
                message.contains(code) && message.contains("orders-consumer"),
                "names the cause and the consumer: {message}"
            );
            assert!(
                events.events().is_empty(),
                "{code}: the stuck handler announces it, not the probe"
            );
            assert_eq!(consumer.invocations().len(), 1, "{code}: invoked once");
            let messages = queue.messages();
            assert_eq!(messages.len(), 1, "{code}: nothing lost");
            assert!(!messages[0].in_flight, "{code}: put back at once");
            assert_ne!(
                messages[0].message_id, far,
                "{code}: near the limit it was re-sent"
            );
            assert!(queue.dead_lettered().is_empty());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_invoke_error_releases_a_message_far_from_the_limit_unchanged() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        let id = queue.push(order(1));
        let consumer = invoke_failing(FaultKind::NonRetryable, "AccessDeniedException");
        let err = run(&queue, &consumer, &FakeEvents::default(), &[])
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable");
        let m = &queue.messages()[0];
        assert_eq!(
            (m.message_id.as_str(), m.receive_count, m.in_flight),
            (id.as_str(), 1, false)
        );
        assert_eq!(queue.call_count(Op::SendBatch), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_invoke_failure_announces_probe_failed_naming_the_error() {
        for (kind, code) in [
            (FaultKind::Retryable, "TooManyRequestsException"),
            (FaultKind::Retryable, "ServiceException"),
            (FaultKind::InUse, "ResourceConflictException"),
        ] {
            let queue = FakeQueue::builder().max_receive_count(10).build();
            let id = queue.push(order(1));
            let events = FakeEvents::default();
            let err = run(&queue, &invoke_failing(kind, code), &events, &[])
                .await
                .unwrap_err();
            assert_eq!(err.error_type(), "ProbeFailed", "{code}: {err}");
            assert_eq!(
                events.detail_types(),
                vec![DetailType::ProbeFailed],
                "{code}"
            );
            let d = &events.events()[0].detail;
            assert_eq!(d["reason"], "invoke failed", "{code}");
            assert!(
                d["error"].as_str().is_some_and(|e| e.contains(code)),
                "{code}: {d:?}"
            );
            assert_eq!(
                (
                    d["circuit"].clone(),
                    d["esmUuid"].clone(),
                    d["attempt"].clone(),
                    d["openSeconds"].clone(),
                    d["probed"].clone(),
                    d["released"].clone()
                ),
                (
                    json!("orders"),
                    json!("esm-1"),
                    json!(5),
                    json!(30),
                    json!(1),
                    json!(1)
                ),
                "{code}"
            );
            let m = &queue.messages()[0];
            assert_eq!(
                (m.message_id.as_str(), m.in_flight),
                (id.as_str(), false),
                "{code}: released"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probe_failed_is_returned_even_when_the_event_cannot_be_put() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        queue.push(order(1));
        let events = FakeEvents::failing(PortError::new(
            "PutEvents",
            FaultKind::Retryable,
            "ThrottlingException",
        ));
        let err = run(
            &queue,
            &invoke_failing(FaultKind::Retryable, "TooManyRequestsException"),
            &events,
            &[],
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "ProbeFailed", "{err}");
        assert!(
            err.to_string().contains("TooManyRequestsException"),
            "{err}"
        );
        assert!(!queue.messages()[0].in_flight, "released");
    }

    /// A message of about 1 MiB (SQS's maximum) whose body needs JSON escaping throughout, so
    /// that its record in the SQS event is about twice its size.
    fn large(n: u32) -> OutgoingMessage {
        let mut body = format!("{{\"order\":{n},\"blob\":\"");
        while body.len() < 1_040_000 {
            body.push_str("\"\\\n");
        }
        OutgoingMessage {
            id: String::new(),
            body,
            message_attributes: BTreeMap::from([(
                "sig".into(),
                AttributeValue::binary("Binary", vec![0xff; 4_000]),
            )]),
            trace_header: None,
            fifo: None,
            delay_seconds: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_large_messages_are_probed_with_fewer_and_the_rest_released_unchanged() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        let ids: Vec<String> = (0..10).map(|n| queue.push(large(n))).collect();
        let consumer = FakeConsumer::healthy();
        let out = run(
            &queue,
            &consumer,
            &FakeEvents::default(),
            &[("PROBE_COUNT", "10")],
        )
        .await
        .unwrap();
        let invocations = consumer.invocations();
        assert_eq!(invocations.len(), 1);
        let size = serde_json::to_vec(&invocations[0]).unwrap().len();
        let records = invocations[0]["Records"].as_array().unwrap();
        assert!(
            size <= SYNC_INVOKE_PAYLOAD_LIMIT_BYTES,
            "the invoke payload ({size} bytes, {} records) exceeds Lambda's limit",
            records.len()
        );
        assert!(
            !records.is_empty() && records.len() < 10,
            "{}",
            records.len()
        );
        assert_eq!(
            (out.verdict, out.probed as usize),
            (Verdict::Healthy, records.len())
        );
        let invoked: Vec<&str> = records
            .iter()
            .map(|r| r["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(
            invoked,
            ids[..records.len()]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        // The invoked ones were processed and deleted; the others are back, unchanged.
        let left = queue.messages();
        assert_eq!(
            left.iter()
                .map(|m| m.message_id.clone())
                .collect::<Vec<_>>(),
            ids[records.len()..].to_vec()
        );
        assert!(left.iter().all(|m| !m.in_flight && m.receive_count == 1));
        assert_eq!(queue.call_count(Op::SendBatch), 0);
        assert!(queue.dead_lettered().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_of_the_largest_size_always_fits_a_synchronous_invoke() {
        let queue = FakeQueue::new();
        for n in 0..10 {
            queue.push(large(n));
        }
        let received = queue.receive(10, 0, 60).await.unwrap();
        assert_eq!(received.len(), 10);
        let config = config(&[]);
        for m in &received {
            let event = sqs_event(std::slice::from_ref(m), &config.queue_arn, &config.region);
            let size = serde_json::to_vec(&event).unwrap().len();
            assert!(m.body.len() > 1_000_000);
            assert!(
                size <= SYNC_INVOKE_PAYLOAD_LIMIT_BYTES,
                "one message makes a {size}-byte event"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn original_is_kept_when_its_copy_cannot_be_sent() {
        let queue = FakeQueue::builder().max_receive_count(3).build();
        let id = queue.push(order(4));
        queue.fail_send_entries(|_| true, None, "InternalError", false);
        let messages = probe_unhealthy_leaving_one(&queue).await;
        assert_eq!(messages[0].message_id, id, "the original was not deleted");
        assert!(!messages[0].in_flight, "it was released instead");
        assert_eq!(queue.call_count(Op::DeleteBatch), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_delete_after_a_healthy_probe_keeps_the_verdict_and_the_message() {
        let queue = FakeQueue::new();
        queue.push(order(5));
        queue.fail_calls(
            Op::DeleteBatch,
            Some(1),
            FaultKind::Retryable,
            "InternalError",
        );
        let out = run(
            &queue,
            &FakeConsumer::healthy(),
            &FakeEvents::default(),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(out.verdict, Verdict::Healthy);
        assert_eq!(
            queue.len(),
            1,
            "an undeleted message is a duplicate later, never a loss"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn malformed_probe_input_touches_neither_queue_nor_consumer() {
        let queue = FakeQueue::new();
        queue.push(order(1));
        let consumer = FakeConsumer::healthy();
        let mut bad = state_json(1, 1, 1, None);
        bad["attempt"] = json!(-3);
        let err = run_input(
            json!({ "state": bad }),
            &queue,
            &consumer,
            &FakeEvents::default(),
            &[],
            1,
        )
        .await
        .unwrap_err();
        match err {
            HandlerError::Input(e) => assert_eq!(e.field, "state.attempt"),
            other => panic!("{other:?}"),
        }
        assert!(queue.calls().is_empty());
        assert!(consumer.invocations().is_empty());
    }

    /// A mapping that delivers only orders whose number is in `numbers`.
    fn orders_filter(numbers: &[u32]) -> FakeEsm {
        FakeEsm::new(EsmState::Disabled, Some(10)).filter_patterns(&[&format!(
            r#"{{"body":{{"order":{}}}}}"#,
            serde_json::to_string(numbers).unwrap()
        )])
    }

    fn invoked_bodies(consumer: &FakeConsumer) -> Vec<Vec<String>> {
        consumer
            .invocations()
            .iter()
            .map(|event| {
                event["Records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["body"].as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_the_mapping_filters_out_is_never_handed_to_the_consumer() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        queue.push(order(1));
        let wanted = queue.push(order(2));
        let consumer = FakeConsumer::healthy();
        let out = run_filtered(
            orders_filter(&[2]),
            &queue,
            &consumer,
            &FakeEvents::default(),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(
            invoked_bodies(&consumer),
            vec![vec![order(2).body]],
            "the consumer gets only what the mapping would deliver"
        );
        assert_eq!(
            consumer.invocations()[0]["Records"][0]["messageId"],
            wanted.as_str()
        );
        assert_eq!((out.verdict, out.probed), (Verdict::Healthy, 1));
        assert!(
            queue.is_empty(),
            "the filtered-out message is deleted as the mapping deletes it, the probed one processed"
        );
        assert!(queue.dead_lettered().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn filtered_out_messages_are_counted_and_the_probe_goes_on_to_the_next_message() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        for n in [1, 3, 5, 2, 4] {
            queue.push(order(n));
        }
        let consumer = FakeConsumer::healthy();
        let out = run_filtered(
            orders_filter(&[2, 4]),
            &queue,
            &consumer,
            &FakeEvents::default(),
            &[("PROBE_COUNT", "2")],
        )
        .await
        .unwrap();
        assert_eq!(
            invoked_bodies(&consumer),
            vec![vec![order(2).body, order(4).body]]
        );
        assert_eq!(
            (out.verdict, out.probed, out.filtered_out),
            (Verdict::Healthy, 2, 3)
        );
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_of_filtered_out_messages_only_is_verdict_empty() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        queue.push(order(1));
        let consumer = FakeConsumer::healthy();
        let out = run_filtered(
            orders_filter(&[2]),
            &queue,
            &consumer,
            &FakeEvents::default(),
            &[],
        )
        .await
        .unwrap();
        assert!(consumer.invocations().is_empty());
        assert_eq!(
            (out.verdict, out.probed, out.filtered_out),
            (Verdict::Empty, 0, 1)
        );
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn no_deliverable_message_within_the_receive_limit_is_unhealthy_and_announced() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        let rounds = FILTER_RECEIVES as u32;
        for n in 0..rounds {
            queue.push(order(100 + n));
        }
        let kept = queue.push(order(2));
        let (consumer, events) = (FakeConsumer::healthy(), FakeEvents::default());
        let out = run_filtered(orders_filter(&[2]), &queue, &consumer, &events, &[])
            .await
            .unwrap();
        assert!(consumer.invocations().is_empty());
        assert_eq!(
            (out.verdict, out.probed, out.filtered_out),
            (Verdict::Unhealthy, 0, rounds)
        );
        let left: Vec<String> = queue.messages().into_iter().map(|m| m.message_id).collect();
        assert_eq!(
            left,
            vec![kept],
            "the deliverable message waits for the next probe"
        );
        assert_eq!(events.detail_types(), vec![DetailType::ProbeFailed]);
        let d = &events.events()[0].detail;
        assert_eq!(
            (d["probed"].clone(), d["filteredOut"].clone()),
            (json!(0), json!(rounds))
        );
        assert!(
            d["reason"].as_str().unwrap().contains("FilterCriteria"),
            "{d:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unhealthy_probe_reports_the_filtered_out_messages_too() {
        let queue = FakeQueue::builder().max_receive_count(10).build();
        queue.push(order(1));
        queue.push(order(2));
        let events = FakeEvents::default();
        let out = run_filtered(
            orders_filter(&[2]),
            &queue,
            &FakeConsumer::failing(),
            &events,
            &[],
        )
        .await
        .unwrap();
        assert_eq!(
            (out.verdict, out.probed, out.filtered_out),
            (Verdict::Unhealthy, 1, 1)
        );
        assert_eq!(events.events()[0].detail["filteredOut"], json!(1));
        let left = queue.messages();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].body, order(2).body, "the failed one is put back");
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_filter_pattern_fails_non_retryable_and_touches_nothing() {
        let queue = FakeQueue::new();
        queue.push(order(1));
        let consumer = FakeConsumer::healthy();
        let esm = FakeEsm::new(EsmState::Disabled, Some(10))
            .filter_patterns(&[r#"{"body":{"order":[1]}}"#, r#"{"body":{"order":1}}"#]);
        let err = run_filtered(esm, &queue, &consumer, &FakeEvents::default(), &[])
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable", "{err}");
        let message = err.to_string();
        assert!(
            message.contains("filter pattern 1 ") && message.contains(r#"{"body":{"order":1}}"#),
            "names the pattern: {message}"
        );
        assert!(queue.calls().is_empty(), "{:?}", queue.calls());
        assert!(consumer.invocations().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn filter_criteria_the_breaker_cannot_read_fail_non_retryable_and_touch_nothing() {
        let queue = FakeQueue::new();
        queue.push(order(1));
        let consumer = FakeConsumer::healthy();
        let esm = FakeEsm::new(EsmState::Disabled, Some(10))
            .filter_criteria_error("KMSAccessDeniedException: no kms:Decrypt");
        let err = run_filtered(esm, &queue, &consumer, &FakeEvents::default(), &[])
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable", "{err}");
        assert!(
            err.to_string().contains("KMSAccessDeniedException"),
            "{err}"
        );
        assert!(queue.calls().is_empty());
        assert!(consumer.invocations().is_empty());
    }
}
