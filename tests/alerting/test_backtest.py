"""The backtest on real NAB slices (tests/data/nab): rules fire where the data say, anomaly() catches a
labelled window, and cooldown, flap damping, keep_firing_for, grouping and inhibition change what is
reported as their documentation says. Expectations are computed from the CSV rows directly."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from automation.alerting.backtest import (
    BacktestResult,
    anomaly_scores,
    backtest,
    parse_rules,
    sampling_interval,
    trace_series,
)
from automation.alerting.definitions import AlertingDocument, RuleDefinition
from automation.alerting.nab import nab_time, read_windows, score_alerts, windows_for
from automation.alerting.rules import ForecastAnomalyScorer
from automation.alerting.series import Sample, Series
from automation.alerting.sources.memory import MemorySource
from automation.choices import AutomationLevel
from automation.errors import DefinitionError
from automation.forecasting.traces import load_points

DATA = Path(__file__).resolve().parents[1] / "data" / "nab"
CPU = DATA / "realAWSCloudwatch" / "ec2_cpu_utilization_24ae8d.csv"  # idles at 0.13 %, spikes
WINDOWS = read_windows(DATA / "labels" / "combined_windows.json")
FIVE_MINUTES = 300.0


def csv_rows(path: Path) -> list[tuple[float, float]]:
    """(epoch seconds, value) of each row, read without the code under test."""
    with path.open() as handle:
        return [
            (datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC).timestamp(), float(row["value"]))
            for row in csv.DictReader(handle)
        ]


ROWS = csv_rows(CPU)


def cpu_series() -> Series:
    points = load_points(CPU)
    times = [t / 1e9 for t in points.times.asi8]
    return trace_series(times, points.values, metric="value", labels={"trace": points.name})


def rule(name: str, condition: str, **more: Any) -> RuleDefinition:
    return RuleDefinition.parse({"name": name, "condition": condition, **more})


def replay(
    *rules: RuleDefinition, start: float | None = None, end: float | None = None, **options: Any
) -> BacktestResult:
    return backtest(
        list(rules),
        MemorySource([cpu_series()]),
        start=ROWS[0][0] if start is None else start,
        end=ROWS[-1][0] if end is None else end,
        interval=FIVE_MINUTES,
        **options,
    )


def edges(holds: list[bool]) -> list[tuple[float, float | None]]:
    """(first row holding, first row after it not holding) of each run of holding rows."""
    found: list[tuple[float, float | None]] = []
    start = None
    for (at, _), held in zip(ROWS, holds, strict=True):
        if held and start is None:
            start = at
        elif not held and start is not None:
            found.append((start, at))
            start = None
    if start is not None:
        found.append((start, None))
    return found


def test_the_trace_is_sampled_every_five_minutes() -> None:
    assert sampling_interval([at for at, _ in ROWS]) == FIVE_MINUTES
    assert len(cpu_series().samples) == len(ROWS) == 4032


def test_a_static_rule_fires_where_the_data_cross_its_threshold() -> None:
    result = replay(rule("busy", "value > 1"))
    firings = result.rules["busy"].firings
    assert [(f.detected_at, f.end) for f in firings] == edges([v > 1 for _, v in ROWS])
    assert all(f.start == f.detected_at for f in firings)  # no duration: it fires as it holds
    # The file's peak (2.344 at 22:05) is the only point above 2: inside the first labelled window.
    peak = replay(rule("peak", "value > 2")).rules["peak"].firings
    assert [(f.detected_at, f.end) for f in peak] == [
        (nab_time("2014-02-26 22:05:00"), nab_time("2014-02-26 22:10:00"))
    ]
    key, windows = windows_for(WINDOWS, CPU)
    score = score_alerts([f.detected_at for f in peak], windows, start=ROWS[0][0], end=ROWS[-1][0])
    assert score.caught == 1 and score.false_alerts == 0
    assert score.windows[0].delay == 8 * 3600 + 20 * 60  # 13:45 -> 22:05


def test_an_anomaly_rule_catches_the_labelled_peak_and_not_the_idle_switching() -> None:
    start, end = nab_time("2014-02-26 12:45:00"), nab_time("2014-02-27 06:25:00")
    result = replay(rule("odd", "anomaly(value) > 1.5"), start=start, end=end, scorer=ForecastAnomalyScorer())
    detected = [f.detected_at for f in result.rules["odd"].firings]
    _, windows = windows_for(WINDOWS, CPU)
    # the file's peak, inside the first labelled window, is the one firing
    assert detected == [nab_time("2014-02-26 22:05:00")]
    assert windows[0][0] <= detected[0] <= windows[0][1]
    # while the series switches between its idle levels (0.066 % and 0.134 %) all along: a collapsed
    # interval used to score each switch about 8
    span = [v for at, v in ROWS if start <= at <= end]
    switches = sum(1 for a, b in zip(span, span[1:], strict=False) if abs(a - b) > 0.05 and max(a, b) < 0.14)
    assert switches > 20


def test_a_duration_holds_back_the_firing_and_dates_it_from_the_condition() -> None:
    result = replay(rule("busy_10m", "value > 0.5 AND duration > 10m"))
    holding = edges([v > 0.5 for _, v in ROWS])
    long_enough = [(a, b) for a, b in holding if (b if b is not None else math.inf) - a > 10 * 60]
    firings = result.rules["busy_10m"].firings
    assert [(f.start, f.detected_at) for f in firings] == [(a, a + 600) for a, _ in long_enough]
    assert result.rules["busy_10m"].decisions["pending"] == len(holding)


def test_keep_firing_for_bridges_short_gaps() -> None:
    keep = 15 * 60
    result = replay(rule("above_idle", "value > 0.14", keep_firing_for="15m"))
    spans: list[list[float]] = []  # [first, last] holding rows of each firing
    for at in (at for at, v in ROWS if v > 0.14):
        if spans and at - spans[-1][1] <= keep:  # back before keep_firing_for ran out: one firing
            spans[-1][1] = at
        else:
            spans.append([at, at])
    # A firing resolves keep_firing_for after its last holding row (if the trace lasts that long).
    expected = [(a, b + keep if b + keep <= ROWS[-1][0] else None) for a, b in spans]
    firings = result.rules["above_idle"].firings
    assert [(f.detected_at, f.end) for f in firings] == expected
    without = replay(rule("above_idle", "value > 0.14")).rules["above_idle"].firings
    assert len(without) > len(firings)


def greedy_runs(starts: list[float], cooldown: float) -> list[float]:
    runs: list[float] = []
    for at in starts:
        if not runs or at - runs[-1] >= cooldown:
            runs.append(at)
    return runs


def test_cooldown_keeps_runs_apart() -> None:
    actions = [{"type": "notify", "parameters": {"url": "http://127.0.0.1:9/"}}]
    free = replay(rule("busy", "value > 0.5", actions=actions), level=AutomationLevel.AUTONOMOUS)
    starts = [f.detected_at for f in free.rules["busy"].firings]
    assert [r.at for r in free.rules["busy"].runs] == starts  # a run per firing
    cooled = replay(
        rule("busy", "value > 0.5", actions=actions, cooldown_period="25h"), level=AutomationLevel.AUTONOMOUS
    )
    report = cooled.rules["busy"]
    assert [r.at for r in report.runs] == greedy_runs(starts, 25 * 3600)
    assert len(report.runs) < len(starts)
    assert report.decisions["cooldown"] == len(starts) - len(report.runs)
    assert {r.workflow for r in report.runs} == {"alert.busy"} and not any(r.gated for r in report.runs)


def test_the_automation_level_decides_how_runs_start() -> None:
    actions = [{"type": "notify", "parameters": {"url": "http://127.0.0.1:9/"}}]
    definition = rule("busy", "value > 1", actions=actions, severity="high")
    supervised = replay(definition).rules["busy"]  # the engine's default level
    assert supervised.runs and all(r.gated and r.workflow == "alert.busy.gated" for r in supervised.runs)
    semi = replay(definition, level=AutomationLevel.SEMI_AUTONOMOUS).rules["busy"]
    assert all(r.gated for r in semi.runs)  # high severity is gated at semi_autonomous
    manual = replay(definition, level=AutomationLevel.MANUAL).rules["busy"]
    assert manual.runs == [] and manual.decisions["not_automated"] == len(manual.firings)


def test_flap_damping_holds_alerts_that_change_too_often() -> None:
    actions = [{"type": "notify", "parameters": {"url": "http://127.0.0.1:9/"}}]
    flap = {"changes": 4, "window": "1h"}
    result = replay(
        rule("jumpy", "value > 0.14", actions=actions, flap=flap), level=AutomationLevel.AUTONOMOUS
    )
    report = result.rules["jumpy"]
    # Each firing and each resolution is a change; a firing that makes more than 4 in the last hour flaps.
    changes: list[float] = []
    expected = []
    for start, end in edges([v > 0.14 for _, v in ROWS]):
        changes.append(start)
        expected.append(sum(1 for t in changes if start - t <= 3600) > 4)
        if end is not None:
            changes.append(end)
    assert [f.flapping for f in report.firings] == expected
    assert any(expected) and not all(expected)
    assert len(report.runs) == expected.count(False)  # a flapping alert starts no workflow
    flapping = {f.detected_at for f in report.firings if f.flapping}
    assert not any(n.at in flapping for n in report.notifications)
    undamped = replay(
        rule("jumpy", "value > 0.14", actions=actions, flap={"changes": 0}), level=AutomationLevel.AUTONOMOUS
    )
    assert len(undamped.rules["jumpy"].runs) == len(report.firings)


def test_grouping_waits_batches_and_repeats() -> None:
    high, peak = rule("cpu_high", "value > 1.5"), rule("cpu_peak", "value > 2")
    together = {"route": {"receiver": "log", "group_by": [], "group_wait": "30s", "group_interval": "5m"}}
    result = replay(high, peak, document=AlertingDocument.parse(together))
    fired = nab_time("2014-02-26 22:05:00")
    at_peak = [n for n in result.notifications if fired <= n.at < fired + 3600]
    # Both rules fire at 22:05 into one group. It was notified before (value > 1.5 fired earlier), but it
    # emptied when those alerts resolved, and an empty group starts over, as Alertmanager's: the two wait
    # group_wait and go out in one notification; their resolutions go group_interval after it.
    assert [(n.at - fired, len(n.firing), len(n.resolved)) for n in at_peak] == [(30, 2, 0), (330, 0, 2)]
    apart = {"route": {"receiver": "log", "group_by": ["alertname"], "group_wait": "30s"}}
    separate = replay(high, peak, document=AlertingDocument.parse(apart))
    first = [n for n in separate.notifications if fired <= n.at < fired + 60]
    # One group per rule, each empty before (cpu_high's emptied when its earlier alert resolved): both
    # wait group_wait.
    assert sorted((n.at - fired, n.group_labels["alertname"]) for n in first) == [
        (30, "cpu_high"),
        (30, "cpu_peak"),
    ]
    # Nothing changes while an alert keeps firing: it is notified again every repeat_interval.
    idle = rule("idle", "value < 1")
    repeating = {"route": {"receiver": "log", "repeat_interval": "1h", "group_wait": "30s"}}
    notes = replay(idle, document=AlertingDocument.parse(repeating)).notifications
    gaps = {round(b.at - a.at) for a, b in zip(notes, notes[1:]) if a.firing == b.firing and not b.resolved}
    assert gaps == {3600}


def test_an_inhibited_alert_is_neither_notified_nor_remediated() -> None:
    actions = [{"type": "notify", "parameters": {"url": "http://127.0.0.1:9/"}}]
    document = AlertingDocument.parse(
        {
            "route": {"receiver": "log", "group_by": ["alertname"]},
            "inhibit_rules": [
                {"source_matchers": ['alertname="cpu_high"'], "target_matchers": ['alertname="cpu_peak"']}
            ],
        }
    )
    result = replay(
        rule("cpu_high", "value > 1.5"),
        rule("cpu_peak", "value > 2", actions=actions),
        document=document,
        level=AutomationLevel.AUTONOMOUS,
    )
    peak = result.rules["cpu_peak"]
    assert len(peak.firings) == 1 and peak.decisions["inhibited"] >= 1
    assert peak.runs == [] and peak.notifications == []
    assert result.rules["cpu_high"].notifications


def test_anomaly_scores_use_only_the_data_before_each_instant() -> None:
    series = cpu_series()
    at = [nab_time("2014-02-26 14:25:00"), nab_time("2014-02-26 22:05:00"), nab_time("2014-02-16 03:05:00")]
    full = anomaly_scores(series, at)
    for instant, score in zip(at, full, strict=True):
        cut = Series(series.metric, series.labels, tuple(s for s in series.samples if s.at <= instant))
        assert anomaly_scores(cut, [instant]) == [score]
    assert full[0] == 0 and full[1] > 1.5 and full[2] > 5  # an idle switch, the peak, an early daily spike
    first = anomaly_scores(series, [ROWS[0][0]])[0]
    assert math.isnan(first)  # no history yet: no value


def test_a_stale_series_has_no_value_and_resolves() -> None:
    samples = [Sample(float(i * 60), 5.0) for i in range(10)]  # ten minutes, then nothing
    source = MemorySource([Series.of("queue_depth", {}, samples)])
    result = backtest([rule("deep", "queue_depth > 1")], source, start=0.0, end=1800.0, interval=60.0)
    firings = result.rules["deep"].firings
    # The last sample (540 s) is fresh for five minutes: the alert resolves at the first tick after.
    assert [(f.detected_at, f.end) for f in firings] == [(0.0, 900.0)]


def test_rules_that_cannot_be_replayed_are_skipped_or_refused() -> None:
    promql = RuleDefinition.parse({"name": "p", "expr": "up == 0", "source": "prometheus"})
    handler = RuleDefinition.parse({"name": "h", "actions": [{"type": "notify", "parameters": {}}]})
    parsed, skipped = parse_rules([promql, handler, rule("ok", "value > 1")])
    assert [d.name for d, _ in parsed] == ["ok"] and set(skipped) == {"p", "h"}
    with pytest.raises(DefinitionError, match=r"bad\.condition: column 9"):
        parse_rules([rule("bad", "value > > 1")])
    with pytest.raises(DefinitionError, match="two rules"):
        parse_rules([rule("ok", "value > 1"), rule("ok", "value > 2")])
