"""Beat wiring: the DatabaseScheduler that merges beat_schedule.py, and the monitoring interval knob."""

from __future__ import annotations

from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

import beat_schedule


class AutomationScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler, with the static schedule at the applied monitoring interval."""

    def setup_schedule(self) -> None:
        from automation.engine_settings import current_config

        self.app.conf.beat_schedule = beat_schedule.build_schedule(current_config().monitoring_interval)
        super().setup_schedule()


def set_monitoring_interval(seconds: int) -> None:
    """Store the monitoring jobs' period in Beat's tables; a running Beat picks it up by itself."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(every=int(seconds), period=IntervalSchedule.SECONDS)
    entries: dict[str, Any] = beat_schedule.build_schedule(seconds)
    for name in beat_schedule.MONITORING_JOBS:
        entry = entries[name]
        task, created = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": entry["task"], "interval": interval, "queue": entry["options"]["queue"]},
        )
        if not created and task.interval_id != interval.id:
            task.interval = interval
            task.save()
