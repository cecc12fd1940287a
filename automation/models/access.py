"""Durable state of the access domain; changed only through automation.access.services."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from automation.access.choices import AuditSource


class ApiToken(models.Model):
    """A bearer token: a user's, or a service's (no user). Only the sha256 of its secret is stored. Never
    deleted (revoked instead), and its user cannot be deleted while it exists (deactivate the user): a
    stored token, live or not, keeps authentication on (automation/access/services/tokens.py)."""

    name = models.CharField(max_length=100, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="api_tokens"
    )
    roles = models.JSONField(default=list)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, default="")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.name}"


class AuditEntry(models.Model):
    """One change, as it was made: append-only (no code path updates or deletes a row; on PostgreSQL a
    trigger refuses it)."""

    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=16, choices=AuditSource.CHOICES)
    via = models.CharField(max_length=100, default="", blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=300)
    before_digest = models.CharField(max_length=64, default="", blank=True)
    after_digest = models.CharField(max_length=64, default="", blank=True)
    summary = models.JSONField(default=dict)

    class Meta:
        # Actors are matched exactly: a plain index (a CharField's db_index adds a second, LIKE one).
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["actor"], name="audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_id}"
