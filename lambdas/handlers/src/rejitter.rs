//! `rejitter-plan` and `rejitter` (see `lambdas/CONTRACT.md`): spread the queued backlog over a
//! delay window without losing or dead-lettering a message.
//!
//! [`run_plan`] reads the queue depth, skips FIFO queues, fixes the `cutoffMs` (only messages
//! sent before it are moved; see `breaker_core::rejitter` for why copies are never moved twice)
//! and sizes the worker fan-out, and gives each worker a number of slices that fits in the
//! execution's history budget (`breaker_core::history`; the state is charged with the plan and
//! the whole pass). [`run_rejitter`] is one worker's time slice: `in_flight_batches`
//! lanes run concurrently on tokio, each a three-stage pipeline (receive 10 → `SendMessageBatch`
//! copies with drawn `DelaySeconds` → `DeleteMessageBatch` the originals whose copies were
//! confirmed) whose stages run independently, joined by one-slot channels — so each lane keeps a
//! batch in every stage and moves ~10 messages per round trip.
//!
//! A FIFO queue is skipped at run time, not refused (the construct cannot always tell at synth,
//! e.g. an imported queue whose ARN is a token): [`rejitter_plan`] plans no worker and emits
//! `Re-jitter Skipped`, and the recovery goes on to the ramp. SQS refuses a per-message delay
//! on a FIFO queue, and a copy would go to the end of its message group. So is a queue whose
//! retention is under 4 × `rejitter.minDelay` (known at run time only for an imported queue):
//! its copies would come back with little or none of their retention left.
//!
//! Memory: messages may be 1 MiB each. The lanes share a byte budget derived from the function's
//! memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; `breaker_core::rejitter::memory_budget_bytes`), and
//! each lane receives only as many messages as its share holds if every one is as large as SQS
//! allows (`breaker_core::rejitter::lane_plan`). A copy takes the body and attributes of the
//! received message (moved, not cloned); the original is kept as its id and receipt handle only;
//! the send stage clones one `SendMessageBatch` (≤ 1 MiB) at a time for its attempt.
//!
//! Keep-alive passes (`breaker_core::keepalive`) use the same plan and slices with
//! `keepAlive: true`: the plan runs even when re-jitter is disabled and gives a FIFO queue no
//! workers (the backoff step warned about it); the slices copy with delay 0 (the mapping is
//! disabled, nothing to spread) and otherwise move messages exactly as re-jitter does.
//!
//! Safety rules:
//! - an original is deleted only after SQS confirmed its copy, with the handle of our receive;
//! - failed send entries are retried (not sender faults), then released with visibility 0 once
//!   the lanes stopped receiving (so this invocation does not receive them again and raise their
//!   receive count), never dropped;
//! - a failed delete leaves the original in place: the message may arrive twice, never zero times;
//! - messages sent at/after the cutoff (this recovery's copies, arrivals since the plan) that a
//!   lane receives anyway are moved fresh (`breaker_core::rejitter::Eligibility::Refresh`): a new
//!   copy with a new draw from the window (in a keep-alive pass: two slices,
//!   `near_limit_delay_seconds`), the original deleted once the copy is confirmed, so the pass's
//!   receive never stays on a message the consumer gets later; they are not progress, and a lane
//!   receiving only them ends after `EMPTY_ROUNDS_TO_DRAIN` rounds. Undated messages stay hidden
//!   for the receive's visibility timeout unless near `maxReceiveCount` (moved fresh, two slices);
//! - a worker that has used its slices answers `done`: what it did not reach stays in the queue,
//!   unspread (the consumer gets it through the ramp), never lost;
//! - the handler is invoked by Step Functions, never by the queue, so Lambda's recursive-loop
//!   detection does not apply to it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use breaker_core::config::{Config, defaults};
use breaker_core::contract::{
    self, InputError, PlanInput, RejitterInput, RejitterOutput, RejitterPlanOutput, Version,
};
use breaker_core::events::{BreakerEvent, DetailType, Measure, Measurement};
use breaker_core::history::{self, COSTS};
use breaker_core::message::{Original, OutgoingMessage};
use breaker_core::ports::{Clock, Events, PortError, Queue};
use breaker_core::rejitter::{self, DelayWindow, Eligibility};
use futures::future::join_all;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::app::App;
use crate::error::HandlerError;
use crate::ports::Ports;

/// Long-poll wait of each receive: short, so an empty queue ends the slice quickly.
pub const RECEIVE_WAIT_SECONDS: u8 = 1;
// The long poll ends well before an SDK attempt gives up.
const _: () = assert!(
    (RECEIVE_WAIT_SECONDS as u64) * 2 <= breaker_core::timeouts::SDK_ATTEMPT_TIMEOUT_SECONDS
);
/// Attempts for a send or delete entry before it is released / left in place.
pub const ATTEMPTS: u32 = 3;
/// Consecutive receives without an eligible message after which a lane counts as drained.
pub use breaker_core::rejitter::EMPTY_ROUNDS_TO_DRAIN;
/// Consecutive retryable receive errors after which a lane gives up.
pub const MAX_RECEIVE_ERRORS: u32 = 5;

/// Re-jitter settings (from `REJITTER_*` in the environment, wired by the caller).
#[derive(Debug, Clone)]
pub struct RejitterSettings {
    /// `REJITTER_ENABLED`.
    pub enabled: bool,
    /// `REJITTER_MIN_SECONDS` / `REJITTER_MAX_SECONDS`.
    pub window: DelayWindow,
    /// `REJITTER_WORKERS`: maximum parallel workers.
    pub max_workers: u32,
    /// `REJITTER_SLICE_SECONDS`: time budget of one `rejitter` invocation.
    pub slice: Duration,
    /// Concurrent lanes (batches in flight per stage) inside one invocation.
    pub in_flight_batches: usize,
    /// Visibility timeout of the worker's receives; `None`: slice + 30 s. Messages the pass
    /// leaves alone stay hidden this long.
    pub receive_visibility_seconds: Option<u32>,
    /// Seed for the delay draws (tests); `None`: seeded from the OS.
    pub seed: Option<u64>,
    /// The function's memory in bytes (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`); the lanes' byte
    /// budget is derived from it (`breaker_core::rejitter::memory_budget_bytes`).
    pub function_memory_bytes: u64,
    /// The execution's history budget, which bounds the slices of a pass.
    pub budget: history::Budget,
    /// `RAMP_START`: the concurrency of the ramp's first level, which the window is sized for
    /// (`breaker_core::rejitter::ramp_rate`).
    pub ramp_start: u32,
}

impl RejitterSettings {
    /// Default lanes per invocation.
    pub const DEFAULT_IN_FLIGHT_BATCHES: usize = 8;
    /// Function memory [`RejitterSettings::new`] assumes: the construct's default for the
    /// re-jitter function (`rejitter.memorySize`, `rejitterMemoryMiB` in `cdk/src/limits.json`).
    /// [`RejitterSettings::from_config`] takes the function's actual memory.
    pub const DEFAULT_FUNCTION_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

    /// Validated settings with the defaults for the rest.
    pub fn new(
        enabled: bool,
        min_seconds: u32,
        max_seconds: u32,
        max_workers: u32,
        slice_seconds: u32,
    ) -> Result<Self, HandlerError> {
        Ok(Self {
            enabled,
            window: DelayWindow::new(min_seconds, max_seconds)?,
            max_workers,
            slice: Duration::from_secs(u64::from(slice_seconds.max(1))),
            in_flight_batches: Self::DEFAULT_IN_FLIGHT_BATCHES,
            receive_visibility_seconds: None,
            seed: None,
            function_memory_bytes: Self::DEFAULT_FUNCTION_MEMORY_BYTES,
            budget: history::Budget {
                limit: defaults::HISTORY_EVENT_BUDGET,
                ramp_steps: defaults::RAMP.steps,
                workers: max_workers,
            },
            ramp_start: defaults::RAMP.start,
        })
    }

    /// The settings from the breaker's configuration (`REJITTER_*`).
    pub fn from_config(config: &Config) -> Result<Self, HandlerError> {
        let mut settings = Self::new(
            config.rejitter_enabled,
            config.rejitter_min_seconds,
            config.rejitter_max_seconds,
            config.rejitter_workers,
            u32::try_from(config.rejitter_slice_seconds).unwrap_or(u32::MAX),
        )?;
        settings.budget = history::Budget::of(config);
        settings.function_memory_bytes = config.function_memory_mib * 1024 * 1024;
        settings.ramp_start = config.ramp.start;
        Ok(settings)
    }

    /// Lanes and messages per receive within the memory budget (at most
    /// [`RejitterSettings::in_flight_batches`] lanes).
    pub fn lane_plan(&self) -> rejitter::LanePlan {
        rejitter::lane_plan(
            rejitter::memory_budget_bytes(self.function_memory_bytes),
            self.in_flight_batches.max(1),
        )
    }

    fn visibility(&self) -> u32 {
        self.receive_visibility_seconds
            .unwrap_or_else(|| u32::try_from(self.slice.as_secs()).unwrap_or(43_170) + 30)
            .min(43_200)
    }
}

/// `rejitter-plan`: `{ "state": <state> }` →
/// `{ version, backlog, workers, cutoffMs, slicesPerWorker, state }`. `now_ms` is the wall clock
/// (epoch ms). Fails before any queue call on malformed input; no queue call when disabled; a
/// FIFO queue gets no worker. The state is charged with the plan and the worst case of the
/// whole pass (every worker using every slice it is given).
pub async fn run_plan<Q: Queue>(
    queue: &Q,
    settings: &RejitterSettings,
    input: Value,
    now_ms: u64,
) -> Result<RejitterPlanOutput, HandlerError> {
    Ok(plan_or_skip(queue, settings, input, now_ms).await?.0)
}

/// Why re-jitter is skipped on a FIFO queue (the `reason` of `Re-jitter Skipped`).
pub const FIFO_SKIP_REASON: &str = "FIFO queue: SQS refuses a per-message DelaySeconds there and a \
     copy would go to the end of its message group, so the backlog is not spread; the ramp \
     resumes the mapping gradually instead";

/// `rejitter-plan` as the Lambda runs it: [`run_plan`], and on a FIFO queue, or when
/// `rejitter.minDelay` is over a quarter of the queue's retention (no worker), the warning
/// event `Re-jitter Skipped` naming the queue (`queueArn`), the `reason` and the `backlog`, so
/// the recovery goes on to the ramp instead of failing.
pub async fn rejitter_plan<P: Ports>(
    input: Value,
    app: &App<P>,
) -> Result<RejitterPlanOutput, HandlerError> {
    let settings = RejitterSettings::from_config(&app.config)?;
    let now_ms = app.ports.clock().now_ms();
    let (plan, skipped) = plan_or_skip(app.ports.queue(), &settings, input, now_ms).await?;
    if let Some(reason) = skipped {
        let event = BreakerEvent::for_state(
            DetailType::RejitterSkipped,
            &app.config,
            &plan.state,
            now_ms,
        )
        .with("reason", reason.as_str())
        .with("backlog", plan.backlog);
        app.ports.events().put(&event).await?;
        warn!(esm = %app.config.esm_uuid, backlog = plan.backlog, "re-jitter skipped: {reason}");
    }
    Ok(plan)
}

/// The plan, and the reason when re-jitter was skipped at run time (a FIFO queue, or a
/// configured minimum delay the queue's retention cannot hold).
async fn plan_or_skip<Q: Queue>(
    queue: &Q,
    settings: &RejitterSettings,
    input: Value,
    now_ms: u64,
) -> Result<(RejitterPlanOutput, Option<String>), HandlerError> {
    let PlanInput {
        mut state,
        keep_alive,
        ..
    } = contract::parse(input)?;
    let cutoff_ms = rejitter::cutoff_ms(now_ms);
    let budget = settings.budget;
    if keep_alive {
        return Ok((
            plan_keep_alive(queue, settings, state, cutoff_ms).await?,
            None,
        ));
    }
    if !settings.enabled {
        info!("re-jitter disabled");
        budget.charge(&mut state, COSTS.plan);
        return Ok((
            RejitterPlanOutput {
                version: Version,
                backlog: 0,
                workers: Vec::new(),
                cutoff_ms,
                slices_per_worker: 0,
                window_max_seconds: None,
                state,
            },
            None,
        ));
    }
    let q = queue.info().await?;
    let skip = if q.fifo {
        Some(FIFO_SKIP_REASON.to_owned())
    } else if !rejitter::minimum_fits_retention(settings.window, q.retention_seconds) {
        Some(format!(
            "rejitter.minDelay ({} s) is over a quarter of the queue's retention ({} s): a \
             copy's retention counts from its send, delay included, so copies delayed that long \
             would reach the consumer with little or none of it left; the backlog is not spread \
             and the ramp resumes the mapping gradually instead (lower rejitter.minDelay or \
             lengthen the queue's retention)",
            settings.window.min_seconds(),
            q.retention_seconds.unwrap_or_default()
        ))
    } else {
        None
    };
    if let Some(reason) = skip {
        budget.charge(&mut state, COSTS.plan);
        return Ok((
            RejitterPlanOutput {
                version: Version,
                backlog: q.visible,
                workers: Vec::new(),
                cutoff_ms,
                slices_per_worker: 0,
                window_max_seconds: None,
                state,
            },
            Some(reason),
        ));
    }
    let wanted = rejitter::worker_count(q.visible, settings.max_workers);
    let fit = budget.plan_slices(budget.used(&state), wanted, q.visible);
    if fit.workers < wanted {
        warn!(
            backlog = q.visible,
            wanted,
            workers = fit.workers,
            used = budget.used(&state),
            budget = budget.limit,
            "history budget leaves room for fewer re-jitter workers; the rest of the backlog stays in the queue unspread"
        );
    }
    budget.charge(
        &mut state,
        COSTS.plan + COSTS.rejitter(fit.workers, fit.slices_per_worker),
    );
    let rate = state
        .healthy_probe
        .and_then(|p| rejitter::ramp_rate(settings.ramp_start, p.messages, p.duration_ms));
    // Sized to the backlog, and within a quarter of a short retention (a copy delayed past it
    // would expire unseen).
    let window = rejitter::within_retention(
        rejitter::window_for_backlog(q.visible, rate, settings.window),
        q.retention_seconds,
    );
    info!(
        backlog = q.visible,
        workers = fit.workers,
        slices_per_worker = fit.slices_per_worker,
        cutoff_ms,
        history_events = state.history_events,
        messages_per_second = rate,
        window_min_seconds = window.min_seconds(),
        window_max_seconds = window.max_seconds(),
        "re-jitter planned"
    );
    Ok((
        RejitterPlanOutput {
            version: Version,
            backlog: q.visible,
            workers: (0..fit.workers).collect(),
            cutoff_ms,
            slices_per_worker: fit.slices_per_worker,
            window_max_seconds: Some(window.max_seconds()),
            state,
        },
        None,
    ))
}

/// The keep-alive half of `rejitter-plan` (`breaker_core::keepalive`): workers for the whole
/// visible queue, with no delay, even when re-jitter is disabled; none on a FIFO queue (the
/// backoff step announced `Messages At Risk`). Sized by the history budget like re-jitter, but
/// keeping back only what the loop needs after the pass (the next backoff continuing as new, and a
/// failure report). When the budget cannot give the backlog every slice it could need, the pass
/// still runs what fits but is not counted as done: `refreshedAtMs` is cleared, so the next
/// backoff turn (in this execution or, as the budget is then nearly spent, the next one) starts
/// another pass at once.
async fn plan_keep_alive<Q: Queue>(
    queue: &Q,
    settings: &RejitterSettings,
    mut state: contract::CircuitState,
    cutoff_ms: u64,
) -> Result<RejitterPlanOutput, HandlerError> {
    let budget = settings.budget;
    let q = queue.info().await?;
    let wanted = if q.fifo {
        0
    } else {
        rejitter::worker_count(q.visible, settings.max_workers)
    };
    let fit = budget.plan_keep_alive(budget.used(&state), wanted, q.visible);
    if fit.workers < wanted
        || fit.slices_per_worker < history::slices_needed(q.visible, fit.workers)
    {
        warn!(
            backlog = q.visible,
            wanted,
            workers = fit.workers,
            slices_per_worker = fit.slices_per_worker,
            used = budget.used(&state),
            budget = budget.limit,
            "history budget too small for the whole keep-alive pass: copying what fits, and another pass is due at once"
        );
        state.refreshed_at_ms = None;
    }
    budget.charge(
        &mut state,
        COSTS.plan + COSTS.rejitter(fit.workers, fit.slices_per_worker),
    );
    info!(
        backlog = q.visible,
        workers = fit.workers,
        slices_per_worker = fit.slices_per_worker,
        cutoff_ms,
        history_events = state.history_events,
        "keep-alive pass planned"
    );
    Ok(RejitterPlanOutput {
        version: Version,
        backlog: q.visible,
        workers: (0..fit.workers).collect(),
        cutoff_ms,
        slices_per_worker: fit.slices_per_worker,
        window_max_seconds: None,
        state,
    })
}

/// A copy and what is left of the original it replaces.
type Pair = (OutgoingMessage, Original);

enum Received {
    /// Copies to send, already split into batches; `progress`: at least one is an old message
    /// (not only refreshed copies of this recovery, `Eligibility::moves_backlog`).
    Batches {
        batches: Vec<Vec<Pair>>,
        progress: bool,
    },
    /// Messages arrived, none to move.
    NothingEligible,
    /// The queue had nothing visible.
    Empty,
    /// A retryable failure.
    Retry(PortError),
}

#[derive(Debug, Default)]
struct SendResult {
    /// (entry id, receipt handle) of originals whose copy was confirmed.
    confirmed: Vec<(String, String)>,
    released: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct LaneStats {
    moved: u64,
    failed: u64,
    delete_failed: u64,
    drained: bool,
    deadline_hit: bool,
}

struct Pass<'a, Q> {
    queue: &'a Q,
    settings: &'a RejitterSettings,
    /// The window copies are delayed over: the plan's, else the configured one.
    window: DelayWindow,
    cutoff_ms: u64,
    /// A keep-alive pass: copies get no delay.
    keep_alive: bool,
    max_receive_count: Option<u32>,
    /// Delay of a near-limit message's fresh copy (`rejitter::near_limit_delay_seconds`).
    near_limit_delay: u32,
    /// `MaxNumberOfMessages` of every receive (`rejitter::lane_plan`).
    receive_max: u8,
    visibility: u32,
    receive_deadline: Instant,
    stop: AtomicBool,
    fatal: Mutex<Option<PortError>>,
    /// Originals whose copy failed: released with visibility 0 when the lanes have stopped
    /// receiving, so this invocation does not receive them again (no receive-count churn).
    to_release: Mutex<Vec<Original>>,
}

impl<Q: Queue> Pass<'_, Q> {
    fn set_fatal(&self, e: PortError) {
        warn!(error = %e, "re-jitter stopping");
        self.stop.store(true, Ordering::SeqCst);
        let mut fatal = self
            .fatal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        fatal.get_or_insert(e);
    }

    async fn receive(&self, rng: &mut StdRng) -> Received {
        let got = self
            .queue
            .receive(self.receive_max, RECEIVE_WAIT_SECONDS, self.visibility)
            .await;
        let messages = match got {
            Ok(m) if m.is_empty() => return Received::Empty,
            Ok(m) => m,
            Err(e) if e.is_retryable() => return Received::Retry(e),
            Err(e) => {
                self.set_fatal(e);
                return Received::NothingEligible;
            }
        };
        let mut originals: HashMap<String, Original> = HashMap::new();
        let mut copies = Vec::new();
        let mut progress = false;
        for (i, m) in messages.into_iter().enumerate() {
            let eligibility = Eligibility::of(&m, self.cutoff_ms, self.max_receive_count);
            progress |= eligibility.moves_backlog();
            let Some(delay) =
                eligibility.copy_delay(&self.window, self.keep_alive, self.near_limit_delay, rng)
            else {
                continue;
            };
            let id = i.to_string();
            let (copy, original) = m.into_faithful_copy(id.clone(), delay);
            copies.push(copy);
            originals.insert(id, original);
        }
        if copies.is_empty() {
            return Received::NothingEligible;
        }
        let batches = rejitter::split_batches(copies)
            .into_iter()
            .map(|batch| {
                batch
                    .into_iter()
                    .map(|c| {
                        let original = originals.remove(&c.id).expect("every copy has an original");
                        (c, original)
                    })
                    .collect()
            })
            .collect();
        Received::Batches { batches, progress }
    }

    /// Send one batch of copies; retry failed entries; release what still failed.
    async fn send(&self, batch: Vec<Pair>) -> SendResult {
        let mut result = SendResult::default();
        let mut remaining = batch;
        let mut to_release: Vec<Original> = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let copies: Vec<OutgoingMessage> = remaining.iter().map(|(c, _)| c.clone()).collect();
            match self.queue.send_batch(copies).await {
                Ok(outcome) => {
                    let ok: HashSet<String> = outcome.succeeded.into_iter().collect();
                    let fatal: HashSet<String> = outcome
                        .failed
                        .iter()
                        .filter(|f| f.sender_fault || attempt == ATTEMPTS)
                        .map(|f| f.id.clone())
                        .collect();
                    for f in &outcome.failed {
                        warn!(entry = %f.id, code = %f.code, sender_fault = f.sender_fault, attempt, "copy not sent");
                    }
                    let mut retry = Vec::new();
                    for (copy, original) in remaining {
                        if ok.contains(&copy.id) {
                            result.confirmed.push((copy.id, original.receipt_handle));
                        } else if fatal.contains(&copy.id) {
                            to_release.push(original);
                        } else {
                            retry.push((copy, original));
                        }
                    }
                    remaining = retry;
                }
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    warn!(error = %e, attempt, "SendMessageBatch failed, retrying");
                }
                Err(e) => {
                    if e.is_retryable() {
                        warn!(error = %e, attempt, "SendMessageBatch failed, releasing");
                    } else {
                        self.set_fatal(e);
                    }
                    break;
                }
            }
            if remaining.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
        to_release.extend(remaining.into_iter().map(|(_, o)| o));
        result.released = to_release.len() as u64;
        self.to_release
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(to_release);
        result
    }

    /// Make originals whose copy failed visible again at once (called after the lanes stopped).
    async fn release(&self, originals: Vec<Original>) {
        if originals.is_empty() {
            return;
        }
        let calls = originals
            .iter()
            .map(|o| self.queue.change_visibility(&o.receipt_handle, 0));
        for (o, r) in originals.iter().zip(join_all(calls).await) {
            if let Err(e) = r {
                // Still safe: it reappears when the receive's visibility timeout ends.
                warn!(message_id = %o.message_id, error = %e, "release failed; message reappears after its visibility timeout");
            }
        }
    }

    /// Delete originals whose copies were confirmed; returns how many could not be deleted.
    async fn delete(&self, confirmed: Vec<(String, String)>) -> u64 {
        let mut not_deleted = 0;
        for chunk in confirmed.chunks(rejitter::MAX_BATCH_ENTRIES) {
            let mut remaining: Vec<(String, String)> = chunk.to_vec();
            for attempt in 1..=ATTEMPTS {
                match self.queue.delete_batch(remaining.clone()).await {
                    Ok(outcome) => {
                        let retry: HashSet<&str> = outcome
                            .failed
                            .iter()
                            .filter(|f| !f.sender_fault)
                            .map(|f| f.id.as_str())
                            .collect();
                        for f in outcome.failed.iter().filter(|f| f.sender_fault) {
                            warn!(entry = %f.id, code = %f.code, "original not deleted; its message may arrive twice");
                            not_deleted += 1;
                        }
                        remaining.retain(|(id, _)| retry.contains(id.as_str()));
                    }
                    Err(e) if e.is_retryable() => {
                        warn!(error = %e, attempt, "DeleteMessageBatch failed");
                    }
                    Err(e) => {
                        self.set_fatal(e);
                        break;
                    }
                }
                if remaining.is_empty() {
                    break;
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
            }
            if !remaining.is_empty() {
                warn!(
                    count = remaining.len(),
                    "originals not deleted; their messages may arrive twice"
                );
                not_deleted += remaining.len() as u64;
            }
        }
        not_deleted
    }

    /// Send the batches of one receive one after the other: only one batch's attempt copy and
    /// request (≤ 1 MiB each) exist at a time.
    async fn send_all(&self, batches: Vec<Vec<Pair>>) -> SendResult {
        let mut total = SendResult::default();
        for b in batches {
            let r = self.send(b).await;
            total.confirmed.extend(r.confirmed);
            total.released += r.released;
        }
        total
    }

    /// One lane: a receive loop, a send loop and a delete loop connected by one-slot channels,
    /// so each stage keeps one call in flight independently of the others.
    async fn lane(&self, lane: usize) -> LaneStats {
        let mut rng = match self.settings.seed {
            Some(seed) => StdRng::seed_from_u64(seed.wrapping_add(lane as u64)),
            None => rand::make_rng(),
        };
        let (send_tx, mut send_rx) = mpsc::channel::<Vec<Vec<Pair>>>(1);
        let (delete_tx, mut delete_rx) = mpsc::channel::<Vec<(String, String)>>(1);
        let receiving = async move {
            let mut stats = LaneStats::default();
            let mut idle_rounds = 0;
            let mut receive_errors = 0;
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
                if Instant::now() >= self.receive_deadline {
                    stats.deadline_hit = true;
                    break;
                }
                match self.receive(&mut rng).await {
                    Received::Batches { batches, progress } => {
                        receive_errors = 0;
                        if send_tx.send(batches).await.is_err() {
                            break;
                        }
                        // Only refreshed copies of this recovery: the lane has reached its own
                        // copies (they are moved fresh all the same, never left with the raised
                        // receive count).
                        idle_rounds = if progress { 0 } else { idle_rounds + 1 };
                        if idle_rounds >= EMPTY_ROUNDS_TO_DRAIN {
                            stats.drained = true;
                            break;
                        }
                    }
                    Received::NothingEligible => {
                        receive_errors = 0;
                        idle_rounds += 1;
                        if idle_rounds >= EMPTY_ROUNDS_TO_DRAIN {
                            stats.drained = true;
                            break;
                        }
                    }
                    Received::Empty => {
                        stats.drained = true;
                        break;
                    }
                    Received::Retry(e) => {
                        receive_errors += 1;
                        warn!(lane, error = %e, receive_errors, "ReceiveMessage failed");
                        if receive_errors >= MAX_RECEIVE_ERRORS {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100 << receive_errors)).await;
                    }
                }
            }
            stats
        };
        let sending = async move {
            let (mut moved, mut failed) = (0, 0);
            while let Some(batches) = send_rx.recv().await {
                let sent = self.send_all(batches).await;
                moved += sent.confirmed.len() as u64;
                failed += sent.released;
                if !sent.confirmed.is_empty() && delete_tx.send(sent.confirmed).await.is_err() {
                    break;
                }
            }
            (moved, failed)
        };
        let deleting = async move {
            let mut not_deleted = 0;
            while let Some(confirmed) = delete_rx.recv().await {
                not_deleted += self.delete(confirmed).await;
            }
            not_deleted
        };
        let (mut stats, (moved, failed), delete_failed) =
            tokio::join!(receiving, sending, deleting);
        stats.moved = moved;
        stats.failed = failed;
        stats.delete_failed = delete_failed;
        stats
    }
}

/// The `rejitter` handler: one slice ([`run_rejitter`]), then the messages it moved recorded as
/// `MessagesRejittered` (or `MessagesKeptAlive` for a keep-alive pass), also when the slice
/// failed after moving some (their copies are confirmed: those moves are done).
pub async fn rejitter<P: Ports>(
    input: Value,
    app: &App<P>,
) -> Result<RejitterOutput, HandlerError> {
    let settings = RejitterSettings::from_config(&app.config)?;
    let mut moved = None;
    let result = slice(app.ports.queue(), &settings, input, &mut moved).await;
    if let Some(Moved { keep_alive, count }) = moved {
        let measure = if keep_alive {
            Measure::MessagesKeptAlive
        } else {
            Measure::MessagesRejittered
        };
        let now = app.ports.clock().now_ms();
        let measurement = Measurement::new(measure, &app.config, count as f64, now);
        app.ports.events().measure(&measurement);
    }
    result
}

/// What a slice moved, once its input is known to be valid.
#[derive(Debug, Clone, Copy)]
struct Moved {
    keep_alive: bool,
    count: u64,
}

/// The window of a worker: `[REJITTER_MIN_SECONDS, windowMaxSeconds]` when the plan sized one,
/// else the configured window. A `windowMaxSeconds` outside the configured window (the plan never
/// makes one) fails naming the field.
fn planned_window(
    settings: &RejitterSettings,
    window_max_seconds: Option<u32>,
) -> Result<DelayWindow, InputError> {
    let configured = settings.window;
    match window_max_seconds {
        None => Ok(configured),
        Some(max) if (configured.min_seconds()..=configured.max_seconds()).contains(&max) => {
            DelayWindow::new(configured.min_seconds(), max)
                .map_err(|e| InputError::new("windowMaxSeconds", e.to_string()))
        }
        Some(max) => Err(InputError::new(
            "windowMaxSeconds",
            format!(
                "must be within the configured window {}..={} s (REJITTER_MIN_SECONDS..REJITTER_MAX_SECONDS), got {max}",
                configured.min_seconds(),
                configured.max_seconds()
            ),
        )),
    }
}

/// `rejitter`: `{ "worker": i, "cutoffMs": epochMs }` →
/// `{ version, moved, failed, remainingEstimate, done }`. Drains for at most `settings.slice`.
/// Fails before any queue call on malformed input.
pub async fn run_rejitter<Q: Queue>(
    queue: &Q,
    settings: &RejitterSettings,
    input: Value,
) -> Result<RejitterOutput, HandlerError> {
    slice(queue, settings, input, &mut None).await
}

/// [`run_rejitter`], noting in `moved` what the slice moved once its input is valid.
async fn slice<Q: Queue>(
    queue: &Q,
    settings: &RejitterSettings,
    input: Value,
    moved_out: &mut Option<Moved>,
) -> Result<RejitterOutput, HandlerError> {
    let RejitterInput {
        worker,
        cutoff_ms,
        keep_alive,
        slices_left,
        window_max_seconds,
        ..
    } = contract::parse(input)?;
    let window = planned_window(settings, window_max_seconds)?;
    if slices_left == Some(0) {
        return Err(InputError::new(
            "slicesLeft",
            "must be at least 1 (a worker with no slice left has answered done)",
        )
        .into());
    }
    let slices_left = slices_left.map(|n| n - 1);
    *moved_out = Some(Moved {
        keep_alive,
        count: 0,
    });
    let started = Instant::now();
    let before = queue.info().await?;
    if before.fifo {
        // The plan gives a FIFO queue no worker; a worker started anyway moves nothing.
        warn!("FIFO queue: a re-jitter worker moves nothing");
        return Ok(RejitterOutput {
            version: Version,
            moved: 0,
            failed: 0,
            remaining_estimate: before.visible,
            done: true,
            slices_left,
        });
    }
    let plan = settings.lane_plan();
    // Leave time after the last receive for the pipeline to drain and for the final estimate.
    let margin = (settings.slice / 5).min(Duration::from_secs(10));
    let pass = Pass {
        queue,
        settings,
        window,
        cutoff_ms,
        keep_alive,
        max_receive_count: before.max_receive_count,
        near_limit_delay: rejitter::near_limit_delay_seconds(
            before.retention_seconds,
            settings.slice.as_secs(),
        ),
        receive_max: plan.receive_max,
        visibility: settings.visibility(),
        receive_deadline: started + settings.slice.saturating_sub(margin),
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        to_release: Mutex::new(Vec::new()),
    };
    let stats = join_all((0..plan.lanes).map(|lane| pass.lane(lane))).await;
    let unsent = std::mem::take(
        &mut *pass
            .to_release
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    pass.release(unsent).await;
    let moved: u64 = stats.iter().map(|s| s.moved).sum();
    let failed: u64 = stats.iter().map(|s| s.failed).sum();
    let delete_failed: u64 = stats.iter().map(|s| s.delete_failed).sum();
    let drained = stats.iter().all(|s| s.drained);
    *moved_out = Some(Moved {
        keep_alive,
        count: moved,
    });
    if let Some(e) = pass
        .fatal
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        warn!(worker, moved, failed, delete_failed, error = %e, "re-jitter failed");
        return Err(e.into());
    }
    let remaining_estimate = match queue.info().await {
        Ok(after) => after.visible,
        Err(e) => {
            warn!(error = %e, "queue depth unknown after the slice");
            before.visible.saturating_sub(moved)
        }
    };
    let drained = drained && !stats.iter().any(|s| s.deadline_hit);
    let done = drained || slices_left == Some(0);
    if !drained && done {
        warn!(
            worker,
            remaining_estimate,
            "re-jitter worker used its slices (history budget); the rest of the backlog stays in the queue unspread"
        );
    }
    info!(
        worker,
        moved,
        failed,
        delete_failed,
        remaining_estimate,
        done,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "re-jitter slice finished"
    );
    Ok(RejitterOutput {
        version: Version,
        moved,
        failed,
        remaining_estimate,
        done,
        slices_left,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use breaker_core::message::AttributeValue;
    use breaker_core::ports::FaultKind;
    use breaker_testkit::{FakeQueue, Op};
    use serde_json::json;

    use super::*;
    use crate::testing::state_json;

    const OLD_MS: u64 = 60_000; // originals were sent a minute before the plan

    fn settings(min: u32, max: u32) -> RejitterSettings {
        let mut s = RejitterSettings::new(true, min, max, 4, 60).unwrap();
        s.seed = Some(42);
        s
    }

    fn message(i: usize) -> OutgoingMessage {
        OutgoingMessage {
            id: String::new(),
            body: format!("{{\"order\":{i}}}"),
            message_attributes: BTreeMap::from([
                (
                    "tenant".into(),
                    AttributeValue::string("String", format!("t{i}")),
                ),
                (
                    "raw".into(),
                    AttributeValue::binary("Binary", vec![1, 2, (i % 256) as u8]),
                ),
            ]),
            trace_header: Some(format!("Root=1-5759e988-{i:024x};Sampled=1")),
            delay_seconds: 0,
            fifo: None,
        }
    }

    /// A queue holding `n` messages sent a minute ago, and the cutoff of a plan made now.
    fn backlog(n: usize) -> (FakeQueue, u64) {
        let q = FakeQueue::new();
        let now = q.now_ms();
        for i in 0..n {
            q.push_sent_at(message(i), now - OLD_MS);
        }
        (q, rejitter::cutoff_ms(now))
    }

    fn input(cutoff: u64) -> Value {
        json!({ "worker": 0, "cutoffMs": cutoff })
    }

    /// A `rejitter-plan` input whose state carries a healthy probe of one message in 100 ms.
    fn timed(mut state: Value) -> Value {
        state["healthyProbe"] = json!({ "messages": 1, "durationMs": 100 });
        json!({ "state": state })
    }

    /// A `rejitter-plan` input with a full, valid circuit state.
    fn plan_input() -> Value {
        json!({ "state": state_json(1_000, 3, 1, Some(50)) })
    }

    /// The app on a queue of `n` messages sent a minute ago (and the plan's cutoff).
    fn app_with_backlog(n: usize) -> (crate::app::App<crate::testing::Fakes>, u64) {
        let (queue, cutoff) = backlog(n);
        let ports = crate::testing::Fakes {
            queue,
            ..Default::default()
        };
        let app = crate::app::App::new(crate::testing::config(&[]), ports);
        (app, cutoff)
    }

    /// Issue 18: the messages a slice moves are a metric of the circuit; a keep-alive pass's
    /// moves are counted apart; malformed input measures nothing.
    #[tokio::test(start_paused = true)]
    async fn the_handler_measures_the_messages_each_slice_moved() {
        let (app, cutoff) = app_with_backlog(35);
        let out = rejitter(input(cutoff), &app).await.unwrap();
        // A copy drawn a delay of 0 s can come straight back to the pass, which moves it fresh
        // once more (issue 16) and counts that move too: at least the 35, each at most twice.
        assert!((35..=70).contains(&out.moved), "{out:?}");
        assert_eq!(
            app.ports.events.measured(),
            vec![(Measure::MessagesRejittered, out.moved as f64)]
        );
        assert!(
            app.ports.events.events().is_empty(),
            "a metric, not an event"
        );

        let (app, cutoff) = app_with_backlog(12);
        let keep_alive = json!({ "worker": 0, "cutoffMs": cutoff, "keepAlive": true });
        // Delay 0: copies the pass receives again are moved fresh once more and counted (issue 16).
        let moved = rejitter(keep_alive, &app).await.unwrap().moved;
        assert!((12..=24).contains(&moved), "{moved}");
        assert_eq!(
            app.ports.events.measured(),
            vec![(Measure::MessagesKeptAlive, moved as f64)]
        );

        let (app, _) = app_with_backlog(3);
        assert!(rejitter(json!({ "worker": 0 }), &app).await.is_err());
        assert!(app.ports.events.measured().is_empty());
    }

    /// A slice that fails is measured too (its `moved` count, here 0 as every receive fails):
    /// moves made before a failure are done, so the handler records them on the error path.
    #[tokio::test(start_paused = true)]
    async fn a_failed_slice_is_measured_too() {
        let (app, cutoff) = app_with_backlog(30);
        app.ports
            .queue
            .fail_calls(Op::Receive, None, FaultKind::NonRetryable, "AccessDenied");
        let err = rejitter(input(cutoff), &app).await.unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable", "{err}");
        assert_eq!(
            app.ports.events.measured(),
            vec![(Measure::MessagesRejittered, 0.0)],
            "the slice ran and moved nothing"
        );
    }

    /// Issue 12: a keep-alive pass copies every message sent before its cutoff with no delay
    /// (faithfully, deleting each original after its copy is confirmed), even with re-jitter
    /// disabled, and so renews its retention: after the pass no message is older than the cutoff.
    #[tokio::test(start_paused = true)]
    async fn rejitter_keep_alive_pass_renews_every_old_message_even_when_rejitter_is_disabled() {
        let q = FakeQueue::builder().retention_seconds(120).build();
        let sent_at = q.now_ms();
        for i in 0..35 {
            q.push(message(i));
        }
        let before = q.messages();
        tokio::time::advance(Duration::from_secs(70)).await;
        let mut off = settings(5, 60);
        off.enabled = false;
        let plan = run_plan(
            &q,
            &off,
            json!({ "state": state_json(1_000, 3, 1, None), "keepAlive": true }),
            q.now_ms(),
        )
        .await
        .unwrap();
        assert_eq!((plan.backlog, plan.workers.clone()), (35, vec![0]));
        let out = run_rejitter(
            &q,
            &off,
            json!({ "worker": 0, "cutoffMs": plan.cutoff_ms, "keepAlive": true }),
        )
        .await
        .unwrap();
        // Delay 0: the copies come straight back to the pass, which moves each fresh once more
        // (two slices' delay, a quarter of this short retention: 30 s) instead of leaving it
        // hidden with a raised receive count (issue 16).
        assert_eq!((out.failed, out.done), (0, true));
        assert!((35..=70).contains(&out.moved), "{out:?}");
        let after = q.messages();
        assert_eq!(after.len(), 35);
        assert!(after.iter().all(|m| m.receive_count == 0), "{after:?}");
        for m in &after {
            assert!(
                [0, 30].contains(&m.delay_seconds),
                "no delay (the mapping is disabled), or a refresh's 30 s: {}",
                m.delay_seconds
            );
            assert!(m.sent_timestamp_ms >= plan.cutoff_ms, "a fresh copy");
            let original = before.iter().find(|o| o.body == m.body).expect("same body");
            assert_eq!(
                (&m.message_attributes, &m.trace_header),
                (&original.message_attributes, &original.trace_header)
            );
        }
        // 70 s more: the originals (sent 140 s ago) would have expired by now; the copies live.
        tokio::time::advance(Duration::from_secs(70)).await;
        assert!(sent_at + 120_000 < q.now_ms());
        q.expire_visibility();
        assert_eq!(q.info().await.unwrap().visible, 35);
        assert!(q.expired().is_empty());
    }

    /// Issue 16: the plan sizes the window from the backlog and the healthy probe's timing (ramp
    /// start 2 × 1 message in 100 ms = 20 messages/s): 100 messages are spread over 5 s, 100,000
    /// over the whole configured window; without a timing (manual close) or on a keep-alive pass
    /// the configured window / no window.
    #[tokio::test]
    async fn the_plan_sizes_the_window_to_the_backlog_at_the_ramps_first_level() {
        let (small, _) = backlog(100);
        let out = run_plan(
            &small,
            &settings(0, 300),
            timed(state_json(1_000, 3, 1, None)),
            5_000,
        )
        .await
        .unwrap();
        assert_eq!((out.backlog, out.window_max_seconds), (100, Some(5)));
        // Never below the configured minimum.
        let out = run_plan(
            &small,
            &settings(30, 300),
            timed(state_json(1_000, 3, 1, None)),
            5_000,
        )
        .await
        .unwrap();
        assert_eq!(out.window_max_seconds, Some(30));
        let (large, _) = backlog(100_000);
        let out = run_plan(
            &large,
            &settings(0, 300),
            timed(state_json(1_000, 3, 1, None)),
            5_000,
        )
        .await
        .unwrap();
        assert_eq!(out.window_max_seconds, Some(300));
        // No healthy probe timed (a manual close): the configured window.
        let out = run_plan(&small, &settings(0, 300), plan_input(), 5_000)
            .await
            .unwrap();
        assert_eq!(out.window_max_seconds, Some(300));
        // A keep-alive pass copies with no delay: no window.
        let mut keep_alive = timed(state_json(1_000, 3, 1, None));
        keep_alive["keepAlive"] = json!(true);
        let out = run_plan(&small, &settings(0, 300), keep_alive, 5_000)
            .await
            .unwrap();
        assert_eq!(out.window_max_seconds, None);
        // RAMP_START from the configuration: 10 × 1 message in 100 ms = 100 messages/s.
        let config = crate::testing::config(&[("RAMP_START", "10")]);
        let wide = RejitterSettings::from_config(&config).unwrap();
        assert_eq!(wide.ramp_start, 10);
        let out = run_plan(&small, &wide, timed(state_json(1_000, 3, 1, None)), 5_000)
            .await
            .unwrap();
        assert_eq!(out.window_max_seconds, Some(1));
    }

    /// A copy's retention counts from its send, delay included: a copy delayed past the queue's
    /// retention expires before anyone can receive it. The e2e keep-alive run (120 s retention)
    /// lost orders that way: the plan sized a 0–127 s window to a 433-message backlog. On a queue
    /// whose retention is known the window stays within a quarter of it (as the near-limit
    /// copy's delay does), so every copy is visible with most of its retention left; not below
    /// the configured minimum.
    #[tokio::test]
    async fn the_window_stays_within_a_quarter_of_a_short_retention() {
        let short = FakeQueue::builder().retention_seconds(120).build();
        for i in 0..10_000 {
            short.push(message(i));
        }
        let out = run_plan(
            &short,
            &settings(0, 300),
            timed(state_json(1_000, 3, 1, None)),
            5_000,
        )
        .await
        .unwrap();
        assert_eq!(out.window_max_seconds, Some(30), "a quarter of 120 s");
        // No healthy probe timed (a manual close): the configured window, capped the same way.
        let out = run_plan(&short, &settings(0, 300), plan_input(), 5_000)
            .await
            .unwrap();
        assert_eq!(out.window_max_seconds, Some(30));
        // A minimum of a quarter is kept.
        let out = run_plan(&short, &settings(30, 300), plan_input(), 5_000)
            .await
            .unwrap();
        assert_eq!(out.window_max_seconds, Some(30));
        // The default 4-day retention leaves the window alone.
        let long = FakeQueue::builder().retention_seconds(345_600).build();
        for i in 0..10_000 {
            long.push(message(i));
        }
        let out = run_plan(&long, &settings(0, 300), plan_input(), 5_000)
            .await
            .unwrap();
        assert_eq!(out.window_max_seconds, Some(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_draws_from_the_planned_window_and_refuses_one_outside_the_configured() {
        let (q, cutoff) = backlog(95);
        let s = settings(5, 60);
        let windowed = json!({ "worker": 0, "cutoffMs": cutoff, "windowMaxSeconds": 8 });
        let out = run_rejitter(&q, &s, windowed).await.unwrap();
        assert_eq!((out.moved, out.done), (95, true));
        let delays: HashSet<u32> = q.messages().iter().map(|m| m.delay_seconds).collect();
        assert!(
            delays.iter().all(|d| (5..=8).contains(d)) && delays.len() == 4,
            "delays over 5..=8 s: {delays:?}"
        );
        let calls = q.calls().len();
        for bad in [json!(61), json!(4), json!("8"), json!(-1)] {
            let input = json!({ "worker": 0, "cutoffMs": cutoff, "windowMaxSeconds": bad });
            match run_rejitter(&q, &s, input).await {
                Err(HandlerError::Input(e)) => assert_eq!(e.field, "windowMaxSeconds", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(q.calls().len(), calls, "a malformed window changes nothing");
    }

    #[tokio::test]
    async fn rejitter_keep_alive_plan_gives_a_fifo_queue_no_workers() {
        let q = FakeQueue::builder().fifo(true).build();
        q.push_body("a");
        let plan = run_plan(
            &q,
            &settings(0, 300),
            json!({ "state": state_json(1_000, 3, 1, None), "keepAlive": true }),
            5_000,
        )
        .await
        .unwrap();
        assert!(plan.workers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn moves_every_old_message_once_as_a_faithful_delayed_copy() {
        let (q, cutoff) = backlog(95);
        let before = q.messages();
        let out = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap();
        assert_eq!(
            out,
            RejitterOutput {
                version: Version,
                moved: 95,
                failed: 0,
                remaining_estimate: 0,
                done: true,
                slices_left: None,
            }
        );
        let after = q.messages();
        assert_eq!(after.len(), 95);
        let old_ids: HashSet<_> = before.iter().map(|m| m.message_id.clone()).collect();
        let originals: std::collections::HashMap<_, _> =
            before.iter().map(|m| (m.body.clone(), m)).collect();
        let mut copied = HashSet::new();
        for copy in &after {
            assert!(
                !old_ids.contains(&copy.message_id),
                "original {} not deleted",
                copy.body
            );
            let orig = originals
                .get(&copy.body)
                .expect("copy of an original, body intact");
            assert!(
                copied.insert(copy.body.clone()),
                "{} copied twice",
                copy.body
            );
            assert_eq!(copy.message_attributes, orig.message_attributes);
            assert_eq!(copy.trace_header, orig.trace_header);
            assert!(
                copy.sent_timestamp_ms >= cutoff,
                "copy is newer than the cutoff"
            );
            assert!(
                (5..=60).contains(&copy.delay_seconds),
                "delay {}",
                copy.delay_seconds
            );
            assert_eq!(copy.receive_count, 0);
        }
        let delays: HashSet<u32> = after.iter().map(|m| m.delay_seconds).collect();
        assert!(
            delays.len() > 20,
            "delays are spread over the window: {delays:?}"
        );
        // 10 per call: ≤ 0.3 calls per message plus the empty receives that end the slice.
        assert_eq!(q.call_count(Op::SendBatch), 10);
        assert_eq!(q.call_count(Op::DeleteBatch), 10);
    }

    /// `partial-50`'s regression (issue 16): a message sent after the cutoff that the pass
    /// receives (here: arrivals since the plan) had its receive count raised and was left hidden;
    /// a failing consumer then had one attempt fewer and the breaker dead-lettered it. Now it is
    /// moved fresh: a new copy at receive count 0, spread over the window, the original deleted.
    #[tokio::test(start_paused = true)]
    async fn messages_sent_after_the_cutoff_that_a_pass_receives_are_moved_fresh() {
        let (q, cutoff) = backlog(5);
        let fresh: Vec<String> = (100..105).map(|i| q.push(message(i))).collect();
        let out = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap();
        assert_eq!(out.moved, 10, "5 old messages and 5 refreshed");
        assert!(out.done);
        let after = q.messages();
        assert_eq!(after.len(), 10);
        for m in &after {
            assert!(!fresh.contains(&m.message_id), "replaced by a fresh copy");
            assert_eq!(m.receive_count, 0, "no receive of the pass stays on it");
            assert!(!m.in_flight);
            assert!((5..=60).contains(&m.delay_seconds), "{}", m.delay_seconds);
        }
        assert_eq!(q.call_count(Op::ChangeVisibility), 0);
    }

    /// Window 0–0: every copy is visible at once, amid the originals still to move. The pass
    /// receives its own copies; each is moved fresh, never left hidden with a raised receive
    /// count, and the lanes end once they receive only their own copies: every message is in
    /// the queue exactly once, at receive count 0, visible to the consumer.
    #[tokio::test(start_paused = true)]
    async fn copies_this_pass_receives_again_are_moved_fresh_and_the_pass_ends() {
        let (q, cutoff) = backlog(200);
        let out = run_rejitter(&q, &settings(0, 0), input(cutoff))
            .await
            .unwrap();
        assert!(out.done, "{out:?}");
        assert!(out.moved >= 200, "{out:?}");
        let bodies: HashSet<_> = q.messages().into_iter().map(|m| m.body).collect();
        assert_eq!(bodies.len(), 200);
        assert_eq!(q.len(), 200);
        assert!(
            q.messages()
                .iter()
                .all(|m| m.receive_count == 0 && !m.in_flight),
            "a receive of the pass stayed on a message"
        );
        assert!(q.dead_lettered().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn partial_send_failure_keeps_the_original_in_the_queue() {
        let (q, cutoff) = backlog(30);
        let poison = message(7).body;
        let p = poison.clone();
        q.fail_send_entries(move |m| m.body == p, None, "InternalError", false);
        let out = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap();
        assert_eq!((out.moved, out.failed), (29, 1));
        let after = q.messages();
        assert_eq!(after.len(), 30, "nothing lost");
        let kept: Vec<_> = after.iter().filter(|m| m.body == poison).collect();
        assert_eq!(kept.len(), 1);
        assert!(
            kept[0].sent_timestamp_ms < cutoff,
            "it is the original, not a copy"
        );
        assert!(!kept[0].in_flight, "released with visibility 0");
        assert_eq!(
            kept[0].receive_count, 1,
            "released once, not received again"
        );
        assert_eq!(q.call_count(Op::ChangeVisibility), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_entry_and_call_failures_are_retried() {
        let (q, cutoff) = backlog(40);
        let flaky = message(3).body;
        q.fail_send_entries(move |m| m.body == flaky, Some(1), "InternalError", false);
        q.fail_calls(
            Op::SendBatch,
            Some(1),
            FaultKind::Retryable,
            "RequestThrottled",
        );
        q.fail_calls(
            Op::DeleteBatch,
            Some(1),
            FaultKind::Retryable,
            "ServiceUnavailable",
        );
        let out = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap();
        assert_eq!((out.moved, out.failed), (40, 0));
        assert!(
            q.messages().iter().all(|m| m.sent_timestamp_ms >= cutoff),
            "all moved"
        );
        assert_eq!(q.len(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn delete_failure_may_duplicate_but_never_loses() {
        let (q, cutoff) = backlog(20);
        let sticky = message(11).body;
        let s = sticky.clone();
        q.fail_delete_entries(move |m| m.body == s, None, "InternalError");
        let out = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap();
        assert_eq!(out.moved, 20);
        let after = q.messages();
        let copies: Vec<_> = after.iter().filter(|m| m.body == sticky).collect();
        assert_eq!(
            copies.len(),
            2,
            "original kept and copy sent: duplicated, not lost"
        );
        assert_eq!(after.len(), 21);
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_send_error_fails_without_deleting_anything() {
        let (q, cutoff) = backlog(25);
        q.fail_calls(Op::SendBatch, None, FaultKind::NonRetryable, "AccessDenied");
        let err = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable");
        assert_eq!(q.call_count(Op::DeleteBatch), 0);
        assert_eq!(q.len(), 25);
        assert!(
            q.messages().iter().all(|m| m.sent_timestamp_ms < cutoff),
            "originals only"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_message_near_the_receive_limit_is_moved_fresh_not_dead_lettered() {
        let q = FakeQueue::builder().max_receive_count(3).build();
        let cutoff = rejitter::cutoff_ms(q.now_ms());
        tokio::time::advance(Duration::from_secs(5)).await;
        let id = q.push(message(1)); // newer than the cutoff
        for _ in 0..2 {
            q.receive(1, 0, 0).await.unwrap(); // the consumer failed it twice
        }
        let out = run_rejitter(&q, &settings(5, 60), input(cutoff))
            .await
            .unwrap();
        assert_eq!(out.moved, 1);
        let after = q.messages();
        assert_eq!(after.len(), 1);
        assert_ne!(after[0].message_id, id, "a fresh copy replaced it");
        assert_eq!(after[0].receive_count, 0);
        assert!(
            (5..=60).contains(&after[0].delay_seconds),
            "spread over the window like any refreshed message: {}",
            after[0].delay_seconds
        );
        assert!(q.dead_lettered().is_empty());
    }

    /// Issue 13 item 5: at a low `maxReceiveCount` every copy that comes back during the pass is
    /// "near the limit" the moment the pass receives it; moved with no delay it came straight
    /// back and was moved again until the slice deadline (the Map looped, the mapping stayed
    /// disabled). A pass over a backlog at maxReceiveCount 1, 2 and 3 ends drained within its
    /// slice (own copies received again are moved fresh but are not progress, so the lanes end),
    /// leaves each message exactly once and dead-letters nothing.
    #[tokio::test(start_paused = true)]
    async fn a_pass_at_max_receive_count_1_2_and_3_ends_drained_and_dead_letters_nothing() {
        for max in [1, 2, 3] {
            let q = FakeQueue::builder().max_receive_count(max).build();
            let now = q.now_ms();
            for i in 0..30 {
                q.push_sent_at(message(i), now - OLD_MS);
            }
            let cutoff = rejitter::cutoff_ms(now);
            let out = run_rejitter(&q, &settings(0, 1), input(cutoff))
                .await
                .unwrap();
            assert!(out.done, "max {max}: the pass never drained: {out:?}");
            // Each original once, plus own copies received again and moved fresh (issue 16),
            // until the lanes see only their own copies.
            assert!(
                out.moved >= 30,
                "max {max}: moved {} for 30 originals",
                out.moved
            );
            assert!(q.dead_lettered().is_empty(), "max {max}");
            let mut bodies: Vec<String> = q.messages().into_iter().map(|m| m.body).collect();
            bodies.sort();
            let mut want: Vec<String> = (0..30).map(|i| message(i).body).collect();
            want.sort();
            assert_eq!(bodies, want, "max {max}: each message exactly once");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slice_ends_at_its_time_budget_and_reports_not_done() {
        let (q, cutoff) = backlog(5_000);
        q.set_latency(Duration::from_millis(100));
        let mut s = settings(5, 60);
        s.slice = Duration::from_secs(5);
        let out = run_rejitter(&q, &s, input(cutoff)).await.unwrap();
        assert!(!out.done);
        assert!(out.moved > 0 && out.moved < 5_000, "moved {}", out.moved);
        assert_eq!(out.remaining_estimate, 5_000 - out.moved);
        assert_eq!(q.len(), 5_000, "every message either moved or still there");
    }

    /// The app `rejitter_plan` runs with on `queue`, the test configuration plus `env`, and the
    /// events it puts.
    fn planning_app(
        queue: &FakeQueue,
        env: &[(&str, &str)],
    ) -> (App<crate::testing::Fakes>, crate::testing::FakeEvents) {
        let events = crate::testing::FakeEvents::default();
        let ports = crate::testing::Fakes {
            queue: queue.clone(),
            events: events.clone(),
            clock: crate::testing::FixedClock::at(1_700_000_000_000),
            ..crate::testing::Fakes::default()
        };
        (App::new(crate::testing::config(env), ports), events)
    }

    /// A configured minimum over a quarter of the queue's retention cannot be honoured without
    /// copies reaching the consumer with little or none of their retention left (a copy's
    /// retention counts from its send, delay included): with `rejitter.minDelay` 60 s on a queue
    /// of SQS's shortest retention, 60 s, every copy expired before it was visible. Re-jitter is
    /// skipped instead, as on a FIFO queue: no worker, `Re-jitter Skipped` naming both figures,
    /// the messages left where they are, and the ramp resumes the mapping gradually.
    #[tokio::test(start_paused = true)]
    async fn a_minimum_delay_over_a_quarter_of_the_retention_skips_re_jitter_naming_it() {
        for (retention, min) in [(60, 60), (120, 45)] {
            let q = FakeQueue::builder().retention_seconds(retention).build();
            for i in 0..100 {
                q.push(message(i));
            }
            let min_text = min.to_string();
            let (app, events) = planning_app(&q, &[("REJITTER_MIN_SECONDS", min_text.as_str())]);
            let plan = rejitter_plan(plan_input(), &app).await.unwrap();
            assert!(plan.workers.is_empty(), "retention {retention}: {plan:?}");
            assert_eq!((plan.backlog, plan.window_max_seconds), (100, None));
            assert_eq!(events.detail_types(), vec![DetailType::RejitterSkipped]);
            let reason = events.events()[0].detail["reason"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                reason.contains(&format!("rejitter.minDelay ({min} s)"))
                    && reason.contains(&format!("retention ({retention} s)")),
                "{reason}"
            );
            assert_eq!(q.len(), 100, "nothing moved");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_queue_is_skipped_with_a_warning_event_and_no_worker_instead_of_failing() {
        let q = FakeQueue::builder().fifo(true).build();
        for i in 0..3 {
            q.push(OutgoingMessage {
                fifo: Some(breaker_core::message::FifoIds {
                    group_id: format!("g{}", i % 2),
                    deduplication_id: i.to_string(),
                }),
                ..message(i)
            });
        }
        let (app, events) = planning_app(&q, &[]);
        let plan = rejitter_plan(plan_input(), &app).await.unwrap();
        assert!(plan.workers.is_empty(), "no worker on a FIFO queue");
        assert_eq!(plan.backlog, 3);
        assert_eq!(events.detail_types(), vec![DetailType::RejitterSkipped]);
        let detail = &events.events()[0].detail;
        assert!(detail["reason"].as_str().unwrap().contains("FIFO"));
        assert_eq!(detail["queueArn"], crate::testing::TEST_QUEUE_ARN);
        assert_eq!(detail["backlog"], 3);
        // A worker started anyway moves nothing and is done.
        let out = run_rejitter(&q, &settings(5, 60), input(1)).await.unwrap();
        assert!(out.done && out.moved == 0);
        assert_eq!(q.len(), 3);
        assert!(q.calls().iter().all(|op| *op == Op::Info));
    }

    #[tokio::test]
    async fn malformed_rejitter_input_names_the_field_and_calls_nothing() {
        let q = FakeQueue::new();
        let s = settings(5, 60);
        let cases = [
            (
                json!({"worker": 0}),
                "invalid input at `cutoffMs`: missing field `cutoffMs`",
            ),
            (
                json!({"worker": "x", "cutoffMs": 5}),
                "invalid input at `worker`: invalid type: string \"x\"",
            ),
            (
                json!({"worker": 0, "cutoffMs": -1}),
                "invalid input at `cutoffMs`: invalid value: integer `-1`",
            ),
            (
                json!({"worker": 0, "cutoffMs": 5, "state": state_json(1_000, 0, 0, None)}),
                "invalid input at `state`: unknown field `state`",
            ),
            (
                json!([1, 2]),
                "invalid input at `.`: expected a JSON object, got an array",
            ),
        ];
        for (doc, expected) in cases {
            let err = run_rejitter(&q, &s, doc.clone()).await.unwrap_err();
            assert!(matches!(err, HandlerError::Input(_)), "{doc}: {err:?}");
            assert_eq!(err.error_type(), "NonRetryable");
            assert!(err.to_string().starts_with(expected), "{doc}: {err}");
        }
        assert!(q.calls().is_empty());
    }

    #[tokio::test]
    async fn malformed_plan_input_names_the_field_and_calls_nothing() {
        let q = FakeQueue::new();
        let s = settings(5, 60);
        let with_state = |edit: &dyn Fn(&mut Value)| {
            let mut doc = plan_input();
            edit(&mut doc["state"]);
            doc
        };
        let plans = [
            (json!({}), "invalid input at `state`: missing field `state`"),
            (
                json!({"state": 3}),
                "invalid input at `state`: invalid type: integer `3`",
            ),
            (
                json!({"state": {"version": 1}}),
                "invalid input at `state.openedAtMs`: missing field `openedAtMs`",
            ),
            (
                with_state(&|st| st["version"] = json!(2)),
                "invalid input at `state.version`: unsupported version 2",
            ),
            (
                with_state(&|st| st["attempt"] = json!("three")),
                "invalid input at `state.attempt`: invalid type: string",
            ),
            (
                with_state(&|st| st["backlog"] = json!(7)),
                "invalid input at `state.backlog`: unknown field `backlog`",
            ),
            (
                json!({"state": state_json(1_000, 0, 0, None), "cutoffMs": 5}),
                "invalid input at `cutoffMs`: unknown field `cutoffMs`",
            ),
        ];
        for (doc, expected) in plans {
            let err = run_plan(&q, &s, doc.clone(), 10).await.unwrap_err();
            assert!(matches!(err, HandlerError::Input(_)), "{doc}: {err:?}");
            assert_eq!(err.error_type(), "NonRetryable");
            assert!(err.to_string().starts_with(expected), "{doc}: {err}");
        }
        assert!(q.calls().is_empty());
    }

    #[test]
    fn invalid_window_is_a_configuration_error_naming_the_variable() {
        let err = RejitterSettings::new(true, 0, 1_000, 4, 60).unwrap_err();
        assert_eq!(err.error_type(), "NonRetryable");
        assert!(err.to_string().contains("REJITTER_MAX_SECONDS"), "{err}");
        let d: lambda_runtime::Diagnostic = err.into();
        assert_eq!(d.error_type, "NonRetryable");
    }

    #[tokio::test]
    async fn plan_sizes_workers_from_the_backlog_and_charges_the_state_with_the_pass() {
        let q = FakeQueue::new();
        for i in 0..45_000 {
            q.push_body(i.to_string());
        }
        let mut state = state_json(5, 3, 2, None);
        state["historyEvents"] = json!(1_000);
        let out = run_plan(
            &q,
            &settings(0, 300),
            json!({ "state": state.clone() }),
            1_700_000_000_000,
        )
        .await
        .unwrap();
        // 15,000 messages per worker: 15 slices each at the floor of 1,000 messages a slice.
        let charged = 1_000 + COSTS.plan + COSTS.rejitter(3, 15);
        state["historyEvents"] = json!(charged);
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({
                "version": 1,
                "backlog": 45_000,
                "workers": [0, 1, 2],
                "cutoffMs": 1_699_999_999_000u64,
                "slicesPerWorker": 15,
                // No healthy probe timed in this state: the configured window's top.
                "windowMaxSeconds": 300,
                "state": state,
            })
        );
    }

    #[tokio::test]
    async fn plan_gives_fewer_slices_and_workers_when_the_history_budget_is_nearly_spent() {
        let q = FakeQueue::new();
        for i in 0..45_000 {
            q.push_body(i.to_string());
        }
        let s = settings(0, 300);
        let b = s.budget;
        // Room for the plan, the reserve after the pass and one slice of one worker only.
        let used = b.limit - COSTS.plan - b.after_rejitter_reserve() - COSTS.rejitter(1, 1);
        let mut state = state_json(5, 3, 2, None);
        state["historyEvents"] = json!(used);
        let out = run_plan(&q, &s, json!({ "state": state }), 1_700_000_000_000)
            .await
            .unwrap();
        assert_eq!((out.workers, out.slices_per_worker), (vec![0], 1));
        assert!(out.state.history_events + b.after_rejitter_reserve() <= b.limit);
        // No room at all: no worker, the backlog stays in the queue.
        let mut state = state_json(5, 3, 2, None);
        state["historyEvents"] = json!(b.limit - 10);
        let out = run_plan(&q, &s, json!({ "state": state }), 1_700_000_000_000)
            .await
            .unwrap();
        assert!(out.workers.is_empty());
        assert_eq!(q.len(), 45_000);
    }

    #[tokio::test]
    async fn keep_alive_plan_keeps_back_only_the_loop_and_a_capped_pass_stays_due() {
        let q = FakeQueue::new();
        for i in 0..45_000 {
            q.push_body(i.to_string());
        }
        let s = settings(0, 300);
        let b = s.budget;
        let keep_alive = |used: u32| {
            let mut state = state_json(5, 3, 2, None);
            state["historyEvents"] = json!(used);
            state["refreshedAtMs"] = json!(1_699_000_000_000u64);
            json!({ "state": state, "keepAlive": true })
        };
        // Plenty of budget: every slice the backlog could need (15 per worker), the pass counted.
        let out = run_plan(&q, &s, keep_alive(1_000), 1_700_000_000_000)
            .await
            .unwrap();
        assert_eq!((out.workers.len(), out.slices_per_worker), (3, 15));
        assert_eq!(out.state.refreshed_at_ms, Some(1_699_000_000_000));
        assert_eq!(
            out.state.history_events,
            1_000 + COSTS.plan + COSTS.rejitter(3, 15)
        );
        // Only the loop's own reserve is kept back (not the ramp's): a state re-jitter could give
        // one slice of one worker still gets a keep-alive pass of every worker.
        let used = b.limit - COSTS.plan - b.after_rejitter_reserve() - COSTS.rejitter(1, 1);
        let out = run_plan(&q, &s, keep_alive(used), 1_700_000_000_000)
            .await
            .unwrap();
        assert_eq!(out.workers.len(), 3);
        assert!(out.slices_per_worker < 15);
        assert!(out.state.history_events + b.after_keep_alive_reserve() <= b.limit);
        // Capped: the pass copies what fits but is not counted, so the next turn passes again.
        assert_eq!(out.state.refreshed_at_ms, None);
    }

    #[tokio::test(start_paused = true)]
    async fn worker_answers_done_when_its_slices_are_used_and_leaves_the_rest_in_the_queue() {
        let (q, cutoff) = backlog(5_000);
        q.set_latency(Duration::from_millis(100));
        let mut s = settings(5, 60);
        s.slice = Duration::from_secs(5);
        let two_left = json!({"worker": 0, "cutoffMs": cutoff, "slicesLeft": 2});
        let out = run_rejitter(&q, &s, two_left).await.unwrap();
        assert_eq!((out.done, out.slices_left), (false, Some(1)));
        let last = json!({"worker": 0, "cutoffMs": cutoff, "slicesLeft": 1});
        let out = run_rejitter(&q, &s, last).await.unwrap();
        assert_eq!((out.done, out.slices_left), (true, Some(0)));
        assert!(out.remaining_estimate > 0, "not drained");
        assert_eq!(q.len(), 5_000, "every message either moved or still there");
        let none_left = json!({"worker": 0, "cutoffMs": cutoff, "slicesLeft": 0});
        let calls = q.calls().len();
        match run_rejitter(&q, &s, none_left).await {
            Err(HandlerError::Input(e)) => assert_eq!(e.field, "slicesLeft"),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.calls().len(), calls);
    }

    #[test]
    fn the_assumed_memory_is_the_constructs_default_and_the_config_overrides_it() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cdk/src/limits.json");
        let table: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mib = table["settings"]["rejitterMemoryMiB"]["default"]
            .as_u64()
            .unwrap();
        assert_eq!(
            RejitterSettings::DEFAULT_FUNCTION_MEMORY_BYTES,
            mib * 1024 * 1024
        );
        let s = settings(0, 300);
        assert_eq!(
            s.lane_plan(),
            rejitter::LanePlan {
                lanes: 8,
                receive_max: 10
            }
        );
        let config = crate::testing::config(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]);
        let small = RejitterSettings::from_config(&config).unwrap();
        assert_eq!(small.function_memory_bytes, 128 * 1024 * 1024);
        assert_eq!(
            small.lane_plan(),
            rejitter::LanePlan {
                lanes: 8,
                receive_max: 1
            }
        );
    }

    #[tokio::test]
    async fn plan_has_no_workers_for_an_empty_queue_or_when_disabled() {
        let q = FakeQueue::new();
        let out = run_plan(&q, &settings(0, 300), plan_input(), 5_000)
            .await
            .unwrap();
        assert!(out.workers.is_empty());
        assert_eq!(out.backlog, 0);
        q.push_body("x");
        let mut off = settings(0, 300);
        off.enabled = false;
        let calls = q.calls().len();
        let out = run_plan(&q, &off, plan_input(), 5_000).await.unwrap();
        assert!(out.workers.is_empty());
        assert_eq!(out.cutoff_ms, rejitter::cutoff_ms(5_000));
        assert_eq!(q.calls().len(), calls, "no queue call when disabled");
    }
}

#[cfg(test)]
mod moto_tests {
    use std::collections::{BTreeMap, HashMap};
    use std::time::{SystemTime, UNIX_EPOCH};

    use breaker_aws::sqs::SqsQueue;
    use breaker_core::message::AttributeValue;
    use breaker_testkit::MotoServer;
    use futures::StreamExt;
    use serde_json::json;

    use super::*;
    use crate::testing::state_json;

    const N: usize = 5_000;

    fn message(i: usize) -> OutgoingMessage {
        OutgoingMessage {
            id: (i % 10).to_string(),
            body: format!("{{\"order\":{i}}}"),
            message_attributes: BTreeMap::from([
                (
                    "tenant".into(),
                    AttributeValue::string("String", format!("t{i}")),
                ),
                (
                    "amount".into(),
                    AttributeValue::string("Number", format!("{}.5", i * 3)),
                ),
                (
                    "raw".into(),
                    AttributeValue::binary("Binary", vec![0, 255, (i % 256) as u8]),
                ),
            ]),
            trace_header: Some(format!("Root=1-5759e988-{i:024x};Sampled=1")),
            fifo: None,
            delay_seconds: 0,
        }
    }

    fn order(body: &str) -> usize {
        body.trim_start_matches("{\"order\":")
            .trim_end_matches('}')
            .parse()
            .expect("order body")
    }

    fn epoch_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// Seed `count` messages (orders `first..first + count`) into a new queue, re-jitter them
    /// with a 1–3 s window, then drain like a consumer and check every message.
    async fn rejitter_on_moto(sqs: &aws_sdk_sqs::Client, name: &str, first: usize, count: usize) {
        let url = sqs.create_queue().queue_name(name).send().await.unwrap();
        let queue = SqsQueue::new(sqs.clone(), url.queue_url.unwrap());
        let batches: Vec<Vec<OutgoingMessage>> = (first..first + count)
            .step_by(10)
            .map(|b| (b..b + 10).map(message).collect())
            .collect();
        let seeded: Vec<_> = futures::stream::iter(batches)
            .map(|b| queue.send_batch(b))
            .buffer_unordered(4)
            .collect()
            .await;
        assert!(
            seeded
                .iter()
                .all(|r| r.as_ref().is_ok_and(|o| o.succeeded.len() == 10))
        );
        // Let the cutoff's skew margin pass so every seeded message is older than the cutoff.
        tokio::time::sleep(Duration::from_millis(1_200)).await;

        let mut settings = RejitterSettings::new(true, 1, 3, 4, 60).unwrap();
        // Shorter than the production default (slice + 30 s) so that anything the pass left
        // hidden reappears soon for the drain below, yet far longer than a
        // batch's receive → copy → delete on a busy moto: an original whose visibility ran out
        // before its delete would be received and copied a second time (a duplicate, by design
        // never a loss), which this test counts as a failure.
        settings.receive_visibility_seconds = Some(30);
        settings.in_flight_batches = 4;
        let plan = run_plan(
            &queue,
            &settings,
            json!({ "state": state_json(epoch_ms(), 1, 1, None) }),
            epoch_ms(),
        )
        .await
        .unwrap();
        assert_eq!(plan.backlog, count as u64);
        assert_eq!(plan.workers, vec![0]);
        let cutoff = plan.cutoff_ms;

        let (mut moved, mut rounds) = (0, 0);
        loop {
            let input = json!({"worker": 0, "cutoffMs": cutoff});
            let started = std::time::Instant::now();
            let out = run_rejitter(&queue, &settings, input).await.unwrap();
            eprintln!("{name}: slice {rounds}: {out:?} in {:?}", started.elapsed());
            assert_eq!(out.failed, 0);
            moved += out.moved;
            rounds += 1;
            if out.done || rounds == 20 {
                break;
            }
        }
        // Every original once, plus the copies of its own the pass received again and moved
        // fresh (issue 16: never left hidden with a raised receive count).
        assert!(moved >= count as u64, "moved {moved} of {count}");

        // Drain like a consumer (received messages stay hidden, so a second delivery of any
        // order would show up as a duplicate): every message once, a copy, delayed, faithful.
        let mut seen: HashMap<usize, ()> = HashMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        while seen.len() < count && std::time::Instant::now() < deadline {
            for m in queue.receive(10, 1, 900).await.unwrap() {
                let i = order(&m.body);
                assert!(seen.insert(i, ()).is_none(), "order {i} delivered twice");
                let expected = message(i);
                assert_eq!(
                    m.message_attributes, expected.message_attributes,
                    "order {i}"
                );
                assert_eq!(
                    m.trace_header(),
                    expected.trace_header.as_deref(),
                    "order {i}"
                );
                let sent = m.sent_timestamp_ms().unwrap();
                assert!(sent >= cutoff, "order {i} is a copy, sent after the cutoff");
                let first: u64 = m.attributes["ApproximateFirstReceiveTimestamp"]
                    .parse()
                    .unwrap();
                assert!(
                    first >= sent + 1_000,
                    "order {i} visible before its ≥ 1 s delay"
                );
            }
        }
        assert_eq!(seen.len(), count, "every message arrived");
        assert!(
            queue.receive(10, 2, 900).await.unwrap().is_empty(),
            "no duplicate or leftover"
        );
        let info = queue.info().await.unwrap();
        assert_eq!(
            (info.visible, info.in_flight, info.delayed),
            (0, count as u64, 0)
        );
    }

    /// Issue 13 item 5 on moto: a queue with a DLQ at maxReceiveCount 1, 2 and 3; a pass over 30
    /// messages with a 0–1 s window (copies come back during the slice) ends drained, dead-letters
    /// nothing, and leaves every order exactly once. (With the near-limit copy sent undelayed it
    /// failed: the slice moved its own copies until its deadline and answered not done.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn moto_a_pass_at_max_receive_count_1_2_and_3_ends_and_dead_letters_nothing() {
        use aws_sdk_sqs::types::QueueAttributeName;
        let moto = MotoServer::start();
        let sqs = moto.sqs().await;
        for max in [1u32, 2, 3] {
            let dlq = sqs
                .create_queue()
                .queue_name(format!("low-{max}-dlq"))
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap();
            let dlq_arn = sqs
                .get_queue_attributes()
                .queue_url(&dlq)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()[&QueueAttributeName::QueueArn]
                .clone();
            let url = sqs
                .create_queue()
                .queue_name(format!("low-{max}"))
                .attributes(
                    QueueAttributeName::RedrivePolicy,
                    json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max }).to_string(),
                )
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap();
            let queue = SqsQueue::new(sqs.clone(), url);
            for b in (0..30).step_by(10) {
                let out = queue
                    .send_batch((b..b + 10).map(message).collect())
                    .await
                    .unwrap();
                assert_eq!(out.succeeded.len(), 10);
            }
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            let mut settings = RejitterSettings::new(true, 0, 1, 4, 20).unwrap();
            settings.receive_visibility_seconds = Some(30);
            let cutoff = rejitter::cutoff_ms(epoch_ms());
            let out = run_rejitter(&queue, &settings, json!({"worker": 0, "cutoffMs": cutoff}))
                .await
                .unwrap();
            assert!(out.done, "max {max}: not drained: {out:?}");
            // Each original once, plus own copies received again and moved fresh.
            assert!(out.moved >= 30, "max {max}: {out:?}");
            let dlq = SqsQueue::new(sqs.clone(), dlq);
            let d = dlq.info().await.unwrap();
            assert_eq!(
                d.visible + d.in_flight + d.delayed,
                0,
                "max {max}: dead-lettered"
            );
            let q = queue.info().await.unwrap();
            assert_eq!(q.visible + q.in_flight + q.delayed, 30, "max {max}: {q:?}");
        }
    }

    /// 5,000 messages in one queue. Runs on the local cloud's moto launcher (see
    /// `breaker_testkit::moto`), whose SQS speed patches keep moto 5.2.5's per-message queue scans
    /// cheap; on plain moto this test takes many minutes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn moto_5000_messages_each_arrive_exactly_once_after_their_delay_with_attributes() {
        let moto = MotoServer::start();
        let sqs = moto.sqs().await;
        rejitter_on_moto(&sqs, "rejitter-5000", 0, N).await;
    }
}
