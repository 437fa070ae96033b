//! Re-jitter throughput benchmark (not a timed test).
//!
//! Run: `cargo bench -p breaker-handlers --bench rejitter --profile dev`
//! (`--profile dev` reuses the test build; the release profile's LTO build is not needed for an
//! I/O-bound measurement). Options: `REJITTER_BENCH_MESSAGES` (default 20000),
//! `REJITTER_BENCH_LATENCY_MS` (default 20), `REJITTER_BENCH_LANES` (default 8).
//!
//! A loopback SQS stub speaking the SQS JSON protocol (AWS JSON 1.0, `X-Amz-Target:
//! AmazonSQS.<Operation>`) answers every request after an injected latency; its queue is the
//! testkit's `FakeQueue`. The real `SqsQueue` adapter (AWS SDK, HTTP/1.1 keep-alive) talks to it.
//!
//! - **rejitter**: one `rejitter` invocation (`run_rejitter`) with `LANES` in-flight batches.
//! - **baseline**: the reference sample's method as an ESM-driven Lambda would run it: `LANES`
//!   concurrent invocations, each receiving a batch of 10, sending each message with its own
//!   `SendMessage` (delay drawn per message), then deleting the batch.
//!
//! Reported: messages moved per second, the ratio to the API limit `10 × LANES / RTT` (RTT
//! measured on the stub with an empty `GetQueueAttributes`), API calls per message, and the
//! speed-up over the baseline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use breaker_aws::sqs::SqsQueue;
use breaker_core::message::{AttributeValue, OutgoingMessage, ReceivedMessage};
use breaker_core::ports::Queue;
use breaker_handlers::rejitter::{RejitterSettings, run_rejitter};
use breaker_testkit::FakeQueue;
use rand::RngExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- the SQS JSON stub

struct Stub {
    queue: FakeQueue,
    latency: Duration,
    requests: AtomicU64,
}

fn attributes_json(m: &BTreeMap<String, AttributeValue>) -> Value {
    m.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({ "DataType": v.data_type, "StringValue": v.string_value }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn attributes_from_json(v: Option<&Value>) -> BTreeMap<String, AttributeValue> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let value = AttributeValue {
                        data_type: v["DataType"].as_str().unwrap_or("String").to_owned(),
                        string_value: v["StringValue"].as_str().map(str::to_owned),
                        binary_value: None,
                    };
                    (k.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn outgoing_from_json(e: &Value) -> OutgoingMessage {
    OutgoingMessage {
        id: e["Id"].as_str().unwrap_or("0").to_owned(),
        body: e["MessageBody"].as_str().unwrap_or_default().to_owned(),
        message_attributes: attributes_from_json(e.get("MessageAttributes")),
        trace_header: e["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
            .as_str()
            .map(str::to_owned),
        delay_seconds: e["DelaySeconds"].as_u64().unwrap_or(0) as u32,
        fifo: None,
    }
}

fn received_json(m: &ReceivedMessage) -> Value {
    json!({
        "MessageId": m.message_id,
        "ReceiptHandle": m.receipt_handle,
        "MD5OfBody": "d41d8cd98f00b204e9800998ecf8427e",
        "Body": m.body,
        "Attributes": m.attributes,
        "MessageAttributes": attributes_json(&m.message_attributes),
    })
}

impl Stub {
    async fn handle(&self, target: &str, body: &Value) -> Value {
        let q = &self.queue;
        let failed = |f: Vec<breaker_core::message::EntryFailure>| -> Vec<Value> {
            f.into_iter()
                .map(|f| json!({"Id": f.id, "Code": f.code, "SenderFault": f.sender_fault, "Message": f.message}))
                .collect()
        };
        match target {
            "AmazonSQS.ReceiveMessage" => {
                let max = body["MaxNumberOfMessages"].as_u64().unwrap_or(1) as u8;
                let wait = body["WaitTimeSeconds"].as_u64().unwrap_or(0) as u8;
                let vis = body["VisibilityTimeout"].as_u64().unwrap_or(30) as u32;
                let got = q.receive(max, wait, vis).await.expect("receive");
                json!({ "Messages": got.iter().map(received_json).collect::<Vec<_>>() })
            }
            "AmazonSQS.SendMessageBatch" => {
                let entries: Vec<OutgoingMessage> = body["Entries"]
                    .as_array()
                    .map(|a| a.iter().map(outgoing_from_json).collect())
                    .unwrap_or_default();
                let out = q.send_batch(entries).await.expect("send batch");
                let ok: Vec<Value> = out
                    .succeeded
                    .iter()
                    .map(|id| json!({"Id": id, "MessageId": format!("copy-{id}"), "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e"}))
                    .collect();
                json!({ "Successful": ok, "Failed": failed(out.failed) })
            }
            "AmazonSQS.SendMessage" => {
                let mut m = outgoing_from_json(body);
                m.id = "0".into();
                let out = q.send_batch(vec![m]).await.expect("send");
                assert!(out.failed.is_empty());
                json!({ "MessageId": "copy", "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e" })
            }
            "AmazonSQS.DeleteMessageBatch" => {
                let entries: Vec<(String, String)> = body["Entries"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                (
                                    e["Id"].as_str().unwrap_or_default().to_owned(),
                                    e["ReceiptHandle"].as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let out = q.delete_batch(entries).await.expect("delete batch");
                let ok: Vec<Value> = out.succeeded.iter().map(|id| json!({"Id": id})).collect();
                json!({ "Successful": ok, "Failed": failed(out.failed) })
            }
            "AmazonSQS.ChangeMessageVisibility" => {
                let handle = body["ReceiptHandle"].as_str().unwrap_or_default();
                let secs = body["VisibilityTimeout"].as_u64().unwrap_or(0) as u32;
                let _ = q.change_visibility(handle, secs).await;
                json!({})
            }
            "AmazonSQS.GetQueueAttributes" => {
                let i = q.info().await.expect("info");
                json!({ "Attributes": {
                    "ApproximateNumberOfMessages": i.visible.to_string(),
                    "ApproximateNumberOfMessagesNotVisible": i.in_flight.to_string(),
                    "ApproximateNumberOfMessagesDelayed": i.delayed.to_string(),
                }})
            }
            other => panic!("stub does not implement {other}"),
        }
    }

    async fn serve_connection(self: Arc<Self>, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let (mut length, mut target) = (0usize, String::new());
            loop {
                line.clear();
                reader.read_line(&mut line).await?;
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "x-amz-target" => target = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).await?;
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            self.requests.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.latency).await;
            let response = self.handle(&target, &body).await.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n\
                 x-amzn-RequestId: bench\r\nContent-Length: {}\r\n\r\n",
                response.len()
            );
            let stream = reader.get_mut();
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(response.as_bytes()).await?;
        }
    }
}

async fn start_stub(queue: FakeQueue, latency: Duration) -> (Arc<Stub>, String) {
    let mut listener = None;
    for port in 5200..5300 {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await {
            listener = Some(l);
            break;
        }
    }
    let listener = listener.expect("a free port in 5200-5299");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
    let stub = Arc::new(Stub {
        queue,
        latency,
        requests: AtomicU64::new(0),
    });
    let s = stub.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(s.clone().serve_connection(stream));
        }
    });
    (stub, endpoint)
}

fn client(endpoint: &str) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

fn message(i: u64) -> OutgoingMessage {
    OutgoingMessage {
        id: String::new(),
        body: format!("{{\"order\":{i},\"payload\":\"{}\"}}", "x".repeat(200)),
        message_attributes: BTreeMap::from([(
            "tenant".into(),
            AttributeValue {
                data_type: "String".into(),
                string_value: Some(format!("t{}", i % 7)),
                binary_value: None,
            },
        )]),
        trace_header: Some(format!("Root=1-5759e988-{i:024x};Sampled=1")),
        fifo: None,
        delay_seconds: 0,
    }
}

fn fill(n: u64) -> (FakeQueue, u64) {
    let q = FakeQueue::new();
    let now = q.now_ms();
    for i in 0..n {
        q.push_sent_at(message(i), now - 60_000);
    }
    (q, now - 1_000)
}

/// Round trip of one request on an empty stub with the same latency (stub + SDK + loopback).
async fn measure_rtt(latency: Duration) -> Duration {
    let (_stub, endpoint) = start_stub(FakeQueue::new(), latency).await;
    let queue = SqsQueue::new(client(&endpoint), format!("{endpoint}/123456789012/empty"));
    queue.info().await.expect("warm-up");
    let start = Instant::now();
    for _ in 0..10 {
        queue.info().await.expect("info");
    }
    start.elapsed() / 10
}

struct Figures {
    moved: u64,
    seconds: f64,
    calls: u64,
}

async fn run_rejitter_mode(n: u64, latency: Duration, lanes: usize) -> (Figures, Duration) {
    let (fake, cutoff) = fill(n);
    let (stub, endpoint) = start_stub(fake.clone(), latency).await;
    let queue = SqsQueue::new(client(&endpoint), format!("{endpoint}/123456789012/bench"));
    let rtt = measure_rtt(latency).await;
    let mut settings = RejitterSettings::new(true, 0, 300, 4, 600).expect("settings");
    settings.in_flight_batches = lanes;
    // The construct's default memory of the re-jitter function (`rejitter.memorySize`), at which
    // every lane receives 10 messages at a time.
    settings.function_memory_bytes = 512 * 1024 * 1024;
    let before = stub.requests.load(Ordering::Relaxed);
    let start = Instant::now();
    let out = run_rejitter(&queue, &settings, json!({"worker": 0, "cutoffMs": cutoff}))
        .await
        .expect("rejitter");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(out.moved, n, "every message moved");
    assert_eq!(fake.len() as u64, n, "nothing lost or duplicated");
    let calls = stub.requests.load(Ordering::Relaxed) - before;
    (
        Figures {
            moved: out.moved,
            seconds,
            calls,
        },
        rtt,
    )
}

/// One ESM-driven invocation of the reference sample, looped: receive 10, `SendMessage` each
/// with its own delay (sequentially, as the sample's handler does), delete the batch.
async fn baseline_lane(client: &aws_sdk_sqs::Client, url: &str, moved: &AtomicU64, target: u64) {
    loop {
        if moved.load(Ordering::Relaxed) >= target {
            return;
        }
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        for m in &messages {
            let delay = rand::rng().random_range(0..=300);
            client
                .send_message()
                .queue_url(url)
                .message_body(m.body().unwrap_or_default())
                .delay_seconds(delay)
                .set_message_attributes(m.message_attributes.clone())
                .send()
                .await
                .expect("send");
        }
        let mut delete = client.delete_message_batch().queue_url(url);
        for (i, m) in messages.iter().enumerate() {
            delete = delete.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("entry"),
            );
        }
        delete.send().await.expect("delete");
        moved.fetch_add(messages.len() as u64, Ordering::Relaxed);
    }
}

async fn run_baseline_mode(n: u64, latency: Duration, lanes: usize) -> Figures {
    let (fake, _) = fill(n);
    let (stub, endpoint) = start_stub(fake, latency).await;
    let sqs = client(&endpoint);
    let url = format!("{endpoint}/123456789012/bench");
    let moved = AtomicU64::new(0);
    let before = stub.requests.load(Ordering::Relaxed);
    let start = Instant::now();
    futures::future::join_all((0..lanes).map(|_| baseline_lane(&sqs, &url, &moved, n))).await;
    let seconds = start.elapsed().as_secs_f64();
    let calls = stub.requests.load(Ordering::Relaxed) - before;
    Figures {
        moved: moved.load(Ordering::Relaxed),
        seconds,
        calls,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_or("REJITTER_BENCH_MESSAGES", 20_000);
    let latency = Duration::from_millis(env_or("REJITTER_BENCH_LATENCY_MS", 20));
    let lanes = env_or("REJITTER_BENCH_LANES", 8) as usize;
    println!(
        "re-jitter benchmark: {n} messages, {latency:?} injected latency, {lanes} in-flight batches"
    );

    let (ours, rtt) = run_rejitter_mode(n, latency, lanes).await;
    let limit = 10.0 * lanes as f64 / rtt.as_secs_f64();
    let ours_rate = ours.moved as f64 / ours.seconds;
    // The baseline is ~12 round trips per 10 messages: a smaller backlog keeps the run short.
    let base = run_baseline_mode((n / 5).max(1_000), latency, lanes).await;
    let base_rate = base.moved as f64 / base.seconds;

    println!(
        "measured RTT (stub, keep-alive): {:.1} ms",
        rtt.as_secs_f64() * 1e3
    );
    println!("API limit 10 x {lanes} / RTT: {limit:.0} msg/s");
    println!(
        "rejitter : moved {} in {:.2} s = {:.0} msg/s, {:.0}% of the API limit, {:.3} API calls/message",
        ours.moved,
        ours.seconds,
        ours_rate,
        100.0 * ours_rate / limit,
        ours.calls as f64 / ours.moved as f64
    );
    println!(
        "baseline : moved {} in {:.2} s = {:.0} msg/s, {:.0}% of the API limit, {:.3} API calls/message",
        base.moved,
        base.seconds,
        base_rate,
        100.0 * base_rate / limit,
        base.calls as f64 / base.moved as f64
    );
    println!("speed-up over baseline: {:.1}x", ours_rate / base_rate);
}
