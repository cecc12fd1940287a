"""Forecast error measures: MAE, MAPE, and MAE relative to a baseline forecast of the same points."""

from __future__ import annotations

import math

import numpy as np


def mean_absolute_error(actual: np.ndarray, forecast: np.ndarray) -> float:
    """MAE over the points where both are known; NaN if there are none."""
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    known = ~np.isnan(a) & ~np.isnan(f)
    return float(np.abs(a[known] - f[known]).mean()) if known.any() else math.nan


def mean_absolute_percentage_error(actual: np.ndarray, forecast: np.ndarray) -> float:
    """MAPE in percent over the known points with a non-zero actual (zeros have no percentage)."""
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    usable = ~np.isnan(a) & ~np.isnan(f) & (a != 0)
    return float(100 * np.abs((a[usable] - f[usable]) / a[usable]).mean()) if usable.any() else math.nan


def relative_mae(actual: np.ndarray, forecast: np.ndarray, baseline: np.ndarray) -> float:
    """MAE of `forecast` divided by the MAE of `baseline` (e.g. seasonal naive) on the same points:
    below 1 means the forecast beats the baseline out of sample. (Not Hyndman's MASE, which divides by
    the in-sample MAE of the naive forecast.)"""
    a = np.asarray(actual, dtype=float)
    f, b = np.asarray(forecast, dtype=float), np.asarray(baseline, dtype=float)
    known = ~np.isnan(a) & ~np.isnan(f) & ~np.isnan(b)
    if not known.any():
        return math.nan
    scale = np.abs(a[known] - b[known]).mean()
    return float(np.abs(a[known] - f[known]).mean() / scale) if scale > 0 else math.nan


def mean_absolute_scaled_error(actual: np.ndarray, forecast: np.ndarray, baseline: np.ndarray) -> float:
    """The former, inexact name of `relative_mae`; kept for callers."""
    return relative_mae(actual, forecast, baseline)
