"""Durable state of the alerting domain; changed only through automation.alerting.services."""

from __future__ import annotations

import uuid

from django.db import models

from automation.alerting.choices import AlertOrigin, AlertState, Decision, SourceKind
from automation.choices import AlertSeverity

SEVERITY_CHOICES = [(s.value, s.value) for s in AlertSeverity]


class MetricSeries(models.Model):
    """One pushed series: a metric and a label set (`fingerprint` is their digest)."""

    metric = models.CharField(max_length=200)
    labels = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=40, unique=True)
    #: Time of its newest sample: retention drops series with nothing newer than the horizon.
    last_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["metric"], name="series_metric")]

    def __str__(self) -> str:
        return f"{self.metric}{self.labels}"


class MetricSample(models.Model):
    # No index of its own: the unique (series, at) constraint starts with series and serves every range read.
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="samples", db_index=False)
    at = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "at"], name="sample_series_at_unique")]
        indexes = [models.Index(fields=["at"], name="sample_at")]


class AlertRule(models.Model):
    """A rule the engine evaluates every `monitoring_interval`; `document` is its validated definition."""

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=16, choices=SourceKind.CHOICES, default=SourceKind.PUSH)
    severity = models.CharField(max_length=16, choices=SEVERITY_CHOICES, default=AlertSeverity.MEDIUM.value)
    document = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rule {self.name}"


class Alert(models.Model):
    """One alert: a rule and one label set, or an alert received from Alertmanager or the events endpoint."""

    fingerprint = models.CharField(max_length=40, unique=True)
    rule = models.ForeignKey(
        AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    name = models.CharField(max_length=200)
    origin = models.CharField(max_length=16, choices=AlertOrigin.CHOICES, default=AlertOrigin.RULE)
    severity = models.CharField(max_length=16, choices=SEVERITY_CHOICES, default=AlertSeverity.MEDIUM.value)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=AlertState.CHOICES, default=AlertState.INACTIVE)
    value = models.FloatField(null=True, blank=True)
    #: Since when the condition has held, judged from the data (or the sender's startsAt).
    active_since = models.DateTimeField(null=True, blank=True)
    #: Start of the current (or last) firing: with the fingerprint, it keys the one run a firing starts.
    fired_at = models.DateTimeField(null=True, blank=True)
    #: Last time the condition held (or the sender said firing): `keep_firing_for` counts from here.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    #: Times of the recent state changes (pending/firing/resolved), for flap damping.
    changes = models.JSONField(default=list)
    flapping = models.BooleanField(default=False)
    #: When it last started flapping: it is notified once per flapping spell.
    flapping_since = models.DateTimeField(null=True, blank=True)
    #: When the state last changed, and the transition (its `fired_at` or `resolved_at`) whose pipeline is
    #: done: one changed but not handled for a while is taken up again (services/pipeline.py `repair`).
    changed_at = models.DateTimeField(null=True, blank=True)
    handled_for = models.DateTimeField(null=True, blank=True)
    last_run_id = models.UUIDField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "name"], name="alert_state_name")]

    def __str__(self) -> str:
        return f"alert {self.name} {self.labels} ({self.state})"


class AlertLog(models.Model):
    """Every decision about every alert: "why was I (not) paged?"."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="log", db_index=False)
    at = models.DateTimeField()
    decision = models.CharField(max_length=24, choices=Decision.CHOICES)
    receiver = models.CharField(max_length=200, blank=True, default="")
    run_id = models.UUIDField(null=True, blank=True)
    detail = models.TextField(blank=True, default="")
    #: Set for decisions that must be recorded once however often they are reached (a redelivered tick).
    once_key = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["alert", "at"], name="alertlog_alert_at")]


class Silence(models.Model):
    """Mutes the alerts whose labels match every matcher, between `starts_at` and `ends_at`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    matchers = models.JSONField(default=list)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.CharField(max_length=200)
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at"], name="silence_ends_at")]


class AlertGroup(models.Model):
    """The alerts one route sends to one receiver with the same values of its `group_by` labels."""

    key = models.CharField(max_length=40, unique=True)
    receiver = models.CharField(max_length=200)
    route = models.CharField(max_length=200)
    group_labels = models.JSONField(default=dict)
    #: When an alert joined while nothing was waiting: the first notification waits `group_wait` from it.
    waiting_since = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    #: Digest of what was last notified (fingerprints and states): no change, no notification before
    #: `repeat_interval`.
    last_digest = models.CharField(max_length=40, blank=True, default="")
    #: Notifications sent; the next one claims `sequence + 1` with a guarded update (one sender).
    sequence = models.IntegerField(default=0)
    alerts = models.ManyToManyField(Alert, related_name="groups")


class AlertingConfig(models.Model):
    """A single row (pk=1): the routing tree, receivers and inhibition rules, as validated JSON."""

    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
