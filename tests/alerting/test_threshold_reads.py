"""A threshold rule (one comparison of an instant value, no duration) read from each series' latest sample
gives exactly the outcomes of the general judgement over whole tracks; and the series index finds a
selector's series through its posting lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from automation.alerting.rules import evaluate, parse_rule
from automation.alerting.series import Sample, Selector, Series
from automation.alerting.series_index import SeriesIndex
from automation.alerting.sources.memory import MemorySource


class SelectOnly:
    """A source without `latest`: every rule takes the general path."""

    def __init__(self, inner: MemorySource) -> None:
        self.name = "select-only"
        self.inner = inner

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]:
        return self.inner.select(selector, start, end)


VALUES = [-5.0, 0.0, 50.0, 79.5, 80.0, 80.5, 120.0, math.nan, math.inf, -math.inf]
LABEL_SETS = [
    {"pod": "a"},
    {"pod": "b"},
    {"pod": "c", "zone": "x"},
    {"pod": "a", "zone": "y"},
    {"zone": "x"},
    {},
]
SELECTORS = [
    "m",
    'm{pod="a"}',
    'm{pod!="b"}',
    'm{zone=~"x|y"}',
    'm{zone!~"x"}',
    'm{zone=""}',
    'm{pod="a", zone="y"}',
]
OPS = [">", ">=", "<", "<=", "==", "!="]


@st.composite
def datasets(draw: st.DrawFn) -> list[Series]:
    chosen = draw(st.lists(st.sampled_from(range(len(LABEL_SETS))), unique=True, max_size=len(LABEL_SETS)))
    found = []
    for index in chosen:
        times = draw(st.lists(st.integers(0, 40).map(lambda t: t * 25.0), unique=True, max_size=6))
        samples = [Sample(t, draw(st.sampled_from(VALUES))) for t in times]
        found.append(Series.of(draw(st.sampled_from(["m", "m", "other"])), LABEL_SETS[index], samples))
    return found


@settings(max_examples=400, deadline=None)
@given(
    data=datasets(),
    selector=st.sampled_from(SELECTORS),
    op=st.sampled_from(OPS),
    threshold=st.sampled_from([80.0, 0.0, -1.0]),
    flipped=st.booleans(),
    # on a sample's time, or exactly when it goes stale (300 s later), or anywhere
    now=st.one_of(
        st.tuples(st.integers(0, 40), st.sampled_from([0.0, 299.0, 300.0, 301.0])).map(
            lambda p: p[0] * 25.0 + p[1]
        ),
        st.integers(0, 1300).map(float),
    ),
)
def test_the_threshold_read_gives_the_general_outcomes(
    data: list[Series], selector: str, op: str, threshold: float, flipped: bool, now: float
) -> None:
    mirrored = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
    text = f"{threshold} {mirrored[op]} {selector}" if flipped else f"{selector} {op} {threshold}"
    rule = parse_rule(text)
    source = MemorySource(data)
    assert evaluate(rule, source, now) == evaluate(rule, SelectOnly(source), now)


def test_rules_with_a_duration_or_two_comparisons_take_the_general_path() -> None:
    data = [Series.of("m", {"pod": "a"}, [Sample(t, 90.0) for t in range(0, 700, 60)])]
    source = MemorySource(data)
    for text in ("m > 80 AND duration > 5m", "m > 80 AND m < 100", "NOT m > 80", "avg_over(m, 5m) > 80"):
        rule = parse_rule(text)
        assert evaluate(rule, source, 660.0) == evaluate(rule, SelectOnly(source), 660.0), text


def test_the_index_finds_series_through_the_shortest_posting_list() -> None:
    index = SeriesIndex()
    for i in range(30):
        index.add(i, "cpu" if i < 20 else "mem", {"service": f"s{i % 10}", "env": "prod" if i % 2 else "dev"})

    def ids(text: str) -> tuple[list[int], list[str]]:
        selector = parse_rule(f"{text} > 0").selectors[0]
        candidates, rest = index.lookup(selector)
        matched = [k.id for k in candidates if all(m.matches(k.label_map) for m in rest)]
        assert matched == [k.id for k in candidates if selector.matches(k.metric, k.label_map)]
        return matched, [str(m) for m in rest]

    assert ids('cpu{service="s3"}') == ([3, 13], [])
    assert ids('cpu{service="s3", env="prod"}') == ([3, 13], ['env="prod"'])
    assert ids('cpu{env="prod", service=~"s[13]"}')[0] == [1, 3, 11, 13]
    assert ids('cpu{service!="s3"}')[0] == [i for i in range(20) if i % 10 != 3]
    assert ids('cpu{service=""}') == ([], ['service=""'])  # no series lacks the label: none matches
    assert ids('mem{service="s3"}')[0] == [23]
    assert ids('disk{service="s3"}')[0] == []
    index.add(3, "cpu", {"other": "labels"})  # an id is one series for good: a second add changes nothing
    assert index.get(3) is not None and index.get(3).label_map == {"service": "s3", "env": "prod"}
