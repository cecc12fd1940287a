"""Prometheus metrics of the engine (the seed's names), computed from the durable state on scrape.

Counted from durable events, not by each process: `workflow_executions_total` and the run and step
durations are read from the finished runs and steps in PostgreSQL (runs are never deleted), so every API
process and host answers the same totals, a worker restart loses nothing, and no process keeps counts
that die with it — which prometheus-client's multiprocess mode would need shared files and one host for.
The reads are grouped aggregates, cached for `CACHE_SECONDS` per process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
#: A scrape within this many seconds of the last reads the same aggregates.
CACHE_SECONDS = 5.0
#: Upper bounds (seconds) of the duration histograms' buckets.
RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

WORKFLOW_RUNS = Gauge(
    "automation_workflow_runs", "Workflow runs by status", ["workflow", "status"], registry=REGISTRY
)
ACTIVE_WORKFLOWS = Gauge("active_workflows", "Runs pending or running", registry=REGISTRY)
OLDEST_ACTIVE_RUN = Gauge(
    "automation_oldest_active_run_age_seconds",
    "Age of the oldest run still pending or running",
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "automation_queue_depth",
    "Messages waiting in a queue of the broker (ready, and taken but not finished)",
    ["queue", "state"],
    registry=REGISTRY,
)
SCALING_DECISIONS = Gauge(
    "automation_scaling_decisions_last_day",
    "Scaling loop decisions of the last 24 h by action",
    ["action"],
    registry=REGISTRY,
)
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
    from django.db.models import Count
    from django.utils import timezone

    from automation.choices import RunStatus
    from automation.coordination import get_coordinator
    from automation.fleet.services import list_nodes
    from automation.models import DeadLetter, WorkflowRun

    WORKFLOW_RUNS.clear()
    for row in WorkflowRun.objects.values("workflow__name", "status").annotate(n=Count("id")):
        WORKFLOW_RUNS.labels(row["workflow__name"], row["status"]).set(row["n"])
    active = WorkflowRun.objects.filter(status__in=RunStatus.ACTIVE)
    ACTIVE_WORKFLOWS.set(active.count())
    oldest = active.order_by("created_at").values_list("created_at", flat=True).first()
    OLDEST_ACTIVE_RUN.set((timezone.now() - oldest).total_seconds() if oldest else 0.0)
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
    _refresh_scaling()
    _refresh_queues()


def _refresh_scaling() -> None:
    from django.db.models import Count
    from django.utils import timezone

    from automation.models import ScalingDecision

    SCALING_DECISIONS.clear()
    recent = ScalingDecision.objects.filter(at__gte=timezone.now() - timedelta(days=1))
    for action, count in recent.values_list("action").annotate(n=Count("id")):
        SCALING_DECISIONS.labels(action).set(count)


def _refresh_queues() -> None:
    """Each priority queue's backlog, read from the broker (nothing when the broker is not Redis or is
    down: the metric is then absent, and the rule on a growing backlog does not fire on stale values)."""
    import logging

    from automation.choices import PRIORITY_QUEUES
    from automation.delivery import INTAKE_QUEUE

    QUEUE_DEPTH.clear()
    try:
        from automation.scaling.queues import broker_client, broker_keys, read_queue_loads

        queues = sorted({*PRIORITY_QUEUES.values(), INTAKE_QUEUE})
        loads = read_queue_loads(broker_client(), queues, keys=broker_keys())
    except Exception as exc:  # noqa: BLE001 - a metric never fails the scrape
        logging.getLogger("automation.metrics").debug("queue depth not read: %r", exc)
        return
    for load in loads:
        QUEUE_DEPTH.labels(load.queue, "ready").set(load.ready)
        QUEUE_DEPTH.labels(load.queue, "reserved").set(load.reserved)


def _duration_rows(model: Any, label: str, buckets: Iterable[float]) -> list[dict[str, Any]]:
    """Finished rows of `model` grouped by `label`: count, summed seconds, and count per bucket bound."""
    from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

    from automation.choices import RunStatus

    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    finished = model.objects.filter(
        status__in=RunStatus.TERMINAL, started_at__isnull=False, finished_at__isnull=False
    ).annotate(duration=duration)
    counts = {
        f"le{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(buckets)
    }
    return list(finished.values(label).annotate(total=Count("id"), seconds=Sum("duration"), **counts))


def _status_rows(model: Any, label: str) -> list[tuple[str, str, int]]:
    from django.db.models import Count

    from automation.choices import RunStatus

    rows = model.objects.filter(status__in=RunStatus.TERMINAL).values_list(label, "status")
    return [(name, status, n) for name, status, n in rows.annotate(n=Count("id"))]


def _histogram(
    name: str, doc: str, label: str, rows: list[dict[str, Any]], key: str, buckets: tuple[float, ...]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for row in rows:
        cumulative = [(f"{bound:g}", float(row[f"le{i}"])) for i, bound in enumerate(buckets)]
        cumulative.append(("+Inf", float(row["total"])))
        seconds = row["seconds"]
        total = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds or 0.0)
        family.add_metric([str(row[key])], cumulative, total)
    return family


class DurableCounts(Collector):
    """The counters and histograms read from finished runs and steps (see the module's docstring)."""

    def __init__(self) -> None:
        self._cached: tuple[float, list[Any]] | None = None

    def describe(self) -> list[Any]:
        return []  # computed on collect only (no database access when the collector is registered)

    def collect(self) -> Iterator[Any]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > CACHE_SECONDS:
            self._cached = (now, self._read())
        yield from self._cached[1]

    def _read(self) -> list[Any]:
        from automation.models import StepRun, WorkflowRun

        runs = CounterMetricFamily(
            "workflow_executions", "Finished workflow runs by final status", labels=["workflow", "status"]
        )
        for workflow, status, count in _status_rows(WorkflowRun, "workflow__name"):
            runs.add_metric([workflow, status], count)
        steps = CounterMetricFamily(
            "automation_action_executions",
            "Finished steps by action type and final status",
            labels=["action_type", "status"],
        )
        for action_type, status, count in _status_rows(StepRun, "action_type"):
            steps.add_metric([action_type, status], count)
        run_seconds = _histogram(
            "workflow_execution_duration_seconds",
            "Time from a run's start to its end",
            "workflow",
            _duration_rows(WorkflowRun, "workflow__name", RUN_BUCKETS),
            "workflow__name",
            RUN_BUCKETS,
        )
        step_seconds = _histogram(
            "automation_action_duration_seconds",
            "Time from a step's first claim to its end (retries and waits included)",
            "action_type",
            _duration_rows(StepRun, "action_type", STEP_BUCKETS),
            "action_type",
            STEP_BUCKETS,
        )
        return [runs, run_seconds, steps, step_seconds]


REGISTRY.register(DurableCounts())


def _refresh_alerting() -> None:
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
