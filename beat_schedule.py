"""The static Beat schedule, merged into django-celery-beat's database when Beat starts.

Monitoring jobs run every `AutomationConfig.monitoring_interval` seconds (the applied config wins over
the default below); Beat notices changes made in the database without a restart.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MONITORING_INTERVAL = 60.0

#: Names of the entries whose period follows `monitoring_interval`.
MONITORING_JOBS = ("automation-redispatch-stalled-runs",)


def build_schedule(monitoring_interval: float = DEFAULT_MONITORING_INTERVAL) -> dict[str, dict[str, Any]]:
    return {
        "automation-redispatch-stalled-runs": {
            "task": "automation.monitoring.redispatch_stalled_runs",
            "schedule": float(monitoring_interval),
            "options": {"queue": "critical", "expires": float(monitoring_interval)},
        },
    }


BEAT_SCHEDULE = build_schedule()
