import * as cdk from 'aws-cdk-lib';
import { AlarmResolution, SqsCircuitBreakerProps } from 'sqs-circuit-breaker';

/**
 * Timings of the example, chosen by the CDK context key `demo`:
 * - `cdk deploy` (default): sensible values for a real AWS account, mostly the construct's own
 *   defaults;
 * - `cdk deploy -c demo=true`: short periods so the whole trip → backoff → probe → re-jitter →
 *   ramp → closed loop takes a few minutes, as the local cloud demo needs;
 * - `cdk deploy -c chaos=true`: shorter still (10 s alarm period, 2–6 s backoff, 5 s ramp steps),
 *   for the fault campaign on the local cloud (`npm run chaos`).
 *
 * `-c alarmPeriodSeconds=N` overrides the alarm period of either profile;
 * `-c queueRetentionSeconds=N` the orders queue's retention (60–1,209,600 s; the keep-alive
 * end-to-end test uses a short one);
 * `-c maxReceiveCount=N` the orders queue's redrive `maxReceiveCount` (1–1,000; the low-limit
 * end-to-end test uses 2);
 * `-c mappingMode=provisioned` puts the orders mapping in provisioned mode
 * (`ProvisionedPollerConfig` MinimumPollers 2, MaximumPollers 10, and no `maxConcurrency`: AWS
 * refuses the two together), which the breaker ramps through its pollers (the provisioned-mode
 * end-to-end test); `on-demand` (the default) keeps `maxConcurrency` 10;
 * `-c queueType=fifo` makes the orders queue and its DLQ FIFO queues and hands the breaker the
 * queue imported through its ARN token, so the construct cannot see at synth that it is FIFO (the
 * FIFO end-to-end test); the alarm then needs only 1 invocation per period (see
 * {@link FIFO_MIN_INVOCATIONS}). `standard` is the default;
 * `-c consumerAlias=NAME` publishes a version of the consumer, gives it the alias NAME and makes
 * that alias the mapping's target and the breaker's consumer (the alias end-to-end test);
 * `-c alarmResolution=standard` makes the alarm read Lambda's one-minute metrics instead of the
 * telemetry extension's (`high`, the construct's default here); with `standard` the alarm period
 * must be whole minutes (`-c alarmPeriodSeconds=60`; the trip-time comparison of the README);
 * `-c secondBreaker=true` adds a second consumer with its own queue, failure flag and breaker (the
 * two-breaker end-to-end test); `false` is the default.
 */
export interface ExampleSettings {
  /** Which profile these settings came from. */
  readonly profile: 'default' | 'demo' | 'chaos';
  /** Consumer function timeout. */
  readonly consumerTimeout: cdk.Duration;
  /** Orders queue visibility timeout (must be at least the consumer timeout). */
  readonly visibilityTimeout: cdk.Duration;
  /** Receives before a message goes to the DLQ; must outlast the time it takes to trip. */
  readonly maxReceiveCount: number;
  /** Orders queue `MessageRetentionPeriod`. */
  readonly queueRetention: cdk.Duration;
  /** Alarm period. */
  readonly alarmPeriod: cdk.Duration;
  /** Alarm: periods evaluated (N of M-of-N). */
  readonly alarmEvaluationPeriods: number;
  /** Alarm: breaching periods that trip (M of M-of-N). */
  readonly alarmDatapoints: number;
  /** Alarm: invocations a period needs before its error rate counts. */
  readonly alarmMinInvocations: number;
  /** Backoff before the first probe. */
  readonly backoffInitial: cdk.Duration;
  /** Longest backoff. */
  readonly backoffMax: cdk.Duration;
  /** Probe visibility timeout (must exceed the consumer timeout). */
  readonly probeVisibility: cdk.Duration;
  /**
   * Longest re-jitter delay: the most a plan may size the window to (it sizes the window to the
   * backlog, issue 16).
   * @default - the construct's default (`rejitter.maxDelay`)
   */
  readonly rejitterMaxDelay?: cdk.Duration;
  /** Re-jitter slice. */
  readonly rejitterSlice: cdk.Duration;
  /** Ramp steps. */
  readonly rampSteps: number;
  /** Time between ramp steps. */
  readonly rampInterval: cdk.Duration;
  /**
   * The orders mapping's provisioned mode, when it has one.
   *
   * @default - on-demand mode with `maxConcurrency` 10
   */
  readonly provisionedPollers?: { readonly minimumPollers: number; readonly maximumPollers: number };
  /**
   * Whether the orders queue and its DLQ are FIFO queues.
   *
   * @default false
   */
  readonly fifo?: boolean;
  /**
   * An alias (of a published version) the mapping invokes and the breaker protects.
   *
   * @default - the mapping invokes the function itself
   */
  readonly consumerAlias?: string;
  /**
   * Memory of the breaker's re-jitter function.
   * @default - the construct's default (`rejitter.memorySize`)
   */
  readonly rejitterMemory?: cdk.Size;
  /**
   * Re-jitter workers (the construct's `rejitter.workers`).
   * @default - the construct's default
   */
  readonly rejitterWorkers?: number;
  /**
   * The alarm's metric resolution (the construct's `alarmSettings.resolution`).
   * @default - the construct's default (`HIGH` for this app's consumer)
   */
  readonly alarmResolution?: AlarmResolution;
  /**
   * Whether the stack has a second consumer with a breaker of its own (the payments line,
   * `lib/payments.ts`), notifying the same topic.
   * @default false
   */
  readonly secondBreaker?: boolean;
}

/**
 * The alarm's `minInvocations` on a FIFO queue. A FIFO queue hands out no further message of a
 * group while one is in flight, so a failing consumer gets one batch per visibility timeout (all
 * the groups' heads together) instead of a batch per poll: 3 invocations in a 10-second period
 * (the demo profile's minimum) never happen, and the alarm would never trip. One failing
 * invocation per period is the evidence a FIFO consumer gives.
 */
export const FIFO_MIN_INVOCATIONS = 1;

const DEFAULT: ExampleSettings = {
  profile: 'default',
  consumerTimeout: cdk.Duration.seconds(10),
  visibilityTimeout: cdk.Duration.seconds(60),
  // Tripping takes up to ~4 minutes (2 of 3 one-minute periods plus metric delay): at one receive
  // per visibility timeout a failing message is received ~4 times before the ESM is disabled.
  maxReceiveCount: 10,
  queueRetention: cdk.Duration.days(4),
  alarmPeriod: cdk.Duration.minutes(1),
  alarmEvaluationPeriods: 3,
  alarmDatapoints: 2,
  alarmMinInvocations: 5,
  backoffInitial: cdk.Duration.seconds(30),
  backoffMax: cdk.Duration.minutes(5),
  probeVisibility: cdk.Duration.seconds(60),
  rejitterSlice: cdk.Duration.minutes(1),
  rampSteps: 3,
  rampInterval: cdk.Duration.minutes(1),
};

const DEMO: ExampleSettings = {
  profile: 'demo',
  consumerTimeout: cdk.Duration.seconds(5),
  visibilityTimeout: cdk.Duration.seconds(15),
  // One breaching period trips, but a failing message is received every 15 s until then.
  maxReceiveCount: 20,
  queueRetention: cdk.Duration.days(4),
  alarmPeriod: cdk.Duration.minutes(1),
  alarmEvaluationPeriods: 1,
  alarmDatapoints: 1,
  alarmMinInvocations: 3,
  backoffInitial: cdk.Duration.seconds(5),
  backoffMax: cdk.Duration.seconds(20),
  probeVisibility: cdk.Duration.seconds(30),
  // The construct's re-jitter window (rejitter.maxDelay unset): the plan sizes it to the backlog,
  // so a demo's few hundred orders come back within seconds, not spread over five minutes.
  rejitterSlice: cdk.Duration.seconds(10),
  rampSteps: 2,
  rampInterval: cdk.Duration.seconds(20),
};

/**
 * The breaker props the profile sets (alarm, backoff, probe, re-jitter and ramp timings): one
 * place for every breaker of the example stack, the orders line's and the payments line's.
 */
export function breakerTimings(
  s: ExampleSettings,
): Pick<SqsCircuitBreakerProps, 'alarmSettings' | 'backoff' | 'probe' | 'rejitter' | 'ramp'> {
  return {
    alarmSettings: {
      resolution: s.alarmResolution,
      period: s.alarmPeriod,
      evaluationPeriods: s.alarmEvaluationPeriods,
      datapointsToAlarm: s.alarmDatapoints,
      minInvocations: s.alarmMinInvocations,
    },
    backoff: { initialDelay: s.backoffInitial, maxDelay: s.backoffMax },
    probe: { visibilityTimeout: s.probeVisibility },
    rejitter: {
      maxDelay: s.rejitterMaxDelay,
      sliceDuration: s.rejitterSlice,
      memorySize: s.rejitterMemory,
      workers: s.rejitterWorkers,
    },
    ramp: { steps: s.rampSteps, stepInterval: s.rampInterval },
  };
}

/**
 * Reads the settings from the app's context (`demo`, `alarmPeriodSeconds`, `queueRetentionSeconds`,
 * `maxReceiveCount`, `mappingMode`, `queueType`, `consumerAlias`, `alarmResolution`, `secondBreaker`).
 */
// `-c chaos=true`: the fault campaign's timings (test/localcloud/chaos.py), shorter still than the
// demo's so that a schedule (outage, faults, recovery, drain) takes about a minute. A failing
// message is received every 6 s; 15 receives outlast any trip, probe and recovery of a schedule.
const CHAOS: ExampleSettings = {
  ...DEMO,
  profile: 'chaos',
  consumerTimeout: cdk.Duration.seconds(3),
  visibilityTimeout: cdk.Duration.seconds(6),
  maxReceiveCount: 15,
  alarmPeriod: cdk.Duration.seconds(10),
  backoffInitial: cdk.Duration.seconds(2),
  backoffMax: cdk.Duration.seconds(6),
  probeVisibility: cdk.Duration.seconds(20),
  rejitterMaxDelay: cdk.Duration.seconds(5),
  rejitterSlice: cdk.Duration.seconds(5),
  rampSteps: 2,
  rampInterval: cdk.Duration.seconds(5),
  // the smallest memory: each re-jitter lane moves one message at a time, so a slice sends after
  // it has deleted (the campaign kills a worker there)
  rejitterMemory: cdk.Size.mebibytes(128),
  // two workers share the backlog of one schedule (about a hundred orders): several rounds each
  rejitterWorkers: 2,
};

export function settingsFromContext(node: { tryGetContext(key: string): unknown }): ExampleSettings {
  const demo = node.tryGetContext('demo');
  const chaos = node.tryGetContext('chaos');
  let base = chaos === true || chaos === 'true' ? CHAOS : demo === true || demo === 'true' ? DEMO : DEFAULT;
  const receives = node.tryGetContext('maxReceiveCount');
  if (receives !== undefined) {
    const n = Number(receives);
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      throw new Error(
        `context maxReceiveCount must be a whole number from 1 to 1000 (SQS's redrive policy limits), got ${JSON.stringify(receives)}`,
      );
    }
    base = { ...base, maxReceiveCount: n };
  }
  const mode = node.tryGetContext('mappingMode');
  if (mode !== undefined && mode !== 'on-demand' && mode !== 'provisioned') {
    throw new Error(`context mappingMode must be on-demand or provisioned, got ${JSON.stringify(mode)}`);
  }
  if (mode === 'provisioned') {
    base = { ...base, provisionedPollers: { minimumPollers: 2, maximumPollers: 10 } };
  }
  const queueType = node.tryGetContext('queueType');
  if (queueType !== undefined && queueType !== 'standard' && queueType !== 'fifo') {
    throw new Error(`context queueType must be standard or fifo, got ${JSON.stringify(queueType)}`);
  }
  if (queueType === 'fifo') {
    base = { ...base, fifo: true, alarmMinInvocations: FIFO_MIN_INVOCATIONS };
  }
  const alias = node.tryGetContext('consumerAlias');
  if (alias !== undefined) {
    // Lambda's alias names: (?!^[0-9]+$)([a-zA-Z0-9-_]+), 1-128 characters (CreateAlias `Name`).
    if (typeof alias !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(alias) || /^[0-9]+$/.test(alias)) {
      throw new Error(
        `context consumerAlias must be a Lambda alias name (1-128 of A-Z, a-z, 0-9, - and _, not only digits), got ${JSON.stringify(alias)}`,
      );
    }
    base = { ...base, consumerAlias: alias };
  }
  const resolution = node.tryGetContext('alarmResolution');
  if (resolution !== undefined) {
    const known = Object.values(AlarmResolution) as unknown[];
    if (!known.includes(resolution)) {
      throw new Error(`context alarmResolution must be ${known.join(' or ')}, got ${JSON.stringify(resolution)}`);
    }
    base = { ...base, alarmResolution: resolution as AlarmResolution };
  }
  const second = node.tryGetContext('secondBreaker');
  if (second !== undefined) {
    if (second !== true && second !== false && second !== 'true' && second !== 'false') {
      throw new Error(`context secondBreaker must be true or false, got ${JSON.stringify(second)}`);
    }
    base = { ...base, secondBreaker: second === true || second === 'true' };
  }
  const retention = node.tryGetContext('queueRetentionSeconds');
  if (retention !== undefined) {
    const seconds = Number(retention);
    if (!Number.isInteger(seconds) || seconds < 60 || seconds > 1_209_600) {
      throw new Error(
        `context queueRetentionSeconds must be a whole number of seconds from 60 to 1209600 (SQS's limits), got ${JSON.stringify(retention)}`,
      );
    }
    base = { ...base, queueRetention: cdk.Duration.seconds(seconds) };
  }
  const period = node.tryGetContext('alarmPeriodSeconds');
  if (period === undefined) return base;
  const seconds = Number(period);
  if (!Number.isInteger(seconds) || seconds <= 0) {
    throw new Error(
      `context alarmPeriodSeconds must be a positive whole number of seconds, got ${JSON.stringify(period)}`,
    );
  }
  return { ...base, alarmPeriod: cdk.Duration.seconds(seconds) };
}
