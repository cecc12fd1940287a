"""A workflow schedule as the API and the CLI show it."""

from __future__ import annotations

from typing import Any


def schedule_json(row: Any) -> dict[str, Any]:
    from automation.timetables.services import definition_of

    definition = definition_of(row)
    return {
        **definition.as_document(),
        "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
        "total_run_count": row.total_run_count,
    }
