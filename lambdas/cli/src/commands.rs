//! The commands, generic over the ports so that tests run them against fakes.

use std::time::{SystemTime, UNIX_EPOCH};

use breaker_core::contract::{CircuitState, MANUAL_CLOSE, SavedScaling, Trigger};
use breaker_core::example::{Flag, Order};
use serde_json::{Value, json};

use crate::aws::Aws;
use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::output::{Closed, FlagChanged, Listing, Opened, Output, Sent, Skipped};
use crate::ports::{Alarms, FlagStore, Mappings, Queues, Records, Recoveries, StackOutputs};
use crate::stack::{StackResources, breakers, select};
use crate::status::{AlarmStatus, Recovery, Status, phase};

/// Every port at once.
pub trait Cloud:
    StackOutputs + Mappings + Alarms + Recoveries + Queues + FlagStore + Records
{
}
impl<T: StackOutputs + Mappings + Alarms + Recoveries + Queues + FlagStore + Records> Cloud for T {}

/// The circuit record, when the stack names its table.
async fn circuit_record(
    r: &StackResources,
    cloud: &impl Records,
) -> Result<Option<breaker_core::record::CircuitRecord>, CliError> {
    match &r.circuit_table_name {
        Some(table) => cloud.record(table, &r.circuit_name).await,
        None => Ok(None),
    }
}

/// Error name a manual close stops the running recovery with.
pub const MANUAL_CLOSE_ERROR: &str = "ManualClose";

/// Runs the parsed command line against AWS (or `--endpoint-url`).
pub async fn run(cli: Cli) -> Result<Output, CliError> {
    let aws = Aws::connect(cli.region.clone(), cli.endpoint_url.clone()).await?;
    if let Command::List { all } = cli.command {
        return Ok(Output::List(list(&aws, &cli.stack_name, all).await?));
    }
    let resources = resolve(&aws, &cli.stack_name, cli.circuit.as_deref()).await?;
    execute(&cli.command, &resources, &aws, now_ms()).await
}

/// The breaker of `stack` the command operates on: the one named `circuit`, or its only one.
pub async fn resolve(
    outputs: &impl StackOutputs,
    stack: &str,
    circuit: Option<&str>,
) -> Result<StackResources, CliError> {
    select(
        stack,
        breakers(stack, &outputs.outputs(stack).await?)?,
        circuit,
    )
}

/// `breaker list`: the breakers of `stack`, or with `all` of every stack (a stack whose
/// descriptor cannot be read is reported in `skipped`, not fatal).
pub async fn list(
    outputs: &impl StackOutputs,
    stack: &str,
    all: bool,
) -> Result<Listing, CliError> {
    if !all {
        return Ok(Listing {
            stack: Some(stack.to_owned()),
            breakers: breakers(stack, &outputs.outputs(stack).await?)?,
            skipped: vec![],
        });
    }
    let mut listing = Listing {
        stack: None,
        breakers: vec![],
        skipped: vec![],
    };
    for (name, outs) in outputs.all_stacks().await? {
        match breakers(&name, &outs) {
            Ok(found) => listing.breakers.extend(found),
            Err(e) => listing.skipped.push(Skipped {
                stack: name,
                error: e.to_string(),
            }),
        }
    }
    Ok(listing)
}

/// Runs one command at time `now_ms`.
pub async fn execute(
    command: &Command,
    r: &StackResources,
    cloud: &impl Cloud,
    now_ms: u64,
) -> Result<Output, CliError> {
    Ok(match command {
        Command::List { .. } => Output::List(Listing {
            stack: Some(r.stack_name.clone()),
            breakers: vec![r.clone()],
            skipped: vec![],
        }),
        Command::Status => Output::Status(Box::new(status(r, cloud, now_ms).await?)),
        Command::Open => Output::Opened(open(r, cloud, now_ms).await?),
        Command::Close => Output::Closed(close(r, cloud, now_ms).await?),
        Command::Flag(args) => Output::Flag(set_flag(r, cloud, args.flag()).await?),
        Command::Send { count } => Output::Sent(send(r, cloud, *count, now_ms).await?),
    })
}

/// `breaker status`.
pub async fn status<C>(r: &StackResources, cloud: &C, now_ms: u64) -> Result<Status, CliError>
where
    C: Mappings + Alarms + Recoveries + Queues + FlagStore + Records,
{
    let dlq = async {
        match &r.dlq_url {
            Some(url) => cloud.depth(url).await.map(Some),
            None => Ok(None),
        }
    };
    let flag = async {
        match &r.flag_parameter_name {
            Some(name) => cloud.get(name).await.map(Some),
            None => Ok(None),
        }
    };
    let (mapping, alarm, running, queue, dlq, flag, record) = tokio::join!(
        cloud.mapping(&r.esm_uuid),
        cloud.alarm(&r.alarm_name),
        cloud.running(&r.state_machine_arn),
        cloud.depth(&r.queue_url),
        dlq,
        flag,
        circuit_record(r, cloud),
    );
    let (mapping, running) = (mapping?, running?);
    // An unreadable alarm (a missing permission; moto, which cannot speak CloudWatch's CBOR
    // protocol) must not hide the rest of the status.
    let alarm = alarm.unwrap_or_else(|e| AlarmStatus {
        name: r.alarm_name.clone(),
        state: "UNKNOWN".into(),
        reason: Some(e.to_string()),
    });
    let recovery = match running.first() {
        None => None,
        Some(oldest) => {
            let progress = cloud.progress(&oldest.arn).await?;
            Some(Recovery {
                execution: oldest.clone(),
                step: progress.step,
                attempt: progress
                    .circuit_state
                    .as_ref()
                    .and_then(|s| s.get("attempt"))
                    .and_then(Value::as_u64),
                others: running.len() - 1,
                running_seconds: now_ms.saturating_sub(oldest.started_at_ms) / 1000,
            })
        }
    };
    Ok(Status {
        circuit: r.circuit_name.clone(),
        stack: r.stack_name.clone(),
        phase: phase(&mapping.state, recovery.as_ref()),
        mapping,
        alarm,
        recovery,
        queue: queue?,
        dlq: dlq?,
        flag: flag?,
        record: record?,
    })
}

/// `breaker open`: starts a recovery with `{"trigger":"manual"}`. The state machine's `open`
/// handler enforces single flight, so an execution started while another runs exits as a duplicate.
pub async fn open(
    r: &StackResources,
    cloud: &impl Recoveries,
    now_ms: u64,
) -> Result<Opened, CliError> {
    let running = cloud.running(&r.state_machine_arn).await?;
    let name = format!("manual-open-{now_ms}");
    let execution_arn = cloud
        .start(&r.state_machine_arn, &name, &json!({"trigger": "manual"}))
        .await?;
    Ok(Opened {
        execution_arn,
        name,
        already_running: running.first().map(|e| e.name.clone()),
    })
}

/// `breaker close`: hands the circuit over to a manual-close execution (CONTRACT.md, "Manual
/// triggers"): the running recovery's latest circuit state is read, every running recovery is stopped
/// with error `ManualClose`, and a new execution starts with
/// `{"trigger":"manual-close","resume":<state>,"previousExecutionArn":<stopped>}`.
/// With no recovery running: nothing to do when the mapping is enabled and the circuit record has
/// no unfinished outage; otherwise (a stuck circuit, or a recovery that ended mid-ramp) the resume
/// state is built from the record's original configuration (from the mapping's current scaling
/// only when there is no record), never from a ramp level. The `open` handler
/// answers such an execution with `close`, and the state machine goes straight to re-jitter, ramp
/// and close.
pub async fn close<C: Recoveries + Mappings + Records>(
    r: &StackResources,
    cloud: &C,
    now_ms: u64,
) -> Result<Closed, CliError> {
    let running = cloud.running(&r.state_machine_arn).await?;
    let name = format!("manual-close-{now_ms}");
    let Some(oldest) = running.first() else {
        let mapping = cloud.mapping(&r.esm_uuid).await?;
        let unfinished = circuit_record(r, cloud)
            .await?
            .filter(|rec| rec.original.is_some());
        if mapping.state == "Enabled" && unfinished.is_none() {
            return Ok(Closed {
                execution_arn: None,
                name: None,
                stopped: vec![],
                already_closed: true,
            });
        }
        let state = match &unfinished {
            Some(rec) => {
                let original = rec.original.expect("filtered on an original");
                let mut s = CircuitState::opened(
                    rec.opened_at_ms.unwrap_or(now_ms),
                    original.scaling(),
                    Trigger::Manual,
                );
                s.attempt = rec.attempt;
                s
            }
            None => CircuitState::opened(
                now_ms,
                SavedScaling {
                    maximum_concurrency: mapping.maximum_concurrency,
                },
                Trigger::Manual,
            ),
        };
        let input = json!({ "trigger": MANUAL_CLOSE, "resume": state });
        let arn = cloud.start(&r.state_machine_arn, &name, &input).await?;
        return Ok(Closed {
            execution_arn: Some(arn),
            name: Some(name),
            stopped: vec![],
            already_closed: false,
        });
    };
    let progress = cloud.progress(&oldest.arn).await?;
    let Some(state) = progress.circuit_state else {
        return Err(CliError::Invalid(format!(
            "recovery {} is still opening the circuit (no circuit state yet); nothing was changed, retry in a few seconds",
            oldest.name
        )));
    };
    let mut stopped = vec![];
    for execution in &running {
        cloud
            .stop(
                &execution.arn,
                MANUAL_CLOSE_ERROR,
                "closed by an operator with `breaker close`; a manual-close execution takes over",
            )
            .await?;
        stopped.push(execution.name.clone());
    }
    let input =
        json!({ "trigger": MANUAL_CLOSE, "resume": state, "previousExecutionArn": oldest.arn });
    let arn = cloud.start(&r.state_machine_arn, &name, &input).await?;
    Ok(Closed {
        execution_arn: Some(arn),
        name: Some(name),
        stopped,
        already_closed: false,
    })
}

/// `breaker flag`: writes the flag in its canonical form.
pub async fn set_flag(
    r: &StackResources,
    store: &impl FlagStore,
    flag: Flag,
) -> Result<FlagChanged, CliError> {
    let name = r
        .flag_parameter_name
        .as_deref()
        .ok_or_else(|| CliError::NoFlag {
            stack: r.stack_name.clone(),
        })?;
    let previous = store.get(name).await.ok();
    store.put(name, &flag.to_string()).await?;
    Ok(FlagChanged {
        parameter: name.to_owned(),
        previous,
        current: flag.to_string(),
    })
}

/// `breaker send N`: enqueues `count` orders in batches of 10.
pub async fn send(
    r: &StackResources,
    queues: &impl Queues,
    count: u32,
    now_ms: u64,
) -> Result<Sent, CliError> {
    let mut failed = 0u32;
    let mut first = None;
    let mut last = None;
    for start in (0..count).step_by(10) {
        let entries: Vec<(String, String)> = (start..count.min(start + 10))
            .map(|i| {
                let order_id = format!("order-{now_ms}-{i:06}");
                let body = Order {
                    order_id: order_id.clone(),
                    amount_cents: 100 + u64::from(i % 50) * 25,
                    created_at_ms: now_ms,
                };
                first.get_or_insert_with(|| order_id.clone());
                last = Some(order_id);
                let body = serde_json::to_string(&body).expect("an order serializes");
                (format!("m{i}"), body)
            })
            .collect();
        failed += queues.send_batch(&r.queue_url, entries).await?.len() as u32;
    }
    Ok(Sent {
        requested: count,
        sent: count - failed,
        failed,
        first_order_id: first,
        last_order_id: last,
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use breaker_core::contract::{OpenInput, OpenRequest};

    use super::*;
    use crate::ports::testing::Fake;
    use crate::stack::tests::{descriptor, descriptor_output, legacy_outputs, outputs};
    use crate::status::{Execution, MappingStatus, Phase, Progress, QueueDepth};

    fn resources() -> StackResources {
        StackResources::from_outputs("Example", &outputs()).unwrap()
    }

    fn fake() -> Fake {
        let r = resources();
        let mut f = Fake::default();
        f.outputs.insert("Example".into(), legacy_outputs());
        f.mapping = Some(MappingStatus {
            uuid: r.esm_uuid.clone(),
            state: "Enabled".into(),
            maximum_concurrency: Some(10),
            batch_size: Some(10),
        });
        f.alarm = Some(AlarmStatus {
            name: r.alarm_name.clone(),
            state: "OK".into(),
            reason: None,
        });
        f.depths.insert(
            r.queue_url.clone(),
            QueueDepth {
                visible: 120,
                in_flight: 3,
                delayed: 40,
            },
        );
        f.depths
            .insert(r.dlq_url.clone().unwrap(), QueueDepth::default());
        f.flags
            .lock()
            .unwrap()
            .insert("/orders/flag".into(), "ok".into());
        f
    }

    fn execution(name: &str, started_at_ms: u64) -> Execution {
        Execution {
            arn: format!("arn:aws:states:us-east-1:123456789012:execution:orders-breaker:{name}"),
            name: name.into(),
            started_at_ms,
        }
    }

    fn circuit_state() -> Value {
        json!({"version":1,"openedAtMs":1000,"attempt":2,"iteration":2,"generation":0,"savedScaling":{"maximumConcurrency":10},"trigger":"alarm"})
    }

    fn with_recovery(mut f: Fake, step: &str) -> Fake {
        let oldest = execution("alarm-1", 1_000);
        f.progress.insert(
            oldest.arn.clone(),
            Progress {
                step: Some(step.into()),
                circuit_state: Some(circuit_state()),
            },
        );
        f.running
            .lock()
            .unwrap()
            .extend([oldest, execution("alarm-2", 2_000)]);
        f.mapping.as_mut().unwrap().state = "Disabled".into();
        f.alarm.as_mut().unwrap().state = "ALARM".into();
        f
    }

    #[tokio::test]
    async fn resolve_reports_a_missing_stack() {
        let err = resolve(&Fake::default(), "Nope", None).await.unwrap_err();
        assert_eq!(err.kind(), "NoSuchStack");
    }

    fn shop() -> Fake {
        let mut f = fake();
        f.outputs.insert(
            "Shop".into(),
            vec![
                descriptor_output("OrdersBreakerCliDescriptorA", &descriptor("orders")),
                descriptor_output("PaymentsBreakerCliDescriptorB", &descriptor("payments")),
            ],
        );
        f
    }

    #[tokio::test]
    async fn resolve_picks_the_circuit_of_a_stack_with_several() {
        let f = shop();
        let r = resolve(&f, "Shop", Some("payments")).await.unwrap();
        assert_eq!(
            (r.circuit_name.as_str(), r.esm_uuid.as_str()),
            ("payments", "uuid-payments")
        );
        let err = resolve(&f, "Shop", None).await.unwrap_err();
        assert_eq!(err.kind(), "SeveralCircuits");
        let err = resolve(&f, "Shop", Some("nope")).await.unwrap_err();
        assert_eq!(err.kind(), "UnknownCircuit");
        // The example stack (legacy outputs, one breaker) needs no --circuit, but takes its name.
        assert_eq!(
            resolve(&f, "Example", None).await.unwrap().circuit_name,
            "orders"
        );
        assert_eq!(
            resolve(&f, "Example", Some("orders"))
                .await
                .unwrap()
                .circuit_name,
            "orders"
        );
    }

    #[tokio::test]
    async fn list_shows_the_stacks_breakers_or_every_stacks() {
        let mut f = shop();
        f.outputs.insert("Empty".into(), vec![]);
        let mut broken = descriptor("broken");
        broken.as_object_mut().unwrap().remove("alarmName");
        f.outputs
            .insert("Broken".into(), vec![descriptor_output("X", &broken)]);

        let one = list(&f, "Shop", false).await.unwrap();
        let names: Vec<_> = one
            .breakers
            .iter()
            .map(|b| b.circuit_name.as_str())
            .collect();
        assert_eq!(names, ["orders", "payments"]);
        assert!(one.skipped.is_empty());

        let all = list(&f, "ignored", true).await.unwrap();
        let found: Vec<_> = all
            .breakers
            .iter()
            .map(|b| (b.stack_name.as_str(), b.circuit_name.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("Example", "orders"),
                ("Shop", "orders"),
                ("Shop", "payments")
            ]
        );
        assert_eq!(all.skipped.len(), 1);
        assert_eq!(all.skipped[0].stack, "Broken");
        assert!(
            all.skipped[0].error.contains("field alarmName is missing"),
            "{:?}",
            all.skipped
        );

        let err = list(&f, "Broken", false).await.unwrap_err();
        assert_eq!(err.kind(), "InvalidDescriptor");
    }

    #[tokio::test]
    async fn status_of_a_healthy_circuit_is_closed_with_depths_and_flag() {
        let s = status(&resources(), &fake(), 10_000).await.unwrap();
        assert_eq!(s.phase, Phase::Closed);
        assert_eq!(s.mapping.maximum_concurrency, Some(10));
        assert_eq!(s.queue.total(), 163);
        assert_eq!(s.dlq, Some(QueueDepth::default()));
        assert_eq!(s.flag.as_deref(), Some("ok"));
        assert_eq!(s.recovery, None);
    }

    #[tokio::test]
    async fn status_survives_an_unreadable_alarm() {
        let mut f = fake();
        f.alarm = None;
        let s = status(&resources(), &f, 10_000).await.unwrap();
        assert_eq!(s.alarm.state, "UNKNOWN");
        assert_eq!(
            s.alarm.reason.as_deref(),
            Some(
                "DescribeAlarms failed (ResourceNotFoundException): orders-breaker-errors not found"
            )
        );
        assert_eq!(s.phase, Phase::Closed);
    }

    #[tokio::test]
    async fn status_fails_when_the_mapping_cannot_be_read() {
        let mut f = fake();
        f.mapping = None;
        let err = status(&resources(), &f, 10_000).await.unwrap_err();
        assert!(
            err.to_string().starts_with("GetEventSourceMapping failed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn status_follows_the_oldest_running_recovery() {
        let s = status(&resources(), &with_recovery(fake(), "Back Off"), 61_000)
            .await
            .unwrap();
        assert_eq!(s.phase, Phase::BackingOff);
        let recovery = s.recovery.unwrap();
        assert_eq!(recovery.execution.name, "alarm-1");
        assert_eq!(
            (recovery.attempt, recovery.others, recovery.running_seconds),
            (Some(2), 1, 60)
        );
        assert_eq!(recovery.step.as_deref(), Some("Back Off"));
    }

    #[tokio::test]
    async fn open_starts_a_manual_execution_and_notes_a_running_one() {
        let f = with_recovery(fake(), "Back Off");
        let opened = open(&resources(), &f, 5_000).await.unwrap();
        assert_eq!(opened.name, "manual-open-5000");
        assert_eq!(opened.already_running.as_deref(), Some("alarm-1"));
        assert_eq!(
            f.calls(),
            vec![r#"start manual-open-5000 {"trigger":"manual"}"#]
        );
        assert!(opened.execution_arn.ends_with(":manual-open-5000"));
    }

    #[tokio::test]
    async fn close_stops_running_recoveries_and_resumes_their_state_in_a_manual_close() {
        let f = with_recovery(fake(), "Back Off");
        let closed = close(&resources(), &f, 9_000).await.unwrap();
        assert_eq!(closed.stopped, vec!["alarm-1", "alarm-2"]);
        let calls = f.calls();
        assert_eq!(calls.len(), 3);
        assert!(calls[0].starts_with("stop arn:aws:states:us-east-1:123456789012:execution:orders-breaker:alarm-1 ManualClose: "));
        let input: Value =
            serde_json::from_str(calls[2].strip_prefix("start manual-close-9000 ").unwrap())
                .unwrap();
        assert_eq!(input["trigger"], "manual-close");
        assert_eq!(input["resume"], circuit_state());
        assert_eq!(
            input["previousExecutionArn"],
            "arn:aws:states:us-east-1:123456789012:execution:orders-breaker:alarm-1"
        );
        match open_request(input) {
            OpenRequest::ManualClose {
                state,
                previous_execution_arn,
            } => {
                assert_eq!(serde_json::to_value(state).unwrap(), circuit_state());
                assert_eq!(
                    previous_execution_arn.as_deref(),
                    Some("arn:aws:states:us-east-1:123456789012:execution:orders-breaker:alarm-1")
                );
            }
            other => panic!("expected a manual close, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn close_without_a_circuit_state_yet_changes_nothing() {
        let f = with_recovery(fake(), "Open Circuit");
        f.running.lock().unwrap().truncate(1);
        let mut f = f;
        f.progress = BTreeMap::new();
        let err = close(&resources(), &f, 9_000).await.unwrap_err();
        assert!(
            err.to_string().contains("still opening the circuit"),
            "{err}"
        );
        assert!(f.calls().is_empty());
    }

    #[tokio::test]
    async fn close_of_a_closed_circuit_does_nothing() {
        let f = fake();
        let closed = close(&resources(), &f, 9_000).await.unwrap();
        assert!(closed.already_closed);
        assert!(f.calls().is_empty());
    }

    #[tokio::test]
    async fn close_of_a_stuck_circuit_resumes_from_the_mappings_scaling() {
        let mut f = fake();
        f.mapping.as_mut().unwrap().state = "Disabled".into();
        close(&resources(), &f, 9_000).await.unwrap();
        let calls = f.calls();
        let input: Value =
            serde_json::from_str(calls[0].strip_prefix("start manual-close-9000 ").unwrap())
                .unwrap();
        assert_eq!(
            input["resume"]["savedScaling"],
            json!({"maximumConcurrency": 10})
        );
        assert_eq!(input["resume"]["openedAtMs"], 9_000);
        assert!(
            matches!(
                open_request(input),
                OpenRequest::ManualClose {
                    previous_execution_arn: None,
                    ..
                }
            ),
            "the open handler takes it as a manual close"
        );
    }

    /// Issue 12, defect 2 (CLI side): a recovery ended mid-ramp, leaving the mapping enabled at
    /// ramp level 2 with nothing running. On main `breaker close` called that "already closed"
    /// (and with the mapping disabled it saved the current level as the original). Now the
    /// record's original (50) is what the manual close restores.
    #[tokio::test]
    async fn close_after_a_recovery_ended_mid_ramp_restores_the_records_original() {
        use breaker_core::record::{CircuitRecord, OriginalConfig, Phase};
        let mut f = fake();
        f.mapping.as_mut().unwrap().maximum_concurrency = Some(2);
        f.record = Some(CircuitRecord {
            revision: 9,
            owner: Some("arn:dead".into()),
            phase: Phase::Stuck,
            original: Some(OriginalConfig {
                enabled: true,
                maximum_concurrency: Some(50),
                provisioned_poller_config: None,
            }),
            opened_at_ms: Some(4_000),
            attempt: 6,
            ..CircuitRecord::new_closed(1)
        });
        let mut outputs = crate::stack::tests::outputs();
        outputs.insert("CircuitTableName".into(), "orders-circuit".into());
        let r = StackResources::from_outputs("Example", &outputs).unwrap();
        let closed = close(&r, &f, 9_000).await.unwrap();
        assert!(!closed.already_closed);
        let calls = f.calls();
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("record orders-circuit ")),
            "{calls:?}"
        );
        let start = calls
            .iter()
            .find_map(|c| c.strip_prefix("start manual-close-9000 "))
            .unwrap();
        let input: Value = serde_json::from_str(start).unwrap();
        assert_eq!(
            input["resume"]["savedScaling"],
            json!({"maximumConcurrency": 50})
        );
        assert_eq!(
            (
                input["resume"]["openedAtMs"].clone(),
                input["resume"]["attempt"].clone()
            ),
            (json!(4_000), json!(6))
        );
    }

    /// What the `open` handler makes of an execution input the CLI started.
    fn open_request(input: Value) -> OpenRequest {
        OpenInput {
            execution_arn:
                "arn:aws:states:us-east-1:123456789012:execution:orders-breaker:manual-close-9000"
                    .into(),
            input,
        }
        .request()
        .expect("the open handler accepts the input")
    }

    #[tokio::test]
    async fn flag_writes_the_canonical_value_and_reports_the_previous_one() {
        let f = fake();
        let changed = set_flag(&resources(), &f, Flag::Percent(30)).await.unwrap();
        assert_eq!(
            (changed.previous.as_deref(), changed.current.as_str()),
            (Some("ok"), "percent:30")
        );
        assert_eq!(
            f.flags
                .lock()
                .unwrap()
                .get("/orders/flag")
                .map(String::as_str),
            Some("percent:30")
        );
    }

    #[tokio::test]
    async fn flag_on_a_stack_without_a_flag_names_the_missing_output() {
        let mut r = resources();
        r.flag_parameter_name = None;
        let err = set_flag(&r, &fake(), Flag::Fail).await.unwrap_err();
        assert_eq!(
            err,
            CliError::NoFlag {
                stack: "Example".into()
            }
        );
        assert!(err.to_string().contains("the example stack only"), "{err}");
    }

    #[tokio::test]
    async fn send_batches_by_ten_and_counts_failed_entries() {
        let mut f = fake();
        f.failing_sends = vec!["m3".into(), "m21".into()];
        let sent = send(&resources(), &f, 23, 7).await.unwrap();
        assert_eq!((sent.requested, sent.sent, sent.failed), (23, 21, 2));
        assert_eq!(
            f.calls(),
            vec!["send_batch 10", "send_batch 10", "send_batch 3"]
        );
        let bodies = f.sent.lock().unwrap();
        let order: Order = serde_json::from_str(&bodies[0].1).unwrap();
        assert_eq!(order.order_id, "order-7-000000");
        assert_eq!(sent.last_order_id.as_deref(), Some("order-7-000022"));
    }
}
