"""Season lengths in steps for a sampling interval, and the autocorrelation test for a daily cycle."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)
DAILY_CYCLE_THRESHOLD = 0.3


def steps_per(period: pd.Timedelta, step: pd.Timedelta) -> int:
    """Whole steps in `period` (0 if `step` does not divide it)."""
    ratio = period / step
    return int(round(ratio)) if abs(ratio - round(ratio)) < 1e-9 else 0


def autocorrelation(values: np.ndarray, lag: int) -> float:
    """Pearson correlation of the series with itself `lag` steps back, over pairs where both are known."""
    y = np.asarray(values, dtype=float)
    if lag <= 0 or lag >= len(y) - 2:
        return math.nan
    a, b = y[lag:], y[:-lag]
    known = ~np.isnan(a) & ~np.isnan(b)
    if known.sum() < 3:
        return math.nan
    a, b = a[known], b[known]
    if a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def has_daily_cycle(
    values: np.ndarray, step: pd.Timedelta, *, threshold: float = DAILY_CYCLE_THRESHOLD
) -> bool:
    """True when the autocorrelation one day back reaches `threshold` (0.3 by default)."""
    lag = steps_per(DAY, step)
    value = autocorrelation(values, lag) if lag else math.nan
    return bool(value >= threshold) if not math.isnan(value) else False


SUBDAILY_PERIODS = tuple(
    pd.Timedelta(p) for p in ("15min", "20min", "30min", "1h", "2h", "3h", "4h", "6h", "8h", "12h")
)


def dominant_subdaily_period(values: np.ndarray, step: pd.Timedelta, *, minimum: float = 0.5) -> int:
    """Steps in the sub-daily period (15 minutes to 12 hours, dividing the day) with the strongest
    autocorrelation peak, when it reaches `minimum`, beats the daily one and stands out of a trough at
    shorter lags (so mere persistence does not count); else 0. Catches an hourly job, say."""
    day = steps_per(DAY, step)
    daily = autocorrelation(values, day) if day else math.nan
    lags = [steps_per(period, step) for period in SUBDAILY_PERIODS]
    lags = [lag for lag in lags if lag >= 2 and not (day and day % lag)]
    if not lags:
        return 0
    curve = [autocorrelation(values, lag) for lag in range(1, max(lags) + 2)]
    best, best_value = 0, -1.0
    for lag in lags:
        value = curve[lag - 1]
        if math.isnan(value) or value <= best_value:
            continue
        trough = np.nanmin(curve[: lag - 1]) if lag > 1 else value
        if value - trough >= 0.1 and value >= curve[lag - 2] and value >= curve[lag]:
            best, best_value = lag, value
    if best and best_value >= minimum and (math.isnan(daily) or best_value >= daily):
        return best
    return 0
