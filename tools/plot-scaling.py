#!/usr/bin/env python3
"""Scaling chart from `dispatch-load city` CSVs (stdlib only, hand-written SVG).

    tools/plot-scaling.py run-10k.csv run-50k.csv run-100k.csv [-o docs/img/scaling.svg]

Each CSV is one written by `dispatch-load ... city --csv PATH`: its `summary` row is the
run. A CSV without a `kind` column counts every row as a run (one CSV with a row per run,
same column names). Draws three panels against the rider count: server CPU (cores), RSS
per rider socket (KiB) and offer latency p99 (ms), one point per run. The x axis is
logarithmic when the rider counts span 20x or more. Output: docs/img/scaling.svg unless
-o says otherwise.
"""
import argparse
import csv
import math
import os
import sys
from xml.sax.saxutils import escape

PANELS = [
    ("server_cpu_cores", "server CPU", "cores", "#1f77b4"),
    ("rss_per_rider_kib", "RSS per rider socket", "KiB", "#2ca02c"),
    ("offer_p99_ms", "offer latency p99 (accept sent -> first offer)", "ms", "#d62728"),
]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img", "scaling.svg")

WIDTH = 760
PANEL_H = 230
TOP = 56
LEFT = 78
RIGHT = 24
GAP = 34
PLOT_H = PANEL_H - GAP - 40


def number(s):
    try:
        v = float(s)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def read_runs(paths):
    """[(riders, {column: value or None}, source)] sorted by riders."""
    runs = []
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "riders" not in reader.fieldnames:
                sys.exit(f"{path}: no 'riders' column")
            has_kind = "kind" in reader.fieldnames
            for row in reader:
                if has_kind and row.get("kind") != "summary":
                    continue
                riders = number(row.get("riders"))
                if riders is None or riders <= 0:
                    continue
                vals = {key: number(row.get(key)) for key, *_ in PANELS}
                runs.append((riders, vals, os.path.basename(path)))
    runs.sort(key=lambda r: r[0])
    return runs


def nice_step(span, target=5):
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def linear_ticks(lo, hi):
    if hi <= lo:
        hi = lo + 1
    step = nice_step(hi - lo)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo / 1.0001 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    return ticks or [lo, hi]


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 and v % 1e6 == 0:
        return f"{v / 1e6:g}M"
    if a >= 1e3 and v % 1e3 == 0:
        return f"{v / 1e3:g}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:g}"
    return f"{v:.2g}"


def text(x, y, s, size=12, anchor="middle", weight="normal", fill="#222"):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>'
    )


def svg(runs, sources):
    xs = [r[0] for r in runs]
    x_lo, x_hi = min(xs), max(xs)
    use_log = x_hi / x_lo >= 20
    if use_log:
        xticks = log_ticks(x_lo, x_hi)
        lx_lo, lx_hi = math.log10(min(x_lo, xticks[0])), math.log10(max(x_hi, xticks[-1]))
        if lx_hi == lx_lo:
            lx_hi += 1

        def sx(v):
            return LEFT + (math.log10(v) - lx_lo) / (lx_hi - lx_lo) * (WIDTH - LEFT - RIGHT)
    else:
        xticks = linear_ticks(0 if x_lo / max(x_hi, 1) < 0.3 else x_lo, x_hi)
        t_lo, t_hi = xticks[0], xticks[-1]

        def sx(v):
            return LEFT + (v - t_lo) / (t_hi - t_lo) * (WIDTH - LEFT - RIGHT)

    height = TOP + PANEL_H * len(PANELS) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        text(WIDTH / 2, 24, "dispatchd under dispatch-load city: cost against rider sockets", 16, weight="bold"),
        text(
            WIDTH / 2,
            42,
            f"{len(runs)} run(s); x: rider sockets{' (log scale)' if use_log else ''}",
            11,
            fill="#555",
        ),
    ]
    for i, (key, title, unit, colour) in enumerate(PANELS):
        top = TOP + i * PANEL_H
        y0, y1 = top + GAP, top + GAP + PLOT_H
        pts = [(r[0], r[1][key]) for r in runs if r[1][key] is not None]
        ymax = max([v for _, v in pts] + [0])
        yticks = linear_ticks(0, ymax if ymax > 0 else 1)
        y_hi = yticks[-1]

        def sy(v, y0=y0, y1=y1, y_hi=y_hi):
            return y1 - v / y_hi * (y1 - y0)

        out.append(text(LEFT, top + GAP - 10, f"{title} ({unit})", 13, anchor="start", weight="bold"))
        for t in yticks:
            y = sy(t)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e4e4e4"/>')
            out.append(text(LEFT - 6, y + 4, fmt(t), 11, anchor="end", fill="#444"))
        for t in xticks:
            x = sx(t)
            out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#f0f0f0"/>')
            out.append(f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 4}" stroke="#444"/>')
            out.append(text(x, y1 + 17, fmt(t), 11, fill="#444"))
        out.append(
            f'<polyline points="{LEFT},{y0} {LEFT},{y1} {WIDTH - RIGHT},{y1}" fill="none" stroke="#444"/>'
        )
        if not pts:
            out.append(text((LEFT + WIDTH - RIGHT) / 2, (y0 + y1) / 2, "no data", 12, fill="#999"))
            continue
        line = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in pts)
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, v in pts:
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(v):.1f}" r="4" fill="{colour}">'
                f"<title>{escape(f'{fmt(x)} riders: {v:.3g} {unit}')}</title></circle>"
            )
    out.append(text(WIDTH / 2, height - 10, "from " + ", ".join(sorted(set(sources))), 10, fill="#777"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", nargs="+", help="CSV files written by dispatch-load city --csv")
    ap.add_argument("-o", "--out", default=DEFAULT_OUT, help="SVG to write (default docs/img/scaling.svg)")
    a = ap.parse_args(argv)
    runs = read_runs(a.csv)
    if not runs:
        sys.exit("no summary rows found")
    doc = svg(runs, [r[2] for r in runs])
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(doc)
    print(f"wrote {os.path.normpath(a.out)} ({len(runs)} runs)")


if __name__ == "__main__":
    main(sys.argv[1:])
