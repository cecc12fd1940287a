"""`MemorySource`: series held in memory, for tests and backtests; answers like any other metric source."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from automation.alerting.series import LabelPairs, Selector, Series


class MemorySource:
    """A fixed set of series. `select` returns each matching series cut to [start, end]; series with no
    sample there are left out. Two series with the same metric and labels are refused."""

    def __init__(self, series: Iterable[Series], name: str = "memory") -> None:
        self.name = name
        # (metric, sorted labels) -> the series, its labels as a dict, its sample times
        self._series: dict[tuple[str, LabelPairs], tuple[Series, dict[str, str], list[float]]] = {}
        for one in series:
            key = (one.metric, tuple(sorted(one.labels)))
            if key in self._series:
                raise ValueError(f"{name}: two series named {Selector(one.metric)}{dict(key[1])}")
            ordered = one if _ordered(one) else Series.of(one.metric, dict(one.labels), one.samples)
            self._series[key] = (ordered, ordered.label_map, [s.at for s in ordered.samples])

    def select(self, selector: Selector, start: float, end: float) -> list[Series]:
        found = []
        for series, labels, times in self._series.values():
            if not selector.matches(series.metric, labels):
                continue
            low, high = bisect_left(times, start), bisect_right(times, end)
            if high > low:
                found.append(Series(series.metric, series.labels, series.samples[low:high]))
        return found

    def latest(self, selector: Selector, start: float, end: float) -> list[tuple[LabelPairs, float, float]]:
        """Each matching series' latest sample in [start, end] (see `LatestSource`)."""
        found = []
        for series, labels, times in self._series.values():
            if not selector.matches(series.metric, labels):
                continue
            low, high = bisect_left(times, start), bisect_right(times, end)
            if high > low:
                last = series.samples[high - 1]
                found.append((tuple(sorted(series.labels)), last.at, last.value))
        return found


def _ordered(series: Series) -> bool:
    times = [s.at for s in series.samples]
    return all(a <= b for a, b in zip(times, times[1:], strict=False))
