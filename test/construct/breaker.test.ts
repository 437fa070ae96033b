import * as fs from 'fs';
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { addConsumer, breakerStack, consumerStack, ENV } from './fixture';

/** The breaker's function for a handler name, as a template resource. */
function fnWithHandler(t: Template, handler: string): { id: string; props: Record<string, unknown> } {
  const fns = t.findResources('AWS::Lambda::Function', { Properties: { Handler: handler } });
  const ids = Object.keys(fns);
  expect(ids).toHaveLength(1);
  return { id: ids[0], props: fns[ids[0]].Properties };
}

/** All statements of the inline policy attached to a function's role. */
function statementsOf(
  t: Template,
  handler: string,
): Array<{ Action: string | string[]; Resource: unknown; Condition?: unknown }> {
  const fn = fnWithHandler(t, handler);
  const roleId = (fn.props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const policies = t.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

function actionsOf(t: Template, handler: string): string[] {
  return statementsOf(t, handler)
    .flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]))
    .sort();
}

describe('SqsCircuitBreaker resources', () => {
  const { stack, breaker } = breakerStack();
  const t = Template.fromStack(stack);

  test('one arm64 provided.al2023 function per handler of the bootstrap binary (lambdas/handlers/handlers.json), all from the shipped asset', () => {
    const handlers: string[] = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', 'lambdas', 'handlers', 'handlers.json'), 'utf8'),
    );
    const deployed = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((r) => r.Properties.Handler as string)
      .filter((h) => h !== 'index.handler');
    expect([...deployed].sort()).toEqual([...handlers].sort());
    for (const handler of handlers) {
      const fn = fnWithHandler(t, handler);
      // Re-jitter holds messages of up to 1 MiB: 512 MiB by default (rejitter.memorySize).
      const memory = handler === 'rejitter' ? 512 : 128;
      expect(fn.props).toMatchObject({
        Runtime: 'provided.al2023',
        Architectures: ['arm64'],
        MemorySize: memory,
        LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO' },
      });
      expect((fn.props.Code as { S3Key: string }).S3Key).toMatch(/\.zip$/);
    }
    expect(Object.keys(breaker.functions).sort()).toEqual([
      'backoff',
      'close',
      'open',
      'probe',
      'ramp',
      'rejitter',
      'rejitterPlan',
      'stuck',
    ]);
  });

  test('`logLevel` sets the level of every breaker function (JSON logs)', () => {
    const debug = Template.fromStack(breakerStack({ logLevel: lambda.ApplicationLogLevel.DEBUG }).stack);
    const handlers: string[] = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', 'lambdas', 'handlers', 'handlers.json'), 'utf8'),
    );
    for (const handler of handlers) {
      expect(fnWithHandler(debug, handler).props.LoggingConfig).toMatchObject({
        LogFormat: 'JSON',
        ApplicationLogLevel: 'DEBUG',
      });
    }
  });

  test('every function gets the contract environment with the defaults', () => {
    const env = (fnWithHandler(t, 'probe').props.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({
      CIRCUIT_NAME: breaker.circuitName,
      ESM_UUID: { Ref: expect.stringMatching(/SqsEventSource/) },
      QUEUE_URL: { Ref: expect.stringMatching(/^OrdersQueue/) },
      QUEUE_ARN: { 'Fn::GetAtt': [expect.stringMatching(/^OrdersQueue/), 'Arn'] },
      CONSUMER_FUNCTION_NAME: { Ref: expect.stringMatching(/^OrdersConsumer/) },
      ALARM_NAME: { Ref: expect.stringMatching(/^OrdersBreakerAlarm/) },
      EVENT_BUS_NAME: 'default',
      CIRCUIT_TABLE_NAME: { Ref: expect.stringMatching(/CircuitTable/) },
      BACKOFF_INITIAL_SECONDS: '30',
      BACKOFF_MAX_SECONDS: '300',
      BACKOFF_MULTIPLIER: '2',
      BACKOFF_LONG_MAX_SECONDS: '900',
      PROBE_COUNT: '1',
      PROBE_VISIBILITY_SECONDS: '960',
      CONSUMER_TIMEOUT_SECONDS: '10',
      RAMP_START: '2',
      RAMP_STEPS: '3',
      RAMP_INTERVAL_SECONDS: '60',
      RELAPSE_ERROR_RATE_PERCENT: '20',
      REJITTER_ENABLED: 'true',
      REJITTER_MIN_SECONDS: '0',
      REJITTER_MAX_SECONDS: '300',
      REJITTER_WORKERS: '4',
      REJITTER_SLICE_SECONDS: '60',
      HISTORY_EVENT_BUDGET: '10000',
    });
    expect(env.MAX_OPEN_SECONDS).toBeUndefined();
    for (const handler of ['open', 'close', 'stuck']) {
      expect((fnWithHandler(t, handler).props.Environment as { Variables: unknown }).Variables).toEqual(env);
    }
  });

  test('the alarm is an error-rate expression that ignores quiet periods and missing data', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 50,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      TreatMissingData: 'ignore',
      Metrics: Match.arrayWith([
        // Issue 15: the telemetry extension's per-second metrics (the default for a consumer
        // function of this app, resolution.test.ts), partial batch failures counted as errors.
        Match.objectLike({
          Expression: 'IF(invocations >= 5, 100 * (errors + FILL(partialFailures, 0)) / invocations, 0)',
          ReturnData: true,
        }),
        Match.objectLike({
          Id: 'errors',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({ MetricName: 'Errors', Namespace: 'SqsCircuitBreaker/Consumer' }),
            Period: 10,
            Stat: 'Sum',
          }),
          ReturnData: false,
        }),
        Match.objectLike({
          Id: 'invocations',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({ MetricName: 'Invocations', Namespace: 'SqsCircuitBreaker/Consumer' }),
            Period: 10,
            Stat: 'Sum',
          }),
          ReturnData: false,
        }),
        Match.objectLike({
          Id: 'partialFailures',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({ MetricName: 'PartialFailures', Namespace: 'SqsCircuitBreaker/Consumer' }),
            Period: 10,
            Stat: 'Sum',
          }),
          ReturnData: false,
        }),
      ]),
    });
  });

  test('the rule starts the state machine when this alarm goes to ALARM', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        detail: { alarmName: [{ Ref: Match.stringLikeRegexp('OrdersBreakerAlarm') }], state: { value: ['ALARM'] } },
      },
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('OrdersBreakerStateMachine') } })],
    });
  });

  test('the state machine is a Standard workflow in JSONPath with ALL logging and X-Ray tracing', () => {
    t.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      StateMachineName: Match.stringLikeRegexp('^TestStack-OrdersBreaker-'),
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [Match.anyValue()] },
    });
    const sm = Object.values(t.findResources('AWS::StepFunctions::StateMachine'))[0];
    const parts = (sm.Properties.DefinitionString as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]
      .filter((p) => typeof p === 'string')
      .join('');
    expect(parts).not.toContain('JSONata');
  });

  test("open may read and update only this mapping and the circuit record, describe only this state machine's executions, and put events", () => {
    expect(actionsOf(t, 'open')).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'events:PutEvents',
      'lambda:GetEventSourceMapping',
      'lambda:UpdateEventSourceMapping',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'states:DescribeExecution',
    ]);
    const stmts = statementsOf(t, 'open');
    const esm = stmts.find((s) => Array.isArray(s.Action) && s.Action.includes('lambda:UpdateEventSourceMapping'))!;
    expect(JSON.stringify(esm.Resource)).toMatch(/event-source-mapping:/);
    const describe = stmts.find((s) => s.Action === 'states:DescribeExecution')!;
    expect(JSON.stringify(describe.Resource)).toContain(':execution:TestStack-OrdersBreaker-');
    const record = stmts.find((s) => Array.isArray(s.Action) && s.Action.includes('dynamodb:PutItem'))!;
    expect(JSON.stringify(record.Resource)).toMatch(/CircuitTable[0-9A-F]+","Arn"/);
    expect(JSON.stringify(record.Resource)).not.toContain('*');
  });

  test('the circuit record is an on-demand table with point-in-time recovery, written only by open, ramp, close and stuck', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'circuit', KeyType: 'HASH' }],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    for (const h of ['open', 'ramp', 'close', 'stuck'])
      expect(actionsOf(t, h)).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:PutItem']));
    for (const h of ['backoff', 'probe', 'rejitter-plan', 'rejitter'])
      expect(actionsOf(t, h).filter((a) => a.startsWith('dynamodb:'))).toEqual([]);
  });

  test("the state machine ARN the roles and the workflow refer to is the state machine's own", () => {
    const sm = Object.values(t.findResources('AWS::StepFunctions::StateMachine'))[0];
    const name = sm.Properties.StateMachineName as string;
    const describe = statementsOf(t, 'open').find((s) => s.Action === 'states:DescribeExecution')!;
    expect(JSON.stringify(describe.Resource)).toContain(`:execution:${name}:*"`);
    const asl = JSON.stringify(sm.Properties.DefinitionString);
    expect(asl).toContain(`:stateMachine:${name}`);
    expect(stack.resolve(breaker.stateMachine.stateMachineName)).toEqual({
      'Fn::GetAtt': [expect.any(String), 'Name'],
    });
  });

  test('probe may use this queue, read this mapping (its FilterCriteria) and invoke exactly this consumer', () => {
    const actions = actionsOf(t, 'probe');
    expect(actions).toEqual(
      expect.arrayContaining([
        'sqs:ReceiveMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:SendMessage',
        'lambda:InvokeFunction',
        'lambda:GetEventSourceMapping',
      ]),
    );
    expect(actions).not.toContain('lambda:UpdateEventSourceMapping');
    const read = statementsOf(t, 'probe').find((s) => s.Action === 'lambda:GetEventSourceMapping')!;
    expect(JSON.stringify(read.Resource)).toMatch(/event-source-mapping:/);
    const invoke = statementsOf(t, 'probe').find((s) => s.Action === 'lambda:InvokeFunction')!;
    expect(invoke.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^OrdersConsumer/), 'Arn'] });
    for (const s of statementsOf(t, 'probe').filter((x) => JSON.stringify(x.Action).includes('sqs:'))) {
      expect(s.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^OrdersQueue/), 'Arn'] });
    }
  });

  test('ramp may read the queue attributes (a level the consumer did not fill closes the ramp), on this queue only', () => {
    expect(actionsOf(t, 'ramp')).toContain('sqs:GetQueueAttributes');
    expect(actionsOf(t, 'ramp')).not.toContain('sqs:ReceiveMessage');
    const read = statementsOf(t, 'ramp').find((s) => s.Action === 'sqs:GetQueueAttributes')!;
    expect(read.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^OrdersQueue/), 'Arn'] });
  });

  test('close may reset only this alarm; ramp may read metrics; stuck may only read the mapping; backoff the mapping and the queue attributes (keep-alive)', () => {
    const reset = statementsOf(t, 'close').find(
      (s) => Array.isArray(s.Action) && s.Action.includes('cloudwatch:SetAlarmState'),
    )!;
    expect(reset.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^OrdersBreakerAlarm/), 'Arn'] });
    expect(actionsOf(t, 'ramp')).toContain('cloudwatch:GetMetricData');
    expect(actionsOf(t, 'stuck')).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'events:PutEvents',
      'lambda:GetEventSourceMapping',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ]);
    expect(actionsOf(t, 'backoff')).toEqual([
      'events:PutEvents',
      'lambda:GetEventSourceMapping',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:GetQueueAttributes',
    ]);
    expect(actionsOf(t, 'rejitter-plan')).toEqual([
      'events:PutEvents',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:GetQueueAttributes',
    ]);
  });

  test('events may be put only on the default bus of this account', () => {
    const put = statementsOf(t, 'close').find((s) => s.Action === 'events:PutEvents')!;
    expect(JSON.stringify(put.Resource)).toContain(':event-bus/default');
  });

  test('the state machine may start only itself and publish metrics only in its namespace', () => {
    const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes('OrdersBreakerStateMachineRole'),
    );
    const stmts = policies.flatMap(
      (p) =>
        p.Properties.PolicyDocument.Statement as Array<{
          Action: string | string[];
          Resource: unknown;
          Condition?: unknown;
        }>,
    );
    const start = stmts.find((s) => s.Action === 'states:StartExecution')!;
    expect(JSON.stringify(start.Resource)).toContain(':stateMachine:TestStack-OrdersBreaker-');
    const put = stmts.find((s) => s.Action === 'cloudwatch:PutMetricData')!;
    expect(put.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': 'SqsCircuitBreaker' } });
  });

  test('no SNS rules without a topic', () => {
    t.resourceCountIs('AWS::Events::Rule', 1);
  });
});

describe('SqsCircuitBreaker options', () => {
  test('an existing alarm is used as the trigger and no error-rate alarm is created (only the recovery alarm)', () => {
    const f = consumerStack();
    const alarm = cloudwatch.Alarm.fromAlarmArn(
      f.stack,
      'Mine',
      `arn:aws:cloudwatch:${ENV.region}:${ENV.account}:alarm:orders-errors`,
    );
    const b = new SqsCircuitBreaker(f.stack, 'B', {
      consumer: f.consumer,
      queue: f.queue,
      eventSourceMappingId: f.source.eventSourceMappingId,
      alarm,
    });
    const t = Template.fromStack(f.stack);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 1);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('stuck open or a recovery failed'),
    });
    expect(b.alarm).toBe(alarm);
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ detail: { alarmName: ['orders-errors'], state: { value: ['ALARM'] } } }),
    });
  });

  test('a topic gets stuck-open/closed events of this circuit and failed executions (more in notifications.test.ts)', () => {
    const f = consumerStack();
    const topic = new sns.Topic(f.stack, 'Alerts', { enforceSSL: true });
    const b = new SqsCircuitBreaker(f.stack, 'B', {
      consumer: f.consumer,
      queue: f.queue,
      eventSourceMappingId: f.source.eventSourceMappingId,
      notificationTopic: topic,
      circuitName: 'orders',
    });
    const t = Template.fromStack(f.stack);
    for (const detailType of ['Circuit Stuck Open', 'Circuit Closed']) {
      t.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: { source: ['sqs-circuit-breaker'], 'detail-type': [detailType], detail: { circuit: ['orders'] } },
        Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('Alerts') } })],
      });
    }
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({
        source: ['aws.states'],
        detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [Match.anyValue()] },
      }),
    });
    expect(b.circuitName).toBe('orders');
  });

  test('settings reach the alarm, the environment, the Map concurrency and the functions', () => {
    const { stack } = breakerStack({
      alarmSettings: {
        errorRateThresholdPercent: 25,
        minInvocations: 20,
        period: cdk.Duration.minutes(2),
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      },
      backoff: { initialDelay: cdk.Duration.seconds(10), maxDelay: cdk.Duration.minutes(30), multiplier: 1.5 },
      probe: { messageCount: 3, visibilityTimeout: cdk.Duration.minutes(20) },
      rejitter: {
        minDelay: cdk.Duration.seconds(5),
        maxDelay: cdk.Duration.minutes(10),
        workers: 8,
        sliceDuration: cdk.Duration.minutes(2),
        memorySize: cdk.Size.gibibytes(1),
      },
      ramp: { startConcurrency: 5, steps: 4, stepInterval: cdk.Duration.minutes(3), relapseErrorRatePercent: 30 },
      maxOpenDuration: cdk.Duration.days(3),
      historyEventBudget: 5_000,
      lambdaMemorySize: 256,
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 25,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
      Metrics: Match.arrayWith([
        Match.objectLike({
          Expression: 'IF(invocations >= 20, 100 * (errors + FILL(partialFailures, 0)) / invocations, 0)',
        }),
      ]),
    });
    const fn = fnWithHandler(t, 'rejitter');
    expect(fn.props).toMatchObject({ MemorySize: 1024, Timeout: 180 });
    expect(fnWithHandler(t, 'probe').props).toMatchObject({ MemorySize: 256 });
    expect((fn.props.Environment as { Variables: unknown }).Variables).toMatchObject({
      BACKOFF_INITIAL_SECONDS: '10',
      BACKOFF_MAX_SECONDS: '1800',
      BACKOFF_MULTIPLIER: '1.5',
      // Unset, the long-outage cap is 3 x maxDelay.
      BACKOFF_LONG_MAX_SECONDS: '5400',
      PROBE_COUNT: '3',
      PROBE_VISIBILITY_SECONDS: '1200',
      REJITTER_MIN_SECONDS: '5',
      REJITTER_MAX_SECONDS: '600',
      REJITTER_WORKERS: '8',
      REJITTER_SLICE_SECONDS: '120',
      RAMP_START: '5',
      RAMP_STEPS: '4',
      RAMP_INTERVAL_SECONDS: '180',
      RELAPSE_ERROR_RATE_PERCENT: '30',
      MAX_OPEN_SECONDS: '259200',
      HISTORY_EVENT_BUDGET: '5000',
    });
    const sm = Object.values(t.findResources('AWS::StepFunctions::StateMachine'))[0];
    const asl = (sm.Properties.DefinitionString as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]
      .filter((p) => typeof p === 'string')
      .join('');
    expect(asl).toContain('"MaxConcurrency":8');
  });

  test('re-jitter defaults to off for a FIFO queue', () => {
    const { stack } = breakerStack({}, { fifo: true });
    const env = (
      fnWithHandler(Template.fromStack(stack), 'open').props.Environment as { Variables: Record<string, string> }
    ).Variables;
    expect(env.REJITTER_ENABLED).toBe('false');
  });

  test('an event-source mapping object is accepted instead of its UUID and scopes the permissions to its ARN', () => {
    const f = consumerStack();
    const esm = lambda.EventSourceMapping.fromEventSourceMappingId(
      f.stack,
      'Esm',
      'a1b2c3d4-5678-90ab-cdef-11111EXAMPLE',
    );
    new SqsCircuitBreaker(f.stack, 'B', { consumer: f.consumer, queue: f.queue, eventSourceMapping: esm });
    const t = Template.fromStack(f.stack);
    const env = (fnWithHandler(t, 'open').props.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.ESM_UUID).toBe('a1b2c3d4-5678-90ab-cdef-11111EXAMPLE');
    expect(JSON.stringify(statementsOf(t, 'open'))).toContain(
      'event-source-mapping:a1b2c3d4-5678-90ab-cdef-11111EXAMPLE',
    );
  });

  test('several breakers live in one stack without name clashes', () => {
    const f = consumerStack();
    const other = addConsumer(f.stack, 'Payments');
    const a = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
      consumer: f.consumer,
      queue: f.queue,
      eventSourceMappingId: f.source.eventSourceMappingId,
    });
    const b = new SqsCircuitBreaker(f.stack, 'PaymentsBreaker', {
      consumer: other.consumer,
      queue: other.queue,
      eventSourceMappingId: other.source.eventSourceMappingId,
    });
    const t = Template.fromStack(f.stack);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 2);
    t.resourceCountIs('AWS::Lambda::Function', 2 + 16);
    const names = Object.values(t.findResources('AWS::StepFunctions::StateMachine')).map(
      (r) => r.Properties.StateMachineName,
    );
    expect(new Set(names).size).toBe(2);
    const logGroups = Object.values(t.findResources('AWS::Logs::LogGroup'))
      .map((r) => r.Properties.LogGroupName)
      .filter((n) => n);
    expect(new Set(logGroups).size).toBe(logGroups.length);
    expect(a.circuitName).not.toBe(b.circuitName);
  });

  test('metric helpers name this circuit and this state machine', () => {
    const { stack, breaker } = breakerStack({ circuitName: 'orders' });
    const open = breaker.metricOpenSeconds();
    expect(open).toMatchObject({
      namespace: 'SqsCircuitBreaker',
      metricName: 'OpenSeconds',
      dimensions: { Circuit: 'orders' },
      statistic: 'Maximum',
    });
    expect(breaker.metricRecoveriesFailed().metricName).toBe('ExecutionsFailed');
    expect(stack.resolve(breaker.metricRecoveriesStarted().dimensions!.StateMachineArn)).toEqual({
      Ref: expect.stringMatching(/^OrdersBreakerStateMachine/),
    });
  });

  test('another architecture with its own code is accepted', () => {
    // Any folder stands in for an x86_64 build here; the template only references it.
    const { stack } = breakerStack({
      lambdaArchitecture: lambda.Architecture.X86_64,
      lambdaCode: lambda.Code.fromAsset(SqsCircuitBreaker.bootstrapAssetPath()),
    });
    expect(fnWithHandler(Template.fromStack(stack), 'open').props.Architectures).toEqual(['x86_64']);
  });
});

describe('a KMS-encrypted queue (issue 13 item 7)', () => {
  const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const QUEUE = 'arn:aws:sqs:eu-west-1:123456789012:orders';

  /** A breaker on the imported `orders` queue; returns the template and the stack. */
  function onImportedQueue(withKey: { keyArn?: string; prop?: boolean }): { t: Template; stack: cdk.Stack } {
    const f = consumerStack();
    const queue = sqs.Queue.fromQueueAttributes(f.stack, 'Imported', { queueArn: QUEUE, keyArn: withKey.keyArn });
    const queueEncryptionKey = withKey.prop ? kms.Key.fromKeyArn(f.stack, 'Key', KEY) : undefined;
    new SqsCircuitBreaker(f.stack, 'B', {
      consumer: f.consumer,
      queue,
      eventSourceMappingId: 'esm-uuid',
      queueEncryptionKey,
    });
    return { t: Template.fromStack(f.stack), stack: f.stack };
  }

  /** The KMS actions `handler` may use on KEY. */
  function kmsActionsOnKey(t: Template, handler: string): string[] {
    return statementsOf(t, handler)
      .filter((s) => JSON.stringify(s.Resource).includes('1234abcd'))
      .flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]))
      .filter((a) => a.startsWith('kms:'))
      .sort();
  }

  test('the key of a queue imported with keyArn lets probe and re-jitter receive and send', () => {
    const { t } = onImportedQueue({ keyArn: KEY });
    for (const h of ['probe', 'rejitter']) {
      // CDK's own queue grants (they include the key it knows about).
      const actions = kmsActionsOnKey(t, h);
      expect([h, actions.includes('kms:Decrypt'), actions.some((a) => a.startsWith('kms:GenerateDataKey'))]).toEqual([
        h,
        true,
        true,
      ]);
    }
  });

  test('queueEncryptionKey gives probe and re-jitter exactly decrypt and data keys on that key, no wildcard', () => {
    const { t } = onImportedQueue({ prop: true });
    for (const h of ['probe', 'rejitter']) {
      expect([h, kmsActionsOnKey(t, h)]).toEqual([h, ['kms:Decrypt', 'kms:GenerateDataKey']]);
    }
    for (const h of ['open', 'backoff', 'ramp', 'close', 'stuck', 'rejitter-plan']) {
      expect([h, kmsActionsOnKey(t, h)]).toEqual([h, []]);
    }
  });

  test('a queue imported without its key gets a synth warning naming queueEncryptionKey', () => {
    const { stack } = onImportedQueue({});
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('queueEncryptionKey'));
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0].entry.data)).toContain('keyArn');
    // No warning when the key is known either way, or for a queue of this app.
    for (const known of [{ keyArn: KEY }, { prop: true }]) {
      expect(
        Annotations.fromStack(onImportedQueue(known).stack).findWarning(
          '*',
          Match.stringLikeRegexp('queueEncryptionKey'),
        ),
      ).toHaveLength(0);
    }
    const { stack: own } = breakerStack();
    expect(Annotations.fromStack(own).findWarning('*', Match.stringLikeRegexp('queueEncryptionKey'))).toHaveLength(0);
  });

  test('queueEncryptionKey for a queue whose key CDK already knows is refused', () => {
    expect(() => {
      const f = consumerStack();
      const queue = sqs.Queue.fromQueueAttributes(f.stack, 'Imported', { queueArn: QUEUE, keyArn: KEY });
      new SqsCircuitBreaker(f.stack, 'B', {
        consumer: f.consumer,
        queue,
        eventSourceMappingId: 'esm-uuid',
        queueEncryptionKey: kms.Key.fromKeyArn(f.stack, 'Other', KEY.replace('1234abcd', '9999abcd')),
      });
    }).toThrow(/queueEncryptionKey: .*already/);
  });
});
