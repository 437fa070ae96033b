import {
  allStates,
  ALARM_EVENT,
  circuit,
  EXECUTION_ARN,
  fail,
  reply,
  Run,
  runWorkflow,
  synthesizeWorkflow,
  targets,
  Workflow,
} from './harness';

/** Every task's payload carries the execution (CONTRACT.md: the owner check and every log line). */
const ARN = { executionArn: EXECUTION_ARN };

let wf: Workflow;
beforeAll(() => {
  wf = synthesizeWorkflow();
});

/** Every call the execution made had a scripted reply (no accidental path). */
function expectScripted(run: Run): void {
  expect(run.unscripted.map((c) => `${c.state} -> ${c.target}`)).toEqual([]);
}

/** The replies of `open` (proceed) and the first `backoff` (wait). */
function openedAndBackingOff(): Record<string, unknown[]> {
  return { open: [reply.proceed()], backoff: [reply.wait()] };
}

/** The replies of a full recovery after `open` and the first backoff: healthy probe to close. */
function recoveryAfterProbe(): Record<string, unknown[]> {
  return {
    'rejitter-plan': [reply.plan([0, 1])],
    rejitter: [reply.slice(false), reply.slice(true), reply.slice(true)],
    ramp: [reply.rampStep(1), reply.rampStep(2), reply.rampDone(3)],
    close: [reply.close(95)],
    putMetricData: [{}],
  };
}

describe('the synthesized workflow', () => {
  test('calls each handler from a state named for what it does, none named after a number', () => {
    expect(wf.targetOfState).toEqual({
      'Open Circuit': 'open',
      'Compute Backoff': 'backoff',
      'Continue As New Execution': 'startExecution',
      'Probe Consumer': 'probe',
      'Plan Re-jitter': 'rejitter-plan',
      'Re-jitter Slice': 'rejitter',
      'Plan Keep-Alive Pass': 'rejitter-plan',
      'Keep-Alive Slice': 'rejitter',
      'Ramp Up Consumer': 'ramp',
      'Close Circuit': 'close',
      'Publish Open Time': 'putMetricData',
      'Report Stuck Circuit': 'stuck',
    });
    for (const [name] of allStates(wf.definition)) expect(name).not.toMatch(/\d/);
  });

  test('retries Retryable and Lambda throttling/service errors and catches everything else on every Lambda task', () => {
    for (const [name, target] of Object.entries(wf.targetOfState)) {
      if (target === 'startExecution' || target === 'putMetricData') continue;
      const state = allStates(wf.definition).find(([n]) => n === name)![1] as {
        Retry: Array<{ ErrorEquals: string[] }>;
        Catch?: Array<{ ErrorEquals: string[] }>;
      };
      const retried = state.Retry.flatMap((r) => r.ErrorEquals);
      expect(retried).toEqual(
        expect.arrayContaining(['Retryable', 'Lambda.TooManyRequestsException', 'Lambda.ServiceException']),
      );
      // The re-jitter slice runs inside the Map, whose own Catch covers it; the stuck report is the last resort.
      if (name !== 'Re-jitter Slice' && name !== 'Keep-Alive Slice' && name !== 'Report Stuck Circuit') {
        expect(state.Catch!.flatMap((c) => c.ErrorEquals)).toContain('States.ALL');
      }
    }
  });

  test('passes every handler the execution, which each names on every log line (CONTRACT.md)', () => {
    const handlers = Object.entries(wf.targetOfState).filter(
      ([, target]) => target !== 'startExecution' && target !== 'putMetricData',
    );
    expect(handlers).toHaveLength(10);
    for (const [name] of handlers) {
      const state = allStates(wf.definition).find(([n]) => n === name)![1];
      const payload = (state.Parameters?.Payload ?? {}) as Record<string, unknown>;
      expect([name, payload['executionArn.$']]).toEqual([name, '$$.Execution.Id']);
    }
  });

  test('waits take their length from the handlers, not from a constant', () => {
    const waits = allStates(wf.definition).filter(([, s]) => s.Type === 'Wait');
    expect(waits.map(([n, s]) => [n, s.SecondsPath])).toEqual([
      ['Back Off', '$.waitSeconds'],
      ['Hold Ramp Step', '$.waitSeconds'],
    ]);
  });
});

describe('executing the workflow', () => {
  test('healthy on the first probe: opens, backs off once, re-jitters, ramps and closes', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed(circuit(0))],
        backoff: [reply.wait(circuit(0), 30)],
        probe: [reply.probe('healthy', circuit(1))],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run).filter((t) => t !== 'rejitter')).toEqual([
      'open',
      'backoff',
      'probe',
      'rejitter-plan',
      'ramp',
      'ramp',
      'ramp',
      'close',
      'putMetricData',
    ]);
    expect(targets(run).filter((t) => t === 'rejitter')).toHaveLength(3);
    const [open, backoff, probe] = run.calls;
    expect(open.payload).toEqual({ executionArn: EXECUTION_ARN, input: ALARM_EVENT });
    expect(backoff.payload).toEqual({ state: circuit(0), ...ARN });
    expect(probe.payload).toEqual({ state: circuit(0), ...ARN });
    expect(run.states).toContain('Back Off');
    expect(run.states[run.states.length - 1]).toBe('Circuit Closed');
  });

  test('re-jitter runs one Map iteration per planned worker and loops each until it is done', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy')],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    const slices = run.calls.filter((c) => c.target === 'rejitter').map((c) => c.payload);
    // The first slice of each worker gets the plan's slicesPerWorker, the next one what the
    // previous slice answered (the history budget's bound on a worker, CONTRACT.md).
    // Every slice also gets the window the plan sized to the backlog (issue 16).
    expect(slices).toEqual(
      expect.arrayContaining([
        { worker: 0, cutoffMs: 1763900100000, slicesLeft: 5, windowMaxSeconds: 12, ...ARN },
        { worker: 1, cutoffMs: 1763900100000, slicesLeft: 5, windowMaxSeconds: 12, ...ARN },
        { worker: expect.any(Number), cutoffMs: 1763900100000, slicesLeft: 4, windowMaxSeconds: 12, ...ARN },
      ]),
    );
    expect(slices.filter((p) => p.worker === 0).length + slices.filter((p) => p.worker === 1).length).toBe(3);
  });

  test('a keep-alive decision copies the queue without delay and returns to the backoff loop, not to the ramp', async () => {
    const kept = { ...circuit(1), refreshedAtMs: 1763900099000 };
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed(circuit(0))],
        backoff: [
          reply.wait(circuit(0), 30),
          { version: 1, action: 'keepalive', waitSeconds: 0, state: kept },
          reply.wait(kept, 30),
        ],
        probe: [reply.probe('unhealthy', circuit(1)), reply.probe('healthy', kept)],
        'rejitter-plan': [reply.plan([0, 1], kept), reply.plan([], kept)],
        rejitter: [reply.slice(false), reply.slice(true), reply.slice(true)],
        ramp: [reply.rampDone(1, kept)],
        close: [reply.close(95)],
        putMetricData: [{}],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    const plans = run.calls.filter((c) => c.target === 'rejitter-plan').map((c) => [c.state, c.payload]);
    expect(plans).toEqual([
      ['Plan Keep-Alive Pass', { state: kept, keepAlive: true, ...ARN }],
      ['Plan Re-jitter', { state: kept, ...ARN }],
    ]);
    const slices = run.calls.filter((c) => c.target === 'rejitter');
    expect(slices.every((c) => c.state === 'Keep-Alive Slice')).toBe(true);
    expect(slices.map((c) => c.payload)).toEqual(
      expect.arrayContaining([
        { worker: 0, cutoffMs: 1763900100000, slicesLeft: 5, keepAlive: true, ...ARN },
        { worker: 1, cutoffMs: 1763900100000, slicesLeft: 5, keepAlive: true, ...ARN },
      ]),
    );
    // After the pass: Compute Backoff again (with the refreshed state), then Back Off and a probe.
    const after = run.states.slice(run.states.indexOf('Keep Messages Alive'));
    expect(after.filter((n) => !/Slice|Worker/.test(n)).slice(0, 4)).toEqual([
      'Keep Messages Alive',
      'Compute Backoff',
      'Route Backoff Decision',
      'Back Off',
    ]);
    expect(run.calls.filter((c) => c.target === 'backoff')[2].payload).toEqual({ state: kept, ...ARN });
  });

  test('a keep-alive plan without workers (empty or FIFO queue) goes straight back to the backoff loop', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed(circuit(0))],
        backoff: [{ version: 1, action: 'keepalive', waitSeconds: 0, state: circuit(0) }, reply.stuck(circuit(0))],
        'rejitter-plan': [reply.plan([], circuit(0))],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'rejitter-plan', 'backoff']);
    expect(run.status).toBe('SUCCEEDED');
  });

  test('a keep-alive decision without state, or a keep-alive plan without workers, is reported, not dropped', async () => {
    const noState = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [{ version: 1, action: 'keepalive', waitSeconds: 0 }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expect(noState.calls[2]).toMatchObject({
      target: 'stuck',
      payload: { error: { Error: 'UnexpectedHandlerOutput' } },
    });
    const badPlan = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [{ version: 1, action: 'keepalive', waitSeconds: 0, state: circuit() }],
        'rejitter-plan': [{ version: 1, backlog: 3, cutoffMs: 5, state: circuit() }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expect(badPlan.calls[3]).toMatchObject({
      target: 'stuck',
      payload: { state: circuit(), error: { Error: 'UnexpectedHandlerOutput' } },
    });
    expect(badPlan.status).toBe('FAILED');
  });

  test('the ramp starts at step 0 and hands each result back to the next step', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy', circuit(1))],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    const ramps = run.calls.filter((c) => c.target === 'ramp').map((c) => c.payload);
    const me = { executionArn: EXECUTION_ARN };
    expect(ramps).toEqual([
      { state: circuit(1), step: 0, ...me },
      { state: circuit(1), step: 1, ...me },
      { state: circuit(1), step: 2, ...me },
    ]);
    expect(run.calls.find((c) => c.target === 'close')!.payload).toEqual({ state: circuit(1), ...me, ...ARN });
  });

  test('publishes how long the circuit was open as the OpenSeconds metric of this circuit', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy')],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    const metric = run.calls.find((c) => c.target === 'putMetricData')!.payload as {
      Namespace: string;
      MetricData: Array<Record<string, unknown>>;
    };
    expect(metric.Namespace).toBe('SqsCircuitBreaker');
    expect(metric.MetricData[0]).toMatchObject({ MetricName: 'OpenSeconds', Value: 95, Unit: 'Seconds' });
  });

  test('a failed metric publication does not fail a closed circuit', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy')],
        ...recoveryAfterProbe(),
        // The first call and its three retries all fail.
        putMetricData: Array.from({ length: 4 }, () => fail('CloudWatch.CloudWatchException')),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run).filter((t) => t === 'putMetricData')).toHaveLength(4);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.states[run.states.length - 1]).toBe('Circuit Closed');
    expect(targets(run)).not.toContain('stuck');
  });

  test('fails three probes then heals: backs off before every probe, then recovers', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed(circuit(0))],
        backoff: [
          reply.wait(circuit(0), 30),
          reply.wait(circuit(1), 60),
          reply.wait(circuit(2), 120),
          reply.wait(circuit(3), 240),
        ],
        probe: [
          reply.probe('unhealthy', circuit(1)),
          reply.probe('unhealthy', circuit(2)),
          reply.probe('unhealthy', circuit(3)),
          reply.probe('healthy', circuit(4)),
        ],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run).slice(0, 9)).toEqual([
      'open',
      'backoff',
      'probe',
      'backoff',
      'probe',
      'backoff',
      'probe',
      'backoff',
      'probe',
    ]);
    // Each backoff gets the state the previous probe returned (attempt counting survives the loop).
    expect(
      run.calls.filter((c) => c.target === 'backoff').map((c) => (c.payload.state as { attempt: number }).attempt),
    ).toEqual([0, 1, 2, 3]);
    expect(run.states.filter((s) => s === 'Back Off')).toHaveLength(4);
    expect(targets(run)).toContain('close');
  });

  test('an empty queue is healthy enough: no re-jitter worker runs, the circuit closes', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('empty')],
        'rejitter-plan': [reply.plan([])],
        ramp: [reply.rampStep(1), reply.rampDone(2)],
        close: [reply.close()],
        putMetricData: [{}],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).not.toContain('rejitter');
    expect(targets(run)).toContain('close');
  });

  test('a duplicate execution exits without acting', async () => {
    const run = await runWorkflow(wf, { open: [reply.duplicate()] }, ALARM_EVENT);
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).toEqual(['open']);
    expect(run.states).toEqual(['Open Circuit', 'Check For Running Recovery', 'Leave Recovery To Running Execution']);
  });

  test('a relapse during the ramp reopens: back to backoff and probing, then a fresh ramp from step 0', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [reply.wait(circuit(0)), reply.wait(circuit(1))],
        probe: [reply.probe('healthy', circuit(1)), reply.probe('healthy', circuit(2))],
        'rejitter-plan': [reply.plan([0]), reply.plan([0])],
        rejitter: [reply.slice(true), reply.slice(true)],
        ramp: [
          reply.rampStep(1, circuit(1)),
          reply.reopen(2, circuit(1)),
          reply.rampStep(1, circuit(2)),
          reply.rampDone(2, circuit(2)),
        ],
        close: [reply.close()],
        putMetricData: [{}],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).toEqual([
      'open',
      'backoff',
      'probe',
      'rejitter-plan',
      'rejitter',
      'ramp',
      'ramp',
      'backoff',
      'probe',
      'rejitter-plan',
      'rejitter',
      'ramp',
      'ramp',
      'close',
      'putMetricData',
    ]);
    const ramps = run.calls.filter((c) => c.target === 'ramp').map((c) => c.payload.step);
    expect(ramps).toEqual([0, 1, 0, 1]);
  });

  test('a throttled Lambda is retried and the recovery carries on', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [
          fail('Lambda.TooManyRequestsException', 'Rate Exceeded.'),
          fail('Lambda.ServiceException'),
          reply.probe('healthy'),
        ],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run).slice(0, 5)).toEqual(['open', 'backoff', 'probe', 'probe', 'probe']);
    expect(targets(run)).not.toContain('stuck');
  });

  test('a handler that crashed or timed out (Lambda.Unknown) is retried and the recovery carries on', async () => {
    // Step Functions names a function's unhandled failures (its runtime killed mid-invocation, out
    // of memory, a timeout) Lambda.Unknown. The handlers are safe to run again; a crash must not
    // turn into a stuck circuit.
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [
          fail('Lambda.Unknown', 'Runtime exited with error: signal: killed'),
          fail('Lambda.Unknown', 'Task timed out'),
          reply.probe('healthy'),
        ],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run).slice(0, 5)).toEqual(['open', 'backoff', 'probe', 'probe', 'probe']);
    expect(targets(run)).not.toContain('stuck');
  });

  test('a Retryable handler error is retried', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [fail('Retryable', 'ResourceInUseException'), reply.proceed()],
        backoff: [reply.wait()],
        probe: [reply.probe('healthy')],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run).slice(0, 2)).toEqual(['open', 'open']);
  });

  test('Retryable errors that never stop end in a stuck-open report carrying the circuit state', async () => {
    const s = circuit(1);
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy', s)],
        'rejitter-plan': [reply.plan([])],
        ramp: Array.from({ length: 6 }, () => fail('Retryable', 'throttled')),
        stuck: [reply.reported('Enabled')],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run).filter((t) => t === 'ramp')).toHaveLength(6);
    const report = run.calls.find((c) => c.target === 'stuck')!;
    expect(report.payload).toEqual({
      state: s,
      error: { Error: 'Retryable', Cause: 'throttled' },
      executionArn: EXECUTION_ARN,
    });
    expect(run.status).toBe('FAILED');
    expect(run.error!.name).toBe('CircuitStuckOpen');
  });

  test('a NonRetryable error is not retried and is reported stuck open at once', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [fail('NonRetryable', 'AccessDeniedException: sqs:ReceiveMessage')],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'stuck']);
    expect(run.calls[3].payload).toEqual({
      state: circuit(),
      error: { Error: 'NonRetryable', Cause: 'AccessDeniedException: sqs:ReceiveMessage' },
      executionArn: EXECUTION_ARN,
    });
    expect(run.status).toBe('FAILED');
  });

  test('a failing open is reported with no state when triggered by the alarm', async () => {
    const run = await runWorkflow(
      wf,
      { open: [fail('NonRetryable', 'ESM not found')], stuck: [reply.reported('Enabled')] },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.calls[1]).toMatchObject({
      target: 'stuck',
      payload: { state: null, error: { Error: 'NonRetryable', Cause: 'ESM not found' } },
    });
  });

  test('a failing open of a continued execution is reported with the resumed state', async () => {
    const s = circuit(500);
    const run = await runWorkflow(
      wf,
      { open: [fail('NonRetryable', 'boom')], stuck: [reply.reported()] },
      { resume: s, previousExecutionArn: 'arn:prev' },
    );
    expectScripted(run);
    expect(run.calls[1].payload).toEqual({
      state: s,
      error: { Error: 'NonRetryable', Cause: 'boom' },
      executionArn: EXECUTION_ARN,
    });
  });

  test('a probe that cannot be judged (ProbeFailed) keeps the circuit open and backs off again', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [reply.wait(circuit(0)), reply.wait(circuit(0))],
        probe: [fail('ProbeFailed', 'consumer invoke failed'), reply.probe('healthy')],
        ...recoveryAfterProbe(),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run).slice(0, 5)).toEqual(['open', 'backoff', 'probe', 'backoff', 'probe']);
    expect(run.calls[3].payload).toEqual({ state: circuit(0), ...ARN });
  });

  test('a failing re-jitter worker fails the Map, which reports the circuit stuck open', async () => {
    const s = circuit(1);
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy', s)],
        'rejitter-plan': [reply.plan([0], s)],
        rejitter: [fail('NonRetryable', 'send failed')],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'rejitter-plan', 'rejitter', 'stuck']);
    expect(run.calls[5].payload).toMatchObject({ state: s, error: { Error: 'NonRetryable' } });
    expect(run.status).toBe('FAILED');
  });

  test('a decision the workflow does not know is reported, not dropped', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [{ version: 1, action: 'dance', waitSeconds: 1, state: circuit() }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.calls[2]).toMatchObject({
      target: 'stuck',
      payload: { state: circuit(), error: { Error: 'UnexpectedHandlerOutput' } },
    });
    expect((run.calls[2].payload.error as { Cause: string }).Cause).toContain('"action":"dance"');
    expect(run.status).toBe('FAILED');
  });

  test('max open duration reached: backoff reports stuck open, the execution ends with the mapping left disabled', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [reply.wait(circuit(0)), reply.stuck(circuit(1))],
        probe: [reply.probe('unhealthy', circuit(1))],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'backoff']);
    // Nothing re-enables the mapping after "stuck": no ramp, no close.
    expect(run.states[run.states.length - 1]).toBe('Leave Circuit Open');
  });

  test('a manual close skips backoff and probe: re-jitter, ramp from step 0 (re-enabling the mapping) and close', async () => {
    const s = circuit(3, { iteration: 0, generation: 1 });
    const input = {
      trigger: 'manual-close',
      resume: circuit(3),
      previousExecutionArn: 'arn:aws:states:eu-west-1:123456789012:execution:breaker:alarm-1',
    };
    const run = await runWorkflow(
      wf,
      {
        open: [reply.manualClose(s)],
        'rejitter-plan': [reply.plan([0], s)],
        rejitter: [reply.slice(true)],
        ramp: [reply.rampStep(1, s), reply.rampDone(2, s)],
        close: [reply.close(400)],
        putMetricData: [{}],
      },
      input,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.calls[0].payload).toEqual({ executionArn: EXECUTION_ARN, input });
    expect(targets(run)).toEqual(['open', 'rejitter-plan', 'rejitter', 'ramp', 'ramp', 'close', 'putMetricData']);
    expect(run.calls[1].payload).toEqual({ state: s, ...ARN });
    expect(run.calls.filter((c) => c.target === 'ramp').map((c) => c.payload)).toEqual([
      { state: s, step: 0, executionArn: EXECUTION_ARN },
      { state: s, step: 1, executionArn: EXECUTION_ARN },
    ]);
    expect(run.calls.find((c) => c.target === 'close')!.payload).toEqual({ state: s, executionArn: EXECUTION_ARN });
    expect(run.states).not.toContain('Compute Backoff');
    expect(run.states).not.toContain('Back Off');
    expect(run.states).not.toContain('Probe Consumer');
    expect(run.states[run.states.length - 1]).toBe('Circuit Closed');
  });

  test('a manual close with an empty queue goes from open straight to the ramp', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.manualClose()],
        'rejitter-plan': [reply.plan([])],
        ramp: [reply.rampDone(1)],
        close: [reply.close()],
        putMetricData: [{}],
      },
      { trigger: 'manual-close', resume: circuit() },
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).toEqual(['open', 'rejitter-plan', 'ramp', 'close', 'putMetricData']);
  });

  test('a manual close that open rejects is reported stuck open with the state it was given', async () => {
    const input = { trigger: 'manual', resume: circuit(2) };
    const run = await runWorkflow(
      wf,
      {
        open: [
          fail('NonRetryable', 'invalid input at `input.trigger`: unknown variant `manual`, expected `manual-close`'),
        ],
        stuck: [reply.reported()],
      },
      input,
    );
    expectScripted(run);
    expect(run.status).toBe('FAILED');
    expect(targets(run)).toEqual(['open', 'stuck']);
    expect(run.calls[1].payload).toMatchObject({ state: circuit(2), error: { Error: 'NonRetryable' } });
  });

  test('a close answer without a state is reported, not routed', async () => {
    const run = await runWorkflow(
      wf,
      { open: [{ version: 1, action: 'close' }], stuck: [reply.reported()] },
      { trigger: 'manual-close', resume: circuit() },
    );
    expectScripted(run);
    expect(run.status).toBe('FAILED');
    expect(targets(run)).toEqual(['open', 'stuck']);
    expect(run.calls[1].payload).toMatchObject({ error: { Error: 'UnexpectedHandlerOutput' } });
  });

  test('a long outage continues as a new execution carrying the state and this execution ARN', async () => {
    const s = circuit(499, { generation: 0 });
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [reply.continueAsNew(s)],
        startExecution: [{ ExecutionArn: 'arn:new', StartDate: '2025-11-23T12:00:00Z' }],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    const start = run.calls.find((c) => c.target === 'startExecution')!.payload as {
      StateMachineArn: string;
      Input: unknown;
      Name: string;
    };
    expect(start.Input).toEqual({ resume: s, previousExecutionArn: EXECUTION_ARN });
    expect(start.StateMachineArn).toMatch(/^arn:aws:states:eu-west-1:123456789012:stateMachine:/);
    expect(start.Name).toMatch(/-resume-1763900000000-0-499$/);
    expect(start.Name.length).toBeLessThanOrEqual(80);
    expect(run.states[run.states.length - 1]).toBe('Hand Over To New Execution');
  });

  test('the continued execution resumes: open receives the resume input and the loop goes on', async () => {
    const s = circuit(500, { iteration: 0, generation: 1 });
    const input = { resume: s, previousExecutionArn: 'arn:aws:states:eu-west-1:123456789012:execution:breaker:exec-0' };
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed(s)],
        backoff: [reply.wait(s)],
        probe: [reply.probe('healthy', s)],
        ...recoveryAfterProbe(),
      },
      input,
    );
    expectScripted(run);
    expect(run.calls[0].payload).toEqual({ executionArn: EXECUTION_ARN, input });
    expect(run.status).toBe('SUCCEEDED');
  });

  test('a failing continue-as-new is reported stuck open instead of ending silently', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [reply.continueAsNew()],
        startExecution: [fail('StepFunctions.AccessDeniedException')],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'startExecution', 'stuck']);
    expect(run.status).toBe('FAILED');
  });

  test('a re-jitter slice without a boolean "done" fails its worker and is reported stuck open', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy')],
        'rejitter-plan': [reply.plan([0])],
        rejitter: [{ version: 1, moved: 3 }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'rejitter-plan', 'rejitter', 'stuck']);
    expect(run.calls[5].payload).toMatchObject({ error: { Error: 'UnexpectedHandlerOutput' } });
  });

  test('when even the stuck report fails after its retries, the execution fails (and is notified as FAILED)', async () => {
    const run = await runWorkflow(
      wf,
      {
        open: [fail('NonRetryable', 'boom')],
        stuck: Array.from({ length: 6 }, () => fail('Retryable', 'PutEvents throttled')),
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run).filter((t) => t === 'stuck')).toHaveLength(6);
    expect(run.status).toBe('FAILED');
    expect(run.error!.name).toBe('Retryable');
  });

  test('an output missing a field the next state reads is reported stuck open, never a States.Runtime failure', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [{ version: 1, verdict: 'healthy', probed: 1 }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'stuck']);
    expect(run.calls[3].payload).toMatchObject({ state: null, error: { Error: 'UnexpectedHandlerOutput' } });
    expect(String((run.calls[3].payload.error as { Cause: string }).Cause)).toContain('"verdict":"healthy"');
  });

  test('an unknown action keeps the state the handler returned in the stuck report', async () => {
    const s = circuit(7);
    const run = await runWorkflow(
      wf,
      {
        open: [reply.proceed()],
        backoff: [{ version: 1, action: 'wait', waitSeconds: -5, state: s }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.calls[2].payload).toMatchObject({ state: s, error: { Error: 'UnexpectedHandlerOutput' } });
  });

  test('a slice that is not done but has no slice left fails its worker; a plan without slicesPerWorker is reported', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy')],
        'rejitter-plan': [reply.plan([0])],
        rejitter: [reply.slice(false, 0)],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'rejitter-plan', 'rejitter', 'stuck']);
    expect(run.calls[5].payload).toMatchObject({ error: { Error: 'UnexpectedHandlerOutput' } });

    const unbounded: Record<string, unknown> = { ...reply.plan([0]) };
    delete unbounded.slicesPerWorker;
    const run2 = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('healthy')],
        'rejitter-plan': [unbounded],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run2);
    expect(targets(run2)).toEqual(['open', 'backoff', 'probe', 'rejitter-plan', 'stuck']);
  });

  test('a re-jitter plan whose windowMaxSeconds is missing or not a number is reported, no worker started', async () => {
    for (const windowMaxSeconds of ['12', null, undefined]) {
      const bad: Record<string, unknown> = { ...reply.plan([0]), windowMaxSeconds };
      if (windowMaxSeconds === undefined) delete bad.windowMaxSeconds;
      const run = await runWorkflow(
        wf,
        {
          ...openedAndBackingOff(),
          probe: [reply.probe('healthy')],
          'rejitter-plan': [bad],
          stuck: [reply.reported()],
        },
        ALARM_EVENT,
      );
      expectScripted(run);
      expect(targets(run)).toEqual(['open', 'backoff', 'probe', 'rejitter-plan', 'stuck']);
      expect(run.calls[4].payload).toMatchObject({ error: { Error: 'UnexpectedHandlerOutput' } });
    }
  });

  test('a close without openSeconds still ends closed, just without the metric', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('empty')],
        'rejitter-plan': [reply.plan([])],
        ramp: [reply.rampDone(1)],
        close: [{ version: 1, action: 'closed', closed: true }],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).not.toContain('putMetricData');
  });

  test('a re-trip found by close goes back to backoff with the state close returned, then closes', async () => {
    const reopened = circuit(5);
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        backoff: [reply.wait(circuit(), 1), reply.wait(reopened, 1)],
        probe: [reply.probe('healthy'), reply.probe('healthy', reopened)],
        'rejitter-plan': [reply.plan([]), reply.plan([])],
        ramp: [reply.rampDone(1), reply.rampDone(1)],
        close: [reply.closeReopen(reopened), reply.close()],
        putMetricData: [{}],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(targets(run)).toEqual([
      'open',
      'backoff',
      'probe',
      'rejitter-plan',
      'ramp',
      'close',
      'backoff',
      'probe',
      'rejitter-plan',
      'ramp',
      'close',
      'putMetricData',
    ]);
    expect(run.calls[6].payload).toEqual({ state: reopened, ...ARN });
  });

  test('a close answer that is neither closed nor a reopen with state is reported, not dropped', async () => {
    const run = await runWorkflow(
      wf,
      {
        ...openedAndBackingOff(),
        probe: [reply.probe('empty')],
        'rejitter-plan': [reply.plan([])],
        ramp: [reply.rampDone(1)],
        close: [{ version: 1, action: 'reopen', closed: false, openSeconds: 1 }],
        stuck: [reply.reported()],
      },
      ALARM_EVENT,
    );
    expectScripted(run);
    expect(targets(run).slice(-1)).toEqual(['stuck']);
  });
});
