import { ALARM_EVENT, ChainedExecution, circuit, ReplyFn, runChain, synthesizeWorkflow, Workflow } from './harness';

/**
 * Issue 12, defect 4: every execution must continue as new before its history can exceed a bound
 * well under Step Functions' 25,000 events, whatever the mix of probes, re-jitter slices, ramp steps
 * and relapses. This drives a downstream that flaps (healthy probe, relapse at ramp step 1) for
 * more than 1,000 cycles and counts, execution by execution, the events the interpreter logs.
 */
const BOUND = 10_000;
const CYCLES = 1_000;

type State = Record<string, unknown> & { attempt: number; iteration: number; generation: number; openedAtMs: number };

/** Models of the handlers as they behave today: the loop budget counts backoff turns only. */
function flappingHandlers(): { handlers: Record<string, ReplyFn>; cycles: () => number } {
  let cycles = 0;
  const slicesOf: Record<number, number> = {};
  const handlers: Record<string, ReplyFn> = {
    open: (p) => {
      const input = p.input as { resume?: State };
      if (input.resume) return { version: 1, action: 'proceed', state: { ...input.resume, iteration: 0, generation: input.resume.generation + 1 } };
      return { version: 1, action: 'proceed', state: circuit(0, { iteration: 0 }) };
    },
    backoff: (p) => {
      const s = p.state as State;
      if (cycles >= CYCLES) return { version: 1, action: 'stuck', waitSeconds: 0, state: s };
      if (s.iteration >= 500) return { version: 1, action: 'continue', waitSeconds: 0, state: s };
      return { version: 1, action: 'wait', waitSeconds: 30, state: { ...s, iteration: s.iteration + 1 } };
    },
    probe: (p) => {
      cycles++;
      const s = p.state as State;
      return { version: 1, verdict: 'healthy', probed: 1, state: { ...s, attempt: s.attempt + 1 } };
    },
    'rejitter-plan': (p) => {
      for (const w of [0, 1]) slicesOf[w] = 0;
      return { version: 1, backlog: 200, workers: [0, 1], cutoffMs: 1763900100000, state: p.state };
    },
    rejitter: (p) => {
      const w = p.worker as number;
      slicesOf[w] = (slicesOf[w] ?? 0) + 1;
      const done = slicesOf[w] >= 2;
      return { version: 1, moved: 100, failed: 0, remainingEstimate: done ? 0 : 100, done };
    },
    ramp: (p) => {
      const step = p.step as number;
      if (step === 0) return { version: 1, action: 'step', step: 1, waitSeconds: 60, maximumConcurrency: 2, state: p.state };
      return { version: 1, action: 'reopen', step, waitSeconds: 0, maximumConcurrency: null, state: p.state };
    },
    startExecution: () => ({ ExecutionArn: 'arn:next', StartDate: '2025-11-23T12:00:00Z' }),
  };
  return { handlers, cycles: () => cycles };
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
  for (const e of chain) {
    expect(e.status).toBe('SUCCEEDED');
    expect(e.events).toBeLessThan(BOUND);
  }
  // The chain carries the outage: same openedAtMs, attempt counting on, generation + 1 each time.
  for (let i = 1; i < chain.length; i++) {
    const prev = chain[i - 1].continuedWith as { resume: State; previousExecutionArn: string };
    const input = chain[i].input as { resume: State; previousExecutionArn: string };
    expect(input).toEqual(prev);
    expect(input.previousExecutionArn).toBe(chain[i - 1].arn);
    expect(input.resume.openedAtMs).toBe(1763900000000);
    expect(input.resume.generation).toBe(i - 1);
    expect(input.resume.attempt).toBeGreaterThan(i === 1 ? 0 : (chain[i - 1].input as { resume: State }).resume.attempt);
  }
  expect(elapsed).toBeLessThan(60_000);
}, 120_000);
