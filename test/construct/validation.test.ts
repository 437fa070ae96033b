import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { breakerStack, consumerStack, ENV } from './fixture';

/** toThrow with an Error compares the whole message, not a substring. */
const exactly = (message: string): Error => new Error(message);

const HEAD = "SqsCircuitBreaker at 'TestStack/OrdersBreaker' has invalid props:\n";

describe('props validation', () => {
  test('one error names every bad prop and its fix', () => {
    expect(() =>
      breakerStack({
        rejitter: { maxDelay: cdk.Duration.minutes(20), minDelay: cdk.Duration.minutes(16), workers: 0 },
        ramp: { startConcurrency: 1, steps: 0 },
        backoff: { initialDelay: cdk.Duration.seconds(0), multiplier: 0.5 },
        probe: { messageCount: 11 },
      }),
    ).toThrow(
      exactly(
        HEAD +
          [
            '  - backoff.initialDelay: must be positive, got 0 seconds',
            '  - backoff.multiplier: must be from 1 (constant backoff) to 100, got 0.5',
            '  - probe.messageCount: must be a whole number from 1 to 10, got 11 (SQS receives at most 10 messages at once)',
            '  - rejitter.minDelay: must be at most 900 seconds, got 960 seconds (the SQS DelaySeconds limit)',
            '  - rejitter.maxDelay: must be at most 900 seconds, got 1200 seconds (the SQS DelaySeconds limit); use at most Duration.minutes(15)',
            '  - rejitter.workers: must be a whole number from 1 to 40, got 0 (a Step Functions inline Map runs at most 40 iterations at once)',
            "  - ramp.startConcurrency: must be a whole number from 2 to 1000, got 1 (the limits of an event-source mapping's MaximumConcurrency)",
            '  - ramp.steps: must be a whole number from 1 to 100, got 0',
          ].join('\n'),
      ),
    );
  });

  test('re-jitter on a FIFO queue is refused', () => {
    expect(() => breakerStack({ rejitter: { enabled: true } }, { fifo: true })).toThrow(
      exactly(
        HEAD +
          '  - rejitter.enabled: must be false for a FIFO queue (SQS has no per-message delay there and re-ordering would break message groups); set rejitter: { enabled: false }',
      ),
    );
  });

  test('an alarm together with alarm settings is refused', () => {
    const f = consumerStack();
    const alarm = cloudwatch.Alarm.fromAlarmArn(
      f.stack,
      'A',
      `arn:aws:cloudwatch:${ENV.region}:${ENV.account}:alarm:x`,
    );
    expect(
      () =>
        new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
          consumer: f.consumer,
          queue: f.queue,
          eventSourceMappingId: f.source.eventSourceMappingId,
          alarm,
          alarmSettings: { minInvocations: 3 },
        }),
    ).toThrow(
      exactly(
        HEAD +
          '  - alarmSettings: cannot be combined with alarm; remove alarmSettings to use your alarm, or remove alarm to let the breaker create one',
      ),
    );
  });

  test('alarm settings outside what CloudWatch and Lambda metrics allow are refused', () => {
    expect(() =>
      breakerStack({
        alarmSettings: {
          errorRateThresholdPercent: 0,
          period: cdk.Duration.seconds(45),
          evaluationPeriods: 2,
          datapointsToAlarm: 3,
          minInvocations: 0,
        },
      }),
    ).toThrow(
      exactly(
        HEAD +
          [
            '  - alarmSettings.errorRateThresholdPercent: must be greater than 0 and at most 100, got 0',
            '  - alarmSettings.minInvocations: must be a whole number from 1 to 1000000, got 0',
            "  - alarmSettings.period: must be 10 or 30 seconds or a whole number of minutes (CloudWatch alarm periods that aws-cdk-lib's Metric accepts; it refuses 20), got 45 seconds",
            '  - alarmSettings.datapointsToAlarm: must not exceed evaluationPeriods (2), got 3',
          ].join('\n'),
      ),
    );
  });

  test('the mapping must be given exactly once', () => {
    const f = consumerStack();
    expect(() => new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer: f.consumer, queue: f.queue })).toThrow(
      exactly(
        HEAD +
          "  - eventSourceMapping: missing; pass the consumer's event-source mapping or its UUID as eventSourceMappingId",
      ),
    );
    const esm = lambda.EventSourceMapping.fromEventSourceMappingId(f.stack, 'Esm', 'uuid');
    expect(
      () =>
        new SqsCircuitBreaker(f.stack, 'OrdersBreaker2', {
          consumer: f.consumer,
          queue: f.queue,
          eventSourceMapping: esm,
          eventSourceMappingId: 'uuid',
        }),
    ).toThrow(
      exactly(
        "SqsCircuitBreaker at 'TestStack/OrdersBreaker2' has invalid props:\n  - eventSourceMappingId: cannot be combined with eventSourceMapping; pass only one of them",
      ),
    );
  });

  test('durations must be whole seconds and lifetimes positive; other limits name their reason', () => {
    expect(() =>
      breakerStack({
        backoff: {
          initialDelay: cdk.Duration.millis(1500),
          maxDelay: cdk.Duration.seconds(1),
          longOutageMaxDelay: cdk.Duration.millis(500),
        },
        probe: { visibilityTimeout: cdk.Duration.hours(13) },
        maxOpenDuration: cdk.Duration.seconds(0),
        historyEventBudget: 25_000,
        maxIterationsPerExecution: 500,
        lambdaMemorySize: 64,
        circuitName: 'orders breaker',
        lambdaArchitecture: lambda.Architecture.X86_64,
      }),
    ).toThrow(
      exactly(
        HEAD +
          [
            "  - circuitName: must be 1 to 64 letters, digits, '.', '_' or '-', got 'orders breaker'",
            '  - backoff.initialDelay: must be a whole number of seconds, got 1500 ms; use Duration.seconds(2)',
            '  - backoff.maxDelay: must be at least backoff.initialDelay (30 seconds), got 1 seconds',
            '  - backoff.longOutageMaxDelay: must be a whole number of seconds, got 500 ms; use Duration.seconds(1)',
            '  - probe.visibilityTimeout: must be at most 43200 seconds, got 46800 seconds (the SQS visibility limit)',
            '  - maxOpenDuration: must be positive, got 0 seconds',
            '  - maxIterationsPerExecution: was replaced by historyEventBudget (the budget now counts history events, not backoff turns, so that re-jitter slices, ramp steps and relapses count too); remove it',
            '  - historyEventBudget: must be a whole number from 3000 to 20000, got 25000 (history events per execution before it continues as new; Step Functions holds at most 25,000)',
            '  - lambdaMemorySize: must be a whole number from 128 to 10240, got 64',
            '  - lambdaArchitecture: x86_64 needs lambdaCode built for it; the shipped bootstrap is arm64 (or remove lambdaArchitecture)',
          ].join('\n'),
      ),
    );
  });

  test('a probe visibility that the invoke can outlast is refused', () => {
    // The fixture's consumer times out after 10 seconds; the invoke may last 15 seconds longer.
    expect(() => breakerStack({ probe: { visibilityTimeout: cdk.Duration.seconds(25) } })).toThrow(
      exactly(
        HEAD +
          "  - probe.visibilityTimeout: must exceed the consumer's timeout (10 seconds) plus the invoke's margin (15 seconds), 25 seconds, got 25 seconds",
      ),
    );
    expect(() => breakerStack({ probe: { visibilityTimeout: cdk.Duration.seconds(26) } })).not.toThrow();
  });

  const DOES_NOT_FIT = (prop: string, seconds: number): string =>
    `  - ${prop}: the consumer's timeout (${seconds} seconds) does not fit in the probe function's 900 seconds ` +
    "beside the probe's receive (30 seconds), the invoke's margin (15) and settling the messages (60); " +
    "lower the consumer's timeout to at most 795 seconds";

  test('a consumer whose timeout does not fit in the probe function is refused', () => {
    const tooLong = new cdk.App();
    const stack = new cdk.Stack(tooLong, 'TestStack', { env: ENV });
    const consumer = new lambda.Function(stack, 'Consumer', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({});'),
      timeout: cdk.Duration.minutes(15),
    });
    const queue = new sqs.Queue(stack, 'Queue', { enforceSSL: true });
    expect(
      () => new SqsCircuitBreaker(stack, 'OrdersBreaker', { consumer, queue, eventSourceMappingId: 'esm-1' }),
    ).toThrow(exactly(HEAD + DOES_NOT_FIT('consumer', 900)));
    // Through an alias of it, too.
    const alias = new lambda.Alias(stack, 'Live', { aliasName: 'live', version: consumer.currentVersion });
    expect(
      () => new SqsCircuitBreaker(stack, 'AliasBreaker', { consumer: alias, queue, eventSourceMappingId: 'esm-1' }),
    ).toThrow(exactly(HEAD.replace('OrdersBreaker', 'AliasBreaker') + DOES_NOT_FIT('consumer', 900)));
  });

  test('an imported consumer is checked against consumerTimeout', () => {
    const f = consumerStack();
    const imported = lambda.Function.fromFunctionArn(
      f.stack,
      'Imported',
      'arn:aws:lambda:eu-west-1:123456789012:function:orders',
    );
    const props = { consumer: imported, queue: f.queue, eventSourceMappingId: 'esm-1' };
    expect(
      () => new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { ...props, consumerTimeout: cdk.Duration.seconds(796) }),
    ).toThrow(exactly(HEAD + DOES_NOT_FIT('consumerTimeout', 796)));
    expect(
      () => new SqsCircuitBreaker(f.stack, 'Fits', { ...props, consumerTimeout: cdk.Duration.seconds(795) }),
    ).not.toThrow();
  });

  test("an imported consumer's consumerTimeout of a fraction of a second is named in the error, not thrown by CDK", () => {
    const f = consumerStack();
    const imported = lambda.Function.fromFunctionArn(
      f.stack,
      'Imported',
      'arn:aws:lambda:eu-west-1:123456789012:function:orders',
    );
    expect(
      () =>
        new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
          consumer: imported,
          queue: f.queue,
          eventSourceMappingId: 'esm-1',
          consumerTimeout: cdk.Duration.millis(1500),
        }),
    ).toThrow(
      exactly(HEAD + '  - consumerTimeout: must be a whole number of seconds, got 1500 ms; use Duration.seconds(2)'),
    );
  });

  test('an imported consumer without consumerTimeout is assumed to take the longest that fits, with a warning naming the prop', () => {
    const f = consumerStack();
    const imported = lambda.Function.fromFunctionArn(
      f.stack,
      'Imported',
      'arn:aws:lambda:eu-west-1:123456789012:function:orders',
    );
    new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
      consumer: imported,
      queue: f.queue,
      eventSourceMappingId: 'esm-1',
    });
    Annotations.fromStack(f.stack).hasWarning(
      '/TestStack/OrdersBreaker',
      Match.stringLikeRegexp(
        "The consumer's timeout is unknown \\(an imported function\\): the probe assumes 795 seconds.*pass consumerTimeout",
      ),
    );
    // An imported consumer gets Lambda's one-minute metrics: each ramp level waits for a minute
    // to be complete, the assumed timeout and a minute after it ends.
    Annotations.fromStack(f.stack).hasWarning(
      '/TestStack/OrdersBreaker',
      Match.stringLikeRegexp('each ramp level waits less: .* \\(now 855 seconds\\)'),
    );
  });

  test('consumerTimeout that contradicts the consumer function is refused', () => {
    expect(() => breakerStack({ consumerTimeout: cdk.Duration.seconds(20) })).toThrow(
      exactly(
        HEAD +
          "  - consumerTimeout: must match the consumer's own timeout (10 seconds), got 20 seconds; remove it (the breaker reads the timeout of a function defined in this app)",
      ),
    );
  });

  test('re-jitter workers beyond what the handlers accept are refused at synth', () => {
    // The handlers refuse REJITTER_WORKERS above 40 at start-up (an inline Map runs at most 40
    // iterations at once); a synth that passed would give a breaker whose every recovery fails.
    expect(() => breakerStack({ rejitter: { workers: 45 } })).toThrow(
      exactly(
        HEAD +
          '  - rejitter.workers: must be a whole number from 1 to 40, got 45 (a Step Functions inline Map runs at most 40 iterations at once)',
      ),
    );
  });

  test("re-jitter memory must be whole MiB within Lambda's sizes", () => {
    expect(() => breakerStack({ rejitter: { memorySize: cdk.Size.mebibytes(64) } })).toThrow(
      exactly(
        HEAD +
          "  - rejitter.memorySize: must be from Size.mebibytes(128) to Size.mebibytes(10240), got 64 MiB (Lambda's memory sizes)",
      ),
    );
    expect(() => breakerStack({ rejitter: { memorySize: cdk.Size.gibibytes(11) } })).toThrow(
      exactly(
        HEAD +
          "  - rejitter.memorySize: must be from Size.mebibytes(128) to Size.mebibytes(10240), got 11264 MiB (Lambda's memory sizes)",
      ),
    );
    expect(() => breakerStack({ rejitter: { memorySize: cdk.Size.kibibytes(300 * 1024 + 512) } })).toThrow(
      exactly(HEAD + '  - rejitter.memorySize: must be a whole number of MiB, got 307712 KiB; use Size.mebibytes(301)'),
    );
  });

  test('min delay above max delay is refused', () => {
    expect(() =>
      breakerStack({ rejitter: { minDelay: cdk.Duration.minutes(6), maxDelay: cdk.Duration.minutes(5) } }),
    ).toThrow(
      exactly(HEAD + '  - rejitter.minDelay: must not exceed rejitter.maxDelay (300 seconds), got 360 seconds'),
    );
  });

  test('a long-outage backoff cap below backoff.maxDelay is refused, naming the fix', () => {
    expect(() =>
      breakerStack({
        backoff: { maxDelay: cdk.Duration.minutes(10), longOutageMaxDelay: cdk.Duration.minutes(5) },
      }),
    ).toThrow(
      exactly(
        HEAD +
          '  - backoff.longOutageMaxDelay: must be at least backoff.maxDelay (600 seconds), got 300 seconds; ' +
          'set it to backoff.maxDelay to keep that cap however long the outage',
      ),
    );
    expect(() => breakerStack({ backoff: { longOutageMaxDelay: cdk.Duration.days(2) } })).toThrow(
      exactly(
        HEAD +
          '  - backoff.longOutageMaxDelay: must be at most 86400 seconds, got 172800 seconds; probe at least once a day',
      ),
    );
  });

  test("a minimum re-jitter delay over a quarter of the queue's known retention is refused", () => {
    const breakerOn = (retentionSeconds: number, minDelaySeconds: number) => {
      const f = consumerStack();
      (f.queue.node.defaultChild as sqs.CfnQueue).messageRetentionPeriod = retentionSeconds;
      return () =>
        new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
          consumer: f.consumer,
          queue: f.queue,
          eventSourceMappingId: f.source.eventSourceMappingId,
          rejitter: { minDelay: cdk.Duration.seconds(minDelaySeconds) },
        });
    };
    expect(breakerOn(120, 45)).toThrow(
      exactly(
        HEAD +
          "  - rejitter.minDelay: must be at most a quarter of the queue's retention (120 seconds: a re-jittered copy's " +
          'retention counts from its send, delay included), got 45 seconds; lower it or lengthen the queue retentionPeriod',
      ),
    );
    expect(breakerOn(120, 30)).not.toThrow();
    expect(breakerOn(1_200, 300)).not.toThrow();
  });

  test('unresolved tokens are not judged at synth time', () => {
    const f = consumerStack();
    const workers = new cdk.CfnParameter(f.stack, 'Workers', { type: 'Number' }).valueAsNumber;
    const delay = new cdk.CfnParameter(f.stack, 'Delay', { type: 'Number' }).valueAsNumber;
    expect(
      () =>
        new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
          consumer: f.consumer,
          queue: f.queue,
          eventSourceMappingId: f.source.eventSourceMappingId,
          rejitter: { workers: 4, maxDelay: cdk.Duration.seconds(delay) },
          ramp: { startConcurrency: workers },
        }),
    ).not.toThrow();
  });
});
