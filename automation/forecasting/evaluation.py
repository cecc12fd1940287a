"""Rolling-origin evaluation of a forecaster on a whole trace, as it would run live: refit on a cadence,
forecast from every origin, and score against seasonal naive on exactly the same targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from automation.forecasting.forecaster import ForecasterSettings, RollingForecaster
from automation.forecasting.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_absolute_scaled_error,
)
from automation.forecasting.models import SeasonalNaiveModel
from automation.forecasting.seasonality import DAY, steps_per
from automation.forecasting.traces import Trace


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Scores of forecasts from every origin, and the forecasts themselves (flattened)."""

    trace: str
    horizon: int
    origins: int
    mae: float
    mape: float
    mase: float
    coverage: float
    models: dict[str, int]
    fit_seconds: float
    actual: np.ndarray
    forecast: np.ndarray
    baseline: np.ndarray


def evaluate_forecaster(
    trace: Trace,
    *,
    horizon: pd.Timedelta,
    warmup: pd.Timedelta = pd.Timedelta(days=7),
    origin_every: pd.Timedelta | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
    settings: ForecasterSettings | None = None,
    coverage_levels: tuple[float, float] = (0.05, 0.95),
    progress: bool = False,
) -> Evaluation:
    """Forecast `horizon` ahead from origins every `origin_every` (default: the horizon) after `warmup`;
    MASE is the model's MAE over the MAE of seasonal naive (one day back) on the same known targets."""
    step = trace.step
    steps = max(1, int(round(horizon / step)))
    every = max(1, int(round((origin_every or horizon) / step)))
    values = trace.load.to_numpy(dtype=float)
    season = max(1, steps_per(DAY, step))
    rolling = RollingForecaster(
        step=step,
        horizon=steps,
        start=pd.Timestamp(trace.load.index[0]),
        refit_every=refit_every,
        settings=settings,
    )
    baseline_model = SeasonalNaiveModel(season_length=season, history=np.zeros(0))
    warm = int(warmup / step)
    actual, forecast, baseline, lower, upper = [], [], [], [], []
    indices = range(len(values))
    for t in tqdm(
        indices, disable=not progress, desc=f"evaluating {trace.name}", unit="step", mininterval=1.0
    ):
        value = values[t]
        rolling.observe(value)
        baseline_model.update(np.array([value]))
        origin = t + 1
        if origin < warm or (origin - warm) % every or origin + steps > len(values):
            continue
        target = values[origin : origin + steps]
        if np.isnan(target).all():
            continue
        prediction = rolling.forecast(steps, levels=coverage_levels)
        if prediction is None:
            continue
        actual.append(target)
        forecast.append(prediction.mean)
        baseline.append(baseline_model.forecast(steps))
        lower.append(prediction.quantiles[coverage_levels[0]])
        upper.append(prediction.quantiles[coverage_levels[1]])
    if not actual:
        nothing = np.zeros(0)
        return Evaluation(
            trace=trace.name,
            horizon=steps,
            origins=0,
            mae=math.nan,
            mape=math.nan,
            mase=math.nan,
            coverage=math.nan,
            models={},
            fit_seconds=0.0,
            actual=nothing,
            forecast=nothing,
            baseline=nothing,
        )
    a, f, b = np.concatenate(actual), np.concatenate(forecast), np.concatenate(baseline)
    lo, hi = np.concatenate(lower), np.concatenate(upper)
    known = ~np.isnan(a)
    inside = (a[known] >= lo[known]) & (a[known] <= hi[known])
    return Evaluation(
        trace=trace.name,
        horizon=steps,
        origins=len(actual),
        mae=mean_absolute_error(a, f),
        mape=mean_absolute_percentage_error(a, f),
        mase=mean_absolute_scaled_error(a, f, b),
        coverage=float(inside.mean()) if known.any() else math.nan,
        models=dict(rolling.stats.models),
        fit_seconds=rolling.stats.fit_seconds,
        actual=a,
        forecast=f,
        baseline=b,
    )
