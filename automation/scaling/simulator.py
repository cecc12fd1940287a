"""Replay a load trace through a scaling policy: decide every interval from the past only, start new
replicas that serve after the provisioning delay, and account for under- and over-provisioning.

Missing load (gaps, outages) is not scored: the policy sees NaN and holds, nothing counts as
under-provisioned, and those steps are left out of replica-hours and of the idle-capacity ratio.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from automation.forecasting.durations import format_duration
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.metrics import mean_absolute_percentage_error, relative_mae
from automation.forecasting.models import SeasonalNaiveModel
from automation.forecasting.seasonality import DAY, steps_per
from automation.forecasting.traces import Trace
from automation.scaling.policies import DecisionContext, ScalingPolicy

HOUR = pd.Timedelta(hours=1)
MINUTE = pd.Timedelta(minutes=1)
FINE_STEP = MINUTE
MIN_DECISION_INTERVAL_SECONDS = 15


@dataclass(frozen=True, kw_only=True)
class SimulationSettings:
    """Fleet physics and scoring: capacity of one replica, how long a new one takes to serve, how often
    the policy decides (default: every minute, or every trace step if finer), the lead time the forecast
    looks ahead, and the warm-up excluded from the scores (default: a quarter of the trace, at most 7
    days)."""

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
    most often and `models` counts every fit. `relative_mae`: the MAE of the forecasts the policy
    provisioned for over seasonal naive's on the same targets."""

    trace: str
    policy: dict[str, Any]
    under_provisioned_minutes: float
    replica_hours: float
    over_provisioning_ratio: float
    scale_actions: int
    mape: float
    relative_mae: float
    model: str
    models: dict[str, int]
    scored_minutes: float
    timeline: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def mase(self) -> float:
        """The former name of `relative_mae`."""
        return self.relative_mae

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
            "relative_mae": clean(self.relative_mae),
            "model": self.model,
            "models": dict(self.models),
            "scored_minutes": clean(self.scored_minutes),
            "notes": list(self.notes),
        }


def default_warmup(trace: Trace) -> pd.Timedelta:
    span = trace.step * len(trace.load)
    return min(pd.Timedelta(days=7), span / 4).floor("min")


def control_grid(
    step: pd.Timedelta, decision_interval: pd.Timedelta | None
) -> tuple[pd.Timedelta, pd.Timedelta]:
    """(tick, decision interval): the grid the control loop runs on — the trace held to 1-minute steps, or
    its own step if finer, refined to the decision cadence — and the cadence (default: one tick of the
    1-minute grid). A cadence must be a whole number of minutes or divide a minute (15 s, 20 s, 30 s)."""
    step_seconds = step.total_seconds()
    if step_seconds < 1 or abs(step_seconds - round(step_seconds)) > 1e-6:
        raise ForecastConfigError("step", f"the trace step must be a whole number of seconds (got {step})")
    step_s = int(round(step_seconds))
    fine_s = min(step_s, int(FINE_STEP.total_seconds()))
    interval = decision_interval if decision_interval is not None else pd.Timedelta(seconds=fine_s)
    interval_seconds = interval.total_seconds()
    interval_s = int(round(interval_seconds))
    if (
        abs(interval_seconds - interval_s) > 1e-6
        or interval_s < MIN_DECISION_INTERVAL_SECONDS
        or (interval_s % 60 and 60 % interval_s)
    ):
        raise ForecastConfigError(
            "decision_interval", f"must be 15 s, 20 s, 30 s or a whole number of minutes (got {interval})"
        )
    tick_s = math.gcd(math.gcd(step_s, fine_s), interval_s)
    return pd.Timedelta(seconds=tick_s), interval


def simulate(
    trace: Trace,
    policy: ScalingPolicy,
    *,
    settings: SimulationSettings,
    progress: bool = False,
) -> SimulationResult:
    """Run `policy` over `trace` on the fine control grid (see `control_grid`): the load is held within
    each trace step, replicas start serving the moment their delay has passed, and every decision sees
    loads up to the previous tick only."""
    step = trace.step
    tick, interval = control_grid(step, settings.decision_interval)
    tick_s = int(round(tick.total_seconds()))
    per_step = int(round(step / tick))
    every = int(round(interval / tick))
    lead = settings.lead_time if settings.lead_time is not None else settings.provisioning_delay
    values = trace.load.to_numpy(dtype=float)
    times = trace.load.index
    capacity = settings.capacity_per_replica
    start = pd.Timestamp(times[0])
    policy.configure(start=start, step=step, lead_time=lead, decision_interval=interval, tick=tick)
    first_known = values[~np.isnan(values)][0] if (~np.isnan(values)).any() else 0.0
    replicas = settings.initial_replicas or max(1, math.ceil(first_known / capacity / 0.7 - 1e-9))
    replicas = int(np.clip(replicas, policy.limits.min_replicas, policy.limits.max_replicas))
    serving = replicas
    pending: deque[list[int]] = deque()  # [ready at (seconds from start), count], oldest first
    pending_count = 0
    warmup = settings.warmup if settings.warmup is not None else default_warmup(trace)
    scored_from = start + warmup
    scored_from_s = warmup.total_seconds()
    tick_minutes = tick / MINUTE
    n = len(values)
    # per-step sums as Python lists (NumPy item updates cost more per tick), arrays after the loop
    requested_sum = [0.0] * n
    serving_sum = [0.0] * n
    under_sum = [0.0] * n
    mean_track = np.full(n, np.nan)
    upper_track = np.full(n, np.nan)
    baseline_track = np.full(n, np.nan)
    season = max(1, steps_per(DAY, step))
    baseline_model = SeasonalNaiveModel(season_length=season, history=np.zeros(0))
    baseline_cache: tuple[int, np.ndarray] | None = None
    actions = 0
    delay_s = settings.provisioning_delay.total_seconds()
    tick_times = pd.date_range(start, periods=n * per_step, freq=tick)
    loads = values.tolist()  # Python floats: per-tick arithmetic on NumPy scalars is several times slower
    ticks: Any = (
        tqdm(tick_times, desc=f"{policy.name} on {trace.name}", unit="tick", mininterval=1.0)
        if progress
        else tick_times  # a disabled bar still costs per tick
    )
    for i, now in enumerate(ticks):
        t = i * tick_s
        b = i // per_step
        while pending and pending[0][0] <= t:
            serving += pending[0][1]
            pending_count -= pending[0][1]
            pending.popleft()
        if i > 0 and i % every == 0:
            context = DecisionContext(
                time=now,
                requested_replicas=serving + pending_count,
                serving_replicas=serving,
                capacity_per_replica=capacity,
                step=step,
                decision_interval=interval,
                lead_time=lead,
            )
            decision = policy.decide(context)
            change = decision.desired - context.requested_replicas
            if change > 0:
                if delay_s <= 0:
                    serving += change
                else:
                    pending.append([int(math.ceil(t + delay_s)), change])
                    pending_count += change
            elif change < 0:
                remove = -change
                while remove and pending:  # cancel the newest provisioning replicas first
                    cancelled = min(remove, pending[-1][1])
                    pending[-1][1] -= cancelled
                    pending_count -= cancelled
                    remove -= cancelled
                    if not pending[-1][1]:
                        pending.pop()
                serving -= remove
            if change and t >= scored_from_s:
                actions += 1
            if decision.forecast is not None and decision.window is not None:
                first, last = decision.window
                origin = b - 1  # the last completed step
                targets = np.arange(origin + first, min(n, origin + last + 1))
                offsets = targets - origin - 1
                mean_track[targets] = decision.forecast.mean[offsets]
                upper_track[targets] = next(iter(decision.forecast.quantiles.values()))[offsets]
                if baseline_cache is None or baseline_cache[0] != b or len(baseline_cache[1]) < last:
                    baseline_cache = (b, baseline_model.forecast(max(last, 1)))
                baseline_track[targets] = baseline_cache[1][offsets]
        load = loads[b]
        requested_sum[b] += serving + pending_count
        end = t + tick_s
        if pending and pending[0][0] < end:
            # replicas becoming ready mid-tick serve only the rest of it
            segments = [(t, serving)]
            count = serving
            for ready_at, added in pending:
                if ready_at >= end:
                    break
                count += added
                segments.append((ready_at, count))
            bounds = [begin for begin, _ in segments[1:]] + [end]
            spans = list(zip(segments, bounds, strict=True))
            serving_sum[b] += sum(c * (stop - begin) for (begin, c), stop in spans) / tick_s
            if not math.isnan(load):
                under_sum[b] += sum(
                    (stop - begin) / 60 for (begin, c), stop in spans if load > c * capacity * (1 + 1e-9)
                )
        else:
            serving_sum[b] += serving
            if load > serving * capacity * (1 + 1e-9):  # False for NaN
                under_sum[b] += tick_minutes
        policy.observe(now, load)
        if (i + 1) % per_step == 0:
            baseline_model.update(np.array([load]))
    policy.finish()
    requested_track = np.array(requested_sum) / per_step
    serving_track = np.array(serving_sum) / per_step
    under_track = np.array(under_sum)
    scored = (times >= scored_from) & ~np.isnan(values)
    load_scored = values[scored]
    capacity_scored = serving_track[scored] * capacity
    mean_load = float(load_scored.mean()) if len(load_scored) else math.nan
    idle = np.maximum(capacity_scored - load_scored, 0.0)
    forecast_known = scored & ~np.isnan(mean_track)
    models = policy.model_counts()
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
        "(gaps, outages: the policy holds, nothing is scored)",
        f"control loop on a {format_duration(tick)} grid (load held within each "
        f"{format_duration(step)} step), deciding every {format_duration(interval)}",
    ]
    return SimulationResult(
        trace=trace.name,
        policy=policy.describe() | {"decision_interval": format_duration(interval)},
        under_provisioned_minutes=float(under_track[scored].sum()),
        replica_hours=float(requested_track[scored].sum() * step / HOUR),
        over_provisioning_ratio=float(idle.mean() / mean_load) if mean_load else math.nan,
        scale_actions=actions,
        mape=mean_absolute_percentage_error(values[forecast_known], mean_track[forecast_known])
        if forecast_known.any()
        else math.nan,
        relative_mae=relative_mae(
            values[forecast_known], mean_track[forecast_known], baseline_track[forecast_known]
        )
        if forecast_known.any()
        else math.nan,
        model=model,
        models=models,
        scored_minutes=float(scored.sum() * step / MINUTE),
        timeline=timeline,
        notes=tuple(notes),
    )
