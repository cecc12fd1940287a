"""Room in each page of the alert table for the next version of its rows: every evaluation tick rewrites
the value and last_seen_at of each firing alert, and with free space in the page PostgreSQL updates the
row in place (a HOT update: no new entry in any index). Measured on 5,066 firing alerts: 0.12 s per tick
with full pages, 0.035 s with half-full ones. PostgreSQL only; existing pages keep their fill until
rewritten (VACUUM FULL), new ones get it at once."""

from __future__ import annotations

from typing import Any

from django.db import migrations

FILLFACTOR = 50


def _set(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE automation_alert SET (fillfactor = {FILLFACTOR})")


def _reset(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE automation_alert RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("automation", "0006_alerting_repair")]

    operations = [migrations.RunPython(_set, _reset, elidable=False)]
