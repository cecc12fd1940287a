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


def at_target(label: str, target: float, cost: float, under: float) -> CostPoint:
    return CostPoint(
        label=label, replica_hours=cost, under_provisioned_minutes=under, target_utilization=target
    )


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


def test_the_floor_is_searched_down_to_each_reactive_points_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for the runs (cost falls as the floor's target rises, with a step the forecast adds):
    the search returns, for each reactive point that misses, the lowest target within the resolution
    whose run is as cheap, and runs far fewer points than a grid at that resolution."""
    from automation.scaling import comparison

    def cost(target: float) -> float:
        return 1000 / target + (40 if target < 0.84 else 0)  # the forecast's extra capacity, then none

    ran: list[float] = []

    def fake_curve(trace: object, **kwargs: object) -> tuple[list[CostPoint], list[object], tuple[float]]:
        (target,) = kwargs["policy_targets"]  # type: ignore[misc]
        ran.append(target)
        return [at_target(f"t{target}", target, cost(target), 100 * target)], [], (target,)

    monkeypatch.setattr(comparison, "policy_curve", fake_curve)
    reactive = [
        at_target("r0.5", 0.5, 1000 / 0.5, 0),
        at_target("r0.7", 0.7, 1000 / 0.7, 50),
        at_target("r0.9", 0.9, 1000 / 0.9, 90),
    ]
    settings = SimulationSettings(capacity_per_replica=1.0)
    points = comparison.floor_at_costs(None, reactive, settings=settings, quantile=0.99)  # type: ignore[arg-type]
    assert len(set(ran)) == len(ran) == len(points)  # each target run once
    assert len(ran) < 20  # a 0.005 grid over 0.7-0.99 would be 58 runs
    assert all(0.7 <= t <= comparison.FLOOR_CEILING for t in ran)  # r0.5 never misses: not searched
    by_target = {p.target_utilization: p for p in points}
    # r0.9: the floor at 0.9 costs what reactive does (no forecast capacity there): searched no further
    assert by_target[0.9].replica_hours == pytest.approx(reactive[2].replica_hours)
    # r0.7 (1428.6 rh): 1000/t + 40 <= 1428.6 from t = 0.72, so the search ends within 0.005 above it
    affordable = sorted(t for t, p in by_target.items() if p.replica_hours <= reactive[1].replica_hours)
    refused = sorted(t for t, p in by_target.items() if p.replica_hours > reactive[1].replica_hours)
    boundary = 1000 / (1000 / 0.7 - 40)
    assert boundary <= affordable[0] <= boundary + comparison.FLOOR_RESOLUTION
    assert max(t for t in refused if t < affordable[0]) >= affordable[0] - comparison.FLOOR_RESOLUTION
    matched = match_frontiers(reactive, points).matches
    assert [m.policy.target_utilization if m.policy else None for m in matched] == [0.9, affordable[0]]
    with pytest.raises(ValueError, match="resolution"):
        comparison.floor_at_costs(
            None,  # type: ignore[arg-type]
            reactive,
            settings=settings,
            quantile=0.99,
            resolution=0.2,
        )


def test_the_floor_search_on_a_real_trace_matches_at_no_more_cost() -> None:
    from automation.scaling.comparison import FLOOR_RESOLUTION, floor_at_costs, reactive_curve

    trace = load_trace(DATA / "nab" / "realKnownCause" / "nyc_taxi.csv").slice(0, 48 * 12)
    settings = SimulationSettings(
        capacity_per_replica=capacity_at_percentile(trace),
        provisioning_delay=pd.Timedelta(minutes=10),
        warmup=pd.Timedelta(days=4),
    )
    reactive, _ = reactive_curve(trace, settings=settings, targets=(0.6, 0.8))
    points = floor_at_costs(trace, reactive, settings=settings, quantile=0.95)
    assert points and all(p.label.startswith("hybrid@q0.95,t") for p in points)
    comparison = match_frontiers(reactive, points)
    for match in comparison.matches:
        if match.policy is None:
            continue
        assert match.policy.replica_hours <= match.reactive.replica_hours
        target = match.policy.target_utilization
        assert target is not None and match.reactive.target_utilization is not None
        if target > match.reactive.target_utilization:
            # the search stopped at the cost boundary: a target just below it costs more than reactive
            below = [p for p in points if target - FLOOR_RESOLUTION <= (p.target_utilization or 0) < target]
            assert below and all(p.replica_hours > match.reactive.replica_hours for p in below)
