"""Running a transition written as SQL on both stores: PostgreSQL in production, SQLite when embedded.

A transition's statements are plain SQL both understand (UPDATE ... RETURNING, EXISTS, CASE), written
once in automation/runs/services.py. They run as one transaction: on PostgreSQL in one round trip
(one simple query holding every statement), on SQLite one after another inside `atomic()`.

`durable=False` does not wait for the disk on PostgreSQL (`synchronous_commit off` for that
transaction only): PostgreSQL can then lose the last fraction of a second of such commits, only in a
database crash and only as a suffix of its history. SQLite has no per-transaction equivalent; the
embedded store is for demos and development.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import Field

Row = tuple[Any, ...]


def in_list(values: Iterable[str]) -> str:
    """A SQL `IN` list of trusted constants (the choices classes' values, never user input)."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def db_value(field: Field[Any, Any], value: Any) -> Any:
    """`value` as the store expects it for `field` (UUIDs, datetimes and JSON differ between stores)."""
    return field.get_db_prep_value(value, connection, prepared=False)


def from_json(value: Any) -> Any:
    """A JSON column as read back by a raw query: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def run_statements(statements: Sequence[str], params: dict[str, Any], *, durable: bool = True) -> list[Row]:
    """Run `statements` as one transaction; the rows the last one returned (empty when it returns none)."""
    if connection.vendor == "postgresql":
        text = ";\n".join(statements)
        if not durable:
            text = "SET LOCAL synchronous_commit TO OFF;\n" + text
        with connection.cursor() as cursor:
            cursor.execute(text, params)
            return list(cursor.fetchall()) if cursor.description else []
    rows: list[Row] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, {k: v for k, v in params.items() if f"%({k})s" in statement})
            rows = list(cursor.fetchall()) if cursor.description else []
    return rows
