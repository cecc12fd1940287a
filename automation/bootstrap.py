"""Setting Django up for the engine, the CLI and library users, and the embedded mode's schema."""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_ready = False


def setup() -> None:
    """Configure Django once (settings from the environment); in embedded mode, create the schema."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
        import django
        from django.apps import apps

        if not apps.ready:
            django.setup()
        from django.conf import settings

        if settings.EMBEDDED and not os.environ.get("DATABASE_URL"):
            settings.STATE_DIR.mkdir(parents=True, exist_ok=True)
            migrate(verbosity=0)
        _ready = True


def migrate(*, verbosity: int = 1) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)
