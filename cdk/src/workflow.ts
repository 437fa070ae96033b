import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import metricsTable from './metrics.json';

/** Namespace of the breaker's metrics: the state machine's `OpenSeconds` and the handlers' (`metrics.json`). */
export const METRIC_NAMESPACE = metricsTable.namespace;

/** What the state machine's role needs for the metric it publishes, and no more. */
export const PUT_METRIC_STATEMENT = (): iam.PolicyStatement =>
  new iam.PolicyStatement({
    actions: ['cloudwatch:PutMetricData'],
    resources: ['*'],
    conditions: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } },
  });

/** Error names of Lambda's own failures (service, throttling, network), retried on every task. */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];

/**
 * The breaker's Lambda functions, one per handler of the shared `bootstrap` binary, keyed by their
 * handler name (CONTRACT.md); the workflow invokes them.
 */
export interface CircuitBreakerFunctions {
  /** `open`: single-flight check, disables the event-source mapping. */
  readonly open: lambda.IFunction;
  /** `backoff`: next wait, max-open-duration and continue-as-new decisions. */
  readonly backoff: lambda.IFunction;
  /** `probe`: hands real messages to the consumer and judges its health. */
  readonly probe: lambda.IFunction;
  /** `rejitter-plan`: sizes the backlog and the re-jitter workers. */
  readonly rejitterPlan: lambda.IFunction;
  /** `rejitter`: re-sends queued messages with a random delay. */
  readonly rejitter: lambda.IFunction;
  /** `ramp`: re-enables the mapping step by step, reopening on relapse. */
  readonly ramp: lambda.IFunction;
  /** `close`: restores the scaling configuration and resets the alarm. */
  readonly close: lambda.IFunction;
  /** `stuck`: the last resort that reports a circuit left open. */
  readonly stuck: lambda.IFunction;
}

/** What the workflow needs besides the functions. */
export interface WorkflowOptions {
  readonly functions: CircuitBreakerFunctions;
  /** The state machine itself, for continue-as-new (imported by ARN to avoid a cycle). */
  readonly self: sfn.IStateMachine;
  readonly circuitName: string;
  readonly rejitterWorkers: number;
}

/**
 * Builds the recovery workflow (JSONPath ASL):
 *
 * ```
 * Open Circuit ─ duplicate ─> Leave Recovery To Running Execution
 *   ├ close (manual close) ─> Plan Re-jitter (skips backoff and probe)
 *   └ proceed ─> Compute Backoff ─ wait ─> Back Off ─> Probe Consumer ─ unhealthy ─> Compute Backoff
 *                  │ keepalive ─> Plan Keep-Alive Pass ─> Keep Messages Alive (Map) ─> Compute Backoff
 *                  │ stuck ─> Leave Circuit Open          └ healthy/empty ─> Plan Re-jitter ─> Re-jitter Backlog (Map)
 *                  └ continue ─> Continue As New Execution     ─> Start Ramp ─> Ramp Up Consumer ─ step ─> Hold Ramp Step ─┐
 *                                                                   ▲ reopen ─> Compute Backoff   └ done ─> Close Circuit ─ reopen (re-trip) ─> Compute Backoff
 *                                                                   └──────────────────────────────────────────────────────┘
 * every Task ─ Catch ─> Report Stuck Circuit ─> Recovery Failed
 * ```
 *
 * History budget (CONTRACT.md, `lambdas/core/src/history.rs`): the handlers charge
 * `state.historyEvents` with the worst case of each path from the cost table in core, which
 * counts this definition's states, Retry policies and Map events; a change to the shape, the
 * retries or the Map must change that table (the workflow tests compare both).
 */
export function buildWorkflow(scope: Construct, opts: WorkflowOptions): sfn.IChainable {
  const f = opts.functions;

  // ── last resort: report the circuit as stuck, then fail the execution ─────────────────────
  const recoveryFailed = new sfn.Fail(scope, 'Recovery Failed', {
    error: 'CircuitStuckOpen',
    cause:
      'a recovery step failed; the stuck handler emitted "Circuit Stuck Open" naming the error and the event-source mapping state',
  });
  const reportStuck = invoke(scope, 'Report Stuck Circuit', f.stuck, {
    'state.$': '$.state',
    'error.$': '$.error',
  });
  // The last resort also retries any task error: it must get its event out if at all possible.
  reportStuck.addRetry({
    errors: ['States.ALL'],
    interval: cdk.Duration.seconds(2),
    maxAttempts: 5,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  });
  reportStuck.next(recoveryFailed);

  const withResumedState = new sfn.Pass(scope, 'Take State From Resume Input', {
    parameters: { 'state.$': '$.resume', 'error.$': '$.error' },
  }).next(reportStuck);
  const withoutState = new sfn.Pass(scope, 'Report Without Circuit State', {
    // A literal null would be dropped when CDK renders Parameters; the intrinsic yields a real null.
    parameters: { 'state.$': "States.StringToJson('null')", 'error.$': '$.error' },
  }).next(reportStuck);

  // A decision the workflow does not know, or an output missing a field the next state reads, is
  // a failure too: report it, never drop it. (Reading a missing path would raise States.Runtime,
  // which no Catch can handle, so every Choice below checks presence and type first.)
  const withOutputState = new sfn.Pass(scope, 'Take State From Handler Output', {
    parameters: { 'state.$': '$.output.state', 'error.$': '$.error' },
  }).next(reportStuck);
  const findState = new sfn.Choice(scope, 'Find Circuit State')
    .when(sfn.Condition.isPresent('$.state'), reportStuck)
    .when(sfn.Condition.isPresent('$.resume'), withResumedState)
    .when(sfn.Condition.isPresent('$.output.state'), withOutputState)
    .otherwise(withoutState);
  const unexpected = new sfn.Pass(scope, 'Flag Unexpected Handler Output', {
    parameters: {
      'output.$': '$',
      error: {
        Error: 'UnexpectedHandlerOutput',
        'Cause.$':
          "States.Format('a breaker handler returned an output this state machine cannot route: {}', States.JsonToString($))",
      },
    },
  }).next(findState);

  const catchAll = (task: sfn.TaskStateBase): void => {
    task.addCatch(findState, { errors: ['States.ALL'], resultPath: '$.error' });
  };

  // ── open ───────────────────────────────────────────────────────────────────────────────────
  const open = invoke(scope, 'Open Circuit', f.open, { 'input.$': '$' });
  catchAll(open);
  const duplicate = new sfn.Succeed(scope, 'Leave Recovery To Running Execution', {
    comment: 'another execution already recovers this circuit; nothing was changed',
  });

  // ── backoff / probe loop ───────────────────────────────────────────────────────────────────
  const backoff = invoke(scope, 'Compute Backoff', f.backoff, { 'state.$': '$.state' });
  catchAll(backoff);
  const wait = new sfn.Wait(scope, 'Back Off', { time: sfn.WaitTime.secondsPath('$.waitSeconds') });
  const leaveOpen = new sfn.Succeed(scope, 'Leave Circuit Open', {
    comment:
      'the maximum open duration was reached; the backoff handler emitted "Circuit Stuck Open" and left the event-source mapping disabled',
  });

  const continueAsNew = new tasks.StepFunctionsStartExecution(scope, 'Continue As New Execution', {
    stateMachine: opts.self,
    integrationPattern: sfn.IntegrationPattern.REQUEST_RESPONSE,
    // Deterministic per outage and turn, so that a retried call is idempotent.
    name: sfn.JsonPath.format(
      `${executionNamePrefix(opts.circuitName)}-resume-{}-{}-{}`,
      sfn.JsonPath.stringAt('$.state.openedAtMs'),
      sfn.JsonPath.stringAt('$.state.generation'),
      sfn.JsonPath.stringAt('$.state.attempt'),
    ),
    input: sfn.TaskInput.fromObject({
      resume: sfn.JsonPath.objectAt('$.state'),
      previousExecutionArn: sfn.JsonPath.stringAt('$$.Execution.Id'),
    }),
    resultPath: sfn.JsonPath.DISCARD,
  });
  continueAsNew.addRetry({
    errors: [
      'StepFunctions.ExecutionLimitExceededException',
      'StepFunctions.SdkClientException',
      'StepFunctions.AWSStepFunctionsException',
      'States.Timeout',
    ],
    interval: cdk.Duration.seconds(2),
    maxAttempts: 6,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  });
  catchAll(continueAsNew);
  const handedOver = new sfn.Succeed(scope, 'Hand Over To New Execution', {
    comment: 'the outage continues in a new execution (continue-as-new) before this one nears the history limit',
  });
  continueAsNew.next(handedOver);

  const probe = invoke(scope, 'Probe Consumer', f.probe, { 'state.$': '$.state' });
  // ProbeFailed: the probe could not be judged (e.g. the consumer invoke itself failed); that is
  // not a healthy consumer, so keep the circuit open and back off again.
  probe.addCatch(backoff, { errors: ['ProbeFailed'], resultPath: '$.probeError' });
  catchAll(probe);

  // ── re-jitter ──────────────────────────────────────────────────────────────────────────────
  const plan = invoke(scope, 'Plan Re-jitter', f.rejitterPlan, { 'state.$': '$.state' });
  catchAll(plan);

  const sliceMap = (names: SliceMapNames, keepAlive: boolean): sfn.Map => {
    // A keep-alive pass (`keepAlive: true`) copies with no delay; re-jitter passes each worker the
    // window the plan sized to the backlog (`windowMaxSeconds`, CONTRACT.md).
    const window: Record<string, unknown> = keepAlive ? {} : { 'windowMaxSeconds.$': '$.windowMaxSeconds' };
    const flag: Record<string, unknown> = keepAlive ? { keepAlive: true } : window;
    const slice = new tasks.LambdaInvoke(scope, names.slice, {
      lambdaFunction: f.rejitter,
      // `slicesLeft` bounds the worker's slices (the execution's history budget, CONTRACT.md): the
      // Map seeds it from the plan's `slicesPerWorker`, then each slice answers the next count.
      payload: sfn.TaskInput.fromObject({
        'worker.$': '$.worker',
        'cutoffMs.$': '$.cutoffMs',
        'slicesLeft.$': '$.slice.result.slicesLeft',
        ...flag,
        ...EXECUTION_ARN,
      }),
      retryOnServiceExceptions: false,
      resultSelector: { 'result.$': '$.Payload' },
      resultPath: '$.slice',
    });
    addRetries(slice);
    const drained = new sfn.Succeed(scope, names.drained);
    const badSlice = new sfn.Fail(scope, names.bad, {
      error: 'UnexpectedHandlerOutput',
      cause:
        'the rejitter handler returned no boolean "done", or "done": false without a number "slicesLeft" of at least 1',
    });
    slice.next(
      new sfn.Choice(scope, names.check)
        .when(isBool('$.slice.result.done', true), drained)
        .when(
          sfn.Condition.and(
            isBool('$.slice.result.done', false),
            isNumber('$.slice.result.slicesLeft'),
            sfn.Condition.numberGreaterThanEquals('$.slice.result.slicesLeft', 1),
          ),
          slice,
        )
        .otherwise(badSlice),
    );
    const map = new sfn.Map(scope, names.map, {
      itemsPath: '$.workers',
      // `slice.result` is seeded as if a previous slice had left the plan's whole allowance, so
      // every slice reads its `slicesLeft` from the same place.
      itemSelector: {
        'worker.$': '$$.Map.Item.Value',
        'cutoffMs.$': '$.cutoffMs',
        slice: { result: { 'slicesLeft.$': '$.slicesPerWorker' } },
        ...window,
      },
      maxConcurrency: opts.rejitterWorkers,
      resultPath: sfn.JsonPath.DISCARD,
    });
    map.itemProcessor(slice);
    map.addCatch(findState, { errors: ['States.ALL'], resultPath: '$.error' });
    return map;
  };
  const rejitter = sliceMap(
    {
      map: 'Re-jitter Backlog',
      slice: 'Re-jitter Slice',
      check: 'Check Worker Drained',
      drained: 'Worker Drained',
      bad: 'Reject Unexpected Slice Result',
    },
    false,
  );

  // ── keep-alive (breaker_core::keepalive): while open, re-send the queue before retention ───
  // The same plan handler and slices as re-jitter, flagged `keepAlive`: copies without delay,
  // also when re-jitter is disabled; then back to the backoff loop (the circuit stays open).
  const planKeepAlive = invoke(scope, 'Plan Keep-Alive Pass', f.rejitterPlan, {
    'state.$': '$.state',
    keepAlive: true,
  });
  catchAll(planKeepAlive);
  const keepAlive = sliceMap(
    {
      map: 'Keep Messages Alive',
      slice: 'Keep-Alive Slice',
      check: 'Check Keep-Alive Worker Drained',
      drained: 'Keep-Alive Worker Drained',
      bad: 'Reject Unexpected Keep-Alive Slice Result',
    },
    true,
  );

  // ── ramp and close ─────────────────────────────────────────────────────────────────────────
  const startRamp = new sfn.Pass(scope, 'Start Ramp', { parameters: { 'state.$': '$.state', step: 0 } });
  const ramp = invoke(scope, 'Ramp Up Consumer', f.ramp, {
    'state.$': '$.state',
    'step.$': '$.step',
  });
  catchAll(ramp);
  const hold = new sfn.Wait(scope, 'Hold Ramp Step', { time: sfn.WaitTime.secondsPath('$.waitSeconds') });

  const close = invoke(scope, 'Close Circuit', f.close, { 'state.$': '$.state' });
  catchAll(close);
  const closed = new sfn.Succeed(scope, 'Circuit Closed');
  // An SDK task written out (not CallAwsService) so that its IAM statement can carry the
  // cloudwatch:namespace condition; the construct grants it (see PUT_METRIC_STATEMENT).
  const publishOpenTime = new sfn.CustomState(scope, 'Publish Open Time', {
    stateJson: {
      Type: 'Task',
      Resource: 'arn:aws:states:::aws-sdk:cloudwatch:putMetricData',
      Parameters: {
        Namespace: METRIC_NAMESPACE,
        MetricData: [
          {
            MetricName: 'OpenSeconds',
            Dimensions: [{ Name: 'Circuit', Value: opts.circuitName }],
            Unit: 'Seconds',
            'Value.$': '$.openSeconds',
          },
        ],
      },
      ResultPath: null,
    },
  });
  publishOpenTime.addRetry({
    errors: ['States.TaskFailed'],
    interval: cdk.Duration.seconds(1),
    maxAttempts: 3,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  });
  // The circuit is closed already; a lost metric datapoint must not turn that into a failure.
  publishOpenTime.addCatch(closed, { errors: ['States.ALL'], resultPath: '$.metricError' });
  close.next(
    new sfn.Choice(scope, 'Check Close Outcome')
      // A re-trip reached the circuit record while it was half-open: close disabled the mapping
      // again instead of letting go; keep recovering.
      .when(sfn.Condition.and(is('$.action', 'reopen'), HAS_STATE), backoff)
      .when(sfn.Condition.and(is('$.action', 'closed'), isNumber('$.openSeconds')), publishOpenTime)
      .when(is('$.action', 'closed'), closed)
      .otherwise(unexpected),
  );
  publishOpenTime.next(closed);

  // ── wiring ─────────────────────────────────────────────────────────────────────────────────
  open.next(
    new sfn.Choice(scope, 'Check For Running Recovery')
      .when(is('$.action', 'duplicate'), duplicate)
      .when(sfn.Condition.and(is('$.action', 'proceed'), HAS_STATE), backoff)
      // A manual close (`breaker close`): the operator says the downstream is healthy.
      .when(sfn.Condition.and(is('$.action', 'close'), HAS_STATE), plan)
      .otherwise(unexpected),
  );
  backoff.next(
    new sfn.Choice(scope, 'Route Backoff Decision')
      .when(sfn.Condition.and(is('$.action', 'wait'), HAS_STATE, VALID_WAIT), wait)
      .when(is('$.action', 'stuck'), leaveOpen)
      .when(
        sfn.Condition.and(
          is('$.action', 'continue'),
          HAS_STATE,
          sfn.Condition.isPresent('$.state.openedAtMs'),
          sfn.Condition.isPresent('$.state.generation'),
          sfn.Condition.isPresent('$.state.attempt'),
        ),
        continueAsNew,
      )
      .when(sfn.Condition.and(is('$.action', 'keepalive'), HAS_STATE), planKeepAlive)
      .otherwise(unexpected),
  );
  // No worker (empty queue, FIFO or no history budget left): back to the backoff loop.
  planKeepAlive.next(routeWorkerPlan(scope, 'Check Keep-Alive Plan', keepAlive, backoff, unexpected));
  keepAlive.next(backoff);
  wait.next(probe);
  probe.next(
    new sfn.Choice(scope, 'Judge Probe Verdict')
      .when(sfn.Condition.and(is('$.verdict', 'unhealthy'), HAS_STATE), backoff)
      .when(sfn.Condition.and(sfn.Condition.or(is('$.verdict', 'healthy'), is('$.verdict', 'empty')), HAS_STATE), plan)
      .otherwise(unexpected),
  );
  // No worker (empty queue, re-jitter disabled or no history budget left): straight to the ramp.
  // Re-jitter workers need the window the plan sized (`windowMaxSeconds`, a number) as well.
  plan.next(
    routeWorkerPlan(scope, 'Check Re-jitter Plan', rejitter, startRamp, unexpected, [isNumber('$.windowMaxSeconds')]),
  );
  rejitter.next(startRamp);
  startRamp.next(ramp);
  ramp.next(
    new sfn.Choice(scope, 'Route Ramp Decision')
      .when(sfn.Condition.and(is('$.action', 'step'), HAS_STATE, VALID_WAIT, isNumber('$.step')), hold)
      .when(sfn.Condition.and(is('$.action', 'done'), HAS_STATE), close)
      .when(sfn.Condition.and(is('$.action', 'reopen'), HAS_STATE), backoff)
      .otherwise(unexpected),
  );
  hold.next(ramp);

  return open;
}

/** State names of one Map of re-jitter slices. */
interface SliceMapNames {
  readonly map: string;
  readonly slice: string;
  readonly check: string;
  readonly drained: string;
  readonly bad: string;
}

/** A prefix for continued executions' names: the circuit name when known at synth time (kept short). */
function executionNamePrefix(circuitName: string): string {
  return cdk.Token.isUnresolved(circuitName) ? 'circuit' : circuitName.slice(0, 32);
}

/**
 * The route after a plan of workers (re-jitter, keep-alive): workers with a usable cutoff and
 * slice count go to `run`; an empty list of workers goes to `none`; anything else (workers without
 * a usable slicesPerWorker or without a `required` field, no list at all) is an unexpected output,
 * not a skip.
 */
function routeWorkerPlan(
  scope: Construct,
  id: string,
  run: sfn.IChainable,
  none: sfn.IChainable,
  unexpected: sfn.IChainable,
  required: sfn.Condition[] = [],
): sfn.Choice {
  return new sfn.Choice(scope, id)
    .when(
      sfn.Condition.and(
        sfn.Condition.isPresent('$.workers[0]'),
        isNumber('$.cutoffMs'),
        isNumber('$.slicesPerWorker'),
        sfn.Condition.numberGreaterThanEquals('$.slicesPerWorker', 1),
        ...required,
        HAS_STATE,
      ),
      run,
    )
    .when(
      sfn.Condition.and(
        sfn.Condition.isPresent('$.workers'),
        sfn.Condition.not(sfn.Condition.isPresent('$.workers[0]')),
        HAS_STATE,
      ),
      none,
    )
    .otherwise(unexpected);
}

/** The field is present and equals the string (a missing field must not raise States.Runtime). */
function is(path: string, value: string): sfn.Condition {
  return sfn.Condition.and(
    sfn.Condition.isPresent(path),
    sfn.Condition.isString(path),
    sfn.Condition.stringEquals(path, value),
  );
}
/** The field is present and a number. */
function isNumber(path: string): sfn.Condition {
  return sfn.Condition.and(sfn.Condition.isPresent(path), sfn.Condition.isNumeric(path));
}
/** The field is present and equals the boolean. */
function isBool(path: string, value: boolean): sfn.Condition {
  return sfn.Condition.and(
    sfn.Condition.isPresent(path),
    sfn.Condition.isBoolean(path),
    sfn.Condition.booleanEquals(path, value),
  );
}
const HAS_STATE = sfn.Condition.isPresent('$.state');
/** Wait states read `waitSeconds`: it must be a number of seconds, zero or more. */
const VALID_WAIT = sfn.Condition.and(
  isNumber('$.waitSeconds'),
  sfn.Condition.numberGreaterThanEquals('$.waitSeconds', 0),
);

/**
 * `$$.Execution.Id`, passed to every handler: the owner check of `open`, `ramp`, `close` and
 * `stuck`, and, for all of them, the execution named on every log line (CONTRACT.md).
 */
const EXECUTION_ARN = { 'executionArn.$': '$$.Execution.Id' };

/** A Lambda task whose output is the handler's own result document. */
function invoke(
  scope: Construct,
  id: string,
  fn: lambda.IFunction,
  payload: Record<string, unknown>,
): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject({ ...payload, ...EXECUTION_ARN }),
    retryOnServiceExceptions: false,
    outputPath: '$.Payload',
  });
  addRetries(task);
  return task;
}

/**
 * A handler's unhandled failure as Step Functions names it: its runtime exited mid-invocation (a
 * crash, out of memory) or it timed out. Every handler is safe to run again (conditional record
 * writes, copies before deletes), so a crash is retried instead of turning into a stuck circuit.
 */
export const LAMBDA_UNHANDLED_ERRORS = ['Lambda.Unknown'];

/**
 * Lambda's own transient failures, a crashed or timed-out handler and the handlers' `Retryable`
 * errors are retried with jitter.
 */
function addRetries(task: tasks.LambdaInvoke): void {
  task.addRetry({
    errors: LAMBDA_SERVICE_ERRORS,
    interval: cdk.Duration.seconds(2),
    maxAttempts: 6,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  });
  task.addRetry({
    errors: LAMBDA_UNHANDLED_ERRORS,
    interval: cdk.Duration.seconds(2),
    maxAttempts: 3,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  });
  task.addRetry({
    errors: ['Retryable'],
    interval: cdk.Duration.seconds(5),
    maxAttempts: 5,
    backoffRate: 2,
    maxDelay: cdk.Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  });
}
