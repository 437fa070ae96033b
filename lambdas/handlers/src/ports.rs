//! [`Ports`]: the ports of `breaker_core::ports` as one bundle, so that a handler takes its input
//! and the [`App`](crate::app::App) (configuration, ports, mapping-update policy) instead of one
//! argument per port. [`ports_bundle!`](crate::ports_bundle) declares a bundle: `bootstrap`'s
//! holds the AWS adapters, `testing::Fakes` the in-memory fakes.

use breaker_core::ports::{
    Alarms, CircuitRecords, Clock, Consumer, EventSourceMappings, Events, Executions, Metrics,
    Queue,
};

/// Every port a handler may use, one accessor each.
pub trait Ports: Send + Sync {
    /// The consumer's event-source mapping.
    type Esm: EventSourceMappings;
    /// The consumer function.
    type Consumer: Consumer;
    /// The consumer's queue.
    type Queue: Queue;
    /// The trigger alarm.
    type Alarms: Alarms;
    /// The consumer's metrics.
    type Metrics: Metrics;
    /// The breaker's event bus.
    type Events: Events;
    /// The state machine's executions.
    type Executions: Executions;
    /// The durable circuit record.
    type Records: CircuitRecords;
    /// The clock.
    type Clock: Clock;

    /// The consumer's event-source mapping.
    fn esm(&self) -> &Self::Esm;
    /// The consumer function.
    fn consumer(&self) -> &Self::Consumer;
    /// The consumer's queue.
    fn queue(&self) -> &Self::Queue;
    /// The trigger alarm.
    fn alarms(&self) -> &Self::Alarms;
    /// The consumer's metrics.
    fn metrics(&self) -> &Self::Metrics;
    /// The breaker's event bus.
    fn events(&self) -> &Self::Events;
    /// The state machine's executions.
    fn executions(&self) -> &Self::Executions;
    /// The durable circuit record.
    fn records(&self) -> &Self::Records;
    /// The clock.
    fn clock(&self) -> &Self::Clock;
}

/// Declare a struct with one public field per port (named like the accessors of [`Ports`], in
/// their order) and implement [`Ports`] for it by returning the fields.
///
/// ```ignore
/// breaker_handlers::ports_bundle! {
///     /// The AWS adapters.
///     pub struct AwsPorts {
///         esm: LambdaEsm, consumer: LambdaConsumer, queue: SqsQueue, alarms: CloudWatchAlarm,
///         metrics: ConsumerMetrics, events: EventBus, executions: StateMachineExecutions,
///         records: DynamoCircuitRecords, clock: SystemClock,
///     }
/// }
/// ```
#[macro_export]
macro_rules! ports_bundle {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            esm: $esm:ty,
            consumer: $consumer:ty,
            queue: $queue:ty,
            alarms: $alarms:ty,
            metrics: $metrics:ty,
            events: $events:ty,
            executions: $executions:ty,
            records: $records:ty,
            clock: $clock:ty $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            /// The consumer's event-source mapping.
            pub esm: $esm,
            /// The consumer function.
            pub consumer: $consumer,
            /// The consumer's queue.
            pub queue: $queue,
            /// The trigger alarm.
            pub alarms: $alarms,
            /// The consumer's metrics.
            pub metrics: $metrics,
            /// The breaker's event bus.
            pub events: $events,
            /// The state machine's executions.
            pub executions: $executions,
            /// The durable circuit record.
            pub records: $records,
            /// The clock.
            pub clock: $clock,
        }

        impl $crate::ports::Ports for $name {
            type Esm = $esm;
            type Consumer = $consumer;
            type Queue = $queue;
            type Alarms = $alarms;
            type Metrics = $metrics;
            type Events = $events;
            type Executions = $executions;
            type Records = $records;
            type Clock = $clock;

            fn esm(&self) -> &$esm {
                &self.esm
            }
            fn consumer(&self) -> &$consumer {
                &self.consumer
            }
            fn queue(&self) -> &$queue {
                &self.queue
            }
            fn alarms(&self) -> &$alarms {
                &self.alarms
            }
            fn metrics(&self) -> &$metrics {
                &self.metrics
            }
            fn events(&self) -> &$events {
                &self.events
            }
            fn executions(&self) -> &$executions {
                &self.executions
            }
            fn records(&self) -> &$records {
                &self.records
            }
            fn clock(&self) -> &$clock {
                &self.clock
            }
        }
    };
}
