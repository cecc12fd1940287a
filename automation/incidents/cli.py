"""`automation incidents list|show|report|stats|ack|mitigate|resolve`, `automation services apply|show` and
`automation changes record|list`: incidents, the dependency graph they correlate on and the recorded
changes root-cause analysis weighs, from a shell. Exit code 2 for bad
input (one line per error), 1 for a refused step (a resolved incident cannot be acknowledged)."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable
from typing import Any

import click
import yaml

from automation.cli.inputs import InputProblem, fail, load_yaml
from automation.errors import AutomationError, StateError
from automation.incidents.choices import ChangeKind, ChangeSource
from automation.incidents.filters import STATUS_FILTERS
from automation.incidents.limits import DEFAULT_LISTED, MAX_BY, MAX_COMMENT, MAX_LISTED

__all__ = ["changes", "incidents", "services"]


@click.group()
def incidents() -> None:
    """Incidents: correlated alerts, their status and their timeline."""


@incidents.command("list")
@click.option("--status", type=click.Choice(STATUS_FILTERS), default=None, help="`open`: any active status")
@click.option("--service", default=None, help="incidents one of whose alerts was on this service")
@click.option("--since", default=None, help="opened since: 24h, 7d, or an ISO 8601 time")
@click.option("--limit", type=click.IntRange(1, MAX_LISTED), default=DEFAULT_LISTED, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def incidents_list(
    status: str | None, service: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """Incidents, newest first."""
    from automation.incidents.filters import parse_filter
    from automation.incidents.serializers import incident_json
    from automation.incidents.services.queries import list_incidents

    try:
        chosen = parse_filter(status=status, service=service, since=since, limit=limit, now=time.time())
    except AutomationError as exc:
        fail(exc)
        return
    shown = [incident_json(incident) for incident in list_incidents(chosen)]
    if as_json:
        click.echo(json.dumps({"incidents": shown}, indent=2))
        return
    for i in shown:
        services = ",".join(i["services"]) or "-"
        click.echo(
            f"{i['id']:>6}  {i['status']:<12} {i['severity']:<8} {i['opened_at'][:19]}  "
            f"alerts {i['firing_count']}/{i['alert_count']} firing  [{services}]  {i['title']}"
        )


@incidents.command("show")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True)
def incidents_show(incident_id: str, as_json: bool) -> None:
    """One incident: its alerts and its timeline, oldest first."""
    from automation.incidents.serializers import incident_detail_json
    from automation.incidents.services.queries import get_incident

    try:
        answer = incident_detail_json(get_incident(incident_id))
    except AutomationError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"incident {answer['id']}: {answer['title']}")
    click.echo(f"  {answer['status']}, {answer['severity']}, services {', '.join(answer['services']) or '-'}")
    for step in ("acknowledged", "mitigated", "resolved"):
        if answer[f"{step}_at"]:
            click.echo(f"  {step} at {answer[f'{step}_at']} by {answer[f'{step}_by'] or 'the engine'}")
    escalation = answer["escalation"]
    if escalation is not None and escalation["policy"]:
        following = (
            f", level {escalation['next_level']} due {escalation['next_due_at']}"
            if escalation["next_level"]
            else ""
        )
        pages = len(escalation["pages"])
        click.echo(
            f"  escalation: policy {escalation['policy']}, {escalation['status']}, {pages} page(s){following}"
        )
    click.echo("alerts:")
    for alert in answer["alerts"]:
        state = f"resolved {alert['resolved_at']}" if alert["resolved_at"] else "firing"
        click.echo(
            f"  {alert['fingerprint']}  {alert['name']} on {alert['service'] or '-'} "
            f"({alert['severity']}) fired {alert['fired_at']}, {state}"
        )
    click.echo("timeline:")
    for event in answer["timeline"]:
        click.echo(f"  {event['at']}  {event['kind']:<16} {event['actor']:<12} {event['detail']}".rstrip())


def _step(incident_id: str, by: str | None, comment: str, take: Callable[..., Any]) -> None:
    """Take an operator's step and say what happened; a refused one (StateError) exits 1."""
    from automation.incidents.services.queries import incident_id as parse_id

    who = (by if by is not None else getpass.getuser()).strip()
    if not 0 < len(who) <= MAX_BY:
        raise InputProblem(f"--by: must be 1 to {MAX_BY} characters")
    if len(comment) > MAX_COMMENT:
        raise InputProblem(f"--comment: must be at most {MAX_COMMENT} characters")
    try:
        outcome = take(parse_id(incident_id), by=who, now=time.time(), comment=comment)
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    except AutomationError as exc:
        fail(exc)
        return
    incident = outcome.incident
    if outcome.changed:
        click.echo(f"incident {incident.pk} {incident.status} by {who}")
    else:
        click.echo(f"incident {incident.pk} is {incident.status} already: nothing changed")


_BY = click.option("--by", default=None, help="who (default: your user name)")
_COMMENT = click.option("--comment", default="", help="goes on the timeline")


@incidents.command("report")
@click.argument("incident_id")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as one self-contained HTML page.")
@click.option("--json", "as_json", is_flag=True)
def incidents_report(incident_id: str, html_path: str | None, as_json: bool) -> None:
    """The post-incident report: timeline, time to acknowledge and resolve, alerts and their
    notifications, actions and outcomes, candidate causes with their evidence."""
    from pathlib import Path

    from automation.incidents.report_render import render_html, render_text
    from automation.incidents.services.queries import get_incident
    from automation.incidents.services.reports import incident_report

    try:
        report = incident_report(get_incident(incident_id))
    except AutomationError as exc:
        fail(exc)
        return
    if html_path is not None:
        Path(html_path).write_text(render_html(report), encoding="utf-8")
    click.echo(json.dumps(report, indent=2) if as_json else render_text(report), nl=as_json)


@incidents.command("stats")
@click.option("--since", default="30d", show_default=True, help="opened since: 7d, 30d, or an ISO 8601 time")
@click.option("--json", "as_json", is_flag=True)
def incidents_stats(since: str, as_json: bool) -> None:
    """MTTA and MTTR per service and severity over the incidents opened since then."""
    from datetime import UTC, datetime

    from automation.incidents.filters import parse_since
    from automation.incidents.report_render import duration
    from automation.incidents.services.reports import incident_stats

    try:
        start = parse_since(since, time.time())
    except ValueError as exc:
        raise InputProblem(f"--since: {exc}") from None
    rows = incident_stats(datetime.fromtimestamp(start, tz=UTC))
    if as_json:
        moment = datetime.fromtimestamp(start, tz=UTC).isoformat()
        click.echo(json.dumps({"since": moment, "rows": rows}, indent=2))
        return
    click.echo(f"{'service':<24}{'severity':<10}{'incidents':>10}{'MTTA':>10}{'MTTR':>10}")
    for row in rows:
        click.echo(
            f"{row['service'][:23]:<24}{row['severity']:<10}{row['incidents']:>10}"
            f"{duration(row['mtta_seconds']):>10}{duration(row['mttr_seconds']):>10}"
        )


@incidents.command("ack")
@click.argument("incident_id")
@_BY
@_COMMENT
def incidents_ack(incident_id: str, by: str | None, comment: str) -> None:
    """Acknowledge an incident: someone is on it."""
    from automation.incidents.services.transitions import acknowledge

    _step(incident_id, by, comment, acknowledge)


@incidents.command("mitigate")
@click.argument("incident_id")
@_BY
@_COMMENT
def incidents_mitigate(incident_id: str, by: str | None, comment: str) -> None:
    """Mark an incident mitigated: the impact is stopped, the cause maybe not."""
    from automation.incidents.services.transitions import mitigate

    _step(incident_id, by, comment, mitigate)


@incidents.command("resolve")
@click.argument("incident_id")
@_BY
@_COMMENT
def incidents_resolve(incident_id: str, by: str | None, comment: str) -> None:
    """Resolve an incident (even with alerts still firing: the timeline says how many)."""
    from automation.incidents.services.transitions import resolve

    _step(incident_id, by, comment, resolve)


@click.group()
def services() -> None:
    """The service dependency graph incidents correlate on (`services:` with depends_on and owners)."""


@services.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def services_apply(path: str) -> None:
    """Replace the stored services with those of a YAML file (`services:` list); all or none."""
    from automation.incidents.services.catalog import apply_services

    document = load_yaml(path)
    try:
        applied = apply_services(document)
    except AutomationError as exc:
        fail(exc)
        return
    edges = sum(len(s.depends_on) for s in applied.services)
    click.echo(f"services applied: {len(applied.services)} service(s), {edges} dependency(ies)")


@services.command("show")
@click.option("--json", "as_json", is_flag=True)
def services_show(as_json: bool) -> None:
    """The stored services document, as YAML (or JSON)."""
    from automation.incidents.serializers import services_json
    from automation.incidents.services.catalog import current_services

    answer = services_json(current_services())
    click.echo(json.dumps(answer, indent=2) if as_json else yaml.safe_dump(answer, sort_keys=False).rstrip())


@click.group()
def changes() -> None:
    """Recorded changes (deploys, config changes, workflow runs): evidence for root-cause analysis."""


@changes.command("record")
@click.option("--service", required=True)
@click.option("--kind", required=True, type=click.Choice(ChangeKind.ALL))
@click.option("--description", default="")
@click.option("--at", "at_text", default=None, help="when (ISO 8601 or epoch seconds; default: now)")
@click.option("--actor", default=None, help="who made it (default: your user name)")
@click.option("--run-id", default=None, help="the workflow run that made it, if any")
@click.option("--key", default=None, help="idempotency key: a key recorded before records nothing")
def changes_record(
    service: str,
    kind: str,
    description: str,
    at_text: str | None,
    actor: str | None,
    run_id: str | None,
    key: str | None,
) -> None:
    """Record one change to a service."""
    from automation.incidents.changes import parse_change
    from automation.incidents.services.changes import record_change

    now = time.time()
    document: dict[str, Any] = {
        "service": service,
        "kind": kind,
        "description": description,
        "actor": actor if actor is not None else getpass.getuser(),
    }
    document.update({k: v for k, v in (("at", at_text), ("run_id", run_id), ("key", key)) if v is not None})
    try:
        recorded = record_change(parse_change(document, now=now), source=ChangeSource.CLI, now=now)
    except AutomationError as exc:
        fail(exc)
        return
    change = recorded.change
    verb = "recorded" if recorded.created else "already recorded (same key)"
    click.echo(f"change {change.pk} {verb}: {change.kind} of {change.service} at {change.at.isoformat()}")


@changes.command("list")
@click.option("--service", default=None)
@click.option("--since", default=None, help="24h, 7d, or an ISO 8601 time")
@click.option("--limit", type=click.IntRange(1, MAX_LISTED), default=DEFAULT_LISTED, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def changes_list(service: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Recorded changes, newest first."""
    from automation.incidents.filters import parse_filter
    from automation.incidents.serializers import change_json
    from automation.incidents.services.changes import list_changes

    try:
        chosen = parse_filter(service=service, since=since, limit=limit, now=time.time())
    except AutomationError as exc:
        fail(exc)
        return
    shown = [change_json(c) for c in list_changes(service=chosen.service, since=chosen.since, limit=limit)]
    if as_json:
        click.echo(json.dumps({"changes": shown}, indent=2))
        return
    for c in shown:
        who = c["actor"] or c["source"]
        line = f"{c['at'][:19]}  {c['kind']:<13} {c['service']:<24} {who:<16} {c['description']}"
        click.echo(line.rstrip())
