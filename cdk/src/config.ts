import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { dashboardNameProblem, dashboardPeriodProblem } from './dashboard';
import limitsTable from './limits.json';
import { AlarmResolution, CircuitEvent, SqsCircuitBreakerProps } from './props';

/** One tunable as `limits.json` describes it. */
interface Limit {
  /** The prop, as validation errors name it (`rejitter.workers`). */
  readonly prop: string;
  /** The environment variable the handlers read it from; null when only the construct uses it. */
  readonly env: string | null;
  /** How the value is judged: see `about` in `limits.json`. */
  readonly kind: 'integer' | 'seconds' | 'number' | 'percent' | 'boolean' | 'mebibytes' | 'resolution';
  /** The default, in the units of the variable; null when unset means off; an object: per case. */
  readonly default: number | boolean | null | Readonly<Record<string, number | string>>;
  /** Smallest accepted value (exclusive for a percent). */
  readonly min?: number;
  /** Largest accepted value. */
  readonly max?: number;
  /** Why the range is what it is, or what else limits the value. */
  readonly why?: string;
}

/**
 * Every tunable's prop, variable, default and range: the one table that the construct, the Rust
 * loader (`breaker_core::config`) and `CONTRACT.md` follow (tests on both sides check them).
 */
const LIMITS = limitsTable.settings as unknown as Record<keyof typeof limitsTable.settings, Limit>;

/** `alarmSettings.resolution`'s default: with the telemetry layer (the construct adds it) or without. */
const RESOLUTION_DEFAULT = limitsTable.settings.alarmResolution.default as {
  readonly withLayer: AlarmResolution;
  readonly withoutLayer: AlarmResolution;
};

/** `alarmSettings.period`'s default per resolution, in seconds. */
const PERIOD_DEFAULT = limitsTable.settings.alarmPeriodSeconds.default as Readonly<Record<AlarmResolution, number>>;

function numberDefault(l: Limit): number {
  if (typeof l.default !== 'number') throw new Error(`limits.json: ${l.prop} has no numeric default`);
  return l.default;
}

/**
 * The probe's time budget, in seconds, from `limits.json` (`probeBudget`, which the Rust
 * `breaker_core::timeouts` follows; CONTRACT.md "Timeouts"). The probe function runs at most
 * `functionSeconds`; before the invoke it receives (an SDK call that gives up after
 * `receiveSeconds`), the invoke may last `invokeMarginSeconds` beyond the consumer's timeout (cold
 * start, network), and afterwards the probe settles the messages within `settleSeconds`.
 */
export const PROBE_BUDGET: {
  readonly functionSeconds: number;
  readonly receiveSeconds: number;
  readonly invokeMarginSeconds: number;
  readonly settleSeconds: number;
} = {
  functionSeconds: limitsTable.probeBudget.functionSeconds,
  receiveSeconds: limitsTable.probeBudget.receiveSeconds,
  invokeMarginSeconds: limitsTable.probeBudget.invokeMarginSeconds,
  settleSeconds: limitsTable.probeBudget.settleSeconds,
};

/** The longest consumer timeout a probe accommodates: 795 seconds. */
export const MAX_CONSUMER_TIMEOUT_SECONDS =
  PROBE_BUDGET.functionSeconds -
  PROBE_BUDGET.receiveSeconds -
  PROBE_BUDGET.invokeMarginSeconds -
  PROBE_BUDGET.settleSeconds;

/**
 * `consumerTimeout`: not a tunable of `limits.json` (the handlers get the consumer's timeout, not a
 * default), so judged here: whole seconds, and the fit in the probe function is checked below.
 */
const CONSUMER_TIMEOUT: Limit = {
  prop: 'consumerTimeout',
  env: 'CONSUMER_TIMEOUT_SECONDS',
  kind: 'seconds',
  default: 0,
  min: 0,
  max: 43_200,
};

/** Lambda's timeout of a function that sets none. */
const LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3;

/**
 * The function behind `consumer` when it is defined in this app (directly, or through an alias or a
 * version of it), so that its timeout is known; `undefined` for an imported function.
 */
export function consumerFunction(consumer: lambda.IFunction): lambda.Function | undefined {
  if (consumer instanceof lambda.Function) return consumer;
  if (consumer instanceof lambda.Alias) return consumerFunction(consumer.version.lambda);
  if (consumer instanceof lambda.Version) return consumerFunction(consumer.lambda);
  return undefined;
}

/**
 * Alarm periods under a minute (high-resolution metrics only). CloudWatch also takes 20 s, but
 * aws-cdk-lib's `Metric` refuses it (1, 5, 10, 30 or whole minutes), so the construct offers these.
 */
const SUB_MINUTE_PERIODS = [10, 30];

/**
 * `alarmSettings.evaluationPeriods`' default for a consumer whose timeout is known: enough
 * periods to hold two timeouts of one concurrent invocation, `ceil(timeout / period) + 1`, and
 * never fewer than the table's default. See `alarmDefaultExamples` in `limits.json`.
 */
export function defaultEvaluationPeriods(
  tableDefault: number,
  periodSeconds: number,
  timeoutSeconds: number | undefined,
): number {
  if (timeoutSeconds === undefined || cdk.Token.isUnresolved(timeoutSeconds)) return tableDefault;
  return Math.max(tableDefault, Math.ceil(timeoutSeconds / periodSeconds) + 1);
}

/**
 * How many invocations a consumer that times out ends in one alarm period, when that is fewer than
 * `alarmSettings.minInvocations`: `max(1, floor(concurrency x period / timeout))`.
 */
export interface SlowConsumerLimit {
  readonly reachable: number;
  /** The most invocations at once: the mapping's MaximumConcurrency or the reserved concurrency. */
  readonly concurrency: number;
  readonly timeoutSeconds: number;
  readonly periodSeconds: number;
  /** `alarmSettings.minInvocations`, given or its default. */
  readonly minInvocations: number;
  /** True when `alarmSettings.minInvocations` was given (it is kept); false: the default was lowered. */
  readonly given: boolean;
}

/**
 * The most invocations the consumer can run at once, when this app says so: the lower of its
 * mapping's `MaximumConcurrency` (a mapping defined in this app, passed as `eventSourceMapping` or
 * found by `eventSourceMappingId` among the consumer's event sources) and the consumer function's
 * reserved concurrency. `undefined` when neither is known (an SQS mapping then scales out to at
 * least 5 concurrent invocations, as many as the default `minInvocations`).
 */
export function knownConcurrency(props: SqsCircuitBreakerProps, own: lambda.Function | undefined): number | undefined {
  const limits: number[] = [];
  const mapping =
    props.eventSourceMapping ??
    [props.consumer, ...(own ? [own] : [])]
      .flatMap((c) => c.node.children)
      .find(
        (c): c is lambda.EventSourceMapping =>
          c instanceof lambda.EventSourceMapping && c.eventSourceMappingId === props.eventSourceMappingId,
      );
  const cfnMapping = mapping?.node.defaultChild;
  if (cfnMapping instanceof lambda.CfnEventSourceMapping) {
    const scaling = cfnMapping.scalingConfig as lambda.CfnEventSourceMapping.ScalingConfigProperty | undefined;
    if (
      scaling !== undefined &&
      !cdk.Token.isUnresolved(scaling) &&
      typeof scaling.maximumConcurrency === 'number' &&
      !cdk.Token.isUnresolved(scaling.maximumConcurrency)
    ) {
      limits.push(scaling.maximumConcurrency);
    }
  }
  const cfnFunction = own?.node.defaultChild;
  if (
    cfnFunction instanceof lambda.CfnFunction &&
    typeof cfnFunction.reservedConcurrentExecutions === 'number' &&
    !cdk.Token.isUnresolved(cfnFunction.reservedConcurrentExecutions)
  ) {
    limits.push(cfnFunction.reservedConcurrentExecutions);
  }
  return limits.length === 0 ? undefined : Math.min(...limits);
}
/** `notificationEvents`' default: every transition an operator acts on or should know of. */
export const DEFAULT_NOTIFICATION_EVENTS: readonly CircuitEvent[] = [
  CircuitEvent.OPENED,
  CircuitEvent.HALF_OPEN,
  CircuitEvent.CLOSED,
  CircuitEvent.STUCK_OPEN,
  CircuitEvent.MESSAGES_AT_RISK,
];

/** Props reduced to plain numbers, after validation. Unresolved tokens are passed through. */
export interface ResolvedConfig {
  /** `alarmSettings.resolution`, given or defaulted; `STANDARD` when `alarm` is given. */
  readonly alarmResolution: AlarmResolution;
  /**
   * The consumer function the construct adds the telemetry layer to (resolution `HIGH` and a
   * function it can add a layer to); `undefined` otherwise.
   */
  readonly telemetryLayerTarget?: lambda.Function;
  readonly errorRateThresholdPercent: number;
  readonly minInvocations: number;
  /** Set when a consumer timing out could not reach `alarmSettings.minInvocations` in one period. */
  readonly slowConsumer?: SlowConsumerLimit;
  readonly alarmPeriodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly backoffInitialSeconds: number;
  readonly backoffMaxSeconds: number;
  /**
   * The cap once the outage is long (`backoff.longOutageMaxDelay`). Undefined only when it is
   * unset and `backoff.maxDelay` is a token: the handlers then default it themselves by the
   * same rule (`perMaxDelay` x the cap, at most a day).
   */
  readonly backoffLongMaxSeconds: number | undefined;
  readonly backoffMultiplier: number;
  readonly probeCount: number;
  readonly probeVisibilitySeconds: number;
  /** The consumer's timeout (`consumerTimeout`, or the consumer function's own). */
  readonly consumerTimeoutSeconds: number;
  /** True when the consumer's timeout is not known and `consumerTimeoutSeconds` is assumed. */
  readonly consumerTimeoutAssumed: boolean;
  readonly rejitterEnabled: boolean;
  readonly rejitterMinSeconds: number;
  readonly rejitterMaxSeconds: number;
  readonly rejitterWorkers: number;
  readonly rejitterSliceSeconds: number;
  readonly rampStart: number;
  readonly rampSteps: number;
  readonly rampIntervalSeconds: number;
  readonly relapseErrorRatePercent: number;
  readonly maxOpenSeconds?: number;
  readonly historyEventBudget: number;
  readonly lambdaMemorySize: number;
  /** `rejitter.memorySize` in MiB: the memory of the re-jitter function. */
  readonly rejitterMemoryMiB: number;
  /** The events `notificationTopic` receives (empty without a topic). */
  readonly notificationEvents: readonly CircuitEvent[];
}

/** True when every value is a plain number (not a token), so that comparing them means something. */
/** The queue's `MessageRetentionPeriod` in seconds when this stack sets it; else undefined. */
function knownRetentionSeconds(queue: SqsCircuitBreakerProps['queue']): number | undefined {
  const cfn = queue.node.defaultChild;
  if (!(cfn instanceof cdk.CfnResource) || cfn.cfnResourceType !== 'AWS::SQS::Queue') return undefined;
  const r = (cfn as unknown as { messageRetentionPeriod?: number }).messageRetentionPeriod;
  return r === undefined || cdk.Token.isUnresolved(r) ? undefined : r;
}

function known(...values: number[]): boolean {
  return values.every((v) => !cdk.Token.isUnresolved(v));
}

/** Collects every problem with the props so that one error can name them all. */
class Problems {
  readonly list: string[] = [];

  add(prop: string, problem: string): void {
    this.list.push(`${prop}: ${problem}`);
  }

  /** A whole number of seconds in the limit's range (zero allowed when its min is 0). */
  seconds(l: Limit, value: cdk.Duration | undefined, fix = ''): number {
    if (value === undefined) return typeof l.default === 'number' ? l.default : 0;
    if (value.isUnresolved()) return value.toSeconds();
    const ms = value.toMilliseconds();
    const allowZero = l.min === 0;
    const fallback = typeof l.default === 'number' ? l.default : 0;
    if (ms < 0 || (ms === 0 && !allowZero)) {
      this.add(l.prop, `must be ${allowZero ? 'zero or positive' : 'positive'}, got ${ms / 1000} seconds${fix}`);
      return fallback;
    }
    if (ms % 1000 !== 0) {
      this.add(
        l.prop,
        `must be a whole number of seconds, got ${ms} ms; use Duration.seconds(${Math.ceil(ms / 1000)})`,
      );
      return fallback;
    }
    const s = ms / 1000;
    if (l.max !== undefined && s > l.max) {
      this.add(l.prop, `must be at most ${l.max} seconds, got ${s} seconds${fix}`);
    }
    return s;
  }

  /** A `Size` of whole mebibytes in the limit's [min, max], as a number of MiB. */
  mebibytes(l: Limit, value: cdk.Size | undefined, fix = ''): number {
    if (value === undefined) return numberDefault(l);
    if (value.isUnresolved()) return value.toMebibytes();
    const kib = value.toKibibytes();
    if (kib % 1024 !== 0) {
      this.add(l.prop, `must be a whole number of MiB, got ${kib} KiB; use Size.mebibytes(${Math.ceil(kib / 1024)})`);
      return numberDefault(l);
    }
    const mib = kib / 1024;
    if (mib < l.min! || mib > l.max!) {
      this.add(l.prop, `must be from Size.mebibytes(${l.min}) to Size.mebibytes(${l.max}), got ${mib} MiB${fix}`);
    }
    return mib;
  }

  /** An integer in the limit's [min, max]. */
  integer(l: Limit, value: number | undefined, fix = ''): number {
    if (value === undefined) return numberDefault(l);
    if (cdk.Token.isUnresolved(value)) return value;
    if (!Number.isInteger(value) || value < l.min! || value > l.max!) {
      this.add(l.prop, `must be a whole number from ${l.min} to ${l.max}, got ${value}${fix}`);
    }
    return value;
  }

  /** A percentage in the limit's (min, max], i.e. (0, 100]. */
  percent(l: Limit, value: number | undefined): number {
    if (value === undefined) return numberDefault(l);
    if (cdk.Token.isUnresolved(value)) return value;
    if (!Number.isFinite(value) || value <= l.min! || value > l.max!) {
      this.add(l.prop, `must be greater than ${l.min} and at most ${l.max}, got ${value}`);
    }
    return value;
  }
}

/**
 * Validates the props and reduces them to plain numbers.
 *
 * @throws Error naming every invalid prop and how to fix it.
 */
export function resolveConfig(path: string, props: SqsCircuitBreakerProps): ResolvedConfig {
  const p = new Problems();

  // Event-source mapping: exactly one of the two.
  if (props.eventSourceMapping === undefined && props.eventSourceMappingId === undefined) {
    p.add(
      'eventSourceMapping',
      "missing; pass the consumer's event-source mapping or its UUID as eventSourceMappingId",
    );
  } else if (props.eventSourceMapping !== undefined && props.eventSourceMappingId !== undefined) {
    p.add('eventSourceMappingId', 'cannot be combined with eventSourceMapping; pass only one of them');
  }

  if (
    props.circuitName !== undefined &&
    !cdk.Token.isUnresolved(props.circuitName) &&
    !/^[A-Za-z0-9._-]{1,64}$/.test(props.circuitName)
  ) {
    p.add('circuitName', `must be 1 to 64 letters, digits, '.', '_' or '-', got '${props.circuitName}'`);
  }

  // Alarm.
  if (props.alarm !== undefined && props.alarmSettings !== undefined) {
    p.add(
      'alarmSettings',
      'cannot be combined with alarm; remove alarmSettings to use your alarm, or remove alarm to let the breaker create one',
    );
  }
  const a = props.alarmSettings ?? {};
  // Resolution: the telemetry extension's per-second metrics need its layer on the consumer; the
  // construct adds it to a function of this app (not to a container image, which takes no layers).
  const own = consumerFunction(props.consumer);
  const canAddLayer = own !== undefined && own.runtime.name !== lambda.Runtime.FROM_IMAGE.name;
  // The consumer's timeout, read once (the alarm's window, the probe's budget, the slow-consumer
  // check): its own when it is a function of this app, else `consumerTimeout`, else unknown.
  const ownSeconds = own === undefined ? undefined : (own.timeout?.toSeconds() ?? LAMBDA_DEFAULT_TIMEOUT_SECONDS);
  const givenSeconds =
    props.consumerTimeout === undefined ? undefined : p.seconds(CONSUMER_TIMEOUT, props.consumerTimeout);
  const resolutions = Object.values(AlarmResolution) as string[];
  let alarmResolution: AlarmResolution =
    props.alarm !== undefined
      ? AlarmResolution.STANDARD
      : canAddLayer
        ? RESOLUTION_DEFAULT.withLayer
        : RESOLUTION_DEFAULT.withoutLayer;
  if (a.resolution !== undefined) {
    if (resolutions.includes(a.resolution)) {
      alarmResolution = a.resolution;
    } else {
      p.add(
        LIMITS.alarmResolution.prop,
        `must be AlarmResolution.HIGH ('high') or AlarmResolution.STANDARD ('standard'), got ${JSON.stringify(a.resolution)}`,
      );
    }
  }
  const errorRateThresholdPercent = p.percent(LIMITS.errorRateThresholdPercent, a.errorRateThresholdPercent);
  const givenMinInvocations = p.integer(LIMITS.minInvocations, a.minInvocations);
  const alarmPeriodSeconds = p.seconds(
    { ...LIMITS.alarmPeriodSeconds, default: PERIOD_DEFAULT[alarmResolution] },
    a.period,
  );
  // A consumer of this app (or a given consumerTimeout) with timeout T: a hanging downstream shows
  // as timeouts that end T apart per concurrent invocation, so the default window holds two of
  // them (evaluationPeriods at least ceil(T / period) + 1).
  const timeoutForWindow = ownSeconds ?? givenSeconds;
  // CloudWatch accepts 10, 20 and 30 s (high-resolution metrics) or whole minutes.
  if (
    known(alarmPeriodSeconds) &&
    alarmPeriodSeconds > 0 &&
    alarmPeriodSeconds % 60 !== 0 &&
    !SUB_MINUTE_PERIODS.includes(alarmPeriodSeconds)
  ) {
    p.add(
      'alarmSettings.period',
      `must be 10 or 30 seconds or a whole number of minutes (CloudWatch alarm periods that aws-cdk-lib's Metric accepts; it refuses 20), got ${alarmPeriodSeconds} seconds`,
    );
  } else if (
    known(alarmPeriodSeconds) &&
    alarmPeriodSeconds % 60 !== 0 &&
    alarmResolution === AlarmResolution.STANDARD
  ) {
    // Lambda's own metrics are per minute: a 10/20/30 s period over them has no data
    // (INSUFFICIENT_DATA), so the alarm would never trip.
    p.add(
      'alarmSettings.period',
      `${alarmPeriodSeconds} seconds needs alarmSettings.resolution AlarmResolution.HIGH (the telemetry extension's per-second metrics), ` +
        `but alarmSettings.resolution is AlarmResolution.STANDARD${a.resolution === undefined ? ' (the default for a consumer the construct cannot add the telemetry layer to)' : ''}, ` +
        "whose metrics (Lambda's own) are per minute; use a whole number of minutes, or set resolution: AlarmResolution.HIGH" +
        (canAddLayer ? '' : ' and add SqsCircuitBreaker.telemetryLayer(...) to the consumer yourself'),
    );
  }
  const evaluationPeriods =
    a.evaluationPeriods !== undefined || !known(alarmPeriodSeconds) || alarmPeriodSeconds <= 0
      ? p.integer(LIMITS.evaluationPeriods, a.evaluationPeriods)
      : defaultEvaluationPeriods(numberDefault(LIMITS.evaluationPeriods), alarmPeriodSeconds, timeoutForWindow);
  const datapointsToAlarm = p.integer(LIMITS.datapointsToAlarm, a.datapointsToAlarm);
  if (known(datapointsToAlarm, evaluationPeriods) && datapointsToAlarm > evaluationPeriods) {
    p.add(
      'alarmSettings.datapointsToAlarm',
      `must not exceed evaluationPeriods (${evaluationPeriods}), got ${datapointsToAlarm}`,
    );
  }
  if (known(alarmPeriodSeconds, evaluationPeriods) && alarmPeriodSeconds * evaluationPeriods > 86_400) {
    p.add(
      'alarmSettings.evaluationPeriods',
      `period x evaluationPeriods must be at most one day (CloudWatch limit), got ${alarmPeriodSeconds * evaluationPeriods} seconds`,
    );
  }

  // Backoff.
  const b = props.backoff ?? {};
  const backoffInitialSeconds = p.seconds(LIMITS.backoffInitialSeconds, b.initialDelay);
  const backoffMaxSeconds = p.seconds(LIMITS.backoffMaxSeconds, b.maxDelay, '; probe at least once a day');
  if (known(backoffMaxSeconds, backoffInitialSeconds) && backoffMaxSeconds < backoffInitialSeconds) {
    p.add(
      'backoff.maxDelay',
      `must be at least backoff.initialDelay (${backoffInitialSeconds} seconds), got ${backoffMaxSeconds} seconds`,
    );
  }
  let backoffLongMaxSeconds: number | undefined;
  if (b.longOutageMaxDelay !== undefined) {
    backoffLongMaxSeconds = p.seconds(
      LIMITS.backoffLongMaxSeconds,
      b.longOutageMaxDelay,
      '; probe at least once a day',
    );
    if (known(backoffLongMaxSeconds, backoffMaxSeconds) && backoffLongMaxSeconds < backoffMaxSeconds) {
      p.add(
        LIMITS.backoffLongMaxSeconds.prop,
        `must be at least backoff.maxDelay (${backoffMaxSeconds} seconds), got ${backoffLongMaxSeconds} seconds; ` +
          'set it to backoff.maxDelay to keep that cap however long the outage',
      );
    }
  } else if (known(backoffMaxSeconds)) {
    backoffLongMaxSeconds = Math.min(
      LIMITS.backoffLongMaxSeconds.max!,
      limitsTable.settings.backoffLongMaxSeconds.perMaxDelay * backoffMaxSeconds,
    );
  }
  let backoffMultiplier = numberDefault(LIMITS.backoffMultiplier);
  if (b.multiplier !== undefined && !cdk.Token.isUnresolved(b.multiplier)) {
    backoffMultiplier = b.multiplier;
    const m = LIMITS.backoffMultiplier;
    if (!Number.isFinite(b.multiplier) || b.multiplier < m.min! || b.multiplier > m.max!) {
      p.add(m.prop, `must be from ${m.min} (constant backoff) to ${m.max}, got ${b.multiplier}`);
    }
  }

  // Probe.
  const pr = props.probe ?? {};
  const probeCount = p.integer(LIMITS.probeCount, pr.messageCount, ' (SQS receives at most 10 messages at once)');
  const probeVisibilitySeconds = p.seconds(
    LIMITS.probeVisibilitySeconds,
    pr.visibilityTimeout,
    ' (the SQS visibility limit)',
  );
  // The queue's KMS key: the queue's own when CDK knows it, else `queueEncryptionKey`, never both.
  if (
    props.queueEncryptionKey !== undefined &&
    props.queue.encryptionMasterKey !== undefined &&
    props.queueEncryptionKey !== props.queue.encryptionMasterKey
  ) {
    p.add(
      'queueEncryptionKey',
      'the queue already has its KMS key (a queue of this app, or imported with keyArn), and its grants cover it; remove queueEncryptionKey',
    );
  }
  // The probe's view of the consumer's timeout: unknown means the longest a probe accommodates
  // (the construct warns).
  let consumerTimeoutSeconds: number = MAX_CONSUMER_TIMEOUT_SECONDS;
  let timeoutProp = 'consumer';
  if (
    givenSeconds !== undefined &&
    ownSeconds !== undefined &&
    known(givenSeconds, ownSeconds) &&
    givenSeconds !== ownSeconds
  ) {
    p.add(
      'consumerTimeout',
      `must match the consumer's own timeout (${ownSeconds} seconds), got ${givenSeconds} seconds; remove it (the breaker reads the timeout of a function defined in this app)`,
    );
  } else if (ownSeconds !== undefined) {
    consumerTimeoutSeconds = ownSeconds;
  } else if (givenSeconds !== undefined && givenSeconds > 0) {
    consumerTimeoutSeconds = givenSeconds;
    timeoutProp = 'consumerTimeout';
  }
  const consumerTimeoutAssumed = ownSeconds === undefined && givenSeconds === undefined;
  // The probe function must hold the receive, the invoke and the settling after it.
  if (known(consumerTimeoutSeconds) && consumerTimeoutSeconds > MAX_CONSUMER_TIMEOUT_SECONDS) {
    const b = PROBE_BUDGET;
    p.add(
      timeoutProp,
      `the consumer's timeout (${consumerTimeoutSeconds} seconds) does not fit in the probe function's ${b.functionSeconds} seconds ` +
        `beside the probe's receive (${b.receiveSeconds} seconds), the invoke's margin (${b.invokeMarginSeconds}) and settling the messages (${b.settleSeconds}); ` +
        `lower the consumer's timeout to at most ${MAX_CONSUMER_TIMEOUT_SECONDS} seconds`,
    );
  }
  // A probed message must stay invisible for as long as the invoke may last (judged once the
  // consumer fits: lowering its timeout changes what is needed).
  const invokeSeconds = consumerTimeoutSeconds + PROBE_BUDGET.invokeMarginSeconds;
  if (
    known(probeVisibilitySeconds, consumerTimeoutSeconds) &&
    consumerTimeoutSeconds <= MAX_CONSUMER_TIMEOUT_SECONDS &&
    probeVisibilitySeconds <= invokeSeconds
  ) {
    p.add(
      'probe.visibilityTimeout',
      `must exceed the consumer's timeout (${consumerTimeoutSeconds} seconds) plus the invoke's margin (${PROBE_BUDGET.invokeMarginSeconds} seconds), ` +
        `${invokeSeconds} seconds, got ${probeVisibilitySeconds} seconds${consumerTimeoutAssumed ? " (the consumer's timeout is assumed; pass consumerTimeout)" : ''}`,
    );
  }

  // A consumer whose downstream hangs fails by timing out: with its concurrency known, at most
  // concurrency x period / timeout invocations end in one alarm period, and a period with fewer
  // than minInvocations never breaches. A default the consumer cannot reach is lowered to what it
  // can (at least 1); a given one is kept, with a warning (SqsCircuitBreaker).
  const concurrency = knownConcurrency(props, own);
  let minInvocations = givenMinInvocations;
  let slowConsumer: SlowConsumerLimit | undefined;
  if (
    concurrency !== undefined &&
    !consumerTimeoutAssumed &&
    known(alarmPeriodSeconds, consumerTimeoutSeconds, givenMinInvocations) &&
    consumerTimeoutSeconds > 0
  ) {
    const reachable = Math.max(1, Math.floor((concurrency * alarmPeriodSeconds) / consumerTimeoutSeconds));
    if (reachable < givenMinInvocations) {
      slowConsumer = {
        reachable,
        concurrency,
        timeoutSeconds: consumerTimeoutSeconds,
        periodSeconds: alarmPeriodSeconds,
        minInvocations: givenMinInvocations,
        given: a.minInvocations !== undefined,
      };
      if (a.minInvocations === undefined) minInvocations = reachable;
    }
  }

  // Re-jitter.
  const r = props.rejitter ?? {};
  const fifo = !cdk.Token.isUnresolved(props.queue.fifo) && props.queue.fifo === true;
  const rejitterEnabled = r.enabled ?? !fifo;
  if (fifo && r.enabled === true) {
    p.add(
      'rejitter.enabled',
      'must be false for a FIFO queue (SQS has no per-message delay there and re-ordering would break message groups); set rejitter: { enabled: false }',
    );
  }
  const rejitterMinSeconds = p.seconds(LIMITS.rejitterMinSeconds, r.minDelay, ' (the SQS DelaySeconds limit)');
  const rejitterMaxSeconds = p.seconds(
    LIMITS.rejitterMaxSeconds,
    r.maxDelay,
    ' (the SQS DelaySeconds limit); use at most Duration.minutes(15)',
  );
  if (known(rejitterMinSeconds, rejitterMaxSeconds) && rejitterMinSeconds > rejitterMaxSeconds) {
    p.add(
      'rejitter.minDelay',
      `must not exceed rejitter.maxDelay (${rejitterMaxSeconds} seconds), got ${rejitterMinSeconds} seconds`,
    );
  }
  // A copy's retention counts from its send, delay included: the handlers keep every delay
  // within a quarter of the queue's retention (breaker_core::rejitter::within_retention) and skip
  // re-jitter when the minimum does not fit (minimum_fits_retention). Refused here when the
  // retention is known: a queue of this stack with retentionPeriod set (unset: 4 days, which any
  // delay fits).
  const retentionSeconds = knownRetentionSeconds(props.queue);
  if (
    rejitterEnabled &&
    retentionSeconds !== undefined &&
    known(rejitterMinSeconds) &&
    rejitterMinSeconds * 4 > retentionSeconds
  ) {
    p.add(
      'rejitter.minDelay',
      `must be at most a quarter of the queue's retention (${retentionSeconds} seconds: a re-jittered copy's retention ` +
        `counts from its send, delay included), got ${rejitterMinSeconds} seconds; lower it or lengthen the queue retentionPeriod`,
    );
  }
  const rejitterWorkers = p.integer(LIMITS.rejitterWorkers, r.workers, ` (${LIMITS.rejitterWorkers.why})`);
  const rejitterSliceSeconds = p.seconds(
    LIMITS.rejitterSliceSeconds,
    r.sliceDuration,
    ' (a Lambda runs at most 15 minutes; one minute is kept as margin)',
  );
  const rejitterMemoryMiB = p.mebibytes(LIMITS.rejitterMemoryMiB, r.memorySize, " (Lambda's memory sizes)");

  // Ramp.
  const rp = props.ramp ?? {};
  const rampStart = p.integer(
    LIMITS.rampStart,
    rp.startConcurrency,
    " (the limits of an event-source mapping's MaximumConcurrency)",
  );
  const rampSteps = p.integer(LIMITS.rampSteps, rp.steps);
  const rampIntervalSeconds = p.seconds(LIMITS.rampIntervalSeconds, rp.stepInterval);
  const relapseErrorRatePercent = p.percent(LIMITS.relapseErrorRatePercent, rp.relapseErrorRatePercent);

  // Lifetime.
  const maxOpenSeconds =
    props.maxOpenDuration === undefined ? undefined : p.seconds(LIMITS.maxOpenSeconds, props.maxOpenDuration);
  if (props.maxIterationsPerExecution !== undefined) {
    p.add(
      'maxIterationsPerExecution',
      'was replaced by historyEventBudget (the budget now counts history events, not backoff turns, so that re-jitter slices, ramp steps and relapses count too); remove it',
    );
  }
  const historyEventBudget = p.integer(
    LIMITS.historyEventBudget,
    props.historyEventBudget,
    ' (history events per execution before it continues as new; Step Functions holds at most 25,000)',
  );

  // Lambda.
  const lambdaMemorySize = p.integer(LIMITS.lambdaMemorySize, props.lambdaMemorySize);
  if (
    props.lambdaArchitecture !== undefined &&
    props.lambdaArchitecture.name !== lambda.Architecture.ARM_64.name &&
    props.lambdaCode === undefined
  ) {
    p.add(
      'lambdaArchitecture',
      `${props.lambdaArchitecture.name} needs lambdaCode built for it; the shipped bootstrap is arm64 (or remove lambdaArchitecture)`,
    );
  }

  // Notifications.
  const allEvents = Object.values(CircuitEvent) as string[];
  const chosen = props.notificationEvents;
  if (chosen !== undefined && props.notificationTopic === undefined) {
    p.add(
      'notificationEvents',
      'needs notificationTopic (the topic the events are delivered to); pass notificationTopic, or remove notificationEvents',
    );
  }
  if (chosen !== undefined) {
    const seen = new Set<string>();
    for (const e of chosen) {
      if (!allEvents.includes(e)) {
        p.add(
          'notificationEvents',
          `unknown event ${JSON.stringify(e)}; use CircuitEvent values (${allEvents.map((v) => `'${v}'`).join(', ')})`,
        );
      } else if (seen.has(e)) {
        p.add('notificationEvents', `'${e}' is listed twice; list each event once`);
      }
      seen.add(e);
    }
  }
  const notificationEvents =
    props.notificationTopic === undefined ? [] : [...new Set(chosen ?? DEFAULT_NOTIFICATION_EVENTS)];

  // Dashboard.
  const d = props.dashboard;
  const nameProblem = d?.dashboardName === undefined ? undefined : dashboardNameProblem(d.dashboardName);
  if (nameProblem !== undefined) p.add('dashboard.dashboardName', nameProblem);
  const periodProblem = d?.period === undefined ? undefined : dashboardPeriodProblem(d.period);
  if (periodProblem !== undefined) p.add('dashboard.period', periodProblem);

  if (p.list.length > 0) {
    throw new Error(`SqsCircuitBreaker at '${path}' has invalid props:\n${p.list.map((l) => `  - ${l}`).join('\n')}`);
  }

  return {
    alarmResolution,
    telemetryLayerTarget: alarmResolution === AlarmResolution.HIGH && canAddLayer ? own : undefined,
    errorRateThresholdPercent,
    minInvocations,
    slowConsumer,
    alarmPeriodSeconds,
    evaluationPeriods,
    datapointsToAlarm,
    backoffInitialSeconds,
    backoffMaxSeconds,
    backoffLongMaxSeconds,
    backoffMultiplier,
    probeCount,
    probeVisibilitySeconds,
    consumerTimeoutSeconds,
    consumerTimeoutAssumed,
    rejitterEnabled,
    rejitterMinSeconds,
    rejitterMaxSeconds,
    rejitterWorkers,
    rejitterSliceSeconds,
    rampStart,
    rampSteps,
    rampIntervalSeconds,
    relapseErrorRatePercent,
    maxOpenSeconds: maxOpenSeconds === undefined || maxOpenSeconds === 0 ? undefined : maxOpenSeconds,
    historyEventBudget,
    lambdaMemorySize,
    rejitterMemoryMiB,
    notificationEvents,
  };
}
