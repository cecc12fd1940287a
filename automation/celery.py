"""The Celery application `automation.celery:app`, configured from Django settings."""

from __future__ import annotations

import os
from typing import Any

from automation.broker.publishing import App
from automation.discovery import task_modules
from automation.fleet import heartbeat, throughput

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")

# Its messages go out with their `task-sent` events in one round trip (automation/broker/publishing.py).
app = App("automation")


def _celery_settings() -> dict[str, Any]:
    """The CELERY_* Django settings, read once: Celery looks dozens of them up per task, and each lookup
    through Django's lazy settings object costs far more than a dictionary's."""
    from django.conf import settings

    return {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}


app.config_from_object(_celery_settings(), namespace="CELERY")
# A process that sends a workflow's steps without their task classes loaded (the API server) does not
# subscribe to their results, which nothing waits on (automation/broker/results.py).
app.loader.override_backends = {
    "redis": "automation.broker.results:RedisBackend",
    "rediss": "automation.broker.results:RedisBackend",
}
# Tasks live in the top-level `tasks` package: one module per action family, the entry points and the
# monitoring jobs. Every module there is loaded; none is listed by hand.
app.conf.imports = task_modules()
# Each worker heartbeats (so its steps are known to be alive), and its pool processes finish their step
# when SIGTERM reaches the whole process group.
heartbeat.install(app)
# Each task finished is counted per queue in the broker's Redis, for the scaler of the engine's own workers.
throughput.install()
