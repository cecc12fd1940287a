"""Metric data as the alerting domain sees it, whatever its source: series of samples, selectors, sources.

A leaf module (no Django, nothing of this project): the rule evaluator, the backtest, the push store and
the Prometheus client all speak these types. Times are epoch seconds (float), values floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from automation.alerting.regex import RegexError, full_match

#: The label that holds a series' metric name, as in Prometheus; it is not part of `Series.labels`.
METRIC_LABEL = "__name__"

MatchOp = Literal["=", "!=", "=~", "!~"]
#: A series' labels as sorted (name, value) pairs, as `Series.labels`.
LabelPairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Matcher:
    """One label matcher, with Prometheus's meaning: a regex (RE2, `automation.alerting.regex`) matches
    the whole value; an absent label is the empty string."""

    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        try:
            found = full_match(self.value, actual)
        except RegexError:
            # Only a matcher stored before patterns were checked with RE2 gets here: it matches nothing,
            # the pipeline goes on (a silence of it silences nothing: the alert is still notified).
            found = False
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{quoted}"'


@dataclass(frozen=True)
class Selector:
    """`metric{name="value", ...}`: the series of one metric whose labels match every matcher."""

    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        return metric == self.metric and all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.metric
        return f"{self.metric}{{{', '.join(str(m) for m in self.matchers)}}}"


@dataclass(frozen=True)
class Sample:
    at: float
    value: float


@dataclass(frozen=True)
class Series:
    """One series: a metric name, its labels (without `__name__`), samples in time order."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    samples: tuple[Sample, ...] = field(default=())

    @staticmethod
    def of(metric: str, labels: Mapping[str, str], samples: Iterable[Sample] = ()) -> Series:
        ordered = tuple(sorted(samples, key=lambda s: s.at))
        return Series(metric, tuple(sorted((str(k), str(v)) for k, v in labels.items())), ordered)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


class MetricSource(Protocol):
    """Where a rule reads its data. `select` returns every series matching `selector` with its samples
    whose time is in [start, end], oldest first; a series with no sample in the range may be omitted.
    Errors are `automation.errors.SourceError`, naming the source (host, not credentials) and the query."""

    name: str

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]: ...


class LatestSource(MetricSource, Protocol):
    """A source that can also answer with each series' latest sample alone: what a rule reading only
    instant values without a duration clause needs (`evaluate` uses it when the source has it)."""

    def latest(
        self, selector: Selector, start: float, end: float
    ) -> Sequence[tuple[LabelPairs, float, float]]:
        """For each series matching `selector` with a sample in [start, end]: its labels, and the time and
        value of its latest sample there. The series, labels and samples `select` would give, cut to the
        last one."""
        ...
