//! The `bootstrap` binary's log lines as CloudWatch shows them: stdout is a pipe there, so no
//! terminal colour codes; JSON lines when the function's log format is JSON
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`, set by Lambda from the function's `LoggingConfig`).

use std::process::Command;

/// Runs `bootstrap` for a handler name that does not exist, with its stdout piped: it logs why it
/// cannot serve, then fails to reach the (absent) runtime API and exits.
fn bootstrap_stdout(log_format: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
    cmd.env_clear()
        .env("_HANDLER", "no-such-handler")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9") // discard port: nothing listens
        .env("AWS_LAMBDA_FUNCTION_NAME", "logs-test");
    if let Some(format) = log_format {
        cmd.env("AWS_LAMBDA_LOG_FORMAT", format);
    }
    let out = cmd.output().expect("bootstrap runs");
    assert!(
        !out.status.success(),
        "bootstrap cannot serve an unknown handler"
    );
    String::from_utf8(out.stdout).expect("utf-8 logs")
}

#[test]
fn text_logs_carry_no_terminal_colour_codes() {
    let out = bootstrap_stdout(None);
    assert!(
        out.contains("bootstrap cannot serve this function"),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "ANSI escape codes in the log: {out:?}"
    );
}

#[test]
fn json_log_format_gives_one_json_object_per_line() {
    let out = bootstrap_stdout(Some("JSON"));
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(
        out.contains("bootstrap cannot serve this function"),
        "{out}"
    );
}
