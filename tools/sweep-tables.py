#!/usr/bin/env python3
"""The tables of docs/dispatch.md from dispatch-sweep CSVs (stdlib only).

    tools/sweep-tables.py batch=target/sweep-batch/sweep-batch.csv \
        nearest=target/sweep-nearest/sweep-nearest.csv [label=CSV ...]

Prints, in Markdown: the means of every metric per run (columns in the order given), the
means by order volume (the instance name's first digit) for the first two runs, how often
the first run beats the second per instance, and the slowest replays of each run.
"""
import csv
import statistics
import sys

METRICS = [
    ("pct_undelivered", "undelivered %"),
    ("ctd_mean_min", "click-to-door mean, min"),
    ("ctd_p90_min", "click-to-door p90, min"),
    ("ctd_overage_mean_min", "CtD over 40 min, mean"),
    ("rtp_mean_min", "ready-to-pickup mean, min"),
    ("rtp_p90_min", "ready-to-pickup p90, min"),
    ("utilization_mean", "courier utilization"),
    ("cost_per_order_usd", "cost per order, $"),
    ("orders_per_bundle", "orders per bundle"),
]


def load(path):
    with open(path, newline="") as f:
        return {row["instance"]: row for row in csv.DictReader(f)}


def mean(rows, key):
    vals = [float(r[key]) for r in rows.values() if r[key] not in ("", "NaN", "nan")]
    return statistics.fmean(vals) if vals else float("nan")


def main(args):
    runs = []
    for a in args:
        label, _, path = a.partition("=")
        if not path:
            sys.exit(f"expected label=CSV, got {a!r}")
        runs.append((label, load(path)))
    if not runs:
        sys.exit(__doc__)

    print("| metric | " + " | ".join(l for l, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for key, name in METRICS:
        print(f"| {name} | " + " | ".join(f"{mean(r, key):.2f}" for _, r in runs) + " |")
    print("| replay time, sum over instances, s | "
          + " | ".join(f"{sum(float(x['wall_s']) for x in r.values()):.0f}" for _, r in runs) + " |")
    print("| instances | " + " | ".join(str(len(r)) for _, r in runs) + " |")

    if len(runs) >= 2:
        (la, a), (lb, b) = runs[0], runs[1]
        common = sorted(set(a) & set(b))
        print()
        print(f"By order volume: undelivered % and CtD mean, {la} / {lb}")
        print()
        print("| volume | instances | undelivered % | CtD mean, min |")
        print("|---|---|---|---|")
        for v in sorted({i[0] for i in common}):
            ids = [i for i in common if i[0] == v]
            ua = statistics.fmean(float(a[i]["pct_undelivered"]) for i in ids)
            ub = statistics.fmean(float(b[i]["pct_undelivered"]) for i in ids)
            ca = statistics.fmean(float(a[i]["ctd_mean_min"]) for i in ids)
            cb = statistics.fmean(float(b[i]["ctd_mean_min"]) for i in ids)
            print(f"| {v} | {len(ids)} | {ua:.2f} / {ub:.2f} | {ca:.2f} / {cb:.2f} |")
        ctd_wins = sum(float(a[i]["ctd_mean_min"]) < float(b[i]["ctd_mean_min"]) for i in common)
        fewer = sum(float(a[i]["pct_undelivered"]) < float(b[i]["pct_undelivered"]) for i in common)
        more = sum(float(a[i]["pct_undelivered"]) > float(b[i]["pct_undelivered"]) for i in common)
        print()
        print(f"{la} has the lower CtD mean on {ctd_wins} of {len(common)} instances, "
              f"fewer undelivered on {fewer} and more on {more}.")

    print()
    for label, r in runs:
        slow = sorted(r.values(), key=lambda x: -float(x["wall_s"]))[:3]
        print(f"slowest {label}: " + ", ".join(f"{x['instance']} {float(x['wall_s']):.1f} s" for x in slow))


if __name__ == "__main__":
    main(sys.argv[1:])
