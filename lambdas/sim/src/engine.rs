//! The discrete-event engine: one run of one strategy on one scenario. This module is the event
//! loop and the world it drives (traffic, the SQS queue, the ESM's pollers, the consumer, the
//! downstream, CloudWatch, the results); each strategy's controller, what its executions do at
//! each step, is a module of its own: `engine/reference.rs` (the reference sample) and
//! `engine/ours.rs` (the breaker, calling `breaker_core`'s decisions). No breaker has none.
//!
//! Events are processed in virtual-time order (ties in scheduling order), so a run is a pure
//! function of (scenario, strategy, seed). Randomness comes from three seeded `StdRng` streams:
//! traffic (identical for every strategy on the same seed), the downstream, and the breaker.
//!
//! The consumer (assumption): it processes a batch in order, one downstream call per message,
//! and stops at the first failure, reporting that message and the rest as
//! `batchItemFailures`; when the very first message fails it throws (a function error, which is
//! what Lambda's `Errors` metric and the ESM's back-off see). A timeout (a call still running at
//! the function timeout) fails the whole batch; the downstream still completes the call, so a
//! slow success becomes a duplicate when the message is retried.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::cloudwatch::{
    Alarm, AlarmConfig, AlarmState, LambdaMetrics, Metrics, Resolution,
    construct_evaluation_periods, construct_min_invocations,
};
use crate::downstream::Downstream;
use crate::esm::Esm;
use crate::queue::{Received, Receiver, SqsQueue};
use crate::scenario::Scenario;
use crate::strategy::{OursConfig, Plumbing, ReferenceConfig, Strategy};
use crate::time::{Millis, SECOND, secs};
use breaker_core::config::Config;

mod ours;
mod reference;

use ours::OursExec;
use reference::RefExec;

/// Sampling step of the recorded time series.
pub const SAMPLE: Millis = 10 * SECOND;

/// Circuit state as charted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Circuit {
    /// Consuming normally.
    Closed,
    /// Re-jittering / ramping.
    HalfOpen,
    /// ESM disabled by the breaker.
    Open,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunMetrics {
    /// Messages sent by producers.
    pub sent: u64,
    /// Downstream calls between the start of the trouble and healing.
    pub calls_during_outage: u64,
    /// Messages moved to the DLQ.
    pub dead_lettered: u64,
    /// Of those, messages whose receive count the breaker's own receives helped exhaust.
    pub dead_lettered_by_breaker: u64,
    /// Messages deleted by retention expiry during the run.
    pub expired: u64,
    /// Messages still queued at the end behind a disabled ESM nobody will re-enable.
    pub stranded: u64,
    /// `expired + stranded`.
    pub lost: u64,
    /// Extra successful processings of a message already processed.
    pub duplicates: u64,
    /// Trouble start → ESM first disabled (seconds).
    pub failure_to_open_s: Option<f64>,
    /// Healed → circuit closed for good (seconds; 0 if it never opened).
    pub healed_to_closed_s: Option<f64>,
    /// Healed → no message from before healing left in the queue (seconds).
    pub healed_to_drained_s: Option<f64>,
    /// Highest calls/s after healing.
    pub peak_load_after_healed: u32,
    /// Highest calls/s ÷ capacity after healing.
    pub peak_load_ratio: f64,
    /// Highest calls/s ÷ capacity after the breaker's first close following healing (the first
    /// ramp over; every later second, a later ramp's included). 0 when it never closed after
    /// healing; for a circuit closed at healing, the same as `peak_load_ratio`.
    pub peak_load_ratio_after_first_ramp: f64,
    /// Seconds after healing with more calls than capacity.
    pub overload_seconds: u32,
    /// Of those, seconds while the circuit was closed (not probing a ramp level).
    pub overload_seconds_closed: u32,
    /// Most consumer invocations the ESM ran at once.
    pub peak_esm_concurrency: u32,
    /// Times the breaker disabled the ESM.
    pub opens: u32,
    /// Opens after the first (re-trips and relapses).
    pub retrips: u32,
    /// Closes of a ramp that settled below the original configuration (`Move::Settle`).
    pub settled_closes: u32,
    /// Keep-alive passes (queue re-sent while open so nothing expires).
    pub keep_alive_passes: u32,
    /// Whether the ESM ended disabled with nothing left to re-enable it.
    pub stuck: bool,
    /// Step Functions state transitions.
    pub state_transitions: u64,
    /// Lambda GB-seconds: consumer.
    pub consumer_gb_s: f64,
    /// Lambda GB-seconds: breaker functions.
    pub breaker_gb_s: f64,
}

/// Time series sampled every [`SAMPLE`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// Messages in the queue (visible, in flight, delayed).
    pub queue_depth: Vec<u32>,
    /// Peak calls/s within the sample.
    pub load: Vec<u32>,
    /// Capacity (calls/s) at the sample.
    pub capacity: Vec<u32>,
    /// Circuit state.
    pub circuit: Vec<Circuit>,
    /// Cumulative dead-lettered messages.
    pub dead_lettered: Vec<u32>,
}

/// One finished run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// Scenario name.
    pub scenario: String,
    /// Strategy.
    pub strategy: Strategy,
    /// Seed.
    pub seed: u64,
    /// Measurements.
    pub metrics: RunMetrics,
    /// Time series (not written to JSON).
    #[serde(skip)]
    pub series: Series,
    /// Circuit state changes (time, state).
    #[serde(skip)]
    pub transitions: Vec<(Millis, Circuit)>,
    /// Downstream calls started in each second.
    #[serde(skip)]
    pub load_per_second: Vec<u32>,
    /// ESM concurrency limit changes (time, limit in effect; 0 when disabled).
    #[serde(skip)]
    pub limits: Vec<(Millis, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Tick,
    Poll {
        slot: usize,
        generation: u64,
    },
    InvokeDone {
        slot: usize,
        generation: u64,
    },
    EsmApply {
        enabled: bool,
        maximum_concurrency: Option<u32>,
    },
    /// The mapping's `BatchSize` changes (`None`: the scenario's).
    EsmBatch {
        batch_size: Option<usize>,
    },
    AlarmDelivered,
    Step {
        exec: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Idle,
    Polling,
    Sleeping,
    Busy,
}

#[derive(Debug, Clone)]
struct Slot {
    state: SlotState,
    generation: u64,
    batch: Vec<Received>,
    outcome: Vec<bool>,
    error: bool,
    /// When the invocation in flight started.
    started: Millis,
}

/// Result of one consumer invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Invocation {
    duration: Millis,
    /// Per message: processed successfully and to be deleted.
    ok: Vec<bool>,
    /// Function error (threw or timed out).
    error: bool,
}

// One controller per run, never moved in a hot path: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Controller {
    None,
    Reference {
        config: ReferenceConfig,
        execs: Vec<Option<RefExec>>,
    },
    Ours {
        config: OursConfig,
        /// The product's configuration of these settings (`OursConfig::core_config`), which
        /// `breaker_core`'s decisions read.
        core: Box<Config>,
        exec: Option<OursExec>,
        next_id: usize,
    },
}

/// The simulated world.
struct World {
    now: Millis,
    seq: u64,
    events: BinaryHeap<Reverse<(Millis, u64, Event)>>,
    scenario: Scenario,
    plumbing: Plumbing,
    traffic_rng: StdRng,
    downstream_rng: StdRng,
    breaker_rng: StdRng,
    queue: SqsQueue,
    downstream: Downstream,
    /// Lambda's own 1-minute metrics: stamped with each invocation's start, read as published.
    metrics: LambdaMetrics,
    /// The telemetry extension's per-second metrics: stamped with each invocation's end.
    ext_metrics: Metrics,
    alarm: Alarm,
    esm: Esm,
    slots: Vec<Slot>,
    active_slots: u32,
    busy_slots: u32,
    peak_busy: u32,
    controller: Controller,
    circuit: Circuit,
    transitions: Vec<(Millis, Circuit)>,
    limits: Vec<(Millis, u32)>,
    effects: Vec<u8>,
    consumer_counts: (u64, u64),
    /// Ramps that closed settled below the original (`Move::Settle`).
    settled_closes: u32,
    /// The mapping's `BatchSize` when the ramp lowered it (`None`: the scenario's).
    batch_size: Option<usize>,
    /// The original `MaximumConcurrency` while a settled close left the mapping below it.
    settled_original: Option<Option<u32>>,
    sent: u64,
    opens: u32,
    first_open: Option<Millis>,
    drained_at: Option<Millis>,
    state_transitions: u64,
    keep_alive_passes: u32,
    consumer_gb_ms: f64,
    breaker_gb_ms: f64,
    series: Series,
    poison_next: usize,
    /// Every ramp call after the first: when, and the interval it judged (tests read it).
    ramp_calls: Vec<ours::RampCall>,
}

/// Runs `strategy` on `scenario` with `seed`.
pub fn run(scenario: &Scenario, strategy: Strategy, seed: u64) -> RunResult {
    run_with(
        scenario,
        strategy,
        seed,
        OursConfig::default(),
        ReferenceConfig::default(),
    )
}

/// [`run`] with explicit strategy settings.
pub fn run_with(
    scenario: &Scenario,
    strategy: Strategy,
    seed: u64,
    ours: OursConfig,
    reference: ReferenceConfig,
) -> RunResult {
    let mut world = World::new(scenario, strategy, seed, ours, reference);
    world.run_until(scenario.horizon);
    world.finish(strategy, seed)
}

impl World {
    fn new(
        scenario: &Scenario,
        strategy: Strategy,
        seed: u64,
        ours: OursConfig,
        reference: ReferenceConfig,
    ) -> Self {
        let controller = match strategy {
            Strategy::NoBreaker => Controller::None,
            Strategy::Reference => Controller::Reference {
                config: reference,
                execs: Vec::new(),
            },
            Strategy::Ours => Controller::Ours {
                config: ours,
                core: Box::new(ours.core_config(false, scenario.consumer.timeout)),
                exec: None,
                next_id: 0,
            },
            Strategy::OursFast => Controller::Ours {
                config: ours,
                core: Box::new(ours.core_config(true, scenario.consumer.timeout)),
                exec: None,
                next_id: 0,
            },
        };
        let alarm = match strategy {
            Strategy::OursFast => scenario.alarm.high_resolution(
                ours.fast_trip.period,
                construct_evaluation_periods(
                    ours.fast_trip.evaluation_periods,
                    ours.fast_trip.period,
                    scenario.consumer.timeout,
                ),
                ours.fast_trip.datapoints_to_alarm,
            ),
            Strategy::Ours => AlarmConfig {
                evaluation_periods: construct_evaluation_periods(
                    scenario.alarm.evaluation_periods,
                    scenario.alarm.period,
                    scenario.consumer.timeout,
                ),
                ..scenario.alarm
            },
            _ => scenario.alarm,
        };
        // Ours runs the alarm the construct would build: a default minInvocations the consumer
        // cannot reach by timing out is lowered to what it can.
        let alarm = match strategy {
            Strategy::Ours | Strategy::OursFast => AlarmConfig {
                min_invocations: construct_min_invocations(
                    alarm.min_invocations,
                    scenario.maximum_concurrency,
                    alarm.period,
                    scenario.consumer.timeout,
                ),
                ..alarm
            },
            _ => alarm,
        };
        let mut queue = SqsQueue::new(scenario.queue);
        queue.track_backlog_before(scenario.healed_at);
        let mut world = World {
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            plumbing: Plumbing::default(),
            traffic_rng: StdRng::seed_from_u64(seed),
            downstream_rng: StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(1)),
            breaker_rng: StdRng::seed_from_u64(seed.wrapping_mul(131).wrapping_add(7)),
            queue,
            downstream: Downstream::new(scenario.downstream.clone()),
            metrics: LambdaMetrics::default(),
            ext_metrics: Metrics::new(Resolution::High),
            alarm: Alarm::new(alarm),
            esm: Esm::new(scenario.esm, scenario.maximum_concurrency),
            slots: Vec::new(),
            active_slots: 0,
            busy_slots: 0,
            peak_busy: 0,
            controller,
            circuit: Circuit::Closed,
            transitions: vec![(0, Circuit::Closed)],
            limits: vec![(
                0,
                scenario
                    .maximum_concurrency
                    .unwrap_or(scenario.esm.max_concurrency),
            )],
            effects: Vec::new(),
            consumer_counts: (0, 0),
            settled_closes: 0,
            batch_size: None,
            settled_original: None,
            sent: 0,
            opens: 0,
            first_open: None,
            drained_at: None,
            state_transitions: 0,
            keep_alive_passes: 0,
            consumer_gb_ms: 0.0,
            breaker_gb_ms: 0.0,
            series: Series::default(),
            poison_next: 0,
            ramp_calls: Vec::new(),
            scenario: scenario.clone(),
        };
        world.schedule(0, Event::Tick);
        world.fill_slots();
        world
    }

    /// Processes every event up to and including `until`.
    fn run_until(&mut self, until: Millis) {
        while let Some(Reverse((at, _, _))) = self.events.peek() {
            if *at > until {
                break;
            }
            let Reverse((at, _, event)) = self.events.pop().expect("peeked");
            self.now = at;
            self.handle(event);
        }
        self.now = until;
    }

    fn schedule(&mut self, at: Millis, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    fn set_circuit(&mut self, c: Circuit) {
        if self.circuit != c {
            self.circuit = c;
            self.transitions.push((self.now, c));
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick => self.tick(),
            Event::Poll { slot, generation } => {
                if self.slots[slot].generation == generation {
                    self.poll(slot);
                }
            }
            Event::InvokeDone { slot, generation } => {
                if self.slots[slot].generation == generation {
                    self.invoke_done(slot);
                }
            }
            Event::EsmApply {
                enabled,
                maximum_concurrency,
            } => {
                self.esm.update(enabled, maximum_concurrency);
                let cap = if enabled {
                    maximum_concurrency.unwrap_or(self.esm.config.max_concurrency)
                } else {
                    0
                };
                self.limits.push((self.now, cap));
                self.fill_slots();
            }
            Event::EsmBatch { batch_size } => self.batch_size = batch_size,
            Event::AlarmDelivered => self.on_alarm(),
            Event::Step { exec } => self.step(exec),
        }
    }

    // ---------------------------------------------------------------- traffic, sampling

    fn tick(&mut self) {
        let now = self.now;
        let paused = self
            .scenario
            .workload
            .pauses
            .iter()
            .any(|(a, b)| *a <= now && now < *b);
        if !paused {
            let n = poisson(
                &mut self.traffic_rng,
                self.scenario.workload.arrival_per_second,
            );
            for _ in 0..n {
                self.queue.send_new(now, false, 0);
            }
            self.sent += n as u64;
        }
        while let Some(at) = self
            .scenario
            .workload
            .poison_at
            .get(self.poison_next)
            .copied()
        {
            if at > now {
                break;
            }
            self.queue.send_new(now, true, 0);
            self.sent += 1;
            self.poison_next += 1;
        }
        self.queue.expire(now);
        self.esm.scale_tick();
        self.fill_slots();
        self.wake_sleepers();
        let metrics = match self.alarm.config.resolution {
            Resolution::Standard => self.metrics.published(now),
            Resolution::High => &self.ext_metrics,
        };
        if self.alarm.config.evaluates_at(now)
            && let Some(state) = self.alarm.evaluate(now, metrics)
            && state == AlarmState::Alarm
        {
            self.schedule(now + self.plumbing.eventbridge, Event::AlarmDelivered);
        }
        if now >= self.scenario.healed_at && self.drained_at.is_none() && self.queue.backlog() == 0
        {
            self.drained_at = Some(now);
        }
        if now.is_multiple_of(SAMPLE) {
            self.series.queue_depth.push(self.queue.len() as u32);
            self.series.capacity.push(self.downstream.capacity(now));
            self.series.circuit.push(self.circuit);
            self.series
                .dead_lettered
                .push(self.queue.dead_letters.len() as u32);
        }
        self.schedule(now + SECOND, Event::Tick);
    }

    // ---------------------------------------------------------------- ESM pollers

    fn fill_slots(&mut self) {
        let limit = self.esm.limit();
        while self.active_slots < limit {
            let idx = match self.slots.iter().position(|s| s.state == SlotState::Idle) {
                Some(i) => i,
                None => {
                    self.slots.push(Slot {
                        state: SlotState::Idle,
                        generation: 0,
                        batch: Vec::new(),
                        outcome: Vec::new(),
                        error: false,
                        started: 0,
                    });
                    self.slots.len() - 1
                }
            };
            self.active_slots += 1;
            self.next_poll(idx, SlotState::Polling, self.now);
        }
    }

    fn wake_sleepers(&mut self) {
        if !self.esm.enabled || !matches!(self.queue.next_visible_at(), Some(t) if t <= self.now) {
            return;
        }
        let mut woken = 0;
        for idx in 0..self.slots.len() {
            if woken == 5 {
                break;
            }
            if self.slots[idx].state == SlotState::Sleeping {
                self.next_poll(idx, SlotState::Polling, self.now);
                woken += 1;
            }
        }
    }

    /// Puts slot `idx` in `state` under a new generation (so events already scheduled for it go
    /// stale) and schedules its next poll at `at`.
    fn next_poll(&mut self, idx: usize, state: SlotState, at: Millis) {
        let slot = &mut self.slots[idx];
        slot.state = state;
        slot.generation += 1;
        let generation = slot.generation;
        self.schedule(
            at,
            Event::Poll {
                slot: idx,
                generation,
            },
        );
    }

    fn retire(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        slot.state = SlotState::Idle;
        slot.generation += 1;
        self.active_slots -= 1;
    }

    fn poll(&mut self, idx: usize) {
        if self.active_slots > self.esm.limit() {
            self.retire(idx);
            return;
        }
        let visibility = self.scenario.queue.visibility_timeout;
        let batch_size = self.batch_size.unwrap_or(self.scenario.esm.batch_size);
        let batch = self
            .queue
            .receive(self.now, batch_size, visibility, Receiver::Esm);
        if batch.is_empty() {
            self.esm.on_empty_poll();
            let wake = self.now + self.scenario.esm.long_poll;
            self.next_poll(idx, SlotState::Sleeping, wake);
            return;
        }
        if batch.len() == batch_size {
            self.esm.saw_full_batch = true;
        }
        let inv = self.invoke_consumer(&batch);
        self.busy_slots += 1;
        self.peak_busy = self.peak_busy.max(self.busy_slots);
        let slot = &mut self.slots[idx];
        slot.state = SlotState::Busy;
        slot.batch = batch;
        slot.outcome = inv.ok;
        slot.error = inv.error;
        slot.started = self.now;
        let generation = slot.generation;
        self.schedule(
            self.now + inv.duration,
            Event::InvokeDone {
                slot: idx,
                generation,
            },
        );
    }

    fn invoke_done(&mut self, idx: usize) {
        self.busy_slots -= 1;
        let slot = &mut self.slots[idx];
        let batch = std::mem::take(&mut slot.batch);
        let outcome = std::mem::take(&mut slot.outcome);
        let (error, started) = (slot.error, slot.started);
        for (msg, ok) in batch.iter().zip(outcome) {
            if ok {
                self.queue.delete(msg.id, msg.receipt);
            }
        }
        self.record_invocation(started, self.now, error);
        if error {
            self.esm.on_function_error();
        }
        let slot = &mut self.slots[idx];
        slot.state = SlotState::Polling;
        let generation = slot.generation;
        self.schedule(
            self.now,
            Event::Poll {
                slot: idx,
                generation,
            },
        );
    }

    /// Counts an invocation that ran `[started, ended)`: Lambda's metrics stamp its start ("the
    /// timestamp on an error metric reflects when the function was invoked, not when the error
    /// occurred"), the extension's its `platform.runtimeDone`, its end.
    fn record_invocation(&mut self, started: Millis, ended: Millis, error: bool) {
        self.metrics.record(started, ended, error);
        self.ext_metrics.record(ended, error);
        self.consumer_counts.0 += 1;
        if error {
            self.consumer_counts.1 += 1;
        }
    }

    /// Runs the consumer on `batch` starting now (downstream calls happen at their times).
    fn invoke_consumer(&mut self, batch: &[Received]) -> Invocation {
        let c = self.scenario.consumer;
        let start = self.now;
        let deadline = start + c.timeout;
        let mut t = start + c.overhead;
        let mut ok = vec![false; batch.len()];
        let mut error = false;
        let mut timed_out = false;
        for (i, msg) in batch.iter().enumerate() {
            if msg.body.poison {
                t += 5;
                error = i == 0;
                break;
            }
            let result = self.downstream.call(t, &mut self.downstream_rng);
            if result.ok {
                self.effect(msg.body.lineage);
            }
            if t + result.latency > deadline {
                timed_out = true;
                break;
            }
            t += result.latency;
            if !result.ok {
                error = i == 0;
                break;
            }
            ok[i] = true;
        }
        if timed_out {
            ok.iter_mut().for_each(|o| *o = false);
            error = true;
            t = deadline;
        }
        let duration = t - start;
        self.consumer_gb_ms += duration as f64 * c.memory_mb as f64 / 1024.0;
        Invocation {
            duration,
            ok,
            error,
        }
    }

    fn effect(&mut self, lineage: u64) {
        let i = lineage as usize;
        if self.effects.len() <= i {
            self.effects.resize(i + 1, 0);
        }
        self.effects[i] = self.effects[i].saturating_add(1);
    }

    // ---------------------------------------------------------------- breaker plumbing

    fn esm_update(&mut self, enabled: bool, maximum_concurrency: Option<u32>) -> Millis {
        let at = self.now + self.scenario.esm.update_latency;
        self.schedule(
            at,
            Event::EsmApply {
                enabled,
                maximum_concurrency,
            },
        );
        at
    }

    fn breaker_task(&mut self, duration: Millis, transitions: u64) {
        self.breaker_gb_ms += duration as f64 * self.plumbing.breaker_memory_mb as f64 / 1024.0;
        self.state_transitions += transitions;
    }

    fn opened(&mut self) {
        self.opens += 1;
        if self.first_open.is_none() {
            self.first_open = Some(self.now);
        }
        self.set_circuit(Circuit::Open);
    }

    fn on_alarm(&mut self) {
        let start = self.now + self.plumbing.sfn_start;
        match &self.controller {
            Controller::None => {}
            Controller::Reference { .. } => self.reference_alarm(start),
            Controller::Ours { .. } => self.ours_alarm(start),
        }
    }

    fn step(&mut self, exec: usize) {
        match &self.controller {
            Controller::None => {}
            Controller::Reference { .. } => self.reference_step(exec),
            Controller::Ours { .. } => self.ours_step(exec),
        }
    }

    /// The breaker receives one message and invokes the consumer with it.
    fn probe_invoke(&mut self, visibility: Millis) -> Option<(Received, bool, Millis)> {
        let msg = self
            .queue
            .receive(self.now, 1, visibility, Receiver::Breaker)
            .pop()?;
        let inv = self.invoke_consumer(std::slice::from_ref(&msg));
        // The probe's invocation lands in the consumer's metrics like any other (it starts now).
        self.record_invocation(self.now, self.now + inv.duration, inv.error);
        Some((msg, inv.ok[0], inv.duration))
    }

    // ---------------------------------------------------------------- results

    fn finish(mut self, strategy: Strategy, seed: u64) -> RunResult {
        let s = &self.scenario;
        let healed = s.healed_at;
        let horizon_s = (s.horizon / SECOND) as usize;
        // Peak load per sample.
        let load = &self.downstream.load;
        let samples = self.series.queue_depth.len();
        self.series.load = (0..samples)
            .map(|i| {
                let a = i * (SAMPLE / SECOND) as usize;
                let b = (a + (SAMPLE / SECOND) as usize).min(load.len());
                load.get(a..b)
                    .and_then(|w| w.iter().max().copied())
                    .unwrap_or(0)
            })
            .collect();
        let mut peak = 0;
        let mut ratio: f64 = 0.0;
        let mut overload = 0;
        let mut overload_closed = 0;
        let mut ratio_after_ramp: f64 = 0.0;
        // The first close at or after healing (closed at healing: from healing).
        let first_close = if circuit_at(&self.transitions, healed) == Circuit::Closed {
            Some(healed)
        } else {
            self.transitions
                .iter()
                .find(|(t, c)| *t >= healed && *c == Circuit::Closed)
                .map(|(t, _)| *t)
        };
        let end = horizon_s.min(load.len());
        for (sec, &calls) in load
            .iter()
            .enumerate()
            .take(end)
            .skip((healed / SECOND) as usize)
        {
            let t = sec as Millis * SECOND;
            let cap = self.downstream.capacity(t).max(1);
            peak = peak.max(calls);
            ratio = ratio.max(calls as f64 / cap as f64);
            if first_close.is_some_and(|c| t >= c) {
                ratio_after_ramp = ratio_after_ramp.max(calls as f64 / cap as f64);
            }
            if calls > cap {
                overload += 1;
                if circuit_at(&self.transitions, t) == Circuit::Closed {
                    overload_closed += 1;
                }
            }
        }
        let dead_lettered = self.queue.dead_letters.len() as u64;
        let by_breaker = self
            .queue
            .dead_letters
            .iter()
            .filter(|d| d.caused_by_breaker)
            .count() as u64;
        let expired = self.queue.expired.len() as u64;
        let breaker_running = match &self.controller {
            Controller::None => false,
            Controller::Reference { execs, .. } => execs.iter().any(Option::is_some),
            Controller::Ours { exec, .. } => exec.is_some(),
        };
        let stuck = strategy != Strategy::NoBreaker && !self.esm.enabled && !breaker_running;
        let stranded = if stuck { self.queue.len() as u64 } else { 0 };
        let duplicates = self
            .effects
            .iter()
            .map(|e| e.saturating_sub(1) as u64)
            .sum();
        let last_closed = self
            .transitions
            .last()
            .filter(|(_, c)| *c == Circuit::Closed)
            .map(|(t, _)| *t);
        let healed_to_closed = if self.opens == 0 {
            Some(0.0)
        } else {
            last_closed.map(|t| secs(t.saturating_sub(healed)))
        };
        let metrics = RunMetrics {
            sent: self.sent,
            calls_during_outage: self.downstream.calls_between(s.trouble_start, healed),
            dead_lettered,
            dead_lettered_by_breaker: by_breaker,
            expired,
            stranded,
            lost: expired + stranded,
            duplicates,
            failure_to_open_s: self
                .first_open
                .map(|t| secs(t.saturating_sub(s.trouble_start))),
            healed_to_closed_s: healed_to_closed,
            healed_to_drained_s: self.drained_at.map(|t| secs(t - healed)),
            peak_load_after_healed: peak,
            peak_load_ratio: ratio,
            peak_load_ratio_after_first_ramp: ratio_after_ramp,
            overload_seconds: overload,
            overload_seconds_closed: overload_closed,
            peak_esm_concurrency: self.peak_busy,
            opens: self.opens,
            retrips: self.opens.saturating_sub(1),
            settled_closes: self.settled_closes,
            keep_alive_passes: self.keep_alive_passes,
            stuck,
            state_transitions: self.state_transitions,
            consumer_gb_s: self.consumer_gb_ms / SECOND as f64,
            breaker_gb_s: self.breaker_gb_ms / SECOND as f64,
        };
        RunResult {
            scenario: s.name.clone(),
            strategy,
            seed,
            metrics,
            series: self.series,
            transitions: self.transitions,
            limits: self.limits,
            load_per_second: self.downstream.load,
        }
    }
}

/// The circuit state at `t` from a transition log.
pub fn circuit_at(transitions: &[(Millis, Circuit)], t: Millis) -> Circuit {
    let i = transitions.partition_point(|(at, _)| *at <= t);
    transitions[i.saturating_sub(1)].1
}

/// The ESM concurrency limit in effect at `t` from a limit log.
pub fn limit_at(limits: &[(Millis, u32)], t: Millis) -> u32 {
    let i = limits.partition_point(|(at, _)| *at <= t);
    limits[i.saturating_sub(1)].1
}

/// Poisson draw (Knuth; fine for the small means used per second).
fn poisson<R: rand::Rng + ?Sized>(rng: &mut R, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p: f64 = rng.random();
    while p > limit {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::{Health, Phase};
    use crate::scenario::{self, WARMUP};
    use crate::time::{HOUR, MINUTE};

    fn quiet(name: &str) -> Scenario {
        let mut s = scenario::outage(name, 0);
        s.downstream.phases.clear();
        s.horizon = 30 * MINUTE;
        s
    }

    #[test]
    fn esm_never_runs_more_invocations_than_maximum_concurrency() {
        let mut s = quiet("burst");
        s.workload.arrival_per_second = 200.0;
        s.maximum_concurrency = Some(3);
        let r = run(&s, Strategy::NoBreaker, 1);
        assert_eq!(r.metrics.peak_esm_concurrency, 3);
    }

    #[test]
    fn esm_scales_beyond_five_when_unlimited_and_backlogged() {
        let mut s = quiet("burst");
        s.workload.arrival_per_second = 200.0;
        s.maximum_concurrency = None;
        s.downstream.capacity_per_second = 10_000;
        let r = run(&s, Strategy::NoBreaker, 1);
        assert!(
            r.metrics.peak_esm_concurrency > 5,
            "{}",
            r.metrics.peak_esm_concurrency
        );
    }

    #[test]
    fn disabled_esm_invokes_nothing_and_messages_wait() {
        let s = quiet("disabled");
        let mut w = World::new(
            &s,
            Strategy::NoBreaker,
            1,
            OursConfig::default(),
            ReferenceConfig::default(),
        );
        w.esm.update(false, Some(10));
        w.run_until(10 * MINUTE);
        assert_eq!(w.consumer_counts.0, 0);
        assert!(w.queue.len() > 1000, "{}", w.queue.len());
        w.schedule(
            w.now,
            Event::EsmApply {
                enabled: true,
                maximum_concurrency: Some(10),
            },
        );
        w.run_until(20 * MINUTE);
        assert!(w.consumer_counts.0 > 0);
        assert!(w.queue.len() < 100, "backlog drained: {}", w.queue.len());
    }

    #[test]
    fn healthy_system_processes_everything_once_without_alarms() {
        let r = run(&quiet("healthy"), Strategy::Ours, 3);
        let m = &r.metrics;
        assert_eq!(
            (m.opens, m.dead_lettered, m.duplicates, m.lost),
            (0, 0, 0, 0)
        );
        assert_eq!(m.overload_seconds, 0);
    }

    #[test]
    fn without_a_breaker_a_long_outage_dead_letters_messages() {
        let mut s = scenario::outage("outage-30m", 30 * MINUTE);
        s.horizon = s.healed_at + HOUR;
        let r = run(&s, Strategy::NoBreaker, 42);
        assert!(
            r.metrics.dead_lettered > 1000,
            "{}",
            r.metrics.dead_lettered
        );
        assert_eq!(r.metrics.opens, 0);
    }

    #[test]
    fn alarm_opens_our_circuit_within_minutes_and_it_closes_after_healing() {
        let mut s = scenario::outage("outage-30m", 30 * MINUTE);
        s.horizon = s.healed_at + 2 * HOUR;
        let r = run(&s, Strategy::Ours, 42);
        let m = &r.metrics;
        let open = m.failure_to_open_s.expect("opened");
        assert!((60.0..=300.0).contains(&open), "{open}");
        assert!(!m.stuck);
        assert!(m.healed_to_closed_s.is_some());
        assert_eq!(circuit_at(&r.transitions, s.horizon), Circuit::Closed);
        assert_eq!((m.dead_lettered, m.lost), (0, 0));
    }

    #[test]
    fn the_fast_trip_opens_within_a_minute_where_the_one_minute_alarm_takes_over_two() {
        let mut s = scenario::outage("outage-30m", 30 * MINUTE);
        s.horizon = s.healed_at + HOUR;
        let ours = run(&s, Strategy::Ours, 42).metrics;
        let fast = run(&s, Strategy::OursFast, 42).metrics;
        let (slow, quick) = (
            ours.failure_to_open_s.expect("ours opened"),
            fast.failure_to_open_s.expect("ours-fast opened"),
        );
        // Two breaching 10 s datapoints (20 s), counted 16 s after the second one ends, and
        // the plumbing (0.7 s) to the `open` task.
        assert!((20.0..=60.0).contains(&quick), "{quick}");
        assert!(slow >= quick + 60.0, "ours {slow} s vs ours-fast {quick} s");
        assert!(fast.calls_during_outage * 3 <= ours.calls_during_outage);
        assert_eq!((fast.lost, fast.dead_lettered), (0, 0));
    }

    #[test]
    fn a_consumer_that_times_out_at_low_concurrency_trips_the_fast_alarm() {
        // Calls take 40 s against a 30 s timeout with MaximumConcurrency 5: in 10 s periods at
        // most 1.7 invocations end, and they end in bursts 30 s apart. With minInvocations 5 no
        // period could breach and ours-fast never opened; the construct now lowers it to 1 and
        // widens the window to 2 of 4 periods (two bursts), so it opens no later than the
        // 1-minute alarm.
        let s = scenario::by_name("slow").expect("standard scenario");
        assert_eq!(s.maximum_concurrency, Some(5));
        let fast = run(&s, Strategy::OursFast, 42);
        let ours = run(&s, Strategy::Ours, 42);
        let opened = fast.metrics.failure_to_open_s.expect("ours-fast opened");
        let slow = ours.metrics.failure_to_open_s.expect("ours opened");
        assert!(opened <= slow, "ours-fast {opened} s, ours {slow} s");
        assert!(!fast.metrics.stuck);
        assert_eq!((fast.metrics.lost, fast.metrics.dead_lettered), (0, 0));
    }

    #[test]
    fn the_construct_lowers_only_an_unreachable_default() {
        assert_eq!(
            construct_min_invocations(5, Some(5), 10 * SECOND, 30 * SECOND),
            1
        );
        assert_eq!(
            construct_min_invocations(5, Some(2), 10 * SECOND, 30 * SECOND),
            1
        );
        assert_eq!(
            construct_min_invocations(5, Some(2), MINUTE, 30 * SECOND),
            4
        );
        assert_eq!(
            construct_min_invocations(5, Some(5), MINUTE, 30 * SECOND),
            5
        );
        assert_eq!(
            construct_min_invocations(5, None, 10 * SECOND, 30 * SECOND),
            5
        );
    }

    #[test]
    fn the_fast_ramp_check_reads_the_delivered_10_s_datapoints_and_steps_back() {
        // Sized above the downstream: the last ramp step (10) overloads it; the step's errors,
        // read from the extension's 10 s datapoints, make the ramp step back to 6 and settle
        // there (issue 16) instead of reopening the circuit from half-open.
        let mut s = scenario::outage("oversized-6h", 6 * HOUR);
        s.maximum_concurrency = Some(10);
        s.horizon = s.healed_at + 2 * HOUR;
        let r = run(&s, Strategy::OursFast, 42);
        let limits: Vec<u32> = r.limits.iter().map(|l| l.1).collect();
        let raised = limits.iter().position(|&l| l == 10);
        assert!(
            raised.is_some_and(|i| limits[i..].contains(&6)),
            "{limits:?}"
        );
        assert_eq!(r.metrics.settled_closes, 1, "{:?}", r.transitions);
        assert_eq!(r.metrics.retrips, 0, "{:?}", r.transitions);
        assert!(!r.metrics.stuck);
        assert_eq!(circuit_at(&r.transitions, s.horizon), Circuit::Closed);
        assert_eq!((r.metrics.lost, r.metrics.dead_lettered), (0, 0));
    }

    #[test]
    fn reference_gives_up_after_ten_probes_and_strands_the_queue() {
        let mut s = scenario::outage("outage-6h", 6 * HOUR);
        s.horizon = s.healed_at + HOUR;
        let r = run(&s, Strategy::Reference, 42);
        assert!(r.metrics.stuck);
        assert!(r.metrics.stranded > 10_000, "{}", r.metrics.stranded);
    }

    #[test]
    fn probing_never_dead_letters_a_message_even_after_many_failed_probes() {
        let mut s = scenario::outage("outage-6h", 6 * HOUR);
        s.queue.max_receive_count = 3;
        s.horizon = s.healed_at + HOUR;
        let r = run(&s, Strategy::Ours, 7);
        assert!(r.metrics.opens >= 1);
        assert_eq!(r.metrics.dead_lettered_by_breaker, 0);
    }

    #[test]
    fn same_seed_gives_the_same_run_and_traffic_is_shared_across_strategies() {
        let mut s = scenario::outage("outage-5m", 5 * MINUTE);
        s.horizon = s.healed_at + HOUR;
        let a = run(&s, Strategy::Ours, 9);
        let b = run(&s, Strategy::Ours, 9);
        assert_eq!(
            serde_json::to_string(&a.metrics).unwrap(),
            serde_json::to_string(&b.metrics).unwrap()
        );
        let none = run(&s, Strategy::NoBreaker, 9);
        assert_eq!(a.metrics.sent, none.metrics.sent);
    }

    #[test]
    fn overload_after_recovery_is_measured_against_capacity() {
        let mut s = quiet("weak");
        s.healed_at = WARMUP;
        s.workload.arrival_per_second = 100.0;
        s.downstream.phases = vec![Phase {
            start: WARMUP,
            end: s.horizon,
            health: Health {
                fail_probability: 0.0,
                latency: None,
                capacity_factor: 0.1,
            },
        }];
        let r = run(&s, Strategy::NoBreaker, 1);
        assert!(r.metrics.peak_load_ratio > 1.0);
        assert!(r.metrics.overload_seconds > 0);
        assert_eq!(
            r.metrics.overload_seconds,
            r.metrics.overload_seconds_closed
        );
    }

    /// One message sent at 5:45 to a consumer whose downstream calls take 40 s: the invocation
    /// starts at once and times out 30 s later, in the next minute.
    fn one_slow_invocation() -> World {
        let mut s = quiet("one-slow");
        s.workload.arrival_per_second = 0.0;
        s.downstream.phases = vec![Phase {
            start: 0,
            end: s.horizon,
            health: Health {
                fail_probability: 0.0,
                latency: Some(40 * SECOND),
                capacity_factor: 1.0,
            },
        }];
        let mut w = World::new(
            &s,
            Strategy::NoBreaker,
            1,
            OursConfig::default(),
            ReferenceConfig::default(),
        );
        w.run_until(5 * MINUTE + 45 * SECOND);
        w.queue.send_new(w.now, false, 0);
        w
    }

    /// Lambda stamps `Invocations`/`Errors` with the invocation's start ("Note that the
    /// timestamp on an error metric reflects when the function was invoked, not when the error
    /// occurred.", Lambda developer guide, *Types of metrics for Lambda functions*); the
    /// extension stamps its `platform.runtimeDone`, the end. An invocation that starts in
    /// minute 5 and times out in minute 6 counts in minute 5 of Lambda's metrics (before this:
    /// in minute 6, the minute it ended) and in minute 6 of the extension's.
    #[test]
    fn a_slow_invocation_counts_in_the_minute_it_started_in_lambdas_metrics() {
        let mut w = one_slow_invocation();
        // Before the message is visible again (received at 5:45 for 180 s).
        w.run_until(8 * MINUTE);
        assert_eq!(w.consumer_counts, (1, 1), "one invocation, timed out");
        let lambda = w.metrics.published(w.now);
        assert_eq!(lambda.sum(6 * MINUTE, 7 * MINUTE), (0, 0));
        assert_eq!(
            lambda.sum(5 * MINUTE, 6 * MINUTE),
            (1, 1),
            "the minute it started"
        );
        assert_eq!(w.ext_metrics.sum(5 * MINUTE, 6 * MINUTE), (0, 0));
        assert_eq!(w.ext_metrics.sum(6 * MINUTE, 7 * MINUTE), (1, 1));
        assert_eq!(
            w.ext_metrics
                .sum(6 * MINUTE + 15 * SECOND, 6 * MINUTE + 17 * SECOND),
            (1, 1),
            "the second it ended"
        );
    }

    /// Start-stamped data keeps the model's publication time: an invocation's one-minute
    /// record reaches CloudWatch [`LAMBDA_PUBLICATION`] after the minute in which it *ended*
    /// (as every record did when it was stamped with its end). The slow invocation above ended
    /// at ~6:16, but its counts go out with minute 6's: they are not in minute 5 when the alarm
    /// reads minute 5 at 6:20, only from 7:20.
    #[test]
    fn a_start_stamped_record_is_published_after_the_minute_the_invocation_ended() {
        let mut w = one_slow_invocation();
        w.run_until(6 * MINUTE + 20 * SECOND);
        assert_eq!(w.consumer_counts, (1, 1), "ended by 6:20");
        assert_eq!(
            w.metrics.published(w.now).sum(5 * MINUTE, 7 * MINUTE),
            (0, 0)
        );
        assert_eq!(w.metrics.unpublished(5 * MINUTE, 6 * MINUTE), 1);
        w.run_until(7 * MINUTE + 20 * SECOND - 1);
        assert_eq!(
            w.metrics.published(w.now).sum(5 * MINUTE, 7 * MINUTE),
            (0, 0)
        );
        w.run_until(7 * MINUTE + 20 * SECOND);
        assert_eq!(
            w.metrics.published(w.now).sum(5 * MINUTE, 6 * MINUTE),
            (1, 1)
        );
        assert_eq!(w.metrics.unpublished(0, w.now), 0);
    }

    #[test]
    fn circuit_at_reads_the_transition_log() {
        let log = [
            (0, Circuit::Closed),
            (10, Circuit::Open),
            (20, Circuit::HalfOpen),
        ];
        assert_eq!(circuit_at(&log, 5), Circuit::Closed);
        assert_eq!(circuit_at(&log, 10), Circuit::Open);
        assert_eq!(circuit_at(&log, 99), Circuit::HalfOpen);
    }
}
