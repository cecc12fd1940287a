"""Workflows and their immutable, versioned definitions."""

from __future__ import annotations

from django.db import models


class Workflow(models.Model):
    name = models.CharField(max_length=200, unique=True)
    latest_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkflowVersion(models.Model):
    """One registered definition; never changed once written, so a run keeps the version it started with."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "version"], name="workflow_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name}@v{self.version}"
