//! The discrete-event engine: one run of one strategy on one scenario.
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
    Alarm, AlarmConfig, AlarmState, EXTENSION_DELIVERY, Metrics, Resolution,
    construct_evaluation_periods, construct_min_invocations,
};
use crate::downstream::Downstream;
use crate::esm::Esm;
use crate::queue::{Received, Receiver, SqsQueue};
use crate::scenario::Scenario;
use crate::strategy::{OursConfig, Plumbing, ReferenceConfig, Strategy};
use crate::time::{Millis, SECOND, secs};
use breaker_core::config::Config;
use breaker_core::contract::{CircuitState, SavedScaling, Trigger};
use breaker_core::message::ReceivedMessage;
use breaker_core::policy::{BackoffDecision, backoff_decision, with_keep_alive};
use breaker_core::probe::{Disposition, failed_disposition};
use breaker_core::ramp::{IntervalHealth, Move, Progress};
use breaker_core::rejitter::{self, DelayWindow, Eligibility};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefPhase {
    Disable,
    Probe,
    Rejitter,
    Enable,
}

#[derive(Debug, Clone)]
struct RefExec {
    phase: RefPhase,
    attempt: u32,
    rejitter_until: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OursPhase {
    Open,
    Backoff,
    Probe,
    RejitterPlan,
    Rejitter,
    /// A keep-alive pass (copies without delay while open), then back to backoff.
    KeepAlive,
    Ramp,
    Close,
}

#[derive(Debug, Clone)]
struct OursExec {
    id: usize,
    phase: OursPhase,
    attempt: u32,
    saved: Option<u32>,
    levels: Vec<Option<u32>>,
    /// 0 before the ramp's first level is set, 1 after.
    step: usize,
    /// Where the health-following ramp stands (`breaker_core::ramp::Progress`).
    progress: Progress,
    /// The level a settled ramp closes at (`Move::Settle`), below the original.
    settled: Option<Option<u32>>,
    step_counts: (u64, u64),
    /// The relapse check on high-resolution metrics: the start of the first period it has not
    /// read yet (each check reads the delivered periods since, so no period is read twice).
    relapse_from: Millis,
    cutoff: Millis,
    workers: u32,
    slice_left: Millis,
    /// When the circuit opened and the cutoff of the last keep-alive pass
    /// (`CircuitState::openedAtMs` / `refreshedAtMs`).
    opened_at: Millis,
    refreshed_at: Option<Millis>,
    /// The last healthy probe's invoke duration (`CircuitState::healthyProbe`, one message).
    healthy_probe: Option<Millis>,
    /// The window the plan sized to the backlog (`breaker_core::rejitter::window_for_backlog`).
    window: DelayWindow,
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
        /// What the ramp's relapse check reads.
        relapse: RelapseCheck,
    },
}

/// What the ramp's relapse check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelapseCheck {
    /// The consumer's exact invocation and error counts over the step (ours).
    Exact,
    /// The high-resolution metrics: the whole periods of this length that began since the last
    /// check and were delivered ([`EXTENSION_DELIVERY`] after their end) by now (ours-fast).
    HighResolution(Millis),
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
    /// Lambda's own 1-minute metrics.
    metrics: Metrics,
    /// The telemetry extension's per-second metrics.
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
                core: Box::new(ours.core_config(false)),
                exec: None,
                next_id: 0,
                relapse: RelapseCheck::Exact,
            },
            Strategy::OursFast => Controller::Ours {
                config: ours,
                core: Box::new(ours.core_config(true)),
                exec: None,
                next_id: 0,
                relapse: RelapseCheck::HighResolution(ours.fast_trip.period),
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
            metrics: Metrics::new(Resolution::Standard),
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
            Resolution::Standard => &self.metrics,
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
        let error = slot.error;
        for (msg, ok) in batch.iter().zip(outcome) {
            if ok {
                self.queue.delete(msg.id, msg.receipt);
            }
        }
        self.record_invocation(error);
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

    fn record_invocation(&mut self, error: bool) {
        self.metrics.record(self.now, error);
        self.ext_metrics.record(self.now, error);
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

    /// Sets the ramp's level `i` of `exec` (with a first rung at the first level's concurrency
    /// and `OursConfig::first_rung_batch`, when configured) and returns when it applies.
    fn ramp_level(&mut self, exec: &OursExec, batch: Option<usize>, i: usize) -> Millis {
        let (index, batch_size) = match batch {
            Some(b) if i == 0 => (0, Some(b)),
            Some(_) => (i - 1, None),
            None => (i, None),
        };
        let at = self.esm_update(true, exec.levels[index]);
        self.schedule(at, Event::EsmBatch { batch_size });
        at
    }

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
        match &mut self.controller {
            Controller::None => {}
            Controller::Reference { execs, .. } => {
                execs.push(Some(RefExec {
                    phase: RefPhase::Disable,
                    attempt: 0,
                    rejitter_until: 0,
                }));
                let exec = execs.len() - 1;
                self.schedule(start, Event::Step { exec });
            }
            Controller::Ours {
                exec,
                next_id,
                config,
                ..
            } => {
                if exec.is_some() {
                    // Single flight: the duplicate execution's `open` returns `duplicate`.
                    self.breaker_task(self.plumbing.task, 3);
                    return;
                }
                *next_id += 1;
                let id = *next_id;
                *exec = Some(OursExec {
                    id,
                    phase: OursPhase::Open,
                    attempt: 0,
                    saved: None,
                    levels: Vec::new(),
                    step: 0,
                    progress: Progress::default(),
                    settled: None,
                    step_counts: (0, 0),
                    relapse_from: 0,
                    cutoff: 0,
                    workers: 0,
                    slice_left: 0,
                    opened_at: start,
                    refreshed_at: None,
                    healthy_probe: None,
                    window: config.rejitter_window,
                });
                self.schedule(start, Event::Step { exec: id });
            }
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
        // The probe's invocation lands in the consumer's metrics like any other.
        self.record_invocation(inv.error);
        Some((msg, inv.ok[0], inv.duration))
    }

    // ---------------------------------------------------------------- reference sample

    fn reference_step(&mut self, idx: usize) {
        let Controller::Reference { config, execs } = &self.controller else {
            return;
        };
        let config = *config;
        let Some(Some(mut exec)) = execs.get(idx).cloned() else {
            return;
        };
        let task = self.plumbing.task;
        let mut finished = false;
        match exec.phase {
            RefPhase::Disable => {
                let max = self.esm.maximum_concurrency;
                let at = self.esm_update(false, max);
                self.opened();
                self.breaker_task(task, 2);
                exec.phase = RefPhase::Probe;
                self.schedule(at + config.first_wait, Event::Step { exec: idx });
            }
            RefPhase::Probe => {
                self.breaker_task(task, 3);
                match self.probe_invoke(self.scenario.queue.visibility_timeout) {
                    None => {
                        // The sample's probe crashes on an empty queue: the execution fails and
                        // the ESM stays disabled.
                        finished = true;
                    }
                    Some((msg, true, d)) => {
                        self.queue.delete(msg.id, msg.receipt);
                        exec.phase = RefPhase::Rejitter;
                        exec.rejitter_until = self.now + d + config.rejitter_for;
                        self.set_circuit(Circuit::HalfOpen);
                        self.schedule(self.now + d, Event::Step { exec: idx });
                    }
                    Some((_, false, d)) => {
                        exec.attempt += 1;
                        if exec.attempt >= config.max_attempts {
                            finished = true;
                        } else {
                            let wait = config.retry_wait << (exec.attempt - 1).min(30);
                            self.schedule(self.now + d + wait, Event::Step { exec: idx });
                        }
                    }
                }
            }
            RefPhase::Rejitter => {
                self.breaker_gb_ms +=
                    SECOND as f64 * self.plumbing.breaker_memory_mb as f64 / 1024.0;
                let mut moved = 0;
                while moved < config.rejitter_per_second {
                    let got = self
                        .queue
                        .receive(self.now, 10, 30 * SECOND, Receiver::Breaker);
                    if got.is_empty() {
                        break;
                    }
                    for msg in got {
                        let delay = config.delay_base_seconds
                            + self
                                .breaker_rng
                                .random_range(0..=config.delay_spread_seconds);
                        self.queue.send(self.now, msg.body, delay * SECOND);
                        self.queue.delete(msg.id, msg.receipt);
                        moved += 1;
                    }
                }
                if self.now + SECOND < exec.rejitter_until {
                    self.schedule(self.now + SECOND, Event::Step { exec: idx });
                } else {
                    exec.phase = RefPhase::Enable;
                    self.breaker_task(task, 2);
                    self.schedule(self.now + SECOND, Event::Step { exec: idx });
                }
            }
            RefPhase::Enable => {
                let max = self.esm.maximum_concurrency;
                self.esm_update(true, max);
                self.breaker_task(task, 2);
                self.set_circuit(Circuit::Closed);
                finished = true;
            }
        }
        if let Controller::Reference { execs, .. } = &mut self.controller {
            execs[idx] = if finished { None } else { Some(exec) };
        }
    }

    // ---------------------------------------------------------------- ours

    fn ours_step(&mut self, id: usize) {
        let Controller::Ours {
            config,
            exec,
            relapse: check,
            ..
        } = &self.controller
        else {
            return;
        };
        let (config, check) = (*config, *check);
        let ramp_interval = match check {
            RelapseCheck::Exact => config.ramp_interval,
            RelapseCheck::HighResolution(_) => config.ramp_interval_high,
        };
        let Some(mut exec) = exec.clone().filter(|e| e.id == id) else {
            return;
        };
        let task = self.plumbing.task;
        let mut finished = false;
        match exec.phase {
            OursPhase::Open => {
                // After a settled close the mapping runs below its original: the original is
                // what the product's circuit record keeps, and what this recovery restores.
                exec.saved = self
                    .settled_original
                    .take()
                    .unwrap_or(self.esm.maximum_concurrency);
                exec.opened_at = self.now;
                let at = self.esm_update(false, exec.saved);
                self.opened();
                // `open` waits until the ESM reports Disabled.
                self.breaker_task(at - self.now + task, 2);
                exec.phase = OursPhase::Backoff;
                self.schedule(at + task, Event::Step { exec: id });
            }
            OursPhase::Backoff => {
                // The backoff handler's decision, from breaker_core (state fields as the handler
                // sees them; retention from the queue's settings). The simulator charges no
                // history events, so `Continue` (continue as new) never comes; `Stuck` needs a
                // `maxOpenDuration`, which the construct leaves unset by default.
                let mut state = CircuitState::opened(
                    exec.opened_at,
                    SavedScaling {
                        maximum_concurrency: exec.saved,
                    },
                    Trigger::Alarm,
                );
                state.attempt = exec.attempt;
                state.refreshed_at_ms = exec.refreshed_at;
                let retention = Some(self.scenario.queue.retention / SECOND);
                self.breaker_task(task, 2);
                let Controller::Ours { core, .. } = &self.controller else {
                    unreachable!("ours_step runs ours' controller")
                };
                let decision = backoff_decision(&state, core, self.now, &mut self.breaker_rng);
                match with_keep_alive(decision, &state, retention, self.now) {
                    BackoffDecision::KeepAlive => {
                        exec.refreshed_at = Some(rejitter::cutoff_ms(self.now));
                        self.keep_alive_passes += 1;
                        exec.cutoff = rejitter::cutoff_ms(self.now + task);
                        exec.workers = rejitter::worker_count(
                            self.queue.len() as u64,
                            config.rejitter_workers,
                        )
                        .max(1);
                        exec.slice_left = config.rejitter_slice;
                        exec.phase = OursPhase::KeepAlive;
                        self.state_transitions += 2 + 2 * exec.workers as u64;
                        self.schedule(self.now + 2 * task, Event::Step { exec: id });
                    }
                    BackoffDecision::Wait(wait) => {
                        exec.phase = OursPhase::Probe;
                        self.schedule(self.now + task + wait * SECOND, Event::Step { exec: id });
                    }
                    BackoffDecision::Stuck | BackoffDecision::Continue => {
                        // Left open on purpose (`Circuit Stuck Open`): the run ends stuck.
                        finished = true;
                    }
                }
            }
            OursPhase::KeepAlive => {
                let budget = exec.workers * config.rejitter_per_worker_second;
                let done = self.rejitter_second(
                    &config,
                    config.rejitter_window,
                    budget,
                    exec.cutoff,
                    true,
                );
                self.breaker_gb_ms += (exec.workers as u64 * SECOND) as f64
                    * self.plumbing.breaker_memory_mb as f64
                    / 1024.0;
                exec.slice_left = exec.slice_left.saturating_sub(SECOND);
                if exec.slice_left == 0 || done {
                    self.state_transitions += 2 * exec.workers as u64;
                    exec.slice_left = config.rejitter_slice;
                }
                if done {
                    exec.phase = OursPhase::Backoff;
                }
                self.schedule(self.now + SECOND, Event::Step { exec: id });
            }
            OursPhase::Probe => {
                self.breaker_task(task, 2);
                match self.probe_invoke(config.probe_visibility) {
                    None => {
                        exec.healthy_probe = None;
                        exec.phase = OursPhase::RejitterPlan;
                        self.schedule(self.now + task, Event::Step { exec: id });
                    }
                    Some((msg, true, d)) => {
                        self.queue.delete(msg.id, msg.receipt);
                        exec.healthy_probe = Some(d);
                        exec.phase = OursPhase::RejitterPlan;
                        self.schedule(self.now + d + task, Event::Step { exec: id });
                    }
                    Some((msg, false, d)) => {
                        let limit = Some(self.scenario.queue.max_receive_count);
                        match failed_disposition(msg.receive_count, limit) {
                            Disposition::Resend => {
                                self.queue.send(self.now, msg.body, 0);
                                self.queue.delete(msg.id, msg.receipt);
                            }
                            Disposition::Release | Disposition::Delete => {
                                self.queue
                                    .change_visibility(self.now, msg.id, msg.receipt, 0);
                            }
                        }
                        exec.attempt += 1;
                        exec.healthy_probe = None;
                        exec.phase = OursPhase::Backoff;
                        self.schedule(self.now + d + task, Event::Step { exec: id });
                    }
                }
            }
            OursPhase::RejitterPlan => {
                self.set_circuit(Circuit::HalfOpen);
                self.breaker_task(task, 2);
                let backlog = self.queue.len() as u64;
                exec.workers = rejitter::worker_count(backlog, config.rejitter_workers);
                // The plan's window, sized to the backlog at the ramp's first level as the
                // handler sizes it (one probed message, its measured invoke duration).
                let rate = exec
                    .healthy_probe
                    .and_then(|d| rejitter::ramp_rate(config.ramp.start, 1, d));
                exec.window = rejitter::window_for_backlog(backlog, rate, config.rejitter_window);
                exec.cutoff = rejitter::cutoff_ms(self.now);
                exec.slice_left = config.rejitter_slice;
                if exec.workers == 0 {
                    exec.phase = OursPhase::Ramp;
                    exec.step = 0;
                } else {
                    exec.phase = OursPhase::Rejitter;
                    self.state_transitions += 2 * exec.workers as u64;
                }
                self.schedule(self.now + task, Event::Step { exec: id });
            }
            OursPhase::Rejitter => {
                let budget = exec.workers * config.rejitter_per_worker_second;
                let done = self.rejitter_second(&config, exec.window, budget, exec.cutoff, false);
                self.breaker_gb_ms += (exec.workers as u64 * SECOND) as f64
                    * self.plumbing.breaker_memory_mb as f64
                    / 1024.0;
                exec.slice_left = exec.slice_left.saturating_sub(SECOND);
                if exec.slice_left == 0 || done {
                    // Each worker invocation: task + choice.
                    self.state_transitions += 2 * exec.workers as u64;
                    exec.slice_left = config.rejitter_slice;
                }
                if done {
                    exec.phase = OursPhase::Ramp;
                    exec.step = 0;
                }
                self.schedule(self.now + SECOND, Event::Step { exec: id });
            }
            OursPhase::Ramp => {
                self.breaker_task(task, 3);
                if exec.step == 0 {
                    exec.levels = config.ramp.schedule(exec.saved);
                    exec.progress = Progress::default();
                    exec.settled = None;
                    let at = self.ramp_level(&exec, config.first_rung_batch, 0);
                    exec.step = 1;
                    exec.step_counts = self.consumer_counts;
                    if let RelapseCheck::HighResolution(period) = check {
                        exec.relapse_from = self.now.div_ceil(period) * period;
                    }
                    self.schedule(at + ramp_interval, Event::Step { exec: id });
                } else {
                    let (inv, err) = match check {
                        RelapseCheck::Exact => (
                            self.consumer_counts.0 - exec.step_counts.0,
                            self.consumer_counts.1 - exec.step_counts.1,
                        ),
                        RelapseCheck::HighResolution(period) => {
                            let until =
                                self.now.saturating_sub(EXTENSION_DELIVERY) / period * period;
                            let (inv, err) = if until > exec.relapse_from {
                                self.ext_metrics.sum(exec.relapse_from, until)
                            } else {
                                (0, 0)
                            };
                            exec.relapse_from = exec.relapse_from.max(until);
                            (u64::from(inv), u64::from(err))
                        }
                    };
                    // The decision the product's ramp makes (issue 16): the sim's consumer
                    // is never throttled (no account concurrency limit is modelled).
                    let health = IntervalHealth {
                        invocations: inv as f64,
                        errors: err as f64,
                        throttles: 0.0,
                    };
                    let top =
                        exec.levels.len() - 1 + usize::from(config.first_rung_batch.is_some());
                    let (decision, progress) = config.follow.decide(exec.progress, top, health);
                    exec.progress = progress;
                    match decision {
                        Move::Reopen => {
                            let at = self.esm_update(false, exec.saved);
                            self.opened();
                            exec.phase = OursPhase::Backoff;
                            self.schedule(at + task, Event::Step { exec: id });
                        }
                        Move::StepUp | Move::StepBack => {
                            let at =
                                self.ramp_level(&exec, config.first_rung_batch, progress.level);
                            exec.step_counts = self.consumer_counts;
                            self.schedule(at + ramp_interval, Event::Step { exec: id });
                        }
                        Move::Hold => {
                            exec.step_counts = self.consumer_counts;
                            self.schedule(self.now + ramp_interval, Event::Step { exec: id });
                        }
                        Move::Close => {
                            exec.phase = OursPhase::Close;
                            self.schedule(self.now + task, Event::Step { exec: id });
                        }
                        Move::Settle => {
                            // The first rung settles at the first level's concurrency with the
                            // lowered batch size kept.
                            let index = match config.first_rung_batch {
                                Some(_) => progress.level.saturating_sub(1),
                                None => progress.level,
                            };
                            exec.settled = Some(exec.levels[index]);
                            exec.phase = OursPhase::Close;
                            self.schedule(self.now + task, Event::Step { exec: id });
                        }
                    }
                }
            }
            OursPhase::Close => {
                // A settled ramp closes at the level it proved, below the original.
                if exec.settled.is_some() {
                    self.settled_closes += 1;
                    self.settled_original = Some(exec.saved);
                }
                self.esm_update(true, exec.settled.unwrap_or(exec.saved));
                self.alarm.set_state(AlarmState::Ok);
                self.breaker_task(task, 2);
                self.set_circuit(Circuit::Closed);
                finished = true;
            }
        }
        if let Controller::Ours { exec: slot, .. } = &mut self.controller {
            *slot = if finished { None } else { Some(exec) };
        }
    }

    /// One second of re-jitter work with `breaker_core::rejitter`'s rules: a message sent
    /// before `cutoff` is copied with a delay drawn from the window and deleted; a later one
    /// (a copy, or a new arrival) is left hidden for the receive's visibility (longer than the
    /// slice), unless one more receive could dead-letter it, then it is moved fresh.
    /// Returns whether the pass is done: nothing visible left, or
    /// [`rejitter::EMPTY_ROUNDS_TO_DRAIN`] receives in a row with nothing to move.
    /// A keep-alive pass (`keep_alive`) copies with no delay.
    fn rejitter_second(
        &mut self,
        config: &OursConfig,
        window: DelayWindow,
        budget: u32,
        cutoff: Millis,
        keep_alive: bool,
    ) -> bool {
        let max_receive = self.scenario.queue.max_receive_count;
        let visibility = 2 * config.rejitter_slice;
        let mut handled = 0;
        let mut idle_rounds = 0;
        while handled < budget {
            let got = self
                .queue
                .receive(self.now, 10, visibility, Receiver::Breaker);
            if got.is_empty() {
                return true;
            }
            // Like the handler's lanes: a pass is done after EMPTY_ROUNDS_TO_DRAIN receives
            // without an old message to move. Copies come back after their delay (at once in a
            // keep-alive pass) and after the receive visibility, so over a large backlog the
            // queue never looks empty: without this rule a pass would receive them for ever.
            let progress = got.iter().any(|m| {
                let sent = self.queue.get(m.id).map(|q| q.sent).unwrap_or(0);
                Eligibility::of(&as_core(m, sent), cutoff, Some(max_receive)).moves_backlog()
            });
            idle_rounds = if progress { 0 } else { idle_rounds + 1 };
            let near_limit = rejitter::near_limit_delay_seconds(
                Some(self.scenario.queue.retention / SECOND),
                config.rejitter_slice / SECOND,
            );
            // What this receive got is still moved (own copies fresh), as the handler's lane
            // sends what it received before it counts the round.
            for msg in got {
                handled += 1;
                let sent = self.queue.get(msg.id).map(|m| m.sent).unwrap_or(0);
                let Some(delay) = Eligibility::of(&as_core(&msg, sent), cutoff, Some(max_receive))
                    .copy_delay(&window, keep_alive, near_limit, &mut self.breaker_rng)
                else {
                    continue;
                };
                let delay = Millis::from(delay) * SECOND;
                self.queue.send(self.now, msg.body, delay);
                self.queue.delete(msg.id, msg.receipt);
            }
            if idle_rounds >= rejitter::EMPTY_ROUNDS_TO_DRAIN {
                return true;
            }
        }
        false
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

/// The core's view of a received message (only what the re-jitter rules read).
fn as_core(msg: &Received, sent: Millis) -> ReceivedMessage {
    ReceivedMessage {
        message_id: msg.id.to_string(),
        receipt_handle: msg.receipt.to_string(),
        body: String::new(),
        md5_of_body: String::new(),
        md5_of_message_attributes: None,
        attributes: [
            (
                "ApproximateReceiveCount".to_string(),
                msg.receive_count.to_string(),
            ),
            ("SentTimestamp".to_string(), sent.to_string()),
        ]
        .into_iter()
        .collect(),
        message_attributes: Default::default(),
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
