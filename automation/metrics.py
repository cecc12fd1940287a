"""Prometheus metrics of the engine (the seed's names), computed from the durable state on scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

WORKFLOW_RUNS = Gauge(
    "automation_workflow_runs", "Workflow runs by status", ["workflow", "status"], registry=REGISTRY
)
ACTIVE_WORKFLOWS = Gauge("automation_active_workflows", "Runs pending or running", registry=REGISTRY)
RUNNING_ACTIONS = Gauge(
    "automation_running_actions", "Actions holding a fleet-wide slot right now", registry=REGISTRY
)
DEAD_LETTERS = Gauge(
    "automation_dead_letters", "Messages set aside because no worker could run them", registry=REGISTRY
)
WORKER_NODES = Gauge(
    "automation_worker_nodes", "Worker nodes by heartbeat state", ["state"], registry=REGISTRY
)
ALERTS = Gauge("automation_alerts", "Alerts by state and severity", ["state", "severity"], registry=REGISTRY)
ACTIVE_SILENCES = Gauge("automation_active_silences", "Silences in effect now", registry=REGISTRY)
ALERT_DECISIONS = Gauge(
    "automation_alert_decisions_last_hour",
    "Notification-log decisions of the last hour (notified, silenced, inhibited, ...)",
    ["decision"],
    registry=REGISTRY,
)
EFFICIENCY = Gauge(
    "automation_efficiency_ratio", "Succeeded runs / finished runs (last 24 h)", registry=REGISTRY
)


def refresh_from_database() -> None:
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    from automation.choices import RunStatus
    from automation.coordination import get_coordinator
    from automation.fleet.services import list_nodes
    from automation.models import DeadLetter, WorkflowRun

    WORKFLOW_RUNS.clear()
    for row in WorkflowRun.objects.values("workflow__name", "status").annotate(n=Count("id")):
        WORKFLOW_RUNS.labels(row["workflow__name"], row["status"]).set(row["n"])
    ACTIVE_WORKFLOWS.set(WorkflowRun.objects.filter(status__in=RunStatus.ACTIVE).count())
    RUNNING_ACTIONS.set(get_coordinator().running_actions())
    recent = WorkflowRun.objects.filter(finished_at__gte=timezone.now() - timedelta(days=1))
    finished = recent.count()
    EFFICIENCY.set(recent.filter(status=RunStatus.SUCCEEDED).count() / finished if finished else 1.0)
    DEAD_LETTERS.set(DeadLetter.objects.count())
    WORKER_NODES.clear()
    states: dict[str, int] = {}
    for node in list_nodes():
        states[node.state] = states.get(node.state, 0) + 1
    for state, count in states.items():
        WORKER_NODES.labels(state).set(count)
    _refresh_alerting()


def _refresh_alerting() -> None:
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    from automation.models import Alert, AlertLog, Silence

    now = timezone.now()
    ALERTS.clear()
    for row in Alert.objects.values("state", "severity").annotate(n=Count("id")):
        ALERTS.labels(row["state"], row["severity"]).set(row["n"])
    ACTIVE_SILENCES.set(Silence.objects.filter(starts_at__lte=now, ends_at__gt=now).count())
    ALERT_DECISIONS.clear()
    recent = AlertLog.objects.filter(at__gte=now - timedelta(hours=1))
    for decision, count in recent.values_list("decision").annotate(n=Count("id")):
        ALERT_DECISIONS.labels(decision).set(count)
