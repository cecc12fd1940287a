"""Root-cause ranking: the dependency graph, metric onsets, the ranking's evidence, and the generated
cascades it is measured on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automation.errors import InvalidFieldsError
from automation.incidents.cascades import generate
from automation.incidents.graph import ServiceGraph
from automation.incidents.onset import Onset, find_onset
from automation.incidents.rca import AlertSignal, Change, rank_causes

#: frontend -> api -> (orders, search); orders -> db; search -> index
GRAPH = {
    "frontend": ["api"],
    "api": ["orders", "search"],
    "orders": ["db"],
    "search": ["index"],
    "db": [],
    "index": [],
    "billing": ["db"],
}
T0 = pd.Timestamp("2026-03-05 12:00")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def test_graph_walks_up_and_down_with_distances() -> None:
    graph = ServiceGraph(GRAPH)
    assert graph.upstream("frontend") == {"api": 1, "orders": 2, "search": 2, "db": 3, "index": 3}
    assert graph.downstream("db") == {"orders": 1, "billing": 1, "api": 2, "frontend": 3}
    assert ServiceGraph({"a": ["b"], "b": ["a"]}).downstream("a") == {"b": 1}  # a cycle ends


def test_graph_refuses_unknown_and_self_dependencies_naming_the_service() -> None:
    with pytest.raises(InvalidFieldsError) as caught:
        ServiceGraph({"a": ["ghost"], "b": ["b"]})
    assert [field for field, _ in caught.value.errors] == ["services.a.depends_on", "services.b.depends_on"]


def daily(
    days: int = 4, *, step_at: pd.Timestamp | None = None, sigmas: float = 6.0, seed: int = 1
) -> pd.Series:
    index = pd.date_range(
        T0.normalize() - pd.Timedelta(days=days - 1), T0 + pd.Timedelta(hours=2), freq="1min"
    )
    minutes = (index - index[0]).total_seconds().to_numpy() / 60
    values = 100 * (1 + 0.4 * np.sin(2 * np.pi * minutes / 1440)) + np.random.default_rng(seed).normal(
        0, 4, len(index)
    )
    if step_at is not None:
        values = values + sigmas * 4 * (index >= step_at)
    return pd.Series(values, index=index)


def test_onset_finds_a_step_within_minutes_and_nothing_in_noise() -> None:
    found = find_onset(daily(step_at=at(10)), start=at(-30), end=at(60))
    assert found is not None and abs((found.at - at(10)).total_seconds()) <= 180
    assert found.peak_sigmas > 3 and found.sustained > 0.8
    assert find_onset(daily(seed=7), start=at(-30), end=at(60)) is None


def test_the_root_upstream_of_everything_that_went_wrong_comes_first_with_its_evidence() -> None:
    graph = ServiceGraph(GRAPH)
    onsets = {
        "db": Onset(at(0), 9.0, 1.0),
        "orders": Onset(at(1), 6.0, 0.9),
        "billing": Onset(at(1.5), 5.0, 0.9),
        "api": Onset(at(2), 5.0, 0.9),
    }
    # the alerts fire in the wrong order: the victims' rules have shorter `for`s
    alerts = [AlertSignal("api", at(3), "HighLatency"), AlertSignal("db", at(8), "SlowQueries")]
    changes = [
        Change("db", at(-12), "config", "max_connections 500 -> 50"),
        Change("search", at(-5), "deploy"),
    ]
    causes = rank_causes(graph, alerts=alerts, onsets=onsets, changes=changes)
    top = causes[0]
    assert top.service == "db"
    assert any("upstream of 3 of the 4" in line for line in top.evidence)
    assert any(line.startswith("change: config max_connections") for line in top.evidence)
    api = next(c for c in causes if c.service == "api")
    assert any("depends on" in line and "orders" in line for line in api.evidence)  # a victim, and why
    assert [c.service for c in causes].index("api") > [c.service for c in causes].index("orders")


def test_a_transient_blip_earlier_does_not_outrank_a_lasting_failure() -> None:
    graph = ServiceGraph(GRAPH)
    onsets = {"index": Onset(at(-20), 4.0, 0.1), "orders": Onset(at(0), 9.0, 1.0)}
    causes = rank_causes(graph, alerts=[], onsets=onsets)
    assert causes[0].service == "orders"


def test_a_blip_upstream_explains_nothing_and_makes_no_victim() -> None:
    # index blipped (15% of the time since) just before search failed for good: search is the root
    graph = ServiceGraph(GRAPH)
    onsets = {
        "index": Onset(at(-2), 5.0, 0.15),
        "search": Onset(at(0), 6.0, 1.0),
        "api": Onset(at(1), 5.0, 0.9),
    }
    alerts = [AlertSignal("index", at(-1), "HighLatency")]  # an alert on the blip does not make it last
    causes = rank_causes(graph, alerts=alerts, onsets=onsets)
    assert causes[0].service == "search"
    assert not any("depends on" in line for line in causes[0].evidence)
    index = next(c for c in causes if c.service == "index")
    assert any("upstream of 0 of the 3" in line for line in index.evidence)


def test_an_alert_its_metric_does_not_confirm_weighs_less_than_a_confirmed_failure() -> None:
    graph = ServiceGraph(GRAPH)
    alerts = [AlertSignal("billing", at(-5), "HighLatency"), AlertSignal("search", at(3), "HighLatency")]
    onsets = {"search": Onset(at(0), 4.0, 0.7)}  # a modest lasting step, confirmed by its alert
    # billing's metric was searched and shows nothing: its alert is unconfirmed
    causes = rank_causes(graph, alerts=alerts, onsets=onsets, watched=["billing", "search"])
    assert [c.service for c in causes][:2] == ["search", "billing"]
    billing = next(c for c in causes if c.service == "billing")
    assert any("its metric shows no onset" in line for line in billing.evidence)
    assert any("and its alert" in line for line in causes[0].evidence)


def test_nothing_affected_ranks_nothing() -> None:
    assert rank_causes(ServiceGraph(GRAPH), alerts=[], onsets={}) == []


def test_scenarios_are_reproducible_and_the_ranking_beats_the_first_alert() -> None:
    from benchmarks.bench_rca import evaluate

    a, b = generate(42), generate(42)
    assert a.root == b.root and a.depends_on == b.depends_on and a.alerts == b.alerts
    assert 10 <= len(a.depends_on) <= 50 and a.root in a.failed
    result = evaluate(range(500, 530))
    ours, first = result["methods"]["ours"], result["methods"]["first_alert"]
    assert ours["top1"] > first["top1"] + 0.2 and ours["top3"] >= 0.8
