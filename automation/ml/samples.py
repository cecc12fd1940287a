"""A canary's and its baseline's samples of each metric over a window, read from a metric source.

The two sides are the same selector with one label told apart (`version="v2"` for the canary,
`version="v1"` for the baseline); every series of a side (one per replica, say) is pooled. Sources are
the alerting domain's public readers: the push store (`PushSource`) and Prometheus (`PrometheusSource`,
the raw samples of a selector, as the alerting document's `prometheus` settings reach it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from automation.alerting.series import Matcher, MetricSource, Selector
from automation.errors import SourceError

#: Where samples are read: the engine's push store, or the Prometheus of the alerting document.
PUSH = "push"
PROMETHEUS = "prometheus"


def side_selector(metric: str, labels: Mapping[str, str]) -> Selector:
    return Selector(metric, tuple(Matcher(name, "=", value) for name, value in sorted(labels.items())))


def read_sides(
    source: MetricSource,
    metrics: Sequence[tuple[str, str, Mapping[str, str]]],
    *,
    version_label: str,
    baseline: str,
    canary: str,
    start: float,
    end: float,
) -> dict[str, tuple[list[float], list[float]]]:
    """For each (name, metric, labels): the baseline's and the canary's sample values in [start, end]."""
    found: dict[str, tuple[list[float], list[float]]] = {}
    for name, metric, labels in metrics:
        sides = []
        for version in (baseline, canary):
            selector = side_selector(metric, {**labels, version_label: version})
            sides.append([s.value for series in source.select(selector, start, end) for s in series.samples])
        found[name] = (sides[0], sides[1])
    return found


def open_source(kind: str) -> Any:
    """The metric source of `kind`; a Prometheus source must be closed by the caller."""
    if kind == PUSH:
        from automation.alerting.push import PushSource

        return PushSource()
    from automation.alerting.services.config import current_document
    from automation.alerting.sources.prometheus import PrometheusSource

    settings = current_document().prometheus
    if settings is None:
        raise SourceError(
            "the canary analysis reads Prometheus, but the alerting document sets no `prometheus.url`",
            retryable=False,
        )
    return PrometheusSource(
        settings.url,
        bearer_token=settings.bearer_token,
        username=settings.username,
        password=settings.password,
        timeout=settings.timeout,
    )
