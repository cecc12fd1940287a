"""The incident list's filters (pure): each bad value names its field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from automation.errors import InvalidFieldsError
from automation.incidents.choices import IncidentStatus
from automation.incidents.filters import parse_filter, parse_since

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - 1800),
        ("1h30m", NOW - 5400),
        ("7d", NOW - 7 * 86_400),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("9" * 400 + "w", 0.0),  # before the epoch: everything
    ],
)
def test_since_is_a_duration_ago_or_a_time(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(expected)


def test_open_means_every_active_status() -> None:
    assert parse_filter(status="open", now=NOW).statuses == IncidentStatus.ACTIVE
    assert parse_filter(status="mitigated", now=NOW).statuses == ("mitigated",)
    chosen = parse_filter(service="api", since="1h", limit="5", now=NOW)
    assert (chosen.statuses, chosen.service, chosen.since, chosen.limit) == (None, "api", NOW - 3600, 5)


def test_bad_values_name_their_fields_together() -> None:
    with pytest.raises(InvalidFieldsError) as caught:
        parse_filter(status="closed", service="", since="yesterday", limit="0", now=NOW)
    assert [field for field, _ in caught.value.errors] == ["status", "service", "since", "limit"]
    reasons = dict(caught.value.errors)
    assert "open" in reasons["status"] and "ISO 8601" in reasons["since"]
    with pytest.raises(InvalidFieldsError, match="limit"):
        parse_filter(limit="ten", now=NOW)
