"""Entry points by name, for services that do not import this project, and the steps' errback."""

from __future__ import annotations

from typing import Any

from automation.actions.task import GuardedTask
from automation.celery import app


@app.task(name="automation.run_workflow", base=GuardedTask, bind=True, acks_late=True)
def run_workflow(
    self: GuardedTask,
    workflow: str,
    inputs: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Enqueue a run of `workflow`; without a key the message id is the key, so redelivery adds no run."""
    from automation.runs.dispatch import enqueue_run

    run, created = enqueue_run(workflow, inputs, idempotency_key=idempotency_key or f"task:{self.request.id}")
    return {"run_id": str(run.id), "created": created, "status": run.status}


@app.task(name="automation.step_lost")
def step_lost(request: Any, exc: BaseException | None = None, traceback: Any = None) -> None:
    """Errback of every step; runs in the worker that saw the failure, even after a hard time limit."""
    from automation.runs.executor import settle_lost_step

    kwargs = getattr(request, "kwargs", None) or {}
    if "run_id" in kwargs and "step" in kwargs:
        settle_lost_step(kwargs["run_id"], kwargs["step"], exc)
