"""Enqueueing runs: resolve the workflow's latest version, create the run once, send its canvas."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from automation.access.principal import bound_actor
from automation.access.services import audit
from automation.actions.task import BROKER_ERRORS
from automation.broker.publishing import BatchPublishError, batched, raise_unless_unreachable
from automation.celery import app
from automation.choices import PRIORITY_QUEUES, Priority, RunStatus
from automation.compiler import compile_workflow
from automation.conditions import parse_condition
from automation.definitions.compensation import is_compensation
from automation.definitions.validation import resolve_inputs
from automation.errors import IdempotencyConflict, InputError, NotFoundError, StateError
from automation.models import WorkflowRun, WorkflowVersion
from automation.runs import services
from automation.runs.documents import stored_workflow
from automation.runs.intake import check_run_request

logger = logging.getLogger("automation.dispatch")


def latest_version(workflow: str) -> WorkflowVersion:
    version = (
        WorkflowVersion.objects.select_related("workflow")
        .filter(workflow__name=workflow)
        .order_by("-version")
        .first()
    )
    if version is None:
        raise NotFoundError(f"workflow '{workflow}' is not registered")
    return version


@dataclass(frozen=True)
class LatestVersion:
    workflow_id: int
    version_id: int
    number: int


#: The latest version of each workflow this process enqueued, by name. A run is stored only if its version
#: is still the latest (automation/runs/services.py), so a stale entry costs one more lookup, never a run
#: of an old version.
_latest: dict[str, LatestVersion] = {}
_LATEST_ENTRIES = 1024


def latest_version_ids(workflow: str, *, fresh: bool = False) -> LatestVersion:
    """The workflow's latest version (ids and number): the definition itself comes from the per-process
    cache of documents."""
    known = None if fresh else _latest.get(workflow)
    if known is not None:
        return known
    found = (
        WorkflowVersion.objects.filter(workflow__name=workflow)
        .order_by("-version")
        .values_list("workflow_id", "id", "version")
        .first()
    )
    if found is None:
        _latest.pop(workflow, None)
        raise NotFoundError(f"workflow '{workflow}' is not registered")
    if len(_latest) >= _LATEST_ENTRIES:
        _latest.clear()
    _latest[workflow] = LatestVersion(*found)
    return _latest[workflow]


def unmet_condition(document: dict[str, Any], inputs: dict[str, Any]) -> str:
    for text in document.get("conditions", []):
        if not parse_condition(text).holds(inputs):
            return f"condition not met: {text}"
    return ""


def enqueue_run(
    workflow: str,
    inputs: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    undoing: bool = False,
    pinned: WorkflowVersion | None = None,
    durable: bool = True,
) -> tuple[WorkflowRun, bool]:
    """Create and dispatch a run; the same idempotency key returns the same run, dispatched once.

    The same key with other inputs raises IdempotencyConflict, which carries the existing run's id. A
    derived compensation workflow (`<name>.compensation`) starts only when the engine undoes a run
    (`undoing`, automation/runs/compensation.py): asked by anyone else, InputError. The engine runs it at
    the version `pinned`, the one derived from the version of the run undone (a later registration of the
    workflow makes another compensation the latest); every other run is of the latest version.
    `durable=False`: see `services.create_run` (the alert intake's answer waits for a later commit).
    """
    if pinned is not None and (not undoing or pinned.workflow.name != workflow):
        raise InputError([("version", f"only the engine's compensation of '{workflow}' runs a set version")])
    if not undoing and isinstance(workflow, str) and is_compensation(workflow):
        raise InputError(
            [
                (
                    "workflow",
                    f"'{workflow}' is a compensation workflow: the engine starts it when it undoes a run, "
                    "it cannot be started directly",
                )
            ]
        )
    inputs = check_run_request(workflow, inputs, idempotency_key)
    run_id = uuid.uuid4()
    actor = bound_actor()
    for fresh in (False, True, True):
        latest = (
            LatestVersion(pinned.workflow_id, pinned.id, pinned.version)
            if pinned is not None
            else latest_version_ids(workflow, fresh=fresh)
        )
        planned = _planned(workflow, latest, inputs, key=idempotency_key, run_id=run_id, actor=actor)
        try:
            run, created = services.store_run(
                services.run_insert(**planned, pinned=pinned is not None), durable=durable
            )
            break
        except services.StaleVersion:
            continue
    else:
        raise StateError(f"workflow '{workflow}' kept changing while the run was stored; try again")
    resolved = planned["inputs"]
    version_id = latest.version_id
    if not created and _asked_with_other_inputs(run, version_id, resolved, inputs):
        raise IdempotencyConflict(str(run.id), str(idempotency_key))
    if created and run.status == RunStatus.PENDING:
        # Only the process that stored the run sends it (once the caller's transaction, if any, commits);
        # if it dies in between, the stalled-run sweep does.
        transaction.on_commit(lambda: dispatch(run))
    return run, created


def _planned(
    workflow: str,
    latest: LatestVersion,
    inputs: dict[str, Any],
    *,
    key: str | None,
    run_id: uuid.UUID,
    actor: Any,
) -> dict[str, Any]:
    """The arguments of `services.run_insert` for a run of `latest` with `inputs` (checked)."""
    document = stored_workflow(latest.version_id).document
    resolved = resolve_inputs(document, inputs)
    skip_reason = unmet_condition(document, resolved)
    # Recorded only when an adapter bound an actor (a run started by a schedule or the scaling loop is
    # logged by that domain), in the run's own transaction.
    started = None if actor is None else audit.entry(
        "run.started",
        "run",
        run_id,
        after={
            "workflow": workflow,
            "version": latest.number,
            "inputs": resolved,
            "status": RunStatus.SKIPPED if skip_reason else RunStatus.PENDING,
        },
        note={"workflow": workflow},
        actor=actor,
    )
    return {
        "workflow_id": latest.workflow_id,
        "version_id": latest.version_id,
        "version_number": latest.number,
        "actions": document["actions"],
        "inputs": resolved,
        "idempotency_key": key,
        "queue": PRIORITY_QUEUES[Priority(document["priority"])],
        "skip_reason": skip_reason,
        "run_id": run_id,
        "audit_entry": started,
    }


def guarded_run(
    workflow: str, inputs: dict[str, Any], *, idempotency_key: str, only_if: str
) -> services.RunInsert | None:
    """The statements of the run `enqueue_run(workflow, inputs, idempotency_key=...)` would create now
    (the latest version as this process knows it), for a caller that runs them in a transaction of its
    own: they store the run only while that version is still the latest and `only_if` holds, and store
    nothing when a run holds the key already. None for a run that would be skipped. The caller sends a
    run they stored with `dispatch`, once committed."""
    inputs = check_run_request(workflow, inputs, idempotency_key)
    if is_compensation(workflow):
        return None
    latest = latest_version_ids(workflow)
    actor = bound_actor()
    planned = _planned(workflow, latest, inputs, key=idempotency_key, run_id=uuid.uuid4(), actor=actor)
    if planned["skip_reason"]:
        return None
    return services.run_insert(**planned, only_if=only_if)


def _asked_with_other_inputs(
    run: WorkflowRun, version_id: int, resolved: dict[str, Any], given: dict[str, Any]
) -> bool:
    """Whether a key's existing run was asked for with other inputs: compared as stored (JSON, with the
    defaults of the run's own version, which a newer version may have changed)."""
    if run.version_id != version_id:
        try:
            resolved = resolve_inputs(stored_workflow(run.version_id).document, given)
        except InputError:
            return True
    return bool(run.inputs != json.loads(json.dumps(resolved)))


def send_canvas(run: WorkflowRun, *, generation: int) -> None:
    """Send every first message of the run's canvas (a 1,000-way fan-out's thousand) in a few pipelines
    (automation/broker/publishing.py). When a pipeline fails, what it carried may or may not be stored:
    the canvas is sent again the ordinary way, under Celery's publish retry policy (a step delivered twice
    acts once)."""
    document = stored_workflow(run.version_id).document

    def canvas() -> Any:
        return compile_workflow(document, run_id=str(run.id), queue=run.queue, generation=generation)

    try:
        with batched(app):
            canvas().apply_async()
    except BatchPublishError as exc:
        raise_unless_unreachable(exc)
        logger.warning("run %s: pipeline failed (%r), sending it again", run.id, exc.__cause__)
        canvas().apply_async()


def dispatch(run: WorkflowRun) -> bool:
    """Send the run's canvas; False when the broker refused it (the run is then marked, and the recovery
    job sends it on its next pass: the caller's answer stays "accepted"). Sending twice is harmless:
    every step is guarded by (run, step)."""
    try:
        send_canvas(run, generation=run.generation)
    except BROKER_ERRORS as exc:
        logger.warning("run %s stored but not sent (%s): the recovery job will send it", run.id, exc)
        return False
    return True


def redispatch(run: WorkflowRun, *, reason: str) -> bool:
    """Send the run again as a new generation: steps that finished hand their outputs on, steps a live
    worker is executing are waited for, and only the missing work is done. Messages of the older
    generation retire at the step guard once the new one is sent."""
    sent = run.generation + 1
    try:
        send_canvas(run, generation=sent)
    except BROKER_ERRORS as exc:
        logger.warning("run %s could not be sent again (%s); next pass retries", run.id, exc)
        return False
    services.advance_generation(run.id, sent=sent)
    logger.warning("run %s sent again as generation %d: %s", run.id, sent, reason)
    return True
