"""The rule language: what parses to what, and what each mistake is reported as (column and expectation)."""

from __future__ import annotations

import pytest

import automation.alerting.rules as rules
from automation.alerting.rules import parse_rule
from automation.alerting.rules.ast import (
    ANOMALY_HISTORY_SECONDS,
    ANOMALY_REFIT_SECONDS,
    And,
    Anomaly,
    Comparison,
    HeldFor,
    Instant,
    Not,
    Or,
    Windowed,
)
from automation.alerting.series import Matcher, Selector
from automation.errors import DefinitionError

CPU = Selector("cpu_usage")


def test_public_names_are_pinned() -> None:
    assert rules.__all__ == [
        "AnomalyScorer",
        "ForecastAnomalyScorer",
        "Outcome",
        "Rule",
        "anomaly_score_01",
        "evaluate",
        "parse_rule",
    ]


def test_the_product_example() -> None:
    rule = parse_rule("cpu_usage > 80 AND duration > 5m")
    assert rule.condition == And((Comparison(Instant(CPU, 1), ">", 80.0, 1), HeldFor(300.0, 20)))
    assert rule.text == "cpu_usage > 80 AND duration > 5m"
    assert rule.selectors == (CPU,)
    assert rule.duration == 300.0
    assert rule.lookback == 300.0 + 300.0  # the duration plus the staleness bound


def test_selector_with_every_matcher_kind_and_escapes() -> None:
    rule = parse_rule(r'cpu_usage{service="api", env!="dev", pod=~"web-.*", zone!~"x", q="a\"b\\c",} > 1')
    assert rule.selectors == (
        Selector(
            "cpu_usage",
            (
                Matcher("service", "=", "api"),
                Matcher("env", "!=", "dev"),
                Matcher("pod", "=~", "web-.*"),
                Matcher("zone", "!~", "x"),
                Matcher("q", "=", 'a"b\\c'),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("text", "op", "threshold"),
    [
        ("x > 1", ">", 1.0),
        ("x >= -2.5", ">=", -2.5),
        ("x<1e3", "<", 1000.0),
        ("x <= .5", "<=", 0.5),
        ("x == 0", "==", 0.0),
        ("x != +3", "!=", 3.0),
        ("80 < x", ">", 80.0),
        ("80 >= x", "<=", 80.0),
        ("-1 == x", "==", -1.0),
    ],
)
def test_comparisons_normalise_to_value_op_number(text: str, op: str, threshold: float) -> None:
    condition = parse_rule(text).condition
    assert isinstance(condition, Comparison)
    assert (condition.op, condition.threshold) == (op, threshold)
    assert condition.value == Instant(Selector("x"), condition.value.column)


def test_functions_windows_and_lookback() -> None:
    rule = parse_rule(
        "avg_over(a, 5m) > 1 OR max_over(b, 1h30m) > 2 OR min_over(c, 30s) > 3 "
        "OR sum_over(d, 2h) > 4 OR count_over(e, 1d) > 5 OR rate(f_total:sum, 10m) > 6"
    )
    assert isinstance(rule.condition, Or)
    values = [term.value for term in rule.condition.terms if isinstance(term, Comparison)]
    assert [(v.function, v.window) for v in values if isinstance(v, Windowed)] == [
        ("avg_over", 300.0),
        ("max_over", 5400.0),
        ("min_over", 30.0),
        ("sum_over", 7200.0),
        ("count_over", 86400.0),
        ("rate", 600.0),
    ]
    assert rule.lookback == 86400.0
    assert [s.metric for s in rule.selectors] == ["a", "b", "c", "d", "e", "f_total:sum"]


def test_anomaly_needs_its_history_in_the_lookback() -> None:
    rule = parse_rule('anomaly(latency{service="api"}) > 3 AND duration >= 10m')
    assert rule.condition == And(
        (
            Comparison(Anomaly(Selector("latency", (Matcher("service", "=", "api"),)), 1), ">", 3.0, 1),
            HeldFor(600.0, 41),
        )
    )
    assert rule.lookback == 600.0 + ANOMALY_HISTORY_SECONDS + ANOMALY_REFIT_SECONDS


def test_keywords_in_any_case_precedence_and_parentheses() -> None:
    rule = parse_rule("not a > 1 and b > 2 OR (c > 3 Or d > 4) AND e > 5")
    a, b, c, d, e = (Selector(name) for name in "abcde")
    condition = rule.condition
    assert isinstance(condition, Or) and len(condition.terms) == 2
    left, right = condition.terms
    assert isinstance(left, And) and isinstance(left.terms[0], Not)
    assert isinstance(right, And) and isinstance(right.terms[0], Or)
    assert rule.selectors == (a, b, c, d, e)


def test_names_that_begin_with_a_keyword_are_names() -> None:
    rule = parse_rule("notable > 1 AND order_total > 2 AND android:up > 0 AND durations > 1")
    assert [s.metric for s in rule.selectors] == ["notable", "order_total", "android:up", "durations"]


def test_a_metric_named_duration_is_written_with_braces() -> None:
    assert parse_rule("duration{} > 5").selectors == (Selector("duration"),)


def test_a_duration_clause_may_stand_in_an_and_inside_an_or() -> None:
    rule = parse_rule("(a > 1 AND duration > 5m) OR (b > 1 AND duration > 1h)")
    assert rule.duration == 3600.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("cpu_usage > abc", "column 13: expected a number after '>', got 'abc'"),
        ("cpu_usage >", "column 12: expected a number after '>', got the end of the rule"),
        (
            "cpu_usage > 5m",
            "column 13: expected a number after '>', got '5m' (a duration is compared only in "
            "`duration > 5m`)",
        ),
        (
            "x > 1 AND duration > 5",
            "column 22: expected a duration such as 5m or 1h30m after '>', got '5' (a duration needs a "
            "unit: s, m, h or d)",
        ),
        (
            "cpu_usage",
            "column 10: expected a comparison (>, >=, <, <=, ==, !=) after 'cpu_usage', got the end of "
            "the rule",
        ),
        ("x > 1 y", "column 7: expected AND, OR or the end of the rule after '1', got 'y'"),
        ("(x > 1 y", "column 8: expected AND, OR or ')' after '1', got 'y'"),
        ("(x > 1", "column 7: expected ')' after '1', got the end of the rule"),
        (
            "x > 1 AND",
            "column 10: expected a condition such as cpu_usage > 80 after 'AND', got the end of the rule",
        ),
        ("x > 1 AND @", "column 11: expected a condition such as cpu_usage > 80 after 'AND', got '@'"),
        ("5 > 3", "column 5: expected a metric or function name after '>', got '3'"),
        ("x{a=b} > 1", "column 5: expected a quoted string such as \"api\" after '=', got 'b'"),
        ('x{a="b" > 1', "column 9: expected ',' or '}' after '\"b\"', got '>'"),
        ('x{a~"b"} > 1', "column 4: expected a label matcher (=, !=, =~, !~) after 'a', got '~'"),
        ("", "column 1: empty rule: expected a condition such as cpu_usage > 80"),
        (
            "foo(x) > 1",
            "column 1: unknown function 'foo'; known: anomaly, avg_over, count_over, max_over, min_over, "
            "rate, sum_over",
        ),
        (
            "x > 1 OR avg_over(x) > 1",
            "column 10: avg_over takes a selector and a window, e.g. avg_over(cpu_usage, 5m)",
        ),
        ("rate(x, 5) > 1", "column 9: the window of rate must be a duration such as 5m, got '5'"),
        (
            "anomaly(x, 5m) > 1",
            'column 1: anomaly takes one selector, e.g. anomaly(cpu_usage{service="api"})',
        ),
        ('x{a=~"("} > 1', 'column 6: invalid regular expression "(" (RE2): missing ): ('),
        (r'x{a="\d"} > 1', r"column 6: unknown escape '\d' in a string: only \" and \\ are allowed"),
        ("x > 1 AND duration > 0s", "column 22: a duration must be positive, got '0s'"),
        (
            "x > 1 AND duration < 5m",
            "column 20: duration is compared only with > or >= (held for at least), got '<'",
        ),
        (
            "duration > 5m",
            "column 1: duration must be joined with AND to the condition it applies to, e.g. cpu_usage > 80 "
            "AND duration > 5m",
        ),
        (
            "x > 1 OR duration > 5m",
            "column 10: duration must be joined with AND to the condition it applies to, e.g. cpu_usage > 80 "
            "AND duration > 5m",
        ),
        ("NOT (x > 1 AND duration > 5m)", "column 1: NOT cannot apply to a condition with a duration clause"),
        ("x > 1 AND duration > 5m AND duration > 1m", "column 29: only one duration clause per AND"),
        (
            "(x > 1 AND duration > 5m) AND duration > 1h",
            "column 12: a duration clause cannot be inside the condition another duration clause applies to",
        ),
    ],
)
def test_errors_name_the_column_and_what_was_expected(text: str, reason: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_rule(text)
    assert caught.value.errors == [("condition", reason)]


def test_a_rule_over_several_lines_counts_columns_from_the_start() -> None:
    assert parse_rule("cpu > 80\nAND duration > 5m").duration == 300.0
    with pytest.raises(DefinitionError) as caught:
        parse_rule("cpu > 80\nAND mem > x")
    assert caught.value.errors == [("condition", "column 20: expected a number after '>', got 'x'")]


def test_the_caller_names_the_field() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_rule("x >", field="rules[2].expr")
    assert caught.value.errors[0][0] == "rules[2].expr"


def test_python_is_never_evaluated() -> None:
    for text in ("__import__('os').system('true') > 0", "x > 1 or 1 > (lambda: 0)()", "x.y > 1"):
        with pytest.raises(DefinitionError):
            parse_rule(text)
