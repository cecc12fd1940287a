"""Scaling and forecasting figures, all in one run: the cost-matched comparison of predictive and hybrid
against the reactive (HPA) cost curve, one-hour-ahead MASE against seasonal naive, and the time to fit and
forecast 500 one-week series. Prints a table and writes benchmarks/results/scaling.json.

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
import math  # noqa: E402
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
    REACTIVE_TARGETS,
    CostPoint,
    SimulationSettings,
    cost_match,
    make_policy,
    simulate,
)

RESULTS = ROOT / "benchmarks" / "results" / "scaling.json"
PROVISIONING_DELAY = pd.Timedelta(minutes=10)
TARGET_RATIO = 0.5
DEFAULT_QUANTILE = 0.95
SENSITIVITY_QUANTILES = (0.9, 0.98)
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


def capacity_for(trace: Trace) -> float:
    """Capacity per replica such that the trace's 99.9th percentile needs 10 replicas."""
    return float(np.nanpercentile(trace.load.to_numpy(dtype=float), 99.9)) / 10


def run_simulation(
    path: str, policy: str, target: float, quick: bool, quantile: float = DEFAULT_QUANTILE
) -> dict[str, Any]:
    trace = quick_slice(load_trace(path), quick)
    settings = SimulationSettings(
        capacity_per_replica=capacity_for(trace),
        provisioning_delay=PROVISIONING_DELAY,
        lead_time=PROVISIONING_DELAY,
    )
    began = time.perf_counter()
    chosen = make_policy(policy, target_utilization=target, quantile=quantile)
    result = simulate(trace, chosen, settings=settings)
    summary = result.summary()
    summary.pop("notes")
    summary |= {
        "target_utilization": target,
        "quantile": quantile if policy != "reactive" else None,
        "seconds": round(time.perf_counter() - began, 1),
        "capacity_per_replica": round(settings.capacity_per_replica, 4),
    }
    return summary


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
        "mase": round(evaluation.mase, 3),
        "mae": round(evaluation.mae, 3),
        "mape": round(evaluation.mape, 2),
        "coverage_90": round(evaluation.coverage, 3),
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
        simulations = {
            (name, policy, target): pool.submit(run_simulation, str(path), policy, target, quick)
            for name, path in COST_TRACES.items()
            for policy, targets in (
                ("predictive", (0.7,)),
                ("hybrid", (0.7,)),
                ("reactive", REACTIVE_TARGETS),
            )
            for target in targets
        }
        # not the defaults: how much the predictive ratio depends on the quantile it provisions for
        sensitivity = {
            (name, q): pool.submit(run_simulation, str(path), "predictive", 0.7, quick, q)
            for name, path in COST_TRACES.items()
            for q in SENSITIVITY_QUANTILES
        }
        evaluations = [pool.submit(run_evaluation, str(path), quick) for path in evaluation_paths]
        simulation_results = {key: future.result() for key, future in simulations.items()}
        evaluation_results = [future.result() for future in evaluations]
        sensitivity_results = {key: future.result() for key, future in sensitivity.items()}
    comparisons: dict[str, Any] = {}
    for name in COST_TRACES:
        curve = [
            CostPoint(
                label=f"reactive@{target}",
                replica_hours=r["replica_hours"],
                under_provisioned_minutes=r["under_provisioned_minutes"],
            )
            for target in REACTIVE_TARGETS
            for r in [simulation_results[(name, "reactive", target)]]
        ]
        entry: dict[str, Any] = {
            "reactive_curve": [simulation_results[(name, "reactive", t)] for t in REACTIVE_TARGETS]
        }
        for policy in ("predictive", "hybrid"):
            run = simulation_results[(name, policy, 0.7)]
            match = cost_match(
                curve,
                CostPoint(
                    label=policy,
                    replica_hours=run["replica_hours"],
                    under_provisioned_minutes=run["under_provisioned_minutes"],
                ),
            )
            entry[policy] = run | {
                "reactive_under_at_same_replica_hours": None
                if math.isnan(match.reactive_under_at_same_cost)
                else round(match.reactive_under_at_same_cost, 1),
                "ratio": None if math.isnan(match.ratio) else round(match.ratio, 3),
                "inside_curve": match.inside,
                "meets_target": bool(match.inside and match.ratio <= TARGET_RATIO),
            }
        entry["predictive_quantile_sensitivity"] = []
        for q in SENSITIVITY_QUANTILES:
            run = sensitivity_results[(name, q)]
            match = cost_match(
                curve,
                CostPoint(
                    label=f"predictive@q{q}",
                    replica_hours=run["replica_hours"],
                    under_provisioned_minutes=run["under_provisioned_minutes"],
                ),
            )
            entry["predictive_quantile_sensitivity"].append(
                run | {"ratio": None if math.isnan(match.ratio) else round(match.ratio, 3)}
            )
        comparisons[name] = entry
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
            "capacity_rule": "p99.9 of the trace / 10",
            "predictive_quantile": 0.95,
            "hybrid_reactive_target": 0.7,
            "refit_every": "1d",
            "scored": "after a warm-up of min(7 days, a quarter of the trace); gaps and outages not scored",
        },
        "cost_matched": comparisons,
        "mase_one_hour": evaluation_results,
        "batch_timing": timing,
        "seconds": round(time.perf_counter() - began, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    quick = " [quick]" if report["quick"] else ""
    print(f"\nCost-matched comparison (10-minute provisioning delay, capacity = p99.9 / 10){quick}")
    header = ("trace", "policy", "replica-h", "under-min", "HPA@same-cost", "ratio")
    print(
        f"{header[0]:<38} {header[1]:<11} {header[2]:>10} {header[3]:>10} {header[4]:>14} {header[5]:>7} <.5"
    )
    for name, entry in report["cost_matched"].items():
        for run in entry["reactive_curve"]:
            label = f"HPA@{run['target_utilization']}"
            cost, under = run["replica_hours"], run["under_provisioned_minutes"]
            print(f"{name:<38} {label:<11} {cost:>10.0f} {under:>10.0f}")
        for policy in ("predictive", "hybrid"):
            run = entry[policy]
            same = run["reactive_under_at_same_replica_hours"]
            reference = "outside" if same is None else f"{same:.0f}"
            ratio = "-" if run["ratio"] is None else f"{run['ratio']:.3f}"
            verdict = "met" if run["meets_target"] else "NOT met"
            cost, under = run["replica_hours"], run["under_provisioned_minutes"]
            print(
                f"{name:<38} {policy:<11} {cost:>10.0f} {under:>10.0f} {reference:>14} {ratio:>7}  {verdict}"
            )
    print("\nPredictive at other quantiles (not the defaults; same cost matching)")
    for name, entry in report["cost_matched"].items():
        cells = []
        for run in entry["predictive_quantile_sensitivity"]:
            ratio = "outside the curve" if run["ratio"] is None else f"{run['ratio']:.3f}"
            cells.append(f"q={run['quantile']}: {ratio}")
        print(f"{name:<38} " + ", ".join(cells))
    print("\nOne-hour-ahead MASE against seasonal naive (one day back), rolling origin, daily refit")
    print(f"{'trace':<38} {'daily cycle':>11} {'MASE':>7} {'MAPE%':>7} {'cover90':>8} {'origins':>8}")
    for row in report["mase_one_hour"]:
        cycle = "yes" if row["daily_cycle"] else "no"
        print(
            f"{row['trace']:<38} {cycle:>11} {row['mase']:>7.3f} {row['mape']:>7.1f} "
            f"{row['coverage_90']:>8.3f} {row['origins']:>8}"
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
