"""Value expressions at one instant, per series: the latest fresh sample, a window reduced to one number, a
counter's per-second rate, an anomaly score. Series are `Track`s (their times and values as lists)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from automation.alerting.rules.ast import STALENESS_SECONDS, Anomaly, Instant, Value, Windowed
from automation.alerting.series import Series

LabelKey = tuple[tuple[str, str], ...]


class AnomalyScorer(Protocol):
    """How many prediction-interval half-widths the value at `at` lies outside the one-step forecast made
    from the data before `at` (0 inside, NaN when it cannot judge)."""

    def score(self, series: Series, at: float) -> float: ...


@dataclass(frozen=True)
class Track:
    series: Series
    key: LabelKey
    times: list[float]
    values: list[float]

    @staticmethod
    def of(series: Series, start: float, end: float) -> Track:
        samples = [s for s in series.samples if start <= s.at <= end]
        return Track(
            series,
            tuple(sorted(series.labels)),
            [float(s.at) for s in samples],
            [float(s.value) for s in samples],
        )

    def latest(self, t: float) -> int | None:
        """Index of the latest sample at or before t that is fresh at t and a number, else None."""
        index = bisect_right(self.times, t) - 1
        if index < 0 or t - self.times[index] > STALENESS_SECONDS or math.isnan(self.values[index]):
            return None
        return index

    def window(self, t: float, seconds: float) -> tuple[list[float], list[float]]:
        """Times and values of the samples in (t - seconds, t], NaN (staleness markers) left out."""
        low, high = bisect_right(self.times, t - seconds), bisect_right(self.times, t)
        pairs = [(a, v) for a, v in zip(self.times[low:high], self.values[low:high], strict=True) if v == v]
        return [a for a, _ in pairs], [v for _, v in pairs]


def value_at(
    value: Value, tracks: Sequence[Track], t: float, scorer: AnomalyScorer | None
) -> dict[LabelKey, float]:
    """The value of `value` at t for each series that has one."""
    found: dict[LabelKey, float] = {}
    for track in tracks:
        result = _one(value, track, t, scorer)
        if result is not None and not math.isnan(result):
            found[track.key] = result
    return found


def _one(value: Value, track: Track, t: float, scorer: AnomalyScorer | None) -> float | None:
    if isinstance(value, Instant):
        index = track.latest(t)
        return None if index is None else track.values[index]
    if isinstance(value, Anomaly):
        if track.latest(t) is None or scorer is None:
            return None
        return scorer.score(track.series, t)
    times, values = track.window(t, value.window)
    return reduce_window(value, times, values)


def reduce_window(value: Windowed, times: list[float], values: list[float]) -> float | None:
    if not values:
        return None
    function = value.function
    if function == "avg_over":
        return math.fsum(values) / len(values)
    if function == "max_over":
        return max(values)
    if function == "min_over":
        return min(values)
    if function == "sum_over":
        return math.fsum(values)
    if function == "count_over":
        return float(len(values))
    return counter_rate(times, values)


def counter_rate(times: list[float], values: list[float]) -> float | None:
    """Per-second increase between the first and last sample; a drop is a counter reset, after which the
    counter counted up from zero (Prometheus's rule), so the new value is all increase. Unlike Prometheus,
    no extrapolation to the window's edges: the rate is exact over the samples seen."""
    if len(values) < 2 or times[-1] <= times[0]:
        return None
    increase = 0.0
    for before, after in zip(values, values[1:], strict=False):
        increase += after if after < before else after - before
    return increase / (times[-1] - times[0])


def changes_in(value: Value, track: Track, start: float, end: float) -> list[float]:
    """The instants in [start, end] at which `value` of `track` may change: its samples, and for an
    instant value the moment a sample goes stale, for a window the moment a sample leaves it."""
    low, high = bisect_left(track.times, start), bisect_right(track.times, end)
    found = track.times[low:high]
    if isinstance(value, Windowed):
        low = bisect_left(track.times, start - value.window)
        leaving = (a + value.window for a in track.times[low:high])
        return found + [a for a in leaving if start <= a <= end]
    low = bisect_left(track.times, start - STALENESS_SECONDS)
    for index in range(low, high):
        stale = math.nextafter(track.times[index] + STALENESS_SECONDS, math.inf)
        following = track.times[index + 1] if index + 1 < len(track.times) else math.inf
        if stale < following and start <= stale <= end:
            found.append(stale)
    return found
