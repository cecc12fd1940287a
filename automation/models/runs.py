"""Runs of workflows and of each of their steps; changed only through automation.runs.services."""

from __future__ import annotations

import uuid

from django.db import models

from automation.choices import RunStatus


class WorkflowRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the unique (workflow, idempotency_key) constraint starts with it and serves every
    # lookup by workflow; one index fewer to write for each run stored and each change of its status.
    workflow = models.ForeignKey(
        "automation.Workflow", on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    version = models.ForeignKey("automation.WorkflowVersion", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.CHOICES, default=RunStatus.PENDING)
    inputs = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    queue = models.CharField(max_length=32, default="default")
    #: Steps without dependents still to finish: each finishes only after all its upstream steps, so the run
    #: has succeeded when none is left. Only those steps touch this row (no hot row in a wide fan-out).
    remaining_sinks = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    #: When the canvas was last sent (set when the run is stored, by the process that then sends it).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    #: How many times the canvas was sent again by recovery: messages of an older generation retire
    #: themselves at the step guard, so only the newest canvas moves the run.
    generation = models.IntegerField(default=0)
    #: Set when a worker could not send the successors of a finished step (the broker refused the
    #: publish): the recovery job sends the run again on its next pass.
    redispatch_requested_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Set once the finished run is added to the metric tallies (automation.runs.tallies): the scrape
    #: reads the tallies and only the finished runs not yet added, never the whole table.
    counted = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "idempotency_key"], name="run_idempotency_key_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="run_status_created"),
            models.Index(
                fields=["redispatch_requested_at"],
                name="run_redispatch_requested",
                condition=models.Q(redispatch_requested_at__isnull=False),
            ),
            models.Index(fields=["id"], name="run_uncounted", condition=models.Q(counted=False)),
        ]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"


class StepRun(models.Model):
    # No index of its own: the unique (run, name) constraint starts with run and serves every lookup.
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps", db_index=False)
    name = models.CharField(max_length=200)
    action_type = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=RunStatus.CHOICES, default=RunStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # True while the step waits on purpose (control.wait, an approval, a full action semaphore): its next
    # execution resumes it rather than counting a new attempt.
    deferred = models.BooleanField(default=False)
    state = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Last time the step moved (claimed, parked, resumed, finished): a run whose steps all stopped moving
    #: for long lost its messages, and is dispatched again.
    touched_at = models.DateTimeField(null=True, blank=True)
    #: The worker node and process executing (or that last executed) the step: a second message for a
    #: running step waits while they are alive, and takes the step over once they are not.
    claimed_node = models.CharField(max_length=64, default="", blank=True)
    claimed_pid = models.IntegerField(null=True, blank=True)
    #: Chosen afresh by each claim; empty once the claim is released (the attempt failed and a retry is
    #: due). A message retried after a database error carries its claim's token to take the step back.
    claim_token = models.CharField(max_length=32, default="", blank=True)
    #: When a deferred step's message is due again; overdue by much, its message was lost.
    due_at = models.DateTimeField(null=True, blank=True)
    #: As WorkflowRun.counted. Claims and completions never write it, so their updates stay HOT.
    counted = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["run", "position"]
        # No index on the columns a claim or a completion writes: updates of a step row stay HOT.
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="step_run_name_unique")]
        indexes = [models.Index(fields=["id"], name="step_uncounted", condition=models.Q(counted=False))]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class RunTally(models.Model):
    """Finished runs (kind `run`, label = workflow) or steps (kind `step`, label = action type) of one
    final status, already added up for the metrics: their number, how many had a start and an end,
    their summed duration and their count per duration bucket (cumulative, the bounds of
    automation.runs.tallies). Changed only through automation.runs.tallies."""

    kind = models.CharField(max_length=8)
    label = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=RunStatus.CHOICES)
    count = models.BigIntegerField(default=0)
    timed = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    buckets = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "label", "status"], name="run_tally_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.label} {self.status}: {self.count}"
