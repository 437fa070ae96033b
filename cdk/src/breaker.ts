import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { bootstrapAssetPath, extensionAssetPath } from './assets';
import { addCliDescriptor } from './descriptor';
import { consumerFunction, PROBE_BUDGET, ResolvedConfig, resolveConfig } from './config';
import { ConsumerIdentity, consumerIdentity, consumerMetric, consumerMetricPeriodSeconds, telemetryMetric } from './consumer';
import { circuitWidgets, CircuitWidgetSource, createDashboard, deadLetterQueueOf } from './dashboard';
import metricsTable from './metrics.json';
import { createNotifications } from './notifications';
import { AlarmResolution, CircuitWidgetOptions, SqsCircuitBreakerProps } from './props';
import { buildWorkflow, CircuitBreakerFunctions, METRIC_NAMESPACE, PUT_METRIC_STATEMENT } from './workflow';

/** Per-handler settings: handler name, construct id, timeout. */
const HANDLERS: ReadonlyArray<{ key: keyof CircuitBreakerFunctions; handler: string; id: string; timeout: (c: ResolvedConfig) => number; why: string }> = [
  { key: 'open', handler: 'open', id: 'OpenFunction', timeout: () => 300, why: 'waits until the mapping is Disabled' },
  { key: 'backoff', handler: 'backoff', id: 'BackoffFunction', timeout: () => 60, why: 'pure computation, one queue read, at most one event' },
  { key: 'probe', handler: 'probe', id: 'ProbeFunction', timeout: () => PROBE_BUDGET.functionSeconds, why: 'receives, invokes the consumer synchronously (its timeout, at most 795 s, plus 15 s), settles' },
  { key: 'rejitterPlan', handler: 'rejitter-plan', id: 'RejitterPlanFunction', timeout: () => 60, why: 'reads queue attributes' },
  { key: 'rejitter', handler: 'rejitter', id: 'RejitterFunction', timeout: (c) => (cdk.Token.isUnresolved(c.rejitterSliceSeconds) ? 900 : c.rejitterSliceSeconds + 60), why: 'one slice plus one minute of margin' },
  { key: 'ramp', handler: 'ramp', id: 'RampFunction', timeout: () => 300, why: 'waits until the mapping is Enabled' },
  { key: 'close', handler: 'close', id: 'CloseFunction', timeout: () => 300, why: 'waits until the mapping is Enabled' },
  { key: 'stuck', handler: 'stuck', id: 'StuckFunction', timeout: () => 60, why: 'reads the mapping and puts one event' },
];

/**
 * A circuit breaker for an SQS-triggered Lambda consumer.
 *
 * An error-rate alarm on the consumer (or your own alarm) going to ALARM starts a Step Functions
 * recovery: disable the event-source mapping, back off, probe real messages, re-jitter the backlog,
 * re-enable the mapping gradually, close. See the package README for the full picture.
 */
export class SqsCircuitBreaker extends Construct {
  /** Source of the events the breaker's handlers put on the bus. */
  public static readonly EVENT_SOURCE = 'sqs-circuit-breaker';

  /** Namespace of the metrics the breaker publishes (see `metricOpenSeconds`, `metricOpens` and the others). */
  public static readonly METRIC_NAMESPACE = METRIC_NAMESPACE;

  /**
   * Folder holding the prebuilt arm64 `bootstrap` binary shipped in this package; pass it to
   * `lambda.Code.fromAsset` when overriding `lambdaCode` with a build of your own layout.
   */
  public static bootstrapAssetPath(): string {
    return bootstrapAssetPath();
  }

  /**
   * The telemetry extension as a Lambda layer for consumers of `architecture`, one per stack and
   * architecture (created in `scope`'s stack on first use). With `AlarmResolution.HIGH` the
   * construct adds it to a consumer function of this app; add it yourself to any other consumer,
   * in the stack that defines it: `fn.addLayers(SqsCircuitBreaker.telemetryLayer(this,
   * fn.architecture))`. The extension needs no permission beyond the function's own logs (it
   * writes its metrics to stdout, in the embedded metric format).
   *
   * @param scope any construct of the consumer's stack
   * @param architecture the consumer's architecture (default `Architecture.ARM_64`)
   */
  public static telemetryLayer(scope: Construct, architecture?: lambda.Architecture): lambda.ILayerVersion {
    const arch = architecture ?? lambda.Architecture.ARM_64;
    const stack = cdk.Stack.of(scope);
    const id = `SqsCircuitBreakerTelemetryLayer-${arch.name}`;
    const existing = stack.node.tryFindChild(id);
    if (existing !== undefined) return existing as lambda.LayerVersion;
    return new lambda.LayerVersion(stack, id, {
      code: lambda.Code.fromAsset(extensionAssetPath(arch.name)),
      compatibleArchitectures: [arch],
      description: `sqs-circuit-breaker telemetry extension (${arch.name}): per-second Invocations/Errors/Timeouts of the function, as EMF on stdout`,
      license: 'Apache-2.0',
    });
  }

  /** The recovery state machine (Standard workflow). */
  public readonly stateMachine: sfn.StateMachine;
  /** The alarm that opens the circuit (created or given). */
  public readonly alarm: cloudwatch.IAlarm;
  /** Which metrics the alarm and the ramp's relapse check read (`STANDARD` with a given `alarm`). */
  public readonly alarmResolution: AlarmResolution;
  /**
   * With `AlarmResolution.HIGH`: the telemetry extension's layer for the consumer's architecture,
   * added to the consumer when it is a function of this app (else add it yourself); `undefined`
   * with `AlarmResolution.STANDARD`.
   * (Named `consumerTelemetryLayer` because jsii forbids an instance member named like the static
   * `telemetryLayer()`.)
   */
  public readonly consumerTelemetryLayer?: lambda.ILayerVersion;
  /**
   * ALARM when the circuit was reported stuck open or a recovery failed, timed out or was aborted
   * (see `recoveryAlarm` in the props); `undefined` when that prop is `false`. Add your actions:
   * `breaker.recoveryAlarm?.addAlarmAction(new SnsAction(topic))`.
   */
  public readonly recoveryAlarm?: cloudwatch.Alarm;
  /** The EventBridge rule that starts a recovery when the alarm goes to ALARM. */
  public readonly rule: events.Rule;
  /** The breaker's Lambda functions. */
  public readonly functions: CircuitBreakerFunctions;
  /** The circuit's name in events, metrics and logs. */
  public readonly circuitName: string;
  /** The state machine's log group (level ALL, execution data included). */
  public readonly logGroup: logs.ILogGroup;
  /**
   * The durable circuit record (one item per circuit, key `circuit`): the recovery's owner
   * (single flight), phase, the mapping's configuration from before the outage and a pending
   * re-trip, written only with conditional writes. `breaker status/open/close` read it too.
   */
  public readonly table: dynamodb.ITable;
  /** The circuit's CloudWatch dashboard (see the `dashboard` prop); `undefined` without that prop. */
  public readonly dashboard?: cloudwatch.Dashboard;
  private readonly stateMachineNameForNag: string;
  /** The queue (and its DLQ, when known) that `widgets()` graphs. */
  private readonly widgetSource: CircuitWidgetSource;

  constructor(scope: Construct, id: string, props: SqsCircuitBreakerProps) {
    super(scope, id);
    const config = resolveConfig(this.node.path, props);
    const stack = cdk.Stack.of(this);
    if (config.consumerTimeoutAssumed) {
      cdk.Annotations.of(this).addWarningV2('sqs-circuit-breaker:consumerTimeout',
        `The consumer's timeout is unknown (an imported function): the probe assumes ${config.consumerTimeoutSeconds} seconds, the longest that fits in the probe function. `
        + 'If the consumer\'s timeout is shorter, pass consumerTimeout so that a hung invoke is given up sooner.');
    }

    const slow = config.slowConsumer;
    if (slow !== undefined) {
      const limit = `a consumer that times out (its downstream hangs) ends at most ${slow.reachable} invocation${slow.reachable === 1 ? '' : 's'} per ${slow.periodSeconds}-second alarm period `
        + `(concurrency ${slow.concurrency} x ${slow.periodSeconds} s / timeout ${slow.timeoutSeconds} s, at least 1)`;
      if (slow.given) {
        cdk.Annotations.of(this).addWarningV2('sqs-circuit-breaker:minInvocations',
          `alarmSettings.minInvocations is ${slow.minInvocations}, but ${limit}: such periods count as 0 % and a hanging downstream never opens the circuit. `
          + `Lower alarmSettings.minInvocations to at most ${slow.reachable}, or lengthen alarmSettings.period.`);
      } else {
        cdk.Annotations.of(this).addInfo(`sqs-circuit-breaker: alarmSettings.minInvocations defaults to ${slow.reachable}, not ${slow.minInvocations}: ${limit}. `
          + 'Set alarmSettings.minInvocations to choose another value.');
      }
    }

    if (props.queueEncryptionKey === undefined && props.queue.encryptionMasterKey === undefined && !(props.queue instanceof sqs.Queue)) {
      cdk.Annotations.of(this).addWarningV2('sqs-circuit-breaker:queueEncryptionKey',
        'The queue is imported without its KMS key. If it is encrypted with a customer-managed key, pass queueEncryptionKey '
        + '(or import it with Queue.fromQueueAttributes({ keyArn })): without key permissions the probe and re-jitter cannot receive or send, '
        + 'and the first recovery ends stuck open. Unencrypted and SQS-managed (SSE-SQS) queues need nothing.');
    }

    this.circuitName = props.circuitName ?? cdk.Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    const esmId = props.eventSourceMapping?.eventSourceMappingId ?? props.eventSourceMappingId!;
    const esmArn = props.eventSourceMapping?.eventSourceMappingArn
      ?? stack.formatArn({ service: 'lambda', resource: 'event-source-mapping', resourceName: esmId, arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME });
    const bus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    // The state machine's name and ARN are fixed up front: the functions' roles (ListExecutions)
    // and the workflow's continue-as-new step refer to it without a dependency cycle.
    const stateMachineName = cdk.Names.uniqueResourceName(this, { maxLength: 80, separator: '-' });
    this.stateMachineNameForNag = stateMachineName;
    const stateMachineArn = stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME });

    const consumer = consumerIdentity(props.consumer);
    this.alarmResolution = config.alarmResolution;
    this.consumerTelemetryLayer = this.addTelemetryLayer(props, config);
    this.alarm = props.alarm ?? this.createAlarm(props, config, consumer);

    // ── the durable circuit record ─────────────────────────────────────────────────────────
    const table = new dynamodb.Table(this, 'CircuitTable', {
      partitionKey: { name: 'circuit', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Only recovery bookkeeping lives here; it goes with the breaker.
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    this.table = table;

    // ── Lambda functions ─────────────────────────────────────────────────────────────────────
    const environment: Record<string, string> = {
      CIRCUIT_NAME: this.circuitName,
      ESM_UUID: esmId,
      QUEUE_URL: props.queue.queueUrl,
      QUEUE_ARN: props.queue.queueArn,
      CONSUMER_FUNCTION_NAME: consumer.invokeName,
      CONSUMER_METRIC_PERIOD_SECONDS: String(consumerMetricPeriodSeconds(props.alarm !== undefined, config.alarmPeriodSeconds)),
      CONSUMER_METRIC_RESOLUTION: config.alarmResolution,
      ALARM_NAME: this.alarm.alarmName,
      EVENT_BUS_NAME: bus.eventBusName,
      CIRCUIT_TABLE_NAME: table.tableName,
      BACKOFF_INITIAL_SECONDS: String(config.backoffInitialSeconds),
      BACKOFF_MAX_SECONDS: String(config.backoffMaxSeconds),
      BACKOFF_MULTIPLIER: String(config.backoffMultiplier),
      PROBE_COUNT: String(config.probeCount),
      PROBE_VISIBILITY_SECONDS: String(config.probeVisibilitySeconds),
      CONSUMER_TIMEOUT_SECONDS: String(config.consumerTimeoutSeconds),
      RAMP_START: String(config.rampStart),
      RAMP_STEPS: String(config.rampSteps),
      RAMP_INTERVAL_SECONDS: String(config.rampIntervalSeconds),
      RELAPSE_ERROR_RATE_PERCENT: String(config.relapseErrorRatePercent),
      REJITTER_ENABLED: String(config.rejitterEnabled),
      REJITTER_MIN_SECONDS: String(config.rejitterMinSeconds),
      REJITTER_MAX_SECONDS: String(config.rejitterMaxSeconds),
      REJITTER_WORKERS: String(config.rejitterWorkers),
      REJITTER_SLICE_SECONDS: String(config.rejitterSliceSeconds),
      HISTORY_EVENT_BUDGET: String(config.historyEventBudget),
    };
    if (config.maxOpenSeconds !== undefined) environment.MAX_OPEN_SECONDS = String(config.maxOpenSeconds);

    const code = props.lambdaCode ?? lambda.Code.fromAsset(bootstrapAssetPath());
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const made: Partial<Record<keyof CircuitBreakerFunctions, lambda.Function>> = {};
    for (const h of HANDLERS) {
      const logGroup = new logs.LogGroup(this, `${h.id}Logs`, { retention, removalPolicy: cdk.RemovalPolicy.DESTROY });
      const role = new iam.Role(this, `${h.id}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `sqs-circuit-breaker ${h.handler} handler of ${this.node.path}`,
      });
      role.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }));
      made[h.key] = new lambda.Function(this, h.id, {
        description: `sqs-circuit-breaker ${h.handler} handler (${h.why})`,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: props.lambdaArchitecture ?? lambda.Architecture.ARM_64,
        handler: h.handler,
        code,
        // Re-jitter holds messages of up to 1 MiB (rejitter.memorySize); the others hold a few.
        memorySize: h.key === 'rejitter' ? config.rejitterMemoryMiB : config.lambdaMemorySize,
        timeout: cdk.Duration.seconds(h.timeout(config)),
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        environment,
      });
    }
    const fns = made as Record<keyof CircuitBreakerFunctions, lambda.Function>;
    this.functions = fns;

    // ── least-privilege permissions, per handler ───────────────────────────────────────────
    const esmRead = new iam.PolicyStatement({ actions: ['lambda:GetEventSourceMapping'], resources: [esmArn] });
    const esmWrite = new iam.PolicyStatement({ actions: ['lambda:GetEventSourceMapping', 'lambda:UpdateEventSourceMapping'], resources: [esmArn] });
    for (const fn of [fns.open, fns.ramp, fns.close]) fn.addToRolePolicy(esmWrite);
    fns.stuck.addToRolePolicy(esmRead);
    // Probe: the mapping's FilterCriteria, so the consumer gets only what the mapping delivers.
    fns.probe.addToRolePolicy(esmRead);
    fns.backoff.addToRolePolicy(esmRead);
    // Keep-alive: the backoff step reads the queue's retention (and depth, for its event).
    fns.backoff.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:GetQueueAttributes'], resources: [props.queue.queueArn] }));
    // Single flight: the record (a consistent read and a conditional whole-item write), and
    // whether its owner still runs (DescribeExecution on this state machine's executions only).
    for (const fn of [fns.open, fns.ramp, fns.close, fns.stuck]) table.grant(fn, 'dynamodb:GetItem', 'dynamodb:PutItem');
    fns.open.addToRolePolicy(new iam.PolicyStatement({
      actions: ['states:DescribeExecution'],
      resources: [stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName}:*`, arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME })],
    }));
    // rejitter-plan: "Re-jitter Skipped" on a FIFO queue the construct could not see at synth.
    for (const fn of [fns.open, fns.backoff, fns.probe, fns.rejitterPlan, fns.ramp, fns.close, fns.stuck]) bus.grantPutEventsTo(fn);
    // Probe: receive, release, re-send fresh near maxReceiveCount, delete after success.
    props.queue.grantConsumeMessages(fns.probe);
    props.queue.grantSendMessages(fns.probe);
    // Exactly the consumer's ARN (an alias ARN when the consumer is an alias), no version wildcard.
    fns.probe.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.consumer.functionArn] }));
    // Re-jitter: size the backlog; move messages (send the copy, then delete the original).
    fns.rejitterPlan.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:GetQueueAttributes'], resources: [props.queue.queueArn] }));
    props.queue.grantConsumeMessages(fns.rejitter);
    props.queue.grantSendMessages(fns.rejitter);
    // A customer-managed key CDK does not know (an imported queue): receive decrypts, send asks
    // for a data key. The queue's own grants above cover a key CDK knows.
    if (props.queueEncryptionKey !== undefined && props.queue.encryptionMasterKey === undefined) {
      for (const fn of [fns.probe, fns.rejitter]) props.queueEncryptionKey.grant(fn, 'kms:Decrypt', 'kms:GenerateDataKey');
    }
    // Ramp: health between steps from the consumer's metrics (GetMetricData has no resource scope).
    fns.ramp.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:GetMetricData'], resources: ['*'] }));
    // Close: reset the alarm to OK so that a renewed failure trips it again.
    fns.close.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:SetAlarmState', 'cloudwatch:DescribeAlarms'], resources: [this.alarm.alarmArn] }));

    // ── state machine ──────────────────────────────────────────────────────────────────────
    this.logGroup = new logs.LogGroup(this, 'StateMachineLogs', {
      logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
      retention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const self = sfn.StateMachine.fromStateMachineArn(this, 'Self', stateMachineArn);
    const definition = buildWorkflow(this, { functions: fns, self, circuitName: this.circuitName, rejitterWorkers: config.rejitterWorkers });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      comment: `sqs-circuit-breaker recovery of circuit ${this.circuitName}`,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    this.stateMachine.addToRolePolicy(PUT_METRIC_STATEMENT());

    // ── trigger ────────────────────────────────────────────────────────────────────────────
    this.rule = new events.Rule(this, 'AlarmRule', {
      description: `opens circuit ${this.circuitName} when its alarm goes to ALARM`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: { alarmName: [this.alarm.alarmName], state: { value: ['ALARM'] } },
      },
      targets: [new targets.SfnStateMachine(this.stateMachine)],
    });

    // ── notifications ──────────────────────────────────────────────────────────────────────
    if (props.notificationTopic) {
      createNotifications(this, {
        topic: props.notificationTopic,
        events: config.notificationEvents,
        circuitName: this.circuitName,
        eventSource: SqsCircuitBreaker.EVENT_SOURCE,
        eventBus: props.eventBus,
        stateMachineArn,
      });
    }

    if (props.recoveryAlarm ?? true) this.recoveryAlarm = this.createRecoveryAlarm();

    this.widgetSource = { queue: props.queue, deadLetterQueue: deadLetterQueueOf(props.queue) };
    if (props.dashboard !== undefined) this.dashboard = createDashboard(this, this, this.widgetSource, props.dashboard);

    // ── what the breaker CLI reads (README, "Operating it with the CLI") ────────────────────
    addCliDescriptor(this, {
      circuitName: this.circuitName, queue: props.queue, eventSourceMappingUuid: esmId, consumerFunctionName: consumer.functionName,
      alarmName: this.alarm.alarmName, stateMachineArn, circuitTableName: table.tableName,
    });

    this.acknowledgeNagFindings();
  }

  /**
   * The circuit's CloudWatch widgets, for a dashboard of your own
   * (`dashboard.addWidgets(...breaker.widgets())`): the widgets of the `dashboard` prop's
   * dashboard, in rows of the full width. They graph the circuit state, the consumer's error rate
   * against the alarm threshold (in the alarm's period: 10 s with `AlarmResolution.HIGH`), the
   * queue's depth and age of its oldest message, the DLQ's depth when the construct knows the DLQ
   * (`queue` is a `sqs.Queue` of this app with a `deadLetterQueue`; none for an imported queue),
   * the breaker's events, the recoveries started and failed, and the state of the alarm and of the
   * recovery alarm. Each call builds new widgets.
   *
   * @param options the graphs' period (whole minutes; default one minute)
   */
  public widgets(options?: CircuitWidgetOptions): cloudwatch.IWidget[] {
    return circuitWidgets(this, this.widgetSource, options?.period, 'widgets() period');
  }

  /**
   * Times the circuit opened (event "Circuit Opened": the first open of an outage, and a relapse
   * during the ramp), from the handlers' metric lines.
   *
   * @default - sum over 5 minutes
   */
  public metricOpens(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('Circuit Opened', props);
  }

  /**
   * Probes that found the consumer still unhealthy (event "Probe Failed").
   *
   * @default - sum over 5 minutes
   */
  public metricProbesFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('Probe Failed', props);
  }

  /**
   * Times the mapping was re-enabled at the first ramp level (event "Circuit Half-Open").
   *
   * @default - sum over 5 minutes
   */
  public metricHalfOpens(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('Circuit Half-Open', props);
  }

  /**
   * Times the circuit closed: the mapping's own scaling restored (event "Circuit Closed").
   *
   * @default - sum over 5 minutes
   */
  public metricCloses(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('Circuit Closed', props);
  }

  /**
   * Times the circuit was reported stuck open: the recovery gave up (maximum open duration, or a
   * failed step) and the mapping is left as the event "Circuit Stuck Open" says. The recovery
   * alarm watches it.
   *
   * @default - sum over 5 minutes
   */
  public metricStuckOpens(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('Circuit Stuck Open', props);
  }

  /**
   * The state the circuit last entered, as a number: 0 closed, 1 half-open, 2 open, 3 stuck open
   * (one datapoint per transition; between transitions the state holds).
   *
   * @default - maximum over 5 minutes
   */
  public metricCircuitState(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.breakerMetric(metricsTable.stateMetric, cloudwatch.Stats.MAXIMUM, cloudwatch.Unit.NONE, props);
  }

  /** The count metric of one breaker event (`metrics.json`). */
  private eventMetric(detailType: keyof typeof metricsTable.events, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.breakerMetric(metricsTable.events[detailType].metric, cloudwatch.Stats.SUM, cloudwatch.Unit.COUNT, props);
  }

  private breakerMetric(metricName: string, statistic: string, unit: cloudwatch.Unit, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: SqsCircuitBreaker.METRIC_NAMESPACE,
      metricName,
      dimensionsMap: { [metricsTable.dimension]: this.circuitName },
      statistic,
      unit,
      ...props,
    });
  }

  /**
   * The recovery alarm: any stuck-open report or failed, timed-out or aborted execution within a
   * minute. Missing data is not breaching: with nothing to report the alarm is OK.
   */
  private createRecoveryAlarm(): cloudwatch.Alarm {
    const period = cdk.Duration.minutes(1);
    const sum = { period, statistic: cloudwatch.Stats.SUM };
    return new cloudwatch.Alarm(this, 'RecoveryAlarm', {
      alarmDescription: `sqs-circuit-breaker: circuit ${this.circuitName} was reported stuck open or a recovery failed, timed out or was aborted; `
        + 'the consumer\'s event-source mapping may be left disabled (see the "Circuit Stuck Open" event and `breaker status`)',
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(stuck, 0) + FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)',
        usingMetrics: {
          stuck: this.metricStuckOpens(sum),
          failed: this.stateMachine.metricFailed(sum),
          timedOut: this.stateMachine.metricTimedOut(sum),
          aborted: this.stateMachine.metricAborted(sum),
        },
        period,
        label: 'stuck-open reports and failed recoveries',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * How long the circuit stayed open, in seconds: one datapoint per closed circuit, published by
   * the state machine after "Close Circuit" (namespace `SqsCircuitBreaker`, dimension `Circuit`).
   *
   * @default - maximum over 5 minutes
   */
  public metricOpenSeconds(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: SqsCircuitBreaker.METRIC_NAMESPACE,
      metricName: 'OpenSeconds',
      dimensionsMap: { Circuit: this.circuitName },
      statistic: cloudwatch.Stats.MAXIMUM,
      unit: cloudwatch.Unit.SECONDS,
      ...props,
    });
  }

  /**
   * Recoveries started (the state machine's `ExecutionsStarted`); continuations of a long outage
   * count as well.
   *
   * @default - sum over 5 minutes
   */
  public metricRecoveriesStarted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stateMachine.metricStarted({ statistic: cloudwatch.Stats.SUM, ...props });
  }

  /**
   * Recoveries that failed (the state machine's `ExecutionsFailed`): a step failed and the circuit
   * was reported stuck open, or even that report failed. Worth an alarm.
   *
   * @default - sum over 5 minutes
   */
  public metricRecoveriesFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stateMachine.metricFailed({ statistic: cloudwatch.Stats.SUM, ...props });
  }

  /**
   * With `AlarmResolution.HIGH`: the telemetry layer for the consumer's architecture, added to the
   * consumer function when the construct can; a warning when the user must add it.
   */
  private addTelemetryLayer(props: SqsCircuitBreakerProps, c: ResolvedConfig): lambda.ILayerVersion | undefined {
    if (c.alarmResolution !== AlarmResolution.HIGH) return undefined;
    const target = c.telemetryLayerTarget;
    const architecture = (target ?? consumerFunction(props.consumer))?.architecture ?? props.consumer.architecture;
    const layer = SqsCircuitBreaker.telemetryLayer(target ?? this, architecture);
    if (target !== undefined) {
      target.addLayers(layer);
    } else {
      cdk.Annotations.of(this).addWarningV2('sqs-circuit-breaker:telemetryLayer',
        'alarmSettings.resolution is AlarmResolution.HIGH but the construct cannot add the telemetry layer to this consumer (an imported function or a container image): '
        + 'add it where the function is defined, fn.addLayers(SqsCircuitBreaker.telemetryLayer(this, fn.architecture)) (a container image copies the extension to /opt/extensions/ instead). '
        + 'Without it the alarm has no data and never opens the circuit.');
    }
    return layer;
  }

  private createAlarm(props: SqsCircuitBreakerProps, c: ResolvedConfig, consumer: ConsumerIdentity): cloudwatch.Alarm {
    const period = cdk.Duration.seconds(c.alarmPeriodSeconds);
    const options = { period, statistic: cloudwatch.Stats.SUM };
    const high = c.alarmResolution === AlarmResolution.HIGH;
    const errorRate = new cloudwatch.MathExpression({
      // Periods with fewer than minInvocations invocations count as 0 %: the breaker's own probes
      // (1 to 10 invocations) can never hold the alarm in ALARM. An invocation that reported
      // failed items (ReportBatchItemFailures) is no Lambda error: the consumer's PartialFailures
      // line counts it (FILL: a consumer that never reports any publishes no such metric).
      expression: `IF(invocations >= ${c.minInvocations}, 100 * (errors + FILL(partialFailures, 0)) / invocations, 0)`,
      usingMetrics: {
        // HIGH: the telemetry extension's per-second metrics (FunctionName only). STANDARD:
        // Lambda's; for an alias or a version FunctionName=<fn>, Resource=<fn>:<qualifier>.
        errors: high ? telemetryMetric(consumer, 'Errors', options) : consumerMetric(props.consumer, consumer, 'Errors', options),
        invocations: high ? telemetryMetric(consumer, 'Invocations', options) : consumerMetric(props.consumer, consumer, 'Invocations', options),
        partialFailures: telemetryMetric(consumer, 'PartialFailures', options),
      },
      period,
      label: 'consumer error rate (%)',
    });
    return new cloudwatch.Alarm(this, 'Alarm', {
      alarmDescription: `sqs-circuit-breaker: consumer error rate of circuit ${this.circuitName}; ALARM opens the circuit`,
      metric: errorRate,
      threshold: c.errorRateThresholdPercent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: c.evaluationPeriods,
      datapointsToAlarm: c.datapointsToAlarm,
      // While the circuit is open the mapping is disabled and the consumer publishes no data.
      // IGNORE keeps the current state through those gaps: the alarm neither flips to OK mid-
      // recovery (NOT_BREACHING) nor stays in ALARM after the breaker resets it to OK on an idle
      // queue (BREACHING); it moves only on real traffic.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
  }

  /**
   * cdk-nag (AwsSolutions) findings that are deliberate, each acknowledged on the one policy it
   * concerns, with its reason (CDK's `Validations.acknowledge`, which cdk-nag 3 reads).
   */
  private acknowledgeNagFindings(): void {
    const stack = cdk.Stack.of(this);
    const policyOf = (role: iam.IRole | undefined): IConstruct | undefined => role?.node.tryFindChild('DefaultPolicy');
    const rampPolicy = policyOf(this.functions.ramp.role);
    if (rampPolicy) {
      cdk.Validations.of(rampPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'cloudwatch:GetMetricData supports no resource-level permissions; the ramp handler reads the consumer\'s Errors/Invocations with it',
      });
    }
    const openPolicy = policyOf(this.functions.open.role);
    if (openPolicy) {
      cdk.Validations.of(openPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:${nagValue(stack.region, 'AWS::Region')}:${nagValue(stack.account, 'AWS::AccountId')}:execution:${this.stateMachineNameForNag}:*]`,
        reason: 'open asks whether the execution that owns the circuit record still runs (states:DescribeExecution); execution names are generated per run, so the scope is this state machine\'s executions',
      });
    }
    const smPolicy = policyOf(this.stateMachine.role);
    if (smPolicy) {
      cdk.Validations.of(smPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) and CloudWatch Logs delivery actions of Step Functions support no resource scope; '
          + 'cloudwatch:PutMetricData has none either and is limited by the cloudwatch:namespace condition',
      });
      for (const fn of Object.values(this.functions) as lambda.Function[]) {
        const logicalId = stack.resolve(stack.getLogicalId(fn.node.defaultChild as cdk.CfnElement));
        cdk.Validations.of(smPolicy).acknowledge({
          id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
          reason: 'CDK\'s LambdaInvoke task grants invoking the breaker\'s own function and its versions (<arn>:*); nothing else',
        });
      }
    }
  }
}

/** How cdk-nag prints a value in a finding id: a pseudo parameter as `<AWS::Name>`. */
function nagValue(value: string, pseudo: string): string {
  return cdk.Token.isUnresolved(value) ? `<${pseudo}>` : value;
}
