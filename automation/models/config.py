"""The stored engine configuration: the AutomationConfig last applied, read by every worker."""

from __future__ import annotations

from django.db import models


class EngineConfig(models.Model):
    """A single row (pk=1) holding the applied AutomationConfig as JSON."""

    config = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"engine config ({self.updated_at})"
