"""What the alerting domain refuses or hides for safety: patterns matched in linear time (RE2), credentials
neither in URLs nor in what is shown of receivers and notification actions."""

from __future__ import annotations

import time

import pytest

from automation.alerting.definitions import AlertingDocument
from automation.alerting.matchers import MatcherError, parse_matcher
from automation.alerting.regex import RegexError, compile_regex, full_match
from automation.alerting.series import Matcher
from automation.errors import DefinitionError
from automation.secrets import MASK, mask_definition, mask_notification

# -- regexes: RE2, the whole value ------------------------------------------------------------------------


def test_a_pathological_pattern_is_matched_in_linear_time() -> None:
    # Python's re backtracks exponentially on this (36 `a`s take seconds); RE2 does not.
    matcher = parse_matcher('service=~"(a|aa)*c"')
    value = "a" * 4096
    started = time.perf_counter()
    assert not matcher.matches({"service": value})
    assert Matcher("service", "!~", "(a|aa)*c").matches({"service": value})
    assert time.perf_counter() - started < 1.0  # a safety bound, not a benchmark
    assert matcher.matches({"service": "a" * 4095 + "c"})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("api|web", "api", True),
        ("api|web", "xapi", False),  # anchored at both ends, alternatives included
        ("web-.*", "web-1", True),
        ("web", "web-1", False),
        ("", "", True),
        ("a.b", "a\nb", True),  # `.` matches a newline, as Prometheus's (?s:...)
        ("(?i)API", "api", True),
        ("\\d+", "123", True),
    ],
)
def test_regex_matches_the_whole_value_as_prometheus(pattern: str, value: str, expected: bool) -> None:
    assert full_match(pattern, value) is expected
    assert Matcher("l", "=~", pattern).matches({"l": value}) is expected
    assert Matcher("l", "!~", pattern).matches({"l": value}) is not expected


@pytest.mark.parametrize(
    "pattern",
    ["(?=api)", "(a)\\1", "(?<!x)y", "a{1001}", "a{99999999999}", "a{2,5000}", "((a{100}){100}){100}", "("],
)
def test_a_pattern_re2_cannot_run_is_refused_naming_the_field(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_regex(pattern)
    quoted = pattern.replace("\\", "\\\\")
    with pytest.raises(MatcherError, match=r"bad regular expression \(RE2"):
        parse_matcher(f'service=~"{quoted}"')
    route = {"receiver": "log", "routes": [{"receiver": "log", "matchers": [f'service!~"{quoted}"']}]}
    with pytest.raises(DefinitionError) as refused:
        AlertingDocument.parse({"route": route})
    assert [field for field, _ in refused.value.errors] == ["route.routes[0].matchers"]
    inhibit = {"source_matchers": [f'a=~"{quoted}"'], "target_matchers": ["b=c"]}
    with pytest.raises(DefinitionError) as refused:
        AlertingDocument.parse({"inhibit_rules": [inhibit]})
    assert [field for field, _ in refused.value.errors] == ["inhibit_rules[0].source_matchers"]


def test_a_rule_selector_with_a_pattern_re2_refuses_names_its_column() -> None:
    from automation.alerting.rules.parser import parse_rule

    with pytest.raises(DefinitionError) as refused:
        parse_rule('cpu{service=~"(?=api)"} > 90')
    assert "RE2" in str(refused.value)


@pytest.mark.parametrize(("pattern", "value"), [("[{2000}]", "{"), ("\\{2000}", "{2000}"), ("[]{]{2}", "]{")])
def test_braces_that_are_no_repetition_are_literal(pattern: str, value: str) -> None:
    assert full_match(pattern, value)


def test_a_stored_pattern_re2_refuses_matches_nothing() -> None:
    # Matchers stored before RE2 checked them do not stop the pipeline.
    assert not Matcher("s", "=~", "(?=api)api").matches({"s": "api"})
    assert Matcher("s", "!~", "(?=api)api").matches({"s": "api"})


# -- credentials in URLs and in what is shown -------------------------------------------------------------


def test_a_url_with_user_and_password_is_refused() -> None:
    with pytest.raises(DefinitionError) as refused:
        AlertingDocument.parse({"prometheus": {"url": "https://ops:s3cret@prom.example.org"}})
    [(field, reason)] = refused.value.errors
    assert field == "prometheus.url" and "use the username and password fields" in reason
    assert "s3cret" not in str(refused.value)
    for kind, settings in [
        ("slack", {"url": "https://u:p@hooks.example.org/x"}),
        ("webhook", {"url": "https://token@hooks.example.org/x"}),
        ("pagerduty", {"url": "https://u:p@events.example.org/v2", "routing_key": "k"}),
    ]:
        document = {"route": {"receiver": "r"}, "receivers": [{"name": "r", kind: settings}]}
        with pytest.raises(DefinitionError) as refused:
            AlertingDocument.parse(document)
        assert [field for field, _ in refused.value.errors] == [f"receivers[0].{kind}.url"]
    fine = AlertingDocument.parse({"prometheus": {"url": "https://prom.example.org", "username": "ops",
                                                  "password": "s3cret"}})
    assert fine.prometheus is not None and fine.prometheus.url == "https://prom.example.org"


def test_notification_parameters_are_masked_by_place() -> None:
    settings = {
        "url": "https://hooks.slack.com/services/T0/B0/s3cret",
        "headers": {"X-Team": "h3ader", "Authorization": "Bearer b"},
        "routing_key": "k",
        "bearer_token": "t",
        "password": "p",
        "channel": "#ops",
        "timeout": 5,
    }
    assert mask_notification(settings) == {
        "url": MASK,
        "headers": {"X-Team": MASK, "Authorization": MASK},
        "routing_key": MASK,
        "bearer_token": MASK,
        "password": MASK,
        "channel": "#ops",
        "timeout": 5,
    }


def test_a_definition_masks_notification_actions_only() -> None:
    definition = {
        "name": "w",
        "actions": [
            {
                "name": "tell",
                "action_type": "notification.webhook",
                "parameters": {"url": "https://h/s3", "text": "x"},
            },
            {"name": "webhook", "action_type": "notification", "parameters": {"url": "https://h/s4"}},
            {"name": "probe", "action_type": "http.request", "parameters": {"url": "https://api/health",
                                                                           "headers": {"api_key": "k"}}},
        ],
        "inputs": {"token": {"type": "string", "secret": True}},
    }
    shown = mask_definition(definition)
    assert [a["parameters"]["url"] for a in shown["actions"]] == [MASK, MASK, "https://api/health"]
    assert shown["actions"][0]["parameters"]["text"] == "x"
    assert shown["actions"][2]["parameters"]["headers"] == {"api_key": MASK}  # by name, as before
    assert definition["actions"][0]["parameters"]["url"] == "https://h/s3"  # the stored one untouched
