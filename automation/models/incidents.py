"""Durable state of the incidents domain; changed only through automation.incidents.services."""

from __future__ import annotations

from django.db import models

from automation.incidents.choices import (
    ChangeKind,
    ChangeSource,
    EscalationStatus,
    EventKind,
    IncidentStatus,
    RemediationStatus,
)
from automation.models.alerting import SEVERITY_CHOICES, Alert


class Service(models.Model):
    """One service of the dependency graph, as declared in the `services:` document (position keeps the
    document's order)."""

    name = models.CharField(max_length=100, unique=True)
    depends_on = models.JSONField(default=list)
    owners = models.JSONField(default=list)
    description = models.TextField(blank=True, default="")
    position = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"service {self.name}"


class Incident(models.Model):
    """Correlated alerts and what happened to them: one thing gone wrong, handled as one."""

    title = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=IncidentStatus.CHOICES, default=IncidentStatus.TRIGGERED)
    #: The highest of its alerts'.
    severity = models.CharField(max_length=16, choices=SEVERITY_CHOICES)
    #: The services of its alerts, and the notification groups they were routed to (sorted, distinct).
    services = models.JSONField(default=list)
    group_keys = models.JSONField(default=list)
    opened_at = models.DateTimeField()
    #: The latest firing start of its alerts: the correlation window counts from it.
    last_fired_at = models.DateTimeField()
    #: Since when none of its alerts fires (None while one does): auto-resolve counts its hold from it.
    quiet_since = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True, default="")
    mitigated_at = models.DateTimeField(null=True, blank=True)
    mitigated_by = models.CharField(max_length=200, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    #: Who resolved it; empty when it resolved by itself.
    resolved_by = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "opened_at"], name="incident_status_opened"),
            models.Index(fields=["opened_at"], name="incident_opened"),
        ]

    def __str__(self) -> str:
        return f"incident {self.pk} {self.title} ({self.status})"


class IncidentAlert(models.Model):
    """One firing of one alert (its fingerprint and firing start) and the incident it joined. What the
    alert was when it joined is kept here: the alert row may be purged long after."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alerts", db_index=False)
    alert = models.ForeignKey(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="incident_firings"
    )
    fingerprint = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    service = models.CharField(max_length=200, blank=True, default="")
    severity = models.CharField(max_length=16, choices=SEVERITY_CHOICES)
    fired_at = models.DateTimeField()
    joined_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    #: Why it joined this incident (the correlation's reason).
    reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "fired_at"], name="incident_alert_firing")
        ]
        indexes = [
            models.Index(fields=["incident", "joined_at"], name="incident_alert_joined"),
            models.Index(fields=["service"], name="incident_alert_service"),
        ]


class IncidentEvent(models.Model):
    """One row of an incident's timeline: when, what, who (a person, or `engine`), and the alert or run it
    concerns, if any."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events", db_index=False)
    at = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=EventKind.CHOICES)
    actor = models.CharField(max_length=200, blank=True, default="")
    detail = models.TextField(blank=True, default="")
    #: The alert's fingerprint (its id in the alerting API), empty when the event concerns no alert.
    alert_fingerprint = models.CharField(max_length=40, blank=True, default="")
    run_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"], name="incident_event_at")]


class EscalationConfig(models.Model):
    """A single row (pk=1): the escalation document (users, schedules, policies), as validated JSON."""

    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)


class Escalation(models.Model):
    """The escalation of one incident, made when it opens: its policy (kept as it was when chosen), the
    next page (`level` of pass `round`, 0-based; `level` past the last: none left) and when it is due."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="escalation")
    status = models.CharField(
        max_length=16, choices=EscalationStatus.CHOICES, default=EscalationStatus.ACTIVE
    )
    #: Empty until a policy is chosen (at the first due time).
    policy = models.CharField(max_length=100, blank=True, default="")
    #: The chosen policy's levels, timeouts and repeats (`automation.incidents.escalation.Policy`).
    plan = models.JSONField(default=dict)
    level = models.IntegerField(default=0)
    round = models.IntegerField(default=0)
    #: None once it is over.
    next_due_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    #: Why the policy was chosen, or why it ended.
    reason = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_due_at"], name="escalation_due")]

    def __str__(self) -> str:
        return f"escalation of incident {self.incident_id} ({self.status})"


class EscalationPage(models.Model):
    """One level of one pass, paged: at most once (the unique key), with whom it reached and how (the
    receivers and their delivery runs) and which targets reached nobody."""

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="pages")
    level = models.IntegerField()
    round = models.IntegerField()
    due_at = models.DateTimeField()
    paged_at = models.DateTimeField()
    #: [{"receiver", "who", "via", "run_id"}]
    recipients = models.JSONField(default=list)
    skipped = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["escalation", "round", "level"], name="escalation_page_once")
        ]


class Change(models.Model):
    """One change to a service (a deploy, a config change, a workflow run acting on it), recorded through
    the API or the CLI or by the engine: evidence for root-cause analysis. `key` makes a recording
    idempotent (the engine's is `run:RUN:STEP`; a client may send its own)."""

    service = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ChangeKind.CHOICES)
    description = models.TextField(blank=True, default="")
    at = models.DateTimeField()
    #: Who made it (a person, a pipeline; `engine` for the engine's own).
    actor = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=16, choices=ChangeSource.CHOICES)
    run_id = models.UUIDField(null=True, blank=True)
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    recorded_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["service", "at"], name="change_service_at"),
            models.Index(fields=["at"], name="change_at"),
        ]

    def __str__(self) -> str:
        return f"change {self.kind} of {self.service} at {self.at:%Y-%m-%d %H:%M:%S}"


class RemediationConfig(models.Model):
    """A single row (pk=1): the remediation policies document, as validated JSON."""

    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)


class Remediation(models.Model):
    """One remediation: a policy acting on one firing of one alert (at most once: the unique key), what
    the guards decided and why, its run, its verification and its compensation. The guards count these
    rows: they are the shared state every worker and host decides from."""

    policy = models.CharField(max_length=100)
    workflow = models.CharField(max_length=200)
    alert = models.ForeignKey(Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    fingerprint = models.CharField(max_length=40)
    fired_at = models.DateTimeField()
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="remediations"
    )
    service = models.CharField(max_length=200, blank=True, default="")
    #: Replicas of its service it touches while active (the blast radius counts them).
    replicas = models.IntegerField(default=1)
    status = models.CharField(
        max_length=20, choices=RemediationStatus.CHOICES, default=RemediationStatus.REQUESTED
    )
    #: The guard that kept it from running (`automation.incidents.choices.Guard`), empty otherwise.
    guard = models.CharField(max_length=32, blank=True, default="")
    #: Why it is where it is (the last decision), for "why did nothing run?".
    detail = models.TextField(blank=True, default="")
    #: The policy as it was when requested (verification and guards are judged by it).
    plan = models.JSONField(default=dict)
    inputs = models.JSONField(default=dict)
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    #: Until when verification may see the fix work.
    verify_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=200, blank=True, default="")
    run_id = models.UUIDField(null=True, blank=True)
    compensation_run_id = models.UUIDField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "fingerprint", "fired_at"], name="remediation_once_per_firing"
            )
        ]
        indexes = [
            models.Index(fields=["status", "requested_at"], name="remediation_status"),
            models.Index(fields=["workflow", "started_at"], name="remediation_workflow_started"),
            models.Index(fields=["service", "started_at"], name="remediation_service_started"),
            models.Index(fields=["policy", "finished_at"], name="remediation_policy_finished"),
        ]

    def __str__(self) -> str:
        return f"remediation {self.pk} {self.policy} ({self.status})"
