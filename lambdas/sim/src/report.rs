//! The comparison table (Markdown) and the JSON results file.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::{RunMetrics, RunResult};
use crate::strategy::Strategy;

/// Human duration: `45s`, `3m20s`, `2h05m`, `3d04h`; `never` for `None`.
pub fn duration(s: Option<f64>) -> String {
    let Some(s) = s else { return "never".into() };
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The comparison table, one row per run, in Markdown.
pub fn table(runs: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | strategy | calls during outage | dead-lettered (by breaker) | lost | duplicates \
         | failure→open | healed→closed | healed→drained | peak load / capacity | re-trips \
         | transitions | GB-s |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in runs {
        let m = &r.metrics;
        let open = match m.failure_to_open_s {
            Some(_) => duration(m.failure_to_open_s),
            None => "-".into(),
        };
        let closed = if m.stuck {
            "stuck open".to_string()
        } else if m.opens == 0 {
            "-".to_string()
        } else {
            duration(m.healed_to_closed_s)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} / s ({:.2}×) | {} | {} | {:.0} |",
            r.scenario,
            r.strategy.label(),
            m.calls_during_outage,
            m.dead_lettered,
            m.dead_lettered_by_breaker,
            m.lost,
            m.duplicates,
            open,
            closed,
            duration(m.healed_to_drained_s),
            m.peak_load_after_healed,
            m.peak_load_ratio,
            m.retrips,
            m.state_transitions,
            m.consumer_gb_s + m.breaker_gb_s,
        );
    }
    out
}

/// The fast trip at a glance, one row per scenario: downstream calls during the trouble as a
/// share of no breaker's, and trouble start → ESM disabled, for ours (1-minute alarm) and
/// ours-fast (10 s alarm on the extension's metrics). Scenarios without a no-breaker run or
/// without both of ours are left out.
pub fn fast_trip_table(runs: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | no breaker: calls | ours: calls (share) | ours-fast: calls (share) \
         | ours: failure→open | ours-fast: failure→open |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|\n");
    let find = |scenario: &str, strategy: Strategy| {
        runs.iter()
            .find(|r| r.scenario == scenario && r.strategy == strategy)
    };
    let share = |calls: u64, of: u64| {
        if of == 0 {
            format!("{calls} (-)")
        } else {
            format!("{calls} ({:.2} %)", 100.0 * calls as f64 / of as f64)
        }
    };
    let open = |r: &RunResult| match r.metrics.failure_to_open_s {
        Some(_) => duration(r.metrics.failure_to_open_s),
        None => "-".into(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for r in runs {
        if seen.contains(&r.scenario.as_str()) {
            continue;
        }
        seen.push(&r.scenario);
        let (Some(none), Some(ours), Some(fast)) = (
            find(&r.scenario, Strategy::NoBreaker),
            find(&r.scenario, Strategy::Ours),
            find(&r.scenario, Strategy::OursFast),
        ) else {
            continue;
        };
        let base = none.metrics.calls_during_outage;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.scenario,
            base,
            share(ours.metrics.calls_during_outage, base),
            share(fast.metrics.calls_during_outage, base),
            open(ours),
            open(fast),
        );
    }
    out
}

/// The runs of one scenario and strategy over several seeds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedGroup {
    /// Scenario name.
    pub scenario: String,
    /// Strategy.
    pub strategy: Strategy,
    /// Each seed's measurements, in seed order.
    pub runs: Vec<(u64, RunMetrics)>,
}

/// Median and worst of one metric over seeds: the median is the lower middle of an even count;
/// `None` (never closed, never drained) is the worst value there is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The lower middle value.
    pub median: Option<f64>,
    /// The bad end: the highest value, `None` if any run had none.
    pub worst: Option<f64>,
}

impl Spread {
    /// Median and worst of `values`, where higher is worse and `None` is worst of all.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Self {
        let mut v: Vec<f64> = values
            .into_iter()
            .map(|x| x.unwrap_or(f64::INFINITY))
            .collect();
        if v.is_empty() {
            return Self {
                median: None,
                worst: None,
            };
        }
        v.sort_by(f64::total_cmp);
        let finite = |x: f64| x.is_finite().then_some(x);
        Self {
            median: finite(v[(v.len() - 1) / 2]),
            worst: finite(v[v.len() - 1]),
        }
    }

    fn show(&self, f: impl Fn(Option<f64>) -> String) -> String {
        format!("{} / {}", f(self.median), f(self.worst))
    }
}

/// Median and worst of every metric of [`table`] for one group (serialized into `seeds.json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedSummary {
    /// Scenario name.
    pub scenario: String,
    /// Strategy.
    pub strategy: Strategy,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Downstream calls during the trouble.
    pub calls_during_outage: Spread,
    /// Dead-lettered messages.
    pub dead_lettered: Spread,
    /// Of those, because of the breaker.
    pub dead_lettered_by_breaker: Spread,
    /// Lost messages.
    pub lost: Spread,
    /// Duplicates.
    pub duplicates: Spread,
    /// Trouble start → open (`None` everywhere for a strategy that never opens).
    pub failure_to_open_s: Spread,
    /// Healed → closed (stuck open counts as the worst).
    pub healed_to_closed_s: Spread,
    /// Healed → drained.
    pub healed_to_drained_s: Spread,
    /// Peak calls/s after healing.
    pub peak_load_after_healed: Spread,
    /// Peak calls/s ÷ capacity after healing.
    pub peak_load_ratio: Spread,
    /// The same from the first close after healing on.
    pub peak_load_ratio_after_first_ramp: Spread,
    /// Re-trips.
    pub retrips: Spread,
    /// Step Functions state transitions.
    pub state_transitions: Spread,
    /// Consumer + breaker GB-s.
    pub gb_s: Spread,
    /// Runs that ended stuck open.
    pub stuck_runs: usize,
    /// Whether any run opened the circuit.
    pub opened: bool,
}

impl SeedSummary {
    /// The summary of `group`.
    pub fn of(group: &SeedGroup) -> Self {
        let m = || group.runs.iter().map(|(_, m)| m);
        let spread = |f: &dyn Fn(&RunMetrics) -> Option<f64>| Spread::of(m().map(f));
        let opened = m().any(|x| x.opens > 0);
        Self {
            scenario: group.scenario.clone(),
            strategy: group.strategy,
            seeds: group.runs.iter().map(|(s, _)| *s).collect(),
            calls_during_outage: spread(&|x| Some(x.calls_during_outage as f64)),
            dead_lettered: spread(&|x| Some(x.dead_lettered as f64)),
            dead_lettered_by_breaker: spread(&|x| Some(x.dead_lettered_by_breaker as f64)),
            lost: spread(&|x| Some(x.lost as f64)),
            duplicates: spread(&|x| Some(x.duplicates as f64)),
            failure_to_open_s: if opened {
                spread(&|x| x.failure_to_open_s)
            } else {
                Spread::of([])
            },
            healed_to_closed_s: spread(&|x| {
                if x.stuck { None } else { x.healed_to_closed_s }
            }),
            healed_to_drained_s: spread(&|x| x.healed_to_drained_s),
            peak_load_after_healed: spread(&|x| Some(f64::from(x.peak_load_after_healed))),
            peak_load_ratio: spread(&|x| Some(x.peak_load_ratio)),
            peak_load_ratio_after_first_ramp: spread(&|x| Some(x.peak_load_ratio_after_first_ramp)),
            retrips: spread(&|x| Some(f64::from(x.retrips))),
            state_transitions: spread(&|x| Some(x.state_transitions as f64)),
            gb_s: spread(&|x| Some(x.consumer_gb_s + x.breaker_gb_s)),
            stuck_runs: m().filter(|x| x.stuck).count(),
            opened,
        }
    }
}

/// The comparison table over seeds: every metric of [`table`] as median / worst (the bad end:
/// the most calls, dead letters, losses, duplicates, time, load, re-trips, transitions and
/// GB-s; a run stuck open or never drained is the worst), plus the peak load after the first
/// ramp and the runs stuck open.
pub fn seeds_table(summaries: &[SeedSummary]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | strategy | calls during outage | dead-lettered (by breaker) | lost | duplicates \
         | failure→open | healed→closed | healed→drained | peak load / capacity \
         | peak load / capacity after the first ramp | re-trips | transitions | GB-s | stuck |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    let int = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    let ratio = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}×"));
    for s in summaries {
        let open = if s.opened {
            s.failure_to_open_s.show(duration)
        } else {
            "-".into()
        };
        let closed = if !s.opened {
            "-".into()
        } else {
            s.healed_to_closed_s.show(|v| match v {
                None => "stuck open".into(),
                v => duration(v),
            })
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.scenario,
            s.strategy.label(),
            s.calls_during_outage.show(int),
            s.dead_lettered.show(int),
            s.dead_lettered_by_breaker.show(int),
            s.lost.show(int),
            s.duplicates.show(int),
            open,
            closed,
            s.healed_to_drained_s.show(duration),
            s.peak_load_ratio.show(ratio),
            s.peak_load_ratio_after_first_ramp.show(ratio),
            s.retrips.show(int),
            s.state_transitions.show(int),
            s.gb_s.show(int),
            s.stuck_runs,
        );
    }
    out
}

/// The JSON results document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results<'a> {
    /// Seed of every run.
    pub seed: u64,
    /// The runs.
    pub runs: &'a [RunResult],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact_and_none_is_never() {
        assert_eq!(duration(Some(45.2)), "45s");
        assert_eq!(duration(Some(200.0)), "3m20s");
        assert_eq!(duration(Some(7500.0)), "2h05m");
        assert_eq!(duration(Some(273_600.0)), "3d04h");
        assert_eq!(duration(None), "never");
    }

    #[test]
    fn the_spread_is_the_lower_middle_and_the_bad_end_with_none_the_worst() {
        let s = Spread::of([Some(3.0), Some(1.0), Some(2.0), Some(4.0)]);
        assert_eq!((s.median, s.worst), (Some(2.0), Some(4.0)));
        let s = Spread::of([Some(3.0), None, Some(1.0)]);
        assert_eq!((s.median, s.worst), (Some(3.0), None));
        assert_eq!(Spread::of([]).median, None);
    }
}
