"""Run conditions: a tiny grammar over inputs."""

from __future__ import annotations

import pytest

from automation.conditions import ConditionError, parse_condition


@pytest.mark.parametrize(
    ("text", "inputs", "expected"),
    [
        ("service_health_check_failed", {"service_health_check_failed": True}, True),
        ("service_health_check_failed", {}, False),
        ("not maintenance", {"maintenance": False}, True),
        ("cpu_usage > 80", {"cpu_usage": 95.5}, True),
        ("cpu_usage > 80", {"cpu_usage": 80}, False),
        ("env == 'prod'", {"env": "prod"}, True),
        ('env != "prod"', {"env": "prod"}, False),
        ('service.tier == "gold"', {"service": {"tier": "gold"}}, True),
        ("cpu_usage >= 10", {"cpu_usage": "high"}, False),
    ],
)
def test_conditions(text: str, inputs: dict, expected: bool) -> None:
    assert parse_condition(text).holds(inputs) is expected


@pytest.mark.parametrize(
    "text", ["cpu_usage > ", "a and b", "x == [1]", "import os", "x > 1 AND duration > 5m"]
)
def test_bad_conditions_are_refused(text: str) -> None:
    with pytest.raises(ConditionError):
        parse_condition(text)
