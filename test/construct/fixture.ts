import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { SqsCircuitBreaker, SqsCircuitBreakerProps } from 'sqs-circuit-breaker';

/** A fixed environment, so that ARNs in the template are predictable. */
export const ENV = { account: '123456789012', region: 'eu-west-1' };

/** A consumer of a queue through an event-source mapping: what a breaker protects. */
export interface ConsumerFixture {
  readonly stack: cdk.Stack;
  readonly queue: sqs.Queue;
  readonly consumer: lambda.Function;
  readonly source: SqsEventSource;
}

/** A stack holding one queue-consumer pair (call `addConsumer` for more). */
export function consumerStack(opts: { fifo?: boolean } = {}): ConsumerFixture {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'TestStack', { env: ENV });
  return { stack, ...addConsumer(stack, 'Orders', opts) };
}

/** Adds a queue with a DLQ and an inline consumer reading it. */
export function addConsumer(
  stack: cdk.Stack,
  id: string,
  opts: { fifo?: boolean } = {},
): Omit<ConsumerFixture, 'stack'> {
  const dlq = new sqs.Queue(stack, `${id}Dlq`, { fifo: opts.fifo, enforceSSL: true });
  const queue = new sqs.Queue(stack, `${id}Queue`, {
    fifo: opts.fifo,
    enforceSSL: true,
    visibilityTimeout: cdk.Duration.seconds(60),
    deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
  });
  const consumer = new lambda.Function(stack, `${id}Consumer`, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
    timeout: cdk.Duration.seconds(10),
  });
  const source = new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true });
  consumer.addEventSource(source);
  return { queue, consumer, source };
}

/** The consumer stack plus a breaker with the given extra props. */
export function breakerStack(
  extra: Partial<SqsCircuitBreakerProps> = {},
  opts: { fifo?: boolean } = {},
): ConsumerFixture & { breaker: SqsCircuitBreaker } {
  const f = consumerStack(opts);
  const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
    consumer: f.consumer,
    queue: f.queue,
    eventSourceMappingId: f.source.eventSourceMappingId,
    ...extra,
  });
  return { ...f, breaker };
}
