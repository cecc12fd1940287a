"""Django application config of the automation engine."""

from __future__ import annotations

from django.apps import AppConfig


class AutomationAppConfig(AppConfig):
    name = "automation"
    label = "automation"
    verbose_name = "Automation engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_prerun

        # Connections are reused across tasks (CELERY_DB_REUSE_MAX); drop broken or expired ones first.
        task_prerun.connect(_close_old_connections, weak=False)


def _close_old_connections(**_: object) -> None:
    from django.db import close_old_connections

    close_old_connections()
