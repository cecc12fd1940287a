"""A workflow schedule as the API and the CLI show it."""

from __future__ import annotations

from typing import Any


def schedule_json(row: Any) -> dict[str, Any]:
    from automation.timetables.services import definition_of

    definition = definition_of(row)
    document = definition.as_document()
    document["inputs"] = _masked(definition.workflow, definition.inputs)
    return {
        **document,
        "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
        "total_run_count": row.total_run_count,
    }


def _masked(workflow: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs with those the workflow declares `secret` masked (as a run's are in every answer)."""
    from automation.errors import NotFoundError
    from automation.runs.dispatch import latest_version_ids
    from automation.runs.documents import stored_workflow
    from automation.secrets import mask

    try:
        declared = stored_workflow(latest_version_ids(workflow).version_id).document.get("inputs", {})
    except NotFoundError:
        declared = {}
    secret = frozenset(name for name, spec in declared.items() if spec.get("secret"))
    masked: dict[str, Any] = mask(inputs, secret_names=secret)
    return masked
