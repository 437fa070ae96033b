import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OrdersStack, OUTPUTS } from '../../example-stack/lib/orders-stack';
import { PAYMENTS_OUTPUTS } from '../../example-stack/lib/payments';

/** The construct's default longest re-jitter delay (cdk/src/limits.json, the one table). */
const CONSTRUCT_REJITTER_MAX_SECONDS: number = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'cdk', 'src', 'limits.json'), 'utf8'),
).settings.rejitterMaxSeconds.default;

const ENV = { account: '123456789012', region: 'eu-west-1' };
const REPO = path.resolve(__dirname, '..', '..');

function synth(context: Record<string, string> = {}): { stack: OrdersStack; template: Template } {
  const app = new cdk.App({ context });
  const stack = new OrdersStack(app, 'Example', { env: ENV });
  return { stack, template: Template.fromStack(stack) };
}

const ref = (stack: cdk.Stack, construct: { node: { defaultChild?: unknown } } | cdk.CfnElement): string =>
  stack.resolve(
    stack.getLogicalId(
      (construct instanceof cdk.CfnElement ? construct : construct.node.defaultChild) as cdk.CfnElement,
    ),
  );

describe('default profile (real AWS)', () => {
  const { stack, template } = synth();

  test('orders queue redrives to the DLQ after 10 receives and outlasts the consumer timeout', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 60,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [ref(stack, stack.deadLetterQueue), 'Arn'] },
        maxReceiveCount: 10,
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'bootstrap',
      Timeout: 10,
      Architectures: ['arm64'],
      Runtime: 'provided.al2023',
    });
  });

  test('the mapping reports batch item failures and has a concurrency limit the breaker restores', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: ref(stack, stack.consumer) },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  test('the failure flag starts ok and the consumer may read exactly that parameter', () => {
    template.hasResourceProperties('AWS::SSM::Parameter', { Type: 'String', Value: 'ok' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { FLAG_PARAMETER_NAME: { Ref: ref(stack, stack.flag) }, FLAG_CACHE_SECONDS: '2' } },
    });
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: ref(stack, stack.consumer.role!.node.defaultChild as cdk.CfnElement) }] },
    });
    const statements = Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
    const ssmStatements = statements.filter((s) => [s.Action].flat().some((a: string) => a.startsWith('ssm:')));
    expect(ssmStatements).toHaveLength(1);
    expect([ssmStatements[0].Action].flat()).toEqual(expect.arrayContaining(['ssm:GetParameter']));
    expect([ssmStatements[0].Action].flat()).not.toContain('ssm:PutParameter');
    expect(JSON.stringify(ssmStatements[0].Resource)).toContain(ref(stack, stack.flag));
  });

  test('the breaker protects the consumer with the construct defaults for timing', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'open',
      Environment: {
        Variables: Match.objectLike({
          ESM_UUID: { Ref: ref(stack, stack.eventSourceMapping) },
          BACKOFF_INITIAL_SECONDS: '30',
          BACKOFF_MAX_SECONDS: '300',
        }),
      },
    });
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { EvaluationPeriods: 3, DatapointsToAlarm: 2 });
  });

  test('the breaker notifies a topic that a queue reads as raw text', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: ref(stack, stack.notificationTopic) },
      Protocol: 'sqs',
      Endpoint: { 'Fn::GetAtt': [ref(stack, stack.notificationQueue), 'Arn'] },
      RawMessageDelivery: true,
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['sqs-circuit-breaker'],
        'detail-type': ['Circuit Opened'],
        detail: { circuit: [stack.breaker.circuitName] },
      },
      Targets: [Match.objectLike({ Arn: { Ref: ref(stack, stack.notificationTopic) } })],
    });
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[OUTPUTS.notificationQueueUrl].Value).toEqual({ Ref: ref(stack, stack.notificationQueue) });
  });

  test('outputs name every resource the breaker CLI needs', () => {
    const all = template.toJSON().Outputs as Record<string, { Value: unknown; Description?: string }>;
    // The breaker's own descriptor (the CLI's stable interface) besides the example's legacy keys.
    const isDescriptor = (o: { Description?: string }) =>
      o.Description?.startsWith('sqs-circuit-breaker descriptor v1') ?? false;
    expect(Object.values(all).filter(isDescriptor)).toHaveLength(1);
    const outputs = Object.fromEntries(Object.entries(all).filter(([, o]) => !isDescriptor(o)));
    expect(Object.keys(outputs).sort()).toEqual(Object.values(OUTPUTS).sort());
    expect(outputs[OUTPUTS.queueUrl].Value).toEqual({ Ref: ref(stack, stack.queue) });
    expect(outputs[OUTPUTS.dlqUrl].Value).toEqual({ Ref: ref(stack, stack.deadLetterQueue) });
    expect(outputs[OUTPUTS.esmUuid].Value).toEqual({ Ref: ref(stack, stack.eventSourceMapping) });
    expect(outputs[OUTPUTS.consumerName].Value).toEqual({ Ref: ref(stack, stack.consumer) });
    expect(outputs[OUTPUTS.flagParameterName].Value).toEqual({ Ref: ref(stack, stack.flag) });
    expect(outputs[OUTPUTS.stateMachineArn].Value).toEqual(stack.resolve(stack.breaker.stateMachine.stateMachineArn));
    expect(outputs[OUTPUTS.alarmName].Value).toEqual(stack.resolve(stack.breaker.alarm.alarmName));
    expect(outputs[OUTPUTS.circuitName].Value).toEqual(stack.breaker.circuitName);
  });
});

describe('chaos profile (-c chaos=true)', () => {
  test('shortens every timing below the demo profile, for the fault campaign', () => {
    const { template } = synth({ chaos: 'true' });
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'bootstrap', Timeout: 3 });
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 6,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 15 }),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { EvaluationPeriods: 1, DatapointsToAlarm: 1 });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'backoff',
      Environment: {
        Variables: Match.objectLike({
          BACKOFF_INITIAL_SECONDS: '2',
          BACKOFF_MAX_SECONDS: '6',
          RAMP_STEPS: '2',
          RAMP_INTERVAL_SECONDS: '5',
          REJITTER_MAX_SECONDS: '5',
          PROBE_VISIBILITY_SECONDS: '20',
          REJITTER_WORKERS: '2',
        }),
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'rejitter', MemorySize: 128 });
  });
});

describe('demo profile (-c demo=true)', () => {
  const { stack, template } = synth({ demo: 'true' });

  test('shortens consumer, queue, alarm and recovery timings', () => {
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'bootstrap', Timeout: 5 });
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 15,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 20 }),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { EvaluationPeriods: 1, DatapointsToAlarm: 1 });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'backoff',
      Environment: {
        Variables: Match.objectLike({
          BACKOFF_INITIAL_SECONDS: '5',
          BACKOFF_MAX_SECONDS: '20',
          RAMP_STEPS: '2',
          RAMP_INTERVAL_SECONDS: '20',
          // the construct's window (the demo leaves rejitter.maxDelay unset): sized to the backlog
          REJITTER_MAX_SECONDS: String(CONSTRUCT_REJITTER_MAX_SECONDS),
          PROBE_VISIBILITY_SECONDS: '30',
        }),
      },
    });
    expect(stack.breaker.circuitName).toBeTruthy();
  });

  test('a malformed alarm period in the context fails synth naming the key', () => {
    expect(() => synth({ alarmPeriodSeconds: 'ten' })).toThrow(
      'context alarmPeriodSeconds must be a positive whole number of seconds, got "ten"',
    );
  });

  test('the orders queue retention comes from the context, within SQS limits (the keep-alive end-to-end test)', () => {
    const t = synth({ demo: 'true', queueRetentionSeconds: '120' }).template;
    t.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 120, RedrivePolicy: Match.anyValue() });
    for (const bad of ['59', '1209601', 'two']) {
      expect(() => synth({ queueRetentionSeconds: bad })).toThrow(
        `context queueRetentionSeconds must be a whole number of seconds from 60 to 1209600 (SQS's limits), got "${bad}"`,
      );
    }
  });

  test("the orders queue's maxReceiveCount comes from the context, within SQS limits (the low-limit end-to-end test)", () => {
    const t = synth({ demo: 'true', maxReceiveCount: '2' }).template;
    t.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: Match.objectLike({ maxReceiveCount: 2 }) });
    for (const bad of ['0', '1001', 'two', '1.5']) {
      expect(() => synth({ maxReceiveCount: bad })).toThrow(
        `context maxReceiveCount must be a whole number from 1 to 1000 (SQS's redrive policy limits), got "${bad}"`,
      );
    }
  });
});

describe('provisioned mapping (-c mappingMode=provisioned)', () => {
  test('the orders mapping is in provisioned mode with no concurrency limit (AWS refuses both)', () => {
    const { stack, template } = synth({ demo: 'true', mappingMode: 'provisioned' });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: ref(stack, stack.consumer) },
      ProvisionedPollerConfig: { MinimumPollers: 2, MaximumPollers: 10 },
      ScalingConfig: Match.absent(),
    });
  });

  test('on-demand is the default and an unknown mode fails synth naming the key', () => {
    synth({ mappingMode: 'on-demand' }).template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 10 },
      ProvisionedPollerConfig: Match.absent(),
    });
    expect(() => synth({ mappingMode: 'turbo' })).toThrow(
      'context mappingMode must be on-demand or provisioned, got "turbo"',
    );
  });
});

describe('FIFO queue (-c queueType=fifo)', () => {
  test('the orders queue and its DLQ are FIFO, and the breaker gets the queue through its ARN token (FIFO unknown at synth)', () => {
    const { stack, template } = synth({ demo: 'true', queueType: 'fifo' });
    template.resourcePropertiesCountIs('AWS::SQS::Queue', { FifoQueue: true }, 2);
    expect(stack.queue.fifo).toBe(true);
    expect(stack.deadLetterQueue.fifo).toBe(true);
    const imported = stack.breaker.node.scope?.node.tryFindChild('OrdersByArn') as sqs.IQueue;
    expect(imported).toBeDefined();
    expect(cdk.Token.isUnresolved(imported.queueArn)).toBe(true);
    expect(imported.fifo).toBe(false); // what the construct sees
    // So re-jitter stays enabled at synth: the recovery skips it at run time.
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'rejitter-plan',
      Environment: { Variables: Match.objectLike({ REJITTER_ENABLED: 'true' }) },
    });
  });

  test('the FIFO profile needs one invocation per alarm period; standard is the default and an unknown type fails synth naming the key', () => {
    const expression = (context: Record<string, string>) =>
      JSON.stringify(synth(context).template.findResources('AWS::CloudWatch::Alarm')).match(
        /invocations >= (\d+)/,
      )?.[1];
    expect(expression({ demo: 'true', queueType: 'fifo' })).toBe('1');
    expect(expression({ demo: 'true', queueType: 'standard' })).toBe('3');
    expect(synth({ queueType: 'standard' }).stack.queue.fifo).toBe(false);
    expect(() => synth({ queueType: 'lifo' })).toThrow('context queueType must be standard or fifo, got "lifo"');
  });
});

describe('alias consumer (-c consumerAlias=NAME, issue 13 item 4)', () => {
  test('the mapping invokes an alias of a published version, and the breaker watches that alias', () => {
    const { stack, template } = synth({ demo: 'true', consumerAlias: 'live' });
    const consumer = ref(stack, stack.consumer);
    const versions = Object.keys(template.findResources('AWS::Lambda::Version'));
    expect(versions).toHaveLength(1);
    template.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      FunctionName: { Ref: consumer },
      FunctionVersion: { 'Fn::GetAtt': [versions[0], 'Version'] },
    });
    // The alias's name, `<fn>:live`, taken from the alias's ARN.
    const aliases = Object.keys(template.findResources('AWS::Lambda::Alias'));
    expect(aliases).toHaveLength(1);
    expect(stack.resolve(stack.target.functionName)).toEqual({
      'Fn::Join': ['', [{ 'Fn::Select': [6, { 'Fn::Split': [':', { Ref: aliases[0] }] }] }, ':live']],
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: stack.resolve(stack.target.functionName),
    });
    const qualified = { 'Fn::Join': ['', [{ Ref: consumer }, ':live']] };
    // Issue 15: the consumer is an alias of a function of this app, so the alarm reads the
    // telemetry extension's per-second metrics (AlarmResolution.HIGH, the construct's default),
    // published under FunctionName alone; the layer goes on the function.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({
          Id: 'errors',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({
              Namespace: 'SqsCircuitBreaker/Consumer',
              Dimensions: [{ Name: 'FunctionName', Value: { Ref: consumer } }],
            }),
          }),
        }),
      ]),
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'bootstrap',
      Layers: [{ Ref: Match.stringLikeRegexp('^SqsCircuitBreakerTelemetryLayerarm64') }],
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'probe',
      Environment: { Variables: Match.objectLike({ CONSUMER_FUNCTION_NAME: qualified }) },
    });
    expect(stack.target).not.toBe(stack.consumer);
  });

  test('without the key the mapping invokes the function itself; a malformed alias name fails synth naming the key', () => {
    const { stack, template } = synth({ demo: 'true' });
    template.resourceCountIs('AWS::Lambda::Alias', 0);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: ref(stack, stack.consumer) },
    });
    for (const bad of ['7', 'has space', 'x'.repeat(129)]) {
      expect(() => synth({ consumerAlias: bad })).toThrow(
        `context consumerAlias must be a Lambda alias name (1-128 of A-Z, a-z, 0-9, - and _, not only digits), got ${JSON.stringify(bad)}`,
      );
    }
  });

  test("alarmResolution=standard makes the alarm read Lambda's one-minute metrics, with no layer (the README's trip-time comparison)", () => {
    const { template } = synth({ demo: 'true', alarmPeriodSeconds: '60', alarmResolution: 'standard' });
    template.resourceCountIs('AWS::Lambda::LayerVersion', 0);
    const alarm = JSON.stringify(
      template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { AlarmDescription: Match.stringLikeRegexp('consumer error rate') },
      }),
    );
    expect(alarm).toContain('"Namespace":"AWS/Lambda"');
    expect(alarm).not.toContain('SqsCircuitBreaker/Consumer","MetricName":"Errors"');
    expect(() => synth({ alarmResolution: 'ultra' })).toThrow(
      'context alarmResolution must be high or standard, got "ultra"',
    );
  });
});

describe('second breaker (-c secondBreaker=true, the two-breaker end-to-end test)', () => {
  const { stack, template } = synth({ demo: 'true', secondBreaker: 'true' });
  const payments = stack.payments!;

  test('a second consumer has its own queue, flag, mapping and breaker, notifying the same topic', () => {
    expect(payments).toBeDefined();
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 2);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: ref(stack, payments.consumer) },
      EventSourceArn: { 'Fn::GetAtt': [ref(stack, payments.queue), 'Arn'] },
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { FLAG_PARAMETER_NAME: { Ref: ref(stack, payments.flag) }, FLAG_CACHE_SECONDS: '2' } },
    });
    expect(payments.breaker.circuitName).not.toEqual(stack.breaker.circuitName);
    for (const breaker of [stack.breaker, payments.breaker]) {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: { 'detail-type': ['Circuit Opened'], detail: { circuit: [breaker.circuitName] } },
        Targets: [Match.objectLike({ Arn: { Ref: ref(stack, stack.notificationTopic) } })],
      });
    }
  });

  test('outputs name both circuits: two descriptors, and the payments resources under their own keys', () => {
    const all = template.toJSON().Outputs as Record<string, { Value: unknown; Description?: string }>;
    const descriptors = Object.values(all).filter((o) =>
      o.Description?.startsWith('sqs-circuit-breaker descriptor v1'),
    );
    expect(descriptors.map((o) => o.Description)).toEqual([
      `sqs-circuit-breaker descriptor v1: circuit ${stack.breaker.circuitName} (read by the breaker CLI)`,
      `sqs-circuit-breaker descriptor v1: circuit ${payments.breaker.circuitName} (read by the breaker CLI)`,
    ]);
    expect(all[PAYMENTS_OUTPUTS.queueUrl].Value).toEqual({ Ref: ref(stack, payments.queue) });
    expect(all[PAYMENTS_OUTPUTS.flagParameterName].Value).toEqual({ Ref: ref(stack, payments.flag) });
    expect(all[PAYMENTS_OUTPUTS.circuitName].Value).toEqual(payments.breaker.circuitName);
    expect(all[OUTPUTS.circuitName].Value).toEqual(stack.breaker.circuitName);
  });

  test('off by default; a value other than true or false fails synth naming the key', () => {
    expect(synth({ demo: 'true' }).stack.payments).toBeUndefined();
    expect(synth({ secondBreaker: 'false' }).stack.payments).toBeUndefined();
    expect(() => synth({ secondBreaker: 'yes' })).toThrow('context secondBreaker must be true or false, got "yes"');
  });
});

describe.each([
  ['default', {}],
  ['demo', { demo: 'true' }],
  ['provisioned', { demo: 'true', mappingMode: 'provisioned' }],
  ['fifo', { demo: 'true', queueType: 'fifo' }],
  ['alias', { demo: 'true', consumerAlias: 'live' }],
  ['chaos', { chaos: 'true' }],
  ['two breakers', { demo: 'true', secondBreaker: 'true' }],
])('%s profile passes the template checks', (_name, context: Record<string, string>) => {
  const { stack } = synth(context);

  test('cdk-nag AwsSolutions reports no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    const findings = report.violations.map(
      (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
  });

  test('cfn-lint is clean', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'example-cfn-'));
    const file = path.join(dir, 'template.json');
    fs.writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON()));
    const cfnLint = path.join(REPO, '.venv', 'bin', 'cfn-lint');
    let output = '';
    try {
      // W3005: CDK's own redundant DependsOn next to a Ref/GetAtt.
      output = execFileSync(cfnLint, ['--format', 'parseable', '--ignore-checks', 'W3005', '--', file], {
        encoding: 'utf8',
      });
    } catch (e) {
      output = String((e as { stdout?: string }).stdout ?? e);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(output.trim()).toBe('');
  });
});
