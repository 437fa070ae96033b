import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { SqsCircuitBreaker } from './breaker';
import metricsTable from './metrics.json';
import { CircuitDashboardOptions } from './props';

/**
 * The breaker's CloudWatch widgets (issue 18), in the style of cdk-monitoring-constructs: built
 * only from the construct's own metric helpers, the queue's metrics and the alarms, so that they
 * name nothing the handlers do not publish (`metrics.json`). The breaker's `dashboard` holds them,
 * and `widgets()` hands them to a dashboard of the user's own.
 *
 * Not graphed, for want of a metric: the number of messages re-jitter moved (only its skips,
 * `RejitterSkips`, are counted) and the ramp's `MaximumConcurrency` (its start is in the
 * "Circuit Half-Open" event, not in a metric; the circuit-state graph shows the half-open phase).
 */

/** What the widgets show beyond the breaker's public members. */
export interface CircuitWidgetSource {
  /** The consumer's queue. */
  readonly queue: sqs.IQueue;
  /**
   * Its dead-letter queue, when the construct knows it (see {@link deadLetterQueueOf});
   * `undefined`: no DLQ graph.
   */
  readonly deadLetterQueue?: sqs.IQueue;
}

/**
 * The queue's dead-letter queue as far as the construct can know it: the `deadLetterQueue` of an
 * `sqs.Queue` of this app. An imported `IQueue` carries no redrive policy (the probe reads it at
 * run time), so it has none here.
 */
export function deadLetterQueueOf(queue: sqs.IQueue): sqs.IQueue | undefined {
  return queue instanceof sqs.Queue ? queue.deadLetterQueue?.queue : undefined;
}

/** The default period of the graphs: the queue's, the state machine's and the breaker's metrics are per minute. */
const DEFAULT_PERIOD = cdk.Duration.minutes(1);

/** CloudWatch dashboard names: "alphanumerics, dash (-), and underscore (_)", up to 255. */
const DASHBOARD_NAME = /^[A-Za-z0-9_-]{1,255}$/;

/** What is wrong with a dashboard name, or `undefined` (a token is not judged). */
export function dashboardNameProblem(name: string): string | undefined {
  if (cdk.Token.isUnresolved(name) || DASHBOARD_NAME.test(name)) return undefined;
  return `must be 1 to 255 letters, digits, '-' or '_' (CloudWatch dashboard names), got '${name}'`;
}

/** What is wrong with a graph period, or `undefined` (a token is not judged). */
export function dashboardPeriodProblem(period: cdk.Duration): string | undefined {
  if (period.isUnresolved()) return undefined;
  const ms = period.toMilliseconds();
  if (ms > 0 && ms % 60_000 === 0) return undefined;
  return `must be a whole number of minutes (the queue's, the state machine's and the breaker's metrics are per minute), got ${ms / 1000} seconds; use Duration.minutes(1) or longer`;
}

/** `stuckOpen` → `stuck open`. */
function stateName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
}

/** The circuit states as the graph's legend says them: `0 closed, 1 half-open, 2 open, 3 stuck open`. */
const STATE_LEGEND = Object.entries(metricsTable.circuitStates)
  .sort(([, a], [, b]) => a - b)
  .map(([key, value]) => `${value} ${stateName(key)}`)
  .join(', ');

/** The graph period of `metric` (a `Metric` or a `MathExpression`), else `fallback`. */
function periodOf(metric: cloudwatch.IMetric, fallback: cdk.Duration): cdk.Duration {
  const p = (metric as { period?: unknown }).period;
  return p instanceof cdk.Duration ? p : fallback;
}

/**
 * The consumer's error rate as the alarm sees it: for an alarm of this app (the breaker's, or one
 * given as a `cloudwatch.Alarm`), its own metric in its own period (10 s with
 * `AlarmResolution.HIGH`: the telemetry extension's per-second metrics) with the threshold as a
 * horizontal line; for an imported alarm, CloudWatch's alarm graph (the alarm's metric and
 * threshold, read by ARN).
 */
function errorRateWidget(breaker: SqsCircuitBreaker, period: cdk.Duration): cloudwatch.IWidget {
  const alarm = breaker.alarm;
  const size = { width: 12, height: 6 };
  if (!(alarm instanceof cloudwatch.Alarm)) {
    return new cloudwatch.AlarmWidget({ title: 'Alarm that opens the circuit', alarm, leftYAxis: { min: 0 }, ...size });
  }
  const alarmPeriod = periodOf(alarm.metric, period);
  return new cloudwatch.GraphWidget({
    title: `Consumer error rate vs. alarm threshold (${alarmPeriod.toSeconds()} s periods)`,
    left: [alarm.metric],
    leftAnnotations: [{ ...alarm.toAnnotation(), label: 'alarm threshold' }],
    leftYAxis: { min: 0, showUnits: false },
    period: alarmPeriod,
    ...size,
  });
}

/**
 * The breaker's widgets, in rows of the full dashboard width (24): a title; circuit state and the
 * error rate against the alarm threshold; queue depth, age of the oldest message and, when the
 * construct knows the DLQ, its depth; the breaker's events and the recoveries started and failed;
 * the state of the alarm and of the recovery alarm.
 *
 * @param what how a bad `period` is named in the error (`widgets() period`)
 */
export function circuitWidgets(breaker: SqsCircuitBreaker, source: CircuitWidgetSource, givenPeriod: cdk.Duration | undefined, what: string): cloudwatch.IWidget[] {
  const problem = givenPeriod === undefined ? undefined : dashboardPeriodProblem(givenPeriod);
  if (problem !== undefined) throw new Error(`SqsCircuitBreaker at '${breaker.node.path}': ${what}: ${problem}`);
  const period = givenPeriod ?? DEFAULT_PERIOD;
  const o = { period };

  const title = new cloudwatch.TextWidget({
    markdown: `### sqs-circuit-breaker: circuit \`${breaker.circuitName}\``,
    width: 24,
    height: 1,
  });

  // One datapoint per transition: hold the last state between them.
  const state = new cloudwatch.GraphWidget({
    title: `Circuit state (${STATE_LEGEND})`,
    left: [new cloudwatch.MathExpression({
      expression: 'FILL(state, REPEAT)',
      usingMetrics: { state: breaker.metricCircuitState(o) },
      label: 'circuit state',
      period,
    })],
    leftYAxis: { min: 0, max: metricsTable.circuitStates.stuckOpen, showUnits: false },
    legendPosition: cloudwatch.LegendPosition.HIDDEN,
    period,
    width: 12,
    height: 6,
  });

  const queues: cloudwatch.IWidget[] = [];
  const third = source.deadLetterQueue === undefined ? 12 : 8;
  queues.push(new cloudwatch.GraphWidget({
    title: 'Queue: messages visible',
    left: [source.queue.metricApproximateNumberOfMessagesVisible({ ...o, label: 'visible' })],
    leftYAxis: { min: 0, showUnits: false },
    period,
    width: third,
    height: 6,
  }));
  queues.push(new cloudwatch.GraphWidget({
    title: 'Queue: age of the oldest message',
    left: [source.queue.metricApproximateAgeOfOldestMessage({ ...o, label: 'age (s)' })],
    leftYAxis: { min: 0, showUnits: false },
    period,
    width: third,
    height: 6,
  }));
  if (source.deadLetterQueue !== undefined) {
    queues.push(new cloudwatch.GraphWidget({
      title: 'Dead-letter queue: messages visible',
      left: [source.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ ...o, label: 'visible' })],
      leftYAxis: { min: 0, showUnits: false },
      period,
      width: third,
      height: 6,
    }));
  }

  // Every event of metrics.json: through the construct's helper where it has one.
  const helpers: Partial<Record<string, (options: cloudwatch.MetricOptions) => cloudwatch.Metric>> = {
    'Circuit Opened': (m) => breaker.metricOpens(m),
    'Probe Failed': (m) => breaker.metricProbesFailed(m),
    'Circuit Half-Open': (m) => breaker.metricHalfOpens(m),
    'Circuit Closed': (m) => breaker.metricCloses(m),
    'Circuit Stuck Open': (m) => breaker.metricStuckOpens(m),
  };
  const eventMetrics = Object.entries(metricsTable.events).map(([detailType, e]) => {
    const options = { ...o, label: detailType };
    return helpers[detailType]?.(options) ?? new cloudwatch.Metric({
      namespace: metricsTable.namespace,
      metricName: e.metric,
      dimensionsMap: { [metricsTable.dimension]: breaker.circuitName },
      statistic: cloudwatch.Stats.SUM,
      unit: cloudwatch.Unit.COUNT,
      ...options,
    });
  });
  const events = new cloudwatch.GraphWidget({
    title: 'Breaker events (count)',
    left: eventMetrics,
    leftYAxis: { min: 0, showUnits: false },
    period,
    width: 12,
    height: 6,
  });
  const recoveries = new cloudwatch.GraphWidget({
    title: 'Recoveries (state machine executions)',
    left: [
      breaker.metricRecoveriesStarted({ ...o, label: 'started' }),
      breaker.metricRecoveriesFailed({ ...o, label: 'failed' }),
    ],
    leftYAxis: { min: 0, showUnits: false },
    period,
    width: 12,
    height: 6,
  });

  const alarms = new cloudwatch.AlarmStatusWidget({
    title: 'Alarms: opens the circuit / recovery stuck or failed',
    alarms: [breaker.alarm, ...(breaker.recoveryAlarm ? [breaker.recoveryAlarm] : [])],
    width: 24,
    height: 2,
  });

  return [title, state, errorRateWidget(breaker, period), ...queues, events, recoveries, alarms];
}

/** The breaker's dashboard: `circuitWidgets` in one `AWS::CloudWatch::Dashboard`. */
export function createDashboard(scope: Construct, breaker: SqsCircuitBreaker, source: CircuitWidgetSource, options: CircuitDashboardOptions): cloudwatch.Dashboard {
  return new cloudwatch.Dashboard(scope, 'Dashboard', {
    dashboardName: options.dashboardName,
    widgets: [circuitWidgets(breaker, source, options.period, 'dashboard.period')],
  });
}
