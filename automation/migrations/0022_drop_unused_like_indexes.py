"""Drop the `varchar_pattern_ops` copies Django adds beside the unique index of a CharField on PostgreSQL
(for `LIKE 'prefix%'` lookups) where nothing looks values up by prefix: every alert, log line, pushed
series and recorded change otherwise writes one more index entry. The unique indexes stay. PostgreSQL
only, dropped CONCURRENTLY (outside a transaction: writes to these tables go on meanwhile). An AlterField
that makes Django create the field's indexes again (its type, `unique` or `db_index`) would bring its copy
back: drop it again then."""

from __future__ import annotations

from typing import Any

from django.db import migrations

#: (model, field) whose `_like` index goes.
UNUSED = [
    ("alert", "fingerprint"),
    ("alertlog", "once_key"),
    ("metricseries", "fingerprint"),
    ("change", "key"),
]


def _names(apps: Any, schema_editor: Any) -> list[tuple[str, str, str]]:
    found = []
    for model_name, field_name in UNUSED:
        model = apps.get_model("automation", model_name)
        column = model._meta.get_field(field_name).column
        table = model._meta.db_table
        found.append((table, column, schema_editor._create_index_name(table, [column], suffix="_like")))
    return found


def _drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for _, _, name in _names(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


def _create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for table, column, name in _names(apps, schema_editor):
        index = f"{quote(name)} ON {quote(table)} ({quote(column)} varchar_pattern_ops)"
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index}")


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction
    dependencies = [("automation", "0021_lean_run_and_audit_indexes")]

    operations = [migrations.RunPython(_drop, _create, elidable=False)]
