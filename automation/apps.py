"""Django application config of the automation engine."""

from __future__ import annotations

from django.apps import AppConfig


class AutomationAppConfig(AppConfig):
    name = "automation"
    label = "automation"
    verbose_name = "Automation engine"
    default_auto_field = "django.db.models.BigAutoField"
