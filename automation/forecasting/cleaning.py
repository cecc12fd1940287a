"""Make a history fit for model fitting: clip outliers to a rolling median band, fill short gaps by
interpolation and long ones from the previous season, and say how much was changed.

Outlier clipping is causal by default (trailing windows, earlier seasons only): a point is judged by what
was known when it arrived, so a backtest over the cleaned history does not see past its origins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, kw_only=True)
class PreparedHistory:
    """Gap-free values for fitting plus what was done to get them."""

    values: np.ndarray
    unclipped: np.ndarray
    leading_trimmed: int
    outliers: int
    filled: int
    notes: tuple[str, ...]


def clip_outliers(
    values: np.ndarray,
    *,
    window: int,
    season_length: int = 1,
    threshold: float = 6.0,
    causal: bool = True,
) -> tuple[np.ndarray, int]:
    """Hampel filter: a point further than `threshold` robust sigmas from the rolling median (trailing
    window when `causal`, centred otherwise) is replaced by that median, unless it is also close to the
    same phase of earlier seasons (and later ones when not causal): an hourly job's spike repeats and is
    signal, not an outlier. Returns the copy and the count replaced."""
    series = pd.Series(np.asarray(values, dtype=float))
    window = max(3, window | 1)
    median = series.rolling(window, center=not causal, min_periods=1).median()
    outlier = _far_from(series, median, window, threshold, causal=causal) & series.notna().to_numpy()
    if causal and season_length <= 1:
        outlier &= False  # no earlier season to judge by: nothing is clipped
    if season_length > 1 and outlier.any():
        y = series.to_numpy()
        shifted = []
        for k in (1, 2, 3) if causal else (-3, -2, -1, 1, 2, 3):
            lagged = np.full(len(y), np.nan)
            shift = k * season_length
            if abs(shift) < len(y):
                if shift > 0:
                    lagged[shift:] = y[:-shift]
                else:
                    lagged[:shift] = y[-shift:]
            shifted.append(lagged)
        stacked = np.vstack(shifted)
        has_reference = (~np.isnan(stacked)).sum(axis=0) >= 2
        reference = np.full(len(y), np.nan)
        spread = np.full(len(y), np.nan)
        reference[has_reference] = np.nanmedian(stacked[:, has_reference], axis=0)
        spread[has_reference] = np.nanmedian(
            np.abs(stacked[:, has_reference] - reference[has_reference]), axis=0
        )
        # unusual for its phase: far from the same phase of nearby seasons, measured by their own spread
        seasonal_sigma = MAD_TO_SIGMA * np.maximum(np.nan_to_num(spread, nan=np.inf), 1e-9)
        far = np.abs(y - np.nan_to_num(reference)) > threshold * seasonal_sigma
        # a trailing median cannot tell a spike from the start of a ramp: causally, a point is clipped
        # only when earlier seasons show its phase is unusual
        unusual = (has_reference & far) if causal else (~has_reference | far)
        outlier &= unusual
    cleaned = np.where(outlier, median.to_numpy(), series.to_numpy())
    return cleaned, int(outlier.sum())


def _far_from(
    series: pd.Series, reference: pd.Series, window: int, threshold: float = 6.0, *, causal: bool = True
) -> np.ndarray:
    deviation = (series - reference).abs()
    mad = deviation.rolling(window, center=not causal, min_periods=1).median()
    # an idle stretch has MAD 0: a floor from the series (so far, when causal) stops every wobble counting
    # as an outlier
    if causal:
        floor_series = deviation.expanding(min_periods=1).median().fillna(0.0).to_numpy()
        floor = np.maximum(floor_series, 1e-9)
    else:
        whole = float(np.nanmedian(deviation)) if deviation.notna().any() else 0.0
        floor = np.full(len(deviation), max(whole, 1e-9))
    sigma = MAD_TO_SIGMA * np.maximum(mad.to_numpy(), floor)
    return np.asarray(deviation.to_numpy() > threshold * sigma)


def fill_gaps(values: np.ndarray, *, season_length: int, max_interpolate: int) -> tuple[np.ndarray, int]:
    """Gaps up to `max_interpolate` points are interpolated; longer ones copy the previous season (or the
    next one at the start). Returns the gap-free copy and how many points were filled."""
    y = np.asarray(values, dtype=float).copy()
    missing = np.isnan(y)
    if not missing.any():
        return y, 0
    series = pd.Series(y)
    short = series.interpolate(limit=max_interpolate, limit_area="inside").to_numpy()
    run_length = _run_lengths(missing)
    y = np.where(missing & (run_length <= max_interpolate), short, y)
    m = season_length
    if m > 1:
        for start in range(m, len(y), m):
            chunk = y[start : start + m]
            y[start : start + m] = np.where(np.isnan(chunk), y[start - m : start - m + len(chunk)], chunk)
        for start in range(len(y) - m - 1, -1, -1):
            if np.isnan(y[start]) and start + m < len(y):
                y[start] = y[start + m]
    if np.isnan(y).any():
        y = pd.Series(y).interpolate(limit_direction="both").to_numpy()
    return y, int(missing.sum())


def prepare_history(
    values: np.ndarray,
    *,
    season_length: int,
    outlier_threshold: float = 6.0,
    clip: bool = True,
    causal: bool = True,
) -> PreparedHistory:
    """Trim leading gaps, clip outliers (causally by default, see `clip_outliers`), fill gaps; `notes`
    says what happened in plain words."""
    y = np.asarray(values, dtype=float)
    known = np.flatnonzero(~np.isnan(y))
    notes: list[str] = []
    if len(known) == 0:
        return PreparedHistory(
            values=np.zeros(0),
            unclipped=np.zeros(0),
            leading_trimmed=len(y),
            outliers=0,
            filled=0,
            notes=("no data",),
        )
    trimmed = int(known[0])
    y = y[trimmed:]
    outliers = 0
    max_interpolate = max(3, season_length // 48)
    unclipped, _ = fill_gaps(y, season_length=season_length, max_interpolate=max_interpolate)
    if clip:
        window = max(5, season_length // 24) if season_length > 1 else 9
        y, outliers = clip_outliers(
            y, window=window, season_length=season_length, threshold=outlier_threshold, causal=causal
        )
        if outliers:
            notes.append(f"{outliers} outliers clipped to the rolling median for fitting")
    y, filled = fill_gaps(y, season_length=season_length, max_interpolate=max_interpolate)
    if filled:
        notes.append(f"{filled} of {len(y)} missing points filled for fitting ({100 * filled / len(y):.1f}%)")
    return PreparedHistory(
        values=y,
        unclipped=unclipped,
        leading_trimmed=trimmed,
        outliers=outliers,
        filled=filled,
        notes=tuple(notes),
    )


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each True position, the length of the run of Trues it belongs to (0 elsewhere)."""
    lengths = np.zeros(len(mask), dtype=int)
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        lengths[start:stop] = stop - start
    return lengths
