"""Rule evaluation: durations judged from the samples, staleness, label matching, windows and rates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from automation.alerting.rules import Outcome, evaluate, parse_rule
from automation.alerting.series import Sample, Selector, Series
from automation.alerting.sources.memory import MemorySource


def series(metric: str, labels: dict[str, str], points: Iterable[tuple[float, float]]) -> Series:
    return Series.of(metric, labels, [Sample(float(t), float(v)) for t, v in points])


def every_minute(start: int, stop: int, value: float = 90.0, **changes: float) -> list[tuple[int, float]]:
    """Samples each minute in [start, stop]; `changes` maps 't<seconds>' to another value at that time."""
    return [(t, changes.get(f"t{t}", value)) for t in range(start, stop + 1, 60)]


class CountingSource:
    """Wraps a source and records every query, to pin how an evaluation reads."""

    def __init__(self, inner: MemorySource) -> None:
        self.name = "counting"
        self.inner = inner
        self.queries: list[tuple[Selector, float, float]] = []

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]:
        self.queries.append((selector, start, end))
        return self.inner.select(selector, start, end)


def run(text: str, data: Iterable[Series], now: float) -> list[Outcome]:
    return evaluate(parse_rule(text), MemorySource(data), now)


# --- duration -------------------------------------------------------------------------------------------


def test_duration_is_judged_from_the_samples_not_from_memory() -> None:
    data = [series("cpu", {"pod": "a"}, every_minute(0, 1200, t420=50.0))]
    rule = parse_rule("cpu > 80 AND duration > 5m")
    source = MemorySource(data)
    # one evaluator walking forward, and fresh ones at each instant, say the same
    walked = [evaluate(rule, source, now) for now in range(0, 1201, 30)]
    for now, outcomes in zip(range(0, 1201, 30), walked, strict=True):
        assert evaluate(rule, MemorySource(data), now) == outcomes
    assert evaluate(rule, source, 600) == [Outcome({"pod": "a"}, 90.0, False, 480.0)]
    # the dip at 420 still counts at 779 (its value lasts until the next sample at 480)
    assert evaluate(rule, source, 779) == [Outcome({"pod": "a"}, 90.0, False, 480.0)]
    assert evaluate(rule, source, 780) == [Outcome({"pod": "a"}, 90.0, True, 480.0)]
    # beyond the window the data cannot tell how long it has held: active since now - 5m
    assert evaluate(rule, source, 1200) == [Outcome({"pod": "a"}, 90.0, True, 900.0)]


def test_duration_not_met_when_the_data_does_not_cover_the_window() -> None:
    data = [series("cpu", {}, every_minute(200, 900))]
    rule = "cpu > 80 AND duration > 5m"
    # true at every sample since the first, but nothing is known before 200
    assert run(rule, data, 400) == [Outcome({}, 90.0, False, 200.0)]
    assert run(rule, data, 499) == [Outcome({}, 90.0, False, 200.0)]
    assert run(rule, data, 500) == [Outcome({}, 90.0, True, 200.0)]


def test_a_gap_longer_than_the_staleness_bound_breaks_the_duration() -> None:
    data = [series("cpu", {}, [*every_minute(0, 120), *every_minute(600, 1200)])]
    # 120 goes stale after 420: from then until 600 nothing is known
    outcome = run("cpu > 80 AND duration > 15m", data, 1020)
    assert outcome == [Outcome({}, 90.0, False, 600.0)]
    assert run("cpu > 80 AND duration > 10m", data, 1200) == [Outcome({}, 90.0, True, 600.0)]


def test_duration_of_a_window_function_sees_samples_leave_the_window() -> None:
    # one sample every 2 minutes: count_over(1m) is 1 at each sample, 0 from a minute after it
    data = [series("jobs", {}, [(t, 1.0) for t in range(0, 1201, 120)])]
    assert run("count_over(jobs, 1m) >= 1 AND duration > 5m", data, 1200) == [Outcome({}, 1.0, False, 1200.0)]
    assert run("count_over(jobs, 3m) >= 1 AND duration > 5m", data, 1200) == [Outcome({}, 2.0, True, 900.0)]


def test_each_and_inside_an_or_judges_its_own_duration() -> None:
    data = [
        series("cpu", {"pod": "a"}, every_minute(0, 600, t480=10.0)),
        series("mem", {"pod": "a"}, every_minute(0, 600, 10.0)),
        series("cpu", {"pod": "b"}, every_minute(0, 600, 10.0)),
        series("mem", {"pod": "b"}, every_minute(0, 600, 95.0)),
    ]
    outcomes = run("(cpu > 80 AND duration > 1m) OR (mem > 90 AND duration > 5m)", data, 600)
    # a: cpu has held since 540 (60 s, enough for 1m); b: mem held 5m, cpu's value is reported
    assert outcomes == [
        Outcome({"pod": "a"}, 90.0, True, 540.0),
        Outcome({"pod": "b"}, 10.0, True, 300.0),
    ]


# --- values, staleness, reading -------------------------------------------------------------------------


def test_the_latest_sample_counts_until_it_is_stale() -> None:
    data = [series("cpu", {"pod": "a"}, [(0, 90.0)])]
    assert run("cpu > 80", data, 300) == [Outcome({"pod": "a"}, 90.0, True, 300.0)]
    assert run("cpu > 80", data, 301) == []
    assert run("cpu > 80", data, -1) == []  # nothing at or before now


def test_an_outcome_for_every_series_whether_it_holds_or_not() -> None:
    data = [series("cpu", {"pod": "a"}, [(0, 90.0)]), series("cpu", {"pod": "b"}, [(0, 70.0)])]
    assert run("80 < cpu", data, 10) == [
        Outcome({"pod": "a"}, 90.0, True, 10.0),
        Outcome({"pod": "b"}, 70.0, False, None),
    ]


def test_reads_each_selector_once_over_the_lookback() -> None:
    source = CountingSource(MemorySource([series("cpu", {}, every_minute(0, 3600))]))
    rule = parse_rule('cpu > 80 AND avg_over(cpu, 10m) > 50 AND cpu{pod!="x"} > 1 AND duration > 5m')
    assert rule.lookback == 300 + 600
    evaluate(rule, source, 3600)
    assert source.queries == [
        (Selector("cpu"), 2700.0, 3600.0),
        (parse_rule('cpu{pod!="x"} > 1').selectors[0], 2700.0, 3600.0),
    ]


# --- label matching -------------------------------------------------------------------------------------


def test_and_matches_equal_label_sets_and_reports_the_left_value() -> None:
    data = [
        series("cpu", {"pod": "a"}, [(0, 90.0)]),
        series("cpu", {"pod": "b"}, [(0, 91.0)]),
        series("cpu", {"pod": "c"}, [(0, 92.0)]),
        series("mem", {"pod": "a"}, [(0, 95.0)]),
        series("mem", {"pod": "b"}, [(0, 10.0)]),
        series("mem", {"pod": "d"}, [(0, 99.0)]),
    ]
    assert run("cpu > 80 AND mem > 90", data, 0) == [
        Outcome({"pod": "a"}, 90.0, True, 0.0),
        Outcome({"pod": "b"}, 91.0, False, None),
        Outcome({"pod": "c"}, 92.0, False, None),  # no mem{pod="c"}: no match
    ]


def test_or_keeps_the_label_sets_of_both_sides() -> None:
    data = [series("cpu", {"pod": "a"}, [(0, 10.0)]), series("mem", {"pod": "d"}, [(0, 99.0)])]
    assert run("cpu > 80 OR mem > 90", data, 0) == [
        Outcome({"pod": "a"}, 10.0, False, None),
        Outcome({"pod": "d"}, 99.0, True, 0.0),
    ]


def test_one_series_without_labels_matches_every_label_set() -> None:
    data = [
        series("cpu", {"pod": "a"}, [(0, 90.0)]),
        series("cpu", {"pod": "b"}, [(0, 10.0)]),
        series("maintenance", {}, [(0, 0.0)]),
    ]
    assert run("cpu > 80 AND maintenance < 1", data, 0) == [
        Outcome({"pod": "a"}, 90.0, True, 0.0),
        Outcome({"pod": "b"}, 10.0, False, None),
    ]
    # on the left it takes the other side's label sets, and its own value
    assert run("maintenance < 1 AND cpu > 80", data, 0) == [
        Outcome({"pod": "a"}, 0.0, True, 0.0),
        Outcome({"pod": "b"}, 0.0, False, None),
    ]
    during = [*data[:2], series("maintenance", {}, [(0, 1.0)])]
    assert [o.holds for o in run("cpu > 80 AND maintenance < 1", during, 0)] == [False, False]


def test_not_negates_and_keeps_the_label_sets() -> None:
    data = [series("up", {"job": "a"}, [(0, 1.0)]), series("up", {"job": "b"}, [(0, 0.0)])]
    assert run("NOT up == 1", data, 0) == [
        Outcome({"job": "a"}, 1.0, False, None),
        Outcome({"job": "b"}, 0.0, True, 0.0),
    ]


# --- windows and rates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "value"),
    [("avg_over", 5.5), ("max_over", 6.0), ("min_over", 5.0), ("sum_over", 11.0), ("count_over", 2.0)],
)
def test_window_functions_reduce_the_samples_in_the_half_open_window(function: str, value: float) -> None:
    # samples 1..6 at 0, 60, ..., 300; (300 - 120, 300] holds the last two
    data = [series("x", {}, [(60 * i, i + 1.0) for i in range(6)])]
    assert run(f"{function}(x, 2m) > 0", data, 300) == [Outcome({}, value, True, 300.0)]


def test_rate_counts_a_drop_as_a_counter_reset() -> None:
    data = [series("requests_total", {}, [(0, 100.0), (10, 110.0), (20, 120.0), (30, 5.0), (40, 15.0)])]
    # 10 + 10 + 5 (restarted from zero) + 10 over 40 seconds
    assert run("rate(requests_total, 1m) > 0.8", data, 40) == [Outcome({}, 35 / 40, True, 40.0)]
    assert run("rate(requests_total, 15s) > 0", data, 40) == [Outcome({}, 1.0, True, 40.0)]
    assert run("rate(requests_total, 5s) > 0", data, 40) == []  # one sample: no rate


def test_a_window_with_no_sample_has_no_value() -> None:
    data = [series("x", {}, [(0, 1.0)])]
    assert run("max_over(x, 1m) > 0", data, 60) == []
    assert run("max_over(x, 1m) > 0", data, 59) == [Outcome({}, 1.0, True, 59.0)]


def test_memory_source_cuts_series_to_the_range_and_refuses_duplicates() -> None:
    source = MemorySource([series("x", {"a": "1"}, [(0, 1.0), (10, 2.0), (20, 3.0)])])
    (found,) = source.select(Selector("x"), 5, 20)
    assert [s.at for s in found.samples] == [10.0, 20.0]
    assert source.select(Selector("x"), 21, 30) == []
    assert source.select(parse_rule('x{a="2"} > 0').selectors[0], 0, 30) == []
    with pytest.raises(ValueError, match="two series"):
        MemorySource([series("x", {"a": "1"}, []), series("x", {"a": "1"}, [])])
