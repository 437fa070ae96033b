//! The per-execution history budget: an upper bound on the Step Functions history events an
//! execution has used, carried in `state.historyEvents`, and the one table of what each path of
//! the workflow can cost.
//!
//! Step Functions fails a Standard execution at 25,000 history events, and no Catch can save it
//! (the mapping would stay disabled). So every execution continues as new before its history can
//! pass `HISTORY_EVENT_BUDGET` (default 10,000), whatever the mix of probes, re-jitter slices, ramp
//! steps and relapses:
//!
//! - `open` starts the count at [`Costs::OPENED`] (fresh, resumed and manual-close executions);
//! - every handler on the loop adds, before it answers, the worst case of the path the workflow
//!   takes from its own Task state to the next handler's Task state, both Task states included
//!   (`backoff` `wait` also pays for the probe, which therefore charges nothing, so a probe that
//!   fails with `ProbeFailed` is paid for as well);
//! - `backoff` (every loop passes through it: unhealthy probe, `ProbeFailed`, ramp relapse)
//!   continues as new when the count plus the worst case of one more full cycle
//!   ([`Budget::cycle_reserve`]) would exceed the budget;
//! - `rejitter-plan` hands each re-jitter worker a number of slices ([`Budget::plan_slices`]) that fits in
//!   what is left once the ramp, a relapse, the continue-as-new and a failure report are reserved;
//!   a worker answers `done` when it has used them. Messages it did not reach simply stay in the
//!   queue, unspread (never lost). This is charged from the plan's own output, so any path through
//!   the Map is covered;
//! - the ramp loop (`Ramp Up Consumer` ↔ `Hold Ramp Step`) does not pass through backoff, but it
//!   is bounded (`crate::ramp::Follow::max_calls`: `step` only grows and the call at the bound
//!   ends the ramp), and its worst case is reserved in full.
//!
//! ## The cost table, from the ASL shape (`cdk/src/workflow.ts`)
//!
//! Real Step Functions logs more than a local interpreter does; the table counts what the
//! service logs (API reference, `HistoryEvent.type`), and takes the worst case every time:
//! - every state: `<Type>StateEntered` + `<Type>StateExited` ([`STATE`]; a Fail state logs only
//!   `FailStateEntered`, counted as 2 too);
//! - every attempt of a Task: `TaskScheduled`, `TaskStarted`, `TaskSubmitted` and one of
//!   `TaskSucceeded` / `TaskFailed` / `TaskTimedOut` ([`TASK_ATTEMPT`]; request-response
//!   integrations usually log no `TaskSubmitted`, so this over-counts by one per attempt);
//! - attempts: every Retrier used to its `MaxAttempts` (retriers count separately, so errors that
//!   alternate between them use both): a Lambda task retries Lambda's own errors 6 times, a
//!   crashed or timed-out handler (`Lambda.Unknown`) 3 times and `Retryable` 5 times
//!   ([`LAMBDA_ATTEMPTS`] = 15), `Continue As New Execution` 6 times,
//!   `Publish Open Time` 3 times, `Report Stuck Circuit` 5 more times for any other error;
//! - an inline Map: `MapStateEntered`, `MapStateStarted`, `MapStateSucceeded|Failed|Aborted`,
//!   `MapStateExited` ([`MAP_STATE`]) and per iteration `MapIterationStarted` +
//!   `MapIterationSucceeded|Failed|Aborted` ([`MAP_ITERATION`]); the iterations' own states are
//!   logged in the execution's history too;
//! - `ExecutionStarted` and the execution's end (`ExecutionSucceeded|Failed|...`): 1 each.
//!
//! The workflow tests (`test/statemachine`) check this table against the synthesized ASL (retry
//! counts) and against the events aws-local-stepfunctions logs for the same paths.

use serde::Serialize;

use crate::config::Config;
use crate::contract::CircuitState;

/// `<Type>StateEntered` + `<Type>StateExited` of one state.
pub const STATE: u32 = 2;
/// One attempt of a Task: scheduled, started, submitted, succeeded/failed/timed out.
pub const TASK_ATTEMPT: u32 = 4;
/// `ExecutionStarted`, or the execution's end event.
pub const EXECUTION_EVENT: u32 = 1;
/// The Map state's own events: entered, started, succeeded/failed/aborted, exited.
pub const MAP_STATE: u32 = 4;
/// One Map iteration's own events: started, succeeded/failed/aborted.
pub const MAP_ITERATION: u32 = 2;
/// Attempts of a breaker Lambda task: 1 + 6 (Lambda's service errors) + 3 (`Lambda.Unknown`: a
/// crashed or timed-out handler) + 5 (`Retryable`).
pub const LAMBDA_ATTEMPTS: u32 = 15;
/// Attempts of `Continue As New Execution`: 1 + 6.
pub const CONTINUE_ATTEMPTS: u32 = 7;
/// Attempts of `Publish Open Time`: 1 + 3.
pub const METRIC_ATTEMPTS: u32 = 4;
/// Attempts of `Report Stuck Circuit`: 1 + 6 + 3 + 5 (the Lambda task's retriers) + 5 (its own
/// `States.ALL` retrier, for any other error).
pub const STUCK_ATTEMPTS: u32 = 20;
/// A re-jitter slice is allotted only if the backlog could need it: one slice per this many
/// messages per worker (a slice moves far more at the default 60 s; a slower one leaves the rest
/// of the backlog unspread, in the queue).
pub const MIN_MESSAGES_PER_SLICE: u64 = 1_000;

const fn task(attempts: u32) -> u32 {
    STATE + attempts * TASK_ATTEMPT
}

/// The worst case of each path of the workflow, in history events (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Costs {
    /// A breaker Lambda task state with every retry.
    pub lambda_task: u32,
    /// `ExecutionStarted` → `Open Circuit` → `Check For Running Recovery`: where `open` starts
    /// the count.
    pub opened: u32,
    /// `backoff` answering `wait`: `Compute Backoff` → `Route Backoff Decision` → `Back Off` →
    /// `Probe Consumer` → `Judge Probe Verdict` (the probe is paid for here).
    pub backoff_wait: u32,
    /// `backoff` answering `continue`: `Compute Backoff` → `Route Backoff Decision` →
    /// `Continue As New Execution` → `Hand Over To New Execution` → end.
    pub backoff_continue: u32,
    /// `backoff` answering `stuck`: `Compute Backoff` → `Route Backoff Decision` →
    /// `Leave Circuit Open` → end.
    pub backoff_stuck: u32,
    /// `backoff` answering `keepalive`: `Compute Backoff` → `Route Backoff Decision` (then the
    /// keep-alive plan, which pays for itself and its Map like [`Costs::plan`]).
    pub backoff_keep_alive: u32,
    /// `rejitter-plan` without the Map: `Plan Re-jitter` → `Check Re-jitter Plan` → `Start Ramp`
    /// (a keep-alive plan, `Plan Keep-Alive Pass` → `Check Keep-Alive Plan`, costs less).
    pub plan: u32,
    /// The Map's own events (its iterations are [`Costs::map_worker`] and [`Costs::slice`]).
    pub map: u32,
    /// One Map iteration without its slices: started/ended + `Worker Drained`.
    pub map_worker: u32,
    /// One re-jitter slice: `Re-jitter Slice` → `Check Worker Drained`.
    pub slice: u32,
    /// `ramp` answering `step`: `Ramp Up Consumer` → `Route Ramp Decision` → `Hold Ramp Step`.
    pub ramp_step: u32,
    /// `ramp` answering `reopen`: `Ramp Up Consumer` → `Route Ramp Decision` (then backoff).
    pub ramp_reopen: u32,
    /// `ramp` answering `done`: `Ramp Up Consumer` → `Route Ramp Decision` → `Close Circuit` →
    /// `Check Open Time` → `Publish Open Time` → `Circuit Closed` → end.
    pub ramp_done: u32,
    /// What any failure can still add: `Flag Unexpected Handler Output` → `Find Circuit State` →
    /// a `Take State …` Pass → `Report Stuck Circuit` → `Recovery Failed` → end. (The failed
    /// task itself is in its own worst case.)
    pub failure: u32,
}

impl Costs {
    /// The table for the workflow `cdk/src/workflow.ts` builds.
    pub const WORKFLOW: Costs = {
        let lambda_task = task(LAMBDA_ATTEMPTS);
        Costs {
            lambda_task,
            opened: EXECUTION_EVENT + lambda_task + STATE,
            backoff_wait: lambda_task + STATE + STATE + lambda_task + STATE,
            backoff_continue: lambda_task
                + STATE
                + task(CONTINUE_ATTEMPTS)
                + STATE
                + EXECUTION_EVENT,
            backoff_stuck: lambda_task + STATE + STATE + EXECUTION_EVENT,
            backoff_keep_alive: lambda_task + STATE,
            plan: lambda_task + STATE + STATE,
            map: MAP_STATE,
            map_worker: MAP_ITERATION + STATE,
            slice: lambda_task + STATE,
            ramp_step: lambda_task + STATE + STATE,
            ramp_reopen: lambda_task + STATE,
            ramp_done: lambda_task
                + STATE
                + lambda_task
                + STATE
                + task(METRIC_ATTEMPTS)
                + STATE
                + EXECUTION_EVENT,
            failure: STATE + STATE + STATE + task(STUCK_ATTEMPTS) + STATE + EXECUTION_EVENT,
        }
    };

    /// A re-jitter pass of `workers` workers with at most `slices` slices each (0 workers: the
    /// Map is skipped).
    pub const fn rejitter(&self, workers: u32, slices: u32) -> u32 {
        if workers == 0 {
            return 0;
        }
        self.map + workers * (self.map_worker + slices * self.slice)
    }
}

/// The table in use.
pub const COSTS: Costs = Costs::WORKFLOW;
/// Where `open` starts every execution's count.
pub const OPENED: u32 = COSTS.opened;

/// An execution's budget and what it must keep in reserve, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `HISTORY_EVENT_BUDGET`.
    pub limit: u32,
    /// `RAMP_STEPS`.
    pub ramp_steps: u32,
    /// `REJITTER_WORKERS`.
    pub workers: u32,
}

impl Budget {
    /// The budget of this configuration.
    pub fn of(config: &Config) -> Self {
        Self {
            limit: config.history_event_budget,
            ramp_steps: config.ramp.steps,
            workers: config.rejitter_workers,
        }
    }

    /// The most `Ramp Up Consumer` calls one ramp can make: the health-following ramp's bound
    /// ([`crate::ramp::Follow::max_calls`]) for its most levels (`RAMP_STEPS` + 1): one per level
    /// and one more, or the ramp's `max_intervals` and one more if that is larger.
    fn ramp_calls(&self) -> u32 {
        let levels = usize::try_from(self.ramp_steps)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        crate::ramp::Follow::default().max_calls(levels)
    }

    /// What must stay free once the Map has run: the whole ramp, then the costlier of closing and
    /// relapsing into a continue-as-new, and a failure report.
    pub fn after_rejitter_reserve(&self) -> u32 {
        let c = COSTS;
        let steps = (self.ramp_calls() - 1).saturating_mul(c.ramp_step);
        let end = (c.ramp_reopen + c.backoff_continue).max(c.ramp_done);
        steps.saturating_add(end).saturating_add(c.failure)
    }

    /// The worst case of one more cycle from `backoff` answering `wait`: the probe, a re-jitter
    /// pass of one slice per worker, the whole ramp, then closing or relapsing into a
    /// continue-as-new, and a failure report. `backoff` continues as new when this no longer fits.
    pub fn cycle_reserve(&self) -> u32 {
        let c = COSTS;
        c.backoff_wait
            .saturating_add(c.plan)
            .saturating_add(c.rejitter(self.workers, 1))
            .saturating_add(self.after_rejitter_reserve())
    }

    /// The smallest limit that holds an execution's start and one full cycle.
    pub fn min_limit(&self) -> u32 {
        OPENED.saturating_add(self.cycle_reserve())
    }

    /// The events this execution has used, as far as the state tells. A state written before the
    /// count existed (`historyEvents` absent, so 0) but with loop turns behind it is charged a
    /// full cycle per turn: an in-flight execution then continues as new soon, instead of
    /// trusting a zero.
    pub fn used(&self, state: &CircuitState) -> u32 {
        if state.history_events == 0 && state.iteration > 0 {
            return OPENED.saturating_add(state.iteration.saturating_mul(self.cycle_reserve()));
        }
        state.history_events
    }

    /// Add `events` to the state's count (saturating).
    pub fn charge(&self, state: &mut CircuitState, events: u32) {
        state.history_events = self.used(state).saturating_add(events);
    }

    /// Size a re-jitter pass of up to `workers` workers over `backlog` messages, for an execution
    /// that has used `used` events: as many slices as the backlog could need ([`slices_needed`])
    /// and as the budget leaves after the plan itself and [`Budget::after_rejitter_reserve`].
    /// Fewer workers when not even one slice each fits; none when not one fits.
    pub fn plan_slices(&self, used: u32, workers: u32, backlog: u64) -> SlicePlan {
        self.fit_slices(used, self.after_rejitter_reserve(), workers, backlog)
    }

    /// What must stay free once a keep-alive pass's Map has run: the loop is back at `backoff`,
    /// which can at worst continue as new, and a failure report.
    pub fn after_keep_alive_reserve(&self) -> u32 {
        COSTS.backoff_continue.saturating_add(COSTS.failure)
    }

    /// Size a keep-alive pass like [`Budget::plan_slices`], keeping back only
    /// [`Budget::after_keep_alive_reserve`]. `backoff` answers `keepalive` only when a whole
    /// cycle fits ([`Budget::cycle_reserve`]), which is far more, so every worker gets at least
    /// one slice.
    pub fn plan_keep_alive(&self, used: u32, workers: u32, backlog: u64) -> SlicePlan {
        self.fit_slices(used, self.after_keep_alive_reserve(), workers, backlog)
    }

    fn fit_slices(&self, used: u32, reserve: u32, workers: u32, backlog: u64) -> SlicePlan {
        let c = COSTS;
        let free = self
            .limit
            .saturating_sub(used)
            .saturating_sub(c.plan)
            .saturating_sub(reserve);
        for w in (1..=workers).rev() {
            let fixed = c.rejitter(w, 0);
            let per_slice = w * c.slice;
            if free < fixed + per_slice {
                continue;
            }
            let affordable = (free - fixed) / per_slice;
            return SlicePlan {
                workers: w,
                slices_per_worker: affordable.min(slices_needed(backlog, w)),
            };
        }
        SlicePlan {
            workers: 0,
            slices_per_worker: 0,
        }
    }
}

/// The slices each of `workers` workers could need for `backlog` messages: one per
/// [`MIN_MESSAGES_PER_SLICE`] messages of its share, at least one (0 with no worker).
pub fn slices_needed(backlog: u64, workers: u32) -> u32 {
    if workers == 0 {
        return 0;
    }
    let share = backlog.div_ceil(u64::from(workers));
    u32::try_from(share.div_ceil(MIN_MESSAGES_PER_SLICE))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// How a re-jitter pass fits in the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlicePlan {
    /// Workers to start (≤ the workers asked for; 0: skip re-jitter).
    pub workers: u32,
    /// Slices each worker may run.
    pub slices_per_worker: u32,
}

/// The table as a JSON document: `lambdas/core/history-costs.json`, which the workflow tests read
/// (kept equal by `history_costs_json_is_current`; `UPDATE_HISTORY_COSTS=1` rewrites it).
pub fn table_json() -> serde_json::Value {
    let d = Budget {
        limit: crate::config::defaults::HISTORY_EVENT_BUDGET,
        ramp_steps: crate::config::defaults::RAMP.steps,
        workers: crate::config::defaults::REJITTER_WORKERS,
    };
    serde_json::json!({
        "facts": {
            "state": STATE,
            "taskAttempt": TASK_ATTEMPT,
            "executionEvent": EXECUTION_EVENT,
            "mapState": MAP_STATE,
            "mapIteration": MAP_ITERATION,
            "lambdaAttempts": LAMBDA_ATTEMPTS,
            "continueAttempts": CONTINUE_ATTEMPTS,
            "metricAttempts": METRIC_ATTEMPTS,
            "stuckAttempts": STUCK_ATTEMPTS,
            "minMessagesPerSlice": MIN_MESSAGES_PER_SLICE,
        },
        "costs": COSTS,
        "defaults": {
            "historyEventBudget": d.limit,
            "rampSteps": d.ramp_steps,
            "rejitterWorkers": d.workers,
            "opened": OPENED,
            "cycleReserve": d.cycle_reserve(),
            "afterRejitterReserve": d.after_rejitter_reserve(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::minimal_env;
    use crate::contract::{SavedScaling, Trigger};

    fn config(extra: &[(&'static str, &str)]) -> Budget {
        let mut env = minimal_env();
        for (k, v) in extra {
            env.insert(k, (*v).to_owned());
        }
        Budget::of(&Config::from_lookup(|k| env.get(k).cloned()).unwrap())
    }

    #[test]
    fn history_costs_json_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/history-costs.json");
        let json = serde_json::to_string_pretty(&table_json()).unwrap() + "\n";
        if std::env::var_os("UPDATE_HISTORY_COSTS").is_some() {
            std::fs::write(path, &json).unwrap();
        }
        // Compared as documents: key order depends on whether another crate in the build turns on
        // serde_json's `preserve_order`, which differs between `-p breaker-core` and the workspace.
        let on_disk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
        assert_eq!(
            on_disk,
            table_json(),
            "{path} is stale: rerun with UPDATE_HISTORY_COSTS=1"
        );
    }

    #[test]
    fn the_table_counts_every_event_of_each_path() {
        let c = COSTS;
        assert_eq!(c.lambda_task, 62, "entered + 15 attempts x 4 + exited");
        assert_eq!(c.opened, 65);
        assert_eq!(c.backoff_wait, 130);
        assert_eq!(c.backoff_continue, 97);
        assert_eq!(c.slice, 64);
        assert_eq!(c.rejitter(2, 3), 4 + 2 * (4 + 3 * 64));
        assert_eq!(c.rejitter(0, 9), 0);
        assert_eq!(c.ramp_done, 149);
        assert_eq!(c.failure, 91);
    }

    #[test]
    fn the_defaults_leave_room_for_many_cycles() {
        let c = config(&[]);
        // The ramp: 31 calls (the health-following ramp's 30 intervals and the first call), 30
        // of them after the first (issue 16; the fixed schedule made 5, 4 after the first).
        assert_eq!(
            c.cycle_reserve(),
            130 + 66 + (4 + 4 * 68) + (30 * 66 + 161 + 91)
        );
        assert!(c.min_limit() < crate::config::MIN_HISTORY_EVENT_BUDGET);
    }

    #[test]
    fn the_most_expensive_configuration_fits_the_default_budget() {
        let c = config(&[("RAMP_STEPS", "100"), ("REJITTER_WORKERS", "40")]);
        assert!(c.min_limit() < crate::config::defaults::HISTORY_EVENT_BUDGET);
    }

    #[test]
    fn a_state_from_before_the_count_is_charged_a_cycle_per_turn() {
        let c = config(&[]);
        let mut s = CircuitState::opened(
            0,
            SavedScaling {
                maximum_concurrency: None,
            },
            Trigger::Alarm,
        );
        assert_eq!(c.used(&s), OPENED);
        s.history_events = 0;
        s.iteration = 3;
        assert_eq!(c.used(&s), OPENED + 3 * c.cycle_reserve());
        s.iteration = 0;
        assert_eq!(c.used(&s), 0);
        c.charge(&mut s, 7);
        assert_eq!(s.history_events, 7);
    }

    #[test]
    fn slices_fit_what_the_budget_leaves_and_what_the_backlog_needs() {
        let c = config(&[]);
        let reserve = COSTS.plan + c.after_rejitter_reserve();
        // Plenty of budget: the backlog decides (45,000 messages over 3 workers: 15 slices each).
        let p = c.plan_slices(100, 3, 45_000);
        assert_eq!(
            p,
            SlicePlan {
                workers: 3,
                slices_per_worker: 15
            }
        );
        // A small backlog still gets one slice per worker.
        assert_eq!(c.plan_slices(100, 2, 10).slices_per_worker, 1);
        // A huge backlog takes what the budget leaves, and the pass then fits exactly.
        let p = c.plan_slices(100, 4, u64::MAX);
        let pass = COSTS.rejitter(p.workers, p.slices_per_worker);
        assert!(100 + reserve + pass <= 10_000);
        assert!(100 + reserve + COSTS.rejitter(4, p.slices_per_worker + 1) > 10_000);
        // Room for two workers' single slices only.
        let used = 10_000 - reserve - COSTS.rejitter(2, 1);
        assert_eq!(
            c.plan_slices(used, 4, 1_000_000),
            SlicePlan {
                workers: 2,
                slices_per_worker: 1
            }
        );
        // No room at all: no re-jitter (the backlog stays in the queue, unspread).
        assert_eq!(c.plan_slices(10_000, 4, 5).workers, 0);
    }

    #[test]
    fn a_keep_alive_pass_allowed_by_backoff_gives_every_worker_a_slice_and_fits() {
        let c = config(&[
            ("RAMP_STEPS", "7"),
            ("REJITTER_WORKERS", "6"),
            ("HISTORY_EVENT_BUDGET", "3000"),
        ]);
        for used in (OPENED..3_000).step_by(7) {
            if used + c.cycle_reserve() > 3_000 {
                continue; // backoff continues as new, never answers keepalive
            }
            let after = used + COSTS.backoff_keep_alive;
            let p = c.plan_keep_alive(after, 6, u64::MAX);
            assert_eq!(p.workers, 6, "used {used}");
            assert!(p.slices_per_worker >= 1, "used {used}");
            let total = after
                + COSTS.plan
                + COSTS.rejitter(p.workers, p.slices_per_worker)
                + c.after_keep_alive_reserve();
            assert!(total <= 3_000, "used {used}: {total}");
        }
        assert_eq!(slices_needed(0, 0), 0);
        assert_eq!(slices_needed(0, 4), 1);
        assert_eq!(slices_needed(4_001, 4), 2);
    }

    #[test]
    fn a_cycle_allowed_by_backoff_always_fits_the_budget() {
        let c = config(&[
            ("RAMP_STEPS", "7"),
            ("REJITTER_WORKERS", "6"),
            ("HISTORY_EVENT_BUDGET", "3000"),
        ]);
        let budget = 3_000;
        for used in (OPENED..budget).step_by(7) {
            if used + c.cycle_reserve() > budget {
                continue; // backoff continues as new
            }
            // The worst cycle: probe, the plan's pass, the whole ramp, relapse and continue.
            let after_probe = used + COSTS.backoff_wait;
            let p = c.plan_slices(after_probe, 6, u64::MAX);
            assert!(
                p.workers >= 1,
                "used {used}: a cycle backoff allowed re-jitters"
            );
            let total = after_probe
                + COSTS.plan
                + COSTS.rejitter(p.workers, p.slices_per_worker)
                + c.after_rejitter_reserve();
            assert!(total <= budget, "used {used}: {total}");
        }
    }
}
