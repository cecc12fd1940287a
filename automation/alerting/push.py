"""The `push` metric source: series pushed to the engine's own store (services/samples.py).

One `PushSource` serves one tick, or one batch of a tick's rules (`PushSource.for_rules`): the samples of
the metrics its rules read are loaded ONCE, in one query bounded per metric by the longest lookback that
reads it, and every `select` is answered from memory. Series labels come from a process-wide
`SeriesIndex` (their posting lists find a selector's series without a scan), filled from the database
only with ids it has not seen; a stored series never changes its labels, so it stays true.
"""

from __future__ import annotations

import io
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db import connection

from automation.alerting.rules import Rule
from automation.alerting.series import LabelPairs, Sample, Selector, Series
from automation.alerting.series_index import KnownSeries, SeriesIndex
from automation.errors import SourceError
from automation.models import MetricSample, MetricSeries

#: All the samples of a load: times (epoch s, ascending within a series), values, and per series id its
#: (first, stop) indexes into both.
Spans = tuple[list[float], list[float], dict[int, tuple[int, int]]]


class Samples:
    """The samples of many series: `newest[id]` = (time, value) of each series' newest sample, ready for
    `latest`; every sample (`spans()`) made into lists only when a `select` (or an earlier end) needs it."""

    def __init__(self, newest: dict[int, tuple[float, float]], spans: Callable[[], Spans]) -> None:
        self.newest = newest
        self._make = spans
        self._spans: Spans | None = None

    @staticmethod
    def of(times: list[float], values: list[float], spans: dict[int, tuple[int, int]]) -> Samples:
        newest = {key: (times[stop - 1], values[stop - 1]) for key, (_, stop) in spans.items()}
        return Samples(newest, lambda: (times, values, spans))

    def spans(self) -> Spans:
        if self._spans is None:
            self._spans = self._make()
        return self._spans


#: Past this many known series (purged ones included), a process starts its index afresh.
MAX_KNOWN_SERIES = 2_000_000
_LABEL_CHUNK = 10_000
#: PostgreSQL's binary COPY: signature, then flags and the header extension's length (4 bytes each).
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: One row of (series_id bigint, at timestamptz, value float8): a field count, then length and value each.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_length", ">i4"),
        ("id", ">i8"),
        ("at_length", ">i4"),
        ("at", ">i8"),
        ("value_length", ">i4"),
        ("value", ">f8"),
    ]
)
#: PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC.
_PG_EPOCH_MICROSECONDS = 946_684_800_000_000

_indexes_lock = threading.Lock()
_indexes: dict[tuple[Any, ...], SeriesIndex] = {}


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def stored_time(seconds: float) -> float:
    """A time as the store keeps it (whole microseconds): range bounds compare as the store's queries do."""
    return _at(seconds).timestamp()


@dataclass(frozen=True)
class _Window:
    """Samples of one metric's series in [start, end] (with other metrics' of the same load)."""

    start: float
    end: float
    samples: Samples


class PushSource:
    """Reads the pushed store. `starts` (metric -> earliest time a rule reads) and `end` plan the first
    load: every planned metric in one query. A `select` inside what was loaded for its metric is answered
    from memory; any other loads its metric again over the union of both ranges."""

    name = "push"

    def __init__(self, *, starts: Mapping[str, float] | None = None, end: float | None = None) -> None:
        self._plan = dict(starts or {}) if end is not None else {}
        self._end = end
        self._windows: dict[str, _Window] = {}
        self._index: SeriesIndex | None = None
        self._prefetched: Future[Samples] | None = None

    @staticmethod
    def for_rules(rules: Iterable[Rule], now: float) -> PushSource:
        """A source planned for `rules` evaluated at `now`: each metric from the earliest start of a rule
        reading it (now - its lookback)."""
        starts: dict[str, float] = {}
        for rule in rules:
            for selector in rule.selectors:
                start = now - rule.lookback
                starts[selector.metric] = min(start, starts.get(selector.metric, start))
        return PushSource(starts=starts, end=now)

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]:
        window = self._window(selector.metric, start, end)
        times, values, spans = window.samples.spans()
        start, end = stored_time(start), stored_time(end)
        found: list[Series] = []
        for known in self._matching(selector, window.samples):
            first, stop = spans[known.id]
            low, high = bisect_left(times, start, first, stop), bisect_right(times, end, first, stop)
            if high > low:
                samples_of = tuple(map(Sample, times[low:high], values[low:high]))
                found.append(Series(known.metric, known.labels, samples_of))
        return found

    def latest(
        self, selector: Selector, start: float, end: float
    ) -> Sequence[tuple[LabelPairs, float, float]]:
        """Each matching series' latest sample in [start, end] (see `LatestSource`)."""
        samples = self._window(selector.metric, start, end).samples
        newest = samples.newest
        start, end = stored_time(start), stored_time(end)
        found: list[tuple[LabelPairs, float, float]] = []
        for known in self._matching(selector, samples):
            at, value = newest[known.id]
            if at > end:  # loaded beyond `end`: the latest sample up to it is an earlier one
                times, values, spans = samples.spans()
                first, stop = spans[known.id]
                last = bisect_right(times, end, first, stop) - 1
                if last < first:
                    continue
                at, value = times[last], values[last]
            if at >= start:
                found.append((known.labels, at, value))
        return found

    def _matching(self, selector: Selector, samples: Samples) -> list[KnownSeries]:
        """The matching series that have samples loaded."""
        candidates, rest = self._known().lookup(selector)
        newest = samples.newest
        if rest:
            return [k for k in candidates if k.id in newest and all(m.matches(k.label_map) for m in rest)]
        return [k for k in candidates if k.id in newest]

    def prefetch(self) -> None:
        """Start reading the planned metrics now, on a database connection of its own, while the caller
        does other work (reads the active alerts); the first `select` of a planned metric takes it."""
        if self._prefetched is not None or not self._plan or self._end is None:
            return
        if connection.vendor != "postgresql":
            return
        starts, end = dict(self._plan), self._end

        def read() -> Samples:
            try:
                return read_samples(starts, end)
            finally:
                connection.close()  # this thread's own

        self._prefetched = _reader().submit(read)

    def _window(self, metric: str, start: float, end: float) -> _Window:
        window = self._windows.get(metric)
        if window is not None and window.start <= start and end <= window.end:
            return window
        planned = metric in self._plan and self._end is not None
        if planned and window is None and self._plan[metric] <= start and end <= (self._end or end):
            pending = {m: s for m, s in self._plan.items() if m not in self._windows}
            prefetched, self._prefetched = self._prefetched, None
            if prefetched is not None and len(pending) == len(self._plan):
                self._load(pending, self._end or end, prefetched.result())
            else:
                self._load(pending, self._end or end)
            return self._windows[metric]
        if window is not None:
            start, end = min(start, window.start), max(end, window.end)
        self._load({metric: start}, end)
        return self._windows[metric]

    def _load(self, starts: Mapping[str, float], end: float, samples: Samples | None = None) -> None:
        if samples is None:
            samples = read_samples(starts, end)
        index = self._known()
        missing = [series_id for series_id in samples.newest if series_id not in index]
        for offset in range(0, len(missing), _LABEL_CHUNK):
            chunk = missing[offset : offset + _LABEL_CHUNK]
            rows = MetricSeries.objects.filter(id__in=chunk).values_list("id", "metric", "labels")
            for series_id, metric, labels in rows:
                index.add(series_id, metric, labels)
        for metric, start in starts.items():
            self._windows[metric] = _Window(start, end, samples)

    def _known(self) -> SeriesIndex:
        if self._index is None:
            self._index = process_index()
        return self._index


_reader_lock = threading.Lock()
_reader_pool: ThreadPoolExecutor | None = None


def _reader() -> ThreadPoolExecutor:
    """One thread per process for prefetched reads (made on first use: after a worker's fork)."""
    global _reader_pool
    with _reader_lock:
        if _reader_pool is None:
            _reader_pool = ThreadPoolExecutor(1, thread_name_prefix="push-reader")
        return _reader_pool


def process_index() -> SeriesIndex:
    """This process's index of the current database's series; a database other than the last one (or a
    restarted server) gets an index of its own. Off PostgreSQL, a fresh index each time."""
    if connection.vendor != "postgresql":
        return SeriesIndex()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oid, pg_postmaster_start_time() FROM pg_database WHERE datname = current_database()"
        )
        oid, started = cursor.fetchone()
    settings = connection.settings_dict
    key = (settings.get("HOST"), settings.get("PORT"), settings.get("NAME"), oid, started)
    with _indexes_lock:
        index = _indexes.get(key)
        if index is None or len(index) > MAX_KNOWN_SERIES:
            _indexes.clear()  # one database per process in practice: forget the others
            index = _indexes[key] = SeriesIndex()
        return index


def read_samples(starts: Mapping[str, float], end: float) -> Samples:
    """The samples of each metric's series in [starts[metric], end], per series id, oldest first. On
    PostgreSQL one binary COPY (decoded by numpy); elsewhere through the ORM."""
    if not starts:
        return Samples.of([], [], {})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if hasattr(raw, "copy_expert"):  # psycopg2
                return _read_copy(raw, starts, end)
    return _read_orm(starts, end)


def _groups(starts: Mapping[str, float]) -> dict[float, list[str]]:
    groups: dict[float, list[str]] = {}
    for metric, start in sorted(starts.items()):
        groups.setdefault(start, []).append(metric)
    return groups


def _read_orm(starts: Mapping[str, float], end: float) -> Samples:
    times: list[float] = []
    values: list[float] = []
    spans: dict[int, tuple[int, int]] = {}
    for start, metrics in _groups(starts).items():
        rows = (
            MetricSample.objects.filter(series__metric__in=metrics, at__gte=_at(start), at__lte=_at(end))
            .order_by("series_id", "at")
            .values_list("series_id", "at", "value")
        )
        current, first = None, 0
        for series_id, at, value in rows.iterator(chunk_size=10_000):
            if series_id != current:
                if current is not None:
                    spans[current] = (first, len(times))
                current, first = series_id, len(times)
            times.append(at.timestamp())
            values.append(value)
        if current is not None:
            spans[current] = (first, len(times))
    return Samples.of(times, values, spans)


def _read_copy(raw: Any, starts: Mapping[str, float], end: float) -> Samples:
    samples, series = MetricSample._meta.db_table, MetricSeries._meta.db_table
    quote = connection.ops.quote_name
    clauses, params = [], []
    for start, metrics in _groups(starts).items():
        clauses.append("(s.metric = ANY(%s) AND m.at >= %s)")
        params += [metrics, _at(start)]
    sql = (
        f"COPY (SELECT m.series_id, m.at, m.value FROM {quote(samples)} m JOIN {quote(series)} s "
        f"ON s.id = m.series_id WHERE m.at <= %s AND ({' OR '.join(clauses)})) TO STDOUT (FORMAT binary)"
    )
    buffer = io.BytesIO()
    raw.copy_expert(raw.mogrify(sql, [_at(end), *params]).decode(), buffer)
    return decode_copy(buffer.getvalue())


def decode_copy(data: bytes) -> Samples:
    """Rows of (series_id, at, value) in PostgreSQL's binary COPY format, grouped per series in time order.
    Times convert as `datetime.timestamp()` does: whole microseconds divided once, rounded once."""
    if not data.startswith(_COPY_SIGNATURE) or len(data) < 21:
        raise SourceError("push store: the sample read returned no binary COPY data")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension : -2]
    if data[-2:] != b"\xff\xff" or len(body) % _COPY_ROW.itemsize:
        raise SourceError("push store: the sample read returned malformed binary COPY data")
    rows = np.frombuffer(body, dtype=_COPY_ROW)
    if len(rows) == 0:
        return Samples.of([], [], {})
    lengths_ok = (rows["id_length"] == 8) & (rows["at_length"] == 8) & (rows["value_length"] == 8)
    if not bool(np.all(rows["fields"] == 3)) or not bool(np.all(lengths_ok)):
        raise SourceError("push store: the sample read returned unexpected columns")
    ids = rows["id"].astype(np.int64)
    micros = rows["at"].astype(np.int64)
    order = np.lexsort((micros, ids))
    ids = ids[order]
    times = (micros[order] + _PG_EPOCH_MICROSECONDS) / 1_000_000
    values = rows["value"].astype(np.float64)[order]
    firsts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    lasts = np.concatenate((firsts[1:], [len(ids)])) - 1
    keys: list[int] = ids[firsts].tolist()
    newest = dict(zip(keys, zip(times[lasts].tolist(), values[lasts].tolist(), strict=True), strict=True))

    def spans() -> Spans:
        bounds: list[int] = firsts.tolist()
        stops = [*bounds[1:], len(ids)]
        return times.tolist(), values.tolist(), dict(zip(keys, zip(bounds, stops, strict=True), strict=True))

    return Samples(newest, spans)
