"""A self-contained HTML chart (inline SVG, no scripts or downloads) of a scenario run, and its
picture: `python test/localcloud/chart.py RUN.json --html OUT.html --png OUT.png` re-renders the
run the demo saved (`.local-cloud/demo-run.json`) and screenshots it with headless Chromium
(`npm run chart -- --png docs/demo-chart.png` writes the README's picture)."""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Iterable, Optional

W, LEFT, RIGHT = 1000, 70, 60  # RIGHT: room for the last mark's slanted label
COLORS = {"queue": "#1f77b4", "inflight": "#ff7f0e", "dlq": "#d62728", "invocations": "#2ca02c", "errors": "#d62728",
          "MaximumConcurrency": "#6a3d9a"}
STATE_COLORS = {"Enabled": "#8fd19e", "Disabled": "#f1a3a3", "Enabling": "#cfe8d5", "Disabling": "#f6d0d0",
                "Updating": "#fde9a9", "OK": "#8fd19e", "ALARM": "#f1a3a3", "INSUFFICIENT_DATA": "#dddddd"}
# the recovery's states by phase (names as the state machine has them), else the default band colour
PHASE_COLORS = [("Ramp", "#c7e9c0"), ("Re-jitter", "#fdd0a2"), ("Probe", "#fcbba1"), ("Back Off", "#f1a3a3"),
                ("Close", "#8fd19e"), ("Open", "#f1a3a3")]
# the sample key of the mapping's MaximumConcurrency (the ramp level while half-open)
CONCURRENCY = "concurrency"
# the state in which each ramp step lasts (cdk/src/workflow.ts), labelled with the step's level
RAMP_HOLD = "Hold Ramp Step"


def _step_color(name: str) -> str:
    return next((c for key, c in PHASE_COLORS if key in name), "#c6dbef")


def _rates(samples: list[dict], key: str) -> list[float]:
    out = [0.0]
    for a, b in zip(samples, samples[1:]):
        dt = max(b["t"] - a["t"], 0.1)
        out.append(max(0.0, (b[key] - a[key]) / dt))
    return out


def _panel(y0: int, h: int, title: str, t: list[float], series: dict[str, list[float]], tmax: float) -> str:
    vmax = max([1.0] + [v for vs in series.values() for v in vs if v is not None])
    x = lambda tv: LEFT + (W - LEFT - RIGHT) * tv / tmax  # noqa: E731
    y = lambda v: y0 + h - h * v / vmax  # noqa: E731
    parts = [f'<text x="{LEFT}" y="{y0 - 6}" class="title">{html.escape(title)}</text>',
             f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{h}" class="frame"/>',
             f'<text x="{LEFT - 6}" y="{y0 + 10}" class="axis" text-anchor="end">{vmax:.0f}</text>',
             f'<text x="{LEFT - 6}" y="{y0 + h}" class="axis" text-anchor="end">0</text>']
    legend_x = LEFT + 10
    for name, values in series.items():
        color = COLORS.get(name, "#555")
        for run in _runs(t, values):  # a None (no value) leaves a gap
            pts = " ".join(f"{x(tv):.1f},{y(v):.1f}" for tv, v in run)
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        parts.append(f'<text x="{legend_x}" y="{y0 + 14}" fill="{color}" class="legend">{html.escape(name)}</text>')
        legend_x += 12 + 8 * len(name)
    return "\n".join(parts)


def _runs(t: list[float], values: list[Optional[float]]) -> list[list[tuple[float, float]]]:
    """The stretches of (t, value) between None values."""
    runs: list[list[tuple[float, float]]] = [[]]
    for tv, v in zip(t, values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((tv, v))
    return [r for r in runs if r]


def _intervals(y0: int, h: int, label: str, intervals: list[tuple[float, float, str]], tmax: float) -> str:
    """A band of labelled intervals (start s, end s, text), each coloured by its recovery phase."""
    x = lambda tv: LEFT + (W - LEFT - RIGHT) * tv / tmax  # noqa: E731
    parts = [f'<text x="{LEFT - 6}" y="{y0 + h - 4}" class="axis" text-anchor="end">{html.escape(label)}</text>']
    for start, end, text in intervals:
        width = max(1.0, x(end) - x(start))
        parts.append(f'<rect x="{x(start):.1f}" y="{y0}" width="{width:.1f}" height="{h}" fill="{_step_color(text)}" '
                     f'stroke="#fff" stroke-width="0.5"><title>{html.escape(text)} {start:.1f}-{end:.1f} s</title></rect>')
        if width > 6.5 * len(text):
            parts.append(f'<text x="{x(start) + 3:.1f}" y="{y0 + h - 4}" class="band">{html.escape(text)}</text>')
    return "\n".join(parts)


def recovery_intervals(steps: list[tuple[float, float, str]], samples: list[dict]) -> list[tuple[float, float, str]]:
    """Every state the recovery entered (start s, end s, name) with each ramp step's hold labelled
    by the mapping's MaximumConcurrency while it lasted (the latest sample inside it, else the one
    before it): "Hold Ramp Step @4"."""
    out = []
    for start, end, name in steps:
        if name == RAMP_HOLD:
            seen = [s[CONCURRENCY] for s in samples if s["t"] <= end and s.get(CONCURRENCY) is not None]
            if seen:
                name = f"{name} @{seen[-1]}"
        out.append((start, end, name))
    return out


def _bands(y0: int, h: int, label: str, t: list[float], values: list[str], tmax: float) -> str:
    x = lambda tv: LEFT + (W - LEFT - RIGHT) * tv / tmax  # noqa: E731
    parts = [f'<text x="{LEFT - 6}" y="{y0 + h - 4}" class="axis" text-anchor="end">{html.escape(label)}</text>']
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            end_t = t[i] if i < len(values) else t[-1]
            color = STATE_COLORS.get(values[start], "#c6dbef")
            parts.append(f'<rect x="{x(t[start]):.1f}" y="{y0}" width="{max(1.0, x(end_t) - x(t[start])):.1f}" height="{h}" fill="{color}">'
                         f'<title>{html.escape(values[start])} {t[start]:.0f}-{end_t:.0f} s</title></rect>')
            if x(end_t) - x(t[start]) > 8 * len(values[start]):
                parts.append(f'<text x="{x(t[start]) + 3:.1f}" y="{y0 + h - 4}" class="band">{html.escape(values[start])}</text>')
            start = i
    return "\n".join(parts)


def render(samples: list[dict], marks: Iterable[tuple[float, str]], summary: dict, title: str,
           steps: Optional[list[tuple[float, float, str]]] = None) -> str:
    """The chart as an HTML document. ``marks`` are (seconds since start, label); ``steps`` the
    states the recoveries entered, (start s, end s, name) from their execution histories: every
    state, however short (without them the band shows the state seen at each sample)."""
    if len(samples) < 2:
        raise ValueError("need at least two samples to draw a chart")
    t = [s["t"] for s in samples]
    tmax = max([t[-1], 1.0] + [end for _, end, _ in steps or []])
    x = lambda tv: LEFT + (W - LEFT - RIGHT) * tv / tmax  # noqa: E731
    concurrency = [None if s.get(CONCURRENCY) is None else float(s[CONCURRENCY]) for s in samples]
    body = [
        _panel(40, 170, "Orders queue (messages)", t, {k: [float(s[k]) for s in samples] for k in ("queue", "inflight", "dlq")}, tmax),
        _panel(250, 130, "Consumer (per second)", t, {"invocations": _rates(samples, "invocations"), "errors": _rates(samples, "errors")}, tmax),
        _panel(420, 80, "Event-source mapping's MaximumConcurrency (the ramp level while half-open)", t,
               {"MaximumConcurrency": concurrency}, tmax),
        _bands(530, 22, "ESM", t, [s["esm"] or "?" for s in samples], tmax),
        _bands(560, 22, "alarm", t, [s["alarm"] for s in samples], tmax),
        _intervals(590, 22, "recovery", recovery_intervals(steps, samples), tmax) if steps is not None
        else _bands(590, 22, "recovery", t, [s["step"] for s in samples], tmax),
    ]
    if steps is not None:  # the recovery band's colours
        legend_x = LEFT
        body.append(f'<text x="{legend_x}" y="705" class="axis">recovery phases:</text>')
        legend_x += 100
        for key, color in PHASE_COLORS:
            body.append(f'<rect x="{legend_x}" y="695" width="12" height="12" fill="{color}"/>'
                        f'<text x="{legend_x + 16}" y="705" class="axis">{html.escape(key)}</text>')
            legend_x += 28 + 7 * len(key)
    for at, label in marks:
        body.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="34" y2="615" class="mark"/>'
                    f'<text x="{x(at) + 3:.1f}" y="640" class="marklabel" transform="rotate(20 {x(at) + 3:.1f} 640)">{html.escape(label)}</text>')
    for tick in range(0, int(tmax) + 1, max(10, int(tmax / 10) // 10 * 10 or 10)):
        body.append(f'<text x="{x(tick):.1f}" y="626" class="axis" text-anchor="middle">{tick}s</text>')
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    return page(title, None, W, 720, "\n".join(body), STYLE, f"<table>{rows}</table>")


STYLE = """
.title { font-size: 14px; font-weight: 600; } .axis { font-size: 11px; fill: #555; }
.legend { font-size: 12px; font-weight: 600; } .band { font-size: 11px; fill: #222; }
.frame { fill: none; stroke: #bbb; } .mark { stroke: #444; stroke-dasharray: 4 3; }
.marklabel { font-size: 11px; fill: #444; } table { border-collapse: collapse; margin-top: 12px; }
td { border: 1px solid #ddd; padding: 3px 10px; }
"""


def page(title: str, subtitle: Optional[str], width: float, height: float, svg_body: str, style: str,
         after: str = "") -> str:
    """A self-contained HTML page (no scripts, no downloads) holding one inline SVG drawing."""
    sub = f"<p>{html.escape(subtitle)}</p>" if subtitle else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
{style.strip()}
</style></head><body>
<h2>{html.escape(title)}</h2>{sub}
<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">
{svg_body}
</svg>
{after}
</body></html>
"""


def render_run(run: dict) -> str:
    """The chart of a run saved as JSON by the demo (`save_run`)."""
    steps = [tuple(step) for step in run["steps"]] if run.get("steps") is not None else None
    return render(run["samples"], [tuple(m) for m in run["marks"]], run["summary"], run["title"], steps)


def save_run(path: str, samples: list[dict], marks: list[tuple[float, str]], summary: dict, title: str,
             steps: Optional[list[tuple[float, float, str]]]) -> None:
    with open(path, "w") as f:
        json.dump({"title": title, "samples": samples, "marks": marks, "summary": summary, "steps": steps}, f)


def chromium() -> Optional[str]:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


def screenshot(html_path: str, png_path: str, size: str = "1080,1140") -> None:
    """A PNG of the HTML page, with headless Chromium (Debian: `apt-get install chromium`)."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("no Chromium to take the picture: install it (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                              f"--user-data-dir={profile}", f"--screenshot={os.path.abspath(png_path)}",
                              f"--window-size={size}", "file://" + os.path.abspath(html_path)],
                             capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or not os.path.exists(png_path):
        raise RuntimeError(f"{browser} could not take the picture ({out.returncode}): {out.stderr[-2000:]}")


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Re-render a demo run's chart (HTML) and take its picture (PNG).")
    p.add_argument("run", nargs="?", default=".local-cloud/demo-run.json", help="the run the demo saved (default: %(default)s)")
    p.add_argument("--html", default=None, help="where to write the chart (default: beside the run, .html)")
    p.add_argument("--png", default=None, help="also take its picture with headless Chromium, to this file")
    args = p.parse_args(argv)
    if not os.path.exists(args.run):
        print(f"chart: {args.run} not found: run `npm run demo` first (it saves its run there)", file=sys.stderr)
        return 2
    with open(args.run) as f:
        page = render_run(json.load(f))
    html_path = args.html or os.path.splitext(args.run)[0] + ".html"
    with open(html_path, "w") as f:
        f.write(page)
    print(f"chart: {html_path}")
    if args.png:
        try:
            screenshot(html_path, args.png)
        except RuntimeError as err:
            print(f"chart: {err}", file=sys.stderr)
            return 1
        print(f"picture: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
