"""The parsed form of an alert rule: value expressions, conditions, and `Rule` with what it reads and how far
back it must look."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from automation.alerting.series import Selector

#: A selector's value at t is its latest sample at or before t, if not older than this (as in Prometheus).
STALENESS_SECONDS = 300.0
#: History an anomaly score is fitted on, and how often the fit is redone (see `anomaly.py`).
ANOMALY_HISTORY_SECONDS = 7 * 86_400.0
ANOMALY_REFIT_SECONDS = 86_400.0

CompareOp = Literal[">", ">=", "<", "<=", "==", "!="]
WindowFunction = Literal["avg_over", "max_over", "min_over", "sum_over", "count_over", "rate"]
WINDOW_FUNCTIONS: tuple[WindowFunction, ...] = (
    "avg_over",
    "max_over",
    "min_over",
    "sum_over",
    "count_over",
    "rate",
)
FUNCTION_NAMES = tuple(sorted((*WINDOW_FUNCTIONS, "anomaly")))


@dataclass(frozen=True)
class Instant:
    """`cpu_usage{...}`: each matching series' latest sample, if fresh."""

    selector: Selector
    column: int

    @property
    def need(self) -> float:
        return STALENESS_SECONDS


@dataclass(frozen=True)
class Windowed:
    """`avg_over(sel, 5m)`, `rate(sel, 5m)`...: each series' samples in (t - window, t] reduced to one
    value."""

    function: WindowFunction
    selector: Selector
    window: float
    column: int

    @property
    def need(self) -> float:
        return self.window


@dataclass(frozen=True)
class Anomaly:
    """`anomaly(sel)`: how far each series' latest sample lies outside its one-step forecast interval."""

    selector: Selector
    column: int

    @property
    def need(self) -> float:
        return ANOMALY_HISTORY_SECONDS + ANOMALY_REFIT_SECONDS


Value = Instant | Windowed | Anomaly


@dataclass(frozen=True)
class Comparison:
    """`value op threshold`; `80 < x` is stored as `x > 80`."""

    value: Value
    op: CompareOp
    threshold: float
    column: int


@dataclass(frozen=True)
class HeldFor:
    """`duration > 5m`: the other conjuncts of its AND held throughout the last `seconds`."""

    seconds: float
    column: int


@dataclass(frozen=True)
class And:
    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    term: Condition
    column: int


Condition = Comparison | HeldFor | And | Or | Not


def walk(condition: Condition) -> Iterator[Condition]:
    """Every node of `condition`, parents before children."""
    yield condition
    if isinstance(condition, And | Or):
        for term in condition.terms:
            yield from walk(term)
    elif isinstance(condition, Not):
        yield from walk(condition.term)


def values_of(condition: Condition) -> list[Value]:
    return [node.value for node in walk(condition) if isinstance(node, Comparison)]


def longest_duration(condition: Condition) -> float:
    return max((node.seconds for node in walk(condition) if isinstance(node, HeldFor)), default=0.0)


@dataclass(frozen=True)
class Rule:
    """A parsed rule: its text, its condition, the selectors it reads (each once, in order of appearance),
    and `lookback`, the seconds of data before `now` an evaluation reads: the longest duration clause plus
    the longest window a value needs (staleness bound, aggregation window, anomaly history)."""

    text: str
    condition: Condition
    selectors: tuple[Selector, ...]
    lookback: float
    duration: float

    @staticmethod
    def of(text: str, condition: Condition) -> Rule:
        values = values_of(condition)
        selectors = tuple(dict.fromkeys(value.selector for value in values))
        duration = longest_duration(condition)
        need = max((value.need for value in values), default=STALENESS_SECONDS)
        return Rule(text, condition, selectors, duration + need, duration)
