/**
 * The TypeScript twin of `app.py`: the same queue, consumer and breaker props, synthesized from the
 * workspace's `sqs-circuit-breaker`. Writes the stack's template (JSON) to the path given.
 * Usage: ts-node --transpile-only test/python/twin.ts OUT.json
 */
import * as fs from 'fs';
import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AlarmResolution, SqsCircuitBreaker } from 'sqs-circuit-breaker';

const app = new cdk.App();
const stack = new cdk.Stack(app, 'TwinStack', { env: { account: '123456789012', region: 'eu-west-1' } });
const dlq = new sqs.Queue(stack, 'OrdersDlq', { enforceSSL: true });
const queue = new sqs.Queue(stack, 'OrdersQueue', {
  enforceSSL: true,
  visibilityTimeout: cdk.Duration.seconds(60),
  deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
});
const consumer = new lambda.Function(stack, 'OrdersConsumer', {
  runtime: lambda.Runtime.NODEJS_22_X,
  handler: 'index.handler',
  code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
  timeout: cdk.Duration.seconds(10),
});
const source = new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true });
consumer.addEventSource(source);
new SqsCircuitBreaker(stack, 'OrdersBreaker', {
  consumer,
  queue,
  eventSourceMappingId: source.eventSourceMappingId,
  circuitName: 'orders',
  alarmSettings: { resolution: AlarmResolution.HIGH, errorRateThresholdPercent: 25 },
  backoff: { initialDelay: cdk.Duration.seconds(30), maxDelay: cdk.Duration.minutes(10) },
  ramp: { startConcurrency: 2, steps: 3 },
  dashboard: { dashboardName: 'orders-breaker' },
});
fs.writeFileSync(process.argv[2], JSON.stringify(app.synth().getStackByName('TwinStack').template, null, 2));
