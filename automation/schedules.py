"""Beat wiring: the DatabaseScheduler that merges beat_schedule.py, fires each slot once however many
Beats run, and follows the monitoring interval knob."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from celery.schedules import schedule as interval_schedule
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

import beat_schedule

logger = logging.getLogger("automation.beat")

#: Tasks that decide per time slot: Beat passes them the time it sent them (`now`).
STAMPED_TASKS = frozenset(
    {"automation.scaling.evaluate", "automation.scaling.evaluate_pools", "automation.schedules.run_workflow"}
)
#: Fired slots are kept this long (the unique key is all that matters; old ones are pruned).
SLOT_RETENTION = timedelta(days=1)


def _period(entry: Any) -> float:
    """An entry's period in seconds: its interval's, a minute for anything else."""
    if isinstance(entry.schedule, interval_schedule):
        return max(float(entry.schedule.seconds), 1.0)
    return 60.0


def slot_of(entry: Any, now: float | None = None) -> int:
    """The time slot an entry's send belongs to: its period for an interval, the minute otherwise.

    A Beat never sends an interval job twice in one slot (sends are at least one period apart), so a
    second send in a slot can only come from a second Beat.
    """
    now = time.time() if now is None else now
    return int(now // _period(entry))


def claim_slot(name: str, slot: int, *, spacing: float | None = None) -> bool:
    """Record that `name` is sent in `slot`; False when a Beat already sent it there, or, with `spacing`
    (seconds), less than that long ago in any slot.

    Two Beats send an interval job out of phase: one just before a slot boundary and the other just after
    it claim two slots and would both send, a fraction of a period apart. The spacing (half a period, from
    `apply_entry`) refuses the second. On PostgreSQL the check and the insert hold the entry's advisory
    lock, so two Beats cannot both pass the check."""
    from automation.locks import lock
    from automation.models import BeatSlot

    key = name[:200]
    try:
        with transaction.atomic():
            if spacing is not None:
                lock("beat", [key])
                recent = timezone.now() - timedelta(seconds=spacing)
                if BeatSlot.objects.filter(name=key, fired_at__gt=recent).exists():
                    return False
            BeatSlot.objects.create(name=key, slot=slot)
    except IntegrityError:
        return False
    return True


class AutomationScheduler(DatabaseScheduler):  # type: ignore[misc]
    """django-celery-beat's DatabaseScheduler, with the static schedule at the applied monitoring
    interval, and a slot claimed in PostgreSQL before each send."""

    _sends = 0

    def setup_schedule(self) -> None:
        from automation.config import current_config

        self.app.conf.beat_schedule = beat_schedule.build_schedule(current_config().monitoring_interval)
        super().setup_schedule()

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        try:
            claimed = claim_slot(entry.name, slot_of(entry), spacing=_period(entry) / 2)
        except Exception as exc:  # noqa: BLE001 - without the database nothing can be sent safely once
            logger.error("beat: %s not sent, its slot could not be claimed: %s", entry.name, exc)
            from django.db import connection

            connection.close()
            return
        if not claimed:
            logger.info("beat: %s already sent for this slot by another Beat", entry.name)
            return
        if entry.task in STAMPED_TASKS:
            # The send time, not the worker's clock when it takes the message: sends are a period apart,
            # so two ticks never fall in one decision slot however late their messages are taken.
            entry.kwargs = {**(entry.kwargs or {}), "now": time.time()}
        super().apply_entry(entry, producer=producer)
        self._sends += 1
        if self._sends % 500 == 1:
            self._prune_slots()

    def _prune_slots(self) -> None:
        from django.utils import timezone

        from automation.models import BeatSlot

        BeatSlot.objects.filter(fired_at__lt=timezone.now() - SLOT_RETENTION).delete()


def set_monitoring_interval(seconds: int) -> None:
    """Store the monitoring jobs' period in Beat's tables; a running Beat picks it up by itself."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(every=int(seconds), period=IntervalSchedule.SECONDS)
    entries: dict[str, Any] = beat_schedule.build_schedule(seconds)
    for name in beat_schedule.MONITORING_JOBS:
        entry = entries[name]
        # A job not taken by a worker within its period is dropped: the next one is on its way.
        expire = int(entry["options"]["expire_seconds"])
        task, created = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": entry["task"],
                "interval": interval,
                "queue": entry["options"]["queue"],
                "expire_seconds": expire,
            },
        )
        if not created and (task.interval_id != interval.id or task.expire_seconds != expire):
            task.interval = interval
            task.expire_seconds = expire
            task.save()
