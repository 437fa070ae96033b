import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { ExampleSettings, settingsFromContext } from './settings';

/** Names of the stack outputs; the `breaker` CLI reads them (keep in sync with `lambdas/cli`). */
export const OUTPUTS = {
  queueUrl: 'QueueUrl',
  queueArn: 'QueueArn',
  dlqUrl: 'DlqUrl',
  esmUuid: 'EventSourceMappingUuid',
  consumerName: 'ConsumerFunctionName',
  alarmName: 'AlarmName',
  stateMachineArn: 'StateMachineArn',
  flagParameterName: 'FlagParameterName',
  circuitName: 'CircuitName',
  circuitTableName: 'CircuitTableName',
  notificationQueueUrl: 'NotificationQueueUrl',
} as const;

/** Properties of {@link OrdersStack}. */
export interface OrdersStackProps extends cdk.StackProps {
  /**
   * Timings.
   *
   * @default - read from the app's context (`demo`, `alarmPeriodSeconds`, `queueRetentionSeconds`,
   *   `maxReceiveCount`, `mappingMode`, `queueType`, `consumerAlias`), see `settings.ts`
   */
  readonly settings?: ExampleSettings;

  /**
   * Folder holding the consumer's `bootstrap` binary (arm64).
   *
   * @default - `example-stack/assets/example-consumer`, built by `npm run build:lambdas`
   */
  readonly consumerCodePath?: string;
}

/**
 * The example: an orders queue with a DLQ, a Rust consumer whose downstream health is set by a
 * failure flag (an SSM parameter), and the `SqsCircuitBreaker` protecting it.
 */
export class OrdersStack extends cdk.Stack {
  /** The orders queue. */
  public readonly queue: sqs.Queue;
  /** The orders dead-letter queue. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The consumer. */
  public readonly consumer: lambda.Function;
  /**
   * What the mapping invokes and the breaker protects: the consumer, or its alias with
   * `-c consumerAlias=NAME`.
   */
  public readonly target: lambda.IFunction;
  /** The consumer's event-source mapping. */
  public readonly eventSourceMapping: lambda.EventSourceMapping;
  /** The failure flag the consumer reads. */
  public readonly flag: ssm.StringParameter;
  /** The breaker. */
  public readonly breaker: SqsCircuitBreaker;
  /** The topic the breaker notifies (its default `notificationEvents`). */
  public readonly notificationTopic: sns.Topic;
  /**
   * A queue subscribed to `notificationTopic` with raw message delivery: each message body is the
   * notification's text (what an e-mail subscriber would read), for the end-to-end test and for
   * reading notifications without an e-mail address.
   */
  public readonly notificationQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: OrdersStackProps = {}) {
    super(scope, id, props);
    const s = props.settings ?? settingsFromContext(this.node);
    const logRetention = s.profile !== 'default' ? logs.RetentionDays.ONE_DAY : logs.RetentionDays.ONE_MONTH;

    // FIFO (`-c queueType=fifo`): a FIFO queue needs a FIFO dead-letter queue. No content-based
    // deduplication: every send names its MessageDeduplicationId, the breaker's copies too.
    const fifo = s.fifo === true ? { fifo: true } : {};
    this.deadLetterQueue = new sqs.Queue(this, 'OrdersDlq', {
      retentionPeriod: cdk.Duration.days(14),
      enforceSSL: true,
      ...fifo,
    });
    this.queue = new sqs.Queue(this, 'Orders', {
      visibilityTimeout: s.visibilityTimeout,
      retentionPeriod: s.queueRetention,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: s.maxReceiveCount },
      enforceSSL: true,
      ...fifo,
    });
    // On FIFO the breaker gets the queue imported through its ARN token, as an application that
    // imports its queue from another stack would: the construct cannot tell at synth that it is
    // FIFO (re-jitter stays on), so the recovery must find out at run time.
    const breakerQueue: sqs.IQueue = s.fifo === true
      ? sqs.Queue.fromQueueAttributes(this, 'OrdersByArn', { queueArn: this.queue.queueArn, queueUrl: this.queue.queueUrl })
      : this.queue;

    this.flag = new ssm.StringParameter(this, 'FailureFlag', {
      description: 'Failure flag of the example consumer: ok | fail | slow | partial | percent:N (read every 2 s)',
      stringValue: 'ok',
    });

    // Own role and log group: no AWS managed policy, no account-wide log permissions.
    const logGroup = new logs.LogGroup(this, 'ConsumerLogs', {
      retention: logRetention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'ConsumerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Example orders consumer',
    });
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }));
    this.consumer = new lambda.Function(this, 'Consumer', {
      description: 'Example orders consumer with a failure flag',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.consumerCodePath ?? path.join(__dirname, '..', 'assets', 'example-consumer')),
      timeout: s.consumerTimeout,
      memorySize: 128,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        FLAG_PARAMETER_NAME: this.flag.parameterName,
        FLAG_CACHE_SECONDS: '2',
      },
    });
    this.flag.grantRead(this.consumer);
    this.queue.grantConsumeMessages(this.consumer);

    // With an alias the mapping invokes the alias (of a published version), as a team deploying
    // through aliases does; the breaker gets the alias, so its alarm and relapse check read the
    // alias's metrics (FunctionName + Resource) and its probe invokes the alias.
    this.target = s.consumerAlias
      ? new lambda.Alias(this, 'ConsumerAlias', { aliasName: s.consumerAlias, version: this.consumer.currentVersion })
      : this.consumer;

    this.eventSourceMapping = new lambda.EventSourceMapping(this, 'OrdersMapping', {
      target: this.target,
      eventSourceArn: this.queue.queueArn,
      batchSize: 10,
      reportBatchItemFailures: true,
      // The breaker lowers this while ramping and restores exactly this value when it closes; in
      // provisioned mode it ramps MaximumPollers instead and restores the poller configuration
      // (AWS refuses a concurrency limit on a provisioned mapping).
      ...(s.provisionedPollers
        ? { provisionedPollerConfig: s.provisionedPollers }
        : { maxConcurrency: 10 }),
    });
    // The mapping needs the consumer's queue permissions before AWS validates it.
    this.eventSourceMapping.node.addDependency(role);

    // Notifications: a topic with a queue subscribed (raw delivery: the body is the text). No KMS
    // key on the topic: EventBridge cannot use the AWS managed key alias/aws/sns, and a customer
    // managed key costs $1 a month for texts that hold no secret.
    this.notificationTopic = new sns.Topic(this, 'BreakerNotifications', { enforceSSL: true });
    this.notificationQueue = new sqs.Queue(this, 'NotificationInbox', {
      retentionPeriod: cdk.Duration.days(4),
      enforceSSL: true,
    });
    this.notificationTopic.addSubscription(new subscriptions.SqsSubscription(this.notificationQueue, { rawMessageDelivery: true }));
    cdk.Validations.of(this.notificationQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'the example\'s notification inbox is read by people and tests; a notification that is not read is not worth a dead-letter queue',
    });

    this.breaker = new SqsCircuitBreaker(this, 'OrdersBreaker', {
      consumer: this.target,
      queue: breakerQueue,
      eventSourceMapping: this.eventSourceMapping,
      alarmSettings: {
        resolution: s.alarmResolution,
        period: s.alarmPeriod,
        evaluationPeriods: s.alarmEvaluationPeriods,
        datapointsToAlarm: s.alarmDatapoints,
        minInvocations: s.alarmMinInvocations,
      },
      backoff: { initialDelay: s.backoffInitial, maxDelay: s.backoffMax },
      probe: { visibilityTimeout: s.probeVisibility },
      rejitter: { maxDelay: s.rejitterMaxDelay, sliceDuration: s.rejitterSlice, memorySize: s.rejitterMemory, workers: s.rejitterWorkers },
      ramp: { steps: s.rampSteps, stepInterval: s.rampInterval },
      logRetention,
      notificationTopic: this.notificationTopic,
    });

    const out = (key: string, value: string, description: string) =>
      new cdk.CfnOutput(this, key, { value, description });
    out(OUTPUTS.queueUrl, this.queue.queueUrl, 'Orders queue URL');
    out(OUTPUTS.queueArn, this.queue.queueArn, 'Orders queue ARN');
    out(OUTPUTS.dlqUrl, this.deadLetterQueue.queueUrl, 'Orders dead-letter queue URL');
    out(OUTPUTS.esmUuid, this.eventSourceMapping.eventSourceMappingId, "UUID of the consumer's event-source mapping");
    out(OUTPUTS.consumerName, this.consumer.functionName, 'Consumer function name');
    out(OUTPUTS.alarmName, this.breaker.alarm.alarmName, 'Alarm that opens the circuit');
    out(OUTPUTS.stateMachineArn, this.breaker.stateMachine.stateMachineArn, 'Recovery state machine ARN');
    out(OUTPUTS.flagParameterName, this.flag.parameterName, 'SSM parameter holding the failure flag');
    out(OUTPUTS.circuitTableName, this.breaker.table.tableName, 'DynamoDB table of the durable circuit record');
    out(OUTPUTS.circuitName, this.breaker.circuitName, 'Name of the circuit in breaker events');
    out(OUTPUTS.notificationQueueUrl, this.notificationQueue.queueUrl, "Queue subscribed to the breaker's notifications (raw message delivery: the body is the text)");
  }
}
