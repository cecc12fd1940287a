"""Pushed samples: stored idempotently (a sample is its series and time), dropped after the retention;
and read by label for what is not a rule (the incident report's metric onsets), in minute bins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Avg, Exists, F, Max, OuterRef, Q, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import RowNumber, TruncMinute

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


@dataclass(frozen=True)
class LabelledSeries:
    id: int
    metric: str
    labels: dict[str, str]


def series_labelled(
    label: str,
    values: Iterable[str],
    *,
    since: float,
    per_value: int,
    skip_suffixes: Sequence[str] = (),
    skip_prefixes: Sequence[str] = (),
) -> dict[str, list[LabelledSeries]]:
    """Per value of `label`, up to `per_value` of the series carrying it (by metric name, then id) with a
    sample pushed since `since` (epoch s), leaving out metrics whose name ends in one of `skip_suffixes`
    or starts with one of `skip_prefixes`. One query; the cap is applied in it."""
    wanted = sorted(set(values))
    if not wanted or per_value < 1:
        return {}
    skipped = Q()
    for suffix in skip_suffixes:
        skipped |= Q(metric__endswith=suffix)
    for prefix in skip_prefixes:
        skipped |= Q(metric__startswith=prefix)
    rows = (
        MetricSeries.objects.annotate(owner=KeyTextTransform(label, "labels"))
        .filter(owner__in=wanted, last_at__gte=_at(since))
        .exclude(skipped)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("owner")], order_by=[F("metric").asc(), F("id").asc()])
        )
        .filter(rank__lte=per_value)
        .order_by("owner", "metric", "id")
        .values_list("owner", "id", "metric", "labels")
    )
    found: dict[str, list[LabelledSeries]] = {}
    for owner, series_id, metric, labels in rows:
        found.setdefault(owner, []).append(LabelledSeries(series_id, metric, dict(labels)))
    return found


@dataclass(frozen=True)
class MinuteBins:
    """One series' samples in minute bins: the start of each bin (epoch s, ascending), and the mean and
    the largest sample in it."""

    times: list[float]
    means: list[float]
    maxima: list[float]


def minute_bins(series_ids: Iterable[int], spans: Sequence[tuple[float, float]]) -> dict[int, MinuteBins]:
    """The samples of these series in each [start, end] of `spans`, in minute bins (aggregated by the
    database: at most one row per series and minute comes back, whatever the scrape interval)."""
    ids = sorted(set(series_ids))
    if not ids or not spans:
        return {}
    within = Q()
    for start, end in spans:
        within |= Q(at__gte=_at(start), at__lte=_at(end))
    rows = (
        MetricSample.objects.filter(within, series_id__in=ids)
        .annotate(minute=TruncMinute("at", tzinfo=UTC))
        .values("series_id", "minute")
        .annotate(mean=Avg("value"), top=Max("value"))
        .order_by("series_id", "minute")
        .values_list("series_id", "minute", "mean", "top")
    )
    found: dict[int, MinuteBins] = {}
    for series_id, minute, mean, top in rows.iterator(chunk_size=10_000):
        bins = found.get(series_id)
        if bins is None:
            bins = found[series_id] = MinuteBins([], [], [])
        bins.times.append(minute.timestamp())
        bins.means.append(float(mean))
        bins.maxima.append(float(top))
    return found
