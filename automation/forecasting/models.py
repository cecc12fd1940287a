"""The model protocol every forecaster implements, the two baselines (seasonal naive, drift) and the
registry that restores stored models by kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from automation.forecasting.errors import ForecastConfigError


class SeriesModel(Protocol):
    """A fitted model at its own resolution: absorbs observations in order, forecasts the next steps."""

    @property
    def name(self) -> str: ...

    def update(self, values: np.ndarray) -> None: ...

    def forecast(self, steps: int) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


class SeasonalNaiveModel:
    """y[t+h] = y[t+h-m]; a missing point keeps the value of the same phase one season earlier."""

    def __init__(self, *, season_length: int, history: np.ndarray) -> None:
        if season_length < 1:
            raise ForecastConfigError("season_length", "must be at least 1")
        self.season_length = season_length
        self.last_season = np.full(season_length, np.nan)
        self.update(history)

    @property
    def name(self) -> str:
        return "seasonal_naive" if self.season_length > 1 else "naive"

    def update(self, values: np.ndarray) -> None:
        m = self.season_length
        combined = np.concatenate([self.last_season, np.asarray(values, dtype=float)])
        for start in range(m, len(combined), m):
            chunk = combined[start : start + m]
            combined[start : start + m] = np.where(
                np.isnan(chunk), combined[start - m : start - m + len(chunk)], chunk
            )
        self.last_season = combined[-m:]

    def forecast(self, steps: int) -> np.ndarray:
        season = self.last_season
        if np.isnan(season).all():
            return np.full(steps, np.nan)
        # a phase never observed falls back to the latest known value
        latest = season[~np.isnan(season)][-1]
        filled = np.where(np.isnan(season), latest, season)
        return filled[np.arange(steps) % self.season_length]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "seasonal_naive",
            "season_length": self.season_length,
            "last_season": _floats(self.last_season),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeasonalNaiveModel:
        model = cls(season_length=int(data["season_length"]), history=np.zeros(0))
        model.last_season = np.asarray(
            [math.nan if v is None else v for v in data["last_season"]], dtype=float
        )
        return model


class DriftModel:
    """y[t+h] = y[t] + h * slope, the slope being the mean change over the training window."""

    def __init__(self, *, history: np.ndarray) -> None:
        known = np.flatnonzero(~np.isnan(np.asarray(history, dtype=float)))
        if len(known) == 0:
            raise ForecastConfigError("history", "drift needs at least one known value")
        first, last = int(known[0]), int(known[-1])
        self.slope = float((history[last] - history[first]) / (last - first)) if last > first else 0.0
        self.last = float(history[last])
        self.steps_since_last = len(history) - 1 - last

    @property
    def name(self) -> str:
        return "drift"

    def update(self, values: np.ndarray) -> None:
        for y in np.asarray(values, dtype=float).tolist():
            if math.isnan(y):
                self.steps_since_last += 1
            else:
                self.last, self.steps_since_last = y, 0

    def forecast(self, steps: int) -> np.ndarray:
        return self.last + self.slope * (self.steps_since_last + np.arange(1, steps + 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "drift",
            "slope": self.slope,
            "last": self.last,
            "steps_since_last": self.steps_since_last,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftModel:
        model = cls(history=np.array([0.0]))
        model.slope, model.last = float(data["slope"]), float(data["last"])
        model.steps_since_last = int(data["steps_since_last"])
        return model


_RESTORERS: dict[str, Callable[[dict[str, Any]], SeriesModel]] = {}


def register_model_kind(kind: str, restore: Callable[[dict[str, Any]], SeriesModel]) -> None:
    """Make `model_from_dict` able to restore `kind`; a kind can be registered once."""
    if kind in _RESTORERS:
        raise ForecastConfigError("kind", f"a model kind named {kind!r} is already registered")
    _RESTORERS[kind] = restore


def model_from_dict(data: dict[str, Any]) -> SeriesModel:
    """Restore a model stored with `to_dict()`."""
    kind = data.get("kind")
    if kind not in _RESTORERS:
        raise ForecastConfigError(
            "kind", f"unknown model kind {kind!r}; known: {', '.join(sorted(_RESTORERS))}"
        )
    return _RESTORERS[str(kind)](data)


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


register_model_kind("seasonal_naive", SeasonalNaiveModel.from_dict)
register_model_kind("drift", DriftModel.from_dict)
