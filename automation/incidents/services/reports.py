"""What a post-incident report and the team figures are made of, read from the durable state: the
incident, its timeline, its alerts with what the notification log decided for each, the workflow runs
it started with their outcomes, its remediations with what their guards decided, the changes recorded
on the graph's services shortly before and during it, and the ranked candidate causes
(automation/incidents/rca.py, on the dependency graph, the alerts' timing and those changes).
Read-only."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from automation.incidents.rca import CANDIDATE_HOPS, CHANGE_LOOKBACK, AlertSignal, Change, rank_causes
from automation.incidents.remediation_serializers import remediation_json
from automation.incidents.serializers import change_json, event_json, firing_json, incident_json
from automation.incidents.services.changes import changes_near
from automation.models import AlertLog, Incident, IncidentAlert, IncidentEvent, Remediation, WorkflowRun


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def incident_report(incident: Incident) -> dict[str, Any]:
    """The report of one incident as JSON-ready data (`render_text` and `render_html` lay it out)."""
    from automation.incidents.services.catalog import current_graph

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
    near = set(incident.services)  # the candidates: its services and what they depend on (rca.py)
    for service in incident.services:
        if service in graph:
            near |= {s for s, hops in graph.upstream(service).items() if hops <= CANDIDATE_HOPS}
    recorded = changes_near(near, first - CHANGE_LOOKBACK.to_pytimedelta(), end)
    changes = [
        Change(
            service=row.service,
            at=pd.Timestamp(row.at),
            kind=row.kind,
            detail=(row.description + (f" by {row.actor}" if row.actor else ""))[:300],
        )
        for row in recorded
    ]
    causes = [c.to_dict() for c in rank_causes(graph, alerts=signals, onsets={}, changes=changes)][:5]
    notes = []
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
        "notes": notes,
    }


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
