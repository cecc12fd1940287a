"""Transaction-scoped advisory locks by name (PostgreSQL): the correlation of an alert and the opening of
an incident are decided by one caller at a time for the same group keys or the dependency graph, so two
alerts of one outage arriving together never open two incidents. SQLite serializes writers already."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.db import connection

#: Names the graph-wide lock: alerts of services in the graph may join each other's incidents.
GRAPH = "graph"


def _key(name: str) -> int:
    digest = hashlib.blake2b(f"incidents:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock(names: set[str] | frozenset[str], then: str = "", params: Sequence[Any] = ()) -> Any:
    """Take the locks of `names` until the transaction ends, in one global order (no deadlock); `then`, a
    query run once they are held, in the same round trip: its first row (None without `then`, or when it
    returns none). Elsewhere than on PostgreSQL, only `then` runs."""
    statements, values = ([], []) if connection.vendor != "postgresql" else _locking(names)
    if then:
        statements, values = [*statements, then], [*values, *params]
    if not statements:
        return None
    with connection.cursor() as cursor:
        # One round trip: the statements of one query string run one after another, in this order (the
        # simple query protocol of psycopg2; a driver binding parameters server-side takes one at a time).
        cursor.execute(";".join(statements), values)
        return cursor.fetchone() if then else None


def _locking(names: set[str] | frozenset[str]) -> tuple[list[str], list[int]]:
    keys = sorted({_key(name) for name in names})
    return ["SELECT pg_advisory_xact_lock(%s)"] * len(keys), keys
