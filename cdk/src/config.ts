import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsCircuitBreakerProps } from './props';

/** Defaults of every tunable, in the units the handlers' environment uses (see CONTRACT.md). */
export const DEFAULTS = {
  errorRateThresholdPercent: 50,
  minInvocations: 5,
  alarmPeriodSeconds: 60,
  evaluationPeriods: 3,
  datapointsToAlarm: 2,
  backoffInitialSeconds: 30,
  backoffMaxSeconds: 900,
  backoffMultiplier: 2,
  probeCount: 1,
  probeVisibilitySeconds: 960,
  rejitterMinSeconds: 0,
  rejitterMaxSeconds: 300,
  rejitterWorkers: 4,
  rejitterSliceSeconds: 60,
  rampStart: 2,
  rampSteps: 3,
  rampIntervalSeconds: 60,
  relapseErrorRatePercent: 50,
  /** `HISTORY_EVENT_BUDGET`: `breaker_core::config::defaults::HISTORY_EVENT_BUDGET`. */
  historyEventBudget: 10_000,
  lambdaMemorySize: 128,
} as const;

/**
 * The probe's time budget, in seconds: a copy of `breaker_core::timeouts` (PROBE_FUNCTION_TIMEOUT_SECONDS,
 * PROBE_RECEIVE_SECONDS, INVOKE_MARGIN_SECONDS, PROBE_SETTLE_SECONDS; CONTRACT.md "Timeouts"). The probe
 * function runs at most `functionSeconds`; before the invoke it receives (an SDK call that gives up
 * after `receiveSeconds`), the invoke may last `invokeMarginSeconds` beyond the consumer's timeout
 * (cold start, network), and afterwards the probe settles the messages within `settleSeconds`.
 */
export const PROBE_BUDGET = {
  functionSeconds: 900,
  receiveSeconds: 30,
  invokeMarginSeconds: 15,
  settleSeconds: 60,
} as const;

/** The longest consumer timeout a probe accommodates: 795 seconds. */
export const MAX_CONSUMER_TIMEOUT_SECONDS = PROBE_BUDGET.functionSeconds - PROBE_BUDGET.receiveSeconds - PROBE_BUDGET.invokeMarginSeconds - PROBE_BUDGET.settleSeconds;

/** Lambda's timeout of a function that sets none. */
const LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3;

/**
 * The function behind `consumer` when it is defined in this app (directly, or through an alias or a
 * version of it), so that its timeout is known; `undefined` for an imported function.
 */
function consumerFunction(consumer: lambda.IFunction): lambda.Function | undefined {
  if (consumer instanceof lambda.Function) return consumer;
  if (consumer instanceof lambda.Alias) return consumerFunction(consumer.version.lambda);
  if (consumer instanceof lambda.Version) return consumerFunction(consumer.lambda);
  return undefined;
}

/** Props reduced to plain numbers, after validation. Unresolved tokens are passed through. */
export interface ResolvedConfig {
  readonly errorRateThresholdPercent: number;
  readonly minInvocations: number;
  readonly alarmPeriodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly backoffInitialSeconds: number;
  readonly backoffMaxSeconds: number;
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
}

/** True when every value is a plain number (not a token), so that comparing them means something. */
function known(...values: number[]): boolean {
  return values.every((v) => !cdk.Token.isUnresolved(v));
}

/** Collects every problem with the props so that one error can name them all. */
class Problems {
  readonly list: string[] = [];

  add(prop: string, problem: string): void {
    this.list.push(`${prop}: ${problem}`);
  }

  /** A whole number of seconds > 0 (or >= 0 with `allowZero`), within `max` when given. */
  seconds(prop: string, value: cdk.Duration | undefined, fallback: number, opts: { allowZero?: boolean; max?: number; fix?: string } = {}): number {
    if (value === undefined) return fallback;
    if (value.isUnresolved()) return value.toSeconds();
    const ms = value.toMilliseconds();
    const fix = opts.fix ?? '';
    if (ms < 0 || (ms === 0 && !opts.allowZero)) {
      this.add(prop, `must be ${opts.allowZero ? 'zero or positive' : 'positive'}, got ${ms / 1000} seconds${fix}`);
      return fallback;
    }
    if (ms % 1000 !== 0) {
      this.add(prop, `must be a whole number of seconds, got ${ms} ms; use Duration.seconds(${Math.ceil(ms / 1000)})`);
      return fallback;
    }
    const s = ms / 1000;
    if (opts.max !== undefined && s > opts.max) {
      this.add(prop, `must be at most ${opts.max} seconds, got ${s} seconds${fix}`);
    }
    return s;
  }

  /** An integer in [min, max]. */
  integer(prop: string, value: number | undefined, fallback: number, min: number, max: number, fix = ''): number {
    if (value === undefined) return fallback;
    if (cdk.Token.isUnresolved(value)) return value;
    if (!Number.isInteger(value) || value < min || value > max) {
      this.add(prop, `must be a whole number from ${min} to ${max}, got ${value}${fix}`);
    }
    return value;
  }

  /** A percentage in (0, 100]. */
  percent(prop: string, value: number | undefined, fallback: number): number {
    if (value === undefined) return fallback;
    if (cdk.Token.isUnresolved(value)) return value;
    if (!Number.isFinite(value) || value <= 0 || value > 100) {
      this.add(prop, `must be greater than 0 and at most 100, got ${value}`);
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
    p.add('eventSourceMapping', 'missing; pass the consumer\'s event-source mapping or its UUID as eventSourceMappingId');
  } else if (props.eventSourceMapping !== undefined && props.eventSourceMappingId !== undefined) {
    p.add('eventSourceMappingId', 'cannot be combined with eventSourceMapping; pass only one of them');
  }

  if (props.circuitName !== undefined && !cdk.Token.isUnresolved(props.circuitName) && !/^[A-Za-z0-9._-]{1,64}$/.test(props.circuitName)) {
    p.add('circuitName', `must be 1 to 64 letters, digits, '.', '_' or '-', got '${props.circuitName}'`);
  }

  // Alarm.
  if (props.alarm !== undefined && props.alarmSettings !== undefined) {
    p.add('alarmSettings', 'cannot be combined with alarm; remove alarmSettings to use your alarm, or remove alarm to let the breaker create one');
  }
  const a = props.alarmSettings ?? {};
  const errorRateThresholdPercent = p.percent('alarmSettings.errorRateThresholdPercent', a.errorRateThresholdPercent, DEFAULTS.errorRateThresholdPercent);
  const minInvocations = p.integer('alarmSettings.minInvocations', a.minInvocations, DEFAULTS.minInvocations, 1, 1_000_000);
  const alarmPeriodSeconds = p.seconds('alarmSettings.period', a.period, DEFAULTS.alarmPeriodSeconds);
  // CloudWatch accepts 10, 20 and 30 s (high-resolution metrics) or whole minutes. AWS/Lambda
  // metrics are per minute, so sub-minute periods only make sense where metrics are published at
  // high resolution (e.g. the local cloud's demo); the default is 60 s.
  if (known(alarmPeriodSeconds) && alarmPeriodSeconds > 0 && alarmPeriodSeconds % 60 !== 0 && ![10, 20, 30].includes(alarmPeriodSeconds)) {
    p.add('alarmSettings.period', `must be 10, 20 or 30 seconds or a whole number of minutes (CloudWatch alarm periods), got ${alarmPeriodSeconds} seconds`);
  }
  const evaluationPeriods = p.integer('alarmSettings.evaluationPeriods', a.evaluationPeriods, DEFAULTS.evaluationPeriods, 1, 1440);
  const datapointsToAlarm = p.integer('alarmSettings.datapointsToAlarm', a.datapointsToAlarm, DEFAULTS.datapointsToAlarm, 1, 1440);
  if (known(datapointsToAlarm, evaluationPeriods) && datapointsToAlarm > evaluationPeriods) {
    p.add('alarmSettings.datapointsToAlarm', `must not exceed evaluationPeriods (${evaluationPeriods}), got ${datapointsToAlarm}`);
  }
  if (known(alarmPeriodSeconds, evaluationPeriods) && alarmPeriodSeconds * evaluationPeriods > 86_400) {
    p.add('alarmSettings.evaluationPeriods', `period x evaluationPeriods must be at most one day (CloudWatch limit), got ${alarmPeriodSeconds * evaluationPeriods} seconds`);
  }

  // Backoff.
  const b = props.backoff ?? {};
  const backoffInitialSeconds = p.seconds('backoff.initialDelay', b.initialDelay, DEFAULTS.backoffInitialSeconds);
  const backoffMaxSeconds = p.seconds('backoff.maxDelay', b.maxDelay, DEFAULTS.backoffMaxSeconds, { max: 86_400, fix: '; probe at least once a day' });
  if (known(backoffMaxSeconds, backoffInitialSeconds) && backoffMaxSeconds < backoffInitialSeconds) {
    p.add('backoff.maxDelay', `must be at least backoff.initialDelay (${backoffInitialSeconds} seconds), got ${backoffMaxSeconds} seconds`);
  }
  let backoffMultiplier: number = DEFAULTS.backoffMultiplier;
  if (b.multiplier !== undefined && !cdk.Token.isUnresolved(b.multiplier)) {
    backoffMultiplier = b.multiplier;
    if (!Number.isFinite(b.multiplier) || b.multiplier < 1 || b.multiplier > 100) {
      p.add('backoff.multiplier', `must be from 1 (constant backoff) to 100, got ${b.multiplier}`);
    }
  }

  // Probe.
  const pr = props.probe ?? {};
  const probeCount = p.integer('probe.messageCount', pr.messageCount, DEFAULTS.probeCount, 1, 10, ' (SQS receives at most 10 messages at once)');
  const probeVisibilitySeconds = p.seconds('probe.visibilityTimeout', pr.visibilityTimeout, DEFAULTS.probeVisibilitySeconds, { max: 43_200, fix: ' (the SQS visibility limit)' });
  // The consumer's timeout: its own when it is a function of this app, else `consumerTimeout`,
  // else the longest a probe accommodates (the construct warns).
  const own = consumerFunction(props.consumer);
  const ownSeconds = own === undefined ? undefined : (own.timeout?.toSeconds() ?? LAMBDA_DEFAULT_TIMEOUT_SECONDS);
  const givenSeconds = props.consumerTimeout === undefined ? undefined : p.seconds('consumerTimeout', props.consumerTimeout, 0);
  let consumerTimeoutSeconds: number = MAX_CONSUMER_TIMEOUT_SECONDS;
  let timeoutProp = 'consumer';
  if (givenSeconds !== undefined && ownSeconds !== undefined && known(givenSeconds, ownSeconds) && givenSeconds !== ownSeconds) {
    p.add('consumerTimeout', `must match the consumer's own timeout (${ownSeconds} seconds), got ${givenSeconds} seconds; remove it (the breaker reads the timeout of a function defined in this app)`);
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
    p.add(timeoutProp, `the consumer's timeout (${consumerTimeoutSeconds} seconds) does not fit in the probe function's ${b.functionSeconds} seconds `
      + `beside the probe's receive (${b.receiveSeconds} seconds), the invoke's margin (${b.invokeMarginSeconds}) and settling the messages (${b.settleSeconds}); `
      + `lower the consumer's timeout to at most ${MAX_CONSUMER_TIMEOUT_SECONDS} seconds`);
  }
  // A probed message must stay invisible for as long as the invoke may last (judged once the
  // consumer fits: lowering its timeout changes what is needed).
  const invokeSeconds = consumerTimeoutSeconds + PROBE_BUDGET.invokeMarginSeconds;
  if (known(probeVisibilitySeconds, consumerTimeoutSeconds) && consumerTimeoutSeconds <= MAX_CONSUMER_TIMEOUT_SECONDS && probeVisibilitySeconds <= invokeSeconds) {
    p.add('probe.visibilityTimeout', `must exceed the consumer's timeout (${consumerTimeoutSeconds} seconds) plus the invoke's margin (${PROBE_BUDGET.invokeMarginSeconds} seconds), `
      + `${invokeSeconds} seconds, got ${probeVisibilitySeconds} seconds${consumerTimeoutAssumed ? ' (the consumer\'s timeout is assumed; pass consumerTimeout)' : ''}`);
  }

  // Re-jitter.
  const r = props.rejitter ?? {};
  const fifo = !cdk.Token.isUnresolved(props.queue.fifo) && props.queue.fifo === true;
  const rejitterEnabled = r.enabled ?? !fifo;
  if (fifo && r.enabled === true) {
    p.add('rejitter.enabled', 'must be false for a FIFO queue (SQS has no per-message delay there and re-ordering would break message groups); set rejitter: { enabled: false }');
  }
  const rejitterMinSeconds = p.seconds('rejitter.minDelay', r.minDelay, DEFAULTS.rejitterMinSeconds, { allowZero: true, max: 900, fix: ' (the SQS DelaySeconds limit)' });
  const rejitterMaxSeconds = p.seconds('rejitter.maxDelay', r.maxDelay, DEFAULTS.rejitterMaxSeconds, { max: 900, fix: ' (the SQS DelaySeconds limit); use at most Duration.minutes(15)' });
  if (known(rejitterMinSeconds, rejitterMaxSeconds) && rejitterMinSeconds > rejitterMaxSeconds) {
    p.add('rejitter.minDelay', `must not exceed rejitter.maxDelay (${rejitterMaxSeconds} seconds), got ${rejitterMinSeconds} seconds`);
  }
  const rejitterWorkers = p.integer('rejitter.workers', r.workers, DEFAULTS.rejitterWorkers, 1, 50);
  const rejitterSliceSeconds = p.seconds('rejitter.sliceDuration', r.sliceDuration, DEFAULTS.rejitterSliceSeconds, { max: 840, fix: ' (a Lambda runs at most 15 minutes; one minute is kept as margin)' });

  // Ramp.
  const rp = props.ramp ?? {};
  const rampStart = p.integer('ramp.startConcurrency', rp.startConcurrency, DEFAULTS.rampStart, 2, 1000, ' (the limits of an event-source mapping\'s MaximumConcurrency)');
  const rampSteps = p.integer('ramp.steps', rp.steps, DEFAULTS.rampSteps, 1, 100);
  const rampIntervalSeconds = p.seconds('ramp.stepInterval', rp.stepInterval, DEFAULTS.rampIntervalSeconds, { max: 86_400 });
  const relapseErrorRatePercent = p.percent('ramp.relapseErrorRatePercent', rp.relapseErrorRatePercent, DEFAULTS.relapseErrorRatePercent);

  // Lifetime.
  const maxOpenSeconds = props.maxOpenDuration === undefined ? undefined : p.seconds('maxOpenDuration', props.maxOpenDuration, 0, { max: 366 * 86_400 });
  if (props.maxIterationsPerExecution !== undefined) {
    p.add('maxIterationsPerExecution', 'was replaced by historyEventBudget (the budget now counts history events, not backoff turns, so that re-jitter slices, ramp steps and relapses count too); remove it');
  }
  const historyEventBudget = p.integer('historyEventBudget', props.historyEventBudget, DEFAULTS.historyEventBudget, 1000, 20_000, ' (history events per execution before it continues as new; Step Functions holds at most 25,000)');

  // Lambda.
  const lambdaMemorySize = p.integer('lambdaMemorySize', props.lambdaMemorySize, DEFAULTS.lambdaMemorySize, 128, 10_240);
  if (props.lambdaArchitecture !== undefined && props.lambdaArchitecture.name !== lambda.Architecture.ARM_64.name && props.lambdaCode === undefined) {
    p.add('lambdaArchitecture', `${props.lambdaArchitecture.name} needs lambdaCode built for it; the shipped bootstrap is arm64 (or remove lambdaArchitecture)`);
  }

  if (p.list.length > 0) {
    throw new Error(`SqsCircuitBreaker at '${path}' has invalid props:\n${p.list.map((l) => `  - ${l}`).join('\n')}`);
  }

  return {
    errorRateThresholdPercent,
    minInvocations,
    alarmPeriodSeconds,
    evaluationPeriods,
    datapointsToAlarm,
    backoffInitialSeconds,
    backoffMaxSeconds,
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
  };
}
