"""Entry points by name, for services that do not import this project."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from pydantic import BaseModel, ConfigDict, Field

from automation.actions import ActionContext, action
from automation.actions.task import GuardedTask
from automation.celery import app
from automation.delivery import RUN_WORKFLOW_TASK
from automation.errors import InvalidFieldsError, NotFoundError, StateError


@app.task(
    name=RUN_WORKFLOW_TASK,
    base=GuardedTask,
    bind=True,
    acks_late=True,
    # A database failover must not lose a run another service asked for.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=30,
    # The caller's mistake (bad inputs, unknown workflow, a key reused with other inputs): the task fails
    # once, with the typed error as its result, logged without a traceback and never retried.
    throws=(InvalidFieldsError, NotFoundError, StateError),
)
def run_workflow(
    self: GuardedTask,
    workflow: Any,
    inputs: Any = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Enqueue a run of `workflow`; without a key the message id is the key, so redelivery adds no run.

    Arguments come from other services as JSON: their types are checked by `enqueue_run`, which raises an
    InputError naming the field (`inputs`, `idempotency_key`, `workflow`).
    """
    from automation.runs.dispatch import enqueue_run

    run, created = enqueue_run(workflow, inputs, idempotency_key=idempotency_key or f"task:{self.request.id}")
    return {"run_id": str(run.id), "created": created, "status": run.status}


class StartParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflow: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict)


@action("workflow.start", params=StartParams, external=False, outputs=("run_id", "created"))
def start(ctx: ActionContext, params: StartParams) -> dict[str, Any]:
    """Start a run of another workflow, once per run and step (the step's idempotency key is the run's)."""
    from automation.runs.dispatch import enqueue_run

    run, created = enqueue_run(params.workflow, params.inputs, idempotency_key=ctx.idempotency_key)
    return {"run_id": str(run.id), "created": created}
