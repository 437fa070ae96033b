import * as fs from 'fs';
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { consumerStack } from './fixture';

/**
 * The one table of tunables, `cdk/src/limits.json`: the construct must validate and default by it,
 * and `lambdas/CONTRACT.md` must list it (the Rust loader is held to it by
 * `breaker_core::config::tests::limits_follow_the_table`).
 */
interface Limit {
  readonly prop: string;
  readonly env: string | null;
  readonly kind: 'integer' | 'seconds' | 'number' | 'percent' | 'boolean' | 'mebibytes';
  readonly default: number | boolean | null;
  readonly min?: number;
  readonly max?: number;
}

const ROOT = path.join(__dirname, '..', '..');
const LIMITS: Record<string, Limit> = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'cdk', 'src', 'limits.json'), 'utf8'),
).settings;
const RANGED = Object.entries(LIMITS).filter(([, l]) => l.min !== undefined && l.max !== undefined);
const WITH_ENV = Object.entries(LIMITS).filter(([, l]) => l.env !== null);

/** Props that put `value` into the prop `dotted` (`rejitter.workers`), durations in seconds. */
function propsFor(l: Limit, value: number): Record<string, unknown> {
  const leaf =
    l.kind === 'seconds' ? cdk.Duration.seconds(value) : l.kind === 'mebibytes' ? cdk.Size.mebibytes(value) : value;
  const [head, tail] = l.prop.split('.');
  const props: Record<string, unknown> = tail === undefined ? { [head]: leaf } : { [head]: { [tail]: leaf } };
  // Ordered pairs: move the partner out of the way so that only this prop is judged.
  const partner: Record<string, Record<string, unknown>> = {
    'backoff.initialDelay': { backoff: { initialDelay: leaf, maxDelay: cdk.Duration.days(1) } },
    'backoff.maxDelay': { backoff: { maxDelay: leaf, initialDelay: cdk.Duration.seconds(1) } },
    'backoff.longOutageMaxDelay': {
      backoff: { longOutageMaxDelay: leaf, maxDelay: cdk.Duration.seconds(1), initialDelay: cdk.Duration.seconds(1) },
    },
    'rejitter.minDelay': { rejitter: { minDelay: leaf, maxDelay: cdk.Duration.seconds(900) } },
    'alarmSettings.evaluationPeriods': { alarmSettings: { evaluationPeriods: leaf, datapointsToAlarm: 1 } },
    'alarmSettings.datapointsToAlarm': { alarmSettings: { datapointsToAlarm: leaf, evaluationPeriods: 1440 } },
  };
  return partner[l.prop] ?? props;
}

/**
 * A breaker with `props`; the consumer is imported, so that its timeout (which bounds
 * probe.visibilityTimeout from below) is unknown. Returns the handlers' environment.
 */
function synth(props: Record<string, unknown>): Record<string, string> {
  const f = consumerStack();
  const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
    consumer: lambda.Function.fromFunctionName(f.stack, 'Imported', 'orders-consumer'),
    queue: f.queue,
    eventSourceMappingId: 'esm-uuid',
    ...props,
  });
  const cfn = breaker.functions.backoff.node.defaultChild as lambda.CfnFunction;
  return f.stack.resolve(cfn.environment).variables;
}

/** A number as CONTRACT.md writes it (`10,000`). */
const fmt = (n: number): string => n.toLocaleString('en-US');

function contractDefault(l: Limit): string {
  if (l.default === null) return 'unset';
  return typeof l.default === 'number' ? fmt(l.default) : String(l.default);
}

function contractRange(l: Limit): string {
  if (l.kind === 'boolean') return '`true` / `false`';
  if (l.kind === 'percent') return `> ${fmt(l.min!)}, ≤ ${fmt(l.max!)}`;
  return `${fmt(l.min!)}–${fmt(l.max!)}`;
}

describe('the table of limits (cdk/src/limits.json)', () => {
  test("the handlers get the table's defaults", () => {
    const env = synth({});
    for (const [, l] of WITH_ENV) {
      expect([l.env, env[l.env!]]).toEqual([l.env, l.default === null ? undefined : String(l.default)]);
    }
  });

  test.each(RANGED)('%s: its bounds are accepted, the values beyond refused', (_key, l) => {
    const step = l.kind === 'integer' || l.kind === 'seconds' || l.kind === 'mebibytes' ? 1 : 0.5;
    // A percent's minimum is exclusive; a Duration cannot be negative, so there is nothing below 0 s.
    let accepted = [l.max!, l.kind === 'percent' ? l.min! + step : l.min!];
    let refused = [
      l.max! + step,
      ...(l.kind === 'percent' ? [l.min!] : l.kind === 'seconds' && l.min === 0 ? [] : [l.min! - step]),
    ];
    let extra: Record<string, unknown> = {};
    if (l.prop === 'probe.visibilityTimeout') {
      // Also bounded below by the consumer: it must outlast the invoke, the consumer's timeout
      // plus 15 s (validation.test.ts). With the shortest consumer (1 s) the least is 17 s.
      extra = { consumerTimeout: cdk.Duration.seconds(1) };
      accepted = [l.max!, 17];
      refused = [l.max! + step, 16];
    }
    for (const value of accepted) {
      const env = synth({ ...propsFor(l, value), ...extra });
      if (l.env !== null) expect([l.env, env[l.env]]).toEqual([l.env, String(value)]);
    }
    for (const value of refused) {
      expect(() => synth({ ...propsFor(l, value), ...extra })).toThrow(`\n  - ${l.prop}: `);
    }
  });

  test('CONTRACT.md lists every variable of the table with its default and range', () => {
    const contract = fs.readFileSync(path.join(ROOT, 'lambdas', 'CONTRACT.md'), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of contract.split('\n')) {
      const m = /^\| `([A-Z_]+)` \|(.*)\|$/.exec(line);
      if (m)
        rows.set(
          m[1],
          m[2].split('|').map((c) => c.trim()),
        );
    }
    for (const [, l] of WITH_ENV) {
      const row = rows.get(l.env!);
      expect([l.env, row === undefined ? 'missing' : 'listed']).toEqual([l.env, 'listed']);
      // Columns after the variable: meaning, default, range.
      expect([l.env, row![1], row![2]]).toEqual([l.env, contractDefault(l), contractRange(l)]);
    }
    // Every variable CONTRACT.md gives a range is in the table.
    const ranged = [...rows.entries()]
      .filter(([, cells]) => cells[2] !== '')
      .map(([name]) => name)
      .sort();
    expect(ranged).toEqual(WITH_ENV.map(([, l]) => l.env!).sort());
  });
});
