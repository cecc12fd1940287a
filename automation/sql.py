"""Running a transition written as SQL on both stores: PostgreSQL in production, SQLite when embedded.

Used by the domains' services (runs, alerting) for their hot transitions; imports nothing of this project.

A transition's statements are plain SQL both understand (UPDATE ... RETURNING, EXISTS, CASE), written
once in their domain's services (automation/runs/services.py) with named placeholders; a statement only
PostgreSQL runs (automation/alerting/services/alerts.py) has an ORM path beside it for SQLite. They
run as one transaction: on SQLite one after another inside `atomic()`; on PostgreSQL in one round trip,
each statement prepared once per connection, in a round trip of its own (planning these statements
costs more than running them). A prepared statement lost behind the engine's back (a pooler's reset, a
migration) is prepared again.

`durable=False` does not wait for the disk on PostgreSQL (`synchronous_commit off` for that
transaction only, and only when it is a transaction of its own): PostgreSQL can then lose the last
fraction of a second of such commits, only in a database crash and only as a suffix of its history (a
later commit that waits for the disk writes every earlier one with it). SQLite has no per-transaction
equivalent; the embedded store is for demos and development.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction
from django.db.models import BooleanField, CharField, DateTimeField, Field, IntegerField, TextField, UUIDField
from psycopg2.errors import (
    DeadlockDetected,
    DuplicatePreparedStatement,
    FeatureNotSupported,
    InvalidSqlStatementName,
    SerializationFailure,
)

Row = tuple[Any, ...]
P = ParamSpec("P")
T = TypeVar("T")

#: Times a transition PostgreSQL aborted to break a deadlock is run again before the error is raised.
DEADLOCK_RETRIES = 3

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def in_list(values: Iterable[str]) -> str:
    """A SQL `IN` list of trusted constants (the choices classes' values, never user input)."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


#: Values stored as they are on every store, by type, with the fields they are so for: text in text
#: fields, integers in integer fields, flags in boolean fields.
_AS_IS: dict[type, tuple[type[Field[Any, Any]], ...]] = {
    str: (CharField, TextField),
    int: (IntegerField,),
    bool: (BooleanField,),
}


#: Values PostgreSQL's driver takes as they are, by type, with the fields they are so for there: Django's
#: conversion returns an aware datetime and a UUID unchanged on PostgreSQL (SQLite wants text).
_AS_IS_ON_POSTGRESQL: dict[type, tuple[type[Field[Any, Any]], ...]] = {
    datetime: (DateTimeField,),
    uuid.UUID: (UUIDField,),
}


@cache
def _default_vendor() -> str:
    """The default database's vendor: set by the settings, fixed for the process (looked up once: each
    lookup through `connections` costs a thread-local access)."""
    return str(connections[DEFAULT_DB_ALIAS].vendor)


def db_value(field: Field[Any, Any], value: Any) -> Any:
    """`value` as the store expects it for `field` (UUIDs, datetimes and JSON differ between stores).

    Text, numbers and flags are passed as they are, without the field's conversion (a few dozen Python
    calls each, on the hot paths that build their parameters here); on PostgreSQL, so are aware
    datetimes and UUIDs."""
    kind = type(value)
    as_is = _AS_IS.get(kind)
    if as_is is not None and isinstance(field, as_is):
        return value
    as_is = _AS_IS_ON_POSTGRESQL.get(kind)
    if (
        as_is is not None
        and isinstance(field, as_is)
        and _default_vendor() == "postgresql"
        and (kind is not datetime or value.utcoffset() is not None)
    ):
        return value
    return field.get_db_prep_value(value, connection, prepared=False)


def from_json(value: Any) -> Any:
    """A JSON column as read back by a raw query: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True)
class Prepared:
    name: str
    #: `PREPARE name AS body`, the body's named placeholders turned into $1, $2, ...
    prepare: str
    #: `EXECUTE name(%(a)s, %(b)s, ...)`, filled by the driver from the transition's parameters.
    execute: str


@cache
def prepared(statement: str) -> Prepared:
    names = list(dict.fromkeys(_PLACEHOLDER.findall(statement)))
    body = _PLACEHOLDER.sub(lambda m: f"${names.index(m.group(1)) + 1}", statement)
    name = "automation_" + hashlib.sha1(statement.encode(), usedforsecurity=False).hexdigest()[:16]
    arguments = ", ".join(f"%({n})s" for n in names)
    return Prepared(
        name=name,
        prepare=f"PREPARE {name} AS {body}",
        execute=f"EXECUTE {name}({arguments})" if names else f"EXECUTE {name}",
    )


@dataclass
class _Prepared:
    """What this process prepared on one database session."""

    raw: Any  # the driver's connection
    names: set[str]
    #: A statement was found lost or outdated inside a caller's transaction (which then failed): every
    #: statement is deallocated and prepared again before the next batch.
    stale: bool = False


def _prepared_on_this_connection(db: Any) -> _Prepared:
    """What was prepared on the database connection `db` holds now (a new connection has nothing)."""
    raw = db.connection
    known: _Prepared | None = getattr(db, "_automation_prepared", None)
    if known is None or known.raw is not raw:
        known = _Prepared(raw, set())
        db._automation_prepared = known
    return known


def _prepare(cursor: Any, plans: Sequence[Prepared], known: _Prepared, db: Any) -> None:
    """PREPARE what this connection has not, each in a round trip of its own: a PREPARE survives the
    rollback of a failed transaction, so it must never share one with the statements that use it. Inside
    a caller's transaction, a PREPARE the session holds already (this process lost track of it: its
    connection object was replaced by another over the same session) fails in a savepoint of its own, so
    the transaction stays usable."""
    if known.stale:
        cursor.execute("DEALLOCATE ALL")
        known.names.clear()
        known.stale = False
    for plan in plans:
        if plan.name in known.names:
            continue
        try:
            if db.in_atomic_block:
                with transaction.atomic(using=db.alias):
                    cursor.execute(plan.prepare, {})
            else:
                cursor.execute(plan.prepare, {})
        except DuplicatePreparedStatement:
            pass
        known.names.add(plan.name)


def _postgresql(statements: Sequence[str], params: dict[str, Any], *, durable: bool) -> list[Row]:
    # The driver's cursor, not Django's wrapper around it (a few hundred Python calls per statement on the
    # hot path); Django still turns the driver's errors into its own and notes them on the connection.
    # The connection itself looked up once (each use of the `connection` proxy looks it up again).
    db = connections[DEFAULT_DB_ALIAS]
    plans = [prepared(statement) for statement in statements]
    db.ensure_connection()
    # Inside a caller's transaction, the caller's commit decides: never made to skip the disk from here.
    commit_mode = [] if durable or db.in_atomic_block else ["SET LOCAL synchronous_commit TO OFF"]
    batch = ";\n".join(commit_mode + [p.execute for p in plans])
    with db.wrap_database_errors, db.connection.cursor() as cursor:
        known = _prepared_on_this_connection(db)
        _prepare(cursor, plans, known, db)
        try:
            cursor.execute(batch, params)
        except (InvalidSqlStatementName, FeatureNotSupported):
            # DEALLOCATEd by a pooler's reset, or its plan outdated by a migration: prepare them again. In
            # a caller's transaction, which this failure ended, the next batch on this session does.
            if db.in_atomic_block:
                known.stale = True
                raise
            cursor.execute("DEALLOCATE ALL")
            known.names.clear()
            _prepare(cursor, plans, known, db)
            cursor.execute(batch, params)
        return list(cursor.fetchall()) if cursor.description else []


def run_statements(statements: Sequence[str], params: dict[str, Any], *, durable: bool = True) -> list[Row]:
    """Run `statements` as one transaction; the rows the last one returned (empty when it returns none)."""
    if connection.vendor == "postgresql":
        return _postgresql(statements, params, durable=durable)
    rows: list[Row] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, {k: v for k, v in params.items() if f"%({k})s" in statement})
            rows = list(cursor.fetchall()) if cursor.description else []
    return rows


def retry_deadlocks(func: Callable[P, T]) -> Callable[P, T]:
    """Run a transition again when PostgreSQL aborted it to break a deadlock (or a serialization failure).

    Transitions started from outside (a cancel, an approval) lock a run before its steps, a worker's
    completion a step before its run: when they meet, PostgreSQL aborts one of them, and the aborted
    one is whole work still to do. Inside a caller's transaction nothing is retried (that transaction
    is already lost).
    """

    @functools.wraps(func)
    def retried(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                transient = isinstance(exc.__cause__, DeadlockDetected | SerializationFailure)
                if not transient or attempt == DEADLOCK_RETRIES or connection.in_atomic_block:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    return retried
