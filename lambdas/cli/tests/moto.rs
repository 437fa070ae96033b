//! The `breaker` binary against a moto server: a stand-in of the example stack is deployed
//! through moto's CloudFormation (same outputs), then each command runs as a real process.
//! Needs `<repo>/.venv/bin/moto_server` (created by `bash .ci/setup`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use serde_json::Value;

const STACK: &str = "Example";
const REGION: &str = "us-east-1";

/// A moto server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Self {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run `bash .ci/setup` first",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await
    }

    /// Deploys the stand-in stack. moto's CloudFormation skips alarms, and moto cannot answer the
    /// CBOR protocol of the Rust CloudWatch SDK, so the alarm stays unreadable here.
    async fn deploy(&self) -> aws_config::SdkConfig {
        let sdk = self.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        cfn.create_stack()
            .stack_name(STACK)
            .template_body(include_str!("fixtures/stack.json"))
            .send()
            .await
            .expect("create_stack");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = cfn
                .describe_stacks()
                .stack_name(STACK)
                .send()
                .await
                .expect("describe_stacks");
            let status = out.stacks()[0].stack_status().unwrap().as_str().to_owned();
            if status == "CREATE_COMPLETE" {
                break;
            }
            assert!(
                !status.contains("FAILED") && Instant::now() < deadline,
                "stack status {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        sdk
    }

    fn breaker(&self, args: &[&str]) -> Output {
        breaker_at(&self.url, args)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `breaker` with test credentials and nothing from the caller's AWS environment.
fn breaker_at(endpoint: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breaker"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "BREAKER_STACK_NAME" {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .args([
            "--endpoint-url",
            endpoint,
            "--region",
            REGION,
            "--stack-name",
            STACK,
        ])
        .args(args)
        .output()
        .expect("breaker runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "breaker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_drive_the_stack_resolved_from_its_outputs() {
    let moto = Moto::start();
    let sdk = moto.deploy().await;

    let status = json_of(&moto.breaker(&["status", "--json"]));
    assert_eq!(status["command"], "status");
    assert_eq!(status["circuit"], "orders");
    // Mapping disabled and no recovery running: what a stuck-open circuit looks like.
    assert_eq!(status["phase"], "stuck-open");
    assert_eq!(status["mapping"]["state"], "Disabled");
    assert_eq!(status["mapping"]["maximumConcurrency"], 10);
    // moto 5.2.5 has no route for CloudWatch's rpcv2Cbor protocol: the status says so and goes on.
    assert_eq!(status["alarm"]["state"], "UNKNOWN");
    assert!(
        status["alarm"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("DescribeAlarms failed"),
        "{status}"
    );
    assert_eq!(status["recovery"], Value::Null);
    assert_eq!(status["flag"], "ok");

    let flag = json_of(&moto.breaker(&["flag", "--percent", "30", "--json"]));
    assert_eq!(
        (flag["previous"].as_str(), flag["current"].as_str()),
        (Some("ok"), Some("percent:30"))
    );
    let stored = aws_sdk_ssm::Client::new(&sdk)
        .get_parameter()
        .name("/example/failure-flag")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.parameter().unwrap().value(), Some("percent:30"));

    let sent = moto.breaker(&["send", "25"]);
    assert!(sent.status.success());
    assert!(String::from_utf8_lossy(&sent.stdout).starts_with("sent 25 of 25 orders"));
    let status = json_of(&moto.breaker(&["status", "--json"]));
    assert_eq!(status["queue"]["visible"], 25);
    assert_eq!(status["dlq"]["visible"], 0);

    let opened = json_of(&moto.breaker(&["open", "--json"]));
    let name = opened["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("manual-open-"), "{name}");
    let status = json_of(&moto.breaker(&["status", "--json"]));
    assert_eq!(status["recovery"]["execution"]["name"], name.as_str());

    let human = moto.breaker(&["status"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.starts_with("circuit orders (stack Example): "),
        "{text}"
    );
    assert!(text.contains(&format!("  recovery  {name}")), "{text}");
    assert!(text.contains("  queue     25 visible"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_one_clear_line() {
    let moto = Moto::start();

    let out = moto.breaker(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "breaker: stack Example does not exist in region us-east-1 (check --stack-name and --region; deploy it with `npx cdk deploy` in example-stack)"
    );
    assert!(out.stdout.is_empty());

    let out = moto.breaker(&["status", "--json"]);
    assert_eq!(json_of_failure(&out)["error"]["kind"], "NoSuchStack");

    let nothing_there = format!("http://127.0.0.1:{}", free_port());
    let out = breaker_at(&nothing_there, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with(&format!("breaker: cannot reach {nothing_there}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("is the local cloud running?"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breaker"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .args(["--endpoint-url", &moto.url, "--region", REGION, "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("breaker: no AWS credentials found"),
        "{stderr}"
    );

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breaker"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .args(["--endpoint-url", &moto.url, "status"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "breaker: no AWS region: pass --region or set AWS_REGION"
    );
}

fn json_of_failure(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(1));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}
