/**
 * sqs-circuit-breaker: a circuit breaker for SQS-triggered Lambda consumers.
 */
export * from './assets';
export * from './props';
export * from './breaker';
