"""Prometheus metrics of the engine (the seed's names), computed from the durable state on scrape.

Counted from durable events, not by each process: `workflow_executions_total` and the run and step
durations are read from the finished runs and steps in PostgreSQL, so every API process and host answers
the same totals, a worker restart loses nothing, and no process keeps counts that die with it — which
prometheus-client's multiprocess mode would need shared files and one host for. A scrape reads the
tallies Beat keeps of the finished rows plus the few not yet added (automation/runs/tallies.py), not the
whole run and step tables; the read is cached for `CACHE_SECONDS` per process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from automation.runs.tallies import BUCKETS, RUN, STEP, Counts, read_counts

REGISTRY = CollectorRegistry(auto_describe=True)
#: A scrape within this many seconds of the last reads the same aggregates.
CACHE_SECONDS = 5.0

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
    from django.utils import timezone

    from automation.choices import RunStatus
    from automation.coordination import get_coordinator
    from automation.fleet.services import list_nodes
    from automation.models import DeadLetter, WorkflowRun

    counts = _counts()
    WORKFLOW_RUNS.clear()
    for (workflow, status), done in counts.of(RUN).items():
        WORKFLOW_RUNS.labels(workflow, status).set(done.count)
    for (workflow, status), n in counts.active.items():
        WORKFLOW_RUNS.labels(workflow, status).set(n)
    ACTIVE_WORKFLOWS.set(sum(counts.active.values()))
    active = WorkflowRun.objects.filter(status__in=RunStatus.ACTIVE)
    oldest = active.order_by("created_at").values_list("created_at", flat=True).first()
    OLDEST_ACTIVE_RUN.set((timezone.now() - oldest).total_seconds() if oldest else 0.0)
    RUNNING_ACTIONS.set(get_coordinator().running_actions())
    # Runs created in the last day (the (status, created_at) index), of those that have finished.
    recent = WorkflowRun.objects.filter(
        status__in=RunStatus.TERMINAL, created_at__gte=timezone.now() - timedelta(days=1)
    )
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


_cached: tuple[float, Counts] | None = None


def _counts() -> Counts:
    """Every finished run and step and the active runs, read at most once per `CACHE_SECONDS`."""
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] > CACHE_SECONDS:
        _cached = (now, read_counts())
    return _cached[1]


def _histogram(name: str, doc: str, label: str, counts: Counts, kind: str) -> HistogramMetricFamily:
    bounds = BUCKETS[kind]
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, count in sorted(counts.timed_by_label(kind).items()):
        buckets = list(count.buckets) + [0] * (len(bounds) - len(count.buckets))
        cumulative = [(f"{bound:g}", float(n)) for bound, n in zip(bounds, buckets, strict=True)]
        cumulative.append(("+Inf", float(count.timed)))
        family.add_metric([value], cumulative, count.seconds)
    return family


class DurableCounts(Collector):
    """The counters and histograms of finished runs and steps (see the module's docstring)."""

    def describe(self) -> list[Any]:
        return []  # computed on collect only (no database access when the collector is registered)

    def collect(self) -> Iterator[Any]:
        counts = _counts()
        runs = CounterMetricFamily(
            "workflow_executions", "Finished workflow runs by final status", labels=["workflow", "status"]
        )
        for (workflow, status), count in sorted(counts.of(RUN).items()):
            runs.add_metric([workflow, status], count.count)
        steps = CounterMetricFamily(
            "automation_action_executions",
            "Finished steps by action type and final status",
            labels=["action_type", "status"],
        )
        for (action_type, status), count in sorted(counts.of(STEP).items()):
            steps.add_metric([action_type, status], count.count)
        yield runs
        yield _histogram(
            "workflow_execution_duration_seconds",
            "Time from a run's start to its end",
            "workflow",
            counts,
            RUN,
        )
        yield steps
        yield _histogram(
            "automation_action_duration_seconds",
            "Time from a step's first claim to its end (retries and waits included)",
            "action_type",
            counts,
            STEP,
        )


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
