"""Pushed samples: stored idempotently (a sample is its series and time), dropped after the retention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Exists, OuterRef

from automation.alerting.exposition import PushedSample
from automation.alerting.matchers import digest
from automation.models import MetricSample, MetricSeries

BATCH = 5000


def series_fingerprint(metric: str, labels: dict[str, str]) -> str:
    return digest("series", metric, labels)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def ingest(samples: Iterable[PushedSample]) -> int:
    """Store samples (a sample pushed again at the same time replaces its value); returns how many."""
    rows = list(samples)
    if not rows:
        return 0
    newest: dict[str, PushedSample] = {}
    for row in rows:
        key = series_fingerprint(row.metric, row.labels)
        if key not in newest or row.at > newest[key].at:
            newest[key] = row
    with transaction.atomic():
        MetricSeries.objects.bulk_create(
            [
                MetricSeries(metric=s.metric, labels=s.labels, fingerprint=key, last_at=_at(s.at))
                for key, s in sorted(newest.items())
            ],
            update_conflicts=True,
            unique_fields=["fingerprint"],
            update_fields=["last_at"],
            batch_size=BATCH,
        )
        ids = dict(MetricSeries.objects.filter(fingerprint__in=list(newest)).values_list("fingerprint", "id"))
        unique = {(ids[series_fingerprint(r.metric, r.labels)], r.at): r.value for r in rows}
        MetricSample.objects.bulk_create(
            [MetricSample(series_id=sid, at=_at(at), value=value) for (sid, at), value in unique.items()],
            update_conflicts=True,
            unique_fields=["series", "at"],
            update_fields=["value"],
            batch_size=BATCH,
        )
    return len(unique)


def purge(older_than: float) -> int:
    """Drop samples older than `older_than` (epoch s) and series left without any; returns samples dropped."""
    horizon = _at(older_than)
    dropped, _ = MetricSample.objects.filter(at__lt=horizon).delete()
    # `last_at` is that of the newest sample of the last push, which may be a backfill older than what is
    # stored: a series goes only when no sample of it is left (deleting it cascades to its samples).
    left = MetricSample.objects.filter(series=OuterRef("pk"))
    MetricSeries.objects.filter(last_at__lt=horizon).exclude(Exists(left)).delete()
    return dropped
