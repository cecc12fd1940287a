"""The fleet's records: live worker nodes, messages set aside, Beat's fired slots, the broker's epoch."""

from __future__ import annotations

from django.db import models


class WorkerNode(models.Model):
    """One worker process tree, heartbeating every few seconds while it runs.

    Each heartbeat lists the task ids the node is executing right now: a running step that no live node
    lists (and that was not claimed moments ago) is not being executed, and may be taken over.
    """

    #: Chosen by the worker when it starts; inherited by its pool processes.
    id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    nodename = models.CharField(max_length=255, default="")
    main_pid = models.IntegerField(default=0)
    #: Task ids of the steps the node is executing, as ",id1,id2," (a portable LIKE target).
    executing = models.TextField(default=",")
    #: Task ids of the messages the node holds without executing them yet (prefetched, or waiting for
    #: their countdown): if it dies, those messages are lost until the broker's visibility timeout.
    holding = models.TextField(default=",")
    #: Since when its heartbeats have followed each other without a gap: a node judges others dead only
    #: once it has itself been fresh for a whole dead-after window (every live node has beaten since).
    fresh_since = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    #: Set after a warm shutdown drained every step it held: nothing of it needs recovering.
    stopped_at = models.DateTimeField(null=True, blank=True)
    #: Set when the recovery job found it dead and dispatched its runs again.
    reaped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.nodename or self.hostname} ({self.id})"


class DeadLetter(models.Model):
    """A message no worker could decode or route, set aside instead of crashing the worker."""

    queue = models.CharField(max_length=200, default="")
    reason = models.TextField()
    #: The raw message as received, cut to 64 KiB.
    payload = models.TextField()
    size = models.IntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    worker = models.CharField(max_length=255, default="")

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"dead letter {self.pk} from {self.queue}: {self.reason[:60]}"


class BeatSlot(models.Model):
    """A periodic job's time slot, recorded by the Beat that sends it: a second Beat skips the slot."""

    name = models.CharField(max_length=200)
    slot = models.BigIntegerField()
    fired_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "slot"], name="beat_slot_unique")]

    def __str__(self) -> str:
        return f"{self.name}@{self.slot}"


class BrokerEpoch(models.Model):
    """The epoch last seen in the broker (a random key written once): a new one means it lost its data."""

    epoch = models.CharField(max_length=64)
    seen_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.epoch
