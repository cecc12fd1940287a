"""Cost comparison of a policy with the reactive (HPA) baseline, frontier against frontier: reactive swept
over its utilisation target, the policy over its quantile; each reactive point that under-provisions is
matched by the policy's best point at no more replica-hours. No interpolation across the reactive curve
(it is convex, so a straight line between two of its points flatters whatever is compared with it).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.durations import format_duration
from automation.forecasting.traces import Trace
from automation.scaling.policies import ForecastTape, ScalingLimits, TrustSettings, make_policy
from automation.scaling.simulator import SimulationResult, SimulationSettings, simulate

REACTIVE_TARGETS = (0.5, 0.6, 0.7, 0.8, 0.9)
POLICY_QUANTILES = (0.8, 0.85, 0.9, 0.95, 0.99)
# the hybrid's floor at the reactive targets costs a little more than reactive there (the forecast adds
# capacity on top), so its floor is also swept half-way between them and just above: otherwise it could
# only ever be matched with reactive points a whole 0.1 of target dearer
HYBRID_TARGETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
FIXED_TARGET = 0.7
REACTIVE_INTERVAL = pd.Timedelta(seconds=15)  # the HPA's default sync period


@dataclass(frozen=True, kw_only=True)
class CostPoint:
    """One run: what it cost and how often it was short, and the parameters it ran with."""

    label: str
    replica_hours: float
    under_provisioned_minutes: float
    target_utilization: float | None = None
    quantile: float | None = None


@dataclass(frozen=True, kw_only=True)
class FrontierMatch:
    """A reactive point that under-provisions and the policy's best point at no more replica-hours
    (None, ratio NaN, when no policy point is that cheap)."""

    reactive: CostPoint
    policy: CostPoint | None
    ratio: float

    @property
    def matched(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, kw_only=True)
class FrontierComparison:
    """Both curves and one match per reactive point that under-provisions; the ratios are the policy's
    under-provisioned minutes over reactive's at no more cost (below 1: the policy is better)."""

    reactive: tuple[CostPoint, ...]
    policy: tuple[CostPoint, ...]
    matches: tuple[FrontierMatch, ...]

    @property
    def ratios(self) -> list[float]:
        return [m.ratio for m in self.matches if m.matched]

    @property
    def median_ratio(self) -> float:
        ratios = self.ratios
        return float(statistics.median(ratios)) if ratios else math.nan

    @property
    def worst_ratio(self) -> float:
        ratios = self.ratios
        return float(max(ratios)) if ratios else math.nan

    @property
    def unmatched(self) -> int:
        return sum(1 for m in self.matches if not m.matched)

    def summary(self) -> dict[str, Any]:
        def point(p: CostPoint | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {
                "label": p.label,
                "target_utilization": p.target_utilization,
                "quantile": p.quantile,
                "replica_hours": round(p.replica_hours, 2),
                "under_provisioned_minutes": round(p.under_provisioned_minutes, 2),
            }

        return {
            "reactive_curve": [point(p) for p in self.reactive],
            "policy_curve": [point(p) for p in self.policy],
            "matches": [
                {
                    "reactive": point(m.reactive),
                    "policy": point(m.policy),
                    "ratio": None if math.isnan(m.ratio) else round(m.ratio, 4),
                }
                for m in self.matches
            ],
            "median_ratio": _rounded(self.median_ratio),
            "worst_ratio": _rounded(self.worst_ratio),
            "matched": len(self.ratios),
            "unmatched": self.unmatched,
        }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def match_frontiers(reactive: Sequence[CostPoint], policy: Sequence[CostPoint]) -> FrontierComparison:
    """For each reactive point with under-provisioned minutes, the policy point with the fewest such
    minutes among those costing no more replica-hours (ties: the cheaper)."""
    matches = []
    for base in sorted(reactive, key=lambda p: p.replica_hours):
        if base.under_provisioned_minutes <= 0:
            continue
        affordable = [p for p in policy if p.replica_hours <= base.replica_hours]
        if not affordable:
            matches.append(FrontierMatch(reactive=base, policy=None, ratio=math.nan))
            continue
        best = min(affordable, key=lambda p: (p.under_provisioned_minutes, p.replica_hours))
        ratio = best.under_provisioned_minutes / base.under_provisioned_minutes
        matches.append(FrontierMatch(reactive=base, policy=best, ratio=ratio))
    return FrontierComparison(
        reactive=tuple(sorted(reactive, key=lambda p: p.replica_hours)),
        policy=tuple(sorted(policy, key=lambda p: p.replica_hours)),
        matches=tuple(matches),
    )


@dataclass(kw_only=True)
class FrontierReport:
    """One trace's sweep: the comparison and every run's scores."""

    trace: str
    policy: str
    comparison: FrontierComparison
    runs: list[SimulationResult] = field(default_factory=list, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "trace": self.trace,
            "policy": self.policy,
            "settings": self.settings,
            **self.comparison.summary(),
        }


def reactive_curve(
    trace: Trace,
    *,
    settings: SimulationSettings,
    targets: Sequence[float] = REACTIVE_TARGETS,
    reactive_interval: pd.Timedelta = REACTIVE_INTERVAL,
    limits: ScalingLimits | None = None,
) -> tuple[list[CostPoint], list[SimulationResult]]:
    """Reactive (HPA) at every target, deciding every `reactive_interval`: its points and runs."""
    reactive_settings = replace(settings, decision_interval=reactive_interval)
    points, runs = [], []
    for target in targets:
        result = simulate(
            trace,
            make_policy("reactive", target_utilization=target, limits=limits),
            settings=reactive_settings,
        )
        runs.append(result)
        points.append(_point(f"reactive@{target:g}", result, target=target))
    return points, runs


def policy_curve(
    trace: Trace,
    *,
    policy: str = "hybrid",
    settings: SimulationSettings,
    quantiles: Sequence[float] = POLICY_QUANTILES,
    policy_targets: Sequence[float] | None = None,
    policy_interval: pd.Timedelta | None = None,
    limits: ScalingLimits | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
    tape: ForecastTape | None = None,
    trust: TrustSettings | None = None,
) -> tuple[list[CostPoint], list[SimulationResult], tuple[float, ...]]:
    """The policy at every quantile (and, for `hybrid`, every floor target: `policy_targets`, default
    `HYBRID_TARGETS`; `predictive` runs at its fallback target 0.7), deciding every `policy_interval`
    (default 1 minute): its points, runs and the targets used. Pass `tape` to share one forecaster fit."""
    policy_settings = replace(settings, decision_interval=policy_interval)
    if policy != "hybrid":
        policy_targets = (FIXED_TARGET,)
    elif policy_targets is None:
        policy_targets = HYBRID_TARGETS
    tape = tape or ForecastTape(levels=tuple(sorted(set(quantiles))))
    points, runs = [], []
    for quantile in quantiles:
        for target in policy_targets:
            chosen = make_policy(
                policy,
                target_utilization=target,
                quantile=quantile,
                limits=limits,
                refit_every=refit_every,
                tape=tape,
                trust=trust,
            )
            result = simulate(trace, chosen, settings=policy_settings)
            runs.append(result)
            label = f"{policy}@q{quantile:g}" + (f",t{target:g}" if policy == "hybrid" else "")
            points.append(_point(label, result, target=target, quantile=quantile))
    return points, runs, tuple(policy_targets)


#: How finely `floor_at_costs` searches the hybrid's floor target, and the highest floor it tries.
FLOOR_RESOLUTION = 0.005
FLOOR_CEILING = 0.99


def floor_at_costs(
    trace: Trace,
    reactive: Sequence[CostPoint],
    *,
    settings: SimulationSettings,
    quantile: float,
    policy_interval: pd.Timedelta | None = None,
    limits: ScalingLimits | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
    tape: ForecastTape | None = None,
    trust: TrustSettings | None = None,
    resolution: float = FLOOR_RESOLUTION,
) -> list[CostPoint]:
    """The hybrid's points where they matter for `match_frontiers`: for each reactive point that
    under-provisions, its floor target is searched (by bisection, to `resolution`) for the lowest target
    (the most capacity) whose run costs no more replica-hours than that point, from reactive's own target
    up to `FLOOR_CEILING`. The point of every run made is returned.

    A fixed grid of floor targets reads the hybrid's curve only where the grid falls: where the forecast
    adds a little capacity, the floor at reactive's target t costs a hair more than reactive at t, and the
    match falls to the next target on the grid, which may miss several times as many minutes. Searching
    at each reactive point's cost reads the hybrid's frontier there, to within `resolution` of target,
    with real runs (no interpolation); cheaper than a fine grid over the whole range. A reactive target
    above `FLOOR_CEILING` is searched up to itself. Without `tape`, one is made for every run here."""
    if not 0.001 <= resolution < 0.1:
        raise ValueError("resolution must be in [0.001, 0.1)")
    tape = tape or ForecastTape(levels=(quantile,))
    points: dict[float, CostPoint] = {}

    def at(target: float) -> CostPoint:
        key = round(target, 4)
        if key not in points:
            found, _, _ = policy_curve(
                trace,
                policy="hybrid",
                settings=settings,
                quantiles=(quantile,),
                policy_targets=(key,),
                policy_interval=policy_interval,
                limits=limits,
                refit_every=refit_every,
                tape=tape,
                trust=trust,
            )
            points[key] = found[0]
        return points[key]

    for base in sorted(reactive, key=lambda p: p.replica_hours):
        if base.under_provisioned_minutes <= 0 or base.target_utilization is None:
            continue
        budget = base.replica_hours
        low = base.target_utilization
        ceiling = max(FLOOR_CEILING, low)
        if at(low).replica_hours <= budget:
            continue  # the floor at reactive's own target fits: a lower one costs more than reactive
        high = min(ceiling, low + 0.1)
        while at(high).replica_hours > budget and high < ceiling:
            low, high = high, min(ceiling, high + 0.1)
        if at(high).replica_hours > budget:
            continue  # not even the highest floor is as cheap
        while high - low > resolution:
            middle = round((low + high) / 2, 4)
            if at(middle).replica_hours <= budget:
                high = middle
            else:
                low = middle
    return sorted(points.values(), key=lambda p: p.replica_hours)


def sweep_frontier(
    trace: Trace,
    *,
    policy: str = "hybrid",
    settings: SimulationSettings,
    targets: Sequence[float] = REACTIVE_TARGETS,
    quantiles: Sequence[float] = POLICY_QUANTILES,
    policy_targets: Sequence[float] | None = None,
    reactive_interval: pd.Timedelta = REACTIVE_INTERVAL,
    policy_interval: pd.Timedelta | None = None,
    limits: ScalingLimits | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
    tape: ForecastTape | None = None,
    trust: TrustSettings | None = None,
    search_floor: bool = False,
) -> FrontierReport:
    """Run reactive at every target (deciding every `reactive_interval`) and the policy at every quantile
    (deciding every `policy_interval`, default 1 minute) on `trace`. A policy with a reactive part
    (`hybrid`: its floor) is swept over `policy_targets` (default `HYBRID_TARGETS`) x quantiles, or with
    `search_floor` its floor is searched at each reactive point's cost (`floor_at_costs`) per quantile;
    `predictive` runs over quantiles at target 0.7 (its warm-up fallback). The forecaster is fitted once
    (see `ForecastTape`; pass one to share it with other sweeps of the same trace, e.g. at another
    capacity, when its levels cover `quantiles`)."""
    reactive_points, runs = reactive_curve(
        trace, settings=settings, targets=targets, reactive_interval=reactive_interval, limits=limits
    )
    policy_runs: list[SimulationResult] = []
    if search_floor and policy == "hybrid":
        tape = tape or ForecastTape(levels=tuple(sorted(set(quantiles))))
        policy_points = []
        for quantile in quantiles:
            policy_points += floor_at_costs(
                trace,
                reactive_points,
                settings=settings,
                quantile=quantile,
                policy_interval=policy_interval,
                limits=limits,
                refit_every=refit_every,
                tape=tape,
                trust=trust,
            )
        used: list[float] | str = f"searched at each reactive point's cost (to {FLOOR_RESOLUTION})"
    else:
        policy_points, policy_runs, used_targets = policy_curve(
            trace,
            policy=policy,
            settings=settings,
            quantiles=quantiles,
            policy_targets=policy_targets,
            policy_interval=policy_interval,
            limits=limits,
            refit_every=refit_every,
            tape=tape,
            trust=trust,
        )
        used = list(used_targets)
    comparison = match_frontiers(reactive_points, policy_points)
    return FrontierReport(
        trace=trace.name,
        policy=policy,
        comparison=comparison,
        runs=runs + policy_runs,
        settings={
            "capacity_per_replica": round(settings.capacity_per_replica, 4),
            "provisioning_delay": format_duration(settings.provisioning_delay),
            "reactive_interval": format_duration(reactive_interval),
            "policy_interval": format_duration(policy_interval) if policy_interval else "1m",
            "targets": list(targets),
            "policy_targets": used,
            "quantiles": list(quantiles),
        },
    )


def _point(
    label: str, result: SimulationResult, *, target: float, quantile: float | None = None
) -> CostPoint:
    return CostPoint(
        label=label,
        replica_hours=result.replica_hours,
        under_provisioned_minutes=result.under_provisioned_minutes,
        target_utilization=target,
        quantile=quantile,
    )


def capacity_at_percentile(trace: Trace, *, percentile: float = 99.9, replicas: int = 10) -> float:
    """Capacity per replica such that the trace's `percentile` load needs `replicas` replicas."""
    values = trace.load.to_numpy(dtype=float)
    return float(np.nanpercentile(values, percentile)) / replicas


@dataclass(frozen=True, kw_only=True)
class CostMatch:
    """Kept for callers of the former single-point comparison: `ratio` = the policy's under-provisioned
    minutes / the reactive curve's, linearly interpolated at the same replica-hours. Interpolating across
    the convex curve flatters the policy; `match_frontiers` is the comparison to quote."""

    policy: CostPoint
    reactive_under_at_same_cost: float
    ratio: float
    inside: bool


def reactive_under_at(curve: Sequence[CostPoint], replica_hours: float) -> float:
    """Linear interpolation between the two reactive points around `replica_hours` (NaN outside).
    Superseded by `match_frontiers`, which does not interpolate."""
    points = sorted(curve, key=lambda p: p.replica_hours)
    xs = np.array([p.replica_hours for p in points])
    ys = np.array([p.under_provisioned_minutes for p in points])
    if len(xs) < 2 or replica_hours < xs[0] or replica_hours > xs[-1]:
        return math.nan
    return float(np.interp(replica_hours, xs, ys))


def cost_match(curve: Sequence[CostPoint], policy: CostPoint) -> CostMatch:
    """Superseded by `match_frontiers` (see `CostMatch`)."""
    reference = reactive_under_at(curve, policy.replica_hours)
    if math.isnan(reference):
        return CostMatch(policy=policy, reactive_under_at_same_cost=math.nan, ratio=math.nan, inside=False)
    ratio = (
        policy.under_provisioned_minutes / reference
        if reference > 0
        else (0.0 if policy.under_provisioned_minutes == 0 else math.inf)
    )
    return CostMatch(policy=policy, reactive_under_at_same_cost=reference, ratio=ratio, inside=True)
