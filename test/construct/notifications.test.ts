import * as fs from 'fs';
import * as path from 'path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { CircuitEvent, SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { consumerStack } from './fixture';

/** toThrow with an Error compares the whole message, not a substring. */
const exactly = (message: string): Error => new Error(message);

const HEAD = "SqsCircuitBreaker at 'TestStack/OrdersBreaker' has invalid props:\n";

/** A breaker named `orders` with a topic (unless `topic: false`) and the given events. */
function notifying(notificationEvents?: CircuitEvent[], topic = true): Template {
  const f = consumerStack();
  const alerts = topic ? new sns.Topic(f.stack, 'Alerts', { enforceSSL: true }) : undefined;
  new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
    consumer: f.consumer, queue: f.queue, eventSourceMappingId: f.source.eventSourceMappingId,
    circuitName: 'orders', notificationTopic: alerts, notificationEvents,
  });
  return Template.fromStack(f.stack);
}

/** The detail-types the template's breaker-event rules match, in template order. */
function notifiedEvents(t: Template): string[] {
  const rules = Object.values(t.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['sqs-circuit-breaker'] } } }));
  return rules.flatMap((r) => r.Properties.EventPattern['detail-type'] as string[]);
}

/** The input transformer of the rule matching `detailType`. */
function transformer(t: Template, detailType: string): { InputTemplate: string; InputPathsMap: Record<string, string> } {
  const [rule] = Object.values(t.findResources('AWS::Events::Rule', { Properties: { EventPattern: { 'detail-type': [detailType] } } }));
  return rule.Properties.Targets[0].InputTransformer;
}

describe('CircuitEvent', () => {
  test('its values are exactly the detail-types of lambdas/core/src/events.rs (DetailType::as_str)', () => {
    const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'lambdas', 'core', 'src', 'events.rs'), 'utf8');
    const asStr = rust.slice(rust.indexOf('pub fn as_str'));
    const body = asStr.slice(0, asStr.indexOf('\n    }\n'));
    const fromRust = [...body.matchAll(/Self::\w+ => "([^"]+)"/g)].map((m) => m[1]);
    expect(fromRust).toHaveLength(8);
    expect([...Object.values(CircuitEvent)].sort()).toEqual([...fromRust].sort());
  });
});

describe('notifications', () => {
  test('by default: Opened, Half-Open, Closed, Stuck Open and Messages At Risk of this circuit, one rule each, to the topic', () => {
    const t = notifying();
    expect(notifiedEvents(t)).toEqual(['Circuit Opened', 'Circuit Half-Open', 'Circuit Closed', 'Circuit Stuck Open', 'Messages At Risk']);
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { 'source': ['sqs-circuit-breaker'], 'detail-type': ['Circuit Opened'], 'detail': { circuit: ['orders'] } },
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('^Alerts') }, InputTransformer: Match.anyValue() })],
    });
    // CDK's SnsTopic target lets EventBridge publish (the delivery fails without it)
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sns:Publish', Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' } })]) },
    });
  });

  test('failed, timed-out and aborted recoveries get a readable message too', () => {
    const t = notifying();
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ 'source': ['aws.states'], 'detail-type': ['Step Functions Execution Status Change'], 'detail': { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [Match.anyValue()] } }),
      Targets: [Match.objectLike({
        InputTransformer: {
          InputTemplate: Match.stringLikeRegexp('^sqs-circuit-breaker: recovery of circuit orders <status>\n'),
          InputPathsMap: {
            status: '$.detail.status', execution: '$.detail.name', executionArn: '$.detail.executionArn',
            stateMachineArn: '$.detail.stateMachineArn', time: '$.time', error: '$.detail.error', cause: '$.detail.cause',
          },
        },
      })],
    });
  });

  test('a custom list gets exactly its rules; Probe Failed only when asked', () => {
    expect(notifiedEvents(notifying([CircuitEvent.STUCK_OPEN, CircuitEvent.PROBE_FAILED]))).toEqual(['Circuit Stuck Open', 'Probe Failed']);
    expect(notifiedEvents(notifying())).not.toContain('Probe Failed');
    expect(notifiedEvents(notifying(Object.values(CircuitEvent)))).toHaveLength(8);
  });

  test('an empty list leaves only the failed-execution rule', () => {
    const t = notifying([]);
    expect(notifiedEvents(t)).toEqual([]);
    t.resourcePropertiesCountIs('AWS::Events::Rule', { EventPattern: Match.objectLike({ source: ['aws.states'] }) }, 1);
  });

  test('no topic, no notification rules', () => {
    const t = notifying(undefined, false);
    expect(notifiedEvents(t)).toEqual([]);
    t.resourceCountIs('AWS::SNS::TopicPolicy', 0);
    t.resourcePropertiesCountIs('AWS::Events::Rule', { EventPattern: Match.objectLike({ source: ['aws.states'] }) }, 0);
  });

  test('the message is plain text: a summary line, what it means and what to do, then the facts', () => {
    const t = notifying([CircuitEvent.STUCK_OPEN, CircuitEvent.OPENED]);
    expect(transformer(t, 'Circuit Stuck Open')).toEqual({
      InputTemplate: [
        'sqs-circuit-breaker: circuit <circuit> STUCK OPEN',
        '',
        'The breaker stopped recovering: the event-source mapping is left DISABLED and messages stay in the queue until their retention runs out.',
        'Check the downstream and the consumer, then run `breaker close` (or enable the mapping yourself) to resume.',
        'Reason: <reason>',
        'Error: <error>',
        '',
        'circuit: <circuit>',
        'queue: <queueArn>',
        'event-source mapping: <esmUuid>',
        'attempt: <attempt>',
        'open for: <openSeconds> s',
        'time: <time>',
      ].join('\n'),
      InputPathsMap: {
        circuit: '$.detail.circuit', queueArn: '$.detail.queueArn', esmUuid: '$.detail.esmUuid', attempt: '$.detail.attempt',
        openSeconds: '$.detail.openSeconds', time: '$.time', reason: '$.detail.reason', error: '$.detail.error',
      },
    });
    // not JSON-quoted (RuleTargetInput.fromText would make it '"..."', and SNS would show the quotes)
    expect(transformer(t, 'Circuit Opened').InputTemplate).toMatch(/^sqs-circuit-breaker: circuit <circuit> OPENED\n\nThe consumer's event-source mapping is disabled/);
  });

  test('every event has a summary line naming it', () => {
    const t = notifying(Object.values(CircuitEvent));
    const summaries = Object.values(CircuitEvent).map((e) => transformer(t, e).InputTemplate.split('\n')[0]);
    expect(summaries).toEqual([
      'sqs-circuit-breaker: circuit <circuit> OPENED',
      'sqs-circuit-breaker: circuit <circuit> PROBE FAILED',
      'sqs-circuit-breaker: circuit <circuit> HALF-OPEN',
      'sqs-circuit-breaker: circuit <circuit> CLOSED',
      'sqs-circuit-breaker: circuit <circuit> STUCK OPEN',
      'sqs-circuit-breaker: circuit <circuit> MESSAGES KEPT ALIVE',
      'sqs-circuit-breaker: circuit <circuit> MESSAGES AT RISK',
      'sqs-circuit-breaker: circuit <circuit> RE-JITTER SKIPPED',
    ]);
    // every placeholder has a path, and no path is unused
    for (const e of Object.values(CircuitEvent)) {
      const { InputTemplate, InputPathsMap } = transformer(t, e);
      const used = new Set([...InputTemplate.matchAll(/<([A-Za-z]+)>/g)].map((m) => m[1]));
      expect(new Set(Object.keys(InputPathsMap))).toEqual(used);
    }
  });

  test('notificationEvents without notificationTopic is refused', () => {
    expect(() => notifying([CircuitEvent.OPENED], false)).toThrow(exactly(HEAD
      + '  - notificationEvents: needs notificationTopic (the topic the events are delivered to); pass notificationTopic, or remove notificationEvents'));
  });

  test('unknown and repeated events are refused', () => {
    expect(() => notifying(['Circuit Exploded' as CircuitEvent, CircuitEvent.CLOSED, CircuitEvent.CLOSED])).toThrow(exactly(HEAD + [
      "  - notificationEvents: unknown event \"Circuit Exploded\"; use CircuitEvent values ('Circuit Opened', 'Probe Failed', 'Circuit Half-Open', 'Circuit Closed', 'Circuit Stuck Open', 'Messages Kept Alive', 'Messages At Risk', 'Re-jitter Skipped')",
      "  - notificationEvents: 'Circuit Closed' is listed twice; list each event once",
    ].join('\n')));
  });
});
