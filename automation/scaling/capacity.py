"""Capacity planning: per target, the load forecast over a horizon (default 30 days) with an interval, the
expected peak and when, the replicas it needs at the target's utilisation, the headroom left under
`max_replicas`, and right-sizing advice. Pure: a history in, a plan out (no I/O).

The history is planned at a coarse resolution (one hour by default) from the peak of each bucket, not its
mean: a fleet must hold the busiest minutes of the hour. The forecaster is the project's own (model chosen
by backtest one day ahead); its interval is calibrated on that backtest's errors and held at the width of
the longest horizon the backtest saw beyond it (the plan's notes say so, and warn when the horizon is long
against the history: the far end of a 30-day plan made from one week is a seasonal extrapolation, not a
validated forecast). A series without a daily cycle gets no forecast: the plan holds its observed peak and
says why, instead of provisioning for noise. So does a load that looks like the output of an autoscaler
(step-shaped, on a few quantised levels): its forecast would replay past scaling decisions, not demand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.applicability import autoscaler_reason, step_shape
from automation.forecasting.durations import format_duration
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.forecaster import ForecasterSettings, fit_forecaster
from automation.forecasting.seasonality import DAY, has_daily_cycle

__all__ = ["CapacityPlan", "CapacitySettings", "CapacitySpec", "Verdict", "plan_capacity"]


class Verdict:
    """What the plan concludes for a target."""

    OK = "ok"
    WILL_HIT_MAX = "will_hit_max"
    OVER_PROVISIONED = "over_provisioned"
    NO_DATA = "no_data"


@dataclass(frozen=True, kw_only=True)
class CapacitySpec:
    """What a plan needs of a scaling target: one replica's capacity (load units), the share of it to plan
    for, the replica bounds, and (when known) how many replicas run now."""

    name: str
    capacity_per_replica: float
    target_utilization: float = 0.8
    min_replicas: int = 1
    max_replicas: int
    current_replicas: int | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ForecastConfigError("name", "must not be empty")
        if not (self.capacity_per_replica > 0 and math.isfinite(self.capacity_per_replica)):
            raise ForecastConfigError("capacity_per_replica", "must be a positive number")
        if not 0 < self.target_utilization <= 1:
            raise ForecastConfigError("target_utilization", "must be in (0, 1]")
        if self.min_replicas < 0:
            raise ForecastConfigError("min_replicas", "must not be negative")
        if self.max_replicas < max(self.min_replicas, 1):
            raise ForecastConfigError("max_replicas", "must be at least min_replicas and at least 1")
        if self.current_replicas is not None and self.current_replicas < 0:
            raise ForecastConfigError("current_replicas", "must not be negative")

    @property
    def usable_per_replica(self) -> float:
        return self.capacity_per_replica * self.target_utilization

    def load_replicas(self, load: float) -> int:
        """Replicas `load` alone needs at the target utilisation (at least one; bounds not applied)."""
        if not math.isfinite(load) or load <= 0:
            return 1
        return max(1, math.ceil(load / self.usable_per_replica - 1e-9))

    def replicas_for(self, load: float) -> int:
        """Replicas holding `load` at the target utilisation: at least min_replicas, NOT capped at max."""
        return max(self.min_replicas, self.load_replicas(load))


@dataclass(frozen=True, kw_only=True)
class CapacitySettings:
    """The horizon, the planning resolution, the interval's upper level planned for, and the fleet
    utilisation at the forecast peak under which a target counts as over-provisioned."""

    horizon: pd.Timedelta = pd.Timedelta(days=30)
    resolution: pd.Timedelta = pd.Timedelta(hours=1)
    level: float = 0.95
    over_provisioned_below: float = 0.5
    backtest_horizon: pd.Timedelta = DAY

    def __post_init__(self) -> None:
        if self.resolution <= pd.Timedelta(0):
            raise ForecastConfigError("resolution", "must be positive")
        if self.horizon < self.resolution:
            raise ForecastConfigError("horizon", f"must be at least the resolution ({self.resolution})")
        if self.horizon > pd.Timedelta(days=366):
            raise ForecastConfigError("horizon", "must be at most 366 days")
        if not 0.5 < self.level < 1:
            raise ForecastConfigError("level", "must be in (0.5, 1)")
        if not 0 < self.over_provisioned_below < 1:
            raise ForecastConfigError("over_provisioned_below", "must be in (0, 1)")


@dataclass(kw_only=True)
class CapacityPlan:
    """One target's plan. `forecast` has columns mean, lower, upper at the plan's resolution (empty when no
    forecast applies); `history` is the bucket peaks the plan was made from."""

    spec: CapacitySpec
    settings: CapacitySettings
    history: pd.Series
    forecast: pd.DataFrame
    model: str
    forecast_applies: bool
    observed_peak: float
    observed_peak_at: pd.Timestamp | None
    peak: float
    peak_upper: float
    peak_at: pd.Timestamp | None
    replicas_needed: int
    replicas_needed_mean: int
    headroom: float
    hits_max_at: pd.Timestamp | None
    verdict: str
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the history looks like an autoscaler's output (step-shaped), not demand: no forecast was made
    autoscaler_output: bool = False

    @property
    def capacity_at_max(self) -> float:
        return self.spec.max_replicas * self.spec.usable_per_replica

    def to_dict(self) -> dict[str, Any]:
        def when(value: pd.Timestamp | None) -> str | None:
            return None if value is None else value.isoformat()

        def number(value: float) -> float | None:
            return None if not math.isfinite(value) else round(float(value), 4)

        return {
            "target": self.spec.name,
            "unit": self.spec.unit,
            "horizon": format_duration(self.settings.horizon),
            "resolution": format_duration(self.settings.resolution),
            "level": self.settings.level,
            "model": self.model,
            "forecast_applies": self.forecast_applies,
            "autoscaler_output": self.autoscaler_output,
            "observed_peak": number(self.observed_peak),
            "observed_peak_at": when(self.observed_peak_at),
            "expected_peak": number(self.peak),
            "expected_peak_upper": number(self.peak_upper),
            "expected_peak_at": when(self.peak_at),
            "replicas_needed": self.replicas_needed,
            "replicas_needed_at_mean": self.replicas_needed_mean,
            "current_replicas": self.spec.current_replicas,
            "min_replicas": self.spec.min_replicas,
            "max_replicas": self.spec.max_replicas,
            "capacity_per_replica": self.spec.capacity_per_replica,
            "target_utilization": self.spec.target_utilization,
            "capacity_at_max": number(self.capacity_at_max),
            "headroom": number(self.headroom),
            "hits_max_at": when(self.hits_max_at),
            "verdict": self.verdict,
            "advice": list(self.advice),
            "notes": list(self.notes),
        }


def bucket_peaks(history: pd.Series, resolution: pd.Timedelta) -> pd.Series:
    """The peak of each `resolution` bucket (NaN where the bucket has no known value), on a regular index."""
    if not isinstance(history.index, pd.DatetimeIndex):
        raise ForecastConfigError("history", "needs a DatetimeIndex")
    values = pd.to_numeric(history, errors="coerce").astype(float).sort_index()
    return values.resample(resolution).max()


def _fmt(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".rstrip()


def plan_capacity(
    spec: CapacitySpec, history: pd.Series, settings: CapacitySettings | None = None
) -> CapacityPlan:
    """The plan for one target from its load history (a DatetimeIndex series at any regular resolution no
    coarser than the plan's; NaN = unknown)."""
    settings = settings or CapacitySettings()
    peaks = bucket_peaks(history, settings.resolution)
    known = peaks.dropna()
    notes: list[str] = []
    if known.empty:
        return _empty_plan(spec, settings, peaks)
    observed_at = pd.Timestamp(known.idxmax())
    observed = float(known.max())
    steps = int(settings.horizon / settings.resolution)
    applies = has_daily_cycle(peaks.interpolate(limit_direction="both").to_numpy(), settings.resolution)
    # at the history's own resolution: an hour's peak hides how long each level was held
    shape = step_shape(pd.to_numeric(history, errors="coerce").to_numpy(dtype=float))
    span = known.index[-1] - known.index[0]
    if span < 2 * DAY:
        applies = False
        notes.append(f"{format_duration(span)} of history: too short to forecast (two days at least)")
    elif shape.autoscaled:
        applies = False
        notes.append(f"{autoscaler_reason(shape, _step_of(history))}; the plan holds the observed peak")
    elif not applies:
        notes.append(
            "no daily cycle in the history: a forecast would be noise; the plan holds the observed peak"
        )
    if applies:
        frame, model, calibrated = _forecast(peaks, steps, settings)
        if not np.isfinite(frame["upper"].to_numpy()).any():
            applies = False
            notes.append(f"model {model} gave no finite forecast: the plan holds the observed peak")
    if applies:
        notes.append(
            f"model {model} chosen by backtest {format_duration(settings.backtest_horizon)} ahead; "
            f"interval calibrated {format_duration(calibrated * settings.resolution)} ahead, "
            "held at that width beyond"
        )
        if settings.horizon > span:
            notes.append(
                f"the horizon ({format_duration(settings.horizon)}) is longer than the history "
                f"({format_duration(span)}): its far end extrapolates the seasons seen, unvalidated"
            )
        top = int(np.nanargmax(frame["upper"].to_numpy()))
        peak_at: pd.Timestamp | None = pd.Timestamp(frame.index[top])
        peak = float(frame["mean"].max())
        peak_upper = float(frame["upper"].iloc[top])
    else:
        frame = pd.DataFrame(columns=["mean", "lower", "upper"], dtype=float)
        model = "observed peak"
        peak_at, peak, peak_upper = None, observed, observed
    needed = spec.replicas_for(peak_upper)
    needed_mean = spec.replicas_for(peak)
    headroom = 1.0 - peak_upper / (spec.max_replicas * spec.usable_per_replica)
    hits_max_at = None
    if applies:
        over = frame.index[frame["upper"].to_numpy() > spec.max_replicas * spec.usable_per_replica]
        hits_max_at = pd.Timestamp(over[0]) if len(over) else None
    elif needed > spec.max_replicas:
        hits_max_at = observed_at
    verdict, advice = _advise(spec, settings, peak_upper, peak_at, needed, hits_max_at)
    return CapacityPlan(
        spec=spec,
        settings=settings,
        history=peaks,
        forecast=frame,
        model=model,
        forecast_applies=applies,
        observed_peak=observed,
        observed_peak_at=observed_at,
        peak=peak,
        peak_upper=peak_upper,
        peak_at=peak_at,
        replicas_needed=needed,
        replicas_needed_mean=needed_mean,
        headroom=headroom,
        hits_max_at=hits_max_at,
        verdict=verdict,
        advice=advice,
        notes=notes,
        autoscaler_output=shape.autoscaled,
    )


def _step_of(history: pd.Series) -> pd.Timedelta | None:
    """The history's usual spacing (None when it cannot tell)."""
    index = history.index
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    spacing = pd.Series(index).diff().median()
    return None if pd.isna(spacing) or spacing <= pd.Timedelta(0) else pd.Timedelta(spacing)


def _forecast(peaks: pd.Series, steps: int, settings: CapacitySettings) -> tuple[pd.DataFrame, str, int]:
    backtest = max(1, int(settings.backtest_horizon / settings.resolution))
    forecaster = fit_forecaster(
        peaks,
        horizon=backtest,
        step=settings.resolution,
        settings=ForecasterSettings(max_history=pd.Timedelta(days=90)),
    )
    low = 1.0 - settings.level
    result = forecaster.forecast(steps, levels=(low, settings.level))
    mean, upper, lower = result.mean, result.quantiles[settings.level], result.quantiles[low]
    frame = pd.DataFrame({"mean": mean, "lower": lower, "upper": upper}, index=result.index)
    return frame, forecaster.model_name, backtest


def _advise(
    spec: CapacitySpec,
    settings: CapacitySettings,
    peak_upper: float,
    peak_at: pd.Timestamp | None,
    needed: int,
    hits_max_at: pd.Timestamp | None,
) -> tuple[str, list[str]]:
    unit = spec.unit
    when = f" on {peak_at:%Y-%m-%d %H:%M}" if peak_at is not None else ""
    level = f"p{settings.level * 100:g}"
    if needed > spec.max_replicas:
        at = f" from {hits_max_at:%Y-%m-%d %H:%M}" if hits_max_at is not None else ""
        return Verdict.WILL_HIT_MAX, [
            f"will hit max_replicas{at}: the {level} peak of {_fmt(peak_upper, unit)}{when} needs {needed} "
            f"replicas at {spec.target_utilization:.0%} utilisation, max_replicas is {spec.max_replicas}; "
            f"raise max_replicas to {needed} or add capacity per replica"
        ]
    held = spec.current_replicas if spec.current_replicas is not None else spec.min_replicas
    fleet = held * spec.capacity_per_replica
    required = spec.load_replicas(peak_upper)
    if held > required and fleet > 0 and peak_upper / fleet < settings.over_provisioned_below:
        source = "runs" if spec.current_replicas is not None else "keeps (min_replicas)"
        advice = [
            f"over-provisioned: {spec.name} {source} {held} replicas; the {level} peak of "
            f"{_fmt(peak_upper, unit)}{when} uses {peak_upper / fleet:.0%} of them and needs {required}"
        ]
        if spec.min_replicas > required:
            advice.append(f"lower min_replicas from {spec.min_replicas} to {required}")
        return Verdict.OVER_PROVISIONED, advice
    spare = spec.max_replicas - needed
    return Verdict.OK, [
        f"the {level} peak of {_fmt(peak_upper, unit)}{when} needs {needed} of {spec.max_replicas} replicas "
        f"({spare} spare)"
    ]


def _empty_plan(spec: CapacitySpec, settings: CapacitySettings, peaks: pd.Series) -> CapacityPlan:
    return CapacityPlan(
        spec=spec,
        settings=settings,
        history=peaks,
        forecast=pd.DataFrame(columns=["mean", "lower", "upper"], dtype=float),
        model="none",
        forecast_applies=False,
        observed_peak=math.nan,
        observed_peak_at=None,
        peak=math.nan,
        peak_upper=math.nan,
        peak_at=None,
        replicas_needed=spec.min_replicas,
        replicas_needed_mean=spec.min_replicas,
        headroom=math.nan,
        hits_max_at=None,
        verdict=Verdict.NO_DATA,
        advice=["no load history: nothing to plan from"],
        notes=["the history holds no known value"],
    )
