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


# A worker records a step's completion after sending its successors, so the last sink's completion can
# meet a predecessor's. Each side is held open on a connection of its own while the other runs: whichever
# commits last must find the other committed and finish the run.


def _two_step_run(engine: Any) -> tuple[Any, int, int]:
    from automation.runs import services
    from tests.transition_cases import me

    first = ActionDefinition(name="first", action_type="control.wait", parameters={"seconds": 0})
    last = ActionDefinition(name="last", action_type="control.wait", parameters={"seconds": 0})
    run = stored_run(engine, "meet", first, last)
    a = services.claim_step(run.id, "first", claim=me())
    b = services.claim_step(run.id, "last", claim=me(2))
    assert a is not None and b is not None
    return run, a.id, b.id


def _completion_held_open(statements: list[str], step_id: int, run_id: Any) -> Any:
    """A worker's completion of `step_id`, its statements run on a connection of its own, not committed."""
    import psycopg2
    from psycopg2.extras import Json

    from automation.runs import services

    held = psycopg2.connect(f"{PG_SERVER}/{TEST_DB}")
    now = services._now()
    params = {"step": step_id, "run": str(run_id), "output": Json({}), "now": now, "ended": now}
    with held.cursor() as cur:
        for statement in statements:
            cur.execute(statement, params)
    return held


def _meet(held: Any, complete: Any) -> list[BaseException]:
    """Run `complete` (the other side, on Django's connection, in a thread) while `held` is open; commit
    `held` once the other side waits for it (or is done), then wait for the other side."""
    import psycopg2
    from django.db import connection

    errors: list[BaseException] = []
    backend: list[int] = []
    started = threading.Event()

    def other() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
            started.set()
            complete()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            started.set()
            connection.close()

    with held.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity")  # held's own statements are done
    thread = threading.Thread(target=other)
    watcher = psycopg2.connect(f"{PG_SERVER}/{TEST_DB}")
    watcher.autocommit = True
    thread.start()
    assert started.wait(10) and backend, errors
    deadline = time.monotonic() + 5
    with watcher.cursor() as watch:
        while thread.is_alive() and time.monotonic() < deadline:
            watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = %s",
                (backend[0],),
            )
            if watch.fetchone()[0]:
                break
            time.sleep(0.01)
    held.commit()
    held.close()
    watcher.close()
    thread.join(30)
    assert not thread.is_alive()
    return errors


def test_the_last_sink_waits_for_a_completion_in_flight_and_finishes_the_run(engine: Any) -> None:
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services

    run, first, last = _two_step_run(engine)
    held = _completion_held_open(
        [services._COMPLETE_STEP, services._AWAIT_ENDING_RUN, services._FINISH_RUN], first, run.id
    )
    errors = _meet(held, lambda: services.complete_step(last, run_id=run.id, output={}, sink=True))
    assert errors == []
    stored = WorkflowRun.objects.get(id=run.id)
    assert (stored.status, stored.remaining_sinks) == ("succeeded", 0)
    assert set(StepRun.objects.filter(run_id=run.id).values_list("status", flat=True)) == {"succeeded"}


def test_a_completion_after_the_last_sink_finishes_the_run(engine: Any) -> None:
    from automation.models import WorkflowRun
    from automation.runs import services

    run, first, last = _two_step_run(engine)
    held = _completion_held_open(
        [
            services._COMPLETE_STEP,
            services._COUNT_OFF_RUN,
            services._AWAIT_RUNNING_STEPS,
            services._FINISH_RUN,
        ],
        last,
        run.id,
    )
    errors = _meet(held, lambda: services.complete_step(first, run_id=run.id, output={}, sink=False))
    assert errors == []
    stored = WorkflowRun.objects.get(id=run.id)
    assert (stored.status, stored.remaining_sinks) == ("succeeded", 0)
    assert stored.finished_at is not None


def test_two_completions_in_flight_after_the_last_sink_finish_the_run_once(engine: Any) -> None:
    from automation.models import WorkflowRun
    from automation.runs import services
    from tests.transition_cases import me

    one = ActionDefinition(name="one", action_type="control.wait", parameters={"seconds": 0}, depends_on=[])
    two = ActionDefinition(name="two", action_type="control.wait", parameters={"seconds": 0}, depends_on=[])
    join = ActionDefinition(
        name="join", action_type="control.wait", parameters={"seconds": 0}, depends_on=["one", "two"]
    )
    run = stored_run(engine, "meet-two", one, two, join)
    claimed = {
        name: services.claim_step(run.id, name, claim=me(pid))
        for pid, name in enumerate(["one", "two", "join"])
    }
    assert all(claimed.values())
    services.complete_step(claimed["join"].id, run_id=run.id, output={}, sink=True)
    assert WorkflowRun.objects.get(id=run.id).status == "running"  # one and two still running
    held = _completion_held_open(
        [services._COMPLETE_STEP, services._AWAIT_ENDING_RUN, services._FINISH_RUN], claimed["one"].id, run.id
    )
    errors = _meet(
        held, lambda: services.complete_step(claimed["two"].id, run_id=run.id, output={}, sink=False)
    )
    assert errors == []
    stored = WorkflowRun.objects.get(id=run.id)
    assert (stored.status, stored.remaining_sinks) == ("succeeded", 0)
