//! Benchmark of the `bootstrap` binary: its size (raw and zipped, as Lambda receives it) and its
//! cold start — process start to the first response posted to a local runtime-API stub.
//!
//! Run with `cargo bench -p breaker-handlers --bench cold_start` (bench profile = release:
//! `opt-level = "z"`, LTO, stripped). Targets: zipped ≤ 5 MB, cold start ≤ 50 ms. This reports
//! figures; it does not assert timings.
//!
//! The stub serves `GET /2018-06-01/runtime/invocation/next` with one `backoff` invocation
//! (pure: configuration, SDK clients and the handler run, no AWS call is made) and records the
//! time the response arrives on `POST /2018-06-01/runtime/invocation/<id>/response`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn main() {
    let bin = env!("CARGO_BIN_EXE_bootstrap");
    let raw = std::fs::metadata(bin).expect("bootstrap binary").len();
    let zipped = zipped_size(bin);
    println!("bootstrap: {bin}");
    println!(
        "size: raw {:.2} MB, zipped {:.2} MB (target ≤ 5 MB)",
        mb(raw),
        mb(zipped)
    );

    let mut first_poll = Vec::new();
    let mut first_response = Vec::new();
    for _ in 0..RUNS {
        let (poll, response) = cold_start(bin);
        first_poll.push(poll);
        first_response.push(response);
    }
    report("init (process start → first /next poll)", &mut first_poll);
    report(
        "cold start (process start → first response)",
        &mut first_response,
    );
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn zipped_size(bin: &str) -> u64 {
    let dir = std::env::temp_dir().join(format!("bootstrap-zip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let zip = dir.join("bootstrap.zip");
    let _ = std::fs::remove_file(&zip);
    let status = Command::new("zip")
        .args(["-q", "-9", "-j"])
        .arg(&zip)
        .arg(bin)
        .status()
        .expect("the `zip` tool is needed to measure the deployment package size");
    assert!(status.success(), "zip failed");
    let size = std::fs::metadata(&zip).expect("zip written").len();
    let _ = std::fs::remove_dir_all(&dir);
    size
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms ({} runs; target ≤ 50 ms)",
        ms(p(0.5)),
        ms(p(0.9)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

/// One cold start: returns (time to the first `/next` poll, time to the first response).
fn cold_start(bin: &str) -> (Duration, Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("stub listener");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel::<(&'static str, Instant, String)>();
    std::thread::spawn(move || serve(listener, tx));

    let started = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}"))
        .env("_HANDLER", "backoff")
        .env("AWS_LAMBDA_FUNCTION_NAME", "breaker-backoff")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("CIRCUIT_NAME", "orders")
        .env("ESM_UUID", "esm-1")
        .env("QUEUE_URL", "http://127.0.0.1:9/123456789012/orders")
        .env("QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:orders")
        .env("CONSUMER_FUNCTION_NAME", "orders-consumer")
        .env("ALARM_NAME", "orders-errors")
        .env("CIRCUIT_TABLE_NAME", "orders-circuit")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bootstrap");
    let mut poll = None;
    let response = loop {
        let (kind, at, body) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("bootstrap answered the stub within 10 s");
        match kind {
            "next" => {
                poll.get_or_insert(at - started);
            }
            "response" => {
                assert!(
                    body.contains("\"action\":\"wait\""),
                    "unexpected response {body}"
                );
                break at - started;
            }
            other => panic!("bootstrap reported {other}: {body}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    (poll.unwrap_or(response), response)
}

/// The runtime-API stub: one invocation, then `/next` blocks until the process is killed.
fn serve(listener: TcpListener, tx: mpsc::Sender<(&'static str, Instant, String)>) {
    let event = r#"{"state":{"version":1,"openedAtMs":1763900000000,"attempt":2,"iteration":0,"generation":0,"savedScaling":{"maximumConcurrency":50},"trigger":"alarm"}}"#;
    let mut served = false;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        let Some((method, path, body)) = read_request(&mut stream) else {
            continue;
        };
        let now = Instant::now();
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if tx.send(("next", now, String::new())).is_err() {
                return;
            }
            if served {
                // Hold the connection: the runtime waits here until it is killed.
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            served = true;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or(0);
            let head = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:breaker-backoff\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                event.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(event.as_bytes());
        } else {
            let kind = if path.ends_with("/response") {
                "response"
            } else {
                "error"
            };
            let _ = stream.write_all(
                b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
            if tx.send((kind, now, body)).is_err() {
                return;
            }
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<(String, String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}
