import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { addConsumer, breakerStack, consumerStack } from './fixture';

const PREFIX = 'sqs-circuit-breaker descriptor v1';

/** A CloudFormation output as the template holds it. */
interface Output {
  readonly Description?: string;
  readonly Value: unknown;
}

/** An intrinsic function in an output's value. */
type Intrinsic = string | { 'Fn::Join'?: [string, Intrinsic[]]; 'Ref'?: string; 'Fn::Select'?: unknown; 'Fn::GetAtt'?: string[] };

/** The descriptor outputs of a template: description and raw value. */
function descriptors(t: Template): Array<{ description: string; value: unknown }> {
  return (Object.values(t.toJSON().Outputs ?? {}) as Output[])
    .filter((o) => o.Description?.startsWith(PREFIX) ?? false)
    .map((o) => ({ description: o.Description!, value: o.Value }));
}

/**
 * A descriptor's JSON with every token replaced by a marker naming what it refers to
 * (`<Ref:Logical>`, `<GetAtt:Logical.Attr>`, `<Select>`), so the test can read the fields.
 */
function decode(value: unknown): Record<string, unknown> {
  const flatten = (v: Intrinsic): string => {
    if (typeof v === 'string') return v;
    if (v['Fn::Join']) return v['Fn::Join'][1].map(flatten).join(v['Fn::Join'][0]);
    if (v.Ref) return `<Ref:${v.Ref}>`;
    if (v['Fn::Select']) return '<Select>';
    if (v['Fn::GetAtt']) return `<GetAtt:${v['Fn::GetAtt'].join('.')}>`;
    throw new Error(`unexpected token ${JSON.stringify(v)}`);
  };
  return JSON.parse(flatten(value as Intrinsic));
}

describe('CLI descriptor output', () => {
  test('one breaker adds one output whose description starts with the fixed prefix and whose JSON has every field', () => {
    const f = breakerStack({ circuitName: 'orders' });
    const found = descriptors(Template.fromStack(f.stack));
    expect(found).toHaveLength(1);
    expect(found[0].description).toBe(`${PREFIX}: circuit orders (read by the breaker CLI)`);
    const d = decode(found[0].value);
    expect(Object.keys(d).sort()).toEqual([
      'alarmName', 'circuitName', 'circuitTableName', 'consumerFunctionName', 'dlqUrl',
      'eventSourceMappingUuid', 'queueArn', 'queueUrl', 'stateMachineArn', 'v',
    ]);
    expect(d.v).toBe(1);
    expect(d.circuitName).toBe('orders');
    expect(d.queueUrl).toMatch(/^<Ref:OrdersQueue/);
    expect(d.queueArn).toMatch(/^<GetAtt:OrdersQueue\w+\.Arn>$/);
    expect(d.dlqUrl).toMatch(/^<Ref:OrdersDlq/);
    expect(d.eventSourceMappingUuid).toMatch(/^<Ref:OrdersConsumerSqsEventSource/);
    expect(d.consumerFunctionName).toMatch(/^<Ref:OrdersConsumer/);
    expect(d.alarmName).toMatch(/^<Ref:OrdersBreakerAlarm/);
    expect(d.stateMachineArn).toMatch(/^arn:<Ref:AWS::Partition>:states:eu-west-1:123456789012:stateMachine:/);
    expect(d.circuitTableName).toMatch(/^<Ref:OrdersBreakerCircuitTable/);
  });

  test('two breakers in one stack give two descriptors with distinct circuit names', () => {
    const f = consumerStack();
    const payments = addConsumer(f.stack, 'Payments');
    new SqsCircuitBreaker(f.stack, 'OrdersBreaker', { consumer: f.consumer, queue: f.queue, eventSourceMappingId: f.source.eventSourceMappingId });
    new SqsCircuitBreaker(f.stack, 'PaymentsBreaker', { consumer: payments.consumer, queue: payments.queue, eventSourceMappingId: payments.source.eventSourceMappingId });
    const found = descriptors(Template.fromStack(f.stack)).map((o) => decode(o.value));
    expect(found).toHaveLength(2);
    const names = found.map((d) => d.circuitName);
    expect(new Set(names).size).toBe(2);
    expect(names.sort()).toEqual([expect.stringMatching(/^TestStack-OrdersBreaker-/), expect.stringMatching(/^TestStack-PaymentsBreaker-/)]);
    expect(found[0].queueUrl).not.toEqual(found[1].queueUrl);
  });

  test('an imported queue has no known dead-letter queue: dlqUrl is left out', () => {
    const f = consumerStack();
    const imported = sqs.Queue.fromQueueArn(f.stack, 'Imported', 'arn:aws:sqs:eu-west-1:123456789012:elsewhere');
    const fn = lambda.Function.fromFunctionName(f.stack, 'ImportedFn', 'elsewhere-consumer');
    new SqsCircuitBreaker(f.stack, 'OtherBreaker', {
      consumer: fn, queue: imported, eventSourceMappingId: '2f0c8e4a-0000-4000-8000-00000000e5a1', circuitName: 'other',
    });
    const [d] = descriptors(Template.fromStack(f.stack)).map((o) => decode(o.value));
    expect(d.dlqUrl).toBeUndefined();
    expect(d.eventSourceMappingUuid).toBe('2f0c8e4a-0000-4000-8000-00000000e5a1');
    // CDK takes an imported function's name out of its ARN at deploy time.
    expect(d.consumerFunctionName).toBe('<Select>');
    expect(d.queueUrl).toBe('https://sqs.eu-west-1.<Ref:AWS::URLSuffix>/123456789012/elsewhere');
  });
});
