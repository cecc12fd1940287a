"""The static Beat schedule, merged into django-celery-beat's database when Beat starts.

Monitoring jobs run every `AutomationConfig.monitoring_interval` seconds (the applied config wins over
the default below); Beat notices changes made in the database without a restart.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MONITORING_INTERVAL = 60.0

#: Names of the entries whose period follows `monitoring_interval`.
MONITORING_JOBS = ("automation-redispatch-stalled-runs", "automation-settle-lost-steps")


def build_schedule(monitoring_interval: float = DEFAULT_MONITORING_INTERVAL) -> dict[str, dict[str, Any]]:
    every = float(monitoring_interval)
    options = {"queue": "critical", "expires": every}
    return {
        "automation-redispatch-stalled-runs": {
            "task": "automation.monitoring.redispatch_stalled_runs",
            "schedule": every,
            "options": options,
        },
        "automation-settle-lost-steps": {
            "task": "automation.monitoring.settle_lost_steps",
            "schedule": every,
            "options": options,
        },
    }


BEAT_SCHEDULE = build_schedule()
