import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** Lambda's standard metrics are one-minute sums ("Lambda sends metric data to CloudWatch in 1-minute intervals"). */
export const LAMBDA_METRIC_PERIOD_SECONDS = 60;

/**
 * How the consumer is named to the handlers and to CloudWatch.
 *
 * Lambda publishes the metrics of an invocation through an alias or a version twice: under
 * `FunctionName=<fn>` (all of the function's invocations) and under `FunctionName=<fn>,
 * Resource=<fn>:<qualifier>` (that alias or version); never under `FunctionName=<fn>:<qualifier>`
 * (Lambda developer guide, "Types of metrics for Lambda functions", dimensions `FunctionName`,
 * `Resource`: "a function version or alias"). The alarm reads the latter, and the ramp's relapse
 * check derives the same dimensions from `CONSUMER_FUNCTION_NAME` (`breaker_core::mapping::
 * metric_dimensions`).
 */
export interface ConsumerIdentity {
  /** `CONSUMER_FUNCTION_NAME`: what the probe invokes and the mapping must target (`<fn>[:<qualifier>]`). */
  readonly invokeName: string;
  /** The bare function name (`FunctionName` dimension). */
  readonly functionName: string;
  /** `<fn>:<qualifier>` (`Resource` dimension) for an alias or a version; `undefined` when unqualified. */
  readonly resource?: string;
}

interface AliasLike {
  readonly aliasName: string;
  readonly version: lambda.IVersion;
}
interface VersionLike {
  readonly version: string;
  readonly lambda: lambda.IFunction;
}

function isAlias(c: lambda.IFunction): c is lambda.IFunction & AliasLike {
  const a = c as unknown as Partial<AliasLike>;
  return typeof a.aliasName === 'string' && typeof a.version === 'object' && a.version !== null;
}

function isVersion(c: lambda.IFunction): c is lambda.IFunction & VersionLike {
  const v = c as unknown as Partial<VersionLike>;
  return typeof v.version === 'string' && typeof v.lambda === 'object' && v.lambda !== null;
}

/** The consumer's name, bare function name and `Resource` dimension (see {@link ConsumerIdentity}). */
export function consumerIdentity(consumer: lambda.IFunction): ConsumerIdentity {
  let functionName: string | undefined;
  let qualifier: string | undefined;
  if (isAlias(consumer)) {
    functionName = consumer.version.lambda.functionName;
    qualifier = consumer.aliasName;
  } else if (isVersion(consumer)) {
    functionName = consumer.lambda.functionName;
    qualifier = consumer.version;
  } else if (!cdk.Token.isUnresolved(consumer.functionArn)) {
    // Imported by ARN: `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`;
    // CDK's `functionName` drops the qualifier.
    const parts = consumer.functionArn.split(':');
    if (parts.length === 8 && parts[5] === 'function') [functionName, qualifier] = [parts[6], parts[7]];
  }
  if (functionName === undefined || qualifier === undefined) {
    return { invokeName: consumer.functionName, functionName: consumer.functionName };
  }
  const invokeName = `${functionName}:${qualifier}`;
  // `$LATEST` is the unqualified function: no `Resource` of its own.
  return { invokeName, functionName, resource: qualifier === '$LATEST' ? undefined : invokeName };
}

/** The consumer's `metricName` (`Errors`, `Invocations`) under the dimensions Lambda publishes. */
export function consumerMetric(
  consumer: lambda.IFunction,
  identity: ConsumerIdentity,
  metricName: 'Errors' | 'Invocations',
  options: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  if (identity.resource === undefined) {
    return metricName === 'Errors' ? consumer.metricErrors(options) : consumer.metricInvocations(options);
  }
  return new cloudwatch.Metric({
    namespace: 'AWS/Lambda',
    metricName,
    dimensionsMap: { FunctionName: identity.functionName, Resource: identity.resource },
    ...options,
  });
}

/**
 * Namespace of the per-second consumer metrics (the fast-trip contract): the telemetry extension's
 * `Invocations`, `Errors`, `Timeouts` and a consumer's `PartialFailures`, `FailedItems`, all
 * under `FunctionName=<fn>` (the bare function name, `AWS_LAMBDA_FUNCTION_NAME`).
 */
export const CONSUMER_METRIC_NAMESPACE = 'SqsCircuitBreaker/Consumer';

/** A per-second consumer metric (`CONSUMER_METRIC_NAMESPACE`, dimension `FunctionName`). */
export function telemetryMetric(
  identity: ConsumerIdentity,
  metricName: string,
  options: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: CONSUMER_METRIC_NAMESPACE,
    metricName,
    dimensionsMap: { FunctionName: identity.functionName },
    ...options,
  });
}

/**
 * `CONSUMER_METRIC_PERIOD_SECONDS`: the period of the consumer metrics the relapse check reads.
 * Lambda's own metrics are per minute; an alarm period under a minute (10, 20, 30 s) exists only
 * with `AlarmResolution.HIGH` (the extension's per-second metrics), and the check reads those
 * periods too.
 */
export function consumerMetricPeriodSeconds(alarmGiven: boolean, alarmPeriodSeconds: number): number {
  if (alarmGiven || cdk.Token.isUnresolved(alarmPeriodSeconds)) return LAMBDA_METRIC_PERIOD_SECONDS;
  return Math.min(alarmPeriodSeconds, LAMBDA_METRIC_PERIOD_SECONDS);
}
