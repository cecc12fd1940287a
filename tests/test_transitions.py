"""One state machine, two stores: every transition case of tests/transition_cases.py runs on PostgreSQL
(the session's database) and on the embedded SQLite store (a fresh file, in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT, STATE_DIR
from tests.transition_cases import CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_transition_on_postgresql(name: str, database: None) -> None:
    CASES[name]()


def test_every_transition_on_the_embedded_sqlite_store() -> None:
    store = STATE_DIR / "transitions-sqlite"
    store.mkdir(exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "AUTOMATION_BROKER_URL", "AUTOMATION_RESULT_BACKEND")
    }
    env["AUTOMATION_STATE_DIR"] = str(store)
    ran = subprocess.run(
        [sys.executable, "-m", "tests.transition_cases"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    lines = ran.stdout.splitlines()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert sum(line.startswith("ok ") and line.endswith("on sqlite") for line in lines) == len(CASES), lines


def test_a_prepared_statement_lost_behind_the_engines_back_is_prepared_again(database: None) -> None:
    from django.db import connection

    from automation.runs import services
    from tests.transition_cases import me, new_run, register, wait

    assert services.claim_step(new_run(register(wait("a"))).id, "a", claim=me()) is not None
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's reset does
    claimed = services.claim_step(new_run(register(wait("a"))).id, "a", claim=me())
    assert claimed is not None and claimed.attempt == 1


def test_a_statement_prepared_already_inside_a_callers_transaction_leaves_it_usable(database: None) -> None:
    """The process lost track of what its session prepared (its connection object was replaced by another
    over the same session, as a proxy does): a PREPARE the session holds already, inside a caller's
    transaction, fails in a savepoint of its own and the transaction goes on."""
    from django.db import connection, transaction

    from automation.runs import services
    from automation.sql import _prepared_on_this_connection
    from tests.transition_cases import new_run, register, wait

    version = register(wait("a"))
    new_run(version, key="tracked")  # the run and step inserts prepared on this session
    _prepared_on_this_connection(connection).names.clear()
    with transaction.atomic():
        run, created = services.create_run(
            workflow_id=version.workflow_id, version_id=version.id, version_number=version.version,
            actions=version.definition["actions"], inputs={}, idempotency_key="in-a-transaction",
            queue="default",
        )
    assert created
    assert services.WorkflowRun.objects.filter(id=run.id, idempotency_key="in-a-transaction").exists()


def test_a_statement_lost_inside_a_callers_transaction_is_prepared_again_by_the_next(database: None) -> None:
    """A pooler's reset (or a migration) took the session's statements away while this process thinks them
    prepared: inside a caller's transaction the batch fails with it, and the next one prepares them again
    instead of failing the same way until the connection is recycled."""
    from django.db import DatabaseError, connection, transaction

    from automation.runs import services
    from tests.transition_cases import me, new_run, register, wait

    version = register(wait("a"))
    new_run(version, key="before")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError), transaction.atomic():
        new_run(version, key="lost")
    with transaction.atomic():
        again = new_run(version, key="again")
    assert services.claim_step(again.id, "a", claim=me()) is not None


def test_a_transition_that_fails_leaves_its_connection_usable(database: None) -> None:
    from django.db import connection

    from automation.runs import services
    from tests.transition_cases import new_run, register, wait

    version = register(wait("a"))
    first = new_run(version, key="conflict")
    connection.close()  # a fresh connection: nothing prepared on it yet
    again, created = services.create_run(
        workflow_id=version.workflow_id, version_id=version.id, version_number=version.version,
        actions=version.definition["actions"], inputs={}, idempotency_key="conflict", queue="default",
    )
    assert not created and again.id == first.id
    other = new_run(version, key="another")  # raised "prepared statement already exists" before
    assert other.id != first.id


def test_outputs_json_cannot_hold_are_stored_as_null() -> None:
    from automation.runs.executor import storable

    assert storable({"v": float("nan"), "w": [float("inf"), 1.5], "t": "a\x00b"}) == {
        "v": None, "w": [None, 1.5], "t": "ab"
    }


def test_values_passed_as_they_are_on_postgresql_store_as_django_would(database: None) -> None:
    """The shortcut of `db_value` (aware datetimes and UUIDs as they are on PostgreSQL) gives what the
    field's own conversion gives; a naive datetime still goes through Django (made aware, with its
    warning), and a UUID given as text is still converted."""
    import uuid
    import warnings
    from datetime import UTC, datetime

    from django.db import connection

    from automation.models import StepRun, WorkflowRun
    from automation.sql import db_value

    at_field = StepRun._meta.get_field("touched_at")
    id_field = WorkflowRun._meta.get_field("id")
    aware = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    run_id = uuid.uuid4()
    assert db_value(at_field, aware) is aware
    assert db_value(at_field, aware) == at_field.get_db_prep_value(aware, connection, prepared=False)
    assert db_value(id_field, run_id) is run_id
    assert db_value(id_field, str(run_id)) == run_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        naive = db_value(at_field, datetime(2026, 12, 1, 7, 0))
    assert naive.utcoffset() is not None and any("naive datetime" in str(w.message) for w in caught)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::timestamptz = %s::timestamptz, %s::uuid::text",
            [db_value(at_field, aware), aware, db_value(id_field, run_id)],
        )
        same, text = cursor.fetchone()
    assert same and text == str(run_id)


def test_values_pass_as_they_are_only_on_postgresql(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any aware datetime passes as it is (its offset kept); a subclass of one, and on any store other
    than PostgreSQL every datetime and UUID, goes through the field's own conversion."""
    import uuid
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from automation import sql
    from automation.models import StepRun, WorkflowRun

    class Moment(datetime):
        pass

    at_field = StepRun._meta.get_field("touched_at")
    id_field = WorkflowRun._meta.get_field("id")
    converted: list[object] = []

    def spied(own: Any) -> Any:
        def convert(value: Any, *args: Any, **kwargs: Any) -> Any:
            converted.append(value)
            return own(value, *args, **kwargs)

        return convert

    for field in (at_field, id_field):
        monkeypatch.setattr(field, "get_db_prep_value", spied(field.get_db_prep_value))
    paris = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))
    run_id = uuid.uuid4()
    assert sql.db_value(at_field, paris) is paris and sql.db_value(id_field, run_id) is run_id
    assert converted == []
    subclassed = Moment(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert sql.db_value(at_field, subclassed) == paris and converted == [subclassed]
    monkeypatch.setattr(sql, "_default_vendor", lambda: "sqlite")
    sql.db_value(at_field, paris)
    sql.db_value(id_field, run_id)
    assert converted == [subclassed, paris, run_id]
