"""The pure parts of the pipeline: matchers, routing tree, inhibition, silences, flap damping."""

from __future__ import annotations

import pytest

from automation.alerting.definitions import AlertingDocument
from automation.alerting.flapping import FlapPolicy
from automation.alerting.inhibition import FiringAlert, InhibitRule, inhibited_by
from automation.alerting.matchers import MatcherError, parse_matcher, parse_matchers
from automation.alerting.routing import destinations
from automation.alerting.silencing import ActiveSilence, silenced_by
from automation.errors import DefinitionError


def test_matchers_parse_quotes_regexes_and_refuse_garbage() -> None:
    assert parse_matcher('service="api \\"v2\\""').matches({"service": 'api "v2"'})
    regex = parse_matcher('pod=~"web-.*"')
    assert regex.matches({"pod": "web-1"}) and not regex.matches({"pod": "xweb-1"})  # whole value
    assert parse_matcher('zone!~"eu-.*"').matches({})  # an absent label is the empty string
    assert parse_matchers({"severity": "critical"})[0].op == "="
    with pytest.raises(MatcherError, match="not a matcher"):
        parse_matcher("service")
    with pytest.raises(MatcherError, match="bad regular expression"):
        parse_matcher('x=~"("')


ROUTES = {
    "route": {
        "receiver": "team",
        "group_by": ["alertname", "service"],
        "routes": [
            {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True, "group_wait": "5s"},
            {"matchers": ['service=~"db|cache"'], "receiver": "dba"},
            {"matchers": ['service="api"'], "receiver": "api-team", "group_by": ["..."]},
        ],
    },
    "receivers": [
        {"name": n, "webhook": {"url": "http://127.0.0.1:9/"}} for n in ("team", "pager", "dba", "api-team")
    ],
}


def route_of(labels: dict[str, str]) -> list[tuple[str, str]]:
    document = AlertingDocument.parse(ROUTES)
    return [(d.receiver, d.route) for d in destinations(document.route.build(), labels)]


def test_routing_first_match_continue_and_fallback() -> None:
    assert route_of({"alertname": "x", "service": "db"}) == [("dba", "0.1")]
    # `continue` on the critical route: it also goes on to the next matching sibling.
    assert route_of({"alertname": "x", "severity": "critical", "service": "db"}) == [
        ("pager", "0.0"),
        ("dba", "0.1"),
    ]
    # No child matches: the root takes it.
    assert route_of({"alertname": "x", "service": "web"}) == [("team", "0")]


def test_routing_inherits_timings_and_groups_by_labels() -> None:
    document = AlertingDocument.parse(ROUTES)
    root = document.route.build()
    crit = destinations(root, {"alertname": "a", "severity": "critical", "service": "s1"})[0]
    assert crit.timings.group_wait == 5 and crit.timings.repeat_interval == root.timings.repeat_interval
    one = destinations(root, {"alertname": "a", "service": "web", "pod": "1"})[0]
    two = destinations(root, {"alertname": "a", "service": "web", "pod": "2"})[0]
    assert one.group_key == two.group_key  # pod is not in group_by
    every1 = destinations(root, {"alertname": "a", "service": "api", "pod": "1"})[0]
    every2 = destinations(root, {"alertname": "a", "service": "api", "pod": "2"})[0]
    assert every1.group_key != every2.group_key  # group_by ["..."]: one group per label set


def test_unknown_receiver_in_a_route_is_named() -> None:
    bad = {
        "route": {"receiver": "team", "routes": [{"receiver": "nobody"}]},
        "receivers": ROUTES["receivers"],
    }
    with pytest.raises(DefinitionError, match=r"route.routes\[0\].receiver: unknown receiver 'nobody'"):
        AlertingDocument.parse(bad)


def test_inhibition_needs_equal_labels_and_never_self() -> None:
    rule = InhibitRule(
        parse_matchers(['severity="critical"']), parse_matchers(['severity="high"']), ("cluster",)
    )
    source = FiringAlert("src", {"severity": "critical", "cluster": "eu"})
    assert inhibited_by("t", {"severity": "high", "cluster": "eu"}, [source], [rule]) == "src"
    assert inhibited_by("t", {"severity": "high", "cluster": "us"}, [source], [rule]) is None
    assert inhibited_by("t", {"severity": "low", "cluster": "eu"}, [source], [rule]) is None
    both = InhibitRule(parse_matchers(['a="1"']), parse_matchers(['a="1"']))
    assert inhibited_by("src", {"a": "1"}, [FiringAlert("src", {"a": "1"})], [both]) is None


def test_silence_window_and_matchers() -> None:
    silence = ActiveSilence("s1", parse_matchers(['service="api"', 'env!="dev"']), 100.0, 200.0)
    assert silenced_by({"service": "api", "env": "prod"}, [silence], 150.0) == "s1"
    assert silenced_by({"service": "api", "env": "dev"}, [silence], 150.0) is None
    assert silenced_by({"service": "api"}, [silence], 200.0) is None  # ends_at is exclusive
    assert silenced_by({"service": "api"}, [silence], 99.0) is None


def test_flapping_counts_changes_inside_the_window() -> None:
    policy = FlapPolicy(changes=3, window=60)
    assert not policy.is_flapping([0, 10, 20], 30)
    assert policy.is_flapping([0, 10, 20, 30], 30)
    assert not policy.is_flapping([0, 10, 20, 30], 75)  # two of them left the window
    assert not FlapPolicy(changes=0).is_flapping([1, 2, 3, 4, 5, 6, 7, 8], 8)  # 0 turns it off


def test_a_group_due_now_is_not_missed_by_the_databases_rounding() -> None:
    from automation.alerting.grouping import GroupState, Member, due
    from automation.alerting.routing import Timings

    now = 1_800_000_000.123456
    # Stored as a datetime, `now` may come back rounded up to the next microsecond.
    state = GroupState(waiting_since=now + 4e-7)
    firing = [Member("a", True, now)]
    assert due(state, firing, now, Timings(group_wait=0))[0]
    assert not due(state, firing, now, Timings(group_wait=1))[0]
