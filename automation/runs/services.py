"""Every transition of a run or a step happens here, defined once; everything else calls these functions.

Each transition is conditional on the state it starts from (`WHERE status IN ...`), so a redelivered
message, a duplicate worker or a late timer can never move a finished step or run backwards or count it
twice. The hot ones (creating a run, claiming and completing a step) are SQL that PostgreSQL and the
embedded SQLite store both run (automation/sql.py), in one round trip on PostgreSQL; the others
use the ORM. Either way the same definition runs on both stores.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from automation.access.services import audit
from automation.choices import RunStatus
from automation.delivery import step_task_id
from automation.errors import ForbiddenError, InputError, NotFoundError, StateError
from automation.models import AuditEntry, StepRun, WorkflowRun
from automation.runs.claims import Claim
from automation.sql import db_value, from_json, in_list, retry_deadlocks, run_statements

ACTIVE = RunStatus.ACTIVE
TERMINAL = RunStatus.TERMINAL
#: A worker node whose heartbeat is older than this is dead (it heartbeats every few seconds).
NODE_DEAD_AFTER = timedelta(seconds=20)
#: A claim younger than this may not be listed in its node's heartbeat yet.
CLAIM_SETTLES_AFTER = timedelta(seconds=15)

_ACTIVE_SQL = in_list(ACTIVE)
_COMPLETABLE_SQL = in_list((*ACTIVE, RunStatus.CANCELLED))


@dataclass(frozen=True)
class ClaimedStep:
    id: int
    attempt: int
    state: dict[str, Any]
    inputs: dict[str, Any]
    version_id: int


def _now() -> datetime:
    return timezone.now()


def _at(value: datetime) -> Any:
    return db_value(StepRun._meta.get_field("touched_at"), value)


def _run_id(value: Any) -> Any:
    run_id = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return db_value(WorkflowRun._meta.get_field("id"), run_id)


def _json(value: Any) -> Any:
    return db_value(StepRun._meta.get_field("output"), value)


# --- creating a run --------------------------------------------------------------------------------

# A run is stored only while its version is still its workflow's latest: the caller may have picked the
# version from a per-process cache, and a newer version registered since must not be missed.
_STILL_LATEST = "(SELECT latest_version FROM automation_workflow WHERE id = %(workflow)s) = %(number)s"

_INSERT_ANY_RUN = """
INSERT INTO automation_workflowrun
       (id, workflow_id, version_id, status, inputs, idempotency_key, queue, remaining_sinks, error,
        created_at, finished_at, dispatched_at, generation)
SELECT %(run)s, %(workflow)s, %(version)s, %(status)s, %(inputs)s, %(key)s, %(queue)s, %(sinks)s,
       %(error)s, %(now)s, %(finished)s, %(dispatched)s, 0
"""
_INSERT_RUN = f"{_INSERT_ANY_RUN} WHERE {_STILL_LATEST}\n"
# A compensation runs the version derived from the version of the run it undoes, latest or not.
_INSERT_PINNED_RUN = _INSERT_ANY_RUN

# The run's `run.started` audit entry, in the same transaction (and round trip) as the run: stored with it
# or not at all.
_AUDIT_FIELDS = (
    "at", "actor", "source", "via", "action", "object_type", "object_id", "before_digest", "after_digest",
    "summary",
)
_INSERT_AUDIT = (
    f"INSERT INTO automation_auditentry ({', '.join(_AUDIT_FIELDS)})\n"
    f"SELECT {', '.join(f'%(audit_{name})s' for name in _AUDIT_FIELDS)}\n"
    " WHERE EXISTS (SELECT 1 FROM automation_workflowrun WHERE id = %(run)s)"
)


def _insert_steps(count: int) -> str:
    rows = ",\n".join(f"(%(n{i})s, %(t{i})s, {i}, %(k{i})s)" for i in range(count))
    return (
        "INSERT INTO automation_steprun (run_id, name, action_type, position, task_id, status, attempts,"
        " deferred, state, error, finished_at, claimed_node, claim_token)\n"
        "SELECT %(run)s, column1, column2, column3, column4, %(status)s, 0, false, '{}', %(error)s,"
        f" %(finished)s, '', ''\n  FROM (VALUES {rows}) AS v\n"
        " WHERE EXISTS (SELECT 1 FROM automation_workflowrun WHERE id = %(run)s)\n"
        # A row per step stored: none when the run was not (its version is no longer the latest).
        "RETURNING 1"
    )


class StaleVersion(Exception):  # noqa: N818 - a signal to the caller, who looks the version up again
    """The version given is no longer its workflow's latest: nothing was stored."""


def sink_count(actions: list[dict[str, Any]]) -> int:
    """How many steps have no dependents: a run succeeds when all of them have."""
    return len({a["name"] for a in actions} - {d for a in actions for d in a["depends_on"]})


@dataclass(frozen=True)
class RunInsert:
    """The statements storing a run (its steps and audit entry with it), their parameters, and the run as
    they store it. The steps' statement comes last: its RETURNING says whether the run was stored."""

    run: WorkflowRun
    statements: list[str]
    params: dict[str, Any]


def run_insert(
    *,
    workflow_id: int,
    version_id: int,
    version_number: int,
    actions: list[dict[str, Any]],
    inputs: dict[str, Any],
    idempotency_key: str | None,
    queue: str,
    skip_reason: str = "",
    run_id: uuid.UUID | None = None,
    audit_entry: AuditEntry | None = None,
    pinned: bool = False,
    only_if: str = "",
) -> RunInsert:
    """What `create_run` runs. `only_if`, SQL over the same parameters (and any the caller adds): the run
    is stored only where it holds too, and a run already holding its idempotency key then makes the
    statement store nothing instead of failing (the caller finds out from what it stored)."""
    if only_if and pinned:
        raise ValueError("a pinned run is stored unconditionally")
    run_id = run_id or uuid.uuid4()
    now = _now()
    status = RunStatus.SKIPPED if skip_reason else RunStatus.PENDING
    key = idempotency_key or None
    run = WorkflowRun(
        id=run_id,
        workflow_id=workflow_id,
        version_id=version_id,
        status=status,
        inputs=inputs,
        idempotency_key=key,
        queue=queue,
        remaining_sinks=sink_count(actions),
        error=skip_reason,
        created_at=now,
        finished_at=now if skip_reason else None,
        dispatched_at=None if skip_reason else now,
    )
    params: dict[str, Any] = {
        "run": _run_id(run_id),
        "workflow": workflow_id,
        "version": version_id,
        "number": version_number,
        "status": status,
        "inputs": _json(inputs),
        "key": key,
        "queue": queue,
        "sinks": run.remaining_sinks,
        "error": skip_reason,
        "now": _at(now),
        "finished": _at(now) if skip_reason else None,
        "dispatched": None if skip_reason else _at(now),
    }
    for i, act in enumerate(actions):
        params[f"n{i}"] = act["name"]
        params[f"t{i}"] = act["action_type"]
        params[f"k{i}"] = step_task_id(str(run_id), act["name"])
    insert_run = _INSERT_PINNED_RUN if pinned else _INSERT_RUN
    if only_if:
        insert_run = f"{insert_run} AND {only_if}\nON CONFLICT DO NOTHING"
    # The steps last: their RETURNING says whether the run was stored.
    statements = [insert_run, _insert_steps(len(actions))]
    if audit_entry is not None:
        if audit_entry.object_id != str(run_id):
            raise ValueError("the audit entry of a run start must name that run (pass its run_id)")
        for name in _AUDIT_FIELDS:
            field = AuditEntry._meta.get_field(name)
            assert isinstance(field, Field)
            params[f"audit_{name}"] = db_value(field, getattr(audit_entry, name))
        statements.insert(1, _INSERT_AUDIT)
    return RunInsert(run, statements, params)


def create_run(
    *,
    workflow_id: int,
    version_id: int,
    version_number: int,
    actions: list[dict[str, Any]],
    inputs: dict[str, Any],
    idempotency_key: str | None,
    queue: str,
    skip_reason: str = "",
    run_id: uuid.UUID | None = None,
    audit_entry: AuditEntry | None = None,
    pinned: bool = False,
    durable: bool = True,
) -> tuple[WorkflowRun, bool]:
    """Create a run and its steps (waiting for the disk: an accepted run is stored), or return the run
    already created with this idempotency key. StaleVersion when `version_number` is no longer the
    workflow's latest (nothing stored), unless the caller `pinned` that version on purpose. `audit_entry`,
    an entry about this run (`run_id`), is stored with the run in the same transaction, and only if the run
    is created. `durable=False` does not wait for the disk (automation/sql.py): only for a caller
    whose own answer waits for a later durable commit, which writes this one to the disk with it."""
    planned = run_insert(
        workflow_id=workflow_id,
        version_id=version_id,
        version_number=version_number,
        actions=actions,
        inputs=inputs,
        idempotency_key=idempotency_key,
        queue=queue,
        skip_reason=skip_reason,
        run_id=run_id,
        audit_entry=audit_entry,
        pinned=pinned,
    )
    return store_run(planned, durable=durable)


def store_run(planned: RunInsert, *, durable: bool = True) -> tuple[WorkflowRun, bool]:
    """Run `planned` (of `run_insert`, without `only_if`): as `create_run`."""
    run = planned.run
    try:
        # Inside a caller's transaction, a savepoint keeps that transaction usable when the key conflicts.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            stored = run_statements(planned.statements, planned.params, durable=durable)
    except IntegrityError:
        key = run.idempotency_key
        existing = WorkflowRun.objects.filter(workflow_id=run.workflow_id, idempotency_key=key).first()
        if key is None or existing is None:
            raise
        return existing, False
    if not stored or not stored[0][0]:
        number = planned.params["number"]
        raise StaleVersion(f"version {number} of workflow {run.workflow_id} is no longer the latest")
    run._state.adding = False
    return run, True


# --- claiming a step -------------------------------------------------------------------------------

_START_RUN = f"""
UPDATE automation_workflowrun SET status = '{RunStatus.RUNNING}', started_at = %(now)s
 WHERE id = %(run)s AND status = '{RunStatus.PENDING}' AND generation <= %(gen)s
"""

# A running step that is not parked, nor released between attempts, nor claimed earlier by this very
# executor (which runs one step at a time) or by this message's previous execution (its token: that
# execution ended on a database error), is being executed: another message for it may take it over only
# once no live node lists it among the task ids it executes, and its claim is older than a heartbeat
# round (a node lists what it executes within one). A node judges only once its own heartbeats have
# been fresh for a whole dead-after window: after a database outage every heartbeat is stale at once,
# and a node that is alive may not have beaten again yet. Resuming a parked step, or the previous
# execution's claim, continues the same attempt.
_CLAIM_STEP = f"""
UPDATE automation_steprun
   SET status = '{RunStatus.RUNNING}',
       attempts = attempts + CASE WHEN deferred OR (claim_token = %(prev)s AND claim_token <> '') THEN 0
                                  ELSE 1 END,
       deferred = false,
       due_at = NULL,
       started_at = COALESCE(started_at, %(now)s),
       touched_at = %(now)s,
       claimed_node = %(node)s,
       claimed_pid = %(pid)s,
       claim_token = %(token)s
 WHERE run_id = %(run)s AND name = %(step)s
   AND EXISTS (SELECT 1 FROM automation_workflowrun AS r
                WHERE r.id = %(run)s AND r.status IN {_ACTIVE_SQL} AND r.generation <= %(gen)s)
   AND (status = '{RunStatus.PENDING}'
        OR (status = '{RunStatus.RUNNING}'
            AND (deferred
                 OR claim_token = ''
                 OR claim_token = %(prev)s
                 OR (claimed_node = %(node)s AND claimed_pid = %(pid)s)
                 OR (touched_at < %(settled)s
                     AND NOT EXISTS (
                         SELECT 1 FROM automation_workernode AS n
                          WHERE n.seen_at >= %(stale)s AND n.stopped_at IS NULL
                            AND n.executing LIKE
                                '%%,' || REPLACE(automation_steprun.task_id, '_', '!_') || ',%%' ESCAPE '!')
                     AND EXISTS (
                         SELECT 1 FROM automation_workernode AS me
                          WHERE me.id = %(node)s AND me.seen_at >= %(stale)s
                            AND me.fresh_since <= %(stale)s)))))
RETURNING id, attempts, state,
          (SELECT inputs FROM automation_workflowrun AS r WHERE r.id = automation_steprun.run_id),
          (SELECT version_id FROM automation_workflowrun AS r WHERE r.id = automation_steprun.run_id)
"""


def claim_step(run_id: Any, step: str, *, claim: Claim, durable: bool = True) -> ClaimedStep | None:
    """Mark a step running for `claim` (a new attempt, unless it resumes a deferral or the previous
    execution's claim) if it and its run are active, the message is not of an older generation, and no
    live worker is executing the step.

    None otherwise: the caller finds out why with `step_outcome`. `durable=True` waits for the disk, so a
    step acting outside is known to have started before it acts.
    """
    now = _now()
    rows = run_statements(
        [_START_RUN, _CLAIM_STEP],
        {
            "run": _run_id(run_id),
            "step": step,
            "now": _at(now),
            "stale": _at(now - NODE_DEAD_AFTER),
            "settled": _at(now - CLAIM_SETTLES_AFTER),
            "gen": claim.generation,
            "node": claim.claimant.node,
            "pid": claim.claimant.pid,
            "token": claim.token,
            "prev": claim.previous or "-",
        },
        durable=durable,
    )
    if not rows:
        return None
    step_id, attempts, state, inputs, version_id = rows[0]
    return ClaimedStep(
        id=step_id,
        attempt=attempts,
        state=from_json(state) or {},
        inputs=from_json(inputs) or {},
        version_id=version_id,
    )


def step_outcome(run_id: Any, step: str) -> StepRun | None:
    """The step and its run's status, read when a claim was refused."""
    return (
        StepRun.objects.select_related("run")
        .only("id", "status", "deferred", "output")
        .only("run__id", "run__status", "run__version_id", "run__generation")
        .filter(run_id=run_id, name=step)
        .first()
    )


# --- completing a step -----------------------------------------------------------------------------

_COMPLETE_STEP = f"""
UPDATE automation_steprun
   SET status = '{RunStatus.SUCCEEDED}', output = %(output)s, error = '', deferred = false,
       finished_at = %(now)s, touched_at = %(now)s
 WHERE id = %(step)s AND status IN {_COMPLETABLE_SQL}
"""

# Only a completion that moved the step counts its run off (its finish time is this call's own); the
# last one finishes the run at once when no step is seen running (see below for when one is).
# Correlated with the run's row, so that it is looked at only when the conditions before it hold (not
# once per statement, before the run is even found).
_NOTHING_RUNNING = f"""NOT EXISTS (SELECT 1 FROM automation_steprun AS o
                                   WHERE o.run_id = automation_workflowrun.id
                                     AND o.status = '{RunStatus.RUNNING}')"""
_ENDS = f"remaining_sinks <= 1 AND status = '{RunStatus.RUNNING}' AND {_NOTHING_RUNNING}"
_COUNT_OFF_RUN = f"""
UPDATE automation_workflowrun
   SET remaining_sinks = remaining_sinks - 1,
       status = CASE WHEN {_ENDS} THEN '{RunStatus.SUCCEEDED}' ELSE status END,
       finished_at = CASE WHEN {_ENDS} THEN %(ended)s ELSE finished_at END
 WHERE id = %(run)s
   AND EXISTS (SELECT 1 FROM automation_steprun AS s
                WHERE s.id = %(step)s AND s.status = '{RunStatus.SUCCEEDED}' AND s.finished_at = %(now)s)
"""

# A run whose steps are all sinks (one step, or steps nothing depends on) has no completion written after
# a successor started: its last count-off finishes it, and a concurrent one sees that count (PostgreSQL
# reads the run's row again once the other committed).
_COUNT_OFF_SINKS_ONLY_RUN = f"""
UPDATE automation_workflowrun
   SET remaining_sinks = remaining_sinks - 1,
       status = CASE WHEN remaining_sinks <= 1 AND status = '{RunStatus.RUNNING}'
                     THEN '{RunStatus.SUCCEEDED}' ELSE status END,
       finished_at = CASE WHEN remaining_sinks <= 1 AND status = '{RunStatus.RUNNING}'
                          THEN %(ended)s ELSE finished_at END
 WHERE id = %(run)s
   AND EXISTS (SELECT 1 FROM automation_steprun AS s
                WHERE s.id = %(step)s AND s.status = '{RunStatus.SUCCEEDED}' AND s.finished_at = %(now)s)
"""

# A worker records a step's completion after sending its successors (automation/runs/executor.py), so
# when the last sink is counted off, a step before it may still be running, its completion on its way:
# the run succeeds with whichever completion leaves no step running. Each completion that may be that one
# first waits for the others still in flight (PostgreSQL only; SQLite runs one transaction at a time), so
# that its check, a statement of its own, sees them committed and the last one cannot be missed:
# - the last sink, holding its run (the count-off), for the transactions completing the running steps;
_AWAIT_RUNNING_STEPS = f"""
SELECT s.id FROM automation_steprun AS s
 WHERE s.run_id = %(run)s AND s.status = '{RunStatus.RUNNING}'
   AND EXISTS (SELECT 1 FROM automation_workflowrun AS r
                WHERE r.id = %(run)s AND r.remaining_sinks <= 0 AND r.status = '{RunStatus.RUNNING}')
   FOR UPDATE OF s
"""
# - any other step, once its run has no sink left to count off, for the others holding the run.
_AWAIT_ENDING_RUN = f"""
SELECT id FROM automation_workflowrun
 WHERE id = %(run)s AND remaining_sinks <= 0 AND status = '{RunStatus.RUNNING}'
   FOR UPDATE
"""

_FINISH_RUN = f"""
UPDATE automation_workflowrun SET status = '{RunStatus.SUCCEEDED}', finished_at = %(ended)s
 WHERE id = %(run)s AND status = '{RunStatus.RUNNING}' AND remaining_sinks <= 0 AND {_NOTHING_RUNNING}
"""


@retry_deadlocks
def complete_step(
    step_id: int,
    *,
    run_id: Any,
    output: Any,
    sink: bool,
    durable: bool = True,
    sinks_only: bool = False,
    finished_at: datetime | None = None,
) -> None:
    """Record a step's success; a step without dependents also counts off its run. The run succeeds with
    the completion after which no sink is left to count off and no step is running. A step whose action
    finished after its run was cancelled is still recorded as succeeded: its effect happened.
    `durable=False`: see automation/sql.py; a completion lost that way leaves the step running, and the
    recovery job runs it again (only engine-internal steps, which act on nothing outside, complete so).
    `sinks_only`: every step of the run is a sink (none completes after a successor started).
    `finished_at`: when the action finished, if before now (a completion written after the successors
    were sent); the run's own end is the time of the completion that ends it.
    """
    now = _now()
    params = {
        "step": step_id,
        "run": _run_id(run_id),
        "output": _json(output),
        "now": _at(finished_at or now),
        "ended": _at(now),
    }
    if sink and sinks_only:
        run_statements([_COMPLETE_STEP, _COUNT_OFF_SINKS_ONLY_RUN], params, durable=durable)
        return
    awaits = connection.vendor == "postgresql"
    if sink:
        statements = [_COMPLETE_STEP, _COUNT_OFF_RUN, *([_AWAIT_RUNNING_STEPS] if awaits else [])]
    else:
        statements = [_COMPLETE_STEP, *([_AWAIT_ENDING_RUN] if awaits else [])]
    statements.append(_FINISH_RUN)
    run_statements(statements, params, durable=durable)


# --- parking, retrying, failing --------------------------------------------------------------------


def defer_step(step_id: int, *, countdown: float, state: dict[str, Any] | None, note: str = "") -> None:
    """Park a running step until its next execution, due in `countdown` seconds; `state` is merged over
    what is stored (an approver's decision, written concurrently, is never lost)."""
    now = _now()
    fields: dict[str, Any] = {
        "deferred": True,
        "error": note,
        "touched_at": now,
        "due_at": now + timedelta(seconds=countdown),
    }
    with transaction.atomic():
        row = StepRun.objects.select_for_update().filter(id=step_id, status=RunStatus.RUNNING).first()
        if row is None:
            return
        if state is not None:
            fields["state"] = {**row.state, **state}
        StepRun.objects.filter(id=step_id).update(**fields)


def resume_lost_step(step_id: int, *, run_id: Any) -> bool:
    """A running step whose completion was lost (its message acknowledged, no copy coming): park it, due
    now, so that its next execution resumes the same attempt, and mark its run to be sent again. False
    when the step is no longer running as it was (nothing changed)."""
    now = _now()
    with transaction.atomic():
        # Not a step released between attempts (`record_retry`: no claim token): its retry message is
        # due, and if lost, `mark_overdue_parked_runs` sends the run again with the next attempt counted.
        moved = (
            StepRun.objects.filter(id=step_id, status=RunStatus.RUNNING, deferred=False)
            .exclude(claim_token="")
            .update(deferred=True, touched_at=now, due_at=now, error="completion lost: run again")
        )
        if not moved:
            return False
        request_redispatch(run_id)  # False when the run is already marked: it is sent again either way
        return True


def record_retry(step_id: int, *, error: str, countdown: float) -> None:
    """The attempt failed and another follows in `countdown` seconds: the claim is released (any worker
    may take the next attempt) but its node stays recorded (if that node dies holding the retry, the
    recovery job finds the run), and the error stays visible while the step waits."""
    StepRun.objects.filter(id=step_id, status=RunStatus.RUNNING).update(
        error=error, claim_token="", due_at=_now() + timedelta(seconds=countdown)
    )


@retry_deadlocks
def fail_step(step_id: int, *, run_id: Any, error: str) -> bool:
    """Fail a step and its run; the run's steps that have not started are skipped."""
    now = _now()
    with transaction.atomic():
        updated = StepRun.objects.filter(id=step_id, status__in=ACTIVE).update(
            status=RunStatus.FAILED, error=error[:10_000], finished_at=now, deferred=False
        )
        if updated:
            WorkflowRun.objects.filter(id=run_id, status__in=ACTIVE).update(
                status=RunStatus.FAILED, error=f"step failed: {error}"[:10_000], finished_at=now
            )
            StepRun.objects.filter(run_id=run_id, status=RunStatus.PENDING).update(
                status=RunStatus.SKIPPED, error="an earlier step failed", finished_at=now
            )
    return bool(updated)


def close_step_of_finished_run(step_id: int, *, run_status: str) -> None:
    """A message arrived for a step of a run that already ended: settle the step, do not run it."""
    status = RunStatus.CANCELLED if run_status == RunStatus.CANCELLED else RunStatus.SKIPPED
    StepRun.objects.filter(id=step_id, status__in=ACTIVE).update(
        status=status, finished_at=_now(), error=f"run is {run_status}", deferred=False
    )


# --- steering from outside -------------------------------------------------------------------------

#: Longest text a person's note may be (a cancel reason, an approval comment).
MAX_NOTE = 10_000


def _check_text(**fields: str) -> None:
    errors = []
    for name, value in fields.items():
        if "\x00" in value:
            errors.append((name, "contains a NUL character"))
        if len(value) > MAX_NOTE:
            errors.append((name, f"longer than {MAX_NOTE} characters"))
    if errors:
        raise InputError(errors)


@retry_deadlocks
def cancel_run(run_id: Any, *, reason: str = "cancelled by request") -> WorkflowRun:
    """Cancel a run: its unfinished steps are marked cancelled; the caller revokes their messages."""
    _check_text(reason=reason)
    now = _now()
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(id=run_id).first()
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist")
        if run.status in TERMINAL:
            raise StateError(f"run {run_id} is already {run.status}")
        before = {"status": run.status}
        run.status = RunStatus.CANCELLED
        run.error = reason
        run.finished_at = now
        run.save(update_fields=["status", "error", "finished_at"])
        StepRun.objects.filter(run_id=run_id, status__in=ACTIVE).update(
            status=RunStatus.CANCELLED, error=reason, finished_at=now, deferred=False
        )
        audit.record("run.cancelled", "run", run.id, before=before, after={"status": run.status})
    return run


@retry_deadlocks
def decide_approval(
    run_id: Any,
    step: str,
    *,
    approved: bool,
    by: str,
    comment: str = "",
    identities: frozenset[str] | None = None,
) -> StepRun:
    """Record an approver's decision on a `control.approval` step that is waiting for one.

    `identities`: the names the authenticated caller goes by (its user or service name, its token's name,
    `group:NAME` per group); when given, the step's `approvers` are matched against them and not `by`.
    """
    _check_text(by=by, comment=comment)
    with transaction.atomic():
        row = (
            StepRun.objects.select_for_update().select_related("run").filter(run_id=run_id, name=step).first()
        )
        if row is None:
            raise NotFoundError(f"run {run_id} has no step '{step}'")
        if row.action_type != "control.approval":
            raise StateError(f"step '{step}' is a {row.action_type} step, not an approval")
        if row.run.status not in ACTIVE or row.status not in ACTIVE:
            raise StateError(f"step '{step}' is {row.status} and its run {row.run.status}: nothing to decide")
        if "requested_at" not in row.state:
            raise StateError(f"step '{step}' has not asked for approval yet")
        if "decision" in row.state:
            raise StateError(f"step '{step}' was already {row.state['decision']}")
        approvers = row.state.get("approvers") or []
        admitted = identities if identities is not None else frozenset({by})
        if approvers and not admitted & set(approvers):
            raise ForbiddenError(
                f"'{by or 'anonymous'}' is not an approver of step '{step}' ({', '.join(approvers)})"
            )
        row.state = {
            **row.state,
            "decision": "approved" if approved else "rejected",
            "decided_by": by,
            "comment": comment,
            "decided_at": _now().isoformat(),
        }
        row.touched_at = _now()
        row.save(update_fields=["state", "touched_at"])
        audit.record(
            "run.approved" if approved else "run.rejected",
            "step",
            f"{row.run_id}/{step}",
            before={"decision": None},
            after={"decision": row.state["decision"], "decided_by": by},
        )
    return row


# --- recovery bookkeeping --------------------------------------------------------------------------


def request_redispatch(run_id: Any) -> bool:
    """A worker could not send a finished step's successors: ask the recovery job to send the run again."""
    return bool(
        WorkflowRun.objects.filter(id=run_id, status__in=ACTIVE, redispatch_requested_at__isnull=True).update(
            redispatch_requested_at=_now()
        )
    )


def advance_generation(run_id: Any, *, sent: int) -> None:
    """The canvas of generation `sent` was sent: older messages of the run now retire at the step guard."""
    WorkflowRun.objects.filter(id=run_id, generation__lt=sent).update(
        generation=sent, dispatched_at=_now(), redispatch_requested_at=None
    )


def clear_redispatch_request(run_id: Any) -> None:
    WorkflowRun.objects.filter(id=run_id).update(redispatch_requested_at=None)
