"""Transaction-scoped advisory locks by name (PostgreSQL), each domain in a namespace of its own: what one
caller at a time must decide for a name (an incident for a group of alerts, the run of one firing) is
decided under the name's lock, held until the caller's transaction ends. SQLite serializes writers
already: there, only the query that follows the locks runs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection


def lock_key(namespace: str, name: str) -> int:
    """The advisory lock (a PostgreSQL bigint) of `name` in `namespace`."""
    digest = hashlib.blake2b(f"{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock(
    namespace: str,
    names: Iterable[str],
    then: str = "",
    params: Sequence[Any] = (),
    *,
    durable: bool = True,
) -> Any:
    """Take the locks of `names` until the transaction ends, in one global order (no deadlock); `then`, a
    query run once they are held, in the same round trip: its first row (None without `then`, or when it
    returns none). Elsewhere than on PostgreSQL, only `then` runs. `durable=False`: in a transaction the
    caller opened just for this (the outermost block), its commit does not wait for the disk."""
    statements: list[str] = []
    values: list[Any] = []
    if connection.vendor == "postgresql":
        if not durable and connection.in_atomic_block and not connection.savepoint_ids:
            statements.append("SET LOCAL synchronous_commit TO OFF")
        keys = sorted({lock_key(namespace, name) for name in names})
        statements += ["SELECT pg_advisory_xact_lock(%s)"] * len(keys)
        values += keys
    if then:
        statements.append(then)
        values += params
    if not statements:
        return None
    with connection.cursor() as cursor:
        # One round trip: the statements of one query string run one after another, in this order (the
        # simple query protocol of psycopg2; a driver binding parameters server-side takes one at a time),
        # each reading what was committed when it started: `then` sees what was committed while a lock
        # was awaited.
        cursor.execute(";".join(statements), values)
        return cursor.fetchone() if then else None
