"""Rolling-origin evaluation of a forecaster on a whole trace, as it would run live: refit on a cadence,
forecast from every origin, and score against the simple baselines on exactly the same targets.

`relative_mae` is the model's MAE over seasonal naive's (one day back) on those targets: a relative MAE,
not Hyndman's MASE (which scales by the in-sample naive error). One hour ahead, seasonal naive is a weak
baseline; the last value, the trailing one-hour mean, drift and automatic ETS are the hard ones, and
each comparison carries a day-block bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from automation.forecasting.baselines import (
    BASELINE_NAMES,
    TRAILING_WINDOW,
    day_block_interval,
    drift_forecast,
    fit_auto_ets,
    last_value_forecast,
    trailing_mean_forecast,
)
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.forecaster import ForecasterSettings, RollingForecaster
from automation.forecasting.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    relative_mae,
)
from automation.forecasting.models import SeasonalNaiveModel, SeriesModel
from automation.forecasting.seasonality import DAY, steps_per
from automation.forecasting.traces import Trace


@dataclass(frozen=True, kw_only=True)
class BaselineComparison:
    """The model against one baseline on the same targets: the baseline's MAE, the model's MAE over it
    (below 1: the model is better) and that ratio's day-block bootstrap interval (5%-95%)."""

    name: str
    mae: float
    relative_mae: float
    interval: tuple[float, float]

    @property
    def model_better(self) -> bool:
        """The whole interval is below 1."""
        return not math.isnan(self.interval[1]) and self.interval[1] < 1


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Scores of forecasts from every origin, and the forecasts themselves (flattened)."""

    trace: str
    horizon: int
    origins: int
    mae: float
    mape: float
    relative_mae: float
    coverage: float
    models: dict[str, int]
    fit_seconds: float
    actual: np.ndarray
    forecast: np.ndarray
    baseline: np.ndarray
    baselines: dict[str, BaselineComparison] = field(default_factory=dict)
    coverage_by_step: tuple[float, ...] = ()
    upper_hit_rate: float = math.nan
    upper_level: float = math.nan

    @property
    def mase(self) -> float:
        """The former name of `relative_mae` (it was never Hyndman's MASE)."""
        return self.relative_mae


def evaluate_forecaster(
    trace: Trace,
    *,
    horizon: pd.Timedelta,
    warmup: pd.Timedelta = pd.Timedelta(days=7),
    origin_every: pd.Timedelta | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
    settings: ForecasterSettings | None = None,
    coverage_levels: tuple[float, float] = (0.05, 0.95),
    baselines: Sequence[str] = BASELINE_NAMES,
    progress: bool = False,
) -> Evaluation:
    """Forecast `horizon` ahead from origins every `origin_every` (default: the horizon) after `warmup`,
    and the `baselines` from the same origins (automatic ETS refitted on the model's cadence, on the same
    window of history)."""
    unknown = set(baselines) - set(BASELINE_NAMES)
    if unknown:
        raise ForecastConfigError("baselines", f"unknown {sorted(unknown)}; choose from {BASELINE_NAMES}")
    settings = settings or ForecasterSettings()
    step = trace.step
    steps = max(1, int(round(horizon / step)))
    every = max(1, int(round((origin_every or horizon) / step)))
    values = trace.load.to_numpy(dtype=float)
    season = max(1, steps_per(DAY, step))
    day_steps = steps_per(DAY, step) or max(1, int(DAY / step))
    history_steps = max(1, int(settings.max_history / step))
    trailing = max(1, int(TRAILING_WINDOW / step))
    refit_steps = max(1, int(refit_every / step))
    rolling = RollingForecaster(
        step=step,
        horizon=steps,
        start=pd.Timestamp(trace.load.index[0]),
        refit_every=refit_every,
        settings=settings,
    )
    seasonal_naive = SeasonalNaiveModel(season_length=season, history=np.zeros(0))
    ets: SeriesModel | None = None
    ets_fitted_at = -refit_steps
    warm = int(warmup / step)
    actual, forecast, lower, upper, day = [], [], [], [], []
    others: dict[str, list[np.ndarray]] = {name: [] for name in baselines}
    seasonal_track: list[np.ndarray] = []
    label = f"evaluating {trace.name}"
    for t in tqdm(range(len(values)), disable=not progress, desc=label, unit="step", mininterval=1.0):
        value = values[t]
        rolling.observe(value)
        seasonal_naive.update(np.array([value]))
        if ets is not None:
            ets.update(np.array([value]))
        origin = t + 1
        if origin < warm or (origin - warm) % every or origin + steps > len(values):
            continue
        target = values[origin : origin + steps]
        if np.isnan(target).all():
            continue
        prediction = rolling.forecast(steps, levels=coverage_levels)
        if prediction is None:
            continue
        history = values[max(0, origin - history_steps) : origin]
        if "auto_ets" in baselines and origin - ets_fitted_at >= refit_steps:
            try:
                ets = fit_auto_ets(history, step=step)
            except ValueError:
                ets = None
            ets_fitted_at = origin
        actual.append(target)
        forecast.append(prediction.mean)
        seasonal_track.append(seasonal_naive.forecast(steps))
        lower.append(prediction.quantiles[coverage_levels[0]])
        upper.append(prediction.quantiles[coverage_levels[1]])
        day.append(np.full(steps, origin // day_steps))
        for name in baselines:
            if name == "seasonal_naive":
                others[name].append(seasonal_track[-1])
            elif name == "last_value":
                others[name].append(last_value_forecast(history, steps))
            elif name == "trailing_mean_1h":
                others[name].append(trailing_mean_forecast(history, steps, window=trailing))
            elif name == "drift":
                others[name].append(drift_forecast(history, steps))
            else:
                others[name].append(ets.forecast(steps) if ets is not None else np.full(steps, math.nan))
    if not actual:
        nothing = np.zeros(0)
        return Evaluation(
            trace=trace.name,
            horizon=steps,
            origins=0,
            mae=math.nan,
            mape=math.nan,
            relative_mae=math.nan,
            coverage=math.nan,
            models={},
            fit_seconds=0.0,
            actual=nothing,
            forecast=nothing,
            baseline=nothing,
            upper_level=coverage_levels[1],
        )
    a2, f2 = np.vstack(actual), np.vstack(forecast)
    lo2, hi2 = np.vstack(lower), np.vstack(upper)
    a, f, b = a2.ravel(), f2.ravel(), np.concatenate(seasonal_track)
    days = np.concatenate(day)
    known2 = ~np.isnan(a2)
    inside2 = (a2 >= lo2) & (a2 <= hi2)
    by_step = tuple(
        float(inside2[known2[:, k], k].mean()) if known2[:, k].any() else math.nan for k in range(steps)
    )
    known = known2.ravel()
    comparisons = {}
    for name, tracks in others.items():
        reference = np.concatenate(tracks)
        usable = known & ~np.isnan(f) & ~np.isnan(reference)
        comparisons[name] = BaselineComparison(
            name=name,
            mae=mean_absolute_error(a[usable], reference[usable]),
            relative_mae=relative_mae(a[usable], f[usable], reference[usable]),
            interval=day_block_interval(a[usable] - f[usable], a[usable] - reference[usable], days[usable]),
        )
    return Evaluation(
        trace=trace.name,
        horizon=steps,
        origins=len(actual),
        mae=mean_absolute_error(a, f),
        mape=mean_absolute_percentage_error(a, f),
        relative_mae=relative_mae(a, f, b),
        coverage=float(inside2[known2].mean()) if known.any() else math.nan,
        models=dict(rolling.stats.models),
        fit_seconds=rolling.stats.fit_seconds,
        actual=a,
        forecast=f,
        baseline=b,
        baselines=comparisons,
        coverage_by_step=by_step,
        upper_hit_rate=float((a2[known2] <= hi2[known2]).mean()) if known.any() else math.nan,
        upper_level=coverage_levels[1],
    )
