import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { breakerStack } from './fixture';

/**
 * The breaker's own metrics (issue 18): the handlers print one EMF line per event
 * (`lambdas/core/src/events.rs`, table `cdk/src/metrics.json`); the construct's helpers read the
 * same names, and a recovery alarm watches stuck-open reports and failed recoveries by default.
 */
describe('the breaker metrics', () => {
  test('each helper names its metric, this circuit and the right statistic', () => {
    const { breaker } = breakerStack({ circuitName: 'orders' });
    const expected: Array<[cdk.aws_cloudwatch.Metric, string, string]> = [
      [breaker.metricOpens(), 'Opens', 'Sum'],
      [breaker.metricProbesFailed(), 'ProbesFailed', 'Sum'],
      [breaker.metricHalfOpens(), 'HalfOpens', 'Sum'],
      [breaker.metricCloses(), 'Closes', 'Sum'],
      [breaker.metricStuckOpens(), 'StuckOpens', 'Sum'],
      [breaker.metricCircuitState(), 'CircuitState', 'Maximum'],
    ];
    for (const [metric, name, statistic] of expected) {
      expect(metric).toMatchObject({ namespace: 'SqsCircuitBreaker', metricName: name, dimensions: { Circuit: 'orders' }, statistic });
    }
  });

  test('a helper takes MetricOptions, as aws-cdk-lib\'s do', () => {
    const { breaker } = breakerStack({ circuitName: 'orders' });
    const m = breaker.metricOpens({ period: cdk.Duration.minutes(1), statistic: 'Maximum', label: 'opens' });
    expect(m).toMatchObject({ metricName: 'Opens', statistic: 'Maximum', label: 'opens' });
    expect(m.period.toSeconds()).toBe(60);
  });
});

describe('the recovery alarm (never silent without a topic)', () => {
  test('is created by default: stuck-open reports plus failed, timed-out and aborted executions, 1 in 1 minute', () => {
    const { stack, breaker } = breakerStack({ circuitName: 'orders' });
    expect(breaker.recoveryAlarm).toBeDefined();
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 2);
    const sm = { Ref: Match.stringLikeRegexp('^OrdersBreakerStateMachine') };
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('stuck open or a recovery failed'),
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: Match.absent(),
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(stuck, 0) + FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)', ReturnData: true }),
        Match.objectLike({
          Id: 'stuck',
          ReturnData: false,
          MetricStat: Match.objectLike({
            Metric: { Namespace: 'SqsCircuitBreaker', MetricName: 'StuckOpens', Dimensions: [{ Name: 'Circuit', Value: 'orders' }] },
            Period: 60,
            Stat: 'Sum',
          }),
        }),
        ...[['failed', 'ExecutionsFailed'], ['timedOut', 'ExecutionsTimedOut'], ['aborted', 'ExecutionsAborted']].map(([id, name]) => Match.objectLike({
          Id: id,
          MetricStat: Match.objectLike({
            Metric: { Namespace: 'AWS/States', MetricName: name, Dimensions: [{ Name: 'StateMachineArn', Value: sm }] },
            Period: 60,
            Stat: 'Sum',
          }),
        })),
      ]),
    });
  });

  test('recoveryAlarm: false leaves it out', () => {
    const { stack, breaker } = breakerStack({ recoveryAlarm: false });
    expect(breaker.recoveryAlarm).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::CloudWatch::Alarm', 1);
  });

  test('with a given alarm the recovery alarm is still created', () => {
    const { stack, breaker } = breakerStack({
      alarm: cdk.aws_cloudwatch.Alarm.fromAlarmArn(new cdk.Stack(), 'Given', 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:orders-errors'),
    });
    expect(breaker.recoveryAlarm).toBeDefined();
    Template.fromStack(stack).resourceCountIs('AWS::CloudWatch::Alarm', 1);
  });
});
