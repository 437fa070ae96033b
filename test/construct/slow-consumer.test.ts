import * as fs from 'fs';
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AlarmResolution, SqsCircuitBreaker, SqsCircuitBreakerProps } from 'sqs-circuit-breaker';
import { consumerStack, ENV } from './fixture';

/**
 * A consumer whose downstream hangs fails by timing out (issue 15): with concurrency C and timeout
 * T, at most C x period / T invocations end in one alarm period, and a period with fewer than
 * minInvocations counts as 0 %. With the default 5, a consumer limited to 2 concurrent 30-second
 * invocations never opened the circuit; the construct now lowers the default to what the consumer
 * can reach and warns about a given value above it.
 */
interface Slow {
  readonly timeoutSeconds: number;
  readonly maxConcurrency?: number;
  readonly reserved?: number;
  /** pass the mapping object (else its UUID, found among the consumer's event sources) */
  readonly mappingObject?: boolean;
  readonly breaker?: Partial<SqsCircuitBreakerProps>;
}

function slowStack(o: Slow): { stack: cdk.Stack; template: Template } {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'SlowStack', { env: ENV });
  const queue = new sqs.Queue(stack, 'Queue', { enforceSSL: true, visibilityTimeout: cdk.Duration.seconds(6 * o.timeoutSeconds) });
  const consumer = new lambda.Function(stack, 'Consumer', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
    timeout: cdk.Duration.seconds(o.timeoutSeconds),
    reservedConcurrentExecutions: o.reserved,
  });
  let mapping: Partial<SqsCircuitBreakerProps>;
  if (o.mappingObject) {
    queue.grantConsumeMessages(consumer);
    const esm = new lambda.EventSourceMapping(stack, 'Mapping', { target: consumer, eventSourceArn: queue.queueArn, maxConcurrency: o.maxConcurrency, batchSize: 10 });
    mapping = { eventSourceMapping: esm };
  } else {
    const source = new SqsEventSource(queue, { batchSize: 10, maxConcurrency: o.maxConcurrency });
    consumer.addEventSource(source);
    mapping = { eventSourceMappingId: source.eventSourceMappingId };
  }
  new SqsCircuitBreaker(stack, 'Breaker', { consumer, queue, ...mapping, ...o.breaker });
  return { stack, template: Template.fromStack(stack) };
}

/** The `invocations >= N` of the breaker's error-rate alarm. */
function minInvocationsOf(template: Template): number {
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
  const expressions = alarms.flatMap((a) => (a.Properties.Metrics ?? []) as Array<{ Expression?: string }>)
    .map((m) => m.Expression).filter((e): e is string => e !== undefined && e.startsWith('IF('));
  expect(expressions).toHaveLength(1);
  return Number(/invocations >= (\d+)/.exec(expressions[0])![1]);
}

describe('minInvocations and a consumer that times out', () => {
  test('2 concurrent invocations of 30 s: the default becomes 1 (at most 0.67 end per 10 s period), and synth says why', () => {
    const { stack, template } = slowStack({ timeoutSeconds: 30, maxConcurrency: 2 });
    expect(minInvocationsOf(template)).toBe(1);
    Annotations.fromStack(stack).hasInfo('/SlowStack/Breaker', Match.stringLikeRegexp('minInvocations defaults to 1, not 5: .*concurrency 2 x 10 s / timeout 30 s'));
    Annotations.fromStack(stack).hasNoWarning('/SlowStack/Breaker', Match.stringLikeRegexp('minInvocations'));
  });

  test('the mapping passed as an object is read the same way; one-minute periods reach more', () => {
    const { template } = slowStack({ timeoutSeconds: 30, maxConcurrency: 2, mappingObject: true, breaker: { alarmSettings: { resolution: AlarmResolution.STANDARD } } });
    expect(minInvocationsOf(template)).toBe(4);
  });

  test('reserved concurrency counts too: 3 of 10 s in 10 s periods reach 3', () => {
    const { template } = slowStack({ timeoutSeconds: 10, reserved: 3 });
    expect(minInvocationsOf(template)).toBe(3);
  });

  test('the lower of the two limits wins', () => {
    const { template } = slowStack({ timeoutSeconds: 10, reserved: 8, maxConcurrency: 2 });
    expect(minInvocationsOf(template)).toBe(2);
  });

  test('a given minInvocations above what the consumer reaches is kept, with a warning naming the fix', () => {
    const { stack, template } = slowStack({ timeoutSeconds: 30, maxConcurrency: 2, breaker: { alarmSettings: { minInvocations: 5 } } });
    expect(minInvocationsOf(template)).toBe(5);
    Annotations.fromStack(stack).hasWarning('/SlowStack/Breaker', Match.stringLikeRegexp(
      'alarmSettings.minInvocations is 5, but a consumer that times out .* ends at most 1 invocation per 10-second alarm period.*Lower alarmSettings.minInvocations to at most 1, or lengthen alarmSettings.period'));
  });

  test('unknown concurrency (no limit on the mapping or the function) keeps the default 5', () => {
    const { stack, template } = slowStack({ timeoutSeconds: 30 });
    expect(minInvocationsOf(template)).toBe(5);
    Annotations.fromStack(stack).hasNoInfo('/SlowStack/Breaker', Match.stringLikeRegexp('minInvocations'));
  });

  test('a consumer fast enough for the default keeps it', () => {
    const { template } = slowStack({ timeoutSeconds: 3, maxConcurrency: 2 });
    expect(minInvocationsOf(template)).toBe(5);
  });
});

describe('the default window holds two timeouts of the consumer (limits.json alarmDefaultExamples)', () => {
  const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk', 'src', 'limits.json'), 'utf8')).alarmDefaultExamples.rows as Array<{
    resolution: string; timeoutSeconds: number; concurrency: number | null; periodSeconds: number; evaluationPeriods: number; minInvocations: number;
  }>;

  test.each(table.map((r) => [r.resolution, r.timeoutSeconds, r.concurrency, r.periodSeconds, r.evaluationPeriods, r.minInvocations]))(
    '%s, timeout %d s, concurrency %p: period %d s, %d evaluation periods, minInvocations %d',
    (resolution, timeoutSeconds, concurrency, periodSeconds, evaluationPeriods, minInvocations) => {
      const { template } = slowStack({
        timeoutSeconds: timeoutSeconds as number,
        maxConcurrency: (concurrency as number | null) ?? undefined,
        breaker: { alarmSettings: { resolution: resolution as AlarmResolution } },
      });
      expect(minInvocationsOf(template)).toBe(minInvocations);
      const alarm = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmDescription: Match.stringLikeRegexp('consumer error rate') } }))[0];
      const periods = (alarm.Properties.Metrics as Array<{ MetricStat?: { Period: number } }>).flatMap((m) => (m.MetricStat ? [m.MetricStat.Period] : []));
      expect(new Set(periods)).toEqual(new Set([periodSeconds]));
      expect(alarm.Properties).toMatchObject({ EvaluationPeriods: evaluationPeriods, DatapointsToAlarm: 2 });
    },
  );

  test('a given evaluationPeriods is kept', () => {
    const { template } = slowStack({ timeoutSeconds: 60, breaker: { alarmSettings: { evaluationPeriods: 3 } } });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmDescription: Match.stringLikeRegexp('consumer error rate'), EvaluationPeriods: 3 });
  });

  test('an imported consumer of unknown timeout keeps the resolution default', () => {
    const f = consumerStack();
    const consumer = lambda.Function.fromFunctionName(f.stack, 'Imported', 'orders-consumer');
    new SqsCircuitBreaker(f.stack, 'B', { consumer, queue: f.queue, eventSourceMappingId: 'esm-1' });
    const alarm = Object.values(Template.fromStack(f.stack).findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmDescription: Match.stringLikeRegexp('consumer error rate') } }))[0];
    expect(JSON.stringify(alarm)).toContain('"Period":60');
    expect(alarm.Properties.EvaluationPeriods).toBe(3);
  });
});
