"""The `push` metric source: series pushed to the engine's own store (services/samples.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from automation.alerting.series import Sample, Selector, Series
from automation.models import MetricSample, MetricSeries


class PushSource:
    """Reads the pushed store. One instance serves one evaluation tick: it reads each metric's series list
    once (not once per rule)."""

    name = "push"

    def __init__(self) -> None:
        self._series: dict[str, list[tuple[int, dict[str, str]]]] = {}

    def _of(self, metric: str) -> list[tuple[int, dict[str, str]]]:
        found = self._series.get(metric)
        if found is None:
            found = self._series[metric] = list(
                MetricSeries.objects.filter(metric=metric).values_list("id", "labels")
            )
        return found

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]:
        chosen = {
            sid: labels
            for sid, labels in self._of(selector.metric)
            if selector.matches(selector.metric, labels)
        }
        if not chosen:
            return []
        samples: dict[int, list[Sample]] = {sid: [] for sid in chosen}
        rows = (
            MetricSample.objects.filter(
                series_id__in=list(chosen),
                at__gte=datetime.fromtimestamp(start, tz=UTC),
                at__lte=datetime.fromtimestamp(end, tz=UTC),
            )
            .order_by("series_id", "at")
            .values_list("series_id", "at", "value")
        )
        for sid, at, value in rows.iterator(chunk_size=10_000):
            samples[sid].append(Sample(at.timestamp(), value))
        return [Series.of(selector.metric, chosen[sid], found) for sid, found in samples.items() if found]
