"""Replay a load trace through a scaling policy: decide every interval from the past only, start new
replicas that serve after the provisioning delay, and account for under- and over-provisioning.

Missing load (gaps, outages) is not scored: the policy sees NaN and holds, nothing counts as
under-provisioned, and those steps are left out of replica-hours and of the idle-capacity ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from automation.forecasting.durations import format_duration
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.metrics import mean_absolute_percentage_error, mean_absolute_scaled_error
from automation.forecasting.models import SeasonalNaiveModel
from automation.forecasting.seasonality import DAY, steps_per
from automation.forecasting.traces import Trace
from automation.scaling.policies import DecisionContext, HybridPolicy, PredictivePolicy, ScalingPolicy

HOUR = pd.Timedelta(hours=1)
MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class SimulationSettings:
    """Fleet physics and scoring: capacity of one replica, how long a new one takes to serve, how often
    the policy decides (default: every trace step), the lead time the forecast looks ahead, and the
    warm-up excluded from the scores (default: a quarter of the trace, at most 7 days)."""

    capacity_per_replica: float
    provisioning_delay: pd.Timedelta = pd.Timedelta(minutes=10)
    lead_time: pd.Timedelta | None = None
    decision_interval: pd.Timedelta | None = None
    initial_replicas: int | None = None
    warmup: pd.Timedelta | None = None

    def __post_init__(self) -> None:
        if not self.capacity_per_replica > 0:
            raise ForecastConfigError("capacity_per_replica", "must be positive")
        if self.provisioning_delay < pd.Timedelta(0):
            raise ForecastConfigError("provisioning_delay", "must not be negative")


@dataclass(kw_only=True)
class SimulationResult:
    """Scores over the scored steps, plus the per-step timeline for plotting; `model` is the family fitted
    most often and `models` counts every fit."""

    trace: str
    policy: dict[str, Any]
    under_provisioned_minutes: float
    replica_hours: float
    over_provisioning_ratio: float
    scale_actions: int
    mape: float
    mase: float
    model: str
    models: dict[str, int]
    scored_minutes: float
    timeline: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The JSON-ready scores (NaN becomes None)."""

        def clean(value: float) -> float | None:
            return (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 4)
            )

        return {
            "trace": self.trace,
            "policy": self.policy,
            "under_provisioned_minutes": clean(self.under_provisioned_minutes),
            "replica_hours": clean(self.replica_hours),
            "over_provisioning_ratio": clean(self.over_provisioning_ratio),
            "scale_actions": self.scale_actions,
            "mape": clean(self.mape),
            "mase": clean(self.mase),
            "model": self.model,
            "models": dict(self.models),
            "scored_minutes": clean(self.scored_minutes),
            "notes": list(self.notes),
        }


def default_warmup(trace: Trace) -> pd.Timedelta:
    span = trace.step * len(trace.load)
    return min(pd.Timedelta(days=7), span / 4).floor("min")


def simulate(
    trace: Trace,
    policy: ScalingPolicy,
    *,
    settings: SimulationSettings,
    progress: bool = False,
) -> SimulationResult:
    """Run `policy` over `trace`; each step the policy first observes nothing newer than the previous step."""
    step = trace.step
    interval = settings.decision_interval or step
    every = int(round(interval / step))
    if every < 1 or abs(every * step - interval) > pd.Timedelta(seconds=1):
        raise ForecastConfigError("decision_interval", f"must be a whole multiple of the trace step ({step})")
    lead = settings.lead_time if settings.lead_time is not None else settings.provisioning_delay
    values = trace.load.to_numpy(dtype=float)
    times = trace.load.index
    capacity = settings.capacity_per_replica
    start = pd.Timestamp(times[0])
    if isinstance(policy, PredictivePolicy | HybridPolicy):
        policy.configure(start=start, step=step, lead_time=lead, decision_interval=interval)
    first_known = values[~np.isnan(values)][0] if (~np.isnan(values)).any() else 0.0
    replicas = settings.initial_replicas or max(1, math.ceil(first_known / capacity / 0.7 - 1e-9))
    replicas = int(np.clip(replicas, policy.limits.min_replicas, policy.limits.max_replicas))
    serving = replicas
    pending: list[pd.Timestamp] = []  # ready times of replicas still provisioning, oldest first
    warmup = settings.warmup if settings.warmup is not None else default_warmup(trace)
    scored_from = start + warmup
    step_minutes = step / MINUTE
    n = len(values)
    requested_track = np.zeros(n)
    serving_track = np.zeros(n)
    under_track = np.zeros(n)
    mean_track = np.full(n, np.nan)
    upper_track = np.full(n, np.nan)
    baseline_track = np.full(n, np.nan)
    season = max(1, steps_per(DAY, step))
    baseline_model = SeasonalNaiveModel(season_length=season, history=np.zeros(0))
    actions = 0
    delay = settings.provisioning_delay
    for i in tqdm(
        range(n), disable=not progress, desc=f"{policy.name} on {trace.name}", unit="step", mininterval=1.0
    ):
        now = pd.Timestamp(times[i])
        ready = sum(1 for t in pending if t <= now)
        serving += ready
        del pending[:ready]
        if i > 0 and i % every == 0:
            context = DecisionContext(
                time=now,
                requested_replicas=serving + len(pending),
                serving_replicas=serving,
                capacity_per_replica=capacity,
                step=step,
                decision_interval=interval,
                lead_time=lead,
            )
            decision = policy.decide(context)
            change = decision.desired - context.requested_replicas
            if change > 0:
                pending.extend([now + delay] * change)
                if delay == pd.Timedelta(0):
                    serving += change
                    pending.clear()
            elif change < 0:
                cancelled = min(-change, len(pending))
                del pending[len(pending) - cancelled :]
                serving -= -change - cancelled
            if change:
                actions += int(now >= scored_from)
            if decision.forecast is not None and decision.window is not None:
                first, last = decision.window
                targets = np.arange(i + first - 1, min(n, i + last))
                offsets = targets - i
                mean_track[targets] = decision.forecast.mean[offsets]
                upper_track[targets] = next(iter(decision.forecast.quantiles.values()))[offsets]
                baseline_track[targets] = baseline_model.forecast(last)[offsets]
        load = values[i]
        requested_track[i] = serving + len(pending)
        # capacity within the step: replicas becoming ready mid-step serve only the rest of it
        step_end = now + step
        within = [t for t in pending if t < step_end]
        serving_track[i] = serving + sum((step_end - t) / step for t in within)
        if not math.isnan(load):
            segments = [(now, serving)] + [(t, serving + k + 1) for k, t in enumerate(within)]
            under = 0.0
            for k, (begin, count) in enumerate(segments):
                end = segments[k + 1][0] if k + 1 < len(segments) else step_end
                if load > count * capacity * (1 + 1e-9):
                    under += (end - begin) / MINUTE
            under_track[i] = under
        policy.observe(now, load)
        baseline_model.update(np.array([load]))
    scored = (times >= scored_from) & ~np.isnan(values)
    load_scored = values[scored]
    capacity_scored = serving_track[scored] * capacity
    mean_load = float(load_scored.mean()) if len(load_scored) else math.nan
    idle = np.maximum(capacity_scored - load_scored, 0.0)
    forecast_known = scored & ~np.isnan(mean_track)
    models = _model_counts(policy)
    model = next(iter(models), "none (reactive)")
    timeline = pd.DataFrame(
        {
            "load": values,
            "requested_replicas": requested_track,
            "serving_capacity": serving_track * capacity,
            "under_provisioned_minutes": under_track,
            "forecast_mean": mean_track,
            "forecast_upper": upper_track,
            "scored": scored,
        },
        index=times,
    )
    missing = int(np.isnan(values).sum())
    notes = [
        f"scores exclude the first {format_duration(warmup)} (warm-up) and {missing} steps without load "
        "(gaps, outages: the policy holds, nothing is scored)"
    ]
    return SimulationResult(
        trace=trace.name,
        policy=policy.describe(),
        under_provisioned_minutes=float(under_track[scored].sum()),
        replica_hours=float(requested_track[scored].sum() * step / HOUR),
        over_provisioning_ratio=float(idle.mean() / mean_load) if mean_load else math.nan,
        scale_actions=actions,
        mape=mean_absolute_percentage_error(values[forecast_known], mean_track[forecast_known])
        if forecast_known.any()
        else math.nan,
        mase=mean_absolute_scaled_error(
            values[forecast_known], mean_track[forecast_known], baseline_track[forecast_known]
        )
        if forecast_known.any()
        else math.nan,
        model=model,
        models=models,
        scored_minutes=float(scored.sum() * step_minutes),
        timeline=timeline,
        notes=tuple(notes),
    )


def _model_counts(policy: ScalingPolicy) -> dict[str, int]:
    """How many times each model family was fitted over the run (warm-up included)."""
    predictive = policy.predictive if isinstance(policy, HybridPolicy) else policy
    if isinstance(predictive, PredictivePolicy) and predictive.forecaster is not None:
        return dict(sorted(predictive.forecaster.stats.models.items(), key=lambda item: -item[1]))
    return {}
