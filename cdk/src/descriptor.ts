import * as cdk from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deadLetterQueueOf } from './dashboard';

/**
 * The description every breaker's CLI descriptor output starts with. The `breaker` CLI finds
 * descriptors by it (output keys are derived from construct paths and are not stable).
 * A stable interface: see "Operating it with the CLI" in README.md.
 */
export const DESCRIPTOR_DESCRIPTION_PREFIX = 'sqs-circuit-breaker descriptor v1';

/** The descriptor's format version (field `v`). */
export const DESCRIPTOR_VERSION = 1;

/** What the CLI needs to operate one breaker. */
export interface DescriptorFields {
  readonly circuitName: string;
  readonly queue: sqs.IQueue;
  readonly eventSourceMappingUuid: string;
  readonly consumerFunctionName: string;
  readonly alarmName: string;
  readonly stateMachineArn: string;
  readonly circuitTableName: string;
}

/**
 * Adds the breaker's CLI descriptor: one CloudFormation output whose value is a versioned JSON
 * object (tokens resolved at deploy time) and whose description starts with
 * {@link DESCRIPTOR_DESCRIPTION_PREFIX}. `dlqUrl` is present only when the construct knows the
 * queue's dead-letter queue (a queue of this app created with `deadLetterQueue`).
 */
export function addCliDescriptor(scope: Construct, fields: DescriptorFields): cdk.CfnOutput {
  const dlq = deadLetterQueueOf(fields.queue);
  const value = cdk.Stack.of(scope).toJsonString({
    v: DESCRIPTOR_VERSION,
    circuitName: fields.circuitName,
    queueUrl: fields.queue.queueUrl,
    queueArn: fields.queue.queueArn,
    ...(dlq ? { dlqUrl: dlq.queueUrl } : {}),
    eventSourceMappingUuid: fields.eventSourceMappingUuid,
    consumerFunctionName: fields.consumerFunctionName,
    alarmName: fields.alarmName,
    stateMachineArn: fields.stateMachineArn,
    circuitTableName: fields.circuitTableName,
  });
  return new cdk.CfnOutput(scope, 'CliDescriptor', {
    value,
    description: `${DESCRIPTOR_DESCRIPTION_PREFIX}: circuit ${fields.circuitName} (read by the breaker CLI)`,
  });
}
