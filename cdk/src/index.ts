/**
 * sqs-circuit-breaker: a circuit breaker for SQS-triggered Lambda consumers.
 */
export * from './props';
export * from './breaker';
export type { CircuitBreakerFunctions } from './workflow';
