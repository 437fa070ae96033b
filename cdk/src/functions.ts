import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { bootstrapAssetPath } from './assets';
import { PROBE_BUDGET, ResolvedConfig } from './config';
import { ConsumerIdentity, consumerMetricPeriodSeconds } from './consumer';
import { CircuitBreakerFunctions } from './workflow';

/** What the handlers' environment and permissions refer to. */
export interface HandlerResources {
  /** The breaker's scope: the functions, their roles and log groups are its children. */
  readonly scope: Construct;
  readonly config: ResolvedConfig;
  readonly circuitName: string;
  /** The consumer's event-source mapping: its UUID and ARN. */
  readonly eventSourceMappingId: string;
  readonly eventSourceMappingArn: string;
  readonly queue: sqs.IQueue;
  /** `queueEncryptionKey`: a customer-managed key CDK does not know from the queue itself. */
  readonly queueEncryptionKey?: kms.IKey;
  readonly consumer: lambda.IFunction;
  readonly consumerIdentity: ConsumerIdentity;
  /** True when the user gave the alarm (the handlers then read Lambda's one-minute metrics). */
  readonly alarmGiven: boolean;
  readonly alarm: cloudwatch.IAlarm;
  readonly bus: events.IEventBus;
  readonly table: dynamodb.ITable;
  /** The state machine's name (fixed up front: `open` may look up the executions of it). */
  readonly stateMachineName: string;
  readonly code?: lambda.Code;
  readonly architecture?: lambda.Architecture;
  readonly logRetention?: logs.RetentionDays;
  readonly logLevel?: lambda.ApplicationLogLevel;
}

/**
 * One handler of the `bootstrap` binary: its handler name, construct id, timeout and, beside its
 * declaration, its least-privilege permissions. The order is the functions' order in the template.
 */
interface Handler {
  readonly key: keyof CircuitBreakerFunctions;
  readonly handler: string;
  readonly id: string;
  readonly timeout: (c: ResolvedConfig) => number;
  readonly why: string;
  readonly grant: (fn: lambda.Function, r: HandlerResources) => void;
}

const HANDLERS: readonly Handler[] = [
  {
    key: 'open',
    handler: 'open',
    id: 'OpenFunction',
    timeout: () => 300,
    why: 'waits until the mapping is Disabled',
    grant: (fn, r) => {
      fn.addToRolePolicy(mappingWrite(r));
      grantCircuitRecord(fn, r);
      // Single flight: whether the record's owner still runs (this state machine's executions only).
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['states:DescribeExecution'],
          resources: [
            cdk.Stack.of(r.scope).formatArn({
              service: 'states',
              resource: 'execution',
              resourceName: `${r.stateMachineName}:*`,
              arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME,
            }),
          ],
        }),
      );
      r.bus.grantPutEventsTo(fn);
    },
  },
  {
    key: 'backoff',
    handler: 'backoff',
    id: 'BackoffFunction',
    timeout: () => 60,
    why: 'pure computation, one queue read, at most one event',
    grant: (fn, r) => {
      fn.addToRolePolicy(mappingRead(r));
      // Keep-alive: the queue's retention (and depth, for its event).
      fn.addToRolePolicy(queueAttributesRead(r));
      r.bus.grantPutEventsTo(fn);
    },
  },
  {
    key: 'probe',
    handler: 'probe',
    id: 'ProbeFunction',
    timeout: () => PROBE_BUDGET.functionSeconds,
    why: 'receives, invokes the consumer synchronously (its timeout, at most 795 s, plus 15 s), settles',
    grant: (fn, r) => {
      // The mapping's FilterCriteria, so the consumer gets only what the mapping delivers.
      fn.addToRolePolicy(mappingRead(r));
      r.bus.grantPutEventsTo(fn);
      // Receive, release, re-send fresh near maxReceiveCount, delete after success; count the
      // messages in flight when nothing is visible (GetQueueAttributes, part of consume).
      grantMoveMessages(fn, r);
      // Exactly the consumer's ARN (an alias ARN when the consumer is an alias), no version wildcard.
      fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [r.consumer.functionArn] }),
      );
      grantQueueKey(fn, r);
    },
  },
  {
    key: 'rejitterPlan',
    handler: 'rejitter-plan',
    id: 'RejitterPlanFunction',
    timeout: () => 60,
    why: 'reads queue attributes',
    grant: (fn, r) => {
      // "Re-jitter Skipped" on a FIFO queue the construct could not see at synth.
      r.bus.grantPutEventsTo(fn);
      // Sizes the backlog.
      fn.addToRolePolicy(queueAttributesRead(r));
    },
  },
  {
    key: 'rejitter',
    handler: 'rejitter',
    id: 'RejitterFunction',
    timeout: (c) => (cdk.Token.isUnresolved(c.rejitterSliceSeconds) ? 900 : c.rejitterSliceSeconds + 60),
    why: 'one slice plus one minute of margin',
    grant: (fn, r) => {
      // Moves messages: sends the copy, then deletes the original.
      grantMoveMessages(fn, r);
      grantQueueKey(fn, r);
    },
  },
  {
    key: 'ramp',
    handler: 'ramp',
    id: 'RampFunction',
    timeout: () => 300,
    why: 'waits until the mapping is Enabled',
    grant: (fn, r) => {
      fn.addToRolePolicy(mappingWrite(r));
      grantCircuitRecord(fn, r);
      r.bus.grantPutEventsTo(fn);
      // Health between steps from the consumer's metrics (GetMetricData has no resource scope).
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:GetMetricData'], resources: ['*'] }));
      // Before a raise: whether messages wait visible (a level the consumer did not fill closes).
      fn.addToRolePolicy(queueAttributesRead(r));
    },
  },
  {
    key: 'close',
    handler: 'close',
    id: 'CloseFunction',
    timeout: () => 300,
    why: 'waits until the mapping is Enabled',
    grant: (fn, r) => {
      fn.addToRolePolicy(mappingWrite(r));
      grantCircuitRecord(fn, r);
      r.bus.grantPutEventsTo(fn);
      // Resets the alarm to OK so that a renewed failure trips it again.
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['cloudwatch:SetAlarmState', 'cloudwatch:DescribeAlarms'],
          resources: [r.alarm.alarmArn],
        }),
      );
    },
  },
  {
    key: 'stuck',
    handler: 'stuck',
    id: 'StuckFunction',
    timeout: () => 60,
    why: 'reads the mapping and puts one event',
    grant: (fn, r) => {
      fn.addToRolePolicy(mappingRead(r));
      grantCircuitRecord(fn, r);
      r.bus.grantPutEventsTo(fn);
    },
  },
];

function mappingRead(r: HandlerResources): iam.PolicyStatement {
  return new iam.PolicyStatement({ actions: ['lambda:GetEventSourceMapping'], resources: [r.eventSourceMappingArn] });
}

function mappingWrite(r: HandlerResources): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ['lambda:GetEventSourceMapping', 'lambda:UpdateEventSourceMapping'],
    resources: [r.eventSourceMappingArn],
  });
}

function queueAttributesRead(r: HandlerResources): iam.PolicyStatement {
  return new iam.PolicyStatement({ actions: ['sqs:GetQueueAttributes'], resources: [r.queue.queueArn] });
}

/** Single flight: the circuit record, a consistent read and a conditional whole-item write. */
function grantCircuitRecord(fn: lambda.Function, r: HandlerResources): void {
  r.table.grant(fn, 'dynamodb:GetItem', 'dynamodb:PutItem');
}

/** Receive, change visibility, send and delete on the queue (and its key, when CDK knows it). */
function grantMoveMessages(fn: lambda.Function, r: HandlerResources): void {
  r.queue.grantConsumeMessages(fn);
  r.queue.grantSendMessages(fn);
}

/**
 * A customer-managed key CDK does not know (an imported queue): receive decrypts, send asks for a
 * data key. The queue's own grants cover a key CDK knows.
 */
function grantQueueKey(fn: lambda.Function, r: HandlerResources): void {
  if (r.queueEncryptionKey !== undefined && r.queue.encryptionMasterKey === undefined) {
    r.queueEncryptionKey.grant(fn, 'kms:Decrypt', 'kms:GenerateDataKey');
  }
}

/** The environment every handler reads (`breaker_core::config`, CONTRACT.md). */
function handlerEnvironment(r: HandlerResources): Record<string, string> {
  const c = r.config;
  const environment: Record<string, string> = {
    CIRCUIT_NAME: r.circuitName,
    ESM_UUID: r.eventSourceMappingId,
    QUEUE_URL: r.queue.queueUrl,
    QUEUE_ARN: r.queue.queueArn,
    CONSUMER_FUNCTION_NAME: r.consumerIdentity.invokeName,
    CONSUMER_METRIC_PERIOD_SECONDS: String(consumerMetricPeriodSeconds(r.alarmGiven, c.alarmPeriodSeconds)),
    CONSUMER_METRIC_RESOLUTION: c.alarmResolution,
    ALARM_NAME: r.alarm.alarmName,
    EVENT_BUS_NAME: r.bus.eventBusName,
    CIRCUIT_TABLE_NAME: r.table.tableName,
    BACKOFF_INITIAL_SECONDS: String(c.backoffInitialSeconds),
    BACKOFF_MAX_SECONDS: String(c.backoffMaxSeconds),
    BACKOFF_MULTIPLIER: String(c.backoffMultiplier),
    ...(c.backoffLongMaxSeconds === undefined ? {} : { BACKOFF_LONG_MAX_SECONDS: String(c.backoffLongMaxSeconds) }),
    PROBE_COUNT: String(c.probeCount),
    PROBE_VISIBILITY_SECONDS: String(c.probeVisibilitySeconds),
    CONSUMER_TIMEOUT_SECONDS: String(c.consumerTimeoutSeconds),
    RAMP_START: String(c.rampStart),
    RAMP_STEPS: String(c.rampSteps),
    RAMP_INTERVAL_SECONDS: String(c.rampIntervalSeconds),
    RELAPSE_ERROR_RATE_PERCENT: String(c.relapseErrorRatePercent),
    REJITTER_ENABLED: String(c.rejitterEnabled),
    REJITTER_MIN_SECONDS: String(c.rejitterMinSeconds),
    REJITTER_MAX_SECONDS: String(c.rejitterMaxSeconds),
    REJITTER_WORKERS: String(c.rejitterWorkers),
    REJITTER_SLICE_SECONDS: String(c.rejitterSliceSeconds),
    HISTORY_EVENT_BUDGET: String(c.historyEventBudget),
  };
  if (c.maxOpenSeconds !== undefined) environment.MAX_OPEN_SECONDS = String(c.maxOpenSeconds);
  return environment;
}

/**
 * The breaker's Lambda functions, one per handler of the `bootstrap` binary, each with its own log
 * group and role; then each handler's permissions (`Handler.grant`).
 */
export function createHandlerFunctions(r: HandlerResources): Record<keyof CircuitBreakerFunctions, lambda.Function> {
  const { scope, config } = r;
  const environment = handlerEnvironment(r);
  const code = r.code ?? lambda.Code.fromAsset(bootstrapAssetPath());
  const retention = r.logRetention ?? logs.RetentionDays.ONE_MONTH;
  const made: Partial<Record<keyof CircuitBreakerFunctions, lambda.Function>> = {};
  for (const h of HANDLERS) {
    const logGroup = new logs.LogGroup(scope, `${h.id}Logs`, { retention, removalPolicy: cdk.RemovalPolicy.DESTROY });
    const role = new iam.Role(scope, `${h.id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `sqs-circuit-breaker ${h.handler} handler of ${scope.node.path}`,
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    made[h.key] = new lambda.Function(scope, h.id, {
      description: `sqs-circuit-breaker ${h.handler} handler (${h.why})`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: r.architecture ?? lambda.Architecture.ARM_64,
      handler: h.handler,
      code,
      // Re-jitter holds messages of up to 1 MiB (rejitter.memorySize); the others hold a few.
      memorySize: h.key === 'rejitter' ? config.rejitterMemoryMiB : config.lambdaMemorySize,
      timeout: cdk.Duration.seconds(h.timeout(config)),
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: r.logLevel ?? lambda.ApplicationLogLevel.INFO,
      environment,
    });
  }
  const functions = made as Record<keyof CircuitBreakerFunctions, lambda.Function>;
  for (const h of HANDLERS) h.grant(functions[h.key], r);
  return functions;
}
