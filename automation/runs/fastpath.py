"""PostgreSQL statements for the hot transitions: one round trip each, called only by services.py.

A step's start is written without waiting for the disk (`synchronous_commit off`): a database crash can
only forget that a step started. Completions wait for the disk unless the step has dependents: PostgreSQL
loses only a suffix of asynchronously committed transactions, and the step a run ends with is always a
step without dependents, so a run's end is never lost. A step that finishes its action after its run was
cancelled is still recorded as succeeded: its effect happened.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection

_CLAIM = """
SET LOCAL synchronous_commit TO OFF;
WITH claimed AS (
    UPDATE automation_steprun AS s
       SET status = 'running',
           attempts = s.attempts + CASE WHEN s.deferred THEN 0 ELSE 1 END,
           deferred = false,
           started_at = COALESCE(s.started_at, now()),
           touched_at = now()
      FROM automation_workflowrun AS r
     WHERE s.run_id = %(run)s AND s.name = %(step)s AND r.id = s.run_id
       AND s.status IN ('pending', 'running') AND r.status IN ('pending', 'running')
 RETURNING s.id, s.attempts, s.state, r.inputs, r.version_id
), started AS (
    UPDATE automation_workflowrun SET status = 'running', started_at = now()
     WHERE id = %(run)s AND status = 'pending' AND EXISTS (SELECT 1 FROM claimed)
)
SELECT id, attempts, state, inputs, version_id FROM claimed
"""

_COMPLETE = """
SET LOCAL synchronous_commit TO {commit};
WITH done AS (
    UPDATE automation_steprun
       SET status = 'succeeded', output = %(output)s::jsonb, error = '',
           finished_at = now(), touched_at = now()
     WHERE id = %(id)s AND status IN ('pending', 'running', 'cancelled')
 RETURNING run_id
)
UPDATE automation_workflowrun AS r
   SET remaining_steps = r.remaining_steps - 1,
       status = CASE WHEN r.remaining_steps <= 1 AND r.status = 'running' THEN 'succeeded' ELSE r.status END,
       finished_at = CASE WHEN r.remaining_steps <= 1 AND r.status = 'running'
                          THEN now() ELSE r.finished_at END
  FROM done
 WHERE r.id = done.run_id
"""

_CREATE = """
WITH run AS (
    INSERT INTO automation_workflowrun
           (id, workflow_id, version_id, status, inputs, idempotency_key, queue, remaining_steps, error,
            created_at, finished_at, dispatched_at)
    VALUES (%(id)s, %(workflow)s, %(version)s, %(status)s, %(inputs)s::jsonb, %(key)s, %(queue)s, %(count)s,
            %(error)s, now(), CASE WHEN %(status)s = 'skipped' THEN now() END,
            CASE WHEN %(status)s = 'pending' THEN now() END)
 RETURNING id
)
INSERT INTO automation_steprun
       (run_id, name, action_type, position, task_id, status, attempts, deferred, state, error, finished_at)
SELECT run.id, step.name, step.action_type, step.position, step.task_id, %(status)s, 0, false, '{}'::jsonb,
       %(error)s, CASE WHEN %(status)s = 'skipped' THEN now() END
  FROM run, unnest(%(names)s::text[], %(types)s::text[], %(positions)s::int[], %(task_ids)s::text[])
       AS step(name, action_type, position, task_id)
"""

def enabled() -> bool:
    return connection.vendor == "postgresql"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True)
class ClaimedStep:
    id: int
    attempt: int
    state: dict[str, Any]
    inputs: dict[str, Any]
    version_id: int


def claim(run_id: uuid.UUID, step: str) -> ClaimedStep | None:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, {"run": run_id, "step": step})
        row = cursor.fetchone()
    if row is None:
        return None
    return ClaimedStep(
        id=row[0], attempt=row[1], state=_json(row[2]) or {}, inputs=_json(row[3]) or {}, version_id=row[4]
    )


def complete(step_id: int, output: Any, *, durable: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _COMPLETE.format(commit="ON" if durable else "OFF"), {"id": step_id, "output": json.dumps(output)}
        )


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
) -> None:
    """Insert a run and its steps in one statement (atomic, one round trip)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CREATE,
            {
                "id": run_id,
                "workflow": workflow_id,
                "version": version_id,
                "status": status,
                "inputs": json.dumps(inputs),
                "key": idempotency_key,
                "queue": queue,
                "count": len(steps),
                "error": error,
                "names": [s[0] for s in steps],
                "types": [s[1] for s in steps],
                "positions": [s[2] for s in steps],
                "task_ids": [s[3] for s in steps],
            },
        )
