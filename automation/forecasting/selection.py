"""Candidate models for a series and their rolling-origin backtest: each candidate is fitted once on the
early part of the history, then rolled forward over the rest, forecasting from every origin; the lowest
MAE relative to seasonal naive on the same points wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from automation.forecasting.aggregation import AggregatedModel, bucket_means
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.fourier import fit_fourier_ar
from automation.forecasting.holtwinters import HoltWintersSpec, fit_holt_winters
from automation.forecasting.metrics import mean_absolute_error
from automation.forecasting.models import DriftModel, SeasonalNaiveModel, SeriesModel
from automation.forecasting.seasonality import DAY, WEEK, steps_per

MAX_HOLT_WINTERS_SEASON = 288
MAX_WEEKLY_SEASON = 336
MODEL_STEP_FLOOR = pd.Timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A model family ready to fit on gap-free values at the trace's resolution."""

    name: str
    min_history: int
    fit: Callable[[np.ndarray], SeriesModel]
    baseline: bool = False


@dataclass(frozen=True, kw_only=True)
class SeasonPlan:
    """Season lengths in trace steps and the aggregation factor models use for them."""

    step: pd.Timedelta
    day: int
    week: int
    factor: int
    weekly_factor: int

    @classmethod
    def for_step(cls, step: pd.Timedelta) -> SeasonPlan:
        day, week = steps_per(DAY, step), steps_per(WEEK, step)
        return cls(
            step=step,
            day=day,
            week=week,
            factor=_aggregation_factor(day, step, MAX_HOLT_WINTERS_SEASON),
            weekly_factor=_aggregation_factor(week, step, MAX_WEEKLY_SEASON),
        )

    @property
    def baseline_season(self) -> int:
        """Seasonal naive repeats the day; without a whole number of steps per day it is plain naive."""
        return self.day if self.day > 1 else 1


def _aggregation_factor(season: int, step: pd.Timedelta, limit: int) -> int:
    """Smallest divisor k of `season` with season/k <= limit and k*step >= 5 minutes (when possible)."""
    if season <= 1:
        return 1
    floor = max(1, math.ceil(MODEL_STEP_FLOOR / step))
    for k in range(1, season + 1):
        if season % k == 0 and season // k <= limit and k >= min(floor, season // 2):
            return k
    return season


def candidate_models(
    plan: SeasonPlan, *, nonnegative: bool, positive: bool, short_season: int = 0
) -> list[Candidate]:
    """Every family worth trying at this resolution, baselines first (ties go to the simpler model);
    `short_season` (steps) adds a Holt-Winters on a dominant sub-daily cycle such as an hourly job."""
    candidates = [
        Candidate(
            name="seasonal_naive",
            min_history=plan.baseline_season + 1,
            fit=partial(_fit_seasonal_naive, season_length=plan.baseline_season),
            baseline=True,
        ),
        Candidate(name="drift", min_history=2, fit=_fit_drift, baseline=True),
    ]
    k = plan.factor
    candidates.append(_holt_winters("holt_damped", HoltWintersSpec(seasonal=None), k, min_history=12 * k))
    if plan.day > 1:
        m = plan.day // k
        candidates.append(
            _holt_winters("holt_winters_add", HoltWintersSpec(seasonal="add", season_length=m), k)
        )
        if positive:
            candidates.append(
                _holt_winters("holt_winters_mul", HoltWintersSpec(seasonal="mul", season_length=m), k)
            )
        harmonics = min(10, m // 2 - 1)
        if harmonics >= 1:
            for log in (False, True) if nonnegative else (False,):
                fit = partial(_fit_fourier, plan=plan, harmonics=harmonics, log=log)
                candidates.append(
                    Candidate(
                        name="fourier_log" if log else "fourier",
                        min_history=2 * plan.day,
                        fit=partial(_aggregate, factor=k, fit=fit),
                    )
                )
    if short_season > 1:
        ks = _aggregation_factor(short_season, plan.step, MAX_HOLT_WINTERS_SEASON) if short_season > 96 else 1
        spec = HoltWintersSpec(seasonal="add", season_length=short_season // ks)
        candidates.append(_holt_winters("holt_winters_short", spec, ks))
    if plan.week > 1 and plan.week // plan.weekly_factor >= 7:
        kw = plan.weekly_factor
        spec = HoltWintersSpec(trend=False, damped=False, seasonal="add", season_length=plan.week // kw)
        candidates.append(_holt_winters("holt_winters_weekly", spec, kw))
    return candidates


def _holt_winters(
    name: str, spec: HoltWintersSpec, factor: int, *, min_history: int | None = None
) -> Candidate:
    return Candidate(
        name=name,
        min_history=min_history if min_history is not None else spec.min_history() * factor,
        fit=partial(_aggregate, factor=factor, fit=partial(fit_holt_winters, spec=spec)),
    )


def _fit_seasonal_naive(values: np.ndarray, *, season_length: int) -> SeriesModel:
    return SeasonalNaiveModel(season_length=season_length, history=values)


def _fit_drift(values: np.ndarray) -> SeriesModel:
    return DriftModel(history=values)


def _fit_fourier(coarse: np.ndarray, *, plan: SeasonPlan, harmonics: int, log: bool) -> SeriesModel:
    day = plan.day / plan.factor
    week = plan.week / plan.factor
    weekly = plan.week > 1 and len(coarse) >= 2 * week
    periods = (day, week) if weekly else (day,)
    counts = (harmonics, 4) if weekly else (harmonics,)
    return fit_fourier_ar(coarse, periods=periods, harmonics=counts, ar_order=2, log=log)


def _aggregate(values: np.ndarray, *, factor: int, fit: Callable[[np.ndarray], SeriesModel]) -> SeriesModel:
    if factor == 1:
        return fit(values)
    # drop the oldest points so buckets end exactly at the last value
    offset = len(values) % factor
    model = AggregatedModel(inner=fit(bucket_means(values[offset:], factor)), factor=factor)
    return model


@dataclass(kw_only=True)
class Backtest:
    """One candidate's forecasts from every origin of the tail, flattened, and its model rolled to the end."""

    name: str
    model: SeriesModel
    steps_ahead: np.ndarray
    forecast: np.ndarray
    actual: np.ndarray
    target: np.ndarray
    mae: float = math.nan
    relative_mae: float = math.nan


@dataclass(kw_only=True)
class Selection:
    """The winner of a backtest and the score of every candidate that could be fitted."""

    chosen: Backtest
    scores: dict[str, float]
    results: dict[str, Backtest] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def backtest_candidate(
    candidate: Candidate,
    *,
    prepared: np.ndarray,
    actual: np.ndarray,
    split: int,
    horizon: int,
    origin_every: int,
) -> Backtest:
    """Fit on prepared[:split], then forecast `horizon` steps from origins split, split+origin_every, ...
    comparing with `actual` (raw values, NaN where unknown) and feeding `prepared` values forward.
    Baselines get `actual` with gaps filled instead of cleaned values: they must stay textbook."""
    model = candidate.fit(prepared[:split])
    steps, forecasts, actuals, targets = [], [], [], []
    position = split
    n = len(prepared)
    while position < n:
        h = min(horizon, n - position)
        forecasts.append(model.forecast(h))
        actuals.append(actual[position : position + h])
        steps.append(np.arange(1, h + 1))
        targets.append(np.arange(position, position + h))
        advance = min(origin_every, n - position)
        model.update(prepared[position : position + advance])
        position += advance
    return Backtest(
        name=candidate.name,
        model=model,
        steps_ahead=np.concatenate(steps) if steps else np.zeros(0, dtype=int),
        forecast=np.concatenate(forecasts) if forecasts else np.zeros(0),
        actual=np.concatenate(actuals) if actuals else np.zeros(0),
        target=np.concatenate(targets) if targets else np.zeros(0, dtype=int),
    )


def select_model(
    candidates: list[Candidate],
    *,
    prepared: np.ndarray,
    unclipped: np.ndarray,
    actual: np.ndarray,
    split: int,
    horizon: int,
    origin_every: int,
) -> Selection:
    """Backtest every candidate with enough history; the lowest MAE relative to the first baseline (seasonal
    naive) wins."""
    if not candidates:
        raise ForecastConfigError("model", "no candidate model to select from")
    results: list[Backtest] = []
    skipped: dict[str, str] = {}
    for candidate in candidates:
        if split < candidate.min_history:
            skipped[candidate.name] = f"needs {candidate.min_history} points before the backtest, has {split}"
            continue
        try:
            results.append(
                backtest_candidate(
                    candidate,
                    prepared=unclipped if candidate.baseline else prepared,
                    actual=actual,
                    split=split,
                    horizon=horizon,
                    origin_every=origin_every,
                )
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            skipped[candidate.name] = f"fit failed: {exc}"
    if not results:
        raise ForecastConfigError("model", "no candidate could be fitted: " + "; ".join(skipped.values()))
    baseline = results[0]
    for result in results:
        result.mae = mean_absolute_error(result.actual, result.forecast)
        known = ~np.isnan(result.actual) & ~np.isnan(baseline.forecast) & ~np.isnan(result.forecast)
        scale = np.abs(result.actual[known] - baseline.forecast[known]).mean() if known.any() else math.nan
        error = np.abs(result.actual[known] - result.forecast[known]).mean() if known.any() else math.nan
        result.relative_mae = float(error / scale) if scale and scale > 0 else math.nan
    scored = [r for r in results if not math.isnan(r.mae)]
    relative = all(not math.isnan(r.relative_mae) for r in scored)
    # stable sort: among equal scores the earlier (simpler) candidate wins
    ranked = sorted(scored, key=lambda r: r.relative_mae if relative else r.mae)
    chosen = ranked[0] if ranked else results[0]
    return Selection(
        chosen=chosen,
        scores={r.name: r.relative_mae for r in results},
        results={r.name: r for r in results},
        skipped=skipped,
    )
