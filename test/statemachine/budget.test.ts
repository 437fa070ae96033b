import * as fs from 'fs';
import * as path from 'path';
import {
  allStates,
  ALARM_EVENT,
  ChainedExecution,
  circuit,
  ReplyFn,
  runChain,
  synthesizeWorkflow,
  Workflow,
} from './harness';

/**
 * Issue 12, defect 4: every execution must continue as new before its history can exceed a bound
 * well under Step Functions' 25,000 events, whatever the mix of probes, re-jitter slices, ramp steps
 * and relapses. This drives a downstream that flaps (healthy probe, relapse at ramp step 1) for
 * more than 1,000 cycles and counts, execution by execution, the events the interpreter logs.
 */
const BOUND = 10_000;
const CYCLES = 1_000;

type State = Record<string, unknown> & {
  attempt: number;
  iteration: number;
  generation: number;
  openedAtMs: number;
  historyEvents: number;
};

/** The cost table of `lambdas/core/src/history.rs`, exported by its test `history_costs_json_is_current`. */
const TABLE = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'lambdas', 'core', 'history-costs.json'), 'utf8'),
) as {
  facts: Record<string, number>;
  costs: Record<string, number>;
  defaults: Record<string, number>;
};
const C = TABLE.costs;
const D = TABLE.defaults;
const BUDGET = D.historyEventBudget;
/** Backlog the plan reports: 1,250 messages per worker, so 2 slices each by the table's floor. */
const BACKLOG = 2_500;

/**
 * Models of the handlers as the Rust code behaves (`breaker_core::history`): open starts the
 * count, backoff/plan/ramp charge the worst case of their path from the cost table, backoff
 * continues as new before one more worst-case cycle could pass the budget, the plan gives each
 * worker the slices that fit, and a worker answers done when its slices are used.
 */
function flappingHandlers(): {
  handlers: Record<string, ReplyFn>;
  cycles: () => number;
  slices: Array<{ worker: number; slicesLeft: number; allowed: number }>;
} {
  let cycles = 0;
  let allowed = 0;
  const slicesOf: Record<number, number> = {};
  const slices: Array<{ worker: number; slicesLeft: number; allowed: number }> = [];
  const handlers: Record<string, ReplyFn> = {
    open: (p) => {
      const input = p.input as { resume?: State };
      if (input.resume)
        return {
          version: 1,
          action: 'proceed',
          state: { ...input.resume, iteration: 0, generation: input.resume.generation + 1, historyEvents: D.opened },
        };
      return { version: 1, action: 'proceed', state: circuit(0, { iteration: 0, historyEvents: D.opened }) };
    },
    backoff: (p) => {
      const s = p.state as State;
      if (cycles >= CYCLES)
        return {
          version: 1,
          action: 'stuck',
          waitSeconds: 0,
          state: { ...s, historyEvents: s.historyEvents + C.backoffStuck },
        };
      if (s.historyEvents + D.cycleReserve > BUDGET)
        return {
          version: 1,
          action: 'continue',
          waitSeconds: 0,
          state: { ...s, historyEvents: s.historyEvents + C.backoffContinue },
        };
      return {
        version: 1,
        action: 'wait',
        waitSeconds: 30,
        state: { ...s, iteration: s.iteration + 1, historyEvents: s.historyEvents + C.backoffWait },
      };
    },
    probe: (p) => {
      cycles++;
      const s = p.state as State;
      return { version: 1, verdict: 'healthy', probed: 1, state: { ...s, attempt: s.attempt + 1 } };
    },
    'rejitter-plan': (p) => {
      const s = p.state as State;
      const free = BUDGET - s.historyEvents - C.plan - D.afterRejitterReserve;
      let workers = 0;
      let perWorker = 0;
      for (let w = 2; w >= 1; w--) {
        const fixed = C.map + w * C.mapWorker;
        if (free < fixed + w * C.slice) continue;
        const affordable = Math.floor((free - fixed) / (w * C.slice));
        const needed = Math.max(1, Math.ceil(Math.ceil(BACKLOG / w) / TABLE.facts.minMessagesPerSlice));
        workers = w;
        perWorker = Math.min(affordable, needed);
        break;
      }
      for (let w = 0; w < workers; w++) slicesOf[w] = 0;
      allowed = perWorker;
      const charged = C.plan + (workers === 0 ? 0 : C.map + workers * (C.mapWorker + perWorker * C.slice));
      return {
        version: 1,
        backlog: BACKLOG,
        workers: [...Array(workers).keys()],
        cutoffMs: 1763900100000,
        slicesPerWorker: perWorker,
        windowMaxSeconds: 300,
        state: { ...s, historyEvents: s.historyEvents + charged },
      };
    },
    rejitter: (p) => {
      const w = p.worker as number;
      const left = p.slicesLeft as number;
      slices.push({ worker: w, slicesLeft: left, allowed });
      slicesOf[w] = (slicesOf[w] ?? 0) + 1;
      // Worker 0 would need 3 slices to drain (its allowance of 2 ends it), worker 1 drains in 1.
      const drained = slicesOf[w] >= (w === 0 ? 3 : 1);
      return {
        version: 1,
        moved: 100,
        failed: 0,
        remainingEstimate: drained ? 0 : 100,
        done: drained || left - 1 === 0,
        slicesLeft: left - 1,
      };
    },
    ramp: (p) => {
      const s = p.state as State;
      const step = p.step as number;
      if (step === 0)
        return {
          version: 1,
          action: 'step',
          step: 1,
          waitSeconds: 60,
          maximumConcurrency: 2,
          state: { ...s, historyEvents: s.historyEvents + C.rampStep },
        };
      return {
        version: 1,
        action: 'reopen',
        step,
        waitSeconds: 0,
        maximumConcurrency: null,
        state: { ...s, historyEvents: s.historyEvents + C.rampReopen },
      };
    },
    startExecution: () => ({ ExecutionArn: 'arn:next', StartDate: '2025-11-23T12:00:00Z' }),
  };
  return { handlers, cycles: () => cycles, slices };
}

let wf: Workflow;
beforeAll(() => {
  wf = synthesizeWorkflow();
});

function summary(chain: ChainedExecution[]): string {
  const counts = chain.map((e) => e.events).sort((a, b) => a - b);
  return `${chain.length} executions, events per execution max ${counts[counts.length - 1]}, median ${counts[Math.floor(counts.length / 2)]}`;
}

test(`a downstream flapping for ${CYCLES} cycles keeps every execution under ${BOUND} history events and carries the state across executions`, async () => {
  const started = Date.now();
  const model = flappingHandlers();
  const chain = await runChain(wf, model.handlers, ALARM_EVENT);
  const elapsed = Date.now() - started;
  console.log(`${summary(chain)}; ${model.cycles()} cycles in ${elapsed} ms`);

  expect(model.cycles()).toBeGreaterThanOrEqual(CYCLES);
  expect(chain.length).toBeGreaterThan(1);
  for (const e of chain) {
    expect(e.status).toBe('SUCCEEDED');
    expect(e.events).toBeLessThan(BOUND);
  }
  // What the handlers charged for an execution (its last state, continue-as-new included) is an
  // upper bound of what the interpreter logged for the same path.
  for (const e of chain.slice(0, -1)) {
    const charged = (e.continuedWith as { resume: State }).resume.historyEvents;
    expect({ execution: e.arn, charged: charged >= e.events, withinBudget: charged <= BUDGET }).toEqual({
      execution: e.arn,
      charged: true,
      withinBudget: true,
    });
  }
  // The chain carries the outage: same openedAtMs, attempt counting on, generation + 1 each time.
  for (let i = 1; i < chain.length; i++) {
    const prev = chain[i - 1].continuedWith as { resume: State; previousExecutionArn: string };
    const input = chain[i].input as { resume: State; previousExecutionArn: string };
    expect(input).toEqual(prev);
    expect(input.previousExecutionArn).toBe(chain[i - 1].arn);
    expect(input.resume.openedAtMs).toBe(1763900000000);
    expect(input.resume.generation).toBe(i - 1);
    expect(input.resume.attempt).toBeGreaterThan(
      i === 1 ? 0 : (chain[i - 1].input as { resume: State }).resume.attempt,
    );
  }
  // Every slice ran within its worker's allowance; the worker that needed more stopped at it.
  expect(model.slices.every((s) => s.slicesLeft >= 1 && s.slicesLeft <= s.allowed)).toBe(true);
  expect(model.slices.filter((s) => s.worker === 0 && s.slicesLeft === 1).length).toBeGreaterThan(0);
  expect(elapsed).toBeLessThan(60_000);
}, 120_000);

test('the cost table counts every retry the synthesized definition allows', () => {
  const attempts = (name: string): number => {
    const state = allStates(wf.definition).find(([n]) => n === name)![1] as { Retry?: Array<{ MaxAttempts?: number }> };
    // Retriers count separately: errors alternating between them can use every one to its maximum
    // (MaxAttempts defaults to 3).
    return 1 + (state.Retry ?? []).reduce((sum, r) => sum + (r.MaxAttempts ?? 3), 0);
  };
  for (const [name, target] of Object.entries(wf.targetOfState)) {
    const fact =
      target === 'startExecution'
        ? 'continueAttempts'
        : target === 'putMetricData'
          ? 'metricAttempts'
          : target === 'stuck'
            ? 'stuckAttempts'
            : 'lambdaAttempts';
    expect({ name, attempts: attempts(name) }).toEqual({ name, attempts: TABLE.facts[fact] });
  }
  // Real Step Functions logs more per state than the interpreter: entered/exited, and per task
  // attempt scheduled/started/(submitted)/result; per Map iteration started/ended.
  expect(TABLE.facts.state).toBeGreaterThanOrEqual(2);
  expect(TABLE.facts.taskAttempt).toBeGreaterThanOrEqual(3);
  expect(C.lambdaTask).toBe(TABLE.facts.state + TABLE.facts.lambdaAttempts * TABLE.facts.taskAttempt);
});
