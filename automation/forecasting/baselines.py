"""The simple forecasts a model must beat one hour ahead — last value, trailing one-hour mean, drift,
seasonal naive and automatic ETS — and the day-block bootstrap interval of an MAE ratio.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from automation.forecasting.aggregation import AggregatedModel, bucket_means
from automation.forecasting.cleaning import fill_gaps
from automation.forecasting.holtwinters import HoltWintersModel, HoltWintersSpec, fit_holt_winters
from automation.forecasting.models import DriftModel, SeriesModel
from automation.forecasting.selection import SeasonPlan

BASELINE_NAMES = ("seasonal_naive", "last_value", "trailing_mean_1h", "drift", "auto_ets")
TRAILING_WINDOW = pd.Timedelta(hours=1)


def last_value_forecast(history: np.ndarray, steps: int) -> np.ndarray:
    """The last known value, repeated (NaN when nothing is known)."""
    known = history[~np.isnan(history)]
    return np.full(steps, known[-1] if len(known) else math.nan)


def trailing_mean_forecast(history: np.ndarray, steps: int, *, window: int) -> np.ndarray:
    """The mean of the known values in the last `window` points, repeated."""
    tail = history[-window:]
    known = tail[~np.isnan(tail)]
    return np.full(steps, float(known.mean()) if len(known) else math.nan)


def drift_forecast(history: np.ndarray, steps: int) -> np.ndarray:
    """The last value plus the mean change per step over `history`, extended."""
    if np.isnan(history).all():
        return np.full(steps, math.nan)
    return DriftModel(history=history).forecast(steps)


def fit_auto_ets(values: np.ndarray, *, step: pd.Timedelta) -> SeriesModel:
    """Exponential smoothing chosen by corrected AIC among simple (A,N,N), damped trend (A,Ad,N) and, with
    two days of history, damped trend with an additive daily season (A,Ad,A) — all at the resolution the
    season plan uses for the day (5-minute buckets or coarser), gaps filled first. Returns the fitted
    model at the trace's resolution, to be rolled forward with `update`."""
    plan = SeasonPlan.for_step(step)
    y, _ = fill_gaps(np.asarray(values, dtype=float), season_length=max(1, plan.day), max_interpolate=3)
    y = y[~np.isnan(y)] if np.isnan(y).any() else y
    k = plan.factor
    offset = len(y) % k
    coarse = bucket_means(y[offset:], k) if k > 1 else y
    specs = [
        HoltWintersSpec(trend=False, seasonal=None),
        HoltWintersSpec(trend=True, damped=True, seasonal=None),
    ]
    if plan.day > 1:
        specs.append(HoltWintersSpec(trend=True, damped=True, seasonal="add", season_length=plan.day // k))
    best: HoltWintersModel | None = None
    for spec in specs:
        if len(coarse) < spec.min_history():
            continue
        try:
            model = fit_holt_winters(coarse, spec=spec)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if best is None or (not math.isnan(model.aicc) and (math.isnan(best.aicc) or model.aicc < best.aicc)):
            best = model
    if best is None:
        raise ValueError(f"automatic ETS needs at least 10 points at {k} steps each, got {len(coarse)}")
    return AggregatedModel(inner=best, factor=k) if k > 1 else best


def day_block_interval(
    model_errors: np.ndarray,
    baseline_errors: np.ndarray,
    days: np.ndarray,
    *,
    levels: tuple[float, float] = (0.05, 0.95),
    reps: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of sum|model error| / sum|baseline error|, resampling whole days (errors within a
    day are correlated, so single points would give intervals far too narrow). NaN with fewer than 2 days."""
    e_model = np.abs(np.asarray(model_errors, dtype=float))
    e_base = np.abs(np.asarray(baseline_errors, dtype=float))
    known = ~np.isnan(e_model) & ~np.isnan(e_base)
    labels, day_index = np.unique(np.asarray(days)[known], return_inverse=True)
    if len(labels) < 2:
        return math.nan, math.nan
    model_by_day = np.bincount(day_index, weights=e_model[known], minlength=len(labels))
    base_by_day = np.bincount(day_index, weights=e_base[known], minlength=len(labels))
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(reps, len(labels)))
    model_sums = model_by_day[draws].sum(axis=1)
    base_sums = base_by_day[draws].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(base_sums > 0, model_sums / base_sums, np.nan)
    ratios = ratios[~np.isnan(ratios)]
    if not len(ratios):
        return math.nan, math.nan
    low, high = np.quantile(ratios, levels)
    return float(low), float(high)
