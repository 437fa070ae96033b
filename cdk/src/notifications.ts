import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { CircuitEvent } from './props';

/** What `createNotifications` wires. */
export interface NotificationSettings {
  /** The topic every notification goes to. */
  readonly topic: sns.ITopic;
  /** The breaker events that get a rule (one each), in this order. */
  readonly events: readonly CircuitEvent[];
  /** The circuit: the rules match only its events. */
  readonly circuitName: string;
  /** The `source` of the breaker's events. */
  readonly eventSource: string;
  /** The bus the breaker's events are put on (`undefined`: the default bus). */
  readonly eventBus?: events.IEventBus;
  /** The recovery state machine, whose failed, timed-out and aborted executions are notified. */
  readonly stateMachineArn: string;
}

/**
 * An input transformer whose template is plain text: the message is that text with the event's
 * values filled in. `RuleTargetInput.fromText` and `fromMultilineText` JSON-quote their text (and
 * every line), and EventBridge hands an SNS target the template's text as it is, so their messages
 * arrive wrapped in quotes; a template that is not JSON arrives as written.
 */
class PlainTextInput extends events.RuleTargetInput {
  constructor(private readonly template: string, private readonly paths: Readonly<Record<string, string>>) {
    super();
  }

  public bind(_rule: events.IRule): events.RuleTargetInputProperties {
    return { inputTemplate: this.template, inputPathsMap: { ...this.paths } };
  }
}

/** The placeholders the messages use and where EventBridge reads them. */
const PATHS: Readonly<Record<string, string>> = {
  circuit: '$.detail.circuit',
  queueArn: '$.detail.queueArn',
  esmUuid: '$.detail.esmUuid',
  attempt: '$.detail.attempt',
  openSeconds: '$.detail.openSeconds',
  time: '$.time',
  reason: '$.detail.reason',
  error: '$.detail.error',
  maximumConcurrency: '$.detail.maximumConcurrency',
  probed: '$.detail.probed',
  failed: '$.detail.failed',
  queued: '$.detail.queued',
  retentionSeconds: '$.detail.retentionSeconds',
  backlog: '$.detail.backlog',
  execution: '$.detail.name',
  executionArn: '$.detail.executionArn',
  status: '$.detail.status',
  stateMachineArn: '$.detail.stateMachineArn',
  cause: '$.detail.cause',
};

/**
 * Per event: the summary's verb and what it means and what the operator can do. `<name>` is a
 * value of the event (`PATHS`); a field the event lacks is left empty by EventBridge.
 */
const MESSAGES: Readonly<Record<CircuitEvent, { readonly summary: string; readonly body: readonly string[] }>> = {
  [CircuitEvent.OPENED]: {
    summary: 'OPENED',
    body: [
      'The consumer\'s event-source mapping is disabled: messages wait in the queue, nothing is consumed and nothing is lost.',
      'The breaker probes the consumer with backoff and resumes on its own once it is healthy. Nothing to do but look at the downstream the consumer calls.',
      'Reason: <reason>',
    ],
  },
  [CircuitEvent.PROBE_FAILED]: {
    summary: 'PROBE FAILED',
    body: [
      'A probe found the consumer still unhealthy; the circuit stays open and the next probe follows after the backoff.',
      'Probed <probed> message(s), <failed> failed. Reason: <reason>',
      'Error (when the invoke itself failed): <error>',
    ],
  },
  [CircuitEvent.HALF_OPEN]: {
    summary: 'HALF-OPEN',
    body: [
      'A probe found the consumer healthy: the mapping is enabled again at MaximumConcurrency <maximumConcurrency> and raised step by step.',
      'A relapse opens the circuit again. Nothing to do.',
    ],
  },
  [CircuitEvent.CLOSED]: {
    summary: 'CLOSED',
    body: [
      'The mapping\'s original scaling is restored and the alarm reset to OK: consumption is back to normal. Nothing to do.',
    ],
  },
  [CircuitEvent.STUCK_OPEN]: {
    summary: 'STUCK OPEN',
    body: [
      'The breaker stopped recovering: the event-source mapping is left DISABLED and messages stay in the queue until their retention runs out.',
      'Check the downstream and the consumer, then run `breaker close` (or enable the mapping yourself) to resume.',
      'Reason: <reason>',
      'Error: <error>',
    ],
  },
  [CircuitEvent.MESSAGES_KEPT_ALIVE]: {
    summary: 'MESSAGES KEPT ALIVE',
    body: [
      'The circuit has been open long enough that queued messages near their retention: the breaker re-sent them so that none expires.',
      '<queued> message(s) queued. Nothing to do.',
    ],
  },
  [CircuitEvent.MESSAGES_AT_RISK]: {
    summary: 'MESSAGES AT RISK',
    body: [
      '<queued> queued message(s) may expire (queue retention <retentionSeconds> s) while the circuit stays open: the breaker cannot keep them alive.',
      'Fix the downstream, or run `breaker close` to resume consuming before they expire.',
      'Reason: <reason>',
    ],
  },
  [CircuitEvent.REJITTER_SKIPPED]: {
    summary: 'RE-JITTER SKIPPED',
    body: [
      'The backlog (<backlog> message(s)) was not spread out; the recovery goes on to the ramp. Nothing to do.',
      'Reason: <reason>',
    ],
  },
};

/** The detail lines every breaker event's message ends with. */
const FACTS = [
  'circuit: <circuit>',
  'queue: <queueArn>',
  'event-source mapping: <esmUuid>',
  'attempt: <attempt>',
  'open for: <openSeconds> s',
  'time: <time>',
];

/** A template and the paths of exactly the placeholders it uses. */
function plainText(lines: readonly string[]): PlainTextInput {
  const template = lines.join('\n');
  const used = new Set([...template.matchAll(/<([A-Za-z]+)>/g)].map((m) => m[1]));
  const paths: Record<string, string> = {};
  for (const name of Object.keys(PATHS)) if (used.has(name)) paths[name] = PATHS[name];
  return new PlainTextInput(template, paths);
}

/** The message for a breaker event: a one-line summary, what it means and what to do, the facts. */
function eventTemplateLines(event: CircuitEvent): string[] {
  const m = MESSAGES[event];
  return [`sqs-circuit-breaker: circuit <circuit> ${m.summary}`, '', ...m.body, '', ...FACTS];
}

/** The message for a recovery execution that failed, timed out or was aborted. */
function executionMessage(circuitName: string): PlainTextInput {
  return plainText([
    `sqs-circuit-breaker: recovery of circuit ${circuitName} <status>`,
    '',
    'The recovery execution ended before closing the circuit: the event-source mapping may be left disabled.',
    'Read the execution\'s history (Step Functions console), then run `breaker status`; `breaker close` resumes consumption once the downstream is healthy.',
    'Error: <error>',
    'Cause: <cause>',
    '',
    'execution: <execution>',
    'execution ARN: <executionArn>',
    'status: <status>',
    'state machine: <stateMachineArn>',
    'time: <time>',
  ]);
}

/** Rule id per event: `NotifyCircuitOpenedRule`, `NotifyProbeFailedRule`, ... */
function ruleId(event: CircuitEvent): string {
  return `Notify${event.replace(/[^A-Za-z]/g, '')}Rule`;
}

/**
 * The notification rules: one per chosen breaker event of this circuit, and one for recovery
 * executions that failed, timed out or were aborted, each with a plain-text SNS message.
 */
export function createNotifications(scope: Construct, s: NotificationSettings): events.Rule[] {
  const rules = s.events.map((event) => new events.Rule(scope, ruleId(event), {
    description: `notifies of "${event}" events of circuit ${s.circuitName}`,
    eventBus: s.eventBus,
    eventPattern: {
      source: [s.eventSource],
      detailType: [event],
      detail: { circuit: [s.circuitName] },
    },
    targets: [new targets.SnsTopic(s.topic, { message: plainText(eventTemplateLines(event)) })],
  }));
  rules.push(new events.Rule(scope, 'ExecutionFailedRule', {
    description: `notifies of recoveries of circuit ${s.circuitName} that failed, timed out or were aborted`,
    eventPattern: {
      source: ['aws.states'],
      detailType: ['Step Functions Execution Status Change'],
      detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [s.stateMachineArn] },
    },
    targets: [new targets.SnsTopic(s.topic, { message: executionMessage(s.circuitName) })],
  }));
  return rules;
}
