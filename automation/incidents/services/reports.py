"""What a post-incident report and the team figures are made of, read from the durable state: the
incident, its timeline, its alerts with what the notification log decided for each, the workflow runs
it started with their outcomes, its remediations with what their guards decided, the changes recorded
on the graph's services shortly before and during it, and the ranked candidate causes
(automation/incidents/rca.py, on the dependency graph, the alerts' timing, the candidates' metric onsets
read from the push store (services/onsets.py) and those changes). Read-only."""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.db import transaction
from django.utils.timezone import now as django_now

from automation.incidents.rca import CANDIDATE_HOPS, CHANGE_LOOKBACK, AlertSignal, Change, rank_causes
from automation.incidents.remediation_serializers import remediation_json
from automation.incidents.serializers import change_json, event_json, firing_json, incident_json
from automation.incidents.services.changes import changes_near
from automation.incidents.services.onsets import MetricOnsets, service_onsets
from automation.models import AlertLog, Incident, IncidentAlert, IncidentEvent, Remediation, WorkflowRun

logger = logging.getLogger(__name__)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _metric_onsets(
    services: list[str], *, first: datetime, end: datetime, now: datetime
) -> tuple[MetricOnsets | None, str]:
    """The candidates' metric onsets, or None and why: the metrics are evidence the report can do without,
    so no failure to read them (a database error, a series the detector chokes on) may break it."""
    try:
        with transaction.atomic():  # a database error rolls back to here, not the caller's transaction
            return service_onsets(services, first_alert=first, end=end, now=now), ""
    except Exception as exc:  # noqa: BLE001 - any failure degrades to the alerts' timing, said in the report
        logger.warning("incident report: metrics not read", exc_info=True)
        return None, f"metrics: not read ({type(exc).__name__}: {str(exc)[:200]}); timing from alerts only"


def incident_report(incident: Incident, *, now: datetime | None = None) -> dict[str, Any]:
    """The report of one incident as JSON-ready data (`render_text` and `render_html` lay it out). `now`
    (default: the clock) bounds the metrics read for an incident not yet resolved."""
    from automation.incidents.services.catalog import current_graph

    now = now or django_now()

    firings = list(IncidentAlert.objects.filter(incident=incident).order_by("fired_at", "id"))
    events = list(IncidentEvent.objects.filter(incident=incident).order_by("at", "id"))
    end = incident.resolved_at or max([e.at for e in events], default=incident.opened_at)
    alert_ids = [f.alert_id for f in firings if f.alert_id is not None]
    decisions: dict[int, Counter[str]] = {}
    run_ids = {e.run_id for e in events if e.run_id is not None}
    window = AlertLog.objects.filter(
        alert_id__in=alert_ids,
        at__gte=incident.opened_at - timedelta(hours=1),
        at__lte=end + timedelta(hours=1),
    )
    for alert_id, decision, run_id in window.values_list("alert_id", "decision", "run_id"):
        decisions.setdefault(alert_id, Counter())[decision] += 1
        if run_id is not None:
            run_ids.add(run_id)
    alerts = []
    for firing in firings:
        shown = firing_json(firing)
        shown["notification_log"] = dict(decisions.get(firing.alert_id or -1, Counter()))
        alerts.append(shown)
    actions = [
        {
            "run_id": str(run.id),
            "workflow": run.workflow.name,
            "status": run.status,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error[:500],
        }
        for run in WorkflowRun.objects.filter(id__in=run_ids)
        .select_related("workflow")
        .order_by("created_at")
    ]
    graph = current_graph()
    signals = [
        AlertSignal(service=f.service, started_at=pd.Timestamp(f.fired_at), name=f.name)
        for f in firings
        if f.service
    ]
    first = min([f.fired_at for f in firings], default=incident.opened_at)
    # the candidates: its services and what they depend on (rca.py), the nearest first
    hops_to: dict[str, int] = {service: 0 for service in incident.services}
    for service in incident.services:
        if service in graph:
            for dep, hops in graph.upstream(service).items():
                if hops <= CANDIDATE_HOPS:
                    hops_to[dep] = min(hops, hops_to.get(dep, hops))
    near = sorted(hops_to, key=lambda s: (hops_to[s], s))
    recorded = changes_near(set(near), first - CHANGE_LOOKBACK.to_pytimedelta(), end)
    changes = [
        Change(
            service=row.service,
            at=pd.Timestamp(row.at),
            kind=row.kind,
            detail=(row.description + (f" by {row.actor}" if row.actor else ""))[:300],
        )
        for row in recorded
    ]
    notes = []
    metrics, unread = _metric_onsets(near, first=first, end=incident.resolved_at or now, now=now)
    if metrics is not None:
        notes.append(metrics.note(len(near)))
        ranked = rank_causes(
            graph, alerts=signals, onsets=metrics.onsets, changes=changes, watched=metrics.watched
        )
    else:
        notes.append(unread)
        ranked = rank_causes(graph, alerts=signals, onsets={}, changes=changes)
        for cause in ranked:
            cause.evidence.append(unread)
    causes = [c.to_dict() for c in ranked][:5]
    key_metrics: list[dict[str, Any]] = []
    if metrics is not None:
        try:
            key_metrics = _key_metrics(metrics, [c.service for c in ranked[:5]])
        except Exception as exc:  # noqa: BLE001 - the plots are a view of evidence already ranked
            logger.warning("incident report: key metrics not shown", exc_info=True)
            notes.append(f"key metrics: not shown ({type(exc).__name__})")
    if not causes:
        notes.append("no candidate cause: no alert of this incident names a service of the dependency graph")
    return {
        "incident": incident_json(incident),
        "durations": {
            "time_to_acknowledge_seconds": _seconds(incident.opened_at, incident.acknowledged_at),
            "time_to_mitigate_seconds": _seconds(incident.opened_at, incident.mitigated_at),
            "time_to_resolve_seconds": _seconds(incident.opened_at, incident.resolved_at),
        },
        "timeline": [event_json(event) for event in events],
        "alerts": alerts,
        "actions": actions,
        "remediations": [
            remediation_json(row)
            for row in Remediation.objects.filter(incident=incident).order_by("requested_at", "pk")
        ],
        "causes": causes,
        "changes": [change_json(row) for row in recorded],
        "metrics": key_metrics,
        "notes": notes,
    }


#: Points a key metric keeps in the report (the searched window, at most about 90 minute bins, fits whole).
METRIC_POINTS = 240


def _shown(value: Any) -> float | None:
    """A value as the report's JSON holds it: six significant digits, None for a gap or a value JSON has
    no number for (NaN, infinities)."""
    number = float(value)
    return float(f"{number:.6g}") if math.isfinite(number) else None


def _key_metrics(metrics: MetricOnsets, services: list[str]) -> list[dict[str, Any]]:
    """The key metric of each candidate cause that has one, in rank order: its name, its onset and its
    minute values over the window searched (thinned to `METRIC_POINTS`; None where nothing was pushed)."""
    shown = []
    for service in services:
        if service not in metrics.curves:
            continue
        name, values = metrics.curves[service]
        step = max(1, -(-len(values) // METRIC_POINTS))
        kept = values.iloc[::step]
        onset = metrics.onsets.get(service)
        shown.append(
            {
                "service": service,
                "metric": name,
                "onset_at": onset.at.isoformat() if onset is not None and onset.metric == name else None,
                "points": [[moment.isoformat(), _shown(value)] for moment, value in kept.items()],
            }
        )
    return shown


def incident_stats(since: datetime) -> list[dict[str, Any]]:
    """MTTA and MTTR per service and severity over the incidents opened since `since` (an incident of
    several services counts for each); means and medians in seconds, over those acknowledged or
    resolved."""
    groups: dict[tuple[str, str], list[Incident]] = {}
    for incident in Incident.objects.filter(opened_at__gte=since).order_by("opened_at"):
        for service in incident.services or ["(no service)"]:
            groups.setdefault((service, incident.severity), []).append(incident)
    rows = []
    for (service, severity), incidents in sorted(groups.items()):
        to_ack = [s for i in incidents if (s := _seconds(i.opened_at, i.acknowledged_at)) is not None]
        to_resolve = [s for i in incidents if (s := _seconds(i.opened_at, i.resolved_at)) is not None]
        rows.append(
            {
                "service": service,
                "severity": severity,
                "incidents": len(incidents),
                "acknowledged": len(to_ack),
                "resolved": len(to_resolve),
                "mtta_seconds": statistics.fmean(to_ack) if to_ack else None,
                "median_tta_seconds": statistics.median(to_ack) if to_ack else None,
                "mttr_seconds": statistics.fmean(to_resolve) if to_resolve else None,
                "median_ttr_seconds": statistics.median(to_resolve) if to_resolve else None,
            }
        )
    return rows
