"""A self-contained HTML chart (inline SVG, no scripts or downloads) of a scenario run."""

from __future__ import annotations

import html
from typing import Iterable

W, LEFT, RIGHT = 1000, 70, 20
COLORS = {"queue": "#1f77b4", "inflight": "#ff7f0e", "dlq": "#d62728", "invocations": "#2ca02c", "errors": "#d62728"}
STATE_COLORS = {"Enabled": "#8fd19e", "Disabled": "#f1a3a3", "Enabling": "#cfe8d5", "Disabling": "#f6d0d0",
                "Updating": "#fde9a9", "OK": "#8fd19e", "ALARM": "#f1a3a3", "INSUFFICIENT_DATA": "#dddddd"}


def _rates(samples: list[dict], key: str) -> list[float]:
    out = [0.0]
    for a, b in zip(samples, samples[1:]):
        dt = max(b["t"] - a["t"], 0.1)
        out.append(max(0.0, (b[key] - a[key]) / dt))
    return out


def _panel(y0: int, h: int, title: str, t: list[float], series: dict[str, list[float]], tmax: float) -> str:
    vmax = max([1.0] + [max(v) for v in series.values() if v])
    x = lambda tv: LEFT + (W - LEFT - RIGHT) * tv / tmax  # noqa: E731
    y = lambda v: y0 + h - h * v / vmax  # noqa: E731
    parts = [f'<text x="{LEFT}" y="{y0 - 6}" class="title">{html.escape(title)}</text>',
             f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{h}" class="frame"/>',
             f'<text x="{LEFT - 6}" y="{y0 + 10}" class="axis" text-anchor="end">{vmax:.0f}</text>',
             f'<text x="{LEFT - 6}" y="{y0 + h}" class="axis" text-anchor="end">0</text>']
    legend_x = LEFT + 10
    for name, values in series.items():
        pts = " ".join(f"{x(tv):.1f},{y(v):.1f}" for tv, v in zip(t, values))
        color = COLORS.get(name, "#555")
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        parts.append(f'<text x="{legend_x}" y="{y0 + 14}" fill="{color}" class="legend">{html.escape(name)}</text>')
        legend_x += 12 + 8 * len(name)
    return "\n".join(parts)


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


def render(samples: list[dict], marks: Iterable[tuple[float, str]], summary: dict, title: str) -> str:
    """The chart as an HTML document. ``marks`` are (seconds since start, label)."""
    if len(samples) < 2:
        raise ValueError("need at least two samples to draw a chart")
    t = [s["t"] for s in samples]
    tmax = max(t[-1], 1.0)
    x = lambda tv: LEFT + (W - LEFT - RIGHT) * tv / tmax  # noqa: E731
    body = [
        _panel(40, 170, "Orders queue (messages)", t, {k: [float(s[k]) for s in samples] for k in ("queue", "inflight", "dlq")}, tmax),
        _panel(250, 130, "Consumer (per second)", t, {"invocations": _rates(samples, "invocations"), "errors": _rates(samples, "errors")}, tmax),
        _bands(410, 22, "ESM", t, [s["esm"] or "?" for s in samples], tmax),
        _bands(440, 22, "alarm", t, [s["alarm"] for s in samples], tmax),
        _bands(470, 22, "recovery", t, [s["step"] for s in samples], tmax),
    ]
    for at, label in marks:
        body.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="34" y2="495" class="mark"/>'
                    f'<text x="{x(at) + 3:.1f}" y="520" class="marklabel" transform="rotate(20 {x(at) + 3:.1f} 520)">{html.escape(label)}</text>')
    for tick in range(0, int(tmax) + 1, max(10, int(tmax / 10) // 10 * 10 or 10)):
        body.append(f'<text x="{x(tick):.1f}" y="506" class="axis" text-anchor="middle">{tick}s</text>')
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
.title {{ font-size: 14px; font-weight: 600; }} .axis {{ font-size: 11px; fill: #555; }}
.legend {{ font-size: 12px; font-weight: 600; }} .band {{ font-size: 11px; fill: #222; }}
.frame {{ fill: none; stroke: #bbb; }} .mark {{ stroke: #444; stroke-dasharray: 4 3; }}
.marklabel {{ font-size: 11px; fill: #444; }} table {{ border-collapse: collapse; margin-top: 12px; }}
td {{ border: 1px solid #ddd; padding: 3px 10px; }}
</style></head><body>
<h2>{html.escape(title)}</h2>
<svg width="{W}" height="600" viewBox="0 0 {W} 600" xmlns="http://www.w3.org/2000/svg">
{chr(10).join(body)}
</svg>
<table>{rows}</table>
</body></html>
"""
