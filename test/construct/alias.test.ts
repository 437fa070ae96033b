import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AlarmResolution, SqsCircuitBreaker, SqsCircuitBreakerProps } from 'sqs-circuit-breaker';
import { consumerStack } from './fixture';

/**
 * Issue 13 item 4: a consumer passed as an alias, a version or a function imported by a qualified
 * ARN. Lambda publishes the metrics of an alias or version invocation under
 * `FunctionName=<fn>, Resource=<fn>:<qualifier>` (and `FunctionName=<fn>` for all of the
 * function's invocations), never under `FunctionName=<fn>:<qualifier>`: the alarm must read the
 * former, and the ramp's relapse check reads the same (`CONSUMER_FUNCTION_NAME` qualified, which it
 * turns into these dimensions, and `CONSUMER_METRIC_PERIOD_SECONDS`). These are Lambda's own
 * metrics, `AlarmResolution.STANDARD`; with `HIGH` (resolution.test.ts) the extension publishes
 * under `FunctionName` alone.
 */

const STANDARD = { alarmSettings: { resolution: AlarmResolution.STANDARD } };

/** A breaker whose consumer is `consumerOf(function)`, fed by a mapping on that consumer. */
function breakerOn(
  consumerOf: (fn: lambda.Function, stack: cdk.Stack) => lambda.IFunction,
  extra: Partial<SqsCircuitBreakerProps> | ((stack: cdk.Stack) => Partial<SqsCircuitBreakerProps>) = {},
) {
  const f = consumerStack();
  const more = typeof extra === 'function' ? extra(f.stack) : extra;
  const consumer = consumerOf(f.consumer, f.stack);
  const esm = consumer.addEventSourceMapping('AliasMapping', { eventSourceArn: f.queue.queueArn, batchSize: 10 });
  const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
    consumer,
    queue: f.queue,
    eventSourceMapping: esm,
    consumerTimeout: cdk.Duration.seconds(10),
    ...more,
  });
  return { ...f, breaker, t: Template.fromStack(f.stack) };
}

/** The dimensions of the alarm's metric `id` (errors / invocations), resolved. */
function alarmDimensions(t: Template, id: string): unknown {
  // the error-rate alarm (the recovery alarm is metrics.test.ts's)
  const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmDescription: Match.stringLikeRegexp('consumer error rate') } }));
  expect(alarms).toHaveLength(1);
  const metrics = alarms[0].Properties.Metrics as Array<{ Id: string; MetricStat?: { Metric: { Dimensions: unknown } } }>;
  return metrics.find((m) => m.Id === id)!.MetricStat!.Metric.Dimensions;
}

/** The ramp function's environment. */
function rampEnv(t: Template): Record<string, unknown> {
  const fns = Object.values(t.findResources('AWS::Lambda::Function', { Properties: { Handler: 'ramp' } }));
  expect(fns).toHaveLength(1);
  return fns[0].Properties.Environment.Variables;
}

const FN = { Ref: expect.stringMatching(/^OrdersConsumer/) };
const qualified = (q: string) => ({ 'Fn::Join': ['', [FN, `:${q}`]] });

describe('a qualified consumer (issue 13 item 4)', () => {
  test('an alias: the alarm reads FunctionName=<fn>, Resource=<fn>:<alias>; the handlers get <fn>:<alias>', () => {
    const { t, stack } = breakerOn((fn) => new lambda.Alias(fn, 'Live', { aliasName: 'live', version: fn.currentVersion }), STANDARD);
    for (const id of ['errors', 'invocations']) {
      expect(stack.resolve(alarmDimensions(t, id))).toEqual([
        { Name: 'FunctionName', Value: FN },
        { Name: 'Resource', Value: qualified('live') },
      ]);
    }
    const env = rampEnv(t);
    expect(stack.resolve(env.CONSUMER_FUNCTION_NAME)).toEqual(qualified('live'));
    expect(env.CONSUMER_METRIC_PERIOD_SECONDS).toBe('60');
  });

  test('a version: Resource is <fn>:<version>, not the version ARN', () => {
    const { t, stack } = breakerOn((fn) => fn.currentVersion, STANDARD);
    const version = { 'Fn::GetAtt': [expect.stringMatching(/^OrdersConsumerCurrentVersion/), 'Version'] };
    expect(stack.resolve(alarmDimensions(t, 'errors'))).toEqual([
      { Name: 'FunctionName', Value: FN },
      { Name: 'Resource', Value: { 'Fn::Join': ['', [FN, ':', version]] } },
    ]);
    expect(stack.resolve(rampEnv(t).CONSUMER_FUNCTION_NAME)).toEqual({ 'Fn::Join': ['', [FN, ':', version]] });
  });

  test('an imported alias: FunctionName is the bare function name, never <fn>:<alias>', () => {
    const { t, stack } = breakerOn((fn, s) => lambda.Alias.fromAliasAttributes(s, 'Imported', { aliasName: 'blue', aliasVersion: fn.currentVersion }));
    expect(stack.resolve(alarmDimensions(t, 'invocations'))).toEqual([
      { Name: 'FunctionName', Value: FN },
      { Name: 'Resource', Value: qualified('blue') },
    ]);
    expect(stack.resolve(rampEnv(t).CONSUMER_FUNCTION_NAME)).toEqual(qualified('blue'));
  });

  test('a function imported by a qualified ARN keeps its qualifier for the probe and the metrics', () => {
    const arn = 'arn:aws:lambda:eu-west-1:123456789012:function:orders-consumer:live';
    const { t } = breakerOn((_fn, s) => lambda.Function.fromFunctionArn(s, 'ByArn', arn));
    expect(alarmDimensions(t, 'errors')).toEqual([
      { Name: 'FunctionName', Value: 'orders-consumer' },
      { Name: 'Resource', Value: 'orders-consumer:live' },
    ]);
    expect(rampEnv(t).CONSUMER_FUNCTION_NAME).toBe('orders-consumer:live');
  });

  test('an unqualified consumer keeps the plain FunctionName dimension', () => {
    const { t, stack } = breakerOn((fn) => fn);
    expect(stack.resolve(alarmDimensions(t, 'errors'))).toEqual([{ Name: 'FunctionName', Value: FN }]);
    expect(stack.resolve(rampEnv(t).CONSUMER_FUNCTION_NAME)).toEqual(FN);
  });

  test('the relapse check reads periods of the alarm period when it is under a minute (high resolution), else of one minute', () => {
    const alias = (fn: lambda.Function) => new lambda.Alias(fn, 'Live', { aliasName: 'live', version: fn.currentVersion });
    expect(rampEnv(breakerOn(alias, { alarmSettings: { period: cdk.Duration.seconds(10) } }).t).CONSUMER_METRIC_PERIOD_SECONDS).toBe('10');
    expect(rampEnv(breakerOn(alias, { alarmSettings: { period: cdk.Duration.minutes(5) } }).t).CONSUMER_METRIC_PERIOD_SECONDS).toBe('60');
    const own = (s: cdk.Stack) => ({ alarm: cloudwatch.Alarm.fromAlarmName(s, 'Own', 'orders-own-alarm') });
    expect(rampEnv(breakerOn(alias, own).t).CONSUMER_METRIC_PERIOD_SECONDS).toBe('60');
  });
});
