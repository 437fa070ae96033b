//! Re-jitter's peak resident memory with large messages (issue 13 item 6); not a timed test.
//!
//! Run: `cargo bench -p breaker-handlers --bench rejitter_memory --profile dev`
//! Options: `REJITTER_MEMORY_MIB` (function memories to model, default `128,512`),
//! `REJITTER_MEMORY_MESSAGES` (messages per pass; default 240 of 1 MiB, 4× as many of 256 KiB).
//!
//! Every case runs in fresh processes: a loopback SQS stub (this binary with
//! `REJITTER_MEMORY_ROLE=stub`) speaking the SQS JSON protocol, and a worker (`…=worker`) that
//! runs one `rejitter` slice (`run_rejitter`, 8 lanes, the real `SqsQueue` adapter and AWS SDK)
//! with `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set as Lambda sets it, and reports its own peak
//! resident memory (`VmHWM` from `/proc/self/status`: runtime, SDK buffers, messages). The stub
//! holds no message in the worker's process: it makes every message when it is received (body
//! plus 10 attributes — String, Number, Binary — exactly at the given size as SQS counts it,
//! SentTimestamp before the cutoff), refuses a `SendMessageBatch` over 10 entries, over 1 MiB
//! in all or with an entry over 1 MiB (`BatchRequestTooLong`, as SQS does), and checks every
//! copy byte for byte against the message it was made from.
//!
//! Printed per message size and function memory: the median and worst peak of 3 seeded runs and
//! their share of the function's memory (target: under 80 %).

use std::io::{BufRead, BufReader as StdBufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use breaker_aws::sqs::SqsQueue;
use breaker_handlers::rejitter::{RejitterSettings, run_rejitter};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// SQS's limit on one message and on one `SendMessageBatch`.
const LIMIT: usize = 1_048_576;
/// Messages are "sent" this long before the worker's cutoff.
const SENT_MS: u64 = 1_000_000_000_000;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------- messages

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_len_decoded(s: &str) -> usize {
    s.len() / 4 * 3 - s.bytes().rev().take_while(|b| *b == b'=').count()
}

/// The 10 attributes of message `order` as the JSON protocol carries them.
fn attributes(order: u64) -> Value {
    let mut m = serde_json::Map::new();
    for a in 0..10u64 {
        let v = match a % 3 {
            0 => json!({"DataType": "String", "StringValue": format!("tenant-{order}-{a}")}),
            1 => json!({"DataType": "Number", "StringValue": format!("{}", order * 1_000 + a)}),
            _ => {
                json!({"DataType": "Binary", "BinaryValue": base64(&[(order % 256) as u8, 0, 255, a as u8])})
            }
        };
        m.insert(format!("attr{a}"), v);
    }
    Value::Object(m)
}

/// Bytes SQS counts for a message: body plus attribute names, types and values (UTF-8 bytes;
/// binary values decoded).
fn sqs_size(body: &str, attributes: &Value) -> usize {
    body.len()
        + attributes.as_object().map_or(0, |o| {
            o.iter()
                .map(|(k, v)| {
                    k.len()
                        + v["DataType"].as_str().map_or(0, str::len)
                        + v["StringValue"].as_str().map_or(0, str::len)
                        + v["BinaryValue"].as_str().map_or(0, base64_len_decoded)
                })
                .sum()
        })
}

struct Maker {
    /// Random text (ASCII, `é`, quotes and backslashes that JSON escapes), longer than a body.
    template: String,
    size: usize,
}

impl Maker {
    fn new(seed: u64, size: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789 é\"\\{}:,"
            .chars()
            .collect();
        let template: String = (0..size)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        Self { template, size }
    }

    /// The body of message `order`: `{"order":N,"p":"<template>` padded to the message size.
    fn body(&self, order: u64) -> String {
        let head = format!("{{\"order\":{order},\"p\":\"");
        let fill = self.size - sqs_size("", &attributes(order)) - head.len();
        let mut k = fill.min(self.template.len());
        while !self.template.is_char_boundary(k) {
            k -= 1;
        }
        let mut body = head + &self.template[..k];
        body.extend(std::iter::repeat_n('x', fill - k));
        body
    }
}

// ---------------------------------------------------------------- the stub (its own process)

#[derive(Default)]
struct Stats {
    remaining: u64,
    received: u64,
    sent: u64,
    identical: u64,
    deleted: u64,
    released: u64,
    refused: Vec<String>,
    largest_batch: usize,
}

struct Stub {
    maker: Maker,
    stats: Mutex<Stats>,
    next: Mutex<u64>,
}

impl Stub {
    fn handle(&self, target: &str, body: &Value) -> Result<Value, (String, String)> {
        let mut stats = self.stats.lock().unwrap();
        match target {
            "AmazonSQS.ReceiveMessage" => {
                let max = body["MaxNumberOfMessages"].as_u64().unwrap_or(1);
                let n = max.min(stats.remaining);
                stats.remaining -= n;
                stats.received += n;
                drop(stats);
                let mut next = self.next.lock().unwrap();
                let messages: Vec<Value> = (0..n)
                    .map(|_| {
                        let order = *next;
                        *next += 1;
                        json!({
                            "MessageId": format!("m-{order}"),
                            "ReceiptHandle": format!("rh-{order}"),
                            "MD5OfBody": "d41d8cd98f00b204e9800998ecf8427e",
                            "Body": self.maker.body(order),
                            "Attributes": {
                                "SentTimestamp": SENT_MS.to_string(),
                                "ApproximateReceiveCount": "1",
                                "AWSTraceHeader": format!("Root=1-5759e988-{order:024x};Sampled=1"),
                            },
                            "MessageAttributes": attributes(order),
                        })
                    })
                    .collect();
                Ok(json!({ "Messages": messages }))
            }
            "AmazonSQS.SendMessageBatch" => {
                let entries = body["Entries"].as_array().cloned().unwrap_or_default();
                let sizes: Vec<usize> = entries
                    .iter()
                    .map(|e| {
                        sqs_size(
                            e["MessageBody"].as_str().unwrap_or(""),
                            &e["MessageAttributes"],
                        )
                    })
                    .collect();
                let total: usize = sizes.iter().sum();
                if entries.len() > 10 || total > LIMIT || sizes.iter().any(|s| *s > LIMIT) {
                    let why = format!("{} entries, {total} bytes", entries.len());
                    stats.refused.push(why.clone());
                    return Err(("BatchRequestTooLong".into(), why));
                }
                stats.largest_batch = stats.largest_batch.max(total);
                let mut ok = Vec::new();
                for e in &entries {
                    let body = e["MessageBody"].as_str().unwrap_or("");
                    let order: u64 = body["{\"order\":".len()..body.find(',').unwrap_or(9)]
                        .parse()
                        .unwrap_or(u64::MAX);
                    let trace = e["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
                        .as_str()
                        .map(str::to_owned);
                    if body == self.maker.body(order)
                        && e["MessageAttributes"] == attributes(order)
                        && trace == Some(format!("Root=1-5759e988-{order:024x};Sampled=1"))
                    {
                        stats.identical += 1;
                    }
                    stats.sent += 1;
                    ok.push(json!({"Id": e["Id"], "MessageId": format!("copy-{order}"), "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e"}));
                }
                Ok(json!({ "Successful": ok, "Failed": [] }))
            }
            "AmazonSQS.DeleteMessageBatch" => {
                let entries = body["Entries"].as_array().cloned().unwrap_or_default();
                stats.deleted += entries.len() as u64;
                let ok: Vec<Value> = entries.iter().map(|e| json!({"Id": e["Id"]})).collect();
                Ok(json!({ "Successful": ok, "Failed": [] }))
            }
            "AmazonSQS.ChangeMessageVisibility" => {
                stats.released += 1;
                stats.remaining += 1;
                Ok(json!({}))
            }
            "AmazonSQS.GetQueueAttributes" => Ok(json!({ "Attributes": {
                "ApproximateNumberOfMessages": stats.remaining.to_string(),
                "ApproximateNumberOfMessagesNotVisible": "0",
                "ApproximateNumberOfMessagesDelayed": "0",
            }})),
            "Bench.Stats" => Ok(json!({
                "remaining": stats.remaining, "received": stats.received, "sent": stats.sent,
                "identical": stats.identical, "deleted": stats.deleted, "released": stats.released,
                "refused": stats.refused, "largestBatch": stats.largest_batch,
            })),
            other => Err((
                "InvalidAction".into(),
                format!("stub does not implement {other}"),
            )),
        }
    }

    async fn serve_connection(self: Arc<Self>, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let (mut length, mut target, mut expect) = (0usize, String::new(), false);
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
                        "expect" => expect = true,
                        _ => {}
                    }
                }
            }
            if expect {
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await?;
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).await?;
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, extra, response) = match self.handle(&target, &body) {
                Ok(v) => ("200 OK", String::new(), v.to_string()),
                Err((code, message)) => (
                    "400 Bad Request",
                    format!("x-amzn-query-error: AWS.SimpleQueueService.{code};Sender\r\n"),
                    json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message})
                        .to_string(),
                ),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\n{extra}\
                 x-amzn-RequestId: bench\r\nContent-Length: {}\r\n\r\n",
                response.len()
            );
            let stream = reader.get_mut();
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(response.as_bytes()).await?;
        }
    }
}

async fn stub_main(seed: u64, size: usize, count: u64) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let stub = Arc::new(Stub {
        maker: Maker::new(seed, size),
        stats: Mutex::new(Stats {
            remaining: count,
            ..Stats::default()
        }),
        next: Mutex::new(0),
    });
    println!("PORT {}", listener.local_addr().expect("bound").port());
    std::io::stdout().flush().expect("stdout");
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(stub.clone().serve_connection(stream));
    }
}

// ---------------------------------------------------------------- the worker (its own process)

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

fn stub_stats(port: u16) -> Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("stub");
    let req = "HTTP/1.1";
    write!(
        s,
        "POST / {req}\r\nHost: 127.0.0.1\r\nX-Amz-Target: Bench.Stats\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .expect("write");
    let mut r = StdBufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        if line.trim_end().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).expect("body");
    serde_json::from_slice(&body).expect("stats")
}

async fn worker_main(port: u16, seed: u64) {
    let endpoint = format!("http://127.0.0.1:{port}");
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .build();
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::from_conf(conf),
        format!("{endpoint}/123456789012/bench"),
    );
    let config = breaker_core::config::Config::from_env().expect("config");
    let mut settings = RejitterSettings::from_config(&config).expect("settings");
    settings.seed = Some(seed);
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let out = run_rejitter(
        &queue,
        &settings,
        json!({"worker": 0, "cutoffMs": SENT_MS + 60_000}),
    )
    .await
    .expect("rejitter");
    let peak = status_kib("VmHWM:");
    let stats = stub_stats(port);
    let p = settings.lane_plan();
    let plan = format!("{} × {}", p.lanes, p.receive_max);
    println!(
        "{}",
        json!({
            "peakKiB": peak, "startKiB": before, "moved": out.moved, "failed": out.failed,
            "seconds": started.elapsed().as_secs_f64(), "plan": plan,
            "stub": stats,
        })
    );
}

// ---------------------------------------------------------------- the orchestrator

fn run_case(size: usize, count: u64, memory_mib: u64, seed: u64) -> Value {
    let exe = std::env::current_exe().expect("exe");
    let mut stub = Command::new(&exe)
        .env("REJITTER_MEMORY_ROLE", "stub")
        .env("BENCH_SEED", seed.to_string())
        .env("BENCH_SIZE", size.to_string())
        .env("BENCH_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("stub");
    let mut line = String::new();
    StdBufReader::new(stub.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .expect("PORT line")
        .to_owned();
    let out = Command::new(&exe)
        .env("REJITTER_MEMORY_ROLE", "worker")
        .env("BENCH_PORT", &port)
        .env("BENCH_SEED", seed.to_string())
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mib.to_string())
        .env("CIRCUIT_NAME", "bench")
        .env("ESM_UUID", "esm-1")
        .env(
            "QUEUE_URL",
            format!("http://127.0.0.1:{port}/123456789012/bench"),
        )
        .env("QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:bench")
        .env("CONSUMER_FUNCTION_NAME", "consumer")
        .env("ALARM_NAME", "alarm")
        .env("CIRCUIT_TABLE_NAME", "table")
        .env("REJITTER_MIN_SECONDS", "1")
        .env("REJITTER_SLICE_SECONDS", "600")
        .stderr(Stdio::inherit())
        .output()
        .expect("worker");
    let _ = stub.kill();
    let _ = stub.wait();
    assert!(out.status.success(), "worker failed: {:?}", out.status);
    let v: Value = serde_json::from_slice(&out.stdout).expect("worker output");
    let s = &v["stub"];
    assert_eq!(v["moved"], json!(count), "every message moved: {v}");
    assert_eq!(
        s["identical"],
        json!(count),
        "every copy byte-identical: {v}"
    );
    assert_eq!(
        s["deleted"],
        json!(count),
        "every original deleted once: {v}"
    );
    assert_eq!(s["refused"], json!([]), "no batch over SQS's limits: {v}");
    v
}

fn main() {
    match env("REJITTER_MEMORY_ROLE").as_deref() {
        Some("stub") => {
            let n = |k: &str| env(k).and_then(|v| v.parse::<u64>().ok()).expect(k);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(stub_main(
                n("BENCH_SEED"),
                n("BENCH_SIZE") as usize,
                n("BENCH_COUNT"),
            ));
            return;
        }
        Some("worker") => {
            let port: u16 = env("BENCH_PORT")
                .and_then(|v| v.parse().ok())
                .expect("port");
            let seed: u64 = env("BENCH_SEED")
                .and_then(|v| v.parse().ok())
                .expect("seed");
            // Lambda's runtime: a multi-threaded tokio runtime (`lambda_runtime`).
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(worker_main(port, seed));
            return;
        }
        _ => {}
    }
    let memories: Vec<u64> = env("REJITTER_MEMORY_MIB")
        .unwrap_or_else(|| "128,512".into())
        .split(',')
        .map(|m| m.trim().parse().expect("REJITTER_MEMORY_MIB"))
        .collect();
    let big: u64 = env("REJITTER_MEMORY_MESSAGES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    println!("re-jitter peak resident memory, one slice, 8 lanes, 3 seeded runs per case");
    println!(
        "| message size | function memory | lanes × per receive | peak RSS median | worst | % of memory (worst) | moved | s (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let started = Instant::now();
    for (size, count, label) in [(256 * 1024, big * 4, "256 KiB"), (LIMIT, big, "1 MiB")] {
        for &memory in &memories {
            let mut runs: Vec<Value> = (1..=3)
                .map(|seed| run_case(size, count, memory, seed))
                .collect();
            runs.sort_by_key(|v| v["peakKiB"].as_u64().unwrap_or(0));
            let mib = |v: &Value| v["peakKiB"].as_u64().unwrap_or(0) as f64 / 1024.0;
            let (median, worst) = (mib(&runs[1]), mib(&runs[2]));
            let mut secs: Vec<f64> = runs
                .iter()
                .map(|v| v["seconds"].as_f64().unwrap_or(0.0))
                .collect();
            secs.sort_by(f64::total_cmp);
            println!(
                "| {label} (+10 attributes) | {memory} MiB | {} | {median:.0} MiB | {worst:.0} MiB | {:.0} % | {count} | {:.1} |",
                runs[2]["plan"].as_str().unwrap_or(""),
                worst * 100.0 / memory as f64,
                secs[1],
            );
        }
    }
    println!("({:.0} s in all)", started.elapsed().as_secs_f64());
}
