"""Canary analysis power (issue 11): how often `automation.ml.canary.judge` stops a canary that is worse by
+2%, +5% and +10% on error rate or latency, and how often it stops an identical one (false fails), over
50 trials each, for analysis windows of 5, 15 and 30 minutes.

The samples are what the analysis reads: one value per version every 10 s (a scrape), each the mean of
that interval's requests — 100 requests/s in all, the canary taking 10% — with a 2% error rate
(binomial per interval) and log-normal request latencies (median 120 ms, sigma 0.5). A stopped canary is a
verdict other than `pass` (marginal and fail both roll back in the seed's workflow). The time to verdict
is the window itself (plus its warm-up): the analysis waits for it, parked, then judges at once.

    python benchmarks/bench_canary.py [--trials 50]

Writes benchmarks/results/canary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation.ml.canary import MetricCheck, judge  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "canary.json"
SCRAPE = 10.0  # seconds between samples
RATE = 100.0  # requests per second, both versions
CANARY_SHARE = 0.10
ERROR_RATE = 0.02
LATENCY_MEDIAN, LATENCY_SIGMA = 0.120, 0.5
CHANGES = (0.0, 0.02, 0.05, 0.10)
WINDOWS = (300.0, 900.0, 1800.0)


def samples(rng: np.random.Generator, metric: str, share: float, change: float, count: int) -> np.ndarray:
    requests = max(1, int(RATE * share * SCRAPE))
    if metric == "error_rate":
        return rng.binomial(requests, min(1.0, ERROR_RATE * (1 + change)), size=count) / requests
    latencies = rng.lognormal(np.log(LATENCY_MEDIAN * (1 + change)), LATENCY_SIGMA, size=(count, requests))
    return latencies.mean(axis=1)


def trial(rng: np.random.Generator, metric: str, change: float, window: float) -> str:
    count = int(window // SCRAPE)
    baseline = samples(rng, metric, 1 - CANARY_SHARE, 0.0, count)
    canary = samples(rng, metric, CANARY_SHARE, change, count)
    check = MetricCheck(name=metric, regression="increase")
    return judge([check], {metric: (baseline.tolist(), canary.tolist())}).verdict


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(20261130)
    began = time.monotonic()
    rows = []
    for metric in ("error_rate", "latency"):
        for window in WINDOWS:
            for change in CHANGES:
                verdicts = [trial(rng, metric, change, window) for _ in range(args.trials)]
                stopped = sum(v != "pass" for v in verdicts) / args.trials
                rows.append(
                    {
                        "metric": metric,
                        "window_seconds": window,
                        "change": change,
                        "trials": args.trials,
                        "stopped": stopped,
                        "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
                    }
                )
    print(f"{'metric':<12}{'window':>8}" + "".join(f"{f'+{c:.0%}':>9}" for c in CHANGES))
    for metric in ("error_rate", "latency"):
        for window in WINDOWS:
            cells = [r for r in rows if r["metric"] == metric and r["window_seconds"] == window]
            print(f"{metric:<12}{window / 60:>6.0f} m" + "".join(f"{r['stopped']:>9.0%}" for r in cells))
    print("(+0%: an identical canary stopped = the false-fail rate; the others: detection rate)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python benchmarks/bench_canary.py",
                "model": {
                    "scrape_seconds": SCRAPE,
                    "requests_per_second": RATE,
                    "canary_share": CANARY_SHARE,
                    "error_rate": ERROR_RATE,
                    "latency_median": LATENCY_MEDIAN,
                    "latency_sigma": LATENCY_SIGMA,
                },
                "seconds": round(time.monotonic() - began, 1),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
