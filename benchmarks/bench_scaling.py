"""Scaling and forecasting figures, all in one run: the frontier comparison of predictive and hybrid
against the reactive (HPA) curve on the fine control grid, one-hour-ahead accuracy against the simple
baselines (relative MAE with day-block bootstrap intervals, interval coverage per step, the one-sided
bound's hit rate), and the time to fit and forecast 500 one-week series. Prints a table and writes
benchmarks/results/scaling.json.

    python benchmarks/bench_scaling.py [--quick]
"""

from __future__ import annotations

import os

# one BLAS thread per process: the figures are quoted per core, and two workers share the two cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation.forecasting import (  # noqa: E402
    BatchJob,
    evaluate_forecaster,
    forecast_many,
    has_daily_cycle,
    load_trace,
)
from automation.forecasting.traces import Trace  # noqa: E402
from automation.scaling import (  # noqa: E402
    POLICY_QUANTILES,
    REACTIVE_TARGETS,
    ForecastTape,
    SimulationSettings,
    sweep_frontier,
)

RESULTS = ROOT / "benchmarks" / "results" / "scaling.json"
PROVISIONING_DELAY = pd.Timedelta(minutes=10)
TARGET_RATIO = 0.5
CAPACITY_DIVISORS = (
    10,
    50,
    100,
)  # capacity per replica = p99.9 / divisor: whole-replica rounding dominates at 10
BEAT_INTERVAL_SECONDS = 60.0
WORKERS = 2


def shared_data() -> Path:
    configured = os.environ.get("AUTOMATION_SHARED_DATA")
    return Path(configured) if configured else ROOT.parent / "shared" / "data"


DATA = shared_data()
COST_TRACES = {
    "nasa_http": DATA / "nasa-http" / "requests_per_minute.csv",
    "cpu_utilization_asg_misconfiguration": DATA
    / "nab"
    / "realKnownCause"
    / "cpu_utilization_asg_misconfiguration.csv",
    "nyc_taxi": DATA / "nab" / "realKnownCause" / "nyc_taxi.csv",
}


def quick_slice(trace: Trace, quick: bool) -> Trace:
    if not quick:
        return trace
    return trace.slice(0, int(pd.Timedelta(days=21) / trace.step))


def capacity_for(trace: Trace, divisor: int = 10) -> float:
    """Capacity per replica such that the trace's 99.9th percentile needs `divisor` replicas."""
    return float(np.nanpercentile(trace.load.to_numpy(dtype=float), 99.9)) / divisor


def run_frontier(path: str, quick: bool) -> dict[str, Any]:
    """Both policies against reactive at every capacity, one forecaster fit for them all."""
    trace = quick_slice(load_trace(path), quick)
    began = time.perf_counter()
    tape = ForecastTape(levels=POLICY_QUANTILES)
    results: dict[str, Any] = {}
    for divisor in CAPACITY_DIVISORS:
        settings = SimulationSettings(
            capacity_per_replica=capacity_for(trace, divisor),
            provisioning_delay=PROVISIONING_DELAY,
            lead_time=PROVISIONING_DELAY,
        )
        # predictive at the main capacity only: the hybrid is the policy to deploy, and each sweep costs
        for policy in ("predictive", "hybrid") if divisor == CAPACITY_DIVISORS[0] else ("hybrid",):
            report = sweep_frontier(trace, policy=policy, settings=settings, tape=tape)
            summary = report.summary()
            median = summary["median_ratio"]
            summary["meets_target"] = median is not None and median <= TARGET_RATIO
            summary["no_point_worse"] = summary["worst_ratio"] is not None and summary["worst_ratio"] <= 1.0
            results[f"{policy}@p99.9/{divisor}"] = summary
    return {"trace": trace.name, "seconds": round(time.perf_counter() - began, 1), "runs": results}


def run_evaluation(path: str, quick: bool) -> dict[str, Any]:
    trace = quick_slice(load_trace(path), quick)
    began = time.perf_counter()
    evaluation = evaluate_forecaster(
        trace,
        horizon=pd.Timedelta(hours=1),
        warmup=min(pd.Timedelta(days=7), trace.step * len(trace.load) / 2),
    )
    values = trace.load.to_numpy(dtype=float)
    return {
        "trace": trace.name,
        "daily_cycle": has_daily_cycle(values, trace.step),
        "relative_mae_seasonal_naive": round(evaluation.relative_mae, 3),
        "baselines": {
            name: {
                "baseline_mae": round(c.mae, 3),
                "relative_mae": round(c.relative_mae, 3),
                "interval_90": [round(v, 3) for v in c.interval],
                "model_better": c.model_better,
            }
            for name, c in evaluation.baselines.items()
        },
        "mae": round(evaluation.mae, 3),
        "mape": round(evaluation.mape, 2),
        "coverage_90": round(evaluation.coverage, 3),
        "coverage_90_by_step": [round(v, 3) for v in evaluation.coverage_by_step],
        "upper_q95_hit_rate": round(evaluation.upper_hit_rate, 3),
        "origins": evaluation.origins,
        "models": evaluation.models,
        "seconds": round(time.perf_counter() - began, 1),
    }


def batch_series(count: int) -> list[BatchJob]:
    """One-week windows of the real 5-minute NAB traces, at staggered offsets, until `count` series."""
    files = sorted((DATA / "nab" / "realAWSCloudwatch").glob("*.csv")) + [
        COST_TRACES["cpu_utilization_asg_misconfiguration"]
    ]
    traces = [load_trace(path) for path in files]
    week = 7 * 288
    jobs: list[BatchJob] = []
    round_number = 0
    while len(jobs) < count:
        offset = round_number * 97
        added = False
        for trace in traces:
            window = trace.load.iloc[offset : offset + week]
            if len(window) == week and window.notna().sum() > week // 2 and len(jobs) < count:
                jobs.append(BatchJob(key=f"{trace.name}@{offset}", history=window))
                added = True
        if not added:
            raise RuntimeError(f"only {len(jobs)} one-week windows in the 5-minute NAB traces")
        round_number += 1
    return jobs


def timing_figure(count: int) -> dict[str, Any]:
    jobs = batch_series(count)
    began = time.perf_counter()
    forecasts = forecast_many(jobs, horizon=12, workers=WORKERS)
    elapsed = time.perf_counter() - began
    serial_sample = jobs[:50]
    began = time.perf_counter()
    forecast_many(serial_sample, horizon=12, workers=1)
    per_series = (time.perf_counter() - began) / len(serial_sample)
    return {
        "series": len(forecasts),
        "workers": WORKERS,
        "seconds": round(elapsed, 1),
        "fits_in_beat_interval": elapsed <= BEAT_INTERVAL_SECONDS,
        "seconds_per_series_one_thread": round(per_series, 3),
        "model": "holt_winters_add (damped trend, daily season m=288, heuristic initialisation, no brute "
        "force start grid) + seasonal-naive baseline backtest over the last 15% for the intervals",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="first three weeks of each trace, 100 batch series"
    )
    options = parser.parse_args()
    quick = options.quick
    began = time.perf_counter()
    ec2 = sorted((DATA / "nab" / "realAWSCloudwatch").glob("ec2_cpu_utilization_*.csv"))
    evaluation_paths = [COST_TRACES["nasa_http"], COST_TRACES["nyc_taxi"], *ec2]
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        frontiers = [pool.submit(run_frontier, str(path), quick) for path in COST_TRACES.values()]
        evaluations = [pool.submit(run_evaluation, str(path), quick) for path in evaluation_paths]
        frontier_results = [future.result() for future in frontiers]
        evaluation_results = [future.result() for future in evaluations]
    timing = timing_figure(100 if quick else 500)
    report = {
        "quick": quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "statsmodels": statsmodels.__version__,
        },
        "settings": {
            "provisioning_delay": "10m",
            "lead_time": "10m",
            "capacity_rule": "p99.9 of the trace / 10, / 50, / 100",
            "reactive": f"targets {list(REACTIVE_TARGETS)}, deciding every 15 s (HPA sync period)",
            "policies": f"quantiles {list(POLICY_QUANTILES)} (hybrid also over its floor's target), "
            "deciding every minute",
            "grid": "trace held to 1-minute ticks (15 s for reactive)",
            "matching": "each reactive point that under-provisions vs the policy's best point at no more "
            "replica-hours; no interpolation",
            "refit_every": "1d",
            "scored": "after a warm-up of min(7 days, a quarter of the trace); gaps and outages not scored",
        },
        "frontier": frontier_results,
        "one_hour_ahead": evaluation_results,
        "batch_timing": timing,
        "seconds": round(time.perf_counter() - began, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    return 0


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(report: dict[str, Any]) -> None:
    quick = " [quick]" if report["quick"] else ""
    print(f"\nFrontier against frontier (10-minute provisioning delay, fine control grid){quick}")
    print(f"{'trace':<38} {'policy @ capacity':<24} {'median':>7} {'worst':>7} {'matched':>8} <.5 <=1")
    for entry in report["frontier"]:
        for label, run in entry["runs"].items():
            matched = f"{run['matched']}/{run['matched'] + run['unmatched']}"
            verdict = "met" if run["meets_target"] else "NOT"
            bounded = "yes" if run["no_point_worse"] else "NO"
            print(
                f"{entry['trace']:<38} {label:<24} {_ratio(run['median_ratio']):>7} "
                f"{_ratio(run['worst_ratio']):>7} {matched:>8} {verdict:>3} {bounded:>3}"
            )
    print("\nOne hour ahead: the model's MAE over each baseline's (90% day-block bootstrap interval)")
    names = ("seasonal_naive", "last_value", "trailing_mean_1h", "drift", "auto_ets")
    print(
        f"{'trace':<34} {'cycle':>5} " + " ".join(f"{n:>20}" for n in names) + f" {'cov90':>6} {'hit95':>6}"
    )
    for row in report["one_hour_ahead"]:
        cells = []
        for name in names:
            b = row["baselines"].get(name)
            cells.append(
                "-"
                if b is None
                else f"{b['relative_mae']:.2f} [{b['interval_90'][0]:.2f},{b['interval_90'][1]:.2f}]"
            )
        cycle = "yes" if row["daily_cycle"] else "no"
        print(
            f"{row['trace']:<34} {cycle:>5} "
            + " ".join(f"{c:>20}" for c in cells)
            + f" {row['coverage_90']:>6.3f} {row['upper_q95_hit_rate']:>6.3f}"
        )
    timing = report["batch_timing"]
    fits = "yes" if timing["fits_in_beat_interval"] else "NO"
    print(
        f"\nBatch: {timing['series']} one-week 5-minute series fitted and forecast "
        f"in {timing['seconds']:.1f} s on {timing['workers']} processes\n"
        f"  ({timing['seconds_per_series_one_thread']:.3f} s per series on one thread); "
        f"fits a 60 s Beat interval: {fits}"
    )
    print(f"\nTotal {report['seconds']:.0f} s; results in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    raise SystemExit(main())
