//! [`MotoServer`]: a private `moto_server` for one integration test.
//!
//! Starts `<repo>/.venv/bin/python <repo>/test/localcloud/moto_server.py -H 127.0.0.1 -p <free
//! port>` — moto with the local cloud's SQS speed patches (same API and results; without them a
//! queue of thousands of messages takes seconds per ReceiveMessage) — (the repo root is found from
//! this crate's `CARGO_MANIFEST_DIR`; `BREAKER_MOTO_SERVER` names another `moto_server`
//! executable to run instead), waits until it answers, and kills it when dropped. A missing `moto_server` is a test *failure* with a hint
//! to run `bash .ci/setup`, never a silent skip. [`MotoServer::sdk_config`] gives an
//! `aws_config::SdkConfig` pointed at it (dummy credentials, `us-east-1`), from which any SDK
//! client is built: `aws_sdk_lambda::Client::new(&moto.sdk_config().await)`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

/// Region every moto test uses.
pub const REGION: &str = "us-east-1";
/// Account id moto uses by default.
pub const ACCOUNT_ID: &str = "123456789012";

/// A running moto server, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("lambdas/testkit has two ancestors")
        .to_path_buf()
}

/// The program to run and its leading arguments: `BREAKER_MOTO_SERVER`, or the venv's Python
/// running `test/localcloud/moto_server.py`.
pub fn moto_server_command() -> (PathBuf, Vec<PathBuf>) {
    match std::env::var_os("BREAKER_MOTO_SERVER") {
        Some(exe) => (PathBuf::from(exe), Vec::new()),
        None => {
            let root = repo_root();
            (
                root.join(".venv/bin/python"),
                vec![root.join("test/localcloud/moto_server.py")],
            )
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS gives a free loopback port")
}

/// A minimal HTTP/1.1 request to the server (no keep-alive). Returns status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {response:.200}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

impl MotoServer {
    /// Start a moto server on a free loopback port and wait (≤ 30 s) until it answers.
    ///
    /// # Panics
    /// When `moto_server` is missing or does not come up: the test fails with the reason.
    pub fn start() -> Self {
        let (exe, script) = moto_server_command();
        assert!(
            exe.is_file(),
            "{} not found — run `bash .ci/setup` (creates .venv with moto[server]) or set \
             BREAKER_MOTO_SERVER",
            exe.display()
        );
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("moto-{port}-{}.log", std::process::id()));
            let log_file = std::fs::File::create(&log).expect("create moto log file");
            let child = Command::new(&exe)
                .args(&script)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            let mut server = MotoServer { child, port, log };
            match server.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return server,
                Err(e) => last_error = e, // port taken or slow start: drop kills it, try again
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}; log:\n{}", self.log_tail()));
            }
            if let Ok((200, _)) = http(self.port, "GET", "/moto-api/data.json", "") {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "no answer after {timeout:?}; log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2_000);
        text.get(start..).unwrap_or(&text).to_owned()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `POST /moto-api/config` with this JSON document, e.g.
    /// `{"lambda":{"use_docker":false},"stepfunctions":{"execute_state_machine":true}}`.
    ///
    /// # Panics
    /// When moto does not accept it.
    pub fn configure(&self, config: &serde_json::Value) {
        let (status, body) = http(self.port, "POST", "/moto-api/config", &config.to_string())
            .expect("POST /moto-api/config");
        assert!(
            (200..300).contains(&status),
            "moto rejected config {config} ({status}): {body}"
        );
    }

    /// Reset every moto backend (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let (status, body) = http(self.port, "POST", "/moto-api/reset", "").expect("reset");
        assert!(
            (200..300).contains(&status),
            "moto reset failed ({status}): {body}"
        );
    }

    /// SDK configuration pointed at this server: region `us-east-1`, static dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// An SQS client pointed at this server.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn moto_server_starts_answers_sqs_and_stops_on_drop() {
        let moto = MotoServer::start();
        moto.configure(&serde_json::json!({"lambda": {"use_docker": false}}));
        let sqs = moto.sqs().await;
        let url = sqs
            .create_queue()
            .queue_name("harness")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        assert!(url.contains("harness"), "{url}");
        let port = moto.port();
        drop(moto);
        assert!(
            http(port, "GET", "/moto-api/data.json", "").is_err(),
            "server still answers"
        );
    }
}
