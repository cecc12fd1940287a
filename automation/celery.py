"""The Celery application `automation.celery:app`, configured from Django settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")

app = Celery("automation")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Action tasks live in the top-level `tasks` package, one module per action family.
app.conf.imports = (
    "tasks.workflow",
    "tasks.infrastructure",
    "tasks.notification",
    "tasks.http",
    "tasks.control",
    "tasks.monitoring",
)
