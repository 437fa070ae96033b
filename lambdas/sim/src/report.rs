//! The comparison table (Markdown) and the JSON results file.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::RunResult;
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
}
