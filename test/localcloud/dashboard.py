"""The construct's CloudWatch dashboard, drawn from a local-cloud run (issue 18).

`save` (called by the demo while the local cloud still runs) reads the deployed dashboard's body
back with GetDashboard and, for every metric of every widget, its datapoints over the run with
GetMetricData (the widget's period and statistic; metric math evaluated as the alarm evaluator
does), and the state of every alarm a widget names; `render` draws that body as CloudWatch lays it
out (its grid: x, y, width, height): graph widgets as lines with their labels, left/right axes and
horizontal annotations (the alarm threshold), single-value widgets as their latest value, alarm
status widgets as their alarms' states, text widgets as text. A metric without data says "no data".

`python test/localcloud/dashboard.py [RUN.json] --png OUT.png` (`npm run dashboard -- --png
docs/dashboard.png`) re-renders the run `npm run demo` saved (`.local-cloud/demo-dashboard.json`)
and takes its picture with headless Chromium (`chart.screenshot`).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import re
import sys
from datetime import datetime, timezone
from typing import Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from localcloud import chart  # noqa: E402
from localcloud.alarms import MathError, evaluate_expression  # noqa: E402

# CloudWatch's grid: 24 columns; a row unit about as tall as a column is wide
PAGE_W, MARGIN, ROW_H = 1100, 16, 44
COL_W = (PAGE_W - 2 * MARGIN) / 24
# CloudWatch's default palette, in the order it colours a graph's lines
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
STATE_COLORS = {"OK": "#1d8102", "ALARM": "#d13212", "INSUFFICIENT_DATA": "#687078"}
DEFAULT_PERIOD, DEFAULT_STAT = 300, "Average"  # a metric widget's defaults (Dashboard Body Structure)


# -- the body: metrics rows ------------------------------------------------------------------
def metric_rows(properties: dict) -> list[dict]:
    """A metric widget's ``metrics`` array as one dict a row: ``id``, ``label``, ``stat``,
    ``period``, ``yAxis``, ``visible``, ``color`` and either ``expression`` (metric math) or
    ``metric`` (``Namespace``, ``MetricName``, ``Dimensions``); ``"."`` repeats the value above, as
    in the console's source view. Defaults from the widget (``stat``, ``period``), else CloudWatch's."""
    rows, previous = [], []
    for i, raw in enumerate(properties.get("metrics") or []):
        options = raw[-1] if raw and isinstance(raw[-1], dict) else {}
        names = [v for v in raw if not isinstance(v, dict)]
        names = [previous[j] if v == "." and j < len(previous) else v for j, v in enumerate(names)]
        previous = names
        row = {
            "id": options.get("id") or f"m{i + 1}",
            "stat": options.get("stat") or properties.get("stat") or DEFAULT_STAT,
            "period": int(options.get("period") or properties.get("period") or DEFAULT_PERIOD),
            "yAxis": options.get("yAxis", "left"),
            "visible": options.get("visible", True),
            "color": options.get("color"),
        }
        if "expression" in options:
            row["expression"] = options["expression"]
            row["label"] = options.get("label") or row["id"]
        else:
            dims = [{"Name": str(names[k]), "Value": str(names[k + 1])} for k in range(2, len(names) - 1, 2)]
            row["metric"] = {"Namespace": names[0], "MetricName": names[1], "Dimensions": dims}
            row["label"] = options.get("label") or names[1]
        rows.append(row)
    return rows


def widgets(body: dict) -> list[dict]:
    """The body's widgets with CloudWatch's defaults filled in (width and height 6)."""
    out = []
    for w in body.get("widgets", []):
        w = dict(w)
        w.setdefault("width", 6)
        w.setdefault("height", 6)
        w.setdefault("properties", {})
        out.append(w)
    return out


# -- saving a run --------------------------------------------------------------------------
def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _read_metric(cw, row: dict, start: float, end: float) -> dict[float, float]:
    """GetMetricData of one metric row over [start, end), periods aligned to the period (as
    CloudWatch aligns them): {period start (epoch s): value}."""
    period = row["period"]
    lo = math.floor(start / period) * period
    hi = math.ceil(end / period) * period
    if hi <= lo:
        hi = lo + period
    query = {"Id": "q", "MetricStat": {"Metric": row["metric"], "Period": period, "Stat": row["stat"]}, "ReturnData": True}
    out: dict[float, float] = {}
    token = None
    while True:
        kwargs = {"NextToken": token} if token else {}
        resp = cw.get_metric_data(MetricDataQueries=[query], StartTime=_utc(lo), EndTime=_utc(hi),
                                  ScanBy="TimestampAscending", **kwargs)
        for result in resp["MetricDataResults"]:
            for ts, v in zip(result["Timestamps"], result["Values"]):
                out[ts.timestamp()] = float(v)
        token = resp.get("NextToken")
        if not token:
            return out


def alarm_rows(alarm: dict) -> list[dict]:
    """A metric alarm's metric (or metric math) as ``metric_rows`` rows: what CloudWatch's alarm
    graph (a metric widget with ``annotations.alarms`` and no ``metrics``) draws."""
    if not alarm.get("Metrics"):
        return [{"id": "m1", "label": alarm["MetricName"], "stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
                 "period": int(alarm["Period"]), "yAxis": "left", "visible": True, "color": None,
                 "metric": {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                            "Dimensions": alarm.get("Dimensions", [])}}]
    period = next((int(q["MetricStat"]["Period"]) for q in alarm["Metrics"] if "MetricStat" in q), 60)
    rows = []
    for q in alarm["Metrics"]:
        row = {"id": q["Id"], "label": q.get("Label") or q["Id"], "period": int(q.get("Period") or period),
               "yAxis": "left", "visible": q.get("ReturnData", True), "color": None}
        if "Expression" in q:
            row.update(expression=q["Expression"], stat=None)
        else:
            row.update(metric=q["MetricStat"]["Metric"], stat=q["MetricStat"]["Stat"], period=int(q["MetricStat"]["Period"]))
        rows.append(row)
    return rows


def widget_data(cw, widget: dict, start: float, end: float, alarm_states: dict[str, dict]) -> dict:
    """What one widget shows over [start, end): ``series`` (each metric row's label, axis, colour
    and points [[t, value], ...] in seconds since ``start``, or an ``error``), ``alarms`` (name
    and state of each alarm it names) and ``annotations`` (the threshold of an alarm graph)."""
    props = widget["properties"]
    out: dict = {"series": [], "alarms": [], "annotations": []}
    if widget.get("type") == "metric":
        rows = metric_rows(props)
        if not rows:  # an alarm graph: the alarm's metric and its threshold
            for arn in (props.get("annotations") or {}).get("alarms") or []:
                alarm = alarm_states.get(arn)
                if alarm and "Threshold" in alarm:
                    rows += alarm_rows(alarm)
                    out["annotations"].append({"label": alarm["AlarmName"], "value": alarm["Threshold"]})
        values: dict[str, dict[float, float]] = {}
        errors: dict[str, str] = {}
        for row in rows:
            if "metric" in row:
                try:
                    values[row["id"]] = _read_metric(cw, row, start, end)
                except Exception as err:  # noqa: BLE001 - one metric's failure is shown, not fatal
                    errors[row["id"]] = str(err)
        for row in rows:  # metric math, period by period over the run
            if "expression" not in row:
                continue
            period = row["period"]
            points: dict[float, float] = {}
            try:
                for ts in range(math.floor(start / period) * period, math.ceil(end / period) * period, period):
                    known = {k: s.get(float(ts)) for k, s in values.items()}
                    # FILL(m, REPEAT): a missing value repeats the expression's previous one
                    known["REPEAT"] = points[max(points)] if points else None
                    v = evaluate_expression(row["expression"], known)
                    if v is not None:
                        points[float(ts)] = v
                values[row["id"]] = points
            except MathError as err:
                errors[row["id"]] = str(err)
        for row in rows:
            if not row["visible"]:
                continue
            series = {"id": row["id"], "label": row["label"], "yAxis": row["yAxis"], "color": row["color"],
                      "stat": row["stat"], "period": row["period"],
                      "points": [[round(ts - start, 1), v] for ts, v in sorted(values.get(row["id"], {}).items())]}
            if row["id"] in errors:
                series["error"] = errors[row["id"]]
            out["series"].append(series)
    for arn in list(props.get("alarms") or []) + list((props.get("annotations") or {}).get("alarms") or []):
        a = alarm_states.get(arn)
        out["alarms"].append({"arn": arn, "name": a["AlarmName"] if a else arn.split(":")[-1],
                              "state": a["StateValue"] if a else "unknown"})
    return out


def save(cw, dashboard_name: str, start: float, end: float, path: str, title: str = "") -> dict:
    """Read the dashboard back (GetDashboard) and the data of each widget over [start, end), and
    write both to ``path`` (JSON); returns what it wrote."""
    got = cw.get_dashboard(DashboardName=dashboard_name)
    body = json.loads(got["DashboardBody"])
    alarm_states = {a["AlarmArn"]: a for page in cw.get_paginator("describe_alarms").paginate()
                    for a in page["MetricAlarms"] + page.get("CompositeAlarms", [])}
    run = {"title": title or f"CloudWatch dashboard {dashboard_name}", "dashboardName": got["DashboardName"],
           "start": start, "end": end, "body": body,
           "data": [widget_data(cw, w, start, end, alarm_states) for w in widgets(body)]}
    with open(path, "w") as f:
        json.dump(run, f, indent=1)
    return run


# -- drawing -------------------------------------------------------------------------------
def _markdown(text: str) -> str:
    """The little markdown a text widget usually holds: headings, `code`, **bold**, lines."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        level, line = (len(m.group(1)), m.group(2)) if m else (0, line)
        s = html.escape(line)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
        out.append(f'<div class="md h{level}">{s}</div>' if level else f'<div class="md">{s}</div>')
    return "".join(out)


def _fmt(v: float) -> str:
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _axis_range(axis: dict, values: list[float]) -> tuple[float, float]:
    lo = axis.get("min")
    hi = axis.get("max")
    lo = float(lo) if lo is not None else min([0.0] + values)
    if hi is None:
        top = max(values) if values else 1.0
        hi = lo + 1.0 if top <= lo else _round_up(lo + (top - lo) * 1.05)
    return lo, float(hi)


def _round_up(v: float) -> float:
    """The next round number (1, 2, 2.5, 5 times a power of ten) at or above ``v`` (0 for v <= 0)."""
    if v <= 0:
        return 0.0
    scale = 10 ** math.floor(math.log10(v))
    return next(m * scale for m in (1, 2, 2.5, 5, 10) if m * scale >= v)


def time_step(duration: float, width: float) -> int:
    """Seconds between the time axis's labels: the shortest round step that leaves each label
    (HH:MM:SS) about 70 px."""
    fits = max(1, int(width // 70))
    return next((s for s in (5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600) if duration / s <= fits), 7200)


def _legend(series: list[dict], width: float) -> list[tuple[float, int, str, str]]:
    """Each series' legend entry as (x offset, row, text, colour), wrapped to ``width``."""
    out, at, row = [], 0.0, 0
    for i, s in enumerate(series):
        text = s["label"] + ("" if s["points"] else " (no data)")
        size = 24 + 6.2 * len(text)
        if at and at + size > width:
            at, row = 0.0, row + 1
        out.append((at, row, text, s.get("color") or PALETTE[i % len(PALETTE)]))
        at += size
    return out


def _graph(x0: float, y0: float, w: float, h: float, props: dict, data: dict, span: tuple[float, float],
           t0: float) -> list[str]:
    """A time-series graph over ``span`` (seconds since ``t0``): lines, left/right axes, horizontal
    annotations, legend, time labels."""
    series = data["series"]
    shown = (props.get("legend") or {}).get("position", "bottom") != "hidden"
    annotations = [a for a in (props.get("annotations") or {}).get("horizontal") or [] if isinstance(a, dict)]
    annotations += data.get("annotations") or []  # an alarm graph's threshold
    has_right = any(s["yAxis"] == "right" for s in series) or any(a.get("yAxis") == "right" for a in annotations)
    left, top = x0 + 44, y0 + 30
    right = x0 + w - (44 if has_right else 14)
    legend = _legend(series, right - left) if shown else []
    rows = max([row + 1 for _, row, _, _ in legend] + [0])
    bottom = y0 + h - 22 - 14 * rows
    axes = props.get("yAxis") or {}
    ranges = {}
    for side in ("left", "right"):
        vals = [p[1] for s in series if s["yAxis"] == side for p in s["points"]]
        vals += [float(a["value"]) for a in annotations if a.get("yAxis", "left") == side and "value" in a]
        ranges[side] = _axis_range(axes.get(side) or {}, vals)
    t_lo, t_hi = span
    x = lambda tv: left + (right - left) * (tv - t_lo) / (t_hi - t_lo)  # noqa: E731

    def y(v: float, side: str) -> float:
        lo, hi = ranges[side]
        return bottom - (bottom - top) * (min(max(v, lo), hi) - lo) / (hi - lo)

    parts = [f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" class="plot"/>']
    sides = ["left"] + (["right"] if has_right else [])
    for side in sides:
        lo, hi = ranges[side]
        ax, anchor = (left - 5, "end") if side == "left" else (right + 5, "start")
        for v in (lo, (lo + hi) / 2, hi):
            parts.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y(v, side):.1f}" y2="{y(v, side):.1f}" class="grid"/>')
            parts.append(f'<text x="{ax:.1f}" y="{y(v, side) + 4:.1f}" class="axis" text-anchor="{anchor}">{_fmt(v)}</text>')
        label = (axes.get(side) or {}).get("label")
        if label:
            parts.append(f'<text x="{ax:.1f}" y="{top - 6:.1f}" class="axis" text-anchor="{anchor}">{html.escape(label)}</text>')
    step = time_step(t_hi - t_lo, right - left)
    for at in range(math.ceil((t0 + t_lo) / step) * step, int(t0 + t_hi) + 1, step):  # on round clock times
        clock = datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%S" if step < 60 else "%H:%M")
        parts.append(f'<text x="{x(at - t0):.1f}" y="{bottom + 13:.1f}" class="axis" text-anchor="middle">{clock}</text>')
    for a in annotations:
        if "value" not in a:
            continue
        side = a.get("yAxis", "left")
        ya = y(float(a["value"]), side)
        color = a.get("color", "#d13212")
        parts.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{ya:.1f}" y2="{ya:.1f}" stroke="{color}" '
                     f'class="annotation"/>')
        text = f"{a.get('label', '')} {_fmt(float(a['value']))}".strip()
        parts.append(f'<text x="{right - 4:.1f}" y="{ya - 4:.1f}" class="annotationlabel" fill="{color}" '
                     f'text-anchor="end">{html.escape(text)}</text>')
    for i, s in enumerate(series):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        pts = [(p[0], p[1]) for p in s["points"]]
        if len(pts) == 1:  # one datapoint: a dot, as CloudWatch draws it
            parts.append(f'<circle cx="{x(pts[0][0]):.1f}" cy="{y(pts[0][1], s["yAxis"]):.1f}" r="3" fill="{color}"/>')
        elif pts:
            line = " ".join(f"{x(t):.1f},{y(v, s['yAxis']):.1f}" for t, v in pts)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.8"/>')
    for at, row, text, color in legend:
        ly = bottom + 28 + 14 * row
        parts.append(f'<rect x="{left + at:.1f}" y="{ly - 5:.1f}" width="10" height="3" fill="{color}"/>'
                     f'<text x="{left + at + 13:.1f}" y="{ly:.1f}" class="legend">{html.escape(text)}</text>')
    if not any(s["points"] for s in series):
        parts.append(f'<text x="{(left + right) / 2:.1f}" y="{(top + bottom) / 2:.1f}" class="nodata" '
                     f'text-anchor="middle">no data</text>')
    return parts


def _single_value(x0: float, y0: float, w: float, h: float, data: dict) -> list[str]:
    """Each metric's latest value, side by side."""
    series = data["series"] or [{"label": "", "points": []}]
    cell = w / len(series)
    parts = []
    for i, s in enumerate(series):
        cx = x0 + cell * i + cell / 2
        value = _fmt(s["points"][-1][1]) if s["points"] else "no data"
        parts.append(f'<text x="{cx:.1f}" y="{y0 + 46:.1f}" class="axis" text-anchor="middle">{html.escape(s["label"])}</text>'
                     f'<text x="{cx:.1f}" y="{y0 + 80:.1f}" class="{"big" if s["points"] else "nodata"}" '
                     f'text-anchor="middle">{html.escape(value)}</text>')
    return parts


def _alarm_status(x0: float, y0: float, w: float, h: float, data: dict) -> list[str]:
    """Each alarm's name and state, side by side."""
    alarms = data["alarms"]
    if not alarms:
        return [f'<text x="{x0 + w / 2:.1f}" y="{y0 + h / 2 + 8:.1f}" class="nodata" text-anchor="middle">no alarms</text>']
    cell = w / len(alarms)
    parts = []
    for i, a in enumerate(alarms):
        ax = x0 + 12 + cell * i
        color = STATE_COLORS.get(a["state"], "#687078")
        parts.append(f'<circle cx="{ax + 6:.1f}" cy="{y0 + 44:.1f}" r="6" fill="{color}"/>'
                     f'<text x="{ax + 18:.1f}" y="{y0 + 48:.1f}" class="alarmstate" fill="{color}">{html.escape(a["state"])}</text>'
                     f'<text x="{ax + 18:.1f}" y="{y0 + 64:.1f}" class="axis">{html.escape(a["name"][:70])}</text>')
    return parts


def render(run: dict) -> str:
    """The dashboard of a saved run (`save`) as a self-contained HTML page (inline SVG)."""
    ws = widgets(run["body"])
    duration = max(float(run["end"]) - float(run["start"]), 1.0)
    # one time range for every graph, as a dashboard has: the run, and the whole periods it began in
    first = min([0.0] + [p[0] for d in run["data"] for s in d["series"] for p in s["points"]])
    span = (first, max([duration] + [p[0] for d in run["data"] for s in d["series"] for p in s["points"]]))
    bottom = max([w.get("y", 0) + w["height"] for w in ws] + [1])
    height = int(bottom * ROW_H + 2 * MARGIN)
    parts = []
    for w, data in zip(ws, run["data"]):
        x0 = MARGIN + COL_W * w.get("x", 0) + 4
        y0 = MARGIN + ROW_H * w.get("y", 0) + 4
        ww, hh = COL_W * w["width"] - 8, ROW_H * w["height"] - 8
        props = w["properties"]
        parts.append(f'<g class="widget" data-type="{html.escape(w.get("type", ""))}">')
        if w.get("type") == "text":
            parts.append(f'<foreignObject x="{x0:.1f}" y="{y0:.1f}" width="{ww:.1f}" height="{hh:.1f}">'
                         f'<div xmlns="http://www.w3.org/1999/xhtml" class="text">{_markdown(props.get("markdown", ""))}</div>'
                         "</foreignObject>")
        else:
            parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{ww:.1f}" height="{hh:.1f}" class="frame"/>')
            title = props.get("title") or ""
            parts.append(f'<text x="{x0 + 10:.1f}" y="{y0 + 18:.1f}" class="title">{html.escape(title)}</text>')
            if w.get("type") == "alarm":
                parts += _alarm_status(x0, y0, ww, hh, data)
            elif w.get("type") == "metric" and props.get("view") == "singleValue":
                parts += _single_value(x0, y0, ww, hh, data)
            elif w.get("type") == "metric":
                parts += _graph(x0, y0, ww, hh, props, data, span, float(run["start"]))
            else:
                parts.append(f'<text x="{x0 + ww / 2:.1f}" y="{y0 + hh / 2:.1f}" class="nodata" text-anchor="middle">'
                             f'{html.escape(str(w.get("type")))} widget: not drawn here</text>')
        parts.append("</g>")
    started = datetime.fromtimestamp(float(run["start"]), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    subtitle = f"{run.get('dashboardName', '')}: {started}, {duration:.0f} s"
    return chart.page(run["title"], subtitle, PAGE_W, height, "\n".join(parts), STYLE)


STYLE = """
body { background: #f2f3f3; } h2 { margin: 0 0 4px; } p { margin: 0 0 8px; color: #555; }
.axis { font-size: 11px; fill: #545b64; }
.frame { fill: #fff; stroke: #d5dbdb; } .plot { fill: none; stroke: #eaeded; } .grid { stroke: #eaeded; }
.title { font-size: 13px; font-weight: 700; fill: #16191f; } .legend { font-size: 11px; fill: #16191f; }
.nodata { font-size: 13px; fill: #687078; } .big { font-size: 30px; fill: #16191f; }
.annotation { stroke-dasharray: 5 3; stroke-width: 1.2; } .annotationlabel { font-size: 11px; }
.alarmstate { font-size: 13px; font-weight: 700; }
.text { font: 14px system-ui, sans-serif; padding: 4px 8px; } .md.h3, .md.h2, .md.h1 { font-size: 18px; font-weight: 700; }
.text code { background: #eaeded; padding: 0 4px; border-radius: 3px; }
"""


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Draw the construct's CloudWatch dashboard from a saved local-cloud run (HTML), "
                                            "and take its picture (PNG).")
    p.add_argument("run", nargs="?", default=".local-cloud/demo-dashboard.json",
                   help="the dashboard and data the demo saved (default: %(default)s)")
    p.add_argument("--html", default=None, help="where to write the page (default: beside the run, .html)")
    p.add_argument("--png", default=None, help="also take its picture with headless Chromium, to this file")
    args = p.parse_args(argv)
    if not os.path.exists(args.run):
        print(f"dashboard: {args.run} not found: run `npm run demo` first (it saves the dashboard there)", file=sys.stderr)
        return 2
    with open(args.run) as f:
        run = json.load(f)
    html_path = args.html or os.path.splitext(args.run)[0] + ".html"
    with open(html_path, "w") as f:
        f.write(render(run))
    print(f"dashboard: {html_path}")
    if args.png:
        height = max([w.get("y", 0) + w["height"] for w in widgets(run["body"])] + [1]) * ROW_H + 2 * MARGIN + 110
        try:
            chart.screenshot(html_path, args.png, size=f"{PAGE_W + 48},{int(height)}")
        except RuntimeError as err:
            print(f"dashboard: {err}", file=sys.stderr)
            return 1
        print(f"picture: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
