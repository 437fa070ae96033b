//! Runs the real `sqs-circuit-breaker-telemetry` binary against a fake Lambda Extensions API and
//! Telemetry API written here with the AWS shapes (Lambda developer guide, "Extensions API" and
//! "Telemetry API"): `POST /2020-01-01/extension/register` with `Lambda-Extension-Name`,
//! answered with `Lambda-Extension-Identifier`; `PUT /2022-07-01/telemetry`; long-polled
//! `GET /2020-01-01/extension/event/next`; telemetry batches `POST`ed to the subscribed
//! destination (`sandbox.localdomain`, reached here as 127.0.0.1).
//!
//! `BREAKER_EXTENSION_BIN` runs another build of the binary (e.g. the release build) through
//! the same harness; the tests print register->next latency, the telemetry round trip and the
//! process's peak RSS (`VmHWM`) with `--no-capture`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const EXTENSION_ID: &str = "4f7a3b1e-0c2d-4e5f-8a9b-0123456789ab";
const FUNCTION: &str = "orders-consumer";
const WAIT: Duration = Duration::from_secs(15);

/// One HTTP/1.1 request as the fake API read it.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Reads one request (Content-Length bodies only); `None` when the peer closed.
fn read_request(r: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').expect("a header line");
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let req = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    assert!(
        req.header("transfer-encoding").is_none(),
        "the fake reads Content-Length bodies only: {req:?}"
    );
    let len: usize = req
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { body, ..req })
}

fn respond(w: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    // One write: a head and a body in two small writes meet Nagle and delayed ACKs (~40 ms).
    w.write_all(head.as_bytes()).unwrap();
    w.flush().unwrap();
}

/// What the extension asked the fake API, with when.
#[derive(Debug)]
enum Call {
    Register(Request, Instant),
    Subscribe(Request),
    Next(Request, Instant),
    Unexpected(Request),
}

/// The fake Extensions + Telemetry API on 127.0.0.1: reports every call on `calls`, answers
/// `/event/next` with the events the test pushes on the returned sender.
fn fake_api(calls: Sender<Call>) -> (String, Sender<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (events_tx, events_rx) = channel::<Value>();
    let events_rx = Arc::new(Mutex::new(events_rx));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let (calls, events_rx) = (calls.clone(), events_rx.clone());
            let mut stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while let Some(req) = read_request(&mut reader) {
                    let at = Instant::now();
                    match (req.method.as_str(), req.path.as_str()) {
                        ("POST", "/2020-01-01/extension/register") => {
                            let body = json!({"functionName": FUNCTION, "functionVersion": "$LATEST",
                                              "handler": "bootstrap", "accountId": "123456789012"});
                            // Reported before the answer: once answered, the extension subscribes
                            // (maybe on another connection, another thread here), and a report
                            // after the answer could reach the test after the subscribe's.
                            calls.send(Call::Register(req, at)).unwrap();
                            respond(
                                &mut stream,
                                200,
                                &[("Lambda-Extension-Identifier", EXTENSION_ID)],
                                &body.to_string(),
                            );
                        }
                        ("PUT", "/2022-07-01/telemetry") => {
                            calls.send(Call::Subscribe(req)).unwrap();
                            respond(&mut stream, 200, &[], "\"OK\"");
                        }
                        ("GET", "/2020-01-01/extension/event/next") => {
                            assert_eq!(
                                req.header("Lambda-Extension-Identifier"),
                                Some(EXTENSION_ID)
                            );
                            calls.send(Call::Next(req, at)).unwrap();
                            let Ok(event) = events_rx.lock().unwrap().recv() else {
                                return;
                            };
                            respond(
                                &mut stream,
                                200,
                                &[("Lambda-Extension-Event-Identifier", "evt")],
                                &event.to_string(),
                            );
                        }
                        _ => {
                            respond(&mut stream, 404, &[], "{}");
                            calls.send(Call::Unexpected(req)).unwrap();
                        }
                    }
                }
            });
        }
    });
    (addr, events_tx)
}

/// A port nothing listens on right now (the extension binds it on all interfaces), below
/// Linux's ephemeral range (32768-60999) so that no client socket or `:0` bind of a parallel
/// test can take it between this check and the extension's bind.
fn free_port() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (start..32_000)
        .chain(20_000..start)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Extension {
    child: Child,
    lines: Receiver<String>,
    calls: Receiver<Call>,
    events: Sender<Value>,
}

impl Drop for Extension {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_extension(telemetry_port: u16) -> Extension {
    let (calls_tx, calls) = channel();
    let (api, events) = fake_api(calls_tx);
    let bin = std::env::var("BREAKER_EXTENSION_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_sqs-circuit-breaker-telemetry").to_string());
    let mut child = Command::new(bin)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env(
            "SQS_CIRCUIT_BREAKER_TELEMETRY_PORT",
            telemetry_port.to_string(),
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("the extension binary starts");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    Extension {
        child,
        lines,
        calls,
        events,
    }
}

impl Extension {
    fn call(&self) -> Call {
        match self.calls.recv_timeout(WAIT) {
            Ok(Call::Next(req, _))
                if req.header("Lambda-Extension-Identifier") != Some(EXTENSION_ID) =>
            {
                panic!("next without the extension's identifier: {req:?}")
            }
            Ok(Call::Unexpected(req)) => panic!("unexpected call {req:?}"),
            Ok(call) => call,
            Err(e) => panic!("the extension did not call the API: {e}"),
        }
    }

    /// Register -> subscribe -> first next; returns the listener's port and the time from
    /// register to the first next.
    fn init(&self) -> (u16, Duration) {
        let Call::Register(reg, registered_at) = self.call() else {
            panic!("register first")
        };
        assert_eq!(
            reg.header("Lambda-Extension-Name"),
            Some("sqs-circuit-breaker-telemetry")
        );
        assert_eq!(reg.json(), json!({"events": ["INVOKE", "SHUTDOWN"]}));
        let Call::Subscribe(sub) = self.call() else {
            panic!("subscribe during init, before next")
        };
        assert_eq!(
            sub.header("Lambda-Extension-Identifier"),
            Some(EXTENSION_ID)
        );
        let body = sub.json();
        assert_eq!(body["schemaVersion"], "2022-07-01");
        assert_eq!(body["types"], json!(["platform"]));
        assert_eq!(
            body["buffering"],
            json!({"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25})
        );
        assert_eq!(body["destination"]["protocol"], "HTTP");
        let uri = body["destination"]["URI"].as_str().unwrap();
        let port: u16 = uri
            .strip_prefix("http://sandbox.localdomain:")
            .unwrap_or_else(|| panic!("destination on sandbox.localdomain: {uri}"))
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let Call::Next(_, next_at) = self.call() else {
            panic!("next after subscribe")
        };
        (port, next_at - registered_at)
    }

    fn next_pending(&self) {
        let Call::Next(..) = self.call() else {
            panic!("the extension asks for the next event")
        };
    }

    fn line(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .expect("the extension prints a line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("EMF line is JSON ({e}): {line}"))
    }

    fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn exit_within(&mut self, limit: Duration) -> (i32, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code().expect("exited, not killed"), start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "the extension did not exit within {limit:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// POSTs one telemetry batch to the listener as Lambda does, retrying while nothing listens
/// (Lambda retries with backoff); returns the status and the round-trip time.
fn post_batch(port: u16, batch: &Value) -> (u16, Duration) {
    let body = batch.to_string();
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if start.elapsed() < WAIT => {
                let _ = e;
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("the telemetry listener on port {port} is not up: {e}"),
        }
    };
    stream.set_nodelay(true).unwrap();
    let sent = Instant::now();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut status_line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut status_line)
        .unwrap();
    let rtt = sent.elapsed();
    let _ = stream.shutdown(Shutdown::Both);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("an HTTP status line: {status_line:?}"))
        .parse()
        .unwrap();
    (status, rtt)
}

fn invoke(request_id: &str) -> Value {
    json!({"eventType": "INVOKE", "deadlineMs": now_ms() + 30_000, "requestId": request_id,
           "invokedFunctionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"),
           "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"}})
}

fn shutdown(reason: &str) -> Value {
    json!({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": now_ms() + 2_000})
}

fn runtime_done(time: &str, id: &str, status: &str) -> Value {
    json!({"time": time, "type": "platform.runtimeDone",
           "record": {"requestId": id, "status": status,
                      "metrics": {"durationMs": 120.0, "producedBytes": 2},
                      "spans": [{"name": "responseLatency", "start": time, "durationMs": 1.0}]}})
}

fn emf(second_ms: i64, invocations: u64, errors: u64, timeouts: u64) -> Value {
    let metric = |n: &str| json!({"Name": n, "Unit": "Count", "StorageResolution": 1});
    json!({"_aws": {"Timestamp": second_ms, "CloudWatchMetrics": [{
              "Namespace": "SqsCircuitBreaker/Consumer", "Dimensions": [["FunctionName"]],
              "Metrics": [metric("Invocations"), metric("Errors"), metric("Timeouts")]}]},
           "FunctionName": FUNCTION, "Invocations": invocations, "Errors": errors, "Timeouts": timeouts})
}

/// 2026-12-01T17:00:00Z in epoch milliseconds.
const BASE_MS: i64 = 1_796_144_400_000;

#[test]
fn binary_registers_subscribes_prints_emf_per_batch_and_exits_after_shutdown() {
    let mut ext = start_extension(free_port());
    let (port, register_to_next) = ext.init();

    // Invocation a: the batch holds a's records and one of an earlier invocation (another
    // second), as a batch pushed after a thaw does.
    ext.events.send(invoke("req-a")).unwrap();
    ext.next_pending();
    let batch = json!([
        {"time": "2026-12-01T17:00:00.900Z", "type": "platform.start", "record": {"requestId": "req-0", "version": "$LATEST"}},
        runtime_done("2026-12-01T17:00:00.950Z", "req-0", "success"),
        {"time": "2026-12-01T17:00:01.000Z", "type": "platform.start", "record": {"requestId": "req-a", "version": "$LATEST"}},
        // A type the lambda-extension crate's enum does not know: the batch must still count.
        {"time": "2026-12-01T17:00:01.001Z", "type": "platform.restoreStart", "record": {"runtimeVersion": "python:3.12.v1"}},
        runtime_done("2026-12-01T17:00:01.200Z", "req-a", "error"),
        {"time": "2026-12-01T17:00:01.210Z", "type": "platform.report",
         "record": {"requestId": "req-a", "status": "error", "errorType": "Runtime.ExitError",
                    "metrics": {"durationMs": 200.0, "billedDurationMs": 200, "memorySizeMB": 128, "maxMemoryUsedMB": 31}}},
    ]);
    let (status, batch_rtt) = post_batch(port, &batch);
    assert_eq!(status, 200);
    assert_eq!(ext.line(), emf(BASE_MS, 1, 0, 0));
    assert_eq!(ext.line(), emf(BASE_MS + 1_000, 1, 1, 0));
    let rss_kb = ext.peak_rss_kb();

    // Invocation b times out: Lambda resets the environment (SHUTDOWN, reason timeout) and
    // b's runtimeDone reaches the listener only afterwards. The extension must wait for it.
    ext.events.send(invoke("req-b")).unwrap();
    ext.next_pending();
    ext.events.send(shutdown("timeout")).unwrap();
    thread::sleep(Duration::from_millis(150));
    assert!(
        ext.child.try_wait().unwrap().is_none(),
        "the extension exited before the last invocation's record arrived"
    );
    let (status, _) = post_batch(
        port,
        &json!([runtime_done("2026-12-01T17:00:03.000Z", "req-b", "timeout")]),
    );
    assert_eq!(status, 200);
    assert_eq!(ext.line(), emf(BASE_MS + 3_000, 1, 1, 1));
    let (code, exit_after) = ext.exit_within(Duration::from_secs(3));
    assert_eq!(code, 0);
    assert!(
        ext.lines.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing more printed"
    );
    eprintln!(
        "measured: register->first next {register_to_next:?}; telemetry POST round trip {batch_rtt:?}; \
         exit {exit_after:?} after the last record; peak RSS {rss_kb:?} kB"
    );
}

#[test]
fn binary_exits_at_once_on_shutdown_when_nothing_is_pending() {
    let mut ext = start_extension(free_port());
    let (port, _) = ext.init();
    ext.events.send(invoke("req-a")).unwrap();
    ext.next_pending();
    let (status, _) = post_batch(
        port,
        &json!([runtime_done("2026-12-01T17:00:07.400Z", "req-a", "failure")]),
    );
    assert_eq!(status, 200);
    assert_eq!(ext.line(), emf(BASE_MS + 7_000, 1, 1, 0));
    let sent = Instant::now();
    ext.events.send(shutdown("spindown")).unwrap();
    let (code, _) = ext.exit_within(Duration::from_secs(3));
    let took = sent.elapsed();
    assert_eq!(code, 0);
    // The wait is bounded at 1.5 s; with req-a's record already printed there is none
    // (measured ~5 ms; the bound leaves room for a loaded machine).
    assert!(took < Duration::from_millis(1_000), "exit took {took:?}");
    eprintln!("measured: SHUTDOWN -> exit {took:?} with nothing pending");
}
