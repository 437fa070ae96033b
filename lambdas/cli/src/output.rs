//! What the commands print: human text by default, JSON with `--json`.

use serde::Serialize;
use serde_json::json;

use crate::error::CliError;
use crate::stack::{Source, StackResources};
use crate::status::{QueueDepth, Status};

/// `breaker list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The stack searched; `None` with `--all`.
    pub stack: Option<String>,
    /// The breakers found, by stack name then output order.
    pub breakers: Vec<StackResources>,
    /// Stacks (with `--all`) whose breakers could not be read.
    pub skipped: Vec<Skipped>,
}

/// A stack `breaker list --all` could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The stack.
    pub stack: String,
    /// Why.
    pub error: String,
}

/// `breaker open` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Opened {
    /// The started execution.
    pub execution_arn: String,
    /// Its name.
    pub name: String,
    /// A recovery that was already running (the new execution exits as a duplicate).
    pub already_running: Option<String>,
}

/// `breaker close` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Closed {
    /// The manual-close execution, if one was started.
    pub execution_arn: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Recoveries stopped to hand over.
    pub stopped: Vec<String>,
    /// True when the circuit was closed already and nothing was done.
    pub already_closed: bool,
}

/// `breaker flag` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagChanged {
    /// The SSM parameter.
    pub parameter: String,
    /// Its value before, if it could be read.
    pub previous: Option<String>,
    /// Its value now.
    pub current: String,
}

/// `breaker send` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    /// Orders asked for.
    pub requested: u32,
    /// Orders SQS accepted.
    pub sent: u32,
    /// Orders SQS refused.
    pub failed: u32,
    /// First order id.
    pub first_order_id: Option<String>,
    /// Last order id.
    pub last_order_id: Option<String>,
}

/// A command's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Output {
    /// `list`.
    List(Listing),
    /// `status`.
    Status(Box<Status>),
    /// `open`.
    Opened(Opened),
    /// `close`.
    Closed(Closed),
    /// `flag`.
    Flag(FlagChanged),
    /// `send`.
    Sent(Sent),
}

fn depth(d: &QueueDepth) -> String {
    format!(
        "{} visible, {} in flight, {} delayed",
        d.visible, d.in_flight, d.delayed
    )
}

fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Output {
    /// Pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("outputs serialize")
    }

    /// JSON for a failed command: `{"error":{"kind":...,"message":...}}`.
    pub fn error_json(error: &CliError) -> String {
        json!({ "error": { "kind": error.kind(), "message": error.to_string() } }).to_string()
    }

    /// Text for people.
    pub fn human(&self) -> String {
        match self {
            Output::List(l) => {
                let n = l.breakers.len();
                let plural = if n == 1 { "" } else { "s" };
                let mut lines = vec![match &l.stack {
                    Some(stack) => format!("{n} circuit breaker{plural} in stack {stack}"),
                    None => format!("{n} circuit breaker{plural} in this account and region"),
                }];
                let width = l
                    .breakers
                    .iter()
                    .map(|b| b.circuit_name.len())
                    .max()
                    .unwrap_or(0);
                for b in &l.breakers {
                    let mut line = format!(
                        "  {:width$}  stack {}  queue {}",
                        b.circuit_name, b.stack_name, b.queue_url
                    );
                    if b.source == Source::ExampleOutputs {
                        line.push_str("  (from the example stack's outputs)");
                    }
                    lines.push(line);
                }
                for s in &l.skipped {
                    lines.push(format!("  skipped stack {}: {}", s.stack, s.error));
                }
                if l.breakers.len() > 1 && l.stack.is_some() {
                    lines.push("pick one with --circuit NAME".into());
                }
                lines.join("\n")
            }
            Output::Status(s) => {
                let mut lines = vec![format!(
                    "circuit {} (stack {}): {}",
                    s.circuit,
                    s.stack,
                    s.phase.words()
                )];
                let limit = s
                    .mapping
                    .maximum_concurrency
                    .map_or("unlimited".to_owned(), |n| n.to_string());
                lines.push(format!(
                    "  mapping   {}  max concurrency {}  ({})",
                    s.mapping.state, limit, s.mapping.uuid
                ));
                lines.push(format!("  alarm     {}  ({})", s.alarm.state, s.alarm.name));
                lines.push(match &s.recovery {
                    None => "  recovery  none running".to_owned(),
                    Some(r) => {
                        let mut l = format!(
                            "  recovery  {}  step \"{}\"  running {}",
                            r.execution.name,
                            r.step.as_deref().unwrap_or("starting"),
                            duration(r.running_seconds)
                        );
                        if let Some(a) = r.attempt {
                            l.push_str(&format!("  probes {a}"));
                        }
                        if r.others > 0 {
                            l.push_str(&format!("  (+{} duplicate(s) exiting)", r.others));
                        }
                        l
                    }
                });
                if let Some(rec) = &s.record {
                    let mut l = format!(
                        "  record    {}  owner {}",
                        rec.phase.as_str(),
                        rec.owner
                            .as_deref()
                            .map_or("none", |o| o.rsplit(':').next().unwrap_or(o))
                    );
                    if let Some(o) = rec.original {
                        let limit = o
                            .maximum_concurrency
                            .map_or("unlimited".to_owned(), |n| n.to_string());
                        l.push_str(&format!("  original max concurrency {limit}"));
                        if let Some(p) = o.provisioned_poller_config {
                            let n =
                                |v: Option<u32>| v.map_or("default".to_owned(), |n| n.to_string());
                            l.push_str(&format!(
                                "  pollers {}–{}",
                                n(p.minimum_pollers),
                                n(p.maximum_pollers)
                            ));
                        }
                    }
                    if rec.retrip_pending() {
                        l.push_str("  re-trip pending");
                    }
                    if !rec.duplicates.is_empty() {
                        l.push_str(&format!("  {} duplicate(s) seen", rec.duplicates.len()));
                    }
                    lines.push(l);
                }
                lines.push(format!("  queue     {}", depth(&s.queue)));
                if let Some(d) = &s.dlq {
                    lines.push(format!("  dlq       {}", depth(d)));
                }
                if let Some(f) = &s.flag {
                    lines.push(format!("  flag      {f}"));
                }
                lines.join("\n")
            }
            Output::Opened(o) => {
                let mut text = format!("started recovery {} ({})", o.name, o.execution_arn);
                if let Some(running) = &o.already_running {
                    text.push_str(&format!(
                        "\nrecovery {running} is already running: the new execution will exit as a duplicate"
                    ));
                }
                text
            }
            Output::Closed(c) => {
                if c.already_closed {
                    return "circuit is already closed (mapping enabled, no recovery running); nothing done".into();
                }
                let mut text = String::new();
                if !c.stopped.is_empty() {
                    text.push_str(&format!("stopped recovery {}\n", c.stopped.join(", ")));
                }
                text.push_str(&format!(
                    "started {} ({}): the consumer is re-enabled gradually, then the circuit closes",
                    c.name.as_deref().unwrap_or("?"),
                    c.execution_arn.as_deref().unwrap_or("?")
                ));
                text
            }
            Output::Flag(f) => format!(
                "flag {} -> {} ({}); the consumer sees it within ~2 s",
                f.previous.as_deref().unwrap_or("?"),
                f.current,
                f.parameter
            ),
            Output::Sent(s) => {
                let mut text = format!("sent {} of {} orders", s.sent, s.requested);
                if let (Some(a), Some(b)) = (&s.first_order_id, &s.last_order_id) {
                    text.push_str(&format!(" ({a} .. {b})"));
                }
                if s.failed > 0 {
                    text.push_str(&format!("; {} refused by SQS", s.failed));
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::status::{AlarmStatus, Execution, MappingStatus, Phase, Recovery};

    fn status() -> Status {
        Status {
            circuit: "orders".into(),
            stack: "Example".into(),
            phase: Phase::BackingOff,
            mapping: MappingStatus {
                uuid: "e5a1".into(),
                state: "Disabled".into(),
                maximum_concurrency: Some(10),
                batch_size: Some(10),
            },
            alarm: AlarmStatus {
                name: "orders-errors".into(),
                state: "ALARM".into(),
                reason: Some("Threshold Crossed".into()),
            },
            recovery: Some(Recovery {
                execution: Execution {
                    arn: "arn:exec".into(),
                    name: "alarm-1".into(),
                    started_at_ms: 1,
                },
                step: Some("Back Off".into()),
                attempt: Some(2),
                others: 1,
                running_seconds: 135,
            }),
            queue: QueueDepth {
                visible: 120,
                in_flight: 3,
                delayed: 40,
            },
            dlq: Some(QueueDepth::default()),
            flag: Some("fail".into()),
            record: None,
        }
    }

    #[test]
    fn human_status_shows_phase_mapping_alarm_recovery_depths_and_flag() {
        assert_eq!(
            Output::Status(Box::new(status())).human(),
            [
                "circuit orders (stack Example): open (backing off)",
                "  mapping   Disabled  max concurrency 10  (e5a1)",
                "  alarm     ALARM  (orders-errors)",
                "  recovery  alarm-1  step \"Back Off\"  running 2m15s  probes 2  (+1 duplicate(s) exiting)",
                "  queue     120 visible, 3 in flight, 40 delayed",
                "  dlq       0 visible, 0 in flight, 0 delayed",
                "  flag      fail",
            ]
            .join("\n")
        );
    }

    #[test]
    fn human_status_of_a_closed_circuit_without_recovery() {
        let mut s = status();
        s.phase = Phase::Closed;
        s.recovery = None;
        s.mapping.maximum_concurrency = None;
        s.dlq = None;
        s.flag = None;
        let text = Output::Status(Box::new(s)).human();
        assert!(
            text.starts_with("circuit orders (stack Example): closed\n"),
            "{text}"
        );
        assert!(text.contains("max concurrency unlimited"));
        assert!(text.contains("  recovery  none running"));
        assert!(!text.contains("dlq") && !text.contains("flag"));
    }

    #[test]
    fn json_status_is_tagged_and_camel_cased() {
        let v: Value = serde_json::from_str(&Output::Status(Box::new(status())).json()).unwrap();
        assert_eq!(v["command"], "status");
        assert_eq!(v["phase"], "backing-off");
        assert_eq!(v["mapping"]["maximumConcurrency"], 10);
        assert_eq!(v["recovery"]["execution"]["name"], "alarm-1");
        assert_eq!(v["recovery"]["runningSeconds"], 135);
        assert_eq!(v["queue"]["inFlight"], 3);
        assert_eq!(v["flag"], "fail");
    }

    #[test]
    fn other_commands_render_in_both_forms() {
        let sent = Output::Sent(Sent {
            requested: 23,
            sent: 21,
            failed: 2,
            first_order_id: Some("o-0".into()),
            last_order_id: Some("o-22".into()),
        });
        assert_eq!(
            sent.human(),
            "sent 21 of 23 orders (o-0 .. o-22); 2 refused by SQS"
        );
        let v: Value = serde_json::from_str(&sent.json()).unwrap();
        assert_eq!(
            (v["command"].as_str(), v["sent"].as_u64()),
            (Some("sent"), Some(21))
        );

        let flag = Output::Flag(FlagChanged {
            parameter: "/f".into(),
            previous: Some("ok".into()),
            current: "fail".into(),
        });
        assert_eq!(
            flag.human(),
            "flag ok -> fail (/f); the consumer sees it within ~2 s"
        );

        let opened = Output::Opened(Opened {
            execution_arn: "arn:e".into(),
            name: "manual-open-1".into(),
            already_running: None,
        });
        assert_eq!(opened.human(), "started recovery manual-open-1 (arn:e)");

        let closed = Output::Closed(Closed {
            execution_arn: None,
            name: None,
            stopped: vec![],
            already_closed: true,
        });
        assert!(closed.human().starts_with("circuit is already closed"));
    }

    fn listed(stack: &str, circuit: &str) -> StackResources {
        let d = crate::stack::tests::descriptor(circuit);
        let o = crate::stack::tests::descriptor_output("K", &d);
        crate::stack::breakers(stack, &[o]).unwrap().remove(0)
    }

    #[test]
    fn list_renders_one_line_per_breaker_and_the_skipped_stacks() {
        let listing = Output::List(Listing {
            stack: None,
            breakers: vec![listed("Shop", "orders"), listed("Shop", "payments")],
            skipped: vec![Skipped {
                stack: "Broken".into(),
                error: "bad".into(),
            }],
        });
        assert_eq!(
            listing.human(),
            "2 circuit breakers in this account and region\n\
             \x20 orders    stack Shop  queue http://localhost:5400/123456789012/orders\n\
             \x20 payments  stack Shop  queue http://localhost:5400/123456789012/payments\n\
             \x20 skipped stack Broken: bad"
        );
        let v: Value = serde_json::from_str(&listing.json()).unwrap();
        assert_eq!(v["command"], "list");
        assert_eq!(v["breakers"][1]["circuitName"], "payments");
        assert_eq!(v["breakers"][1]["stackName"], "Shop");
        assert_eq!(v["breakers"][1]["source"], "descriptor");
        assert_eq!(
            v["breakers"][1]["stateMachineArn"],
            "arn:aws:states:us-east-1:123456789012:stateMachine:payments"
        );
        assert_eq!(v["skipped"][0]["stack"], "Broken");
    }

    #[test]
    fn errors_render_as_json_with_kind_and_message() {
        let v: Value = serde_json::from_str(&Output::error_json(&CliError::NoRegion)).unwrap();
        assert_eq!(
            v,
            json!({"error": {"kind": "NoRegion", "message": "no AWS region: pass --region or set AWS_REGION"}})
        );
    }
}
