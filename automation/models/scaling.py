"""Durable state of the scaling domain; changed only through automation.scaling.services."""

from __future__ import annotations

from django.db import models

from automation.scaling.choices import Action, Basis, PolicyKind, TargetKind


class ScalingTarget(models.Model):
    """A service whose replicas the loop sets; `document` is its validated definition. `kind` says which
    loop decides for it: the forecasting tick (`service`) or the worker pools' tick (`celery`)."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=TargetKind.CHOICES, default=TargetKind.SERVICE)
    service = models.CharField(max_length=200)
    provider = models.CharField(max_length=100)
    policy = models.CharField(max_length=16, choices=PolicyKind.CHOICES)
    document = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"scaling target {self.name}"


class ScalingState(models.Model):
    """What the loop carries from one tick to the next, so that any worker continues where another stopped:
    the fitted forecaster (JSON, a few KB), the replicas last asked for, and the guards' clocks."""

    target = models.OneToOneField(
        ScalingTarget, on_delete=models.CASCADE, primary_key=True, related_name="state"
    )
    #: Digest of the definition parts the forecaster depends on (load, forecast): a change refits.
    fitted_for = models.CharField(max_length=40, blank=True, default="")
    forecaster = models.JSONField(null=True, blank=True)
    fitted_at = models.DateTimeField(null=True, blank=True)
    fit_seconds = models.FloatField(null=True, blank=True)
    #: When a fit was last tried, and why it failed (empty when it did not): the next try waits.
    fit_attempted_at = models.DateTimeField(null=True, blank=True)
    fit_error = models.TextField(blank=True, default="")
    requested_replicas = models.IntegerField(null=True, blank=True)
    last_run_id = models.UUIDField(null=True, blank=True)
    last_scale_up_at = models.DateTimeField(null=True, blank=True)
    last_change_at = models.DateTimeField(null=True, blank=True)
    #: The reactive policy's recent recommendations [(epoch s, replicas)], for its scale-down window.
    recommendations = models.JSONField(default=list)
    #: The forecast's recent record on this target (automation/scaling/trust.py), a few hundred bytes.
    trust = models.JSONField(default=dict)
    #: The last tuning of its quantile and lead time (automation/scaling/tuning.py), used while
    #: `enable_ml_optimization` is on and the definition is the one it was tuned for.
    tuning = models.JSONField(default=dict)
    #: A celery target's pool track (automation/scaling/pooltrack.py): its queue's recent readings, the
    #: pool policy's memory, the last per-worker throughput measured.
    pool = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class ScalingDecision(models.Model):
    """One decision of the loop for one target and one decision slot (its tick): what was observed and
    forecast, what was wanted and why, and the run it started. One per slot: a redelivered or second tick
    finds it and does nothing."""

    target = models.ForeignKey(
        ScalingTarget, on_delete=models.CASCADE, related_name="decisions", db_index=False
    )
    slot = models.BigIntegerField()
    at = models.DateTimeField()
    policy = models.CharField(max_length=16, choices=PolicyKind.CHOICES)
    basis = models.CharField(max_length=16, choices=Basis.CHOICES)
    action = models.CharField(max_length=16, choices=Action.CHOICES)
    observed_load = models.FloatField(null=True, blank=True)
    #: The forecast over the decision's window: the peak's time, mean and interval (lower, upper quantile).
    forecast_at = models.DateTimeField(null=True, blank=True)
    forecast_mean = models.FloatField(null=True, blank=True)
    forecast_lower = models.FloatField(null=True, blank=True)
    forecast_upper = models.FloatField(null=True, blank=True)
    #: The forecast path it read ({"times", "mean", "lower", "upper"}), for plots.
    forecast = models.JSONField(null=True, blank=True)
    model = models.CharField(max_length=100, blank=True, default="")
    current_replicas = models.IntegerField()
    desired_replicas = models.IntegerField()
    reasons = models.JSONField(default=list)
    run_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["target", "slot"], name="scaling_decision_slot")]
        indexes = [models.Index(fields=["target", "at"], name="scaling_decision_target_at")]
