"""A target's load read from its metric source: the history on a regular grid (one point per `step`,
NaN where nothing was measured) and the latest observed value. Sources are the alerting domain's public
readers: the push store (`PushSource`) and Prometheus (`PrometheusSource`, PromQL range queries)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automation.alerting.series import Selector, Series
from automation.errors import SourceError
from automation.scaling.choices import Aggregate, LoadSource
from automation.scaling.definitions import LoadQuery


@dataclass(frozen=True)
class LoadHistory:
    """Complete buckets [start + k * step, start + (k + 1) * step) up to `now`, and the freshest load."""

    start: float
    step: float
    values: np.ndarray
    observed: float  # NaN when nothing was measured within the last two steps

    @property
    def end(self) -> float:
        """Start time of the last bucket (NaN-free or not)."""
        return self.start + self.step * (len(self.values) - 1)

    @property
    def known(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.values)))


def grid(now: float, step: float, history: float) -> tuple[float, int]:
    """First bucket start and bucket count: buckets aligned on multiples of `step`, the last one ending at
    or before `now`."""
    last_end = math.floor(now / step) * step
    count = max(1, int(history // step))
    return last_end - count * step, count


def combine(series: Sequence[Series], *, start: float, step: float, count: int, aggregate: str) -> np.ndarray:
    """Each series averaged per bucket, then the series combined per bucket (NaN: no series there)."""
    per_series = []
    for one in series:
        sums = np.zeros(count)
        counts = np.zeros(count)
        for sample in one.samples:
            k = int((sample.at - start) // step)
            if 0 <= k < count and math.isfinite(sample.value):
                sums[k] += sample.value
                counts[k] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            per_series.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
    if not per_series:
        return np.full(count, np.nan)
    stacked = np.vstack(per_series)
    present = ~np.isnan(stacked)
    anywhere = present.any(axis=0)
    filled = np.where(present, stacked, 0.0)
    if aggregate == Aggregate.SUM:
        combined = filled.sum(axis=0)
    elif aggregate == Aggregate.AVG:
        combined = filled.sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    else:
        combined = np.where(present, stacked, -np.inf).max(axis=0)
    return np.where(anywhere, combined, np.nan)


def latest(series: Sequence[Series], *, since: float, aggregate: str) -> float:
    """The series' latest finite samples after `since`, combined (NaN when none)."""
    values = []
    for one in series:
        fresh = [s.value for s in one.samples if s.at > since and math.isfinite(s.value)]
        if fresh:
            values.append(fresh[-1])
    if not values:
        return math.nan
    if aggregate == Aggregate.SUM:
        return float(sum(values))
    if aggregate == Aggregate.AVG:
        return float(sum(values) / len(values))
    return float(max(values))


def read_load(load: LoadQuery, now: float, *, since: float | None = None, source: Any = None) -> LoadHistory:
    """The load's buckets from `since` (default: `now` - the query's history) to `now`, and its latest
    value. A push load reads through `source` when given (a batch's shared `PushSource`). SourceError
    when the source cannot answer or is not configured."""
    step = float(load.step)
    reach = float(load.history) if since is None else min(float(load.history), max(now - since, step))
    start, count = grid(now, step, math.ceil(reach / step) * step)
    if load.source == LoadSource.PROMETHEUS:
        found = _prometheus(load, start, now, step)
    else:
        found = _push(load, start, now, source)
    values = combine(found, start=start, step=step, count=count, aggregate=load.aggregate)
    observed = latest(found, since=now - 2 * step, aggregate=load.aggregate)
    return LoadHistory(start=start, step=step, values=values, observed=observed)


def _push(load: LoadQuery, start: float, end: float, source: Any) -> list[Series]:
    from automation.alerting.push import PushSource

    assert load.metric is not None  # checked by the definition
    reader = source if source is not None else PushSource()
    return list(reader.select(Selector(load.metric, tuple(load.matchers)), start, end))


def _prometheus(load: LoadQuery, start: float, end: float, step: float) -> list[Series]:
    from automation.alerting.services.config import current_document
    from automation.alerting.sources.prometheus import PrometheusSource

    settings = current_document().prometheus
    if settings is None:
        raise SourceError("the load reads Prometheus, but the alerting document sets no `prometheus.url`")
    assert load.query is not None  # checked by the definition
    with PrometheusSource(
        settings.url,
        bearer_token=settings.bearer_token,
        username=settings.username,
        password=settings.password,
        timeout=settings.timeout,
    ) as source:
        return source.query_range(load.query, start, end, step)
