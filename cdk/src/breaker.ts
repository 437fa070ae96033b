import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { createConsumerAlarm, createRecoveryAlarm } from './alarms';
import { bootstrapAssetPath, extensionAssetPath } from './assets';
import { addCliDescriptor } from './descriptor';
import { consumerFunction, ResolvedConfig, resolveConfig } from './config';
import { ConsumerIdentity, consumerIdentity } from './consumer';
import { circuitWidgets, CircuitWidgetSource, createDashboard, deadLetterQueueOf } from './dashboard';
import { createHandlerFunctions } from './functions';
import metricsTable from './metrics.json';
import { createNotifications } from './notifications';
import { AlarmResolution, CircuitWidgetOptions, SqsCircuitBreakerProps } from './props';
import { buildWorkflow, CircuitBreakerFunctions, METRIC_NAMESPACE, PUT_METRIC_STATEMENT } from './workflow';

/** Where the circuit's parts are, fixed before any of them is built (`locateParts`). */
interface CircuitAddresses {
  readonly eventSourceMappingId: string;
  readonly eventSourceMappingArn: string;
  /** The bus the handlers put their events on. */
  readonly bus: events.IEventBus;
  readonly stateMachineName: string;
  readonly stateMachineArn: string;
}

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
    this.annotateAssumptions(props, config);
    this.circuitName = props.circuitName ?? cdk.Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    const addresses = this.locateParts(props);
    this.stateMachineNameForNag = addresses.stateMachineName;
    const consumer = consumerIdentity(props.consumer);
    this.alarmResolution = config.alarmResolution;
    this.consumerTelemetryLayer = this.addTelemetryLayer(props, config);
    this.alarm =
      props.alarm ??
      createConsumerAlarm(this, {
        circuitName: this.circuitName,
        config,
        consumer: props.consumer,
        identity: consumer,
      });
    this.table = this.createCircuitTable();
    this.functions = this.createFunctions(props, config, consumer, addresses);
    this.logGroup = this.createStateMachineLogs(addresses, props.logRetention);
    this.stateMachine = this.createStateMachine(addresses, config);
    this.rule = this.createAlarmRule();
    if (props.notificationTopic) this.addNotifications(props.notificationTopic, props, config, addresses);
    if (props.recoveryAlarm ?? true) this.recoveryAlarm = createRecoveryAlarm(this);
    this.widgetSource = { queue: props.queue, deadLetterQueue: deadLetterQueueOf(props.queue) };
    if (props.dashboard !== undefined) this.dashboard = createDashboard(this, this, this.widgetSource, props.dashboard);
    this.describeForCli(props, consumer, addresses);
    this.acknowledgeNagFindings();
  }

  /**
   * Warnings (and a note) about what the construct had to assume: an imported consumer's timeout,
   * an alarm window a hanging consumer cannot fill, an imported queue's unknown key.
   */
  private annotateAssumptions(props: SqsCircuitBreakerProps, config: ResolvedConfig): void {
    if (config.consumerTimeoutAssumed) {
      cdk.Annotations.of(this).addWarningV2(
        'sqs-circuit-breaker:consumerTimeout',
        `The consumer's timeout is unknown (an imported function): the probe assumes ${config.consumerTimeoutSeconds} seconds, the longest that fits in the probe function. ` +
          "If the consumer's timeout is shorter, pass consumerTimeout so that a hung invoke is given up sooner" +
          (config.alarmResolution === AlarmResolution.STANDARD
            ? ` and each ramp level waits less: with Lambda's one-minute metrics a minute is judged only the consumer's timeout and a minute after it ends (now ${config.consumerTimeoutSeconds + 60} seconds).`
            : '.'),
      );
    }

    const slow = config.slowConsumer;
    if (slow !== undefined) {
      const limit =
        `a consumer that times out (its downstream hangs) ends at most ${slow.reachable} invocation${slow.reachable === 1 ? '' : 's'} per ${slow.periodSeconds}-second alarm period ` +
        `(concurrency ${slow.concurrency} x ${slow.periodSeconds} s / timeout ${slow.timeoutSeconds} s, at least 1)`;
      if (slow.given) {
        cdk.Annotations.of(this).addWarningV2(
          'sqs-circuit-breaker:minInvocations',
          `alarmSettings.minInvocations is ${slow.minInvocations}, but ${limit}: such periods count as 0 % and a hanging downstream never opens the circuit. ` +
            `Lower alarmSettings.minInvocations to at most ${slow.reachable}, or lengthen alarmSettings.period.`,
        );
      } else {
        cdk.Annotations.of(this).addInfo(
          `sqs-circuit-breaker: alarmSettings.minInvocations defaults to ${slow.reachable}, not ${slow.minInvocations}: ${limit}. ` +
            'Set alarmSettings.minInvocations to choose another value.',
        );
      }
    }

    if (
      props.queueEncryptionKey === undefined &&
      props.queue.encryptionMasterKey === undefined &&
      !(props.queue instanceof sqs.Queue)
    ) {
      cdk.Annotations.of(this).addWarningV2(
        'sqs-circuit-breaker:queueEncryptionKey',
        'The queue is imported without its KMS key. If it is encrypted with a customer-managed key, pass queueEncryptionKey ' +
          '(or import it with Queue.fromQueueAttributes({ keyArn })): without key permissions the probe and re-jitter cannot receive or send, ' +
          'and the first recovery ends stuck open. Unencrypted and SQS-managed (SSE-SQS) queues need nothing.',
      );
    }
  }

  /**
   * Where the circuit's parts are, fixed up front: the event-source mapping, the bus the handlers
   * put events on, and the state machine's name and ARN (the functions' roles and the workflow's
   * continue-as-new step refer to it without a dependency cycle).
   */
  private locateParts(props: SqsCircuitBreakerProps): CircuitAddresses {
    const stack = cdk.Stack.of(this);
    const eventSourceMappingId = props.eventSourceMapping?.eventSourceMappingId ?? props.eventSourceMappingId!;
    const eventSourceMappingArn =
      props.eventSourceMapping?.eventSourceMappingArn ??
      stack.formatArn({
        service: 'lambda',
        resource: 'event-source-mapping',
        resourceName: eventSourceMappingId,
        arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME,
      });
    const bus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    const stateMachineName = cdk.Names.uniqueResourceName(this, { maxLength: 80, separator: '-' });
    const stateMachineArn = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME,
    });
    return { eventSourceMappingId, eventSourceMappingArn, bus, stateMachineName, stateMachineArn };
  }

  /** The durable circuit record (see `table`). */
  private createCircuitTable(): dynamodb.Table {
    return new dynamodb.Table(this, 'CircuitTable', {
      partitionKey: { name: 'circuit', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Only recovery bookkeeping lives here; it goes with the breaker.
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
  }

  /**
   * The handlers' functions (`functions.ts`: one per handler, each with its own role, log group
   * and, beside its declaration, its permissions).
   */
  private createFunctions(
    props: SqsCircuitBreakerProps,
    config: ResolvedConfig,
    consumer: ConsumerIdentity,
    addresses: CircuitAddresses,
  ): Record<keyof CircuitBreakerFunctions, lambda.Function> {
    return createHandlerFunctions({
      scope: this,
      config,
      circuitName: this.circuitName,
      eventSourceMappingId: addresses.eventSourceMappingId,
      eventSourceMappingArn: addresses.eventSourceMappingArn,
      queue: props.queue,
      queueEncryptionKey: props.queueEncryptionKey,
      consumer: props.consumer,
      consumerIdentity: consumer,
      alarmGiven: props.alarm !== undefined,
      alarm: this.alarm,
      bus: addresses.bus,
      table: this.table,
      stateMachineName: addresses.stateMachineName,
      code: props.lambdaCode,
      architecture: props.lambdaArchitecture,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
    });
  }

  /** The state machine's log group, named where Step Functions' vended logs go. */
  private createStateMachineLogs(
    addresses: CircuitAddresses,
    retention: logs.RetentionDays | undefined,
  ): logs.LogGroup {
    return new logs.LogGroup(this, 'StateMachineLogs', {
      logGroupName: `/aws/vendedlogs/states/${addresses.stateMachineName}`,
      retention: retention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
  }

  /** The recovery workflow (`buildWorkflow`) as a Standard state machine, traced and fully logged. */
  private createStateMachine(addresses: CircuitAddresses, config: ResolvedConfig): sfn.StateMachine {
    const self = sfn.StateMachine.fromStateMachineArn(this, 'Self', addresses.stateMachineArn);
    const definition = buildWorkflow(this, {
      functions: this.functions,
      self,
      circuitName: this.circuitName,
      rejitterWorkers: config.rejitterWorkers,
    });
    const stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: addresses.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      comment: `sqs-circuit-breaker recovery of circuit ${this.circuitName}`,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    stateMachine.addToRolePolicy(PUT_METRIC_STATEMENT());
    return stateMachine;
  }

  /** The trigger: the alarm going to ALARM starts a recovery. */
  private createAlarmRule(): events.Rule {
    return new events.Rule(this, 'AlarmRule', {
      description: `opens circuit ${this.circuitName} when its alarm goes to ALARM`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: { alarmName: [this.alarm.alarmName], state: { value: ['ALARM'] } },
      },
      targets: [new targets.SfnStateMachine(this.stateMachine)],
    });
  }

  /** The notification rules to `notificationTopic`. */
  private addNotifications(
    topic: sns.ITopic,
    props: SqsCircuitBreakerProps,
    config: ResolvedConfig,
    addresses: CircuitAddresses,
  ): void {
    createNotifications(this, {
      topic,
      events: config.notificationEvents,
      circuitName: this.circuitName,
      eventSource: SqsCircuitBreaker.EVENT_SOURCE,
      eventBus: props.eventBus,
      stateMachineArn: addresses.stateMachineArn,
    });
  }

  /** What the breaker CLI reads (README, "Operating it with the CLI"). */
  private describeForCli(props: SqsCircuitBreakerProps, consumer: ConsumerIdentity, addresses: CircuitAddresses): void {
    addCliDescriptor(this, {
      circuitName: this.circuitName,
      queue: props.queue,
      eventSourceMappingUuid: addresses.eventSourceMappingId,
      consumerFunctionName: consumer.functionName,
      alarmName: this.alarm.alarmName,
      stateMachineArn: addresses.stateMachineArn,
      circuitTableName: this.table.tableName,
    });
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

  /**
   * Messages re-jitter moved back into the queue with a new random delay (copy confirmed,
   * original deleted): one datapoint per re-jitter slice, from the handler's metric lines.
   *
   * @default - sum over 5 minutes
   */
  public metricMessagesRejittered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.measureMetric('MessagesRejittered', props);
  }

  /**
   * Messages a keep-alive pass copied back with no delay before their retention ran out (while
   * the circuit is open): one datapoint per keep-alive slice.
   *
   * @default - sum over 5 minutes
   */
  public metricMessagesKeptAlive(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.measureMetric('MessagesKeptAlive', props);
  }

  /**
   * The consumer limit each ramp step set: the mapping's `MaximumConcurrency` (or, in provisioned
   * mode, its maximum pollers); 0 when a relapse disabled the mapping again. One datapoint per
   * step; a last level without a limit (the mapping had none) has no datapoint. A ramp that ends
   * below the original at a level the consumer does not fill records the original it restores.
   *
   * @default - maximum over 5 minutes
   */
  public metricRampLevel(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.measureMetric('RampLevel', props);
  }

  /** The metric of one measure, in the unit and statistic `metrics.json` gives it. */
  private measureMetric(name: keyof typeof metricsTable.measures, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const measure = metricsTable.measures[name];
    const unit = measure.unit === 'Count' ? cloudwatch.Unit.COUNT : cloudwatch.Unit.NONE;
    return this.breakerMetric(name, measure.statistic, unit, props);
  }

  /** The count metric of one breaker event (`metrics.json`). */
  private eventMetric(
    detailType: keyof typeof metricsTable.events,
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    return this.breakerMetric(
      metricsTable.events[detailType].metric,
      cloudwatch.Stats.SUM,
      cloudwatch.Unit.COUNT,
      props,
    );
  }

  private breakerMetric(
    metricName: string,
    statistic: string,
    unit: cloudwatch.Unit,
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
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
      cdk.Annotations.of(this).addWarningV2(
        'sqs-circuit-breaker:telemetryLayer',
        'alarmSettings.resolution is AlarmResolution.HIGH but the construct cannot add the telemetry layer to this consumer (an imported function or a container image): ' +
          'add it where the function is defined, fn.addLayers(SqsCircuitBreaker.telemetryLayer(this, fn.architecture)) (a container image copies the extension to /opt/extensions/ instead). ' +
          'Without it the alarm has no data and never opens the circuit.',
      );
    }
    return layer;
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
        reason:
          "cloudwatch:GetMetricData supports no resource-level permissions; the ramp handler reads the consumer's Errors/Invocations with it",
      });
    }
    const openPolicy = policyOf(this.functions.open.role);
    if (openPolicy) {
      cdk.Validations.of(openPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:${nagValue(stack.region, 'AWS::Region')}:${nagValue(stack.account, 'AWS::AccountId')}:execution:${this.stateMachineNameForNag}:*]`,
        reason:
          "open asks whether the execution that owns the circuit record still runs (states:DescribeExecution); execution names are generated per run, so the scope is this state machine's executions",
      });
    }
    const smPolicy = policyOf(this.stateMachine.role);
    if (smPolicy) {
      cdk.Validations.of(smPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) and CloudWatch Logs delivery actions of Step Functions support no resource scope; ' +
          'cloudwatch:PutMetricData has none either and is limited by the cloudwatch:namespace condition',
      });
      for (const fn of Object.values(this.functions) as lambda.Function[]) {
        const logicalId = stack.resolve(stack.getLogicalId(fn.node.defaultChild as cdk.CfnElement));
        cdk.Validations.of(smPolicy).acknowledge({
          id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
          reason:
            "CDK's LambdaInvoke task grants invoking the breaker's own function and its versions (<arn>:*); nothing else",
        });
      }
    }
  }
}

/** How cdk-nag prints a value in a finding id: a pseudo parameter as `<AWS::Name>`. */
function nagValue(value: string, pseudo: string): string {
  return cdk.Token.isUnresolved(value) ? `<${pseudo}>` : value;
}
