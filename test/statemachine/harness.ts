import { Template } from 'aws-cdk-lib/assertions';
import { ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import { SqsCircuitBreakerProps } from 'sqs-circuit-breaker';
import { breakerStack, ENV } from '../construct/fixture';

// aws-local-stepfunctions 3 calls Promise.withResolvers (Node >= 22). The npm scripts run Node 22
// from the `node` devDependency; this keeps a bare `jest` on an older Node working too.
const P = Promise as unknown as { withResolvers?: () => unknown };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = () => {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

/** ARN of the execution the harness pretends to run. */
export const EXECUTION_ARN = `arn:aws:states:${ENV.region}:${ENV.account}:execution:breaker:exec-1`;

/** The synthesized workflow with every Task state mapped to what it calls. */
export interface Workflow {
  /** The ASL with CloudFormation references replaced by concrete ARNs. */
  readonly definition: AslStateMachine;
  /** State name -> handler name (`open`, `probe`, ...) or `startExecution` / `putMetricData`. */
  readonly targetOfState: Record<string, string>;
}

interface AslState {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Retry?: unknown[];
  ItemProcessor?: AslStateMachine;
  [key: string]: unknown;
}
interface AslStateMachine {
  StartAt: string;
  States: Record<string, AslState>;
}

/**
 * Synthesizes a breaker and returns its state machine definition as it would run in AWS: the
 * DefinitionString's `Fn::Join` is resolved, each function reference becoming the function's ARN.
 * Which handler a state calls is read from the template (the function's `Handler`), so the tests
 * check that wiring too.
 */
export function synthesizeWorkflow(extra: Partial<SqsCircuitBreakerProps> = {}): Workflow {
  const { stack } = breakerStack(extra);
  const template = Template.fromStack(stack).toJSON() as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const machines = Object.values(template.Resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const handlerOfArn: Record<string, string> = {};
  const resolveRef = (ref: unknown): string => {
    const r = ref as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    if (r.Ref === 'AWS::Partition') return 'aws';
    if (r.Ref === 'AWS::Region') return ENV.region;
    if (r.Ref === 'AWS::AccountId') return ENV.account;
    if (r['Fn::GetAtt'] && r['Fn::GetAtt'][1] === 'Arn') {
      const id = r['Fn::GetAtt'][0];
      const res = template.Resources[id];
      if (res?.Type !== 'AWS::Lambda::Function') throw new Error(`unexpected GetAtt on ${id} (${res?.Type})`);
      const arn = `arn:aws:lambda:${ENV.region}:${ENV.account}:function:${id}`;
      handlerOfArn[arn] = res.Properties.Handler as string;
      return arn;
    }
    throw new Error(`unexpected reference in the definition: ${JSON.stringify(ref)}`);
  };
  const body = machines[0].Properties.DefinitionString as { 'Fn::Join': [string, unknown[]] };
  const json = body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : resolveRef(part))).join('');
  const definition = JSON.parse(json) as AslStateMachine;

  const targetOfState: Record<string, string> = {};
  const walk = (sm: AslStateMachine): void => {
    for (const [name, state] of Object.entries(sm.States)) {
      if (state.Type === 'Task') {
        if (state.Resource === 'arn:aws:states:::lambda:invoke') {
          const fn = state.Parameters?.FunctionName as string;
          if (!handlerOfArn[fn]) throw new Error(`state ${name} invokes an unknown function ${fn}`);
          targetOfState[name] = handlerOfArn[fn];
        } else if (state.Resource === 'arn:aws:states:::states:startExecution') {
          targetOfState[name] = 'startExecution';
        } else if (state.Resource === 'arn:aws:states:::aws-sdk:cloudwatch:putMetricData') {
          targetOfState[name] = 'putMetricData';
        } else {
          throw new Error(`state ${name} has an unexpected resource ${state.Resource}`);
        }
      }
      if (state.ItemProcessor) walk(state.ItemProcessor);
    }
  };
  walk(definition);
  return { definition, targetOfState };
}

/** Every state of the definition, nested ones included. */
export function allStates(sm: AslStateMachine): Array<[string, AslState]> {
  const out: Array<[string, AslState]> = [];
  for (const [name, state] of Object.entries(sm.States)) {
    out.push([name, state]);
    if (state.ItemProcessor) out.push(...allStates(state.ItemProcessor));
  }
  return out;
}

/** A scripted reply: a handler result, or an error with Lambda's `errorType`. */
export type Reply = unknown;
/** A reply computed from the call's payload. */
export type ReplyFn = (payload: Record<string, unknown>) => Reply;

/** Makes a scripted reply that fails the call with the given error name. */
export function fail(errorType: string, cause = `${errorType} (scripted)`): { __throw: string; cause: string } {
  return { __throw: errorType, cause };
}

/** One call a task made. */
export interface Call {
  readonly target: string;
  readonly state: string;
  readonly payload: Record<string, unknown>;
}

/** How one scripted execution ended. */
export interface Run {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: { name: string; message: string };
  readonly calls: Call[];
  /** Calls for which the script had no reply left (a test error, reported by `expectScripted`). */
  readonly unscripted: Call[];
  /** Names of the states entered, in order. */
  readonly states: string[];
}

/**
 * Runs the workflow with every task's result taken from `script` (replies consumed in order per
 * target), every Wait and Retry interval shortened to 1 ms.
 */
export async function runWorkflow(
  wf: Workflow,
  script: Record<string, Array<Reply | ReplyFn>>,
  input: unknown,
): Promise<Run> {
  const queues: Record<string, Array<Reply | ReplyFn>> = {};
  for (const [k, v] of Object.entries(script)) queues[k] = [...v];
  const calls: Call[] = [];
  const unscripted: Call[] = [];

  const taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [state, target] of Object.entries(wf.targetOfState)) {
    taskResourceLocalHandlers[state] = async (raw: unknown) => {
      const params = raw as Record<string, unknown>;
      const payload = (target === 'startExecution' || target === 'putMetricData' ? params : params.Payload) as Record<
        string,
        unknown
      >;
      const call = { target, state, payload };
      calls.push(call);
      const next = queues[target]?.shift();
      if (next === undefined) {
        unscripted.push(call);
        const e = new Error(`no scripted reply left for ${target}`);
        e.name = 'HarnessUnscripted';
        throw e;
      }
      const reply = typeof next === 'function' ? (next as ReplyFn)(payload) : next;
      const r = reply as { __throw?: string; cause?: string };
      if (r && typeof r === 'object' && r.__throw) {
        const e = new Error(r.cause);
        e.name = r.__throw;
        throw e;
      }
      return target === 'startExecution' || target === 'putMetricData'
        ? reply
        : { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: reply };
    };
  }
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [name, state] of allStates(wf.definition)) {
    if (state.Type === 'Wait') waitTimeOverrides[name] = 1;
    if (state.Retry) retryIntervalOverrides[name] = 1;
  }

  const machine = new StateMachine(wf.definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
  const execution = machine.run(
    input as never,
    {
      overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
      context: { Execution: { Id: EXECUTION_ARN, Name: 'exec-1', Input: input, StartTime: new Date(0).toISOString() } },
    } as never,
  );
  const states: string[] = [];
  const collect = (async () => {
    for await (const ev of execution.eventLogs) {
      const e = ev as { type: string; state?: { name: string } };
      if (e.type === 'StateEntered' && e.state) states.push(e.state.name);
    }
  })();
  try {
    const output = await execution.result;
    await collect;
    return { status: 'SUCCEEDED', output, calls, unscripted, states };
  } catch (err) {
    await collect.catch(() => undefined);
    if (err instanceof ExecutionError) {
      const cause = (err as unknown as { cause: Error }).cause;
      return { status: 'FAILED', error: { name: cause.name, message: cause.message }, calls, unscripted, states };
    }
    throw err;
  }
}

/** Targets of the calls, in order. */
export function targets(run: Run): string[] {
  return run.calls.map((c) => c.target);
}

// ── handler replies (CONTRACT.md, version 1) ────────────────────────────────────────────────

/** A circuit state document. */
export function circuit(attempt = 0, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    openedAtMs: 1763900000000,
    attempt,
    iteration: attempt,
    generation: 0,
    savedScaling: { maximumConcurrency: 50 },
    trigger: 'alarm',
    ...extra,
  };
}

/** The alarm event EventBridge delivers as execution input. */
export const ALARM_EVENT = {
  version: '0',
  id: 'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92',
  'detail-type': 'CloudWatch Alarm State Change',
  source: 'aws.cloudwatch',
  account: ENV.account,
  time: '2025-11-23T12:00:00Z',
  region: ENV.region,
  resources: [`arn:aws:cloudwatch:${ENV.region}:${ENV.account}:alarm:orders-errors`],
  detail: { alarmName: 'orders-errors', state: { value: 'ALARM' }, previousState: { value: 'OK' } },
};

export const reply = {
  proceed: (s = circuit()) => ({ version: 1, action: 'proceed', state: s }),
  duplicate: () => ({ version: 1, action: 'duplicate' }),
  /** `open`'s answer to a manual close (`breaker close`): skip backoff and probe. */
  manualClose: (s = circuit()) => ({ version: 1, action: 'close', state: s }),
  wait: (s = circuit(), waitSeconds = 30) => ({ version: 1, action: 'wait', waitSeconds, state: s }),
  stuck: (s = circuit()) => ({ version: 1, action: 'stuck', waitSeconds: 0, state: s }),
  continueAsNew: (s = circuit()) => ({ version: 1, action: 'continue', waitSeconds: 0, state: s }),
  probe: (verdict: 'healthy' | 'unhealthy' | 'empty', s = circuit(1)) => ({
    version: 1,
    verdict,
    probed: verdict === 'empty' ? 0 : 1,
    state: s,
  }),
  /** A re-jitter plan; its `windowMaxSeconds` (the window sized to the backlog) is 12 s. */
  plan: (workers: number[], s = circuit(1), slicesPerWorker = 5) => ({
    version: 1,
    backlog: workers.length * 100,
    workers,
    cutoffMs: 1763900100000,
    slicesPerWorker,
    windowMaxSeconds: 12,
    state: s,
  }),
  slice: (done: boolean, slicesLeft = 4) => ({
    version: 1,
    moved: 100,
    failed: 0,
    remainingEstimate: done ? 0 : 100,
    done,
    slicesLeft,
  }),
  rampStep: (step: number, s = circuit(1)) => ({
    version: 1,
    action: 'step',
    step,
    waitSeconds: 60,
    maximumConcurrency: 2 * step,
    state: s,
  }),
  rampDone: (step: number, s = circuit(1)) => ({
    version: 1,
    action: 'done',
    step,
    waitSeconds: 0,
    maximumConcurrency: null,
    state: s,
  }),
  reopen: (step: number, s = circuit(1)) => ({
    version: 1,
    action: 'reopen',
    step,
    waitSeconds: 0,
    maximumConcurrency: null,
    state: s,
  }),
  close: (openSeconds = 95) => ({ version: 1, action: 'closed', closed: true, openSeconds }),
  /** `close` found a re-trip in the circuit record: the mapping is disabled again. */
  closeReopen: (state: Record<string, unknown>) => ({
    version: 1,
    action: 'reopen',
    closed: false,
    openSeconds: 95,
    state,
  }),
  reported: (esmState = 'Disabled') => ({ version: 1, esmState, notified: true }),
};

// ── chains of executions (continue-as-new) ──────────────────────────────────────────────────

/** One execution of a chain, with the events the interpreter emitted for it. */
export interface ChainedExecution {
  readonly arn: string;
  readonly input: unknown;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly error?: { name: string; message: string };
  /** Every event the interpreter logged for this execution (its history as the library sees it). */
  readonly events: number;
  /** Those events by type (`StateEntered`, `MapIterationStarted`, ...). */
  readonly eventTypes: Record<string, number>;
  /** Task states entered, by state name (for comparing the cost table with what ran). */
  readonly statesEntered: Record<string, number>;
  /** The `Input` this execution passed to `Continue As New Execution`, if it continued. */
  readonly continuedWith?: unknown;
  readonly calls: number;
}

/**
 * Runs a chain of executions the way Step Functions would: each execution's `Continue As New
 * Execution` call (StartExecution on the state machine itself) starts the next one with the input
 * it was given, until an execution ends without continuing or `maxExecutions` ran. Every task is
 * answered by `handlers[target]` (a model of the handler), every Wait and Retry interval is 1 ms.
 * Event counts come from the interpreter's own event log, execution by execution.
 */
export async function runChain(
  wf: Workflow,
  handlers: Record<string, ReplyFn>,
  input: unknown,
  maxExecutions = 10_000,
): Promise<ChainedExecution[]> {
  const machine = new StateMachine(wf.definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [name, state] of allStates(wf.definition)) {
    if (state.Type === 'Wait') waitTimeOverrides[name] = 1;
    if (state.Retry) retryIntervalOverrides[name] = 1;
  }
  const out: ChainedExecution[] = [];
  let next: unknown = input;
  for (let n = 0; n < maxExecutions && next !== undefined; n++) {
    const arn = `arn:aws:states:${ENV.region}:${ENV.account}:execution:breaker:chain-${n}`;
    let continuedWith: unknown;
    let calls = 0;
    const taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [state, target] of Object.entries(wf.targetOfState)) {
      taskResourceLocalHandlers[state] = async (raw: unknown) => {
        calls++;
        const params = raw as Record<string, unknown>;
        const direct = target === 'startExecution' || target === 'putMetricData';
        const payload = (direct ? params : params.Payload) as Record<string, unknown>;
        const handler = handlers[target];
        if (!handler) {
          const e = new Error(`no handler model for ${target}`);
          e.name = 'HarnessUnscripted';
          throw e;
        }
        if (target === 'startExecution') continuedWith = payload.Input;
        const reply = handler(payload) as { __throw?: string; cause?: string };
        if (reply && typeof reply === 'object' && reply.__throw) {
          const e = new Error(reply.cause);
          e.name = reply.__throw;
          throw e;
        }
        return direct ? reply : { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: reply };
      };
    }
    const execution = machine.run(
      next as never,
      {
        overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
        context: { Execution: { Id: arn, Name: `chain-${n}`, Input: next, StartTime: new Date(0).toISOString() } },
      } as never,
    );
    const eventTypes: Record<string, number> = {};
    const statesEntered: Record<string, number> = {};
    let events = 0;
    const collect = (async () => {
      for await (const ev of execution.eventLogs) {
        const e = ev as { type: string; state?: { name: string } };
        events++;
        eventTypes[e.type] = (eventTypes[e.type] ?? 0) + 1;
        if (e.type === 'StateEntered' && e.state) statesEntered[e.state.name] = (statesEntered[e.state.name] ?? 0) + 1;
      }
    })();
    let status: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED';
    let error: { name: string; message: string } | undefined;
    try {
      await execution.result;
      await collect;
    } catch (err) {
      await collect.catch(() => undefined);
      if (!(err instanceof ExecutionError)) throw err;
      const cause = (err as unknown as { cause: Error }).cause;
      status = 'FAILED';
      error = { name: cause.name, message: cause.message };
    }
    out.push({ arn, input: next, status, error, events, eventTypes, statesEntered, continuedWith, calls });
    next = status === 'SUCCEEDED' ? continuedWith : undefined;
  }
  return out;
}
