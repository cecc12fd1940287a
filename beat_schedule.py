"""The static Beat schedule, merged into django-celery-beat's database when Beat starts.

Recovery runs every `RECOVERY_INTERVAL` seconds whatever the config says: a worker's death or a lost
message is repaired within seconds; the worker pools' scaling tick (`POOL_INTERVAL`) and the flush of
notification groups have fixed periods too. The slower sweeps run every
`AutomationConfig.monitoring_interval` seconds (the applied config wins over the default below); Beat
notices changes made in the database without a restart, and only one Beat sends each slot however many
run.
"""

from __future__ import annotations

import os
from typing import Any

from automation.delivery import MONITORING_QUEUE
from automation.scaling.pooltrack import POOL_INTERVAL

DEFAULT_MONITORING_INTERVAL = 60.0
RECOVERY_INTERVAL = float(os.environ.get("AUTOMATION_RECOVERY_INTERVAL", "10"))

#: Notification groups are flushed this often: group_wait and group_interval are honoured to within it.
FLUSH_INTERVAL = float(os.environ.get("AUTOMATION_ALERT_FLUSH_INTERVAL", "5"))

#: Forecasting targets due for tuning are looked for this often (each is tuned at most once a day).
TUNE_INTERVAL = 3600.0

#: Open incidents are checked this often for auto-resolve: the hold time is honoured to within it.
INCIDENT_SWEEP_INTERVAL = float(os.environ.get("AUTOMATION_INCIDENT_SWEEP_INTERVAL", "15"))

#: Escalations are advanced this often: a level is paged within this of its due time (and when an incident
#: opens, its first level at once: the tick is nudged).
ESCALATION_INTERVAL = float(os.environ.get("AUTOMATION_ESCALATION_INTERVAL", "5"))

#: Finished runs and steps are added to the metric tallies this often (automation/runs/tallies.py).
TALLY_INTERVAL = 60.0

#: Remediations are followed this often: a run's end is judged, and a fix verified, within it.
REMEDIATION_INTERVAL = float(os.environ.get("AUTOMATION_REMEDIATION_INTERVAL", "5"))

#: Names of the entries whose period follows `monitoring_interval`.
MONITORING_JOBS = (
    "automation-redispatch-stalled-runs",
    "automation-settle-lost-steps",
    "automation-alerting-evaluate",
    "automation-scaling-evaluate",
)


def build_schedule(monitoring_interval: float = DEFAULT_MONITORING_INTERVAL) -> dict[str, dict[str, Any]]:
    every = float(monitoring_interval)
    return {
        "automation-recover-runs": {
            "task": "automation.monitoring.recover_runs",
            "schedule": RECOVERY_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": RECOVERY_INTERVAL},
        },
        "automation-redispatch-stalled-runs": {
            "task": "automation.monitoring.redispatch_stalled_runs",
            "schedule": every,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": every},
        },
        "automation-settle-lost-steps": {
            "task": "automation.monitoring.settle_lost_steps",
            "schedule": every,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": every},
        },
        "automation-add-up-finished": {
            "task": "automation.monitoring.add_up_finished",
            "schedule": TALLY_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": TALLY_INTERVAL},
        },
        "automation-alerting-evaluate": {
            "task": "automation.alerting.evaluate",
            "schedule": every,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": every},
        },
        # Sends nothing while AutomationConfig.enable_predictive_scaling is off.
        "automation-scaling-evaluate": {
            "task": "automation.scaling.evaluate",
            "schedule": every,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": every},
        },
        # Tuning of the forecasting targets on their own past: hourly, each target once a day at most;
        # does nothing while AutomationConfig.enable_ml_optimization is off.
        "automation-scaling-tune": {
            "task": "automation.scaling.tune",
            "schedule": TUNE_INTERVAL,
            # minutes of fitting: never on the queue of the seconds-critical ticks (escalation, pools)
            "options": {"queue": "low", "expire_seconds": TUNE_INTERVAL},
        },
        # The engine's own worker pools (celery scaling targets): a flood is seen within seconds.
        "automation-scaling-pools": {
            "task": "automation.scaling.evaluate_pools",
            "schedule": POOL_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": POOL_INTERVAL},
        },
        "automation-alerting-flush-groups": {
            "task": "automation.alerting.flush_groups",
            "schedule": FLUSH_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": FLUSH_INTERVAL},
        },
        "automation-incidents-auto-resolve": {
            "task": "automation.incidents.auto_resolve",
            "schedule": INCIDENT_SWEEP_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": INCIDENT_SWEEP_INTERVAL},
        },
        "automation-incidents-escalate": {
            "task": "automation.incidents.escalate",
            "schedule": ESCALATION_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": ESCALATION_INTERVAL},
        },
        "automation-compensate-failed-runs": {
            "task": "automation.monitoring.compensate_failed_runs",
            "schedule": 30.0,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": 30.0},
        },
        "automation-incidents-follow-remediations": {
            "task": "automation.incidents.follow_remediations",
            "schedule": REMEDIATION_INTERVAL,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": REMEDIATION_INTERVAL},
        },
        "automation-alerting-purge-samples": {
            "task": "automation.alerting.purge_samples",
            "schedule": 3600.0,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": 3600.0},
        },
        "automation-scaling-purge-decisions": {
            "task": "automation.scaling.purge_decisions",
            "schedule": 3600.0,
            "options": {"queue": MONITORING_QUEUE, "expire_seconds": 3600.0},
        },
    }


BEAT_SCHEDULE = build_schedule()
