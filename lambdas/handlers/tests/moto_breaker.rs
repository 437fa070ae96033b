//! Integration: `open`, `probe` and `close` against a real moto server (SQS queue with a
//! dead-letter queue, a Lambda function and its event-source mapping, EventBridge bus, Step
//! Functions executions), through the real SDK adapters.
//!
//! moto's `Invoke` only echoes its payload, so the *consumer* port is an in-memory fake
//! ([`FakeConsumer`]). The *alarm* port is in-memory too: aws-sdk-cloudwatch 1.140 speaks the
//! `smithy-rpc-v2-cbor` protocol, which moto 5.2.5 does not route (404). Queue, event-source
//! mapping, event bus and executions are the real adapters talking to moto.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    FunctionCode, FunctionResponseType, ProvisionedPollerConfig, Runtime, ScalingConfig,
};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    QueueAttributeName,
};
use breaker_aws::dynamodb::{DynamoCircuitRecords, KEY};
use breaker_aws::eventbridge::EventBus;
use breaker_aws::lambda::LambdaEsm;
use breaker_aws::sfn::StateMachineExecutions;
use breaker_aws::sqs::SqsQueue;
use breaker_core::config::Config;
use breaker_core::contract::{CircuitState, CloseOutput, OpenAction, ProbeOutput, Verdict};
use breaker_core::ports::{EsmSnapshot, EsmState, EventSourceMappings, SystemClock};
use breaker_handlers::app::App;
use breaker_handlers::testing::{FakeAlarms, FakeConsumer, FakeMetrics};
use breaker_testkit::MotoServer;
use breaker_testkit::moto::{ACCOUNT_ID, REGION};
use serde_json::{Value, json};

breaker_handlers::ports_bundle! {
    /// The ports of these tests: the real adapters talking to moto, the consumer and the alarm in
    /// memory (see above); the metrics, which `open`, `probe` and `close` do not read, too.
    struct MotoPorts {
        esm: LambdaEsm,
        consumer: FakeConsumer,
        queue: SqsQueue,
        alarms: FakeAlarms,
        metrics: FakeMetrics,
        events: EventBus,
        executions: StateMachineExecutions,
        records: DynamoCircuitRecords,
        clock: SystemClock,
    }
}

/// Everything one test needs, created in moto.
struct Cloud {
    moto: MotoServer,
    sdk: aws_config::SdkConfig,
    config: Config,
    queue_url: String,
    dlq_url: String,
    state_machine_arn: String,
}

/// A minimal, valid (empty) zip archive: moto stores the code without running it.
const EMPTY_ZIP: &[u8] = &[
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// moto's IAM is not in this workspace's SDK set; create the role with one query-protocol call.
fn create_role(port: u16, name: &str) -> String {
    let doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={doc}"
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send CreateRole");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read CreateRole");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "CreateRole failed: {response:.400}"
    );
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}")
}

/// The circuit table as the construct creates it (on-demand, key `circuit`).
async fn create_circuit_table(sdk: &aws_config::SdkConfig) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name("orders-circuit")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn cloud(max_receive_count: u32, maximum_concurrency: Option<i32>) -> Cloud {
    cloud_with(max_receive_count, maximum_concurrency, None).await
}

/// [`cloud`], the mapping in provisioned mode with `pollers` (minimum, maximum) when given.
async fn cloud_with(
    max_receive_count: u32,
    maximum_concurrency: Option<i32>,
    pollers: Option<(i32, i32)>,
) -> Cloud {
    let moto = MotoServer::start();
    moto.configure(&json!({ "lambda": { "use_docker": false } }));
    let sdk = moto.sdk_config().await;
    let role = create_role(moto.port(), "breaker-test");

    create_circuit_table(&sdk).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name("orders-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:orders-dlq");
    let redrive =
        json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count }).to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name("orders")
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:orders");

    let lambda = aws_sdk_lambda::Client::new(&sdk);
    lambda
        .create_function()
        .function_name("orders-consumer")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.clone())
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(EMPTY_ZIP))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let esm = lambda
        .create_event_source_mapping()
        .function_name("orders-consumer")
        .event_source_arn(&queue_arn)
        .batch_size(10)
        .function_response_types(FunctionResponseType::ReportBatchItemFailures)
        .set_scaling_config(
            maximum_concurrency.map(|m| ScalingConfig::builder().maximum_concurrency(m).build()),
        )
        .set_provisioned_poller_config(pollers.map(|(minimum, maximum)| {
            ProvisionedPollerConfig::builder()
                .minimum_pollers(minimum)
                .maximum_pollers(maximum)
                .build()
        }))
        .enabled(true)
        .send()
        .await
        .unwrap();
    let esm_uuid = esm.uuid.unwrap();

    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let definition =
        json!({ "StartAt": "Done", "States": { "Done": { "Type": "Pass", "End": true } } })
            .to_string();
    let state_machine_arn = sfn
        .create_state_machine()
        .name("Breaker")
        .definition(definition)
        .role_arn(role)
        .send()
        .await
        .unwrap()
        .state_machine_arn;

    let env: HashMap<&str, String> = HashMap::from([
        ("CIRCUIT_NAME", "orders".to_owned()),
        ("ESM_UUID", esm_uuid),
        ("QUEUE_URL", queue_url.clone()),
        ("QUEUE_ARN", queue_arn),
        ("CONSUMER_FUNCTION_NAME", "orders-consumer".to_owned()),
        ("ALARM_NAME", "orders-errors".to_owned()),
        ("CIRCUIT_TABLE_NAME", "orders-circuit".to_owned()),
    ]);
    let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    Cloud {
        moto,
        sdk,
        config,
        queue_url,
        dlq_url,
        state_machine_arn,
    }
}

impl Cloud {
    fn esm(&self) -> LambdaEsm {
        LambdaEsm::new(aws_sdk_lambda::Client::new(&self.sdk))
    }

    fn queue(&self) -> SqsQueue {
        SqsQueue::new(aws_sdk_sqs::Client::new(&self.sdk), &self.queue_url)
    }

    fn events(&self) -> EventBus {
        EventBus::new(aws_sdk_eventbridge::Client::new(&self.sdk), "default")
    }

    async fn start_execution(&self, name: &str) -> String {
        aws_sdk_sfn::Client::new(&self.sdk)
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input("{}")
            .send()
            .await
            .unwrap()
            .execution_arn
    }

    fn records(&self) -> DynamoCircuitRecords {
        DynamoCircuitRecords::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.config.circuit_table_name,
            &self.config.circuit_name,
        )
    }

    /// The app on moto's mapping, queue, event bus, executions and record table, with `consumer`
    /// and `alarms`, and the default mapping-update policy.
    fn app(&self, consumer: &FakeConsumer, alarms: &FakeAlarms) -> App<MotoPorts> {
        let ports = MotoPorts {
            esm: self.esm(),
            consumer: consumer.clone(),
            queue: self.queue(),
            alarms: alarms.clone(),
            metrics: FakeMetrics::default(),
            events: self.events(),
            executions: StateMachineExecutions::new(aws_sdk_sfn::Client::new(&self.sdk)),
            records: self.records(),
            clock: SystemClock,
        };
        App::new(self.config.clone(), ports)
    }

    async fn open(&self, execution_arn: &str) -> breaker_core::contract::OpenOutput {
        let input = json!({ "executionArn": execution_arn, "input": { "trigger": "manual" } });
        let app = self.app(&FakeConsumer::healthy(), &FakeAlarms::default());
        breaker_handlers::open::open(input, &app).await.unwrap()
    }

    /// `probe` with this state against the real queue, the consumer and the real event bus.
    async fn probe(&self, state: &CircuitState, consumer: &FakeConsumer) -> ProbeOutput {
        let app = self.app(consumer, &FakeAlarms::default());
        breaker_handlers::probe::probe(json!({ "state": state }), &app)
            .await
            .unwrap()
    }

    /// `close` with this state against the real mapping and event bus and the alarms.
    async fn close(&self, me: &str, state: &CircuitState, alarms: &FakeAlarms) -> CloseOutput {
        let input = json!({ "state": state, "executionArn": me });
        let app = self.app(&FakeConsumer::healthy(), alarms);
        breaker_handlers::close::close(input, &app).await.unwrap()
    }

    /// Give the mapping these `FilterCriteria` patterns (`UpdateEventSourceMapping`).
    async fn filter_mapping(&self, patterns: &[&str]) {
        let mut criteria = aws_sdk_lambda::types::FilterCriteria::builder();
        for p in patterns {
            criteria =
                criteria.filters(aws_sdk_lambda::types::Filter::builder().pattern(*p).build());
        }
        aws_sdk_lambda::Client::new(&self.sdk)
            .update_event_source_mapping()
            .uuid(&self.config.esm_uuid)
            .filter_criteria(criteria.build())
            .send()
            .await
            .unwrap();
    }

    /// The event-source mapping as it is now.
    async fn mapping(&self) -> EsmSnapshot {
        self.esm().get(&self.config.esm_uuid).await.unwrap()
    }

    async fn send_order(&self, n: u32) {
        aws_sdk_sqs::Client::new(&self.sdk)
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(format!("{{\"order\":{n}}}"))
            .message_attributes(
                "tenant",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("acme")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "priority",
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value("7")
                    .build()
                    .unwrap(),
            )
            .message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(format!("Root=1-00000000-00000000000000000000{n:04}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Every message currently in `url`, drained with visibility 0 peeks (receive count grows,
    /// so call this only at the end of a test).
    async fn peek_all(&self, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        aws_sdk_sqs::Client::new(&self.sdk)
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    async fn count(&self, url: &str) -> (u64, u64) {
        let attrs = aws_sdk_sqs::Client::new(&self.sdk)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_probe_close_round_trip_restores_the_mapping_and_resets_the_alarm() {
    let cloud = cloud(3, Some(7)).await;
    let me = cloud.start_execution("recovery-1").await;
    let opened = cloud.open(&me).await;
    assert_eq!(opened.action, OpenAction::Proceed);
    let state = opened.state.unwrap();
    assert_eq!(state.saved_scaling.maximum_concurrency, Some(7));
    assert_eq!(cloud.mapping().await.state, EsmState::Disabled);

    cloud.send_order(1).await;
    let consumer = FakeConsumer::healthy();
    let probed = cloud.probe(&state, &consumer).await;
    assert_eq!((probed.verdict, probed.probed), (Verdict::Healthy, 1));
    let record = &consumer.invocations()[0]["Records"][0];
    assert_eq!(record["body"], "{\"order\":1}");
    assert_eq!(record["messageAttributes"]["tenant"]["stringValue"], "acme");
    assert_eq!(
        record["attributes"]["AWSTraceHeader"],
        "Root=1-00000000-000000000000000000000001"
    );
    assert_eq!(record["eventSourceARN"], cloud.config.queue_arn.as_str());
    assert_eq!(
        cloud.count(&cloud.queue_url).await,
        (0, 0),
        "the processed message was deleted"
    );

    let alarms = FakeAlarms::default();
    let closed = cloud.close(&me, &probed.state, &alarms).await;
    assert!(closed.closed);
    let esm = cloud.mapping().await;
    assert_eq!(
        (esm.state, esm.maximum_concurrency),
        (EsmState::Enabled, Some(7))
    );
    use breaker_core::ports::Alarms;
    assert_eq!(
        alarms.state().await.unwrap(),
        breaker_core::ports::AlarmState::Ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_restores_no_limit_when_the_mapping_had_none() {
    let cloud = cloud(3, None).await;
    let me = cloud.start_execution("recovery-1").await;
    let state = cloud.open(&me).await.state.unwrap();
    assert_eq!(state.saved_scaling.maximum_concurrency, None);
    // Simulate a ramp level left behind, then close.
    cloud
        .esm()
        .update_scaling(&cloud.config.esm_uuid, Some(17).into())
        .await
        .unwrap();
    let alarms = FakeAlarms::default();
    cloud.close(&me, &state, &alarms).await;
    let esm = cloud.mapping().await;
    assert_eq!(
        (esm.state, esm.maximum_concurrency),
        (EsmState::Enabled, None)
    );
}

/// Issue 16: with nothing visible on the queue (read with `GetQueueAttributes` through the SQS
/// adapter) the consumer does not fill the ramp's first level, so its first clean verdict ends
/// the ramp there instead of raising one level per interval, and close restores the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_with_nothing_waiting_on_the_queue_closes_after_its_first_clean_level() {
    use breaker_core::contract::RampAction;

    let cloud = cloud(3, Some(40)).await;
    let me = cloud.start_execution("recovery-1").await;
    let mut state = cloud.open(&me).await.state.unwrap();
    let app = cloud.app(&FakeConsumer::healthy(), &FakeAlarms::default());
    let first = breaker_handlers::ramp::ramp(
        json!({ "state": state, "step": 0, "executionArn": me }),
        &app,
    )
    .await
    .unwrap();
    assert_eq!(first.action, RampAction::Step);
    assert_eq!(cloud.mapping().await.maximum_concurrency, Some(2));
    state = first.state;
    // What the workflow's wait would bring: a complete interval since the level was set.
    let config = &cloud.config;
    let lag = breaker_core::policy::publication_lag_ms(
        config.consumer_metric_resolution,
        config.consumer_timeout_seconds,
    );
    let p = state.ramp.as_mut().unwrap();
    p.judge_from_ms = p
        .judge_from_ms
        .saturating_sub(2 * config.consumer_metric_period_seconds * 1000 + lag);
    let next = breaker_handlers::ramp::ramp(
        json!({ "state": state, "step": first.step, "executionArn": me }),
        &app,
    )
    .await
    .unwrap();
    assert_eq!(
        (next.action, next.maximum_concurrency),
        (RampAction::Done, Some(2))
    );
    assert_eq!(cloud.mapping().await.maximum_concurrency, Some(2));
    let closed = cloud.close(&me, &next.state, &FakeAlarms::default()).await;
    assert!(closed.closed);
    let esm = cloud.mapping().await;
    assert_eq!(
        (esm.state, esm.maximum_concurrency),
        (EsmState::Enabled, Some(40))
    );
}

/// Issue 13 item 2: a mapping in provisioned mode goes through open, every ramp step and close
/// against moto with the local cloud's event-source mapping checks (`patches.fix_lambda_esm`:
/// `MaximumConcurrency` is refused together with a poller configuration, as AWS refuses it). The
/// ramp raises `MaximumPollers`, and close restores the poller configuration exactly, with no
/// concurrency limit. On main, ramp step 0 sent `MaximumConcurrency` and failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_mapping_ramps_through_its_pollers_and_closes_with_them_restored() {
    use breaker_core::contract::RampAction;
    use breaker_core::ports::PollerConfig;

    let cloud = cloud_with(3, None, Some((3, 40))).await;
    let original = PollerConfig {
        minimum_pollers: Some(3),
        maximum_pollers: Some(40),
    };
    assert_eq!(
        cloud.mapping().await.provisioned_poller_config,
        Some(original)
    );
    let me = cloud.start_execution("recovery-1").await;
    let opened = cloud.open(&me).await;
    assert_eq!(opened.action, OpenAction::Proceed);
    let mut state = opened.state.unwrap();
    assert_eq!(cloud.mapping().await.state, EsmState::Disabled);

    // An order waits visible (nothing consumes it here), so every level limits the consumer and
    // the ramp climbs through all of them (`Follow::close_if_unlimited`).
    cloud.send_order(1).await;
    let app = cloud.app(&FakeConsumer::healthy(), &FakeAlarms::default());
    let mut step = 0;
    let mut seen = vec![];
    loop {
        let input = json!({ "state": state, "step": step, "executionArn": me });
        let out = breaker_handlers::ramp::ramp(input, &app)
            .await
            .expect("a ramp step on a provisioned mapping succeeds");
        state = out.state;
        // The health-following ramp judges the complete interval since the level was set, which
        // the workflow's wait would bring; this test does not wait on the real clock, so it moves
        // the interval's start back by what the wait covers (two periods and the lag: with the
        // default one-minute metrics, the consumer's timeout and a minute).
        let config = &cloud.config;
        let lag = breaker_core::policy::publication_lag_ms(
            config.consumer_metric_resolution,
            config.consumer_timeout_seconds,
        );
        let covered = 2 * config.consumer_metric_period_seconds * 1000 + lag;
        if let Some(p) = state.ramp.as_mut() {
            p.judge_from_ms = p.judge_from_ms.saturating_sub(covered);
        }
        let esm = cloud.mapping().await;
        assert_eq!(esm.maximum_concurrency, None, "never a concurrency limit");
        if out.action == RampAction::Done {
            break;
        }
        assert_eq!(out.action, RampAction::Step);
        seen.push(
            esm.provisioned_poller_config
                .unwrap()
                .maximum_pollers
                .unwrap(),
        );
        step = out.step;
    }
    assert_eq!(seen, vec![2, 5, 15, 40]);

    let alarms = FakeAlarms::default();
    let closed = cloud.close(&me, &state, &alarms).await;
    assert!(closed.closed);
    let esm = cloud.mapping().await;
    assert_eq!(
        (
            esm.state,
            esm.maximum_concurrency,
            esm.provisioned_poller_config
        ),
        (EsmState::Enabled, None, Some(original))
    );
}

/// Issue 12 (single flight): six executions (three `breaker open`, three alarm deliveries in
/// spirit) open at the same moment against moto's DynamoDB and Step Functions: exactly one acts,
/// the others end as duplicates named in the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executions_opening_at_once_exactly_one_acts_and_the_record_names_the_others() {
    use breaker_core::ports::CircuitRecords;
    let cloud = std::sync::Arc::new(cloud(3, Some(4)).await);
    let mut names = Vec::new();
    for i in 0..6 {
        names.push(cloud.start_execution(&format!("recovery-{i}")).await);
    }
    let outcomes = futures::future::join_all(names.iter().map(|me| {
        let cloud = cloud.clone();
        let me = me.clone();
        tokio::spawn(async move { (me.clone(), cloud.open(&me).await.action) })
    }))
    .await;
    let outcomes: Vec<(String, OpenAction)> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    let owners: Vec<&String> = outcomes
        .iter()
        .filter(|(_, a)| *a == OpenAction::Proceed)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(owners.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|(_, a)| *a == OpenAction::Duplicate)
            .count(),
        5
    );
    let record = cloud.records().load().await.unwrap().unwrap();
    assert_eq!(record.owner.as_ref(), Some(owners[0]));
    let mut duplicates = record.duplicates.clone();
    duplicates.sort();
    let mut expected: Vec<String> = outcomes
        .iter()
        .filter(|(_, a)| *a == OpenAction::Duplicate)
        .map(|(m, _)| m.clone())
        .collect();
    expected.sort();
    assert_eq!(duplicates, expected);
    assert_eq!(record.original.unwrap().maximum_concurrency, Some(4));
    assert_eq!(cloud.mapping().await.state, EsmState::Disabled);
}

async fn failed_probes_keep_the_message(max_receive_count: u32) {
    let cloud = cloud(max_receive_count, Some(5)).await;
    let me = cloud.start_execution("recovery-1").await;
    let mut state = cloud.open(&me).await.state.unwrap();
    cloud.send_order(42).await;
    let consumer = FakeConsumer::failing();
    // Probe visibility 0 is not allowed; the handler releases or re-sends right after judging.
    for attempt in 1..=30 {
        let out = cloud.probe(&state, &consumer).await;
        assert_eq!(
            (out.verdict, out.probed),
            (Verdict::Unhealthy, 1),
            "probe {attempt} saw the message"
        );
        state = out.state;
    }
    assert_eq!(state.attempt, 30);
    assert_eq!(
        cloud.count(&cloud.dlq_url).await,
        (0, 0),
        "nothing reached the dead-letter queue"
    );
    let left = cloud.peek_all(&cloud.queue_url).await;
    assert_eq!(
        left.len(),
        1,
        "exactly one message, never lost, never duplicated"
    );
    let m = &left[0];
    assert_eq!(m.body(), Some("{\"order\":42}"));
    let attrs = m.message_attributes().unwrap();
    assert_eq!(attrs["tenant"].string_value(), Some("acme"));
    assert_eq!(
        (
            attrs["priority"].data_type(),
            attrs["priority"].string_value()
        ),
        ("Number", Some("7"))
    );
    // moto 5.2.5 drops `MessageSystemAttributes` on SendMessageBatch, so the re-sent copy's
    // AWSTraceHeader cannot be checked here; the probe unit tests (FakeQueue) and the SqsQueue
    // adapter's smithy-mock test cover it.
    let invoked: Vec<Value> = consumer.invocations();
    assert_eq!(invoked.len(), 30);
    drop(cloud.moto);
}

/// Issue 13 item 5: the lowest redrive settings SQS allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_failed_probes_never_lose_or_dead_letter_a_message_with_max_receive_count_1() {
    failed_probes_keep_the_message(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_failed_probes_never_lose_or_dead_letter_a_message_with_max_receive_count_2() {
    failed_probes_keep_the_message(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_failed_probes_never_lose_or_dead_letter_a_message_with_max_receive_count_3() {
    failed_probes_keep_the_message(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_failed_probes_mixing_release_and_resend_keep_the_message_with_max_receive_count_5()
{
    failed_probes_keep_the_message(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_hands_the_consumer_only_what_the_mappings_filter_delivers() {
    let cloud = cloud(5, Some(7)).await;
    let me = cloud.start_execution("recovery-filtered").await;
    let state = cloud.open(&me).await.state.unwrap();
    cloud.filter_mapping(&[r#"{"body":{"order":[2]}}"#]).await;
    assert_eq!(
        cloud.mapping().await.filter_patterns,
        vec![r#"{"body":{"order":[2]}}"#.to_owned()],
        "the local cloud stores and returns FilterCriteria, as Lambda does"
    );
    cloud.send_order(1).await;
    cloud.send_order(2).await;
    let consumer = FakeConsumer::healthy();
    let out = cloud.probe(&state, &consumer).await;
    let bodies: Vec<Value> = consumer
        .invocations()
        .iter()
        .flat_map(|e| e["Records"].as_array().unwrap().clone())
        .map(|r| r["body"].clone())
        .collect();
    assert_eq!(
        bodies,
        vec![json!("{\"order\":2}")],
        "never the filtered-out order 1"
    );
    assert_eq!(
        (out.verdict, out.probed, out.filtered_out),
        (Verdict::Healthy, 1, 1)
    );
    assert_eq!(
        cloud.count(&cloud.queue_url).await,
        (0, 0),
        "order 1 deleted as the mapping deletes it, order 2 processed"
    );
    assert_eq!(cloud.count(&cloud.dlq_url).await, (0, 0));
}

/// Issue 13 item 6: a message exactly at SQS's 1 MiB limit (body plus 10 attributes of every
/// type), as the local cloud counts it (`patches.fix_sqs_sizes`).
fn one_mib_message(n: usize) -> (String, HashMap<String, MessageAttributeValue>) {
    let mut attrs = HashMap::new();
    let mut size = 0;
    for a in 0..10 {
        let (data_type, value) = match a % 4 {
            0 => (
                "String",
                MessageAttributeValue::builder().string_value(format!("t-{n}-{a}")),
            ),
            1 => (
                "Number",
                MessageAttributeValue::builder().string_value(format!("{n}{a}.5")),
            ),
            2 => (
                "Binary",
                MessageAttributeValue::builder()
                    .binary_value(Blob::new(vec![n as u8, 0, 255, a as u8, 10, 13])),
            ),
            _ => (
                "String.json",
                MessageAttributeValue::builder().string_value(format!("{{\"a\":{a}}}")),
            ),
        };
        let v = value.data_type(data_type).build().unwrap();
        let name = format!("attr-{a}");
        size += name.len()
            + data_type.len()
            + v.string_value().map_or(0, str::len)
            + v.binary_value().map_or(0, |b| b.as_ref().len());
        attrs.insert(name, v);
    }
    let head = format!("{{\"order\":{n},\"pad\":\"");
    let fill = 1_048_576 - size - head.len() - 2;
    let body = format!("{head}{}{}\"}}", "ü".repeat(fill / 2), "x".repeat(fill % 2));
    assert_eq!(body.len() + size, 1_048_576);
    (body, attrs)
}

fn trace_of(n: usize) -> String {
    format!("Root=1-5759e988-{n:024x};Sampled=1")
}

/// Every message in the queue, once each (received with a long visibility), by order number.
async fn drain_by_order(cloud: &Cloud, count: usize) -> Vec<(usize, aws_sdk_sqs::types::Message)> {
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while got.len() < count && std::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&cloud.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .visibility_timeout(600)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let body = m.body().unwrap();
            let n: usize = body["{\"order\":".len()..body.find(',').unwrap()]
                .parse()
                .unwrap();
            got.push((n, m));
        }
    }
    got.sort_by_key(|(n, _)| *n);
    got
}

fn assert_byte_identical(got: &[(usize, aws_sdk_sqs::types::Message)], count: usize, when: &str) {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let orders: Vec<usize> = got.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        orders,
        (0..count).collect::<Vec<_>>(),
        "{when}: each order exactly once"
    );
    for (n, m) in got {
        let (body, attrs) = one_mib_message(*n);
        assert!(
            m.body() == Some(body.as_str()),
            "{when}: order {n}'s body changed"
        );
        assert_eq!(
            m.message_attributes(),
            Some(&attrs),
            "{when}: order {n}'s attributes"
        );
        assert_eq!(
            m.attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader)),
            Some(&trace_of(*n)),
            "{when}: order {n}'s trace header"
        );
    }
}

/// Issue 13 item 6: three 1 MiB messages with 10 attributes (String, Number, Binary, custom)
/// and a trace header, at `maxReceiveCount` 2, through failing probes of three messages (each
/// one near the limit is re-sent fresh: three copies of 1 MiB cannot share one
/// `SendMessageBatch`) and then a re-jitter pass: nothing dead-lettered or lost, every message
/// byte-identical after each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_messages_with_ten_attributes_survive_probes_and_rejitter_byte_identical() {
    use breaker_handlers::rejitter::{RejitterSettings, run_rejitter};
    const COUNT: usize = 3;
    let mut cloud = cloud(2, Some(5)).await;
    cloud.config.probe_count = COUNT as u8;
    let me = cloud.start_execution("recovery-big").await;
    let mut state = cloud.open(&me).await.state.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    for n in 0..COUNT {
        let (body, attrs) = one_mib_message(n);
        sqs.send_message()
            .queue_url(&cloud.queue_url)
            .message_body(body)
            .set_message_attributes(Some(attrs))
            .message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(trace_of(n))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let consumer = FakeConsumer::failing();
    for attempt in 1..=4 {
        let out = cloud.probe(&state, &consumer).await;
        assert_eq!(
            (out.verdict, out.probed),
            (Verdict::Unhealthy, COUNT as u32),
            "probe {attempt}: {out:?}"
        );
        state = out.state;
        assert_eq!(
            cloud.count(&cloud.dlq_url).await,
            (0, 0),
            "probe {attempt} dead-lettered"
        );
    }
    // Then a re-jitter pass over the probe's copies (sent before its cutoff).
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let mut settings = RejitterSettings::new(true, 1, 2, 1, 60).unwrap();
    settings.receive_visibility_seconds = Some(60);
    let cutoff = breaker_core::rejitter::cutoff_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    let out = run_rejitter(
        &cloud.queue(),
        &settings,
        json!({"worker": 0, "cutoffMs": cutoff}),
    )
    .await
    .unwrap();
    assert_eq!((out.moved, out.failed), (COUNT as u64, 0), "{out:?}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_byte_identical(
        &drain_by_order(&cloud, COUNT).await,
        COUNT,
        "after the probes and re-jitter",
    );
    assert_eq!(
        cloud.count(&cloud.dlq_url).await,
        (0, 0),
        "nothing dead-lettered"
    );
    assert_eq!(
        cloud.count(&cloud.queue_url).await,
        (0, COUNT as u64),
        "no duplicate"
    );
    drop(cloud.moto);
}
