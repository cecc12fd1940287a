"""Long-season model for minute data: regression on Fourier terms of the daily and weekly periods with
autoregressive errors (statsmodels OLS + AutoReg), optionally on log(1 + y) so cycles scale with the level.

Seasonal ETS or SARIMAX cannot carry a 1,440-point season; a dozen harmonics can, at the cost of one OLS.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.ar_model import AutoReg

from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.models import register_model_kind


def fourier_features(
    positions: np.ndarray, *, periods: Sequence[float], harmonics: Sequence[int]
) -> np.ndarray:
    """Columns: 1, then sin and cos of 2*pi*k*t/P for each period P and k = 1..K."""
    t = np.asarray(positions, dtype=float)
    columns = [np.ones_like(t)]
    for period, count in zip(periods, harmonics, strict=True):
        for k in range(1, count + 1):
            angle = 2 * math.pi * k * t / period
            columns += [np.sin(angle), np.cos(angle)]
    return np.column_stack(columns)


class FourierArModel:
    """Harmonic regression plus AR(p) residuals; `position` counts steps since the fit's first point."""

    def __init__(
        self,
        *,
        periods: tuple[float, ...],
        harmonics: tuple[int, ...],
        coefficients: np.ndarray,
        ar: np.ndarray,
        position: int,
        recent_residuals: np.ndarray,
        log: bool,
    ) -> None:
        self.periods = periods
        self.harmonics = harmonics
        self.coefficients = np.asarray(coefficients, dtype=float)
        self.ar = np.asarray(ar, dtype=float)
        self.position = position
        self.recent_residuals = np.asarray(recent_residuals, dtype=float)
        self.log = log

    @property
    def name(self) -> str:
        terms = "+".join(f"{k}x{_period_label(p)}" for p, k in zip(self.periods, self.harmonics, strict=True))
        return f"fourier_ar({terms},p={len(self.ar)}{',log' if self.log else ''})"

    def _regression(self, start: int, count: int) -> np.ndarray:
        features = fourier_features(
            np.arange(start, start + count), periods=self.periods, harmonics=self.harmonics
        )
        return np.asarray(features @ self.coefficients)

    def update(self, values: np.ndarray) -> None:
        y = np.asarray(values, dtype=float)
        if len(y) == 0:
            return
        if self.log:
            y = np.log1p(np.maximum(y, 0.0))
        residuals = y - self._regression(self.position, len(y))
        history = list(self.recent_residuals)
        p = len(self.ar)
        for value in residuals.tolist():
            if math.isnan(value):
                # a missing point continues the AR forecast instead of resetting it
                value = float(np.dot(self.ar, history[::-1][:p])) if p else 0.0
            history.append(value)
        self.recent_residuals = np.asarray(history[-p:] if p else [], dtype=float)
        self.position += len(y)

    def forecast(self, steps: int) -> np.ndarray:
        p = len(self.ar)
        history = list(self.recent_residuals)
        residual_path = np.zeros(steps)
        for h in range(steps if p else 0):
            value = float(np.dot(self.ar, history[::-1][:p]))
            residual_path[h] = value
            history.append(value)
        result = self._regression(self.position, steps) + residual_path
        return np.expm1(result) if self.log else result

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "fourier_ar",
            "periods": list(self.periods),
            "harmonics": list(self.harmonics),
            "coefficients": self.coefficients.tolist(),
            "ar": self.ar.tolist(),
            "position": self.position,
            "recent_residuals": self.recent_residuals.tolist(),
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FourierArModel:
        return cls(
            periods=tuple(float(p) for p in data["periods"]),
            harmonics=tuple(int(k) for k in data["harmonics"]),
            coefficients=np.asarray(data["coefficients"], dtype=float),
            ar=np.asarray(data["ar"], dtype=float),
            position=int(data["position"]),
            recent_residuals=np.asarray(data["recent_residuals"], dtype=float),
            log=bool(data["log"]),
        )


def fit_fourier_ar(
    values: np.ndarray,
    *,
    periods: Sequence[float],
    harmonics: Sequence[int],
    ar_order: int = 2,
    log: bool = False,
) -> FourierArModel:
    """OLS on the harmonics over the known points, then AutoReg on the residuals (gaps read as zero)."""
    y = np.asarray(values, dtype=float)
    if log:
        if np.nanmin(y) < 0:
            raise ForecastConfigError("values", "the log variant needs non-negative values")
        y = np.log1p(y)
    known = ~np.isnan(y)
    features = fourier_features(np.arange(len(y)), periods=periods, harmonics=harmonics)
    if known.sum() < 2 * features.shape[1]:
        raise ForecastConfigError(
            "values", f"too few known points ({known.sum()}) for {features.shape[1]} terms"
        )
    coefficients = sm.OLS(y[known], features[known]).fit().params
    residuals = np.where(known, y - features @ coefficients, 0.0)
    ar = np.zeros(0)
    if ar_order > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ar = np.asarray(AutoReg(residuals, lags=ar_order, trend="n").fit().params, dtype=float)
        if np.abs(ar).sum() >= 0.999:
            # keep the forecast from exploding: a unit-root fit is shrunk to a slowly decaying one
            ar = ar * (0.995 / np.abs(ar).sum())
    model = FourierArModel(
        periods=tuple(float(p) for p in periods),
        harmonics=tuple(int(k) for k in harmonics),
        coefficients=np.asarray(coefficients, dtype=float),
        ar=ar,
        position=len(y),
        recent_residuals=residuals[-ar_order:] if ar_order > 0 else np.zeros(0),
        log=log,
    )
    return model


def _period_label(period: float) -> str:
    return f"P{period:g}"


register_model_kind("fourier_ar", FourierArModel.from_dict)
