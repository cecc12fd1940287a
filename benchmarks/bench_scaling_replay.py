"""Frontier against frontier THROUGH THE LOOP: reactive swept over its utilisation target and the hybrid
(and predictive) over its quantile, each point replayed through the production scaling loop
(`automation scaling replay`: automation/scaling/replay.py, `evaluate_target` on a simulated clock, its
stored forecaster, guards, decision log and scale workflows), matched with `match_frontiers`
(automation/scaling/comparison.py) as the simulator's frontier is. Beside each trace: the simulator's
own frontier on the same trace, at the same sweep points and at its full grid, so the gap shows.

Traces: the development slices shipped under tests/data (NASA HTTP rows 0-7,199, NAB
cpu_utilization_asg_misconfiguration first six days, nyc_taxi first three weeks; tests/data/README.md).
Capacity per replica: the trace's p99.9 / 10 (bench_scaling's main capacity); 10-minute provisioning
delay and lead time; reactive decides every 15 s, the policies every minute, on the fine control grid.

    python benchmarks/bench_scaling_replay.py [--quick] [--workers 2] [--hybrid-targets 0.7 ...]

Writes benchmarks/results/scaling_replay.json (not with --quick). Needs PostgreSQL (a database of its
own, dropped after) and Redis (AUTOMATION_BENCH_REDIS, flushed around the run), as bench_engine.py.
"""

from __future__ import annotations

import os

# one BLAS thread per process: the figures are quoted per core, and the workers share the cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation.forecasting import load_trace  # noqa: E402
from automation.forecasting.traces import Trace  # noqa: E402
from automation.scaling import (  # noqa: E402
    HYBRID_TARGETS,
    POLICY_QUANTILES,
    REACTIVE_TARGETS,
    CostPoint,
    ForecastTape,
    SimulationSettings,
    capacity_at_percentile,
    make_policy,
    match_frontiers,
    simulate,
    sweep_frontier,
)
from automation.scaling.comparison import FIXED_TARGET, REACTIVE_INTERVAL  # noqa: E402
from benchmarks import bench_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scaling_replay.json"
DATA = ROOT / "tests" / "data"
TRACES = {
    "nasa_http": DATA / "nasa-http" / "requests_per_minute_rows_0-7199.csv",
    "cpu_utilization_asg_misconfiguration": DATA
    / "nab"
    / "realKnownCause"
    / "cpu_utilization_asg_misconfiguration.csv",
    "nyc_taxi": DATA / "nab" / "realKnownCause" / "nyc_taxi.csv",
}
PROVISIONING_DELAY = pd.Timedelta(minutes=10)
POLICY_INTERVAL = pd.Timedelta(minutes=1)
CAPACITY_DIVISOR = 10
TARGET_RATIO = 0.5
# The simulator's defaults, written into each replayed target so both sides run the same settings:
# replica bounds (ScalingLimits), refit cadence and warm-up history (PredictiveSettings), and the
# forecaster's history window (ForecasterSettings.max_history).
MIN_REPLICAS, MAX_REPLICAS = 1, 1000
REFIT_EVERY = pd.Timedelta(days=1)
MIN_HISTORY = pd.Timedelta(days=1)
HISTORY = pd.Timedelta(days=28)
QUICK_DAYS = 2


@dataclass(frozen=True, kw_only=True)
class Point:
    """One sweep point: a policy at a target (and quantile) on one trace, at its decision interval."""

    trace: str
    policy: str
    target: float
    quantile: float | None
    interval_seconds: float

    @property
    def label(self) -> str:
        if self.policy == "reactive":
            return f"reactive@{self.target:g}"
        suffix = f",t{self.target:g}" if self.policy == "hybrid" else ""
        return f"{self.policy}@q{self.quantile:g}{suffix}"


def trace_for(name: str, quick: bool) -> Trace:
    trace = load_trace(TRACES[name])
    if quick:
        return trace.slice(0, int(pd.Timedelta(days=QUICK_DAYS) / trace.step))
    return trace


def definition_document(
    point: Point, trace: Trace, capacity: float, *, guards: str = "loop"
) -> dict[str, Any]:
    """The target replayed for `point`: the simulator's settings written as a scaling target. `guards`
    `loop`: the target's default scale-in rules (cooldown 300 s after any change, at most 50% per step),
    as an operator gets them; `simulator`: none (cooldown 0, 100%), as the simulator's policies run."""
    kind = {"reactive": "r", "hybrid": "h", "predictive": "p"}[point.policy]
    quantile = point.quantile if point.quantile is not None else 0.95
    return {
        "name": f"bench-{kind}-t{round(point.target * 100)}-q{round(quantile * 100)}",
        "service": "bench",
        "provider": "local",
        "load": {
            "metric": "bench_load",
            "step": trace.step.total_seconds(),
            "history": HISTORY.total_seconds(),
        },
        "capacity_per_replica": capacity,
        "target_utilization": point.target,
        "min_replicas": MIN_REPLICAS,
        "max_replicas": MAX_REPLICAS,
        "policy": point.policy,
        "provisioning_delay": PROVISIONING_DELAY.total_seconds(),
        "scale_in": {"cooldown": 0, "max_percent": 100} if guards == "simulator" else {},
        "forecast": {
            "quantile": quantile,
            "refit_every": REFIT_EVERY.total_seconds(),
            "min_history": MIN_HISTORY.total_seconds(),
        },
    }


def replay_point(point: Point, quick: bool, guards: str) -> dict[str, Any]:
    """Replay one sweep point through the loop (in a worker process); its scores and what it cost."""
    from automation.scaling.definitions import ScalingTargetDefinition
    from automation.scaling.replay import replay

    trace = trace_for(point.trace, quick)
    capacity = capacity_at_percentile(trace_for(point.trace, False))
    definition = ScalingTargetDefinition.parse(definition_document(point, trace, capacity, guards=guards))
    began, cpu = time.perf_counter(), time.process_time()
    answer = replay(definition, trace, decision_interval=pd.Timedelta(seconds=point.interval_seconds))
    loop = answer["loop"]
    return {
        "point": asdict(point),
        "label": point.label,
        "under_provisioned_minutes": loop["under_provisioned_minutes"],
        "replica_hours": loop["replica_hours"],
        "scale_actions": loop["scale_actions"],
        "decisions": loop["policy"].get("decisions"),
        "scale_runs": loop["policy"].get("scale_runs"),
        "errors": loop["policy"].get("errors", []),
        "models": loop["models"],
        "seconds": round(time.perf_counter() - began, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }


def simulator_side(name: str, points: list[Point], quick: bool) -> dict[str, Any]:
    """The simulator on the same trace: each replayed point, and its own frontier at its full grid."""
    trace = trace_for(name, quick)
    capacity = capacity_at_percentile(trace_for(name, False))
    base = SimulationSettings(
        capacity_per_replica=capacity, provisioning_delay=PROVISIONING_DELAY, lead_time=PROVISIONING_DELAY
    )
    began = time.perf_counter()
    tape = ForecastTape(levels=POLICY_QUANTILES)
    scored: dict[str, dict[str, float]] = {}
    for point in points:
        policy = make_policy(
            point.policy,
            target_utilization=point.target,
            quantile=point.quantile,
            refit_every=REFIT_EVERY,
            tape=tape if point.quantile in POLICY_QUANTILES else None,
        )
        interval = pd.Timedelta(seconds=point.interval_seconds)
        result = simulate(trace, policy, settings=replace(base, decision_interval=interval))
        scored[point.label] = {
            "under_provisioned_minutes": round(result.under_provisioned_minutes, 4),
            "replica_hours": round(result.replica_hours, 4),
        }
    full = {
        policy: sweep_frontier(trace, policy=policy, settings=base, tape=tape).comparison.summary()
        for policy in sorted({p.policy for p in points} - {"reactive"})
    }
    return {
        "trace": name,
        "points": scored,
        "full_grid": full,
        "seconds": round(time.perf_counter() - began, 1),
    }


def frontier(
    name: str, policy: str, scores: dict[str, dict[str, Any]], points: list[Point]
) -> dict[str, Any]:
    """`match_frontiers` on the replay's (or the simulator's) points of one trace: reactive vs `policy`."""

    def cost_point(point: Point) -> CostPoint:
        score = scores[point.label]
        return CostPoint(
            label=point.label,
            replica_hours=float(score["replica_hours"]),
            under_provisioned_minutes=float(score["under_provisioned_minutes"]),
            target_utilization=point.target,
            quantile=point.quantile,
        )

    reactive = [
        cost_point(p) for p in points if p.trace == name and p.policy == "reactive" and p.label in scores
    ]
    chosen = [cost_point(p) for p in points if p.trace == name and p.policy == policy and p.label in scores]
    summary = match_frontiers(reactive, chosen).summary()
    median = summary["median_ratio"]
    summary["meets_target"] = median is not None and median <= TARGET_RATIO
    return summary


def sweep_points(
    name: str, *, reactive_targets: list[float], policies: dict[str, tuple[list[float], list[float]]]
) -> list[Point]:
    points = [
        Point(
            trace=name,
            policy="reactive",
            target=t,
            quantile=None,
            interval_seconds=REACTIVE_INTERVAL.total_seconds(),
        )
        for t in reactive_targets
    ]
    for policy, (quantiles, targets) in policies.items():
        points += [
            Point(
                trace=name,
                policy=policy,
                target=t,
                quantile=q,
                interval_seconds=POLICY_INTERVAL.total_seconds(),
            )
            for q in quantiles
            for t in targets
        ]
    return points


def priority_order(points: list[Point], hybrid_targets: list[float]) -> list[Point]:
    """The order the replays start in, so a run cut short still has whole frontiers: per trace (in the
    order given), the policies at the first floor target and reactive; then each further floor target
    (in the order given) of every trace; predictive last."""

    def rank(point: Point) -> tuple[int, int, int]:
        trace = list(TRACES).index(point.trace)
        if point.policy == "reactive":  # after the hybrid of its trace: the cheaper replays first
            return (0, trace, 1)
        if point.policy == "hybrid":
            return (hybrid_targets.index(point.target), trace, 0)
        return (len(hybrid_targets), trace, 0)

    return sorted(points, key=rank)


def renice_backend() -> None:
    """This worker's PostgreSQL backend at the worker's own niceness: the replay's database work is the
    benchmark's too (timing benchmarks may run beside it). Skipped where not permitted."""
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    try:
        os.setpriority(os.PRIO_PROCESS, int(backend), os.getpriority(os.PRIO_PROCESS, 0))
    except OSError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"first {QUICK_DAYS} days, two points each side")
    parser.add_argument("--workers", type=int, default=2, help="replay processes (default 2)")
    parser.add_argument("--traces", nargs="+", choices=sorted(TRACES), default=list(TRACES))
    parser.add_argument("--reactive-targets", nargs="*", type=float, default=list(REACTIVE_TARGETS))
    parser.add_argument("--quantiles", nargs="+", type=float, default=list(POLICY_QUANTILES))
    parser.add_argument(
        "--hybrid-targets",
        nargs="*",
        type=float,
        default=list(HYBRID_TARGETS),
        help="the hybrid's floor targets (the simulator's frontier sweeps HYBRID_TARGETS)",
    )
    parser.add_argument("--predictive", action="store_true", help="also predictive (at target 0.7)")
    parser.add_argument(
        "--guards",
        choices=("loop", "simulator"),
        default="loop",
        help="the replayed targets' scale-in rules: the loop's defaults, or none as in the simulator",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--database",
        default=None,
        help="replay into this existing migrated database (e.g. a running benchmark's), neither created "
        "nor dropped, Redis not flushed: to add points beside a run in progress",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="no replay: one report from the points of these JSON files (the simulator's side recomputed)",
    )
    parser.add_argument("--note", default="", help="said in the JSON's method field (why a reduction)")
    options = parser.parse_args()
    if options.merge:
        return merge(options)
    quick = options.quick
    if quick:
        options.reactive_targets, options.quantiles, options.hybrid_targets = [0.5, 0.9], [0.9], [0.7]
    policies: dict[str, tuple[list[float], list[float]]] = {
        "hybrid": (options.quantiles, options.hybrid_targets)
    }
    if options.predictive:
        policies["predictive"] = (options.quantiles, [FIXED_TARGET])
    points = [
        p
        for name in options.traces
        for p in sweep_points(name, reactive_targets=options.reactive_targets, policies=policies)
    ]
    began = time.perf_counter()
    bench_engine.configure_environment()
    print(
        f"{len(points)} replays on {options.workers} processes; database {bench_engine.BENCH_DB}", flush=True
    )
    replayed: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in options.traces}
    simulated: dict[str, dict[str, Any]] = {}
    with existing_database(options.database) if options.database else bench_engine.benchmark_database():
        from django.db import connections

        with connections["default"].cursor() as cursor:
            # the replay commits every decision; durability of a throw-away database is not measured
            name = options.database or bench_engine.BENCH_DB
            cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
        connections.close_all()  # the workers are forked: each opens its own connection
        with ProcessPoolExecutor(max_workers=options.workers, initializer=renice_backend) as pool:
            ordered = priority_order(points, options.hybrid_targets)
            futures = {pool.submit(replay_point, p, quick, options.guards): p for p in ordered}
            # the simulator's side in this process meanwhile (seconds to minutes per trace)
            for name in options.traces:
                simulated[name] = simulator_side(name, [p for p in points if p.trace == name], quick)
            for future in as_completed(futures):
                point = futures[future]
                row = future.result()
                replayed[point.trace][point.label] = row
                print(
                    f"{point.trace:<38} {point.label:<22} under {row['under_provisioned_minutes']:>9} min "
                    f"{row['replica_hours']:>10} replica-h  {row['seconds']:>7.1f} s "
                    f"({row['cpu_seconds']:.0f} s CPU){' ERRORS' if row['errors'] else ''}",
                    flush=True,
                )
                if not quick:  # after every point: a run cut short leaves what it measured
                    write(
                        options.output,
                        build_report(
                            options, points, replayed, simulated, quick, time.perf_counter() - began
                        ),
                    )
    report = build_report(options, points, replayed, simulated, quick, time.perf_counter() - began)
    if not quick:
        write(options.output, report)
    print_report(report)
    return 0


def write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


@contextmanager
def existing_database(name: str) -> Iterator[None]:
    """Another run's database, already migrated: used as it is, left as it is."""
    os.environ["DATABASE_URL"] = f"{bench_engine.PG_SERVER}/{name}"
    from automation.bootstrap import setup

    setup()
    yield


def merge(options: argparse.Namespace) -> int:
    """One report from the replayed points of several runs (a later run adding points to an earlier one):
    the points as measured with the simulator's figures the runs computed beside them (deterministic: the
    same slices, the same settings), the frontiers matched again."""
    replayed: dict[str, dict[str, dict[str, Any]]] = {}
    simulated: dict[str, dict[str, Any]] = {}
    missing: set[str] = set()
    seconds = 0.0
    for path in options.merge:
        report = json.loads(path.read_text())
        seconds += report["seconds"]
        missing.update(report.get("not_replayed", []))
        for entry in report["traces"]:
            side = simulated.setdefault(entry["trace"], {"points": {}, "full_grid": {}, "seconds": 0.0})
            side["full_grid"] = side["full_grid"] or entry["simulator_full_grid"]
            side["seconds"] += entry["simulator_seconds"]
            for row in entry["points"]:
                replayed.setdefault(entry["trace"], {})[row["label"]] = {
                    k: v for k, v in row.items() if k != "simulator"
                }
                side["points"][row["label"]] = row["simulator"]
    options.traces = [name for name in TRACES if name in replayed]
    points = [Point(**row["point"]) for name in options.traces for row in replayed[name].values()]
    options.reactive_targets = sorted({p.target for p in points if p.policy == "reactive"})
    options.quantiles = sorted({p.quantile for p in points if p.policy != "reactive" and p.quantile})
    options.hybrid_targets = sorted({p.target for p in points if p.policy == "hybrid"})
    options.predictive = any(p.policy == "predictive" for p in points)
    report = build_report(options, points, replayed, simulated, False, seconds)
    report["not_replayed"] = sorted(missing - {f"{p.trace} {p.label}" for p in points})
    report["complete"] = not report["not_replayed"]
    report["merged_from"] = [str(path) for path in options.merge]
    write(options.output, report)
    print_report(report)
    return 0


def build_report(
    options: argparse.Namespace,
    points: list[Point],
    replayed: dict[str, dict[str, dict[str, Any]]],
    simulated: dict[str, dict[str, Any]],
    quick: bool,
    seconds: float,
) -> dict[str, Any]:
    policies = sorted({p.policy for p in points} - {"reactive"})
    traces = []
    for name in options.traces:
        mine = [p for p in points if p.trace == name]
        side = simulated[name]
        rows = replayed[name]
        traces.append(
            {
                "trace": name,
                "file": str(TRACES[name].relative_to(ROOT)),
                "capacity_per_replica": round(capacity_at_percentile(trace_for(name, False)), 4),
                "replay": {policy: frontier(name, policy, rows, mine) for policy in policies},
                # only the points replayed so far: equal footing in a run cut short too
                "simulator_same_points": {
                    policy: frontier(name, policy, side["points"], [p for p in mine if p.label in rows])
                    for policy in policies
                },
                "simulator_full_grid": side["full_grid"],
                "points": [
                    {
                        **rows[p.label],
                        "simulator": side["points"][p.label],
                    }
                    for p in mine
                    if p.label in rows
                ],
                "replay_cpu_seconds": round(
                    sum(rows[p.label]["cpu_seconds"] for p in mine if p.label in rows), 1
                ),
                "simulator_seconds": side["seconds"],
            }
        )
    replay_cpu = sum(t["replay_cpu_seconds"] for t in traces)
    medians = {
        policy: [
            t["replay"][policy]["median_ratio"]
            for t in traces
            if t["replay"][policy]["median_ratio"] is not None
        ]
        for policy in policies
    }
    full = {
        "reactive_targets": list(REACTIVE_TARGETS),
        "quantiles": list(POLICY_QUANTILES),
        "hybrid_targets": list(HYBRID_TARGETS),
        "predictive": True,
    }
    ran = {
        "reactive_targets": options.reactive_targets,
        "quantiles": options.quantiles,
        "hybrid_targets": options.hybrid_targets,
        "predictive": options.predictive,
    }
    reduced = {
        key: {"ran": ran[key], "full": value}
        for key, value in full.items()
        if _as_set(ran[key]) != _as_set(value)
    }
    missing = [f"{p.trace} {p.label}" for p in points if p.label not in replayed[p.trace]]
    return {
        "quick": quick,
        "complete": not missing,
        "not_replayed": missing,
        "method": {
            "replay": "each point: `automation.scaling.replay.replay` (`automation scaling replay`): "
            "the simulator's fleet physics and scores, every decision the loop's `evaluate_target` for a "
            "disabled copy of the target (stored JSON forecaster refitted on its cadence and continued, "
            "guards, decision log in PostgreSQL, scale workflow run eagerly against the replayed fleet)",
            "matching": "automation.scaling.comparison.match_frontiers on the replayed points (each reactive "
            "point that under-provisions vs the policy's best point at no more replica-hours; no "
            "interpolation), the same function the simulator's frontier uses",
            "simulator_same_points": "the simulator's policies at exactly the replayed sweep points, matched "
            "the same way: the gap replay vs simulator at equal footing",
            "simulator_full_grid": "sweep_frontier with its defaults (reactive targets x quantiles x "
            "HYBRID_TARGETS), as bench_scaling.py, on the same slices",
            "traces": "the development slices shipped under tests/data (tests/data/README.md), not the full "
            "traces: NASA HTTP rows 0-7,199 (5 days at 1 min), asg_misconfiguration first 1,728 rows (6 days "
            "at 5 min), nyc_taxi first 1,008 rows (21 days at 30 min)"
            + (f"; --quick: first {QUICK_DAYS} days of each" if quick else ""),
            "settings": f"capacity per replica = the slice's p99.9 / {CAPACITY_DIVISOR}; provisioning delay "
            "and lead time 10m; reactive every 15 s (HPA sync period), the policies every 1 m; replicas "
            f"{MIN_REPLICAS}-{MAX_REPLICAS}; forecast refit every 1d, min history 1d, history 28d; "
            "scored after min(7 days, a quarter of the trace)",
            "guards": {
                "loop": "the targets' default scale-in rules (cooldown 300 s after any change, at most 50% "
                "per step), which the simulator's policies do not have",
                "simulator": "scale_in cooldown 0 and max_percent 100: the loop's reactive then decides as "
                "the simulator's (tests/scaling/test_replay.py)",
            }[options.guards],
            "sweep": ran,
            "reduced_from_full_sweep": reduced or "nothing: the full sweep",
            "note": options.note,
            "cpu": "cpu_seconds is the replaying process's CPU; PostgreSQL's own CPU is not counted",
        },
        "target": f"median ratio <= {TARGET_RATIO}",
        "traces": traces,
        "median_of_trace_medians": {
            policy: round(statistics.median(values), 4) if values else None
            for policy, values in medians.items()
        },
        "replay_cpu_seconds": round(replay_cpu, 1),
        "workers": options.workers,
        "seconds": round(seconds, 1),
        "output": str(options.output),
    }


def _as_set(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def _ratio(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def print_report(report: dict[str, Any]) -> None:
    quick = " [quick]" if report["quick"] else ""
    print(f"\nFrontier against frontier through the loop (replay) vs the simulator{quick}")
    print(f"{'trace':<38} {'policy':<11} {'side':<22} {'median':>7} {'worst':>7} {'matched':>8}")
    for entry in report["traces"]:
        for policy, summary in entry["replay"].items():
            sides = (
                ("replay", summary),
                ("simulator, same points", entry["simulator_same_points"][policy]),
                ("simulator, full grid", entry["simulator_full_grid"].get(policy)),
            )
            for side, figures in sides:
                if figures is None:
                    continue
                matched = f"{figures['matched']}/{figures['matched'] + figures['unmatched']}"
                print(
                    f"{entry['trace']:<38} {policy:<11} {side:<22} {_ratio(figures['median_ratio']):>7} "
                    f"{_ratio(figures['worst_ratio']):>7} {matched:>8}"
                )
    print(
        f"\nReplay CPU {report['replay_cpu_seconds']:.0f} s; wall {report['seconds']:.0f} s on "
        f"{report['workers']} processes" + ("" if report["quick"] else f"; results in {report['output']}")
    )


if __name__ == "__main__":
    raise SystemExit(main())
