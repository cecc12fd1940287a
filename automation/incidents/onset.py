"""When a service's metric started to go wrong: a one-sided CUSUM on its departure from the same minutes
of previous days (seasonal median), scaled by the departure's own spread before the incident.

Alerts fire after their rule's `for` and a scrape or two, so the order of alerts is a poor clock; the
metric's onset is the better one. Only rises are looked for (latency, error rate, saturation): a metric
where lower is worse is passed negated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Onset", "find_onset", "measurable"]

#: CUSUM allowance and decision threshold, in robust standard deviations.
ALLOWANCE = 1.0
THRESHOLD = 6.0
#: The departure's spread is measured over this much of the metric before the search starts.
SCALE_WINDOW = pd.Timedelta(hours=6)
MAD_TO_SIGMA = 1.4826
#: The fewest known departures before the search starts that give a scale.
MIN_SCALE_POINTS = 10


#: A point after the onset counts as still in trouble above this departure, in sigmas.
SUSTAINED_SIGMAS = 2.0


@dataclass(frozen=True)
class Onset:
    """The first step of the excursion that crossed the threshold, its peak departure (in sigmas), and the
    share of the points from the onset to the end of the search still above `SUSTAINED_SIGMAS` and how long
    that is: a failure persists until someone fixes it, a blip does not."""

    at: pd.Timestamp
    peak_sigmas: float
    sustained: float = 1.0
    #: How long, in all, it stayed above `SUSTAINED_SIGMAS` (None: not measured).
    held: pd.Timedelta | None = None
    #: The series it was found in, when the caller names it (shown in the ranking's evidence).
    metric: str = ""

    @property
    def strength(self) -> float:
        """0-1: how strong and lasting the trouble is (8 sigma and more, held to the end: 1)."""
        return min(1.0, self.peak_sigmas / 8.0) * self.sustained


def _seasonal_baseline(series: pd.Series, days: int) -> pd.Series:
    """The median of the same minute on each of the previous `days` days (NaN where none is known)."""
    shifted = [series.shift(freq=pd.Timedelta(days=d)).reindex(series.index) for d in range(1, days + 1)]
    return pd.concat(shifted, axis=1).median(axis=1, skipna=True)


def _departure(series: pd.Series, start: pd.Timestamp, days: int) -> tuple[pd.Series, pd.Series]:
    """The series' departure from its baseline, and the known departures of the scale window before
    `start`."""
    values = pd.to_numeric(series, errors="coerce").astype(float).sort_index()
    history_days = int((start - values.index[0]) / pd.Timedelta(days=1)) if len(values) else 0
    if history_days >= 1:
        baseline = _seasonal_baseline(values, min(days, history_days))
    else:
        baseline = values.rolling(pd.Timedelta(hours=1), min_periods=5).median().shift(1)
    departure = values - baseline
    before = departure[(departure.index >= start - SCALE_WINDOW) & (departure.index < start)].dropna()
    return departure, before


def measurable(series: pd.Series, *, start: pd.Timestamp, end: pd.Timestamp, days: int = 3) -> bool:
    """Whether `find_onset` can search the series over [start, end]: enough history before `start` for
    a scale, and a point in the window. A measurable series without an onset is a quiet one."""
    if not len(series):
        return False
    departure, before = _departure(series, start, days)
    inside = departure[(departure.index >= start) & (departure.index <= end)]
    return len(before) >= MIN_SCALE_POINTS and bool(inside.notna().any())


def find_onset(series: pd.Series, *, start: pd.Timestamp, end: pd.Timestamp, days: int = 3) -> Onset | None:
    """The onset of the first sustained rise in [start, end] of a regular series with a daily cycle, or
    None. Needs history before `start`: at least a day for the baseline and `SCALE_WINDOW` for the scale;
    without a daily history the previous hour's median is the baseline."""
    departure, before = _departure(series, start, days)
    if len(before) < MIN_SCALE_POINTS:
        return None
    centre = float(before.median())
    scale = MAD_TO_SIGMA * float((before - centre).abs().median())
    if not scale > 0 or not math.isfinite(scale):
        scale = max(float(before.std()), 1e-9)
    window = departure[(departure.index >= start) & (departure.index <= end)]
    z = ((window - centre) / scale).to_numpy()
    times = window.index
    total, began = 0.0, 0
    for i, value in enumerate(z):
        if np.isnan(value):
            continue
        if total == 0.0:
            began = i
        total = max(0.0, total + value - ALLOWANCE)
        if total > THRESHOLD:
            peak = float(np.nanmax(z[began : min(len(z), i + 30)]))
            after = z[began:]
            known = after[~np.isnan(after)]
            above = int((known > SUSTAINED_SIGMAS).sum())
            sustained = above / len(known) if len(known) else 0.0
            step = pd.Timedelta(times[1] - times[0]) if len(times) > 1 else pd.Timedelta(0)
            return Onset(
                at=pd.Timestamp(times[began]), peak_sigmas=peak, sustained=sustained, held=above * step
            )
    return None
