"""The embedded mode: with no broker configured, a Celery worker runs in a thread of this process."""

from __future__ import annotations

import threading
from typing import Any

from automation.delivery import INTAKE_QUEUE, PRIORITY_QUEUE_NAMES

_worker: Any = None
_lock = threading.Lock()


def ensure_worker() -> None:
    """Start the in-process worker (memory broker) once; a no-op when a real broker is configured."""
    global _worker
    from django.conf import settings

    if not settings.EMBEDDED or _worker is not None:
        return
    with _lock:
        if _worker is not None:
            return
        from automation.celery import app
        from automation.discovery import import_task_modules

        import_task_modules()

        worker = app.WorkController(
            pool_cls="threads",
            concurrency=4,
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            queues=[*PRIORITY_QUEUE_NAMES, INTAKE_QUEUE],
        )
        thread = threading.Thread(target=worker.start, name="automation-embedded-worker", daemon=True)
        thread.start()
        _worker = worker
