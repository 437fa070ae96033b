import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { SqsCircuitBreaker } from './breaker';
import { ResolvedConfig } from './config';
import { ConsumerIdentity, consumerMetric, telemetryMetric } from './consumer';
import { AlarmResolution } from './props';

/** What the alarm that opens the circuit watches. */
export interface ConsumerAlarmSettings {
  readonly circuitName: string;
  readonly config: ResolvedConfig;
  readonly consumer: lambda.IFunction;
  readonly identity: ConsumerIdentity;
}

/**
 * The alarm that opens the circuit: the consumer's error rate (errors and reported partial
 * failures per invocation) over `alarmSettings`' window, from the telemetry extension's per-second
 * metrics (`AlarmResolution.HIGH`) or Lambda's own (`STANDARD`).
 */
export function createConsumerAlarm(scope: Construct, s: ConsumerAlarmSettings): cloudwatch.Alarm {
  const c = s.config;
  const period = cdk.Duration.seconds(c.alarmPeriodSeconds);
  const options = { period, statistic: cloudwatch.Stats.SUM };
  const high = c.alarmResolution === AlarmResolution.HIGH;
  const errorRate = new cloudwatch.MathExpression({
    // Periods with fewer than minInvocations invocations count as 0 %: the breaker's own probes
    // (1 to 10 invocations) can never hold the alarm in ALARM. An invocation that reported
    // failed items (ReportBatchItemFailures) is no Lambda error: the consumer's PartialFailures
    // line counts it (FILL: a consumer that never reports any publishes no such metric).
    expression: `IF(invocations >= ${c.minInvocations}, 100 * (errors + FILL(partialFailures, 0)) / invocations, 0)`,
    usingMetrics: {
      // HIGH: the telemetry extension's per-second metrics (FunctionName only). STANDARD:
      // Lambda's; for an alias or a version FunctionName=<fn>, Resource=<fn>:<qualifier>.
      errors: high
        ? telemetryMetric(s.identity, 'Errors', options)
        : consumerMetric(s.consumer, s.identity, 'Errors', options),
      invocations: high
        ? telemetryMetric(s.identity, 'Invocations', options)
        : consumerMetric(s.consumer, s.identity, 'Invocations', options),
      partialFailures: telemetryMetric(s.identity, 'PartialFailures', options),
    },
    period,
    label: 'consumer error rate (%)',
  });
  return new cloudwatch.Alarm(scope, 'Alarm', {
    alarmDescription: `sqs-circuit-breaker: consumer error rate of circuit ${s.circuitName}; ALARM opens the circuit`,
    metric: errorRate,
    threshold: c.errorRateThresholdPercent,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: c.evaluationPeriods,
    datapointsToAlarm: c.datapointsToAlarm,
    // While the circuit is open the mapping is disabled and the consumer publishes no data.
    // IGNORE keeps the current state through those gaps: the alarm neither flips to OK mid-
    // recovery (NOT_BREACHING) nor stays in ALARM after the breaker resets it to OK on an idle
    // queue (BREACHING); it moves only on real traffic.
    treatMissingData: cloudwatch.TreatMissingData.IGNORE,
  });
}

/**
 * The recovery alarm: any stuck-open report or failed, timed-out or aborted execution within a
 * minute. Missing data is not breaching: with nothing to report the alarm is OK.
 */
export function createRecoveryAlarm(breaker: SqsCircuitBreaker): cloudwatch.Alarm {
  const period = cdk.Duration.minutes(1);
  const sum = { period, statistic: cloudwatch.Stats.SUM };
  return new cloudwatch.Alarm(breaker, 'RecoveryAlarm', {
    alarmDescription:
      `sqs-circuit-breaker: circuit ${breaker.circuitName} was reported stuck open or a recovery failed, timed out or was aborted; ` +
      'the consumer\'s event-source mapping may be left disabled (see the "Circuit Stuck Open" event and `breaker status`)',
    metric: new cloudwatch.MathExpression({
      expression: 'FILL(stuck, 0) + FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)',
      usingMetrics: {
        stuck: breaker.metricStuckOpens(sum),
        failed: breaker.stateMachine.metricFailed(sum),
        timedOut: breaker.stateMachine.metricTimedOut(sum),
        aborted: breaker.stateMachine.metricAborted(sum),
      },
      period,
      label: 'stuck-open reports and failed recoveries',
    }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
}
