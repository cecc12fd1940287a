"""Stored workflow documents by version id, cached per process (versions never change once written)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from automation.models import WorkflowVersion
from automation.templating import iter_references


@dataclass(frozen=True)
class StoredWorkflow:
    document: dict[str, Any]
    actions: dict[str, dict[str, Any]]
    #: Steps whose output a later step references: only these outputs travel along the canvas.
    referenced_outputs: frozenset[str]
    #: Steps no other step depends on: only their completion counts off the run.
    sinks: frozenset[str]


@lru_cache(maxsize=512)
def stored_workflow(version_id: int) -> StoredWorkflow:
    document = WorkflowVersion.objects.values_list("definition", flat=True).get(id=version_id)
    referenced = {
        ref.step
        for act in document["actions"]
        for _, ref in iter_references(act["parameters"])
        if ref.step is not None
    }
    return StoredWorkflow(
        document=document,
        actions={a["name"]: a for a in document["actions"]},
        referenced_outputs=frozenset(referenced),
        sinks=frozenset(a["name"] for a in document["actions"])
        - {d for a in document["actions"] for d in a["depends_on"]},
    )
