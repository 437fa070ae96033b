//! Our breaker's controller: the recovery's phases (open, backoff, probe, re-jitter plan and
//! passes, keep-alive, ramp, close), each a call into `breaker_core`'s decisions, as methods of
//! the engine's world.

use super::{Circuit, Controller, Event, World};
use crate::cloudwatch::AlarmState;
use crate::queue::{Received, Receiver};
use crate::strategy::OursConfig;
use crate::time::{Millis, SECOND};
use breaker_core::contract::{CircuitState, SavedScaling, Trigger};
use breaker_core::mapping::MetricResolution;
use breaker_core::message::ReceivedMessage;
use breaker_core::policy::{BackoffDecision, backoff_decision, complete_periods, with_keep_alive};
use breaker_core::ports::Scaling;
use breaker_core::probe::{Disposition, failed_disposition};
use breaker_core::ramp::{Demand, IntervalHealth, Move, Progress, Timing};
use breaker_core::rejitter::{self, DelayWindow, Eligibility};

/// Where our recovery stands (the state machine's states, as the simulator steps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OursPhase {
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

/// Our one recovery (single flight) and what its execution carries between steps.
#[derive(Debug, Clone)]
pub(super) struct OursExec {
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
    /// Where the interval the next ramp call judges begins: when the level was set, or the end
    /// of the last interval judged (`RampProgress::judge_from_ms`).
    judge_from: Millis,
    cutoff: Millis,
    workers: u32,
    slice_left: Millis,
    /// When the circuit opened and the cutoff of the last keep-alive pass
    /// (`CircuitState::openedAtMs` / `refreshedAtMs`).
    opened_at: Millis,
    refreshed_at: Option<Millis>,
    /// When a relapse last reopened the circuit (`CircuitState::reopenedAtMs`).
    reopened_at: Option<Millis>,
    /// The last healthy probe's invoke duration (`CircuitState::healthyProbe`, one message).
    healthy_probe: Option<Millis>,
    /// The window the plan sized to the backlog (`breaker_core::rejitter::window_for_backlog`).
    window: DelayWindow,
}

/// One ramp call after the first (the product's `ramp` with `step` ≥ 1): when it ran, the
/// start of the interval it may judge (the level set, or the last interval judged), and the
/// metric periods `[start, end)` it judged (`None`: none complete, no verdict), and how many
/// invocations begun in them Lambda had not published yet (one-minute metrics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RampCall {
    pub(super) at: Millis,
    pub(super) judge_from: Millis,
    pub(super) judged: Option<(Millis, Millis)>,
    /// The call was an early look at a level climbed to (`Progress::early`).
    pub(super) early: bool,
    pub(super) unpublished: u32,
}

impl World {
    /// The alarm's event starts our recovery, unless one is running (single flight).
    pub(super) fn ours_alarm(&mut self, start: Millis) {
        let Controller::Ours {
            exec,
            next_id,
            config,
            ..
        } = &mut self.controller
        else {
            return;
        };
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
            judge_from: 0,
            cutoff: 0,
            workers: 0,
            slice_left: 0,
            opened_at: start,
            refreshed_at: None,
            reopened_at: None,
            healthy_probe: None,
            window: config.rejitter_window,
        });
        self.schedule(start, Event::Step { exec: id });
    }

    /// Sets the ramp's level `i` of `exec` (with a first rung at the first level's concurrency
    /// and `OursConfig::first_rung_batch`, when configured) and returns when it applies.
    fn ramp_level(&mut self, exec: &OursExec, batch: Option<usize>, i: usize) -> Millis {
        let index = level_index(batch, i);
        let batch_size = batch.filter(|_| i == 0);
        let at = self.esm_update(true, exec.levels[index]);
        self.schedule(at, Event::EsmBatch { batch_size });
        at
    }

    /// Recovery `id`'s next step: each phase calls the product's decision (backoff, probe
    /// disposition, re-jitter plan and rules, the ramp's `Follow::next` on the intervals the
    /// product judges) and schedules the next.
    pub(super) fn ours_step(&mut self, id: usize) {
        let Controller::Ours {
            config, core, exec, ..
        } = &self.controller
        else {
            return;
        };
        let config = *config;
        // The consumer's metrics the ramp judges (the alarm's resolution and period), the
        // consumer's timeout (a one-minute period is complete that long and a minute after it
        // ends) and the ramp's interval, as the product's configuration has them.
        let (period, resolution, timeout, interval) = (
            core.consumer_metric_period_seconds,
            core.consumer_metric_resolution,
            core.consumer_timeout_seconds,
            core.ramp_interval_seconds,
        );
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
                state.reopened_at_ms = exec.reopened_at;
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
                    // Nothing visible while messages are in flight (received before the trip,
                    // outcome unknown): no evidence of health, the circuit stays open and the
                    // next probe goes on, as the product's probe decides.
                    None if self.queue.in_flight(self.now) > 0 => {
                        exec.attempt += 1;
                        exec.healthy_probe = None;
                        exec.phase = OursPhase::Backoff;
                        self.schedule(self.now + task, Event::Step { exec: id });
                    }
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
                exec.window = rejitter::within_retention(
                    rejitter::window_for_backlog(backlog, rate, config.rejitter_window),
                    Some(self.scenario.queue.retention / SECOND),
                );
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
                // The product's ramp handler: each call judges the complete, published periods
                // of the consumer's metrics at the alarm's resolution since the level was set or
                // the last interval judged (`policy::complete_periods`), and the next comes when
                // `ramp::Timing` says: after the ramp interval once another period is complete,
                // or early at a level climbed to.
                let timing = Timing {
                    interval_seconds: interval,
                    period_seconds: period,
                    resolution,
                    consumer_timeout_seconds: timeout,
                };
                let top = config.ramp.schedule(exec.saved).len() - 1
                    + usize::from(config.first_rung_batch.is_some());
                let looks = config.follow.looks(top + 1);
                if exec.step == 0 {
                    exec.levels = config.ramp.schedule(exec.saved);
                    exec.settled = None;
                    self.ramp_level(&exec, config.first_rung_batch, 0);
                    exec.step = 1;
                    exec.judge_from = self.now;
                    let (wait, early) = timing.after_set(self.now, self.now, looks);
                    exec.progress = Progress {
                        early,
                        ..Progress::default()
                    };
                    self.schedule(self.now + wait * SECOND, Event::Step { exec: id });
                } else {
                    let judged =
                        complete_periods(self.now, exec.judge_from, period, resolution, timeout);
                    let unpublished = match (resolution, judged) {
                        (MetricResolution::Standard, Some((from, until))) => {
                            self.metrics.unpublished(from, until)
                        }
                        _ => 0,
                    };
                    self.ramp_calls.push(RampCall {
                        at: self.now,
                        judge_from: exec.judge_from,
                        judged,
                        early: exec.progress.early,
                        unpublished,
                    });
                    let metrics = match resolution {
                        MetricResolution::Standard => self.metrics.published(self.now),
                        MetricResolution::High => &self.ext_metrics,
                    };
                    // The sim's consumer is never throttled (no account concurrency limit is
                    // modelled).
                    let health = judged.map(|(from, until)| {
                        let (inv, err) = metrics.sum(from, until);
                        IntervalHealth {
                            invocations: f64::from(inv),
                            errors: f64::from(err),
                            throttles: 0.0,
                        }
                    });
                    let calls = config.follow.max_calls(top + 1) as usize;
                    let last = exec.step + 1 >= calls;
                    let (decision, progress) = config.follow.next(exec.progress, top, health, last);
                    // A raise from a level the consumer does not fill closes the ramp, as the
                    // product's handler decides from `GetQueueAttributes` and the mapping's
                    // `BatchSize` (read only for a raise).
                    let (decision, progress) = match decision {
                        Move::StepUp => {
                            let index = level_index(config.first_rung_batch, exec.progress.level);
                            let batch = self.batch_size.unwrap_or(self.scenario.esm.batch_size);
                            let room = Demand::room(
                                Scaling::Concurrency(exec.levels[index]),
                                batch as u32,
                            );
                            match room {
                                Some(room) => config.follow.close_if_unlimited(
                                    decision,
                                    progress,
                                    Demand {
                                        visible: self.queue.visible(self.now) as u64,
                                        in_flight: self.queue.in_flight(self.now) as u64,
                                        room,
                                    },
                                ),
                                None => (decision, progress),
                            }
                        }
                        _ => (decision, progress),
                    };
                    exec.progress = progress;
                    exec.step += 1;
                    let judged_until = judged.map_or(exec.judge_from, |(_, until)| until);
                    match decision {
                        Move::Reopen => {
                            exec.reopened_at = Some(self.now);
                            let at = self.esm_update(false, exec.saved);
                            self.opened();
                            exec.phase = OursPhase::Backoff;
                            self.schedule(at + task, Event::Step { exec: id });
                        }
                        Move::StepUp | Move::StepBack => {
                            self.ramp_level(&exec, config.first_rung_batch, progress.level);
                            exec.judge_from = self.now;
                            let climbing = decision == Move::StepUp && looks;
                            let (wait, early) = timing.after_set(self.now, self.now, climbing);
                            exec.progress.early = early;
                            self.schedule(self.now + wait * SECOND, Event::Step { exec: id });
                        }
                        Move::Hold => {
                            exec.judge_from = judged_until;
                            let wait = timing.after_hold(judged_until, self.now);
                            self.schedule(self.now + wait * SECOND, Event::Step { exec: id });
                        }
                        Move::Wait => {
                            // The early look judged nothing: the interval since the level was
                            // set (`judge_from`) is judged whole after the ramp interval.
                            let wait = timing.after_wait(exec.judge_from, self.now);
                            self.schedule(self.now + wait * SECOND, Event::Step { exec: id });
                        }
                        Move::Close => {
                            exec.phase = OursPhase::Close;
                            self.schedule(self.now + task, Event::Step { exec: id });
                        }
                        Move::Settle => {
                            // The first rung settles at the first level's concurrency with the
                            // lowered batch size kept.
                            let index = level_index(config.first_rung_batch, progress.level);
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
}

/// The core's view of a received message (only what the re-jitter rules read).
/// The index in the ramp's concurrency levels of the ramp's `i`-th rung: with a first rung
/// (`first_rung_batch`: the first level's concurrency with a smaller batch) rungs 0 and 1 share
/// the first level.
fn level_index(first_rung_batch: Option<usize>, i: usize) -> usize {
    match first_rung_batch {
        Some(_) => i.saturating_sub(1),
        None => i,
    }
}

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

#[cfg(test)]
mod tests {
    use super::super::World;
    use crate::scenario;
    use crate::strategy::{OursConfig, ReferenceConfig, Strategy};
    use crate::time::SECOND;
    use breaker_core::mapping::MetricResolution;
    use breaker_core::policy::{complete_periods, first_complete_at};

    /// Issue 16: when the probe finds the queue empty (`empty-queue`: the producers stopped during
    /// the outage) the consumer does not fill the ramp's first level, and its first clean verdict
    /// closes the ramp (`Follow::close_if_unlimited`; before: one level per interval, 4 levels and
    /// 12–16 minutes after healing with the one-minute alarm). After 6 hours the backlog fills
    /// each level (the copies come back over the 300 s window faster than the first levels
    /// carry): the ramp climbs.
    #[test]
    fn a_ramp_closes_at_a_clean_level_the_consumer_does_not_fill_and_climbs_while_it_does() {
        for strategy in [Strategy::Ours, Strategy::OursFast] {
            // The mapping's limits from the last disable on: the ramp's levels, then the close.
            let levels = |name: &str| {
                let s = scenario::by_name(name).expect("scenario");
                let mut w = World::new(
                    &s,
                    strategy,
                    42,
                    OursConfig::default(),
                    ReferenceConfig::default(),
                );
                w.run_until(s.horizon);
                let limits: Vec<u32> = w.limits.iter().map(|l| l.1).collect();
                let last_open = limits.iter().rposition(|&l| l == 0).expect("tripped");
                limits[last_open + 1..].to_vec()
            };
            let original = scenario::by_name("empty-queue")
                .expect("scenario")
                .maximum_concurrency
                .expect("a limit");
            assert_eq!(levels("empty-queue"), vec![2, original], "{strategy:?}");
            assert!(levels("outage-6h").len() > 2, "{strategy:?}");
        }
    }

    /// The simulated ramp judges each interval as the product's `ramp` handler does: only the
    /// complete, published metric periods (`policy::complete_periods` of the strategy's
    /// resolution) since the level was set or the last interval judged, and it waits until one
    /// is complete (`first_complete_at`), at least the ramp interval, except for an early look
    /// at a level climbed to (only the fast trip's 10 s periods are complete that soon).
    #[test]
    fn each_ramp_call_judges_the_complete_periods_the_product_would() {
        let cases = [
            (Strategy::Ours, MetricResolution::Standard, 60),
            (Strategy::OursFast, MetricResolution::High, 10),
        ];
        for (strategy, resolution, period) in cases {
            let mut calls = 0;
            for name in ["outage-5m", "oversized-6h", "slow"] {
                let s = scenario::by_name(name).expect("scenario");
                let config = OursConfig::default();
                let core = config.core_config(strategy == Strategy::OursFast, s.consumer.timeout);
                let (interval, timeout) =
                    (core.ramp_interval_seconds, core.consumer_timeout_seconds);
                assert_eq!(u64::from(timeout) * SECOND, s.consumer.timeout);
                let mut w = World::new(&s, strategy, 42, config, ReferenceConfig::default());
                w.run_until(s.horizon);
                // A ramp whose first clean level the consumer does not fill closes after one
                // call (`Follow::close_if_unlimited`).
                assert!(
                    !w.ramp_calls.is_empty(),
                    "{name} {strategy:?}: {:?}",
                    w.ramp_calls
                );
                calls += w.ramp_calls.len();
                for c in &w.ramp_calls {
                    let want = complete_periods(c.at, c.judge_from, period, resolution, timeout);
                    assert_eq!(c.judged, want, "{name} {strategy:?}: {c:?}");
                    assert!(
                        c.at >= first_complete_at(c.judge_from, period, resolution, timeout)
                            && (c.early || c.at >= c.judge_from + interval * SECOND),
                        "{name} {strategy:?}: called before an interval was complete: {c:?}"
                    );
                    // What it judged was all published: every invocation begun in it had ended
                    // and reached CloudWatch.
                    assert_eq!(c.unpublished, 0, "{name} {strategy:?}: {c:?}");
                }
                let looks = w.ramp_calls.iter().filter(|c| c.early).count();
                assert_eq!(
                    looks > 0,
                    strategy == Strategy::OursFast,
                    "{name} {strategy:?}: {looks} early looks"
                );
            }
            assert!(calls >= 6, "{strategy:?}: {calls} ramp calls in all");
        }
    }
}
