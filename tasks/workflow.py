"""Entry points by name, for services that do not import this project."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError

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
