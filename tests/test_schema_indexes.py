"""The hot tables carry the indexes their queries use, and no others (every index costs each write)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.usefixtures("engine")

#: Unique CharFields looked up by equality only: their unique index stays, Django's LIKE-pattern copy goes.
EQUALITY_ONLY = [
    ("automation_alert", "fingerprint"),
    ("automation_alertlog", "once_key"),
    ("automation_metricseries", "fingerprint"),
    ("automation_change", "key"),
]


def test_unique_columns_looked_up_by_equality_keep_one_index() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the LIKE-pattern copies exist on PostgreSQL only")
    with connection.cursor() as cursor:
        for table, column in EQUALITY_ONLY:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
                [table, f"%({column}%"],
            )
            found = [row[0] for row in cursor.fetchall()]
            assert len(found) == 1, (table, column, found)
            assert found[0].startswith("CREATE UNIQUE INDEX") and "pattern_ops" not in found[0]
