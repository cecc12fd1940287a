"""The incident lifecycle's decisions (pure): what each operator step does from each status, severity."""

from __future__ import annotations

import pytest

from automation.incidents.choices import EventKind, IncidentStatus
from automation.incidents.lifecycle import ACKNOWLEDGE, MITIGATE, RESOLVE, Step, highest_severity, more_severe

T, A, M, R = IncidentStatus.ALL


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (ACKNOWLEDGE, {T: "take", A: "done", M: "done", R: "refused"}),
        (MITIGATE, {T: "take", A: "take", M: "done", R: "refused"}),
        (RESOLVE, {T: "take", A: "take", M: "take", R: "done"}),
    ],
)
def test_each_step_from_each_status(step: Step, expected: dict[str, str]) -> None:
    assert {status: step.outcome(status) for status in IncidentStatus.ALL} == expected
    assert step.to in IncidentStatus.ALL and step.event in EventKind.TRANSITIONS
    # a step taken lands where asking again is a no-op: idempotent
    assert step.outcome(step.to) == "done"


def test_nothing_leaves_resolved_and_the_groups_cover_every_status() -> None:
    assert set(IncidentStatus.ACTIVE) | set(IncidentStatus.TERMINAL) == set(IncidentStatus.ALL)
    assert not set(IncidentStatus.ACTIVE) & set(IncidentStatus.TERMINAL)
    assert all(step.outcome(R) != "take" for step in (ACKNOWLEDGE, MITIGATE, RESOLVE))
    assert ACKNOWLEDGE.refusal(7, R) == "incident 7 is resolved: it cannot be acknowledged"


@pytest.mark.parametrize(
    ("severities", "highest"),
    [
        (["low", "critical", "medium"], "critical"),
        (["info", "low"], "low"),
        (["high", "bogus"], "high"),
        (["bogus"], "medium"),
        ([], "medium"),
    ],
)
def test_the_severity_is_the_highest_known(severities: list[str], highest: str) -> None:
    assert highest_severity(severities) == highest


def test_more_severe_ranks_known_severities() -> None:
    assert more_severe("critical", "high") and more_severe("info", "bogus")
    assert not more_severe("high", "high") and not more_severe("low", "medium")
    assert not more_severe("bogus", "info")
