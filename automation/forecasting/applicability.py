"""Whether forecasting can help a series at all: a daily cycle to learn, and no level shifts that make
the past a poor guide. A scaling policy provisioning for a forecast of noise only adds cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from automation.forecasting.seasonality import DAILY_CYCLE_THRESHOLD, DAY, autocorrelation, steps_per
from automation.forecasting.traces import Trace

SHIFT_RATIO = 1.5
SHIFT_DAYS = 7  # a week either side, so a weekly cycle is not a shift


@dataclass(frozen=True, kw_only=True)
class Applicability:
    """The checks and their verdict; `reasons` say in words why forecasting will not help (empty when it
    may)."""

    daily_autocorrelation: float
    daily_cycle: bool
    level_shifts: tuple[pd.Timestamp, ...]
    applicable: bool
    reasons: tuple[str, ...]

    def summary(self) -> dict[str, object]:
        return {
            "applicable": self.applicable,
            "daily_autocorrelation": None
            if math.isnan(self.daily_autocorrelation)
            else round(self.daily_autocorrelation, 3),
            "daily_cycle": self.daily_cycle,
            "level_shifts": [t.isoformat() for t in self.level_shifts],
            "reasons": list(self.reasons),
        }


def level_shifts(
    trace: Trace, *, ratio: float = SHIFT_RATIO, days: int = SHIFT_DAYS
) -> tuple[pd.Timestamp, ...]:
    """Days where the median load of the `days` days after differs from that of the `days` days before by
    more than `ratio` either way, and by more than the day-to-day wobble of daily medians would explain
    (three robust sigmas); consecutive such days count once, where the means either side differ most."""
    daily = trace.load.resample("1D").median()
    values = daily.to_numpy(dtype=float)
    if len(values) < 2 * days:
        return ()
    wobble = np.nanmedian(np.abs(np.diff(values))) * 1.4826 if len(values) > 2 else 0.0
    scores = np.zeros(len(values))
    for d in range(days, len(values) - days + 1):
        before = np.nanmedian(values[d - days : d]) if not np.isnan(values[d - days : d]).all() else math.nan
        after = np.nanmedian(values[d : d + days]) if not np.isnan(values[d : d + days]).all() else math.nan
        if math.isnan(before) or math.isnan(after):
            continue
        low, high = sorted((abs(before), abs(after)))
        change = high / low if low > 0 else (math.inf if high > 0 else 1.0)
        if change > ratio and abs(after - before) > 3 * wobble:
            # medians decide whether the level moved, means where: they peak at the day it did
            low_mean, high_mean = sorted(
                (abs(np.nanmean(values[d - days : d])), abs(np.nanmean(values[d : d + days])))
            )
            scores[d] = math.log(high_mean / low_mean) if low_mean > 0 else 1e9
    shifts = []
    d = 0
    while d < len(scores):
        if scores[d] > 0:
            end = d
            while end + 1 < len(scores) and scores[end + 1] > 0:
                end += 1
            best = d + int(np.argmax(scores[d : end + 1]))
            shifts.append(pd.Timestamp(daily.index[best]))
            d = end + 1
        else:
            d += 1
    return tuple(shifts)


def assess_forecastability(trace: Trace, *, threshold: float = DAILY_CYCLE_THRESHOLD) -> Applicability:
    """A daily cycle (autocorrelation one day back at least `threshold`) and no level shift."""
    values = trace.load.to_numpy(dtype=float)
    lag = steps_per(DAY, trace.step)
    correlation = autocorrelation(values, lag) if lag else math.nan
    cycle = not math.isnan(correlation) and correlation >= threshold
    shifts = level_shifts(trace)
    reasons = []
    if not cycle:
        measured = "not measurable" if math.isnan(correlation) else f"{correlation:.2f}"
        reasons.append(
            f"no daily cycle (autocorrelation one day back {measured}, below {threshold:g}): "
            "a forecast has nothing to learn ahead of the load"
        )
    if shifts:
        when = ", ".join(f"{t:%Y-%m-%d}" for t in shifts)
        reasons.append(
            f"level shift{'s' if len(shifts) > 1 else ''} on {when} (median load changed more than "
            f"{SHIFT_RATIO:g}x): the past is a poor guide across {'them' if len(shifts) > 1 else 'it'}"
        )
    return Applicability(
        daily_autocorrelation=correlation,
        daily_cycle=cycle,
        level_shifts=shifts,
        applicable=not reasons,
        reasons=tuple(reasons),
    )
