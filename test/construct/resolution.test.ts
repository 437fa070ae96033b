import * as cdk from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AlarmResolution, SqsCircuitBreaker, SqsCircuitBreakerProps } from 'sqs-circuit-breaker';
import { addConsumer, breakerStack, consumerStack } from './fixture';

/**
 * Issue 15: the fast trip. `alarmSettings.resolution` HIGH reads the telemetry extension's
 * per-second metrics (`SqsCircuitBreaker/Consumer`, dimension `FunctionName`) in 10 s periods, the
 * construct adding the extension's layer (one per stack and architecture) to a consumer function
 * of this app; STANDARD reads Lambda's own one-minute metrics, whole minutes only. Both add the
 * consumer's `PartialFailures` (batch item failures, which Lambda's `Errors` ignores).
 */

const HEAD = "SqsCircuitBreaker at 'TestStack/OrdersBreaker' has invalid props:\n";
const CONSUMER = { Ref: expect.stringMatching(/^OrdersConsumer/) };
const FAST = 'SqsCircuitBreaker/Consumer';

/** The alarm's metric queries by id: namespace, metric, dimensions, period. */
function alarmQueries(t: Template): Record<string, unknown> {
  // the error-rate alarm (the recovery alarm is metrics.test.ts's)
  const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmDescription: Match.stringLikeRegexp('consumer error rate') } }));
  expect(alarms).toHaveLength(1);
  const out: Record<string, unknown> = {};
  for (const m of alarms[0].Properties.Metrics as Array<{ Id: string; Expression?: string; MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown }; Period: number; Stat: string } }>) {
    out[m.Id] = m.Expression ?? [m.MetricStat!.Metric.Namespace, m.MetricStat!.Metric.MetricName, m.MetricStat!.Metric.Dimensions, m.MetricStat!.Period, m.MetricStat!.Stat];
  }
  return out;
}

function envOf(t: Template, handler: string): Record<string, unknown> {
  const fns = Object.values(t.findResources('AWS::Lambda::Function', { Properties: { Handler: handler } }));
  expect(fns).toHaveLength(1);
  return fns[0].Properties.Environment.Variables;
}

/** The consumer's `Layers` (undefined when it has none). */
function consumerLayers(t: Template): unknown {
  const fns = Object.values(t.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.handler' } }));
  expect(fns).toHaveLength(1);
  return fns[0].Properties.Layers;
}

describe('AlarmResolution.HIGH, the default for a consumer function of this app', () => {
  const { stack, breaker } = breakerStack();
  const t = Template.fromStack(stack);

  test('the alarm reads the per-second Errors/Invocations and PartialFailures in 10 s periods, 2 of 3', () => {
    const fn = [{ Name: 'FunctionName', Value: CONSUMER }];
    expect(alarmQueries(t)).toEqual({
      expr_1: 'IF(invocations >= 5, 100 * (errors + FILL(partialFailures, 0)) / invocations, 0)',
      errors: [FAST, 'Errors', fn, 10, 'Sum'],
      invocations: [FAST, 'Invocations', fn, 10, 'Sum'],
      partialFailures: [FAST, 'PartialFailures', fn, 10, 'Sum'],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { EvaluationPeriods: 3, DatapointsToAlarm: 2, TreatMissingData: 'ignore' });
    expect(breaker.alarmResolution).toBe(AlarmResolution.HIGH);
  });

  test('the relapse check reads the same: CONSUMER_METRIC_RESOLUTION high, 10 s periods', () => {
    expect(envOf(t, 'ramp')).toMatchObject({ CONSUMER_METRIC_RESOLUTION: 'high', CONSUMER_METRIC_PERIOD_SECONDS: '10' });
  });

  test("the consumer gets the telemetry layer of its architecture, from the shipped asset, and no new permission", () => {
    const layers = t.findResources('AWS::Lambda::LayerVersion');
    const ids = Object.keys(layers);
    expect(ids).toHaveLength(1);
    // The fixture's inline function is x86_64 (Lambda's default).
    expect(layers[ids[0]].Properties).toMatchObject({ CompatibleArchitectures: ['x86_64'], Content: { S3Key: expect.stringMatching(/\.zip$/) } });
    expect(consumerLayers(t)).toEqual([{ Ref: ids[0] }]);
    expect(stack.resolve((breaker.consumerTelemetryLayer as lambda.LayerVersion).layerVersionArn)).toEqual({ Ref: ids[0] });
    // The extension writes to stdout only: no policy of the consumer's role names the layer.
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).not.toContain(ids[0]);
  });

  test('cdk-nag finds nothing in the breaker or the layer', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    const ours = report.violations.filter((v) => v.violatingResources.some((r) => /OrdersBreaker|TelemetryLayer/.test(r.constructPath ?? '')));
    expect(ours.map((v) => v.ruleName)).toEqual([]);
  });
});

describe('the telemetry layer', () => {
  test('one per stack and architecture, shared by the breakers of a stack', () => {
    const f = consumerStack();
    const arm = (id: string) => new lambda.Function(f.stack, id, {
      runtime: lambda.Runtime.PROVIDED_AL2023, architecture: lambda.Architecture.ARM_64, handler: 'bootstrap',
      code: lambda.Code.fromAsset(SqsCircuitBreaker.bootstrapAssetPath()), timeout: cdk.Duration.seconds(10),
    });
    const other = addConsumer(f.stack, 'Refunds');
    const make = (id: string, consumer: lambda.IFunction) => new SqsCircuitBreaker(f.stack, id, { consumer, queue: f.queue, eventSourceMappingId: `esm-${id}` });
    const a = make('A', arm('ArmA'));
    const b = make('B', arm('ArmB'));
    const c = make('C', f.consumer);
    const d = make('D', other.consumer);
    const t = Template.fromStack(f.stack);
    const layers = t.findResources('AWS::Lambda::LayerVersion');
    expect(Object.values(layers).map((l) => l.Properties.CompatibleArchitectures[0]).sort()).toEqual(['arm64', 'x86_64']);
    expect(a.consumerTelemetryLayer).toBe(b.consumerTelemetryLayer);
    expect(c.consumerTelemetryLayer).toBe(d.consumerTelemetryLayer);
    expect(a.consumerTelemetryLayer).not.toBe(c.consumerTelemetryLayer);
    expect(SqsCircuitBreaker.telemetryLayer(f.stack, lambda.Architecture.ARM_64)).toBe(a.consumerTelemetryLayer);
  });

  test('an alias of a function of this app: the layer goes on the function; the alarm reads FunctionName alone', () => {
    const f = consumerStack();
    const alias = new lambda.Alias(f.stack, 'Live', { aliasName: 'live', version: f.consumer.currentVersion });
    const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer: alias, queue: f.queue, eventSourceMappingId: 'esm' });
    const t = Template.fromStack(f.stack);
    expect(breaker.alarmResolution).toBe(AlarmResolution.HIGH);
    expect(consumerLayers(t)).toEqual([{ Ref: expect.stringMatching(/^SqsCircuitBreakerTelemetryLayerx8664/) }]);
    expect((alarmQueries(t).errors as unknown[])[2]).toEqual([{ Name: 'FunctionName', Value: CONSUMER }]);
  });

  test('a missing extension build is reported with the command that builds it', () => {
    const f = consumerStack();
    expect(() => SqsCircuitBreaker.telemetryLayer(f.stack, lambda.Architecture.custom('mips'))).toThrow(
      /^sqs-circuit-breaker: the telemetry extension \(mips\) is missing at .*assets\/extension\/mips\/extensions\/sqs-circuit-breaker-telemetry; run 'npm run build:lambdas' at the repository root$/,
    );
  });
});

describe('AlarmResolution.STANDARD', () => {
  test('given: Lambda\'s one-minute metrics, no layer, CONSUMER_METRIC_RESOLUTION standard', () => {
    const { stack, breaker } = breakerStack({ alarmSettings: { resolution: AlarmResolution.STANDARD } });
    const t = Template.fromStack(stack);
    const fn = [{ Name: 'FunctionName', Value: CONSUMER }];
    expect(alarmQueries(t)).toEqual({
      expr_1: 'IF(invocations >= 5, 100 * (errors + FILL(partialFailures, 0)) / invocations, 0)',
      errors: ['AWS/Lambda', 'Errors', fn, 60, 'Sum'],
      invocations: ['AWS/Lambda', 'Invocations', fn, 60, 'Sum'],
      partialFailures: [FAST, 'PartialFailures', fn, 60, 'Sum'],
    });
    expect(consumerLayers(t)).toBeUndefined();
    t.resourceCountIs('AWS::Lambda::LayerVersion', 0);
    expect(breaker.consumerTelemetryLayer).toBeUndefined();
    expect(envOf(t, 'ramp')).toMatchObject({ CONSUMER_METRIC_RESOLUTION: 'standard', CONSUMER_METRIC_PERIOD_SECONDS: '60' });
  });

  test('the default for an imported consumer, where the construct cannot add the layer', () => {
    const f = consumerStack();
    const consumer = lambda.Function.fromFunctionName(f.stack, 'Imported', 'orders-consumer');
    const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer, queue: f.queue, eventSourceMappingId: 'esm' });
    const t = Template.fromStack(f.stack);
    expect(breaker.alarmResolution).toBe(AlarmResolution.STANDARD);
    expect((alarmQueries(t).errors as unknown[]).slice(0, 2)).toEqual(['AWS/Lambda', 'Errors']);
    t.resourceCountIs('AWS::Lambda::LayerVersion', 0);
  });

  test('the default for a container image, which takes no layers', () => {
    const f = consumerStack();
    const image = new lambda.DockerImageFunction(f.stack, 'Image', { code: lambda.DockerImageCode.fromEcr(
      cdk.aws_ecr.Repository.fromRepositoryName(f.stack, 'Repo', 'orders'), { tagOrDigest: 'v1' }) });
    const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer: image, queue: f.queue, eventSourceMappingId: 'esm' });
    expect(breaker.alarmResolution).toBe(AlarmResolution.STANDARD);
    Template.fromStack(f.stack).resourceCountIs('AWS::Lambda::LayerVersion', 0);
  });

  test('with a given alarm the relapse check reads Lambda\'s metrics and no layer is added', () => {
    const f = consumerStack();
    const alarm = cloudwatch.Alarm.fromAlarmName(f.stack, 'Own', 'orders-own');
    new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer: f.consumer, queue: f.queue, eventSourceMappingId: 'esm', alarm });
    const t = Template.fromStack(f.stack);
    expect(envOf(t, 'ramp')).toMatchObject({ CONSUMER_METRIC_RESOLUTION: 'standard', CONSUMER_METRIC_PERIOD_SECONDS: '60' });
    expect(consumerLayers(t)).toBeUndefined();
  });
});

describe('resolution validation and warnings', () => {
  const props = (extra: Partial<SqsCircuitBreakerProps>) => () => breakerStack(extra);

  test('a 10/30 s period with STANDARD is refused, naming both props and the fix', () => {
    expect(props({ alarmSettings: { resolution: AlarmResolution.STANDARD, period: cdk.Duration.seconds(30) } })).toThrow(new Error(HEAD
      + "  - alarmSettings.period: 30 seconds needs alarmSettings.resolution AlarmResolution.HIGH (the telemetry extension's per-second metrics), "
      + "but alarmSettings.resolution is AlarmResolution.STANDARD, whose metrics (Lambda's own) are per minute; use a whole number of minutes, or set resolution: AlarmResolution.HIGH"));
  });

  test('a 20 s period is refused by the construct, naming the prop: aws-cdk-lib\'s Metric accepts 10 or 30 s, not 20 (CloudWatch itself would)', () => {
    expect(props({ alarmSettings: { period: cdk.Duration.seconds(20) } })).toThrow(new Error(HEAD
      + '  - alarmSettings.period: must be 10 or 30 seconds or a whole number of minutes (CloudWatch alarm periods that aws-cdk-lib\'s Metric accepts; it refuses 20), got 20 seconds'));
  });

  test('with an imported consumer the error says to add the layer too', () => {
    const f = consumerStack();
    const consumer = lambda.Function.fromFunctionName(f.stack, 'Imported', 'orders-consumer');
    expect(() => new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer, queue: f.queue, eventSourceMappingId: 'esm', alarmSettings: { period: cdk.Duration.seconds(10) } })).toThrow(new Error(HEAD
      + "  - alarmSettings.period: 10 seconds needs alarmSettings.resolution AlarmResolution.HIGH (the telemetry extension's per-second metrics), "
      + "but alarmSettings.resolution is AlarmResolution.STANDARD (the default for a consumer the construct cannot add the telemetry layer to), whose metrics (Lambda's own) are per minute; "
      + 'use a whole number of minutes, or set resolution: AlarmResolution.HIGH and add SqsCircuitBreaker.telemetryLayer(...) to the consumer yourself'));
  });

  test('an unknown resolution is refused', () => {
    expect(props({ alarmSettings: { resolution: 'fast' as AlarmResolution } })).toThrow(new Error(HEAD
      + "  - alarmSettings.resolution: must be AlarmResolution.HIGH ('high') or AlarmResolution.STANDARD ('standard'), got \"fast\""));
  });

  test('HIGH on an imported consumer warns that the layer must be added where the function is defined', () => {
    const f = consumerStack();
    const consumer = lambda.Function.fromFunctionAttributes(f.stack, 'Imported', {
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer', architecture: lambda.Architecture.ARM_64, sameEnvironment: true,
    });
    const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer, queue: f.queue, eventSourceMappingId: 'esm', alarmSettings: { resolution: AlarmResolution.HIGH } });
    Annotations.fromStack(f.stack).hasWarning('/TestStack/OrdersBreaker', Match.stringLikeRegexp('fn\\.addLayers\\(SqsCircuitBreaker\\.telemetryLayer\\(this, fn\\.architecture\\)\\)'));
    const t = Template.fromStack(f.stack);
    expect(Object.values(t.findResources('AWS::Lambda::LayerVersion')).map((l) => l.Properties.CompatibleArchitectures)).toEqual([['arm64']]);
    expect(breaker.consumerTelemetryLayer).toBeDefined();
    expect((alarmQueries(t).errors as unknown[])[0]).toBe(FAST);
  });
});
