"""Run a model at a coarser resolution than the trace: bucket means go in, forecasts come back per step
(interpolated between bucket centres), so a daily season at minute resolution stays short (1,440 -> 96).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automation.forecasting.models import SeriesModel, model_from_dict, register_model_kind


def bucket_means(values: np.ndarray, factor: int) -> np.ndarray:
    """Means of consecutive `factor`-point buckets (NaN ignored; all-NaN bucket -> NaN); tail dropped."""
    whole = len(values) // factor * factor
    blocks = np.asarray(values[:whole], dtype=float).reshape(-1, factor)
    counts = (~np.isnan(blocks)).sum(axis=1)
    sums = np.nansum(blocks, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class AggregatedModel:
    """Wraps a model fitted on bucket means of `factor` steps; `pending` holds the unfinished bucket."""

    def __init__(self, *, inner: SeriesModel, factor: int, pending: np.ndarray | None = None) -> None:
        self.inner = inner
        self.factor = factor
        self.pending = np.zeros(0) if pending is None else np.asarray(pending, dtype=float)

    @property
    def name(self) -> str:
        return f"{self.inner.name}@x{self.factor}"

    def update(self, values: np.ndarray) -> None:
        combined = np.concatenate([self.pending, np.asarray(values, dtype=float)])
        whole = len(combined) // self.factor * self.factor
        if whole:
            self.inner.update(bucket_means(combined[:whole], self.factor))
        self.pending = combined[whole:]

    def forecast(self, steps: int) -> np.ndarray:
        k = self.factor
        offset = len(self.pending)
        buckets = (offset + steps + k - 1) // k + 1
        coarse = self.inner.forecast(buckets)
        centres = np.arange(buckets) * k + (k - 1) / 2
        return np.asarray(np.interp(offset + np.arange(steps), centres, coarse))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "aggregated",
            "factor": self.factor,
            "pending": self.pending.tolist(),
            "inner": self.inner.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AggregatedModel:
        return cls(
            inner=model_from_dict(data["inner"]),
            factor=int(data["factor"]),
            pending=np.asarray(data["pending"], dtype=float),
        )


register_model_kind("aggregated", AggregatedModel.from_dict)
