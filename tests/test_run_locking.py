"""Transitions that meet on one run: a cancel locks the run before its steps, a worker's completion a step
before its run. PostgreSQL breaks such a deadlock by aborting one side; the cancel must still happen."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from automation import ActionDefinition
from tests.conftest import PG_SERVER, TEST_DB, stored_run

pytestmark = pytest.mark.integration


def _waiting_on_a_lock(cursor: Any, pid: int, statement: str) -> bool:
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock' AND query LIKE %s",
        (pid, statement + "%"),
    )
    return bool(cursor.fetchone()[0])


def test_a_cancel_aborted_to_break_a_deadlock_is_run_again(engine: Any) -> None:
    import psycopg2

    from automation.models import StepRun
    from automation.runs import services

    only = ActionDefinition(name="only", action_type="control.wait", parameters={"seconds": 0})
    run = stored_run(engine, "locks", only)
    step_id = StepRun.objects.get(run_id=run.id).id
    # A worker's completion, as another connection: the step is locked first, the run second.
    worker = psycopg2.connect(f"{PG_SERVER}/{TEST_DB}")
    watcher = psycopg2.connect(f"{PG_SERVER}/{TEST_DB}")
    watcher.autocommit = True
    errors: list[BaseException] = []
    from django.db import connection

    with connection.cursor() as own:
        own.execute("SELECT pg_backend_pid()")
        cancel_pid = own.fetchone()[0]  # the connection the cancel below runs on
    step_locked = threading.Event()

    def complete() -> None:
        try:
            with worker.cursor() as cur, watcher.cursor() as watch:
                cur.execute("UPDATE automation_steprun SET touched_at = now() WHERE id = %s", (step_id,))
                step_locked.set()
                deadline = time.monotonic() + 20
                while not _waiting_on_a_lock(watch, cancel_pid, 'UPDATE "automation_steprun"'):
                    assert time.monotonic() < deadline, "the cancel never waited for the step"
                    time.sleep(0.02)
                # The cancel holds the run and waits for the step: this closes the cycle.
                cur.execute("UPDATE automation_workflowrun SET error = '' WHERE id = %s", (str(run.id),))
            worker.commit()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
            worker.rollback()
            step_locked.set()

    thread = threading.Thread(target=complete)
    thread.start()
    assert step_locked.wait(20), "the worker's side never locked the step"
    try:
        cancelled = services.cancel_run(run.id, reason="deadlock drill")
    finally:
        thread.join(30)
        worker.close()
        watcher.close()
    assert cancelled.status == "cancelled"
    run.refresh_from_db()
    assert (run.status, run.error) == ("cancelled", "deadlock drill")
    assert list(StepRun.objects.filter(run_id=run.id).values_list("status", flat=True)) == ["cancelled"]
    # PostgreSQL aborted exactly one side; if it was the worker's, the cancel went through at once.
    assert len(errors) <= 1
    assert all("deadlock" in str(exc) for exc in errors)
