import * as fs from 'fs';
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AlarmResolution, SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { breakerStack, consumerStack, ENV } from './fixture';

/**
 * Issue 18, the dashboard: an opt-in `AWS::CloudWatch::Dashboard` per breaker (`dashboard`), and
 * the same widgets for a dashboard of the user's own (`widgets()`). Metric names come from the one
 * table, `cdk/src/metrics.json`, never restated here.
 */

const METRICS: {
  namespace: string;
  dimension: string;
  stateMetric: string;
  events: Record<string, { metric: string }>;
} = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk', 'src', 'metrics.json'), 'utf8'));

/** toThrow with an Error compares the whole message, not a substring. */
const exactly = (message: string): Error => new Error(message);

interface Widget {
  readonly type: string;
  readonly width: number;
  readonly height: number;
  readonly x: number;
  readonly y: number;
  readonly properties: {
    readonly title?: string;
    readonly period?: number;
    readonly metrics?: unknown[][];
    readonly annotations?: { horizontal?: Array<{ value: number; label?: string }>; alarms?: string[] };
    readonly alarms?: string[];
  };
}

/**
 * A dashboard body with its tokens written as `<Ref Id>` / `<Id.Attr>` (a synthesized body is an
 * `Fn::Join` of JSON text and references), parsed.
 */
function body(stack: cdk.Stack, dashboard: cloudwatch.Dashboard): { widgets: Widget[] } {
  const cfn = dashboard.node.defaultChild as cloudwatch.CfnDashboard;
  const resolved = stack.resolve(cfn.dashboardBody) as string | { 'Fn::Join': [string, unknown[]] };
  const parts = typeof resolved === 'string' ? [resolved] : resolved['Fn::Join'][1];
  const text = parts.map((p) => {
    if (typeof p === 'string') return p;
    const o = p as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    if (o.Ref !== undefined) return `<Ref ${o.Ref}>`;
    if (o['Fn::GetAtt'] !== undefined) return `<${o['Fn::GetAtt'].join('.')}>`;
    return `<${JSON.stringify(p).replace(/"/g, "'")}>`;
  }).join('');
  return JSON.parse(text);
}

/** The one dashboard of the template, parsed as `body` does. */
function templateBody(stack: cdk.Stack): { widgets: Widget[] } {
  const t = Template.fromStack(stack);
  t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  const dashboards = stack.node.findAll().filter((c): c is cloudwatch.Dashboard => c instanceof cloudwatch.Dashboard);
  expect(dashboards).toHaveLength(1);
  return body(stack, dashboards[0]);
}

/** Every metric line of every graph: namespace, name, dimension pairs (options and expressions left out). */
function metricLines(b: { widgets: Widget[] }): string[][] {
  return b.widgets.flatMap((w) => (w.properties.metrics ?? [])
    .filter((line) => typeof line[0] === 'string')
    .map((line) => line.filter((v): v is string => typeof v === 'string')));
}

function expressions(b: { widgets: Widget[] }): Array<Record<string, unknown>> {
  return b.widgets.flatMap((w) => (w.properties.metrics ?? []).flatMap((line) => line.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && 'expression' in v)));
}

/** A graph's metric line for `metricName`, with its options object. */
function lineOf(b: { widgets: Widget[] }, metricName: string): { strings: string[]; options: Record<string, unknown> } | undefined {
  for (const w of b.widgets) {
    for (const line of w.properties.metrics ?? []) {
      if (line[1] === metricName) {
        const options = (line.find((v) => typeof v === 'object' && v !== null) ?? {}) as Record<string, unknown>;
        return { strings: line.filter((v): v is string => typeof v === 'string'), options: { period: w.properties.period, ...options } };
      }
    }
  }
  return undefined;
}

const breakerLine = (metricName: string, circuit: string) => [METRICS.namespace, metricName, METRICS.dimension, circuit];

describe('the breaker dashboard (opt-in)', () => {
  test('only when asked: none by default, one with `dashboard`, named by `dashboardName` when given', () => {
    const without = breakerStack({ circuitName: 'orders' });
    Template.fromStack(without.stack).resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    expect(without.breaker.dashboard).toBeUndefined();
    const { stack, breaker } = breakerStack({ circuitName: 'orders', dashboard: { dashboardName: 'orders-breaker' } });
    expect(breaker.dashboard).toBeInstanceOf(cloudwatch.Dashboard);
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    t.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'orders-breaker' });
  });

  test('graphs the circuit state and every breaker event of this circuit (namespace and dimension of metrics.json)', () => {
    const { stack } = breakerStack({ circuitName: 'orders', dashboard: {} });
    const b = templateBody(stack);
    const lines = metricLines(b);
    expect(lines).toContainEqual(breakerLine(METRICS.stateMetric, 'orders'));
    for (const e of Object.values(METRICS.events)) expect(lines).toContainEqual(breakerLine(e.metric, 'orders'));
    // The state is one datapoint per transition: the graph holds it between transitions.
    expect(expressions(b)).toContainEqual(expect.objectContaining({ expression: expect.stringMatching(/^FILL\(\w+, REPEAT\)$/) }));
  });

  test('graphs the queue depth, the age of its oldest message and the depth of its DLQ', () => {
    const { stack } = breakerStack({ dashboard: {} });
    const b = templateBody(stack);
    const lines = metricLines(b);
    const queueName = expect.stringMatching(/^<OrdersQueue\w+\.QueueName>$/);
    expect(lines).toContainEqual(['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', queueName]);
    expect(lines).toContainEqual(['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', queueName]);
    expect(lines).toContainEqual(['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', expect.stringMatching(/^<OrdersDlq\w+\.QueueName>$/)]);
  });

  test('a queue whose DLQ the construct cannot know (imported) gets no DLQ graph', () => {
    const f = consumerStack();
    const imported = sqs.Queue.fromQueueArn(f.stack, 'Imported', `arn:aws:sqs:${ENV.region}:${ENV.account}:orders`);
    new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer: f.consumer, queue: imported, eventSourceMappingId: f.source.eventSourceMappingId, dashboard: {} });
    const lines = metricLines(templateBody(f.stack)).filter((l) => l[0] === 'AWS/SQS');
    expect(lines).toEqual([
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', 'orders'],
      ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', 'orders'],
    ]);
  });

  test('graphs the recoveries started and failed (the state machine\'s executions)', () => {
    const { stack } = breakerStack({ dashboard: {} });
    const lines = metricLines(templateBody(stack));
    const sm = expect.stringMatching(/^<Ref OrdersBreakerStateMachine\w+>$/);
    expect(lines).toContainEqual(['AWS/States', 'ExecutionsStarted', 'StateMachineArn', sm]);
    expect(lines).toContainEqual(['AWS/States', 'ExecutionsFailed', 'StateMachineArn', sm]);
  });

  test('graphs the error rate the alarm reads against its threshold, in the alarm\'s 10 s periods with AlarmResolution.HIGH', () => {
    const { stack, breaker } = breakerStack({ dashboard: {}, alarmSettings: { errorRateThresholdPercent: 35 } });
    expect(breaker.alarmResolution).toBe(AlarmResolution.HIGH);
    const b = templateBody(stack);
    const graph = b.widgets.find((w) => (w.properties.annotations?.horizontal ?? []).some((a) => a.value === 35));
    expect(graph).toBeDefined();
    const rate = (graph!.properties.metrics ?? []).flat().find((v) => typeof v === 'object' && v !== null && 'expression' in v) as Record<string, unknown>;
    expect(rate.expression).toMatch(/^IF\(invocations >= \d+, 100 \* \(errors \+ FILL\(partialFailures, 0\)\) \/ invocations, 0\)$/);
    const periods = (graph!.properties.metrics ?? []).map((line) => (line.find((v) => typeof v === 'object' && v !== null && !('expression' in v)) as { period?: number } | undefined)?.period ?? graph!.properties.period);
    expect(new Set(periods)).toEqual(new Set([10]));
    // The per-second metrics of the telemetry extension, not Lambda's one-minute ones.
    expect(metricLines({ widgets: [graph!] }).map((l) => l.slice(0, 2))).toEqual(expect.arrayContaining([
      ['SqsCircuitBreaker/Consumer', 'Errors'], ['SqsCircuitBreaker/Consumer', 'Invocations'],
    ]));
  });

  test('with AlarmResolution.STANDARD the error rate is Lambda\'s, per minute', () => {
    const { stack } = breakerStack({ dashboard: {}, alarmSettings: { resolution: AlarmResolution.STANDARD } });
    const b = templateBody(stack);
    const graph = b.widgets.find((w) => (w.properties.annotations?.horizontal ?? []).some((a) => a.value === 50));
    expect(graph).toBeDefined();
    expect(metricLines({ widgets: [graph!] }).map((l) => l.slice(0, 2))).toEqual(expect.arrayContaining([['AWS/Lambda', 'Errors'], ['AWS/Lambda', 'Invocations']]));
    expect(graph!.properties.period).toBe(60);
  });

  test('shows the state of the alarm and of the recovery alarm', () => {
    const { stack } = breakerStack({ dashboard: {} });
    const b = templateBody(stack);
    const status = b.widgets.find((w) => w.type === 'alarm');
    expect(status?.properties.alarms).toEqual([
      expect.stringMatching(/^<OrdersBreakerAlarm\w+\.Arn>$/),
      expect.stringMatching(/^<OrdersBreakerRecoveryAlarm\w+\.Arn>$/),
    ]);
  });

  test('a given alarm is shown as an alarm graph (its own metric and threshold)', () => {
    const arn = `arn:aws:cloudwatch:${ENV.region}:${ENV.account}:alarm:orders-errors`;
    const f = consumerStack();
    new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
      consumer: f.consumer, queue: f.queue, eventSourceMappingId: f.source.eventSourceMappingId, dashboard: {},
      alarm: cloudwatch.Alarm.fromAlarmArn(f.stack, 'Given', arn),
    });
    const b = templateBody(f.stack);
    expect(b.widgets.filter((w) => w.type === 'metric' && w.properties.annotations?.alarms !== undefined).map((w) => w.properties.annotations!.alarms)).toEqual([[arn]]);
  });

  test('`period` sets the period of the graphs (the alarm\'s error rate keeps the alarm\'s)', () => {
    const { stack } = breakerStack({ circuitName: 'orders', dashboard: { period: cdk.Duration.minutes(5) } });
    const b = templateBody(stack);
    expect(lineOf(b, 'ApproximateNumberOfMessagesVisible')?.options.period).toBe(300);
    expect(lineOf(b, METRICS.events['Circuit Opened'].metric)?.options.period).toBe(300);
    expect(lineOf(b, 'ExecutionsStarted')?.options.period).toBe(300);
    const rate = b.widgets.find((w) => w.properties.annotations?.horizontal !== undefined);
    expect(rate?.properties.period).toBe(10);
  });

  test('the widgets lie in rows of the full dashboard width, none overlapping', () => {
    for (const extra of [{}, { alarm: cloudwatch.Alarm.fromAlarmArn(new cdk.Stack(), 'A', `arn:aws:cloudwatch:${ENV.region}:${ENV.account}:alarm:x`) }]) {
      const { stack } = breakerStack({ dashboard: {}, ...extra });
      const b = templateBody(stack);
      const cells = new Set<string>();
      for (const w of b.widgets) {
        expect(w.x + w.width).toBeLessThanOrEqual(24);
        for (let x = w.x; x < w.x + w.width; x++) {
          for (let y = w.y; y < w.y + w.height; y++) {
            expect(cells.has(`${x},${y}`)).toBe(false);
            cells.add(`${x},${y}`);
          }
        }
      }
      const rows = new Map<number, number>();
      for (const w of b.widgets) rows.set(w.y, (rows.get(w.y) ?? 0) + w.width);
      expect([...rows.values()].every((width) => width === 24)).toBe(true);
    }
  });
});

describe('widgets() for a dashboard of your own', () => {
  test('returns the widgets of the breaker\'s dashboard', () => {
    const { stack, breaker } = breakerStack({ circuitName: 'orders', dashboard: {} });
    const mine = new cloudwatch.Dashboard(stack, 'Mine', { widgets: [breaker.widgets()] });
    expect(body(stack, mine)).toEqual(body(stack, breaker.dashboard!));
  });

  test('works without the breaker\'s dashboard, with the same period option', () => {
    const { stack, breaker } = breakerStack({ circuitName: 'orders' });
    const mine = new cloudwatch.Dashboard(stack, 'Mine');
    mine.addWidgets(...breaker.widgets({ period: cdk.Duration.minutes(5) }));
    const b = body(stack, mine);
    expect(metricLines(b)).toContainEqual(breakerLine(METRICS.stateMetric, 'orders'));
    expect(lineOf(b, 'ApproximateNumberOfMessagesVisible')?.options.period).toBe(300);
    Template.fromStack(stack).resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  test('a period that is not whole minutes is refused, naming the argument', () => {
    const { breaker } = breakerStack();
    expect(() => breaker.widgets({ period: cdk.Duration.seconds(90) })).toThrow(exactly(
      "SqsCircuitBreaker at 'TestStack/OrdersBreaker': widgets() period: must be a whole number of minutes (the queue's, the state machine's and the breaker's metrics are per minute), got 90 seconds; use Duration.minutes(1) or longer",
    ));
  });
});

describe('dashboard props validation', () => {
  test('a bad name and a bad period are named with their fix, in the one props error', () => {
    expect(() => breakerStack({ dashboard: { dashboardName: 'orders breaker!', period: cdk.Duration.seconds(30) } })).toThrow(exactly(
      "SqsCircuitBreaker at 'TestStack/OrdersBreaker' has invalid props:\n"
      + "  - dashboard.dashboardName: must be 1 to 255 letters, digits, '-' or '_' (CloudWatch dashboard names), got 'orders breaker!'\n"
      + "  - dashboard.period: must be a whole number of minutes (the queue's, the state machine's and the breaker's metrics are per minute), got 30 seconds; use Duration.minutes(1) or longer",
    ));
  });
});
