//! SVG charts, written by hand (no font or C dependencies): one chart per scenario, one panel
//! per strategy, each panel with three rows sharing the time axis — queue depth, downstream
//! load (peak calls/s per 10 s, capacity dashed) and circuit state (closed / half-open / open).
//! Rows use the same y-scale across panels so the strategies compare at a glance.

use std::fmt::Write as _;

use crate::engine::{Circuit, RunResult, SAMPLE};
use crate::time::{HOUR, MINUTE, Millis};

const PANEL_W: f64 = 380.0;
const ROW_H: [f64; 3] = [110.0, 110.0, 34.0];
const LEFT: f64 = 52.0;
const TOP: f64 = 46.0;
const GAP: f64 = 22.0;
const MAX_POINTS: usize = 400;

/// Writes the chart of one scenario's runs, shown from 0 to `until`.
pub fn scenario_svg(title: &str, runs: &[RunResult], until: Millis) -> String {
    let samples = ((until / SAMPLE) as usize).max(2);
    let bin = samples.div_ceil(MAX_POINTS).max(1);
    let binned: Vec<Binned> = runs.iter().map(|r| Binned::new(r, samples, bin)).collect();
    let depth_max = nice(
        binned
            .iter()
            .flat_map(|b| b.depth.iter())
            .copied()
            .max()
            .unwrap_or(1),
    );
    let load_max = nice(
        binned
            .iter()
            .flat_map(|b| b.load.iter().chain(b.capacity.iter()))
            .copied()
            .max()
            .unwrap_or(1),
    );
    let width = LEFT + runs.len() as f64 * (PANEL_W + GAP) + 10.0;
    let height = TOP + ROW_H.iter().sum::<f64>() + 2.0 * GAP + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, (run, b)) in runs.iter().zip(&binned).enumerate() {
        let x0 = LEFT + i as f64 * (PANEL_W + GAP);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="36" font-size="12" font-weight="bold">{}</text>"#,
            x0,
            esc(run.strategy.label())
        );
        let mut y = TOP;
        // Row 1: queue depth.
        frame(&mut s, x0, y, ROW_H[0], depth_max, i == 0, "queue depth");
        polyline(
            &mut s, x0, y, ROW_H[0], depth_max, &b.depth, "#1f77b4", false,
        );
        y += ROW_H[0] + GAP;
        // Row 2: load and capacity.
        frame(&mut s, x0, y, ROW_H[1], load_max, i == 0, "calls/s");
        polyline(
            &mut s,
            x0,
            y,
            ROW_H[1],
            load_max,
            &b.capacity,
            "#d62728",
            true,
        );
        polyline(&mut s, x0, y, ROW_H[1], load_max, &b.load, "#2ca02c", false);
        y += ROW_H[1] + GAP;
        // Row 3: circuit state band.
        let n = b.circuit.len().max(1) as f64;
        for (k, c) in b.circuit.iter().enumerate() {
            let color = match c {
                Circuit::Closed => "#cfe8cf",
                Circuit::HalfOpen => "#ffd27f",
                Circuit::Open => "#f28b82",
            };
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.2}" height="{}" fill="{color}"/>"#,
                x0 + k as f64 * PANEL_W / n,
                PANEL_W / n + 0.3,
                ROW_H[2]
            );
        }
        if i == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">circuit</text>"#,
                x0 - 4.0,
                y + ROW_H[2] / 2.0 + 4.0
            );
        }
        // Time axis.
        let ya = y + ROW_H[2] + 14.0;
        let (unit, label) = if until > 6 * HOUR {
            (HOUR, "h")
        } else {
            (MINUTE, "min")
        };
        let span = until as f64 / unit as f64;
        let step = nice_step(span);
        let mut t = 0.0;
        while t <= span + 1e-9 {
            let x = x0 + t / span * PANEL_W;
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{ya:.1}" text-anchor="middle">{t}</text>"#
            );
            t += step;
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">time ({label})</text>"#,
            x0 + PANEL_W,
            ya + 14.0
        );
    }
    // Legend.
    let ly = height - 8.0;
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{ly}"><tspan fill="#1f77b4">— queue depth</tspan>  <tspan fill="#2ca02c">— peak downstream calls/s</tspan>  <tspan fill="#d62728">- - capacity</tspan>  circuit: <tspan fill="#5a9a5a">closed</tspan> / <tspan fill="#d99a1f">half-open</tspan> / <tspan fill="#d9453b">open</tspan></text>"##
    );
    s.push_str("</svg>\n");
    s
}

struct Binned {
    depth: Vec<u32>,
    load: Vec<u32>,
    capacity: Vec<u32>,
    circuit: Vec<Circuit>,
}

impl Binned {
    fn new(r: &RunResult, samples: usize, bin: usize) -> Self {
        let max_bin = |v: &[u32]| -> Vec<u32> {
            v[..samples.min(v.len())]
                .chunks(bin)
                .map(|c| c.iter().copied().max().unwrap_or(0))
                .collect()
        };
        let min_bin = |v: &[u32]| -> Vec<u32> {
            v[..samples.min(v.len())]
                .chunks(bin)
                .map(|c| c.iter().copied().min().unwrap_or(0))
                .collect()
        };
        let rank = |c: &Circuit| match c {
            Circuit::Closed => 0,
            Circuit::HalfOpen => 1,
            Circuit::Open => 2,
        };
        let circ = &r.series.circuit[..samples.min(r.series.circuit.len())];
        Self {
            depth: max_bin(&r.series.queue_depth),
            load: max_bin(&r.series.load),
            capacity: min_bin(&r.series.capacity),
            circuit: circ
                .chunks(bin)
                .map(|c| *c.iter().max_by_key(|x| rank(x)).unwrap_or(&Circuit::Closed))
                .collect(),
        }
    }
}

fn frame(s: &mut String, x0: f64, y0: f64, h: f64, max: u32, labels: bool, name: &str) {
    let _ = write!(
        s,
        r##"<rect x="{x0:.1}" y="{y0:.1}" width="{PANEL_W}" height="{h}" fill="none" stroke="#999"/>"##
    );
    for frac in [0.5, 1.0] {
        let y = y0 + h - frac * h;
        let _ = write!(
            s,
            r##"<line x1="{x0:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/>"##,
            x0 + PANEL_W
        );
        if labels {
            let v = (max as f64 * frac).round();
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                x0 - 4.0,
                y + 4.0,
                short(v)
            );
        }
    }
    if labels {
        let _ = write!(
            s,
            r#"<text transform="translate(12,{:.1}) rotate(-90)" text-anchor="middle">{name}</text>"#,
            y0 + h / 2.0
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn polyline(
    s: &mut String,
    x0: f64,
    y0: f64,
    h: f64,
    max: u32,
    v: &[u32],
    color: &str,
    dashed: bool,
) {
    if v.is_empty() {
        return;
    }
    let n = v.len().max(2) as f64 - 1.0;
    let _ = write!(
        s,
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.2""#
    );
    if dashed {
        s.push_str(r#" stroke-dasharray="4 3""#);
    }
    s.push_str(r#" points=""#);
    for (i, val) in v.iter().enumerate() {
        let x = x0 + i as f64 / n * PANEL_W;
        let y = y0 + h - (*val).min(max) as f64 / max as f64 * h;
        let _ = write!(s, "{x:.1},{y:.1} ");
    }
    s.push_str(r#""/>"#);
}

/// Rounds an axis maximum up to 1, 2 or 5 × 10^k.
fn nice(v: u32) -> u32 {
    let v = v.max(1) as f64;
    let p = 10f64.powf(v.log10().floor());
    let m = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * p >= v)
        .unwrap_or(10.0);
    (m * p) as u32
}

fn nice_step(span: f64) -> f64 {
    let raw = span / 6.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn short(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 1_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else {
        format!("{v:.0}")
    }
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_round_up_to_one_two_five() {
        assert_eq!(nice(0), 1);
        assert_eq!(nice(7), 10);
        assert_eq!(nice(130), 200);
        assert_eq!(nice(4_100), 5_000);
    }

    #[test]
    fn chart_has_one_panel_per_strategy_with_three_rows() {
        use crate::engine;
        use crate::scenario;
        use crate::strategy::Strategy;
        let mut s = scenario::outage("outage-5m", 5 * MINUTE);
        s.horizon = s.healed_at + 30 * MINUTE;
        let runs: Vec<RunResult> = Strategy::ALL
            .iter()
            .map(|st| engine::run(&s, *st, 1))
            .collect();
        let svg = scenario_svg("t <5m>", &runs, s.horizon);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;5m&gt;"));
        for st in Strategy::ALL {
            assert!(
                svg.contains(&format!(">{}</text>", st.label())),
                "{}",
                st.label()
            );
        }
        // Per panel: depth, capacity and load lines.
        assert_eq!(svg.matches("<polyline").count(), 3 * Strategy::ALL.len());
        assert!(svg.contains("#f28b82"), "the open state is drawn");
    }

    #[test]
    fn labels_are_short_and_escaped() {
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(45_000.0), "45k");
        assert_eq!(esc("a<b & c"), "a&lt;b &amp; c");
    }
}
