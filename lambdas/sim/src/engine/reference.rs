//! The reference sample's controller: its execution phases and what each does (see
//! [`crate::strategy::Strategy::Reference`]), as methods of the engine's world.

use rand::RngExt;

use super::{Circuit, Controller, Event, World};
use crate::queue::Receiver;
use crate::time::{Millis, SECOND};

/// Where a reference execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefPhase {
    Disable,
    Probe,
    Rejitter,
    Enable,
}

/// One reference execution (several may run at once).
#[derive(Debug, Clone)]
pub(super) struct RefExec {
    phase: RefPhase,
    attempt: u32,
    rejitter_until: Millis,
}

impl World {
    /// The alarm's event starts a reference execution (nothing stops a second one).
    pub(super) fn reference_alarm(&mut self, start: Millis) {
        let Controller::Reference { execs, .. } = &mut self.controller else {
            return;
        };
        execs.push(Some(RefExec {
            phase: RefPhase::Disable,
            attempt: 0,
            rejitter_until: 0,
        }));
        let exec = execs.len() - 1;
        self.schedule(start, Event::Step { exec });
    }

    /// Execution `idx`'s next step: disable, probe (doubling waits, at most 10 probes), a fixed
    /// re-jitter, then a full re-enable.
    pub(super) fn reference_step(&mut self, idx: usize) {
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
}
