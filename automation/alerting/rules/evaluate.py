"""`evaluate`: one rule against a metric source at one instant, judged from the samples alone (no memory of
earlier evaluations), so a live evaluator, a fresh one and a backtest agree at the same `now`."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from automation.alerting.rules.anomaly import default_scorer
from automation.alerting.rules.ast import (
    STALENESS_SECONDS,
    And,
    Anomaly,
    Comparison,
    Condition,
    HeldFor,
    Instant,
    Not,
    Or,
    Rule,
    Value,
    values_of,
    walk,
)
from automation.alerting.rules.values import AnomalyScorer, LabelKey, Track, changes_in, value_at
from automation.alerting.series import LabelPairs, MetricSource, Selector

LatestReader = Callable[[Selector, float, float], Sequence[tuple[LabelPairs, float, float]]]

#: label set -> (value of the left-most compared expression, whether the condition holds)
Vector = dict[LabelKey, tuple[float, bool]]
_ABSENT = (math.nan, False)


@dataclass(slots=True)  # not frozen: a tick builds one per series (100,000), and frozen costs 4x to build
class Outcome:
    """One label set the rule produced at `now`. `active_since`: from when the condition without its
    duration clauses has held without a break, as far back as the rule's duration lets the data tell
    (`now` for a rule without one); None when it does not hold now."""

    labels: dict[str, str]
    value: float
    holds: bool
    active_since: float | None


def evaluate(
    rule: Rule, source: MetricSource, now: float, *, scorer: AnomalyScorer | None = None
) -> list[Outcome]:
    """Evaluate `rule` at `now` on data read from `source` (one `select` per selector, over the rule's
    lookback); one outcome per label set, ordered by labels. `scorer` serves `anomaly()`; by default a
    process-wide `ForecastAnomalyScorer`."""
    start = now - rule.lookback
    threshold = _threshold_read(rule, source)
    found = None if threshold is None else _threshold(*threshold, start, now)
    if found is not None:
        return found
    if scorer is None and any(isinstance(v, Anomaly) for v in values_of(rule.condition)):
        scorer = default_scorer()
    tracks = {
        selector: [Track.of(series, start, now) for series in source.select(selector, start, now)]
        for selector in rule.selectors
    }
    judge = _Judgement(tracks, scorer)
    result = judge.condition(rule.condition, now, durations=True)
    bare = judge.condition(rule.condition, now, durations=False)
    since = judge.active_since(rule.condition, now, rule.duration, bare)
    return [
        Outcome(dict(key), value, holds, since.get(key) if bare[key][1] else None)
        for key, (value, holds) in sorted(result.items())
    ]


def _threshold_read(rule: Rule, source: MetricSource) -> tuple[Comparison, Instant, LatestReader] | None:
    """When the rule is one comparison of an instant value without a duration clause (its outcomes need no
    more than each series' latest sample) and the source offers `latest` (see `LatestSource`): the
    comparison, its value and that reader."""
    condition = rule.condition
    if rule.duration or not isinstance(condition, Comparison) or not isinstance(condition.value, Instant):
        return None
    reader: LatestReader | None = getattr(source, "latest", None)
    return None if reader is None else (condition, condition.value, reader)


def _threshold(
    comparison: Comparison, value: Instant, latest: LatestReader, start: float, now: float
) -> list[Outcome] | None:
    """The outcomes of `value op threshold` from each series' latest sample: exactly what the judgement
    below gives for such a rule (a sample in [start, now], fresh, not NaN; the later of two equal label
    sets wins; ordered by labels), without building tracks. None when a source's latest sample lies past
    `now` (a store rounding times to its precision): the tracks then decide."""
    values: dict[LabelKey, float] = {}
    fresh_from = max(start, now - STALENESS_SECONDS)
    for labels, at, number in latest(value.selector, start, now):
        if at > now:
            return None
        if at >= fresh_from and number == number:  # NaN is not a value
            values[labels] = float(number)
    compare, threshold = _OPERATORS[comparison.op], comparison.threshold
    outcomes: list[Outcome] = []
    append = outcomes.append
    for key, number in sorted(values.items()):
        holds = compare(number, threshold)
        append(Outcome(dict(key), number, holds, now if holds else None))
    return outcomes


class _Judgement:
    """The truth of conditions at instants, memoised per (node, instant) for one evaluation."""

    def __init__(self, tracks: dict[Selector, list[Track]], scorer: AnomalyScorer | None) -> None:
        self.tracks = tracks
        self.scorer = scorer
        self.memo: dict[tuple[int, float, bool], Vector] = {}
        self.timed: dict[int, bool] = {}

    def condition(self, node: Condition, t: float, *, durations: bool) -> Vector:
        """With `durations` False, duration clauses count as met (the bare condition)."""
        durations = durations and self._has_duration(node)
        key = (id(node), t, durations)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._compute(node, t, durations)
        return found

    def _compute(self, node: Condition, t: float, durations: bool) -> Vector:
        if isinstance(node, Comparison):
            return {
                key: (value, _compare(value, node.op, node.threshold))
                for key, value in self.value(node.value, t).items()
            }
        if isinstance(node, Not):
            return {
                key: (value, not holds)
                for key, (value, holds) in self.condition(node.term, t, durations=durations).items()
            }
        if isinstance(node, Or):
            result = self.condition(node.terms[0], t, durations=durations)
            for term in node.terms[1:]:
                result = _or(result, self.condition(term, t, durations=durations))
            return result
        if isinstance(node, And):
            rest = [term for term in node.terms if not isinstance(term, HeldFor)]
            result = self._all(rest, t)
            clause = next((term for term in node.terms if isinstance(term, HeldFor)), None)
            if clause is not None and durations:
                held = self._held(rest, t, clause.seconds, result)
                result = {key: (value, holds and key in held) for key, (value, holds) in result.items()}
            return result
        raise TypeError(f"a duration clause stands only in an AND: {node}")  # the parser refuses it

    def _all(self, terms: Sequence[Condition], t: float) -> Vector:
        # the parser keeps duration clauses out of the terms another one applies to
        result = self.condition(terms[0], t, durations=True)
        for term in terms[1:]:
            result = _and(result, self.condition(term, t, durations=True))
        return result

    def _held(self, terms: Sequence[Condition], now: float, seconds: float, current: Vector) -> set[LabelKey]:
        """Label sets for which every term held at each instant in [now - seconds, now] where the data
        changes (and at both ends). Holding at now - seconds needs a fresh sample at or before it: data that
        do not cover the window do not meet the duration."""
        candidates = {key for key, (_, holds) in current.items() if holds}
        for t in reversed(self._instants(terms, now - seconds, now)):
            if not candidates:
                break
            vector = self._all(terms, t)
            candidates = {key for key in candidates if vector.get(key, _ABSENT)[1]}
        return candidates

    def active_since(
        self, node: Condition, now: float, seconds: float, bare: Vector
    ) -> dict[LabelKey, float]:
        since = {key: now for key, (_, holds) in bare.items() if holds}
        running = set(since)
        for t in reversed(self._instants([node], now - seconds, now) if seconds > 0 else []):
            if not running:
                break
            vector = self.condition(node, t, durations=False)
            running = {key for key in running if vector.get(key, _ABSENT)[1]}
            for key in running:
                since[key] = t
        return since

    def _instants(self, terms: Sequence[Condition], start: float, end: float) -> list[float]:
        instants = {start, end}
        for term in terms:
            for value in values_of(term):
                for track in self.tracks[value.selector]:
                    instants.update(changes_in(value, track, start, end))
        return sorted(instants)

    def value(self, value: Value, t: float) -> dict[LabelKey, float]:
        return value_at(value, self.tracks[value.selector], t, self.scorer)

    def _has_duration(self, node: Condition) -> bool:
        found = self.timed.get(id(node))
        if found is None:
            found = self.timed[id(node)] = any(isinstance(n, HeldFor) for n in walk(node))
        return found


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def _compare(value: float, op: str, threshold: float) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    return value != threshold


def _lone(vector: Vector) -> tuple[float, bool] | None:
    """The entry of a vector holding exactly one series without labels: it matches every label set."""
    return vector[()] if len(vector) == 1 and () in vector else None


def _and(left: Vector, right: Vector) -> Vector:
    """Prometheus `and` by equal label sets: the left side's label sets, holding where both sides do."""
    lone = _lone(right)
    if lone is not None:
        return {key: (value, holds and lone[1]) for key, (value, holds) in left.items()}
    lone = _lone(left)
    if lone is not None and right:
        return {key: (lone[0], lone[1] and holds) for key, (_, holds) in right.items()}
    return {key: (value, holds and right.get(key, _ABSENT)[1]) for key, (value, holds) in left.items()}


def _or(left: Vector, right: Vector) -> Vector:
    """Prometheus `or`: every label set of either side (the left side's value first), holding where either
    side does."""
    lone = _lone(right)
    if lone is not None and left:
        return {key: (value, holds or lone[1]) for key, (value, holds) in left.items()}
    lone = _lone(left)
    if lone is not None and right:
        return {key: (lone[0], lone[1] or holds) for key, (_, holds) in right.items()}
    result = {key: (value, holds or right.get(key, _ABSENT)[1]) for key, (value, holds) in left.items()}
    for key, entry in right.items():
        result.setdefault(key, entry)
    return result
