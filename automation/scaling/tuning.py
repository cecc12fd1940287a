"""Tuning a target's policy on its own past (`AutomationConfig.enable_ml_optimization`): the quantile it
provisions for and how far ahead it reads the forecast, within fixed bounds, chosen by backtest.

Each candidate replays the target's recorded load through the simulator (automation/scaling/simulator.py,
the fleet physics of `scaling backtest`) with the target's own policy, capacity, provisioning delay and
bounds; the forecaster is fitted once per lead time and shared by the quantiles (`ForecastTape`). A
candidate replaces the target's settings only if it dominates them on that past: no more under-provisioned
minutes *and* no more replica-hours, one of them strictly less — so tuning never buys safety with cost or
cost with safety behind the operator's back; among those, the one that removes the most under-provisioned
minutes (then the most replica-hours). Otherwise the settings stay, and the record says why. Pure: the
service reads the history and stores the result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from automation.forecasting.durations import format_duration
from automation.forecasting.traces import Trace
from automation.scaling.definitions import ScalingTargetDefinition
from automation.scaling.policies import ForecastTape, ScalingLimits, make_policy
from automation.scaling.simulator import SimulationResult, SimulationSettings, simulate

#: The quantiles a tuned policy may provision for (the bounds of tuning).
QUANTILES = (0.8, 0.9, 0.95, 0.99)
#: Lead times tried, as multiples of the target's own (at least its provisioning delay).
LEAD_FACTORS = (1.0, 1.5, 2.0)
#: Least history a tuning reads: fewer days say little about a daily cycle.
MIN_HISTORY = pd.Timedelta(days=3)


@dataclass(frozen=True)
class Score:
    quantile: float
    lead_time: float  # seconds
    under_provisioned_minutes: float
    replica_hours: float

    def dominates(self, other: Score) -> bool:
        no_worse = (
            self.under_provisioned_minutes <= other.under_provisioned_minutes
            and self.replica_hours <= other.replica_hours + 1e-9
        )
        better = (
            self.under_provisioned_minutes < other.under_provisioned_minutes
            or self.replica_hours < other.replica_hours - 1e-9
        )
        return no_worse and better


@dataclass(frozen=True)
class Tuning:
    """The outcome of one tuning: the settings to use (None: keep the target's own) and why."""

    quantile: float | None
    lead_time: float | None
    reason: str
    baseline: Score
    chosen: Score | None
    candidates: int
    history_days: float

    def as_json(self) -> dict[str, object]:
        document = asdict(self)
        return document


def choose(baseline: Score, candidates: list[Score]) -> Score | None:
    """The candidate that dominates `baseline` and removes the most under-provisioned minutes (then the
    most replica-hours); None when none dominates it."""
    better = [c for c in candidates if c.dominates(baseline)]
    if not better:
        return None
    return min(better, key=lambda c: (c.under_provisioned_minutes, c.replica_hours, c.quantile, c.lead_time))


def _score(result: SimulationResult, quantile: float, lead: float) -> Score:
    return Score(
        quantile=quantile,
        lead_time=lead,
        under_provisioned_minutes=float(result.under_provisioned_minutes),
        replica_hours=float(result.replica_hours),
    )


def tune(definition: ScalingTargetDefinition, trace: Trace) -> Tuning:
    """Backtest the candidates on `trace` (the target's own recorded load) and choose (see the module)."""
    span = trace.step * len(trace.load)
    days = span / pd.Timedelta(days=1)
    own_quantile, own_lead = definition.forecast.quantile, float(definition.lead)
    if definition.policy == "reactive":
        raise ValueError("a reactive target has no forecast to tune")
    capacity = float(definition.capacity)  # per replica (1 for a per-replica load)
    limits = ScalingLimits(
        min_replicas=definition.min_replicas,
        max_replicas=definition.max_replicas,
        max_step_up=definition.scale_up.max_step,
    )
    refit = pd.Timedelta(seconds=float(definition.forecast.refit_every))
    delay = pd.Timedelta(seconds=float(definition.provisioning_delay))
    floor = float(definition.provisioning_delay)
    leads = sorted({own_lead, *(max(floor, own_lead * factor) for factor in LEAD_FACTORS)})
    quantiles = tuple(sorted({own_quantile, *QUANTILES}))
    scores: dict[tuple[float, float], Score] = {}
    for lead in leads:
        tape = ForecastTape(levels=quantiles)
        settings = SimulationSettings(
            capacity_per_replica=capacity,
            provisioning_delay=delay,
            lead_time=pd.Timedelta(seconds=lead),
        )
        for quantile in quantiles:
            policy = make_policy(
                definition.policy,
                target_utilization=definition.target_utilization,
                quantile=quantile,
                limits=limits,
                refit_every=refit,
                tape=tape,
            )
            scores[(quantile, lead)] = _score(simulate(trace, policy, settings=settings), quantile, lead)
    baseline = scores[(own_quantile, own_lead)]
    others = [s for key, s in scores.items() if key != (own_quantile, own_lead)]
    chosen = choose(baseline, others)
    if chosen is None:
        reason = (
            f"kept q{own_quantile:g}, lead {format_duration(pd.Timedelta(seconds=own_lead))}: none of "
            f"{len(others)} candidates had fewer under-provisioned minutes and no more replica-hours on "
            f"the last {days:.1f} d ({baseline.under_provisioned_minutes:.0f} min, "
            f"{baseline.replica_hours:,.0f} replica-h)"
        )
        return Tuning(None, None, reason, baseline, None, len(others), days)
    reason = (
        f"tuned to q{chosen.quantile:g}, lead {format_duration(pd.Timedelta(seconds=chosen.lead_time))} "
        f"by backtest on the last {days:.1f} d: under-provisioned {baseline.under_provisioned_minutes:.0f} → "
        f"{chosen.under_provisioned_minutes:.0f} min, {baseline.replica_hours:,.0f} → "
        f"{chosen.replica_hours:,.0f} replica-h"
    )
    return Tuning(chosen.quantile, chosen.lead_time, reason, baseline, chosen, len(others), days)


def finite_history(trace: Trace) -> bool:
    """Whether `trace` holds enough known load to tune on."""
    known = trace.load.notna().sum()
    return bool(known and trace.step * known >= MIN_HISTORY and math.isfinite(float(trace.load.max())))
