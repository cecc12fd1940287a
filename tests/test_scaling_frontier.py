"""Frontier against frontier: each reactive point that under-provisions matched by the policy's best point
at no more replica-hours, with no interpolation across the reactive curve; and a sweep on a real trace."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from automation.forecasting import load_trace
from automation.scaling import (
    CostPoint,
    SimulationSettings,
    capacity_at_percentile,
    cost_match,
    match_frontiers,
    sweep_frontier,
)

DATA = Path(__file__).parent / "data"


def point(label: str, cost: float, under: float) -> CostPoint:
    return CostPoint(label=label, replica_hours=cost, under_provisioned_minutes=under)


def test_each_reactive_point_that_misses_gets_the_best_policy_point_at_no_more_cost() -> None:
    reactive = [point("r0.5", 200, 0), point("r0.7", 150, 40), point("r0.9", 100, 100)]
    policy = [point("q0.99", 160, 1), point("q0.9", 140, 30), point("q0.8", 120, 10), point("q0.7", 101, 5)]
    comparison = match_frontiers(reactive, policy)
    # r0.5 never misses: nothing to match. r0.9 (100 rh): no policy point that cheap.
    assert [m.reactive.label for m in comparison.matches] == ["r0.9", "r0.7"]
    unmatched, matched = comparison.matches
    assert unmatched.policy is None and math.isnan(unmatched.ratio)
    # r0.7 (150 rh): q0.99 costs more; the best of the others is q0.7 with 5 minutes
    assert matched.policy is not None and matched.policy.label == "q0.7"
    assert matched.ratio == pytest.approx(5 / 40)
    assert comparison.median_ratio == comparison.worst_ratio == pytest.approx(0.125)
    assert comparison.unmatched == 1
    summary = comparison.summary()
    assert summary["matched"] == 1 and summary["matches"][0]["ratio"] is None


def test_no_interpolation_across_the_convex_reactive_curve() -> None:
    # a convex curve: the straight line between its points lies above it
    reactive = [point("r0.5", 200, 10), point("r0.9", 100, 100)]
    policy = [point("q", 150, 50)]
    interpolated = cost_match(reactive, policy[0])
    assert interpolated.ratio == pytest.approx(50 / 55)  # looks better than reactive
    frontier = match_frontiers(reactive, policy)
    # against real reactive points of no lower cost: 200 rh misses 10 minutes; the policy misses 50
    assert frontier.worst_ratio == pytest.approx(5.0)
    assert frontier.median_ratio == pytest.approx(5.0)
    assert frontier.unmatched == 1  # nothing as cheap as reactive at 0.9


def test_sweep_on_nyc_taxi_runs_both_curves_and_fits_the_forecaster_once() -> None:
    trace = load_trace(DATA / "nab" / "realKnownCause" / "nyc_taxi.csv")
    trace = trace.slice(0, 48 * 12)
    settings = SimulationSettings(
        capacity_per_replica=capacity_at_percentile(trace),
        provisioning_delay=pd.Timedelta(minutes=10),
        warmup=pd.Timedelta(days=4),
    )
    report = sweep_frontier(
        trace,
        policy="hybrid",
        settings=settings,
        targets=(0.6, 0.9),
        policy_targets=(0.6, 0.9),
        quantiles=(0.8, 0.95),
    )
    comparison = report.comparison
    assert len(comparison.reactive) == 2 and len(comparison.policy) == 4
    assert {p.label for p in comparison.policy} == {
        "hybrid@q0.8,t0.6",
        "hybrid@q0.8,t0.9",
        "hybrid@q0.95,t0.6",
        "hybrid@q0.95,t0.9",
    }
    reactive_runs = [r for r in report.runs if r.policy["policy"] == "reactive"]
    assert all(r.policy["decision_interval"] == "15s" for r in reactive_runs)
    hybrid_runs = [r for r in report.runs if r.policy["policy"] == "hybrid"]
    assert all(r.policy["decision_interval"] == "1m" for r in hybrid_runs)
    assert len({tuple(r.models.items()) for r in hybrid_runs}) == 1  # one tape, one set of fits
    # reactive at 0.9 is cheaper and misses more than at 0.6
    cheap, dear = comparison.reactive
    assert cheap.target_utilization == 0.9 and cheap.replica_hours < dear.replica_hours
    assert cheap.under_provisioned_minutes >= dear.under_provisioned_minutes
    summary = report.summary()
    assert summary["trace"] == "nyc_taxi" and summary["policy"] == "hybrid"
    assert len(summary["matches"]) == sum(1 for p in comparison.reactive if p.under_provisioned_minutes > 0)
