"""Holt-Winters (additive or multiplicative season, optionally damped additive trend) fitted by statsmodels.

statsmodels estimates the smoothing parameters once; the state (level, trend, season) is then carried
forward here with the same recursions, so a fitted model absorbs new points in microseconds and is a
handful of floats to store.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.models import register_model_kind

SeasonKind = Literal["add", "mul"]


@dataclass(frozen=True, kw_only=True)
class HoltWintersSpec:
    """Which Holt-Winters variant: additive trend (damped or not, or none) and season kind and length."""

    trend: bool = True
    damped: bool = True
    seasonal: SeasonKind | None = "add"
    season_length: int = 1

    @property
    def name(self) -> str:
        trend = "Ad" if self.trend and self.damped else ("A" if self.trend else "N")
        season = {"add": "A", "mul": "M", None: "N"}[self.seasonal]
        return f"holt_winters({trend},{season},m={self.season_length})" if self.seasonal else f"holt({trend})"

    def min_history(self) -> int:
        """Points needed for statsmodels' heuristic initialisation (two full seasons)."""
        return 2 * self.season_length + 2 if self.seasonal else 10


class HoltWintersModel:
    """A fitted Holt-Winters model: smoothing parameters plus the current state, updated point by point."""

    def __init__(
        self,
        *,
        spec: HoltWintersSpec,
        alpha: float,
        beta: float,
        gamma: float,
        phi: float,
        level: float,
        trend: float,
        seasons: np.ndarray,
    ) -> None:
        self.spec = spec
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.phi = phi
        self.level = level
        self.trend = trend
        # seasons[0] is the factor for the next point, seasons[-1] the one just used
        self.seasons = [float(v) for v in seasons]
        #: corrected AIC of the statsmodels fit (NaN when not fitted here), for automatic ETS choice
        self.aicc = math.nan

    @property
    def name(self) -> str:
        return self.spec.name

    def update(self, values: np.ndarray) -> None:
        """Absorb new observations; NaN advances time without learning (the season rotates, trend decays)."""
        alpha, beta, gamma, phi = self.alpha, self.beta, self.gamma, self.phi
        level, trend, seasons = self.level, self.trend, self.seasons
        multiplicative = self.spec.seasonal == "mul"
        seasonal = self.spec.seasonal is not None
        for y in np.asarray(values, dtype=float).tolist():
            season = seasons[0] if seasonal else (1.0 if multiplicative else 0.0)
            base = level + phi * trend
            if math.isnan(y):
                new_level = base
                new_season = season
            elif multiplicative:
                new_level = alpha * y / season + (1 - alpha) * base
                new_season = gamma * y / base + (1 - gamma) * season if base != 0 else season
            else:
                new_level = alpha * (y - season) + (1 - alpha) * base
                new_season = gamma * (y - base) + (1 - gamma) * season
            trend = beta * (new_level - level) + (1 - beta) * phi * trend if self.spec.trend else 0.0
            level = new_level
            if seasonal:
                seasons.append(new_season)
                del seasons[0]
        self.level, self.trend = level, trend

    def forecast(self, steps: int) -> np.ndarray:
        horizon = np.arange(1, steps + 1)
        if self.spec.trend:
            damping = np.cumsum(self.phi**horizon) if self.phi != 1.0 else horizon.astype(float)
            base = self.level + damping * self.trend
        else:
            base = np.full(steps, self.level)
        if self.spec.seasonal is None:
            return np.asarray(base, dtype=float)
        season = np.asarray(self.seasons)[(horizon - 1) % self.spec.season_length]
        return np.asarray(base * season if self.spec.seasonal == "mul" else base + season)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "holt_winters",
            "trend": self.spec.trend,
            "damped": self.spec.damped,
            "seasonal": self.spec.seasonal,
            "season_length": self.spec.season_length,
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "phi": self.phi,
            "level": self.level,
            "trend_state": self.trend,
            "seasons": list(self.seasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HoltWintersModel:
        spec = HoltWintersSpec(
            trend=bool(data["trend"]),
            damped=bool(data["damped"]),
            seasonal=data["seasonal"],
            season_length=int(data["season_length"]),
        )
        return cls(
            spec=spec,
            alpha=float(data["alpha"]),
            beta=float(data["beta"]),
            gamma=float(data["gamma"]),
            phi=float(data["phi"]),
            level=float(data["level"]),
            trend=float(data["trend_state"]),
            seasons=np.asarray(data["seasons"], dtype=float),
        )


def fit_holt_winters(values: np.ndarray, *, spec: HoltWintersSpec) -> HoltWintersModel:
    """Estimate parameters with statsmodels (heuristic initialisation: fast), then run the state to the end.

    `values` must be gap-free (fill first); multiplicative seasons need strictly positive values.
    """
    y = np.asarray(values, dtype=float)
    if np.isnan(y).any():
        raise ForecastConfigError("values", "Holt-Winters needs gap-free input: fill gaps first")
    if len(y) < spec.min_history():
        raise ForecastConfigError("values", f"{spec.name} needs {spec.min_history()} points, got {len(y)}")
    if spec.seasonal == "mul" and y.min() <= 0:
        raise ForecastConfigError("values", "a multiplicative season needs strictly positive values")
    seasonal = spec.seasonal
    model = ExponentialSmoothing(
        y,
        trend="add" if spec.trend else None,
        damped_trend=spec.trend and spec.damped,
        seasonal=seasonal,
        seasonal_periods=spec.season_length if seasonal else None,
        initialization_method="heuristic" if len(y) >= 2 * max(spec.season_length, 5) + 2 else "estimated",
    )
    with warnings.catch_warnings():
        # statsmodels warns on flat optima and on the heuristic's short samples; the fit is still usable
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        # the brute-force grid for starting values costs 5-10x the fit and lands on the same optimum here
        fitted = model.fit(optimized=True, use_brute=False)
    params = fitted.params

    def get(name: str, default: float) -> float:
        value = params.get(name, default)
        return default if value is None or not np.isfinite(value) else float(value)

    initial_seasons = np.asarray(params.get("initial_seasons", []), dtype=float)
    if seasonal is None:
        initial_seasons = np.zeros(0)
    result = HoltWintersModel(
        spec=spec,
        alpha=get("smoothing_level", 0.5),
        beta=get("smoothing_trend", 0.0),
        gamma=get("smoothing_seasonal", 0.0),
        phi=get("damping_trend", 1.0) if spec.trend and spec.damped else 1.0,
        level=get("initial_level", float(y[0])),
        trend=get("initial_trend", 0.0) if spec.trend else 0.0,
        seasons=initial_seasons,
    )
    aicc = getattr(fitted, "aicc", math.nan)
    result.aicc = float(aicc) if aicc is not None and np.isfinite(aicc) else math.nan
    result.update(y)
    return result


register_model_kind("holt_winters", HoltWintersModel.from_dict)
