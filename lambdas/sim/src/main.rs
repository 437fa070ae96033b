//! `breaker-sim`: run the strategies on the standard scenarios, print the comparison table,
//! write SVG charts and a JSON results file.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use breaker_core::rejitter::DelayWindow;
use breaker_sim::engine::{self, RunMetrics, RunResult};
use breaker_sim::report::{SeedGroup, SeedSummary};
use breaker_sim::scenario::{self, Scenario};
use breaker_sim::strategy::{OursConfig, ReferenceConfig, Strategy};
use breaker_sim::time::{HOUR, Millis, SECOND};
use breaker_sim::{chart, report};
use clap::Parser;

/// The multi-day scenarios allocate and free millions of messages: with mimalloc (and no
/// purging, below) the full multi-seed run (`--scenario all --seeds 20`, every strategy) takes
/// ~270 s of CPU instead of ~356 s with the system allocator (issue 16's budget: 5 minutes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, enum `mi_option_e`; the Rust bindings name
/// the options around it, 14 and 16, but not this one).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Deterministic outage simulator: no breaker vs the reference sample vs ours (1-minute alarm and
/// fast trip).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Scenario name, or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seed of every run (the same for every strategy).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory for charts and results.json.
    #[arg(long, default_value = "target/sim")]
    out: PathBuf,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also run seeds `seed+1 .. seed+seeds-1` and print every metric's median and worst per
    /// scenario and strategy, written to `seeds.json` too (the table, charts and results.json
    /// stay those of `--seed`).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Strategies to run, comma-separated (no-breaker, reference, ours, ours-fast; default all).
    #[arg(long)]
    strategies: Option<String>,
    /// Experiment: ours' `backoff.initialDelay` in seconds (default the construct's).
    #[arg(long)]
    backoff_initial: Option<u64>,
    /// Experiment: ours' `backoff.maxDelay` in seconds (default the construct's).
    #[arg(long)]
    backoff_max: Option<u64>,
    /// Experiment: ours' `backoff.multiplier` (default the construct's).
    #[arg(long)]
    backoff_multiplier: Option<f64>,
    /// Experiment: ours' `backoff.longOutageMaxDelay` in seconds (default the construct's, at
    /// least `--backoff-max`; equal to it keeps the cap however long the outage).
    #[arg(long)]
    backoff_long_max: Option<u64>,
    /// Experiment: ours' `ramp.stepInterval` in seconds with the one-minute alarm (ours;
    /// default the construct's for `resolution: standard`).
    #[arg(long)]
    ramp_interval: Option<u64>,
    /// Experiment: ours-fast's `ramp.stepInterval` in seconds (default the construct's for
    /// `resolution: high`).
    #[arg(long)]
    ramp_interval_high: Option<u64>,
    /// Ours' `rejitter.maxDelay` in seconds (1–900; default the construct's, from
    /// `cdk/src/limits.json`): the longest window a plan sizes to the backlog.
    #[arg(long)]
    rejitter_max_delay: Option<u32>,
    /// Experiment: a first ramp rung at the first level's concurrency with this `BatchSize`.
    #[arg(long)]
    first_rung_batch: Option<usize>,
}

/// Ours' settings for these arguments (the construct's defaults but `--rejitter-max-delay`).
fn ours_config(args: &Args) -> Result<OursConfig, Box<dyn std::error::Error>> {
    let mut ours = OursConfig {
        first_rung_batch: args.first_rung_batch,
        ..OursConfig::default()
    };
    if let Some(v) = args.backoff_initial {
        ours.backoff.initial_seconds = v;
    }
    if let Some(v) = args.backoff_max {
        ours.backoff.max_seconds = v;
        ours.backoff.long_max_seconds = ours.backoff.long_max_seconds.max(v);
    }
    if let Some(v) = args.backoff_long_max {
        ours.backoff.long_max_seconds = v;
    }
    if let Some(v) = args.backoff_multiplier {
        ours.backoff.multiplier = v;
    }
    if let Some(v) = args.ramp_interval {
        ours.ramp_interval = v * SECOND;
    }
    if let Some(v) = args.ramp_interval_high {
        ours.ramp_interval_high = v * SECOND;
    }
    if let Some(max) = args.rejitter_max_delay {
        ours.rejitter_window = DelayWindow::new(ours.rejitter_window.min_seconds(), max)
            .map_err(|e| format!("--rejitter-max-delay: {e}"))?;
    }
    Ok(ours)
}

/// One run of `strategy` on `s` with `ours`' settings.
fn run_one(s: &Scenario, strategy: Strategy, seed: u64, ours: OursConfig) -> RunResult {
    engine::run_with(s, strategy, seed, ours, ReferenceConfig::default())
}

fn main() {
    // Keep freed memory for reuse instead of returning it to the OS and faulting it back in
    // (the kernel's page clearing was a fifth of a multi-day run's CPU). The run is short-lived.
    // SAFETY: sets a process-wide allocator option before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let scenarios: Vec<Scenario> = if args.scenario == "all" {
        scenario::standard()
    } else {
        let names: Vec<String> = scenario::standard().into_iter().map(|s| s.name).collect();
        vec![scenario::by_name(&args.scenario).ok_or_else(|| {
            format!(
                "--scenario: unknown scenario {:?}; known: all, {}",
                args.scenario,
                names.join(", ")
            )
        })?]
    };
    let ours = ours_config(&args)?;
    let strategies = strategies(&args)?;
    let started = Instant::now();
    let seeds: Vec<u64> = (args.seed..args.seed + args.seeds.max(1)).collect();
    let jobs: Vec<(usize, Strategy, u64)> = (0..scenarios.len())
        .flat_map(|i| {
            let seeds = &seeds;
            strategies
                .iter()
                .flat_map(move |&s| seeds.iter().map(move |&seed| (i, s, seed)))
        })
        .collect();
    // Heaviest first so the threads finish together.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|j| std::cmp::Reverse(scenarios[jobs[*j].0].horizon));
    // The `--seed` runs are kept whole (table, charts, results.json); the others' metrics only.
    let results: Mutex<Vec<Option<RunResult>>> = Mutex::new(vec![None; jobs.len()]);
    let metrics: Mutex<Vec<Option<RunMetrics>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&j) = order.get(k) else { break };
                    let (si, strategy, seed) = jobs[j];
                    let r = run_one(&scenarios[si], strategy, seed, ours);
                    metrics.lock().expect("no panics while holding the lock")[j] =
                        Some(r.metrics.clone());
                    if seed == args.seed {
                        results.lock().expect("no panics while holding the lock")[j] = Some(r);
                    }
                }
            });
        }
    });
    let runs: Vec<RunResult> = results
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .flatten()
        .collect();
    let metrics: Vec<RunMetrics> = metrics
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|m| m.expect("every job ran"))
        .collect();
    let elapsed = started.elapsed();

    std::fs::create_dir_all(&args.out)?;
    let n = strategies.len();
    for (i, s) in scenarios.iter().enumerate() {
        let group: Vec<RunResult> = runs[i * n..(i + 1) * n].to_vec();
        let until = chart_window(s, &group);
        let title = format!("{} — {} (seed {})", s.name, s.description, args.seed);
        std::fs::write(
            args.out.join(format!("{}.svg", s.name)),
            chart::scenario_svg(&title, &group, until),
        )?;
    }
    let json = serde_json::to_string_pretty(&report::Results {
        seed: args.seed,
        runs: &runs,
    })?;
    std::fs::write(args.out.join("results.json"), json)?;

    println!("{}", report::table(&runs));
    println!(
        "Fast trip: downstream calls during the trouble (share of no breaker's) and \
         failure→open\n"
    );
    println!("{}", report::fast_trip_table(&runs));
    println!(
        "{} runs in {:.1} s; charts and results.json in {}",
        jobs.len(),
        elapsed.as_secs_f64(),
        args.out.display()
    );
    if seeds.len() > 1 {
        let summaries: Vec<SeedSummary> = jobs
            .chunks(seeds.len())
            .zip(metrics.chunks(seeds.len()))
            .map(|(chunk, group)| {
                let (si, strategy, _) = chunk[0];
                SeedSummary::of(&SeedGroup {
                    scenario: scenarios[si].name.clone(),
                    strategy,
                    runs: seeds.iter().copied().zip(group.iter().cloned()).collect(),
                })
            })
            .collect();
        println!(
            "Over seeds {}–{} ({} runs each): median / worst (the lower middle of an even count; \
             the bad end)\n",
            seeds[0],
            seeds[seeds.len() - 1],
            seeds.len()
        );
        println!("{}", report::seeds_table(&summaries));
        std::fs::write(
            args.out.join("seeds.json"),
            serde_json::to_string_pretty(&summaries)?,
        )?;
    }
    Ok(())
}

/// The strategies `--strategies` names (all by default), in table order.
fn strategies(args: &Args) -> Result<Vec<Strategy>, Box<dyn std::error::Error>> {
    let Some(list) = &args.strategies else {
        return Ok(Strategy::ALL.to_vec());
    };
    let mut picked = Vec::new();
    for name in list.split(',').map(str::trim) {
        let s = Strategy::ALL
            .into_iter()
            .find(|s| {
                serde_json::to_value(s)
                    .ok()
                    .is_some_and(|v| v.as_str() == Some(name))
            })
            .ok_or_else(|| {
                format!(
                    "--strategies: unknown strategy {name:?}; known: no-breaker, reference, ours, \
                     ours-fast"
                )
            })?;
        picked.push(s);
    }
    Ok(Strategy::ALL
        .into_iter()
        .filter(|s| picked.contains(s))
        .collect())
}

/// Show from 0 until every strategy has settled (closed and drained), plus a margin.
fn chart_window(s: &Scenario, runs: &[RunResult]) -> Millis {
    let settled = runs
        .iter()
        .filter_map(|r| {
            let m = &r.metrics;
            let a = m.healed_to_drained_s?;
            let b = m.healed_to_closed_s.unwrap_or(0.0);
            Some(a.max(b))
        })
        .fold(0.0, f64::max);
    let end = s.healed_at + (settled * SECOND as f64 * 1.15) as Millis + 10 * 60 * SECOND;
    end.max(s.healed_at + HOUR).min(s.horizon)
}
