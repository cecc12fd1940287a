"""Prediction intervals from out-of-sample forecast errors: empirical quantiles per horizon band, with
errors scaled by forecast**power so a band is wider where the level is higher (power 0.5 ~ Poisson counts).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

MIN_SAMPLES_PER_BAND = 30
STORED_QUANTILES = 201


def horizon_band(steps_ahead: np.ndarray) -> np.ndarray:
    """Steps ahead 1, 2-3, 4-7, 8-15, ... -> bands 0, 1, 2, 3, ..."""
    return np.asarray(np.floor(np.log2(np.maximum(np.asarray(steps_ahead), 1))).astype(int))


def estimate_power(forecast: np.ndarray, errors: np.ndarray, *, floor: float) -> float:
    """Slope of log median |error| against log forecast over ten forecast-level bins, clipped to [0, 1]."""
    scale = np.maximum(np.asarray(forecast, dtype=float), floor)
    size = np.abs(np.asarray(errors, dtype=float))
    if len(scale) < 10 * MIN_SAMPLES_PER_BAND or np.ptp(np.log(scale)) < 0.3:
        return 0.5
    edges = np.quantile(scale, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, scale, side="right") - 1, 0, 9)
    xs, ys = [], []
    for b in range(10):
        chosen = bins == b
        if chosen.sum() >= MIN_SAMPLES_PER_BAND:
            typical = np.median(size[chosen])
            if typical > 0:
                xs.append(np.log(np.median(scale[chosen])))
                ys.append(np.log(typical))
    if len(xs) < 3 or np.ptp(xs) < 0.2:
        return 0.5
    slope = float(np.polyfit(xs, ys, 1)[0])
    return float(np.clip(slope, 0.0, 1.0))


class ResidualQuantiles:
    """Scaled forecast errors per horizon band; `recent` keeps at most `capacity` per band (newest win)."""

    def __init__(self, *, power: float, floor: float, nonnegative: bool, capacity: int = 5000) -> None:
        self.power = power
        self.floor = floor
        self.nonnegative = nonnegative
        self.capacity = capacity
        self.bands: dict[int, deque[float]] = {}
        self._sorted: dict[int, np.ndarray] = {}

    @classmethod
    def from_errors(
        cls,
        *,
        steps_ahead: np.ndarray,
        forecast: np.ndarray,
        actual: np.ndarray,
        nonnegative: bool,
        capacity: int = 5000,
    ) -> ResidualQuantiles:
        f, a = np.asarray(forecast, dtype=float), np.asarray(actual, dtype=float)
        known = ~np.isnan(f) & ~np.isnan(a)
        positive = np.abs(f[known])
        floor = max(float(np.median(positive)) * 0.05, 1e-6) if len(positive) else 1.0
        power = estimate_power(f[known], a[known] - f[known], floor=floor)
        result = cls(power=power, floor=floor, nonnegative=nonnegative, capacity=capacity)
        result.add(steps_ahead=np.asarray(steps_ahead)[known], forecast=f[known], actual=a[known])
        return result

    def scale(self, forecast: np.ndarray) -> np.ndarray:
        return np.asarray(np.maximum(np.abs(np.asarray(forecast, dtype=float)), self.floor) ** self.power)

    def add(self, *, steps_ahead: np.ndarray, forecast: np.ndarray, actual: np.ndarray) -> None:
        """Record more out-of-sample errors (e.g. of forecasts that have come due)."""
        f, a = np.asarray(forecast, dtype=float), np.asarray(actual, dtype=float)
        known = ~np.isnan(f) & ~np.isnan(a)
        scaled = (a[known] - f[known]) / self.scale(f[known])
        for band, value in zip(
            horizon_band(np.asarray(steps_ahead)[known]).tolist(), scaled.tolist(), strict=True
        ):
            self.bands.setdefault(band, deque(maxlen=self.capacity)).append(value)
        self._sorted.clear()

    def _band_errors(self, band: int) -> np.ndarray:
        if band not in self._sorted:
            usable = [b for b in self.bands if len(self.bands[b]) >= MIN_SAMPLES_PER_BAND]
            if not usable:
                pooled = [v for values in self.bands.values() for v in values]
                self._sorted[band] = np.sort(np.asarray(pooled if pooled else [0.0]))
            else:
                nearest = min(usable, key=lambda b: (abs(b - band), -b))
                self._sorted[band] = np.sort(np.asarray(self.bands[nearest]))
        return self._sorted[band]

    def quantile(self, level: float, *, steps_ahead: np.ndarray, forecast: np.ndarray) -> np.ndarray:
        """The `level` quantile of the value at each step, given the point forecast there."""
        f = np.asarray(forecast, dtype=float)
        bands = horizon_band(steps_ahead)
        offsets = np.empty(len(f))
        for band in np.unique(bands).tolist():
            chosen = bands == band
            offsets[chosen] = np.quantile(self._band_errors(band), level)
        result = f + offsets * self.scale(f)
        return np.asarray(np.maximum(result, 0.0) if self.nonnegative else result)

    @property
    def sample_count(self) -> int:
        return sum(len(values) for values in self.bands.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "power": self.power,
            "floor": self.floor,
            "nonnegative": self.nonnegative,
            "capacity": self.capacity,
            # 201 order statistics per band keep every quantile to within half a percentile: a few KB
            "bands": {
                str(band): np.quantile(np.asarray(values), np.linspace(0, 1, STORED_QUANTILES)).tolist()
                if len(values) > STORED_QUANTILES
                else list(values)
                for band, values in self.bands.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualQuantiles:
        result = cls(
            power=float(data["power"]),
            floor=float(data["floor"]),
            nonnegative=bool(data["nonnegative"]),
            capacity=int(data["capacity"]),
        )
        for band, values in data["bands"].items():
            result.bands[int(band)] = deque((float(v) for v in values), maxlen=result.capacity)
        return result
