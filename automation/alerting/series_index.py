"""The pushed series one process knows: id -> metric and labels, and per metric the posting list of each
label pair, so a selector's equality matchers find their series without scanning the metric.

Pure (no Django). A stored series never changes its metric or labels (its fingerprint is their digest)
and an id is never given to another series of the same database, so what an index holds stays true: a
reader only adds the ids it has not seen (see automation/alerting/push.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from automation.alerting.series import LabelPairs, Matcher, Selector


@dataclass(frozen=True, slots=True)
class KnownSeries:
    id: int
    metric: str
    #: Sorted (name, value) pairs, as `Series.labels`.
    labels: LabelPairs
    label_map: Mapping[str, str]


class SeriesIndex:
    """Known series by id, and per metric: every id, and the ids holding each label pair."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, KnownSeries] = {}
        self._of_metric: dict[str, list[KnownSeries]] = {}
        self._postings: dict[str, dict[tuple[str, str], list[KnownSeries]]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, series_id: int) -> bool:
        return series_id in self._by_id

    def get(self, series_id: int) -> KnownSeries | None:
        return self._by_id.get(series_id)

    def add(self, series_id: int, metric: str, labels: Mapping[str, str]) -> KnownSeries:
        """Learn one series (adding an id again changes nothing)."""
        with self._lock:
            known = self._by_id.get(series_id)
            if known is not None:
                return known
            pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
            known = self._by_id[series_id] = KnownSeries(series_id, metric, pairs, dict(pairs))
            self._of_metric.setdefault(metric, []).append(known)
            postings = self._postings.setdefault(metric, {})
            for pair in pairs:
                postings.setdefault(pair, []).append(known)
            return known

    def lookup(self, selector: Selector) -> tuple[Sequence[KnownSeries], tuple[Matcher, ...]]:
        """The known series of the selector's metric that may match it, and the matchers they still have to
        pass: the shortest posting list of its equality matchers (`name="value"`, value not empty) and the
        other matchers, or every series of the metric and all the matchers. The list is the index's own:
        read it, do not change it."""
        postings = self._postings.get(selector.metric)
        if postings is None:
            return (), selector.matchers
        best: tuple[list[KnownSeries], Matcher] | None = None
        for matcher in selector.matchers:
            if matcher.op == "=" and matcher.value:
                found = postings.get((matcher.name, matcher.value), [])
                if best is None or len(found) < len(best[0]):
                    best = (found, matcher)
        if best is None:
            return self._of_metric.get(selector.metric, []), selector.matchers
        if len(selector.matchers) == 1:
            return best[0], ()
        return best[0], tuple(m for m in selector.matchers if m is not best[1])
