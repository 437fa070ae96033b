import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/**
 * Which metrics the breaker's alarm (and the ramp's relapse check) read.
 */
export enum AlarmResolution {
  /**
   * Per-second metrics from the breaker's telemetry extension (`SqsCircuitBreaker/Consumer`
   * `Errors` and `Invocations`, dimension `FunctionName`), published through a Lambda layer on the
   * consumer (`SqsCircuitBreaker.telemetryLayer`). Periods of 10 or 30 seconds or whole minutes:
   * the circuit can open about 30 seconds after failures begin.
   */
  HIGH = 'high',
  /**
   * Lambda's own metrics (`AWS/Lambda` `Errors` and `Invocations`), published per minute: whole-minute
   * periods only, and the circuit opens two to three minutes after failures begin. Needs no layer.
   */
  STANDARD = 'standard',
}

/**
 * The breaker's events (EventBridge `detail-type`, source `sqs-circuit-breaker`), as
 * `notificationEvents` chooses them. The values are the detail-types the handlers put (the list
 * is written in `lambdas/core/src/events.rs`; a test keeps this enum equal to it).
 */
export enum CircuitEvent {
  /** The event-source mapping was disabled (first open, a relapse during the ramp, a re-trip). */
  OPENED = 'Circuit Opened',
  /** A probe judged the consumer still unhealthy; the circuit stays open. */
  PROBE_FAILED = 'Probe Failed',
  /** The mapping was re-enabled at the first ramp level. */
  HALF_OPEN = 'Circuit Half-Open',
  /** The original scaling was restored and the alarm reset: consumption is back to normal. */
  CLOSED = 'Circuit Closed',
  /** The breaker gave up (max open duration, or a failed recovery): the mapping stays disabled. */
  STUCK_OPEN = 'Circuit Stuck Open',
  /** A keep-alive pass re-sent queued messages before their retention ran out. */
  MESSAGES_KEPT_ALIVE = 'Messages Kept Alive',
  /** Queued messages may expire while the circuit is open (a FIFO queue: not kept alive). */
  MESSAGES_AT_RISK = 'Messages At Risk',
  /**
   * Re-jitter was skipped at run time (a FIFO queue, or `rejitter.minDelay` over a quarter of
   * the queue's retention); the recovery goes on to the ramp.
   */
  REJITTER_SKIPPED = 'Re-jitter Skipped',
}

/**
 * Settings of the error-rate alarm the breaker creates when no `alarm` is given.
 *
 * The alarm evaluates `IF(invocations >= minInvocations, 100 * (errors + FILL(partialFailures, 0))
 * / invocations, 0)` on the consumer's `Errors` and `Invocations` (per `resolution`) and the
 * `PartialFailures` a consumer reporting batch item failures publishes (see the README).
 */
export interface CircuitAlarmSettings {
  /**
   * Which metrics the alarm reads: `AlarmResolution.HIGH`, the telemetry extension's per-second
   * metrics (the construct adds the extension's layer to a consumer function of this app; for any
   * other consumer add `SqsCircuitBreaker.telemetryLayer(...)` to it yourself), or
   * `AlarmResolution.STANDARD`, Lambda's own one-minute metrics (whole-minute periods only).
   *
   * @default - `AlarmResolution.HIGH` when the construct can add the layer (the consumer is a
   *   `lambda.Function` of this app, or an alias or version of one, and not a container image);
   *   `AlarmResolution.STANDARD` otherwise
   */
  readonly resolution?: AlarmResolution;

  /**
   * Error rate, in percent of invocations per period, at or above which a period is breaching.
   * Must be greater than 0 and at most 100.
   *
   * @default 50
   */
  readonly errorRateThresholdPercent?: number;

  /**
   * Invocations a period needs before its error rate counts. Periods with fewer invocations
   * evaluate to 0 % so that the breaker's own probe invocations never hold the alarm in ALARM.
   * A consumer whose downstream hangs fails by timing out and ends at most `concurrency x period /
   * timeout` invocations per period: when the construct knows the concurrency (the mapping's
   * `MaximumConcurrency` or the function's reserved concurrency, for a mapping and a function of
   * this app) and the default is more than that, the default is lowered to it (at least 1; synth
   * says so); a given value above it draws a warning.
   *
   * @default 5, or fewer for a consumer that cannot end 5 timed-out invocations in one period
   */
  readonly minInvocations?: number;

  /**
   * Length of one evaluation period: 10 or 30 seconds (CloudWatch also takes 20, but aws-cdk-lib's `Metric` refuses it) (`resolution` `AlarmResolution.HIGH`
   * only), or a whole number of minutes. Lambda's own metrics (`AlarmResolution.STANDARD`) are
   * per minute, so a shorter period would have no data and is refused.
   *
   * @default - `Duration.seconds(10)` with `AlarmResolution.HIGH` (with the default 2 of 3 periods
   *   the circuit opens 20 to 30 seconds after failures begin); `Duration.minutes(1)` with
   *   `AlarmResolution.STANDARD`
   */
  readonly period?: cdk.Duration;

  /**
   * Number of most recent periods the alarm looks at (the N of "M out of N"). A downstream that
   * hangs shows as timeouts that end one consumer timeout apart per concurrent invocation, so
   * the default window holds two of them when the timeout is known (a function of this app, or
   * `consumerTimeout`).
   *
   * @default 3, or `ceil(consumer timeout / period) + 1` when that is more
   */
  readonly evaluationPeriods?: number;

  /**
   * Number of breaching periods among `evaluationPeriods` that trip the alarm (the M of
   * "M out of N").
   *
   * @default 2
   */
  readonly datapointsToAlarm?: number;
}

/** Exponential backoff between probes (full jitter, capped). */
export interface CircuitBackoffSettings {
  /**
   * Backoff before the first probe (the ceiling of its full-jitter draw).
   *
   * @default Duration.seconds(30)
   */
  readonly initialDelay?: cdk.Duration;

  /**
   * Upper bound of a backoff while the outage is short. It holds until the downstream has been
   * sick for 6 x this (30 minutes at the default), then grows (see `longOutageMaxDelay`). At
   * the default 5 minutes a sick downstream gets one probe every 150.5 s on average (full
   * jitter over 1-300 s): about 24 calls an hour.
   *
   * @default Duration.minutes(5)
   */
  readonly maxDelay?: cdk.Duration;

  /**
   * Upper bound of a backoff once the outage is long. After the downstream has been sick for
   * 6 x `maxDelay` (since the circuit opened, or since a relapse reopened it), the bound grows
   * to a sixth of that time, up to this; a wait above `maxDelay` is drawn from the `maxDelay`
   * below its bound. At the defaults: about 24 probes an hour in the first half hour, then
   * fewer, and from 90 minutes on waits of 10-15 minutes, about 4.8 probes an hour (the
   * 15-minute cap before it probed about 8 an hour). Set it to `maxDelay` to keep probing at
   * `maxDelay` however long the outage.
   *
   * @default - 3 x `maxDelay` (15 minutes), at most a day
   */
  readonly longOutageMaxDelay?: cdk.Duration;

  /**
   * Factor applied to the backoff after each unhealthy probe. Must be at least 1.
   *
   * @default 2
   */
  readonly multiplier?: number;
}

/** How the breaker probes the consumer while the circuit is open. */
export interface CircuitProbeSettings {
  /**
   * Real messages taken from the queue and handed to the consumer per probe (1 to 10).
   *
   * @default 1
   */
  readonly messageCount?: number;

  /**
   * Visibility timeout the probed messages get while the consumer works on them. Must exceed the
   * consumer's timeout plus 15 seconds (the longest the probe's invoke may last); at most 12 hours.
   *
   * @default Duration.seconds(960)
   */
  readonly visibilityTimeout?: cdk.Duration;
}

/** Re-jitter: spreading the queued backlog over a delay window before the consumer resumes. */
export interface CircuitRejitterSettings {
  /**
   * Whether to re-jitter the backlog. Must be `false` for FIFO queues (SQS refuses per-message
   * delays there, and re-ordering would break message groups). When the queue's type is unknown
   * at synth (an imported queue whose ARN is a token), a FIFO queue is found at run time: the
   * recovery skips re-jitter, emits "Re-jitter Skipped" and goes on to the ramp.
   *
   * @default - true for standard queues (and queues whose type is unknown at synth), false for
   *   FIFO queues
   */
  readonly enabled?: boolean;

  /**
   * Shortest delay a re-jittered message gets.
   *
   * @default Duration.seconds(0)
   */
  readonly minDelay?: cdk.Duration;

  /**
   * Longest delay a re-jittered message gets; SQS allows at most 15 minutes.
   *
   * @default Duration.minutes(5)
   */
  readonly maxDelay?: cdk.Duration;

  /**
   * Re-jitter workers running in parallel (1 to 40: a Step Functions inline Map runs at most 40
   * iterations at once).
   *
   * @default 4
   */
  readonly workers?: number;

  /**
   * Time budget of one re-jitter invocation; a worker is invoked again until the backlog is
   * drained. At most 14 minutes (the function's timeout adds one minute of margin).
   *
   * @default Duration.minutes(1)
   */
  readonly sliceDuration?: cdk.Duration;

  /**
   * Memory of the re-jitter function (whole MiB, 128 MiB to 10,240 MiB). SQS messages may be
   * 1 MiB and a receive returns up to 10: the function sizes its lanes from this memory so that
   * it stays under 80 % of it, receiving fewer messages at a time when the memory is small. At
   * the default, 8 lanes receive 10 messages each even if every message is 1 MiB; at 128 MiB
   * they receive one at a time. Lambda bills it by the GB-second: a 1-minute slice costs
   * 0.5 GB × 60 s = 30 GB-s per worker at the default (120 GB-s for 4 workers), 7.5 GB-s at 128 MiB.
   *
   * @default Size.mebibytes(512)
   */
  readonly memorySize?: cdk.Size;
}

/** The half-open ramp: how the consumer's concurrency is raised again after recovery. */
export interface CircuitRampSettings {
  /**
   * `MaximumConcurrency` of the event-source mapping on the first ramp step (2 to 1000). A
   * mapping in provisioned mode (`ProvisionedPollerConfig`), which AWS does not let take a
   * `MaximumConcurrency`, is ramped through its `MaximumPollers` instead, starting at this many
   * invocations in pollers (a poller runs up to 10 at once; at least 2).
   *
   * @default 2
   */
  readonly startConcurrency?: number;

  /**
   * Number of ramp steps before the original scaling configuration is restored (at least 1).
   *
   * @default 3
   */
  readonly steps?: number;

  /**
   * Time between two ramp steps; health is checked over this interval.
   *
   * @default Duration.minutes(1)
   */
  readonly stepInterval?: cdk.Duration;

  /**
   * Error rate, in percent, during a ramp step at or above which the circuit opens again; a
   * lower rate steps back one level instead. Must be greater than 0 and at most 100.
   *
   * @default 20
   */
  readonly relapseErrorRatePercent?: number;
}

/**
 * The breaker's CloudWatch dashboard (`dashboard`): circuit state, the consumer's error rate
 * against the alarm threshold, queue and DLQ depth, age of the oldest message, the breaker's
 * events, recoveries started and failed, and the state of its alarms.
 */
export interface CircuitDashboardOptions {
  /**
   * Name of the dashboard: 1 to 255 letters, digits, `-` or `_`. Dashboard names are unique per
   * account across all regions.
   *
   * @default - a name CloudFormation generates
   */
  readonly dashboardName?: string;

  /**
   * Period of the graphs, a whole number of minutes (the queue's, the state machine's and the
   * breaker's own metrics are per minute). The error-rate graph keeps the alarm's period, so that
   * it shows what the alarm sees (10 s with `AlarmResolution.HIGH`).
   *
   * @default Duration.minutes(1)
   */
  readonly period?: cdk.Duration;
}

/** Options of `SqsCircuitBreaker.widgets()`, the breaker's widgets for a dashboard of your own. */
export interface CircuitWidgetOptions {
  /**
   * Period of the graphs, a whole number of minutes (see `CircuitDashboardOptions.period`).
   *
   * @default Duration.minutes(1)
   */
  readonly period?: cdk.Duration;
}

/** Properties of {@link SqsCircuitBreaker}. */
export interface SqsCircuitBreakerProps {
  /**
   * The Lambda function consuming the queue (the breaker probes it and watches its metrics): the
   * function, or the alias or version the mapping invokes (`lambda.Alias`, `lambda.Version`, an
   * imported alias, or a function imported by a qualified ARN), whose metrics are read under
   * `FunctionName=<fn>, Resource=<fn>:<qualifier>`, as Lambda publishes them.
   */
  readonly consumer: lambda.IFunction;

  /**
   * The consumer's timeout, for a consumer imported into this app (whose timeout the breaker
   * cannot read). The probe's invoke of the consumer gives up this long plus 15 seconds after it
   * starts, and the timeout must fit in the probe function: at most 795 seconds (900 minus the
   * probe's receive, the invoke's margin and settling the messages). For a function defined in
   * this app (or an alias or version of one) leave it unset: its own timeout is used, and a
   * different value is an error.
   *
   * @default - the consumer function's own timeout; for an imported consumer, 795 seconds (the
   * longest that fits), with a synth warning
   */
  readonly consumerTimeout?: cdk.Duration;

  /** The queue the consumer reads through its event-source mapping. */
  readonly queue: sqs.IQueue;

  /**
   * The customer-managed KMS key `queue` is encrypted with, when the queue is imported without it
   * (`Queue.fromQueueAttributes` with no `keyArn`): the probe and re-jitter functions get
   * `kms:Decrypt` and `kms:GenerateDataKey` on it to receive and send. Leave it unset for a queue
   * defined in this app or imported with its `keyArn` (the queue's own grants cover its key; a
   * second key is an error), and for unencrypted or SQS-managed (SSE-SQS) queues.
   *
   * @default - the queue's own key when CDK knows it; none otherwise (a synth warning for an
   * imported queue)
   */
  readonly queueEncryptionKey?: kms.IKey;

  /**
   * The consumer's event-source mapping for `queue`. Give either this or `eventSourceMappingId`.
   *
   * @default - `eventSourceMappingId` is used
   */
  readonly eventSourceMapping?: lambda.IEventSourceMapping;

  /**
   * UUID of the consumer's event-source mapping for `queue`, e.g. `SqsEventSource.eventSourceMappingId`.
   * Give either this or `eventSourceMapping`.
   *
   * @default - `eventSourceMapping` is used
   */
  readonly eventSourceMappingId?: string;

  /**
   * Name of this circuit in its events, metrics and logs (letters, digits, `.`, `_`, `-`;
   * at most 64 characters).
   *
   * @default - a name unique in the app, derived from the construct path
   */
  readonly circuitName?: string;

  /**
   * An existing alarm whose transition to ALARM opens the circuit. It must return to OK by itself
   * when the consumer is healthy; the breaker resets it to OK when it closes the circuit. Cannot be
   * combined with `alarmSettings`.
   *
   * @default - an error-rate alarm is created from `alarmSettings`
   */
  readonly alarm?: cloudwatch.IAlarm;

  /**
   * Settings of the error-rate alarm the breaker creates. Cannot be combined with `alarm`.
   *
   * @default - the defaults of each {@link CircuitAlarmSettings} field
   */
  readonly alarmSettings?: CircuitAlarmSettings;

  /**
   * Create the recovery alarm (`recoveryAlarm`): ALARM when, within a minute, the circuit was
   * reported stuck open (the breaker's `StuckOpens` metric: the mapping is left disabled) or a
   * recovery execution failed, timed out or was aborted. Its actions are yours to add
   * (`breaker.recoveryAlarm.addAlarmAction(...)`), so that a consumer left disabled is never
   * silent even without `notificationTopic`.
   *
   * @default true
   */
  readonly recoveryAlarm?: boolean;

  /**
   * Backoff between probes.
   *
   * @default - the defaults of each {@link CircuitBackoffSettings} field
   */
  readonly backoff?: CircuitBackoffSettings;

  /**
   * Probing.
   *
   * @default - the defaults of each {@link CircuitProbeSettings} field
   */
  readonly probe?: CircuitProbeSettings;

  /**
   * Re-jitter of the backlog.
   *
   * @default - the defaults of each {@link CircuitRejitterSettings} field
   */
  readonly rejitter?: CircuitRejitterSettings;

  /**
   * The half-open ramp.
   *
   * @default - the defaults of each {@link CircuitRampSettings} field
   */
  readonly ramp?: CircuitRampSettings;

  /**
   * Longest time the circuit may stay open. When it is reached the breaker emits
   * "Circuit Stuck Open", leaves the event-source mapping disabled and stops.
   *
   * @default - no limit: keep probing (capped backoff) for as long as the queue retains messages
   */
  readonly maxOpenDuration?: cdk.Duration;

  /**
   * History events one recovery execution may use before it continues as a new execution (3,000
   * to 20,000). Every path counts (probes, re-jitter slices, ramp steps, relapses, retries, at
   * their worst case), so no execution nears Step Functions' limit of 25,000 events. A re-jitter
   * pass gets the slices that fit; what it does not reach stays in the queue, unspread.
   *
   * @default 10000
   */
  readonly historyEventBudget?: number;

  /**
   * Replaced by `historyEventBudget`; setting it fails synthesis with a message saying so.
   *
   * @deprecated use `historyEventBudget`
   * @default - not used
   */
  readonly maxIterationsPerExecution?: number;

  /**
   * Topic notified of the circuit's transitions (`notificationEvents`) and of recovery executions
   * that fail, time out or are aborted, each as a readable text message: a one-line summary
   * (e-mail subscribers see no subject line of ours: EventBridge's SNS target sets none), what it
   * means and what to do, then the circuit, queue, mapping, attempt, open time and event time.
   *
   * @default - no notifications
   */
  readonly notificationTopic?: sns.ITopic;

  /**
   * Which of the breaker's events `notificationTopic` receives (one EventBridge rule each).
   * Needs `notificationTopic`; each event at most once. An empty list leaves only the
   * failed-execution notifications.
   *
   * @default - [CircuitEvent.OPENED, CircuitEvent.HALF_OPEN, CircuitEvent.CLOSED,
   *   CircuitEvent.STUCK_OPEN, CircuitEvent.MESSAGES_AT_RISK]
   */
  readonly notificationEvents?: CircuitEvent[];

  /**
   * Create a CloudWatch dashboard for this circuit (`dashboard`); `widgets()` returns the same
   * widgets for a dashboard of your own. The DLQ's depth is graphed when the construct knows the
   * DLQ: `queue` is a `sqs.Queue` of this app with a `deadLetterQueue`; for an imported queue
   * there is no DLQ graph.
   *
   * @default - no dashboard
   */
  readonly dashboard?: CircuitDashboardOptions;

  /**
   * Bus the breaker puts its events on (source `sqs-circuit-breaker`).
   *
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * Memory of the breaker's Lambda functions, in MiB (128 to 10240), except the re-jitter
   * function's (`rejitter.memorySize`).
   *
   * @default 128
   */
  readonly lambdaMemorySize?: number;

  /**
   * Architecture of the breaker's Lambda functions. The binary shipped in this package is arm64;
   * any other architecture needs `lambdaCode` built for it.
   *
   * @default Architecture.ARM_64
   */
  readonly lambdaArchitecture?: lambda.Architecture;

  /**
   * Code of the breaker's Lambda functions: a folder holding a `bootstrap` binary of
   * `breaker-handlers` built for `lambdaArchitecture`.
   *
   * @default - the arm64 `bootstrap` shipped in this package
   */
  readonly lambdaCode?: lambda.Code;

  /**
   * Retention of the log groups of the state machine and of the breaker's functions.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * The lowest level of the lines the breaker's functions log (Lambda's `ApplicationLogLevel`:
   * lines below it are dropped). Their log format is JSON: each line names the circuit, the
   * handler and the state machine execution.
   *
   * @default ApplicationLogLevel.INFO
   */
  readonly logLevel?: lambda.ApplicationLogLevel;
}
