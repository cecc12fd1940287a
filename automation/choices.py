"""Enumerations of the public API and the status choices of runs and steps."""

from __future__ import annotations

from enum import StrEnum


class AutomationLevel(StrEnum):
    """How far the engine may act on its own; stored and exposed for remediation policies."""

    MANUAL = "manual"
    SUPERVISED = "supervised"
    SEMI_AUTONOMOUS = "semi_autonomous"
    AUTONOMOUS = "autonomous"


class Priority(StrEnum):
    """A workflow's priority; each maps to one Celery queue that workers may consume separately."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    NORMAL = "normal"
    LOW = "low"

    @property
    def queue(self) -> str:
        return PRIORITY_QUEUES[self]


PRIORITY_QUEUES: dict[Priority, str] = {
    Priority.CRITICAL: "critical",
    Priority.HIGH: "high",
    Priority.MEDIUM: "default",
    Priority.NORMAL: "default",
    Priority.LOW: "low",
}


class AlertSeverity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class RunStatus:
    """Statuses of a workflow run and of each of its steps."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    CHOICES = (
        (PENDING, "Pending"),
        (RUNNING, "Running"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
        (CANCELLED, "Cancelled"),
        (SKIPPED, "Skipped"),
    )
    ACTIVE = (PENDING, RUNNING)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED, SKIPPED)
