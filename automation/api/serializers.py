"""JSON views of runs and steps for API answers and the CLI, with secret inputs masked."""

from __future__ import annotations

from typing import Any

from automation.models import StepRun, WorkflowRun
from automation.secrets import mask


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def masked_inputs(run: WorkflowRun) -> dict[str, Any]:
    declared = run.version.definition.get("inputs", {})
    secret = frozenset(name for name, spec in declared.items() if spec.get("secret"))
    masked: dict[str, Any] = mask(run.inputs, secret_names=secret)
    return masked


def step_json(step: StepRun) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": step.name,
        "action_type": step.action_type,
        "status": step.status,
        "attempts": step.attempts,
        "started_at": _iso(step.started_at),
        "finished_at": _iso(step.finished_at),
        "output": mask(step.output),
        "error": step.error,
    }
    if step.action_type == "control.approval":
        data["approval"] = {k: v for k, v in step.state.items() if k != "requested_at"}
    return data


def run_json(run: WorkflowRun, *, with_steps: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "run_id": str(run.id),
        "workflow": run.workflow.name,
        "version": run.version.version,
        "status": run.status,
        "queue": run.queue,
        "idempotency_key": run.idempotency_key,
        "inputs": masked_inputs(run),
        "error": run.error,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }
    if with_steps:
        data["steps"] = [step_json(s) for s in run.steps.order_by("position")]
    return data
