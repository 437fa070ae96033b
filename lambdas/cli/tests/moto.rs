//! The `breaker` binary against a moto server: a stand-in of the example stack is deployed
//! through moto's CloudFormation (same outputs), then each command runs as a real process.
//! The server is `breaker-testkit`'s (`<repo>/.venv/bin/moto_server` from `bash .ci/setup`, or
//! `BREAKER_MOTO_SERVER`).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use breaker_core::contract::{OpenInput, OpenRequest};
use breaker_testkit::moto::{MotoServer, REGION};
use serde_json::Value;

const STACK: &str = "Example";

/// Deploys the stand-in stack. moto's CloudFormation skips alarms, and moto cannot answer the
/// CBOR protocol of the Rust CloudWatch SDK, so the alarm stays unreadable here.
async fn deploy(moto: &MotoServer) -> aws_config::SdkConfig {
    create_stack(moto, STACK, include_str!("fixtures/stack.json")).await
}

/// Creates stack `name` from `template` and waits for CREATE_COMPLETE.
async fn create_stack(moto: &MotoServer, name: &str, template: &str) -> aws_config::SdkConfig {
    let sdk = moto.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    cfn.create_stack()
        .stack_name(name)
        .template_body(template)
        .send()
        .await
        .expect("create_stack");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cfn
            .describe_stacks()
            .stack_name(name)
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

/// A moto server with the stand-in stack deployed, and an SDK configuration for it.
async fn deployed() -> (MotoServer, aws_config::SdkConfig) {
    let moto = MotoServer::start();
    let sdk = deploy(&moto).await;
    (moto, sdk)
}

/// `breaker` with nothing from the caller's AWS environment (no profile, no metadata service).
fn bare_breaker() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breaker"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "BREAKER_STACK_NAME" || k == "BREAKER_CIRCUIT" {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
    cmd
}

/// Runs `breaker` with test credentials against `endpoint`, in the moto region, on the stack.
fn breaker_at(endpoint: &str, args: &[&str]) -> Output {
    bare_breaker()
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
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

fn breaker(moto: &MotoServer, args: &[&str]) -> Output {
    breaker_at(&moto.endpoint(), args)
}

/// A loopback URL nothing listens on.
fn nothing_listening() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
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
    let (moto, sdk) = deployed().await;

    let status = json_of(&breaker(&moto, &["status", "--json"]));
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

    let flag = json_of(&breaker(&moto, &["flag", "--percent", "30", "--json"]));
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

    let sent = breaker(&moto, &["send", "25"]);
    assert!(sent.status.success());
    assert!(String::from_utf8_lossy(&sent.stdout).starts_with("sent 25 of 25 orders"));
    let status = json_of(&breaker(&moto, &["status", "--json"]));
    assert_eq!(status["queue"]["visible"], 25);
    assert_eq!(status["dlq"]["visible"], 0);

    let opened = json_of(&breaker(&moto, &["open", "--json"]));
    let name = opened["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("manual-open-"), "{name}");
    let status = json_of(&breaker(&moto, &["status", "--json"]));
    assert_eq!(status["recovery"]["execution"]["name"], name.as_str());

    let human = breaker(&moto, &["status"]);
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
    let moto = MotoServer::start();

    let out = breaker(&moto, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "breaker: stack Example does not exist in region us-east-1 (check --stack-name and --region; deploy it with `npx cdk deploy` in example-stack)"
    );
    assert!(out.stdout.is_empty());

    let out = breaker(&moto, &["status", "--json"]);
    assert_eq!(json_of_failure(&out)["error"]["kind"], "NoSuchStack");

    let nothing_there = nothing_listening();
    let out = breaker_at(&nothing_there, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with(&format!("breaker: cannot reach {nothing_there}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("is the local cloud running?"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let without_credentials = |args: &[&str]| {
        let out = bare_breaker()
            .args(["--endpoint-url", &moto.endpoint()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).trim().to_owned()
    };
    let stderr = without_credentials(&["--region", REGION, "status"]);
    assert!(
        stderr.starts_with("breaker: no AWS credentials found"),
        "{stderr}"
    );
    assert_eq!(
        without_credentials(&["status"]),
        "breaker: no AWS region: pass --region or set AWS_REGION"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn close_hands_a_stuck_circuit_to_a_manual_close_execution_the_open_handler_accepts() {
    let (moto, sdk) = deployed().await;
    // The stand-in's mapping is Disabled with MaximumConcurrency 10 and no recovery runs.
    let closed = json_of(&breaker(&moto, &["close", "--json"]));
    assert_eq!(closed["command"], "closed");
    assert_eq!(closed["alreadyClosed"], false);
    assert_eq!(closed["stopped"], Value::Array(vec![]));
    let name = closed["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("manual-close-"), "{name}");
    let arn = closed["executionArn"].as_str().unwrap().to_owned();

    let started = aws_sdk_sfn::Client::new(&sdk)
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .expect("the manual-close execution exists");
    let input: Value = serde_json::from_str(started.input().unwrap()).unwrap();
    assert_eq!(input["trigger"], "manual-close");
    assert_eq!(input["resume"]["savedScaling"]["maximumConcurrency"], 10);
    let request = OpenInput {
        execution_arn: arn,
        input,
    }
    .request()
    .expect("the open handler accepts the manual-close input");
    assert!(
        matches!(
            request,
            OpenRequest::ManualClose {
                previous_execution_arn: None,
                ..
            }
        ),
        "{request:?}"
    );

    let status = json_of(&breaker(&moto, &["status", "--json"]));
    assert_eq!(status["recovery"]["execution"]["name"], name.as_str());
}

/// `breaker` against moto for `stack` (no default stack).
fn breaker_on(moto: &MotoServer, stack: &str, args: &[&str]) -> Output {
    bare_breaker()
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args([
            "--endpoint-url",
            &moto.endpoint(),
            "--region",
            REGION,
            "--stack-name",
            stack,
        ])
        .args(args)
        .output()
        .expect("breaker runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn list_finds_every_breaker_by_its_descriptor_and_circuit_picks_one() {
    let (moto, _) = deployed().await;
    create_stack(&moto, "Shop", include_str!("fixtures/two-breakers.json")).await;

    let listed = json_of(&breaker_on(&moto, "Shop", &["list", "--json"]));
    assert_eq!(listed["command"], "list");
    assert_eq!(listed["stack"], "Shop");
    let breakers = listed["breakers"].as_array().unwrap();
    let names: Vec<_> = breakers
        .iter()
        .map(|b| b["circuitName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop-orders", "shop-payments"], "{listed}");
    assert_eq!(breakers[0]["source"], "descriptor");
    assert!(
        breakers[1]["queueUrl"]
            .as_str()
            .unwrap()
            .ends_with("/shop-payments"),
        "{listed}"
    );
    assert_eq!(
        breakers[1]["stateMachineArn"],
        "arn:aws:states:us-east-1:123456789012:stateMachine:shop-payments-breaker"
    );

    let text = breaker_on(&moto, "Shop", &["list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with("2 circuit breakers in stack Shop\n"),
        "{text}"
    );
    assert!(
        text.contains("  shop-payments  stack Shop  queue "),
        "{text}"
    );

    // --all: the example stand-in (its fixed outputs) and both of Shop's.
    let all = json_of(&breaker_on(&moto, "ignored", &["list", "--all", "--json"]));
    let found: Vec<_> = all["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{}/{}",
                b["stackName"].as_str().unwrap(),
                b["circuitName"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        found,
        ["Example/orders", "Shop/shop-orders", "Shop/shop-payments"],
        "{all}"
    );
    assert_eq!(all["breakers"][0]["source"], "example-outputs");

    let several = breaker_on(&moto, "Shop", &["status"]);
    assert_eq!(several.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&several.stderr).trim(),
        "breaker: stack Shop has 2 circuit breakers (shop-orders, shop-payments): pick one with --circuit NAME (`breaker list` lists them)"
    );
    let unknown = breaker_on(&moto, "Shop", &["status", "--circuit", "refunds", "--json"]);
    assert_eq!(json_of_failure(&unknown)["error"]["kind"], "UnknownCircuit");
    let no_flag = breaker_on(&moto, "Shop", &["--circuit", "shop-orders", "flag", "fail"]);
    assert_eq!(no_flag.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_flag.stderr)
            .contains("`breaker flag` works with the example stack only"),
        "{}",
        String::from_utf8_lossy(&no_flag.stderr)
    );
}

fn json_of_failure(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(1));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}
