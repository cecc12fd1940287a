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
    """A stand-in for the runs (cost falls as the floor's target rises; below 0.84 the forecast adds a
    lot): for each reactive point that misses, the search returns the lowest target within the
    resolution whose run is as cheap, widening past reactive's target + 0.1 when it must, and gives up
    at the ceiling; far fewer runs than a grid at that resolution."""
    from automation.scaling import comparison

    def cost(target: float) -> float:
        return 1000 / target + (300 if target < 0.84 else 0)

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
        at_target("r0.95", 0.95, 1000.0, 120),  # cheaper than any floor up to the ceiling
    ]
    settings = SimulationSettings(capacity_per_replica=1.0)
    points = comparison.floor_at_costs(None, reactive, settings=settings, quantile=0.99)  # type: ignore[arg-type]
    assert len(set(ran)) == len(ran) == len(points)  # each target run once
    assert len(ran) < 15  # a 0.005 grid over 0.7-0.99 would be 58 runs
    assert all(0.7 <= t <= comparison.FLOOR_CEILING for t in ran)  # r0.5 never misses: not searched
    assert comparison.FLOOR_CEILING in ran  # r0.95 searched up to the ceiling
    by_target = {p.target_utilization: p for p in points}
    # r0.9: the floor at 0.9 costs what reactive does (no forecast capacity there): searched no further
    assert by_target[0.9].replica_hours == pytest.approx(reactive[2].replica_hours)
    # r0.7 (1428.6 rh): nothing below 0.84 is as cheap, so the search widened past 0.8 and ended just above
    budget = reactive[1].replica_hours
    affordable = sorted(t for t, p in by_target.items() if t is not None and p.replica_hours <= budget)
    refused = sorted(t for t, p in by_target.items() if t is not None and p.replica_hours > budget)
    assert 0.84 <= affordable[0] <= 0.84 + comparison.FLOOR_RESOLUTION
    assert max(t for t in refused if t < affordable[0]) >= affordable[0] - comparison.FLOOR_RESOLUTION
    matched = {m.reactive.label: m.policy for m in match_frontiers(reactive, points).matches}
    assert matched["r0.95"] is None
    assert matched["r0.9"] is not None and matched["r0.9"].target_utilization == 0.9
    assert matched["r0.7"] is not None and matched["r0.7"].target_utilization == affordable[0]
    with pytest.raises(ValueError, match="resolution"):
        comparison.floor_at_costs(
            None,  # type: ignore[arg-type]
            reactive,
            settings=settings,
            quantile=0.99,
            resolution=0.0001,
        )


def test_the_floor_search_on_a_real_trace_ends_at_each_cost_boundary() -> None:
    from automation.scaling.comparison import FLOOR_RESOLUTION, floor_at_costs, reactive_curve
    from automation.scaling.policies import ForecastTape

    trace = load_trace(DATA / "nab" / "realKnownCause" / "nyc_taxi.csv").slice(0, 48 * 12)
    settings = SimulationSettings(
        capacity_per_replica=capacity_at_percentile(trace),
        provisioning_delay=pd.Timedelta(minutes=10),
        warmup=pd.Timedelta(days=4),
    )
    reactive, _ = reactive_curve(trace, settings=settings, targets=(0.6, 0.8))
    tape = ForecastTape(levels=(0.95,))
    points = floor_at_costs(trace, reactive, settings=settings, quantile=0.95, tape=tape)
    assert points and all(p.label.startswith("hybrid@q0.95,t") for p in points)
    searched = 0
    for base in reactive:
        if base.under_provisioned_minutes <= 0 or base.target_utilization is None:
            continue
        own = [p for p in points if p.target_utilization == base.target_utilization]
        assert own, "every reactive point that misses is tried at its own target first"
        if own[0].replica_hours <= base.replica_hours:
            continue
        searched += 1
        # the bisection's end: a run at no more cost and one dearer, within the resolution below it
        cheap = [p for p in points if p.replica_hours <= base.replica_hours]
        dear = [p for p in points if p.replica_hours > base.replica_hours]
        assert any(
            0 < (c.target_utilization or 0) - (d.target_utilization or 0) <= FLOOR_RESOLUTION + 1e-9
            for c in cheap
            for d in dear
        ) or not cheap
    assert searched >= 1  # on this slice the forecast adds capacity: the floor had to be searched
