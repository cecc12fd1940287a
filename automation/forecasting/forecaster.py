"""Fit a forecaster to a series (model choice by backtest, intervals from its out-of-sample errors) and
keep it current: `Forecaster` absorbs points cheaply; `RollingForecaster` refits it on a cadence.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.cleaning import MAD_TO_SIGMA, prepare_history
from automation.forecasting.durations import format_duration
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.intervals import ResidualQuantiles
from automation.forecasting.models import SeasonalNaiveModel, SeriesModel, model_from_dict
from automation.forecasting.seasonality import dominant_subdaily_period
from automation.forecasting.selection import Candidate, SeasonPlan, candidate_models, select_model

DEFAULT_LEVELS = (0.05, 0.95)
BASELINES = ("seasonal_naive", "drift")
CLIP_SIGMAS = 8.0
MODEL_NAMES = (
    "auto",
    "seasonal_naive",
    "drift",
    "holt_damped",
    "holt_winters_add",
    "holt_winters_mul",
    "holt_winters_weekly",
    "holt_winters_short",
    "fourier",
    "fourier_log",
)


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """Point forecast and quantiles for the steps after the last observation."""

    index: pd.DatetimeIndex
    mean: np.ndarray
    quantiles: dict[float, np.ndarray]
    model: str
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        columns = {"mean": self.mean} | {
            f"q{level:g}": values for level, values in sorted(self.quantiles.items())
        }
        return pd.DataFrame(columns, index=self.index)


@dataclass(frozen=True, kw_only=True)
class ForecasterSettings:
    """How `fit_forecaster` chooses and calibrates; steps are counted at the series' resolution."""

    model: str = "auto"
    max_history: pd.Timedelta = pd.Timedelta(days=28)
    backtest_share: float = 0.25
    max_backtest: pd.Timedelta = pd.Timedelta(days=7)
    origin_every: int | None = None
    clip_outliers: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ForecastConfigError(
                "model", f"unknown model {self.model!r}; choose from {', '.join(MODEL_NAMES)}"
            )
        if not 0 < self.backtest_share < 1:
            raise ForecastConfigError("backtest_share", "must be between 0 and 1")


class Forecaster:
    """A fitted model at the series' resolution plus its error quantiles; cheap to update and to store."""

    def __init__(
        self,
        *,
        model: SeriesModel,
        model_name: str,
        step: pd.Timedelta,
        last_time: pd.Timestamp,
        residuals: ResidualQuantiles,
        clip_scale: float,
        relative_mae: float = math.nan,
        scores: dict[str, float] | None = None,
        skipped: tuple[str, ...] = (),
        notes: tuple[str, ...] = (),
        one_step_errors: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.step = step
        self.last_time = last_time
        self.residuals = residuals
        self.clip_scale = clip_scale
        #: backtest MAE over seasonal naive's on the same targets (below 1: better than seasonal naive)
        self.relative_mae = relative_mae
        self.scores = dict(scores or {})
        self.skipped = skipped
        self.notes = notes
        #: actual - forecast one step ahead over the fit's backtest, oldest first, in the series' units
        #: (the interval quantiles hold them scaled); only in memory: `to_dict` leaves it out
        self.one_step_errors = np.zeros(0) if one_step_errors is None else one_step_errors

    @property
    def mase(self) -> float:
        """The former name of `relative_mae` (it was never Hyndman's MASE)."""
        return self.relative_mae

    @property
    def description(self) -> str:
        return f"{self.model_name}: {self.model.name}"

    def update(self, values: np.ndarray) -> None:
        """Absorb the next points in time order (NaN = unknown); extreme values are clipped to the
        one-step band first so a burst does not drag the level."""
        y = np.asarray(values, dtype=float)
        if len(y) == 0:
            return
        if self.clip_scale > 0 and not np.isnan(y).all():
            expected = self.model.forecast(len(y))
            width = CLIP_SIGMAS * self.clip_scale * self.residuals.scale(expected)
            y = np.where(np.isnan(y), y, np.clip(y, expected - width, expected + width))
        self.model.update(y)
        self.last_time = self.last_time + self.step * len(y)

    def forecast(self, steps: int, *, levels: tuple[float, ...] = DEFAULT_LEVELS) -> Forecast:
        if steps < 1:
            raise ForecastConfigError("horizon", "must be at least one step")
        mean = self.model.forecast(steps)
        if self.residuals.nonnegative:
            mean = np.maximum(mean, 0.0)
        ahead = np.arange(1, steps + 1)
        quantiles = {
            level: self.residuals.quantile(level, steps_ahead=ahead, forecast=mean) for level in levels
        }
        index = pd.date_range(self.last_time + self.step, periods=steps, freq=self.step)
        return Forecast(index=index, mean=mean, quantiles=quantiles, model=self.model_name, notes=self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "model_name": self.model_name,
            "step_seconds": self.step.total_seconds(),
            "last_time": self.last_time.isoformat(),
            "residuals": self.residuals.to_dict(),
            "clip_scale": self.clip_scale,
            "relative_mae": None if math.isnan(self.relative_mae) else self.relative_mae,
            "scores": {k: (None if math.isnan(v) else v) for k, v in self.scores.items()},
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Forecaster:
        return cls(
            model=model_from_dict(data["model"]),
            model_name=str(data["model_name"]),
            step=pd.Timedelta(seconds=float(data["step_seconds"])),
            last_time=pd.Timestamp(data["last_time"]),
            residuals=ResidualQuantiles.from_dict(data["residuals"]),
            clip_scale=float(data["clip_scale"]),
            relative_mae=_optional_float(data.get("relative_mae", data.get("mase"))),
            scores={k: (math.nan if v is None else float(v)) for k, v in data["scores"].items()},
            skipped=tuple(data.get("skipped", ())),
            notes=tuple(data["notes"]),
        )


def fit_forecaster(
    history: pd.Series,
    *,
    horizon: int,
    step: pd.Timedelta | None = None,
    settings: ForecasterSettings | None = None,
) -> Forecaster:
    """Choose (or take) a model for `history` (regular DatetimeIndex, NaN = unknown) by rolling-origin
    backtest over its last part, forecasting `horizon` steps from each origin. Too-short histories fall
    back to simpler models, and `notes` says so."""
    settings = settings or ForecasterSettings()
    step = step or _infer_step(history)
    if horizon < 1:
        raise ForecastConfigError("horizon", "must be at least one step")
    plan = SeasonPlan.for_step(step)
    limit = max(1, int(settings.max_history / step))
    raw = history.to_numpy(dtype=float)[-limit:]
    last_time = pd.Timestamp(history.index[-1])
    known = raw[~np.isnan(raw)]
    if len(known) == 0:
        raise ForecastConfigError("history", "no known values to fit")
    prepared = prepare_history(raw, season_length=plan.baseline_season, clip=settings.clip_outliers)
    values = prepared.values
    actual = raw[prepared.leading_trimmed :]
    nonnegative = bool(known.min() >= 0)
    notes = list(prepared.notes)
    n = len(values)
    if n < 4:
        notes.append(f"history of {n} points is too short to backtest: naive forecast, zero-width intervals")
        model = SeasonalNaiveModel(season_length=1, history=values)
        residuals = ResidualQuantiles(power=0.0, floor=1.0, nonnegative=nonnegative)
        return Forecaster(
            model=model,
            model_name="naive",
            step=step,
            last_time=last_time,
            residuals=residuals,
            clip_scale=0.0,
            skipped=("all",),
            notes=tuple(notes),
        )
    tail = int(
        np.clip(n * settings.backtest_share, min(n - 2, max(2 * horizon, 30)), settings.max_backtest / step)
    )
    tail = max(1, min(tail, n - 2))
    split = n - tail
    origin_every = settings.origin_every or max(1, horizon // 4)
    short_season = (
        dominant_subdaily_period(values, step) if settings.model in ("auto", "holt_winters_short") else 0
    )
    candidates = candidate_models(
        plan, nonnegative=nonnegative, positive=bool(known.min() > 0), short_season=short_season
    )
    candidates = _restrict(candidates, settings.model, split, notes)
    selection = select_model(
        candidates,
        prepared=values,
        unclipped=prepared.unclipped,
        actual=actual,
        split=split,
        horizon=horizon,
        origin_every=origin_every,
    )
    chosen = selection.results.get(settings.model, selection.chosen)  # a named model is used, not chosen
    fitted_names = [c.name for c in candidates if c.name not in selection.skipped]
    if settings.model == "auto" and any(c.name not in fitted_names for c in candidates):
        span = format_duration(step * split)
        notes.append(
            f"{span} of history before the backtest: skipped "
            + "; ".join(f"{name} ({why})" for name, why in selection.skipped.items())
        )
    skipped = list(selection.skipped)
    if settings.model not in ("auto", chosen.name):
        notes.append(f"fell back to {chosen.name}: {settings.model} could not be fitted")
        skipped.append(settings.model)
    residuals = ResidualQuantiles.from_errors(
        steps_ahead=chosen.steps_ahead,
        forecast=chosen.forecast,
        actual=chosen.actual,
        nonnegative=nonnegative,
    )
    one_step = chosen.steps_ahead == 1
    errors = chosen.actual[one_step] - chosen.forecast[one_step]
    scaled = errors / residuals.scale(chosen.forecast[one_step])
    scaled = scaled[~np.isnan(scaled)]
    clip_scale = (
        float(MAD_TO_SIGMA * np.median(np.abs(scaled - np.median(scaled)))) if len(scaled) >= 30 else 0.0
    )
    if chosen.name in BASELINES:
        clip_scale = 0.0  # baselines repeat what they saw, spikes included
    return Forecaster(
        model=chosen.model,
        model_name=chosen.name,
        step=step,
        last_time=last_time,
        residuals=residuals,
        clip_scale=clip_scale,
        one_step_errors=errors[~np.isnan(errors)],
        relative_mae=chosen.relative_mae,
        scores=selection.scores,
        skipped=tuple(skipped),
        notes=tuple(notes),
    )


def _optional_float(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _restrict(candidates: list[Candidate], model: str, split: int, notes: list[str]) -> list[Candidate]:
    """`auto` keeps all; a named model keeps the baseline and that model, falling back when it cannot fit."""
    if model == "auto":
        return candidates
    by_name = {c.name: c for c in candidates}
    baseline = candidates[0]
    wanted = by_name.get(model)
    if wanted is None:
        notes.append(f"{model} is not available at this resolution: using the other candidates")
        return candidates
    if split < wanted.min_history:
        notes.append(
            f"{model} needs {wanted.min_history} points before the backtest, has {split}: using the others"
        )
        return [c for c in candidates if c.name != model]
    return [baseline, wanted] if wanted is not baseline else [baseline]


def _infer_step(history: pd.Series) -> pd.Timedelta:
    index = history.index
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        raise ForecastConfigError("history", "needs a DatetimeIndex with at least two points, or pass step=")
    return pd.Timedelta(index[1] - index[0])


@dataclass(kw_only=True)
class RollingStats:
    """How much fitting a rolling forecaster did."""

    fits: int = 0
    selections: int = 0
    fit_seconds: float = 0.0
    models: dict[str, int] = field(default_factory=dict)


class RollingForecaster:
    """Feeds on a live series point by point and refits on a cadence, seeing only the past.

    Model choice (with `model="auto"`) is redone every `reselect_every` or while history is still growing
    into the longer-season candidates; in between only the chosen family is refitted.
    """

    def __init__(
        self,
        *,
        step: pd.Timedelta,
        horizon: int,
        start: pd.Timestamp,
        refit_every: pd.Timedelta = pd.Timedelta(days=1),
        reselect_every: pd.Timedelta = pd.Timedelta(days=7),
        settings: ForecasterSettings | None = None,
        min_history: int = 12,
    ) -> None:
        self.step = step
        self.horizon = horizon
        self.settings = settings or ForecasterSettings()
        self.refit_steps = max(1, int(refit_every / step))
        self.reselect_steps = max(1, int(reselect_every / step))
        self.min_history = min_history
        self.window = max(1, int(self.settings.max_history / step))
        self.values: list[float] = []
        self.start = start
        self.forecaster: Forecaster | None = None
        self.chosen_model: str | None = None
        self.steps_since_fit = 0
        self.steps_since_selection = 0
        self.complete_selection = False
        self.warming = True
        self.stats = RollingStats()

    @property
    def last_time(self) -> pd.Timestamp:
        return self.start + self.step * (len(self.values) - 1)

    def observe(self, value: float) -> None:
        """The next point of the series (NaN = unknown); refits when due."""
        self.values.append(value)
        if len(self.values) > 2 * self.window:
            drop = len(self.values) - self.window
            del self.values[:drop]
            self.start = self.start + self.step * drop
        self.steps_since_fit += 1
        self.steps_since_selection += 1
        if self.forecaster is not None:
            self.forecaster.update(np.array([value]))
        if self._refit_due():
            self._refit()

    def _refit_due(self) -> bool:
        if self.forecaster is None:
            known = sum(1 for v in self.values[-self.window :] if not math.isnan(v))
            return known >= self.min_history and self.steps_since_fit >= max(1, self.min_history // 2)
        if self.warming:
            return self.steps_since_fit >= max(1, self.refit_steps // 8)
        return self.steps_since_fit >= self.refit_steps

    def _refit(self) -> None:
        history_values = np.asarray(self.values[-self.window :], dtype=float)
        end = self.last_time
        index = pd.date_range(end=end, periods=len(history_values), freq=self.step)
        select = self.settings.model == "auto" and (
            self.chosen_model is None
            or not self.complete_selection
            or self.steps_since_selection >= self.reselect_steps
        )
        model = (
            self.settings.model
            if (select or self.settings.model != "auto")
            else (self.chosen_model or "auto")
        )
        settings = ForecasterSettings(
            model=model,
            max_history=self.settings.max_history,
            backtest_share=self.settings.backtest_share,
            max_backtest=self.settings.max_backtest,
            origin_every=self.settings.origin_every,
            clip_outliers=self.settings.clip_outliers,
        )
        began = time.perf_counter()
        forecaster = fit_forecaster(
            pd.Series(history_values, index=index), horizon=self.horizon, step=self.step, settings=settings
        )
        self.stats.fit_seconds += time.perf_counter() - began
        self.stats.fits += 1
        self.stats.models[forecaster.model_name] = self.stats.models.get(forecaster.model_name, 0) + 1
        if select:
            self.stats.selections += 1
            self.steps_since_selection = 0
        self.complete_selection = not forecaster.skipped
        # only the weekly model waiting for its two weeks is not worth refitting more often for
        self.warming = any(name != "holt_winters_weekly" for name in forecaster.skipped)
        self.chosen_model = forecaster.model_name
        self.forecaster = forecaster
        self.steps_since_fit = 0

    def forecast(self, steps: int, *, levels: tuple[float, ...] = DEFAULT_LEVELS) -> Forecast | None:
        """None until enough history has been seen for a first fit."""
        return self.forecaster.forecast(steps, levels=levels) if self.forecaster else None
