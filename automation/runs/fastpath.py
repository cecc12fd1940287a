"""PostgreSQL statements for the hot transitions: one prepared statement, one round trip each.

Called only by automation/runs/services.py. A run's creation waits for the disk (a 202 means it is
stored), and so does the start of an action that acts outside the engine. Completions, and the start of
engine-internal steps (waits, approvals), do not (`synchronous_commit off`): PostgreSQL can lose only the
last fraction of a second of those, only in a database crash, and only as a suffix of its history. A
completion lost that way leaves its step running, and the recovery job restores it from the outcome
Celery recorded for the step's task (automation/runs/recovery.py), so the effect is not repeated. A step
that finishes its action after its run was cancelled is still recorded as succeeded: its effect happened.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection
from psycopg2.errors import FeatureNotSupported, InvalidSqlStatementName

#: Prepared once per connection: planning these CTEs costs about as much as running them.
_PREPARED = {
    "automation_claim_step": (
        "uuid, text",
        """
WITH claimed AS (
    UPDATE automation_steprun AS s
       SET status = 'running',
           attempts = s.attempts + CASE WHEN s.deferred THEN 0 ELSE 1 END,
           deferred = false,
           started_at = COALESCE(s.started_at, now()),
           touched_at = now()
      FROM automation_workflowrun AS r
     WHERE s.run_id = $1 AND s.name = $2 AND r.id = s.run_id
       AND s.status IN ('pending', 'running') AND r.status IN ('pending', 'running')
 RETURNING s.id, s.attempts, s.state, r.inputs, r.version_id
), started AS (
    UPDATE automation_workflowrun SET status = 'running', started_at = now()
     WHERE id = $1 AND status = 'pending' AND EXISTS (SELECT 1 FROM claimed)
)
SELECT id, attempts, state, inputs, version_id FROM claimed
""",
    ),
    "automation_complete_step": (
        "bigint, jsonb, boolean",
        """
WITH done AS (
    UPDATE automation_steprun
       SET status = 'succeeded', output = $2, error = '',
           finished_at = now(), touched_at = now()
     WHERE id = $1 AND status IN ('pending', 'running', 'cancelled')
 RETURNING run_id
)
UPDATE automation_workflowrun AS r
   SET remaining_sinks = r.remaining_sinks - 1,
       status = CASE WHEN r.remaining_sinks <= 1 AND r.status = 'running' THEN 'succeeded' ELSE r.status END,
       finished_at = CASE WHEN r.remaining_sinks <= 1 AND r.status = 'running'
                          THEN now() ELSE r.finished_at END
  FROM done
 WHERE r.id = done.run_id AND $3
""",
    ),
    "automation_create_run": (
        "uuid, bigint, bigint, text, jsonb, text, text, int, text, text[], text[], int[], text[]",
        """
WITH run AS (
    INSERT INTO automation_workflowrun
           (id, workflow_id, version_id, status, inputs, idempotency_key, queue, remaining_sinks, error,
            created_at, finished_at, dispatched_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), CASE WHEN $4 = 'skipped' THEN now() END,
            CASE WHEN $4 = 'pending' THEN now() END)
 RETURNING id
)
INSERT INTO automation_steprun
       (run_id, name, action_type, position, task_id, status, attempts, deferred, state, error, finished_at)
SELECT run.id, step.name, step.action_type, step.position, step.task_id, $4, 0, false, '{}'::jsonb,
       $9, CASE WHEN $4 = 'skipped' THEN now() END
  FROM run, unnest($10, $11, $12, $13) AS step(name, action_type, position, task_id)
""",
    ),
    "automation_latest_version": (
        "text",
        """
SELECT v.workflow_id, v.id FROM automation_workflowversion AS v
  JOIN automation_workflow AS w ON w.id = v.workflow_id
 WHERE w.name = $1 ORDER BY v.version DESC LIMIT 1
""",
    ),
}


def enabled() -> bool:
    return connection.vendor == "postgresql"


def _execute_prepared(cursor: Any, name: str, args: str, *, durable: bool, params: tuple[Any, ...]) -> None:
    """EXECUTE a prepared statement (preparing it on this connection first), with its commit mode."""
    raw = connection.connection
    known = getattr(connection, "_automation_prepared", None)
    if known is None or known[0] is not raw:  # a new connection has none of them
        known = (raw, set[str]())
        connection._automation_prepared = known  # type: ignore[attr-defined]
    if name not in known[1]:
        types, body = _PREPARED[name]
        cursor.execute(f"PREPARE {name} ({types}) AS {body}")
        known[1].add(name)
    statement = (
        f"EXECUTE {name} ({args})"
        if durable
        else f"SET LOCAL synchronous_commit TO OFF; EXECUTE {name} ({args})"
    )
    try:
        cursor.execute(statement, params)
    except DatabaseError as exc:  # Django wraps the driver's error; its cause says which one
        if not isinstance(exc.__cause__, InvalidSqlStatementName | FeatureNotSupported):
            raise
        # DEALLOCATEd by a pooler reset, or its plan outdated by a migration: prepare it again, once.
        cursor.execute("DEALLOCATE ALL")
        known[1].clear()
        types, body = _PREPARED[name]
        cursor.execute(f"PREPARE {name} ({types}) AS {body}")
        known[1].add(name)
        cursor.execute(statement, params)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True)
class ClaimedStep:
    id: int
    attempt: int
    state: dict[str, Any]
    inputs: dict[str, Any]
    version_id: int


def claim(run_id: uuid.UUID, step: str, *, durable: bool) -> ClaimedStep | None:
    with connection.cursor() as cursor:
        _execute_prepared(cursor, "automation_claim_step", "%s, %s", durable=durable, params=(run_id, step))
        row = cursor.fetchone()
    if row is None:
        return None
    return ClaimedStep(
        id=row[0], attempt=row[1], state=_json(row[2]) or {}, inputs=_json(row[3]) or {}, version_id=row[4]
    )


def complete(step_id: int, output: Any, *, durable: bool, sink: bool) -> None:
    with connection.cursor() as cursor:
        params = (step_id, json.dumps(output), sink)
        _execute_prepared(cursor, "automation_complete_step", "%s, %s, %s", durable=durable, params=params)


def create(
    *,
    run_id: uuid.UUID,
    workflow_id: int,
    version_id: int,
    status: str,
    inputs: dict[str, Any],
    idempotency_key: str | None,
    queue: str,
    error: str,
    steps: list[tuple[str, str, int, str]],
    sinks: int,
) -> None:
    """Insert a run and its steps in one statement (atomic, one round trip)."""
    params = (
        run_id,
        workflow_id,
        version_id,
        status,
        json.dumps(inputs),
        idempotency_key,
        queue,
        sinks,
        error,
        [s[0] for s in steps],
        [s[1] for s in steps],
        [s[2] for s in steps],
        [s[3] for s in steps],
    )
    with connection.cursor() as cursor:
        _execute_prepared(
            cursor, "automation_create_run", ", ".join(["%s"] * 13), durable=True, params=params
        )


def latest_version(workflow: str) -> tuple[int, int] | None:
    """(workflow id, latest version id) of a workflow by name."""
    with connection.cursor() as cursor:
        _execute_prepared(cursor, "automation_latest_version", "%s", durable=True, params=(workflow,))
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None
