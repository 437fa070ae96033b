import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { breakerTimings, ExampleSettings } from './settings';

/**
 * Names of the second breaker's stack outputs (`-c secondBreaker=true`), for tests and people; the
 * `breaker` CLI finds both breakers through their descriptors.
 */
export const PAYMENTS_OUTPUTS = {
  queueUrl: 'PaymentsQueueUrl',
  dlqUrl: 'PaymentsDlqUrl',
  esmUuid: 'PaymentsEventSourceMappingUuid',
  consumerName: 'PaymentsConsumerFunctionName',
  alarmName: 'PaymentsAlarmName',
  stateMachineArn: 'PaymentsStateMachineArn',
  flagParameterName: 'PaymentsFlagParameterName',
  circuitName: 'PaymentsCircuitName',
} as const;

/** Properties of {@link PaymentsLine}. */
export interface PaymentsLineProps {
  /** The example's timings (the orders line's). */
  readonly settings: ExampleSettings;
  /** Folder holding the consumer's `bootstrap` binary (arm64), the orders consumer's. */
  readonly consumerCodePath: string;
  /** The topic the breaker notifies, shared with the orders breaker. */
  readonly notificationTopic: sns.ITopic;
  /** Log retention of the consumer and the breaker. */
  readonly logRetention: logs.RetentionDays;
}

/**
 * A second consumer with its own breaker (`-c secondBreaker=true`): a payments queue with a DLQ,
 * a second instance of the example consumer with a failure flag of its own, its event-source
 * mapping and an `SqsCircuitBreaker` notifying the orders breaker's topic. Always a standard queue
 * and an on-demand mapping (`maxConcurrency` 10), whatever the orders line's options; so one
 * circuit can fail while the other stays healthy (the two-breaker end-to-end test).
 */
export class PaymentsLine extends Construct {
  /** The payments queue. */
  public readonly queue: sqs.Queue;
  /** Its dead-letter queue. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The payments consumer. */
  public readonly consumer: lambda.Function;
  /** Its event-source mapping. */
  public readonly eventSourceMapping: lambda.EventSourceMapping;
  /** Its failure flag. */
  public readonly flag: ssm.StringParameter;
  /** Its breaker. */
  public readonly breaker: SqsCircuitBreaker;

  constructor(scope: Construct, id: string, props: PaymentsLineProps) {
    super(scope, id);
    const s = props.settings;
    this.deadLetterQueue = new sqs.Queue(this, 'Dlq', { retentionPeriod: cdk.Duration.days(14), enforceSSL: true });
    this.queue = new sqs.Queue(this, 'Queue', {
      visibilityTimeout: s.visibilityTimeout,
      retentionPeriod: s.queueRetention,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: s.maxReceiveCount },
      enforceSSL: true,
    });
    this.flag = new ssm.StringParameter(this, 'FailureFlag', {
      description: 'Failure flag of the payments consumer: ok | fail | slow | partial | percent:N (read every 2 s)',
      stringValue: 'ok',
    });

    const logGroup = new logs.LogGroup(this, 'ConsumerLogs', {
      retention: props.logRetention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'ConsumerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Example payments consumer',
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    this.consumer = new lambda.Function(this, 'Consumer', {
      description: 'Example payments consumer with a failure flag',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.consumerCodePath),
      timeout: s.consumerTimeout,
      memorySize: 128,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: { FLAG_PARAMETER_NAME: this.flag.parameterName, FLAG_CACHE_SECONDS: '2' },
    });
    this.flag.grantRead(this.consumer);
    this.queue.grantConsumeMessages(this.consumer);

    this.eventSourceMapping = new lambda.EventSourceMapping(this, 'Mapping', {
      target: this.consumer,
      eventSourceArn: this.queue.queueArn,
      batchSize: 10,
      reportBatchItemFailures: true,
      maxConcurrency: 10,
    });
    this.eventSourceMapping.node.addDependency(role);

    this.breaker = new SqsCircuitBreaker(this, 'Breaker', {
      consumer: this.consumer,
      queue: this.queue,
      eventSourceMapping: this.eventSourceMapping,
      ...breakerTimings(s),
      logRetention: props.logRetention,
      notificationTopic: props.notificationTopic,
    });

    const stack = cdk.Stack.of(this);
    const out = (key: string, value: string, description: string) =>
      new cdk.CfnOutput(stack, key, { value, description });
    out(PAYMENTS_OUTPUTS.queueUrl, this.queue.queueUrl, 'Payments queue URL');
    out(PAYMENTS_OUTPUTS.dlqUrl, this.deadLetterQueue.queueUrl, 'Payments dead-letter queue URL');
    out(
      PAYMENTS_OUTPUTS.esmUuid,
      this.eventSourceMapping.eventSourceMappingId,
      "UUID of the payments consumer's mapping",
    );
    out(PAYMENTS_OUTPUTS.consumerName, this.consumer.functionName, 'Payments consumer function name');
    out(PAYMENTS_OUTPUTS.alarmName, this.breaker.alarm.alarmName, 'Alarm that opens the payments circuit');
    out(
      PAYMENTS_OUTPUTS.stateMachineArn,
      this.breaker.stateMachine.stateMachineArn,
      'Payments recovery state machine ARN',
    );
    out(PAYMENTS_OUTPUTS.flagParameterName, this.flag.parameterName, 'SSM parameter holding the payments failure flag');
    out(PAYMENTS_OUTPUTS.circuitName, this.breaker.circuitName, 'Name of the payments circuit in breaker events');
  }
}
