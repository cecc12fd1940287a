"""`automation oncall apply|show|who`: the escalation document (users, schedules, policies) and who is on
call, from a shell. Exit code 2 for bad input (one line per error)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click
import yaml

from automation.cli.inputs import fail, load_yaml
from automation.errors import AutomationError

__all__ = ["oncall"]


@click.group()
def oncall() -> None:
    """On-call schedules and escalation policies: who is paged when an incident opens, and after."""


@oncall.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def oncall_apply(path: str) -> None:
    """Replace the escalation document with a YAML file's (users, schedules, policies); all or none."""
    from automation.incidents.services.escalation_config import apply_escalation

    document = load_yaml(path)
    try:
        applied = apply_escalation({} if document is None else document)
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(
        f"escalation applied: {len(applied.users)} user(s), {len(applied.schedules)} schedule(s), "
        f"{len(applied.policies)} policy(ies)"
    )


@oncall.command("show")
@click.option("--json", "as_json", is_flag=True)
def oncall_show(as_json: bool) -> None:
    """The stored escalation document, as YAML (or JSON)."""
    from automation.incidents.services.escalation_config import as_json as document_json
    from automation.incidents.services.escalation_config import current_escalation

    answer = document_json(current_escalation())
    click.echo(json.dumps(answer, indent=2) if as_json else yaml.safe_dump(answer, sort_keys=False).rstrip())


@oncall.command("who")
@click.option("--schedule", default=None, help="one schedule (default: every schedule)")
@click.option("--at", "at_text", default=None, help="an ISO 8601 time (UTC unless it says) or epoch seconds")
@click.option("--json", "as_json", is_flag=True)
def oncall_who(schedule: str | None, at_text: str | None, as_json: bool) -> None:
    """Who is on call now (or --at a time), from which layer or override, and until when."""
    from automation.incidents.filters import parse_at
    from automation.incidents.serializers import on_call_json
    from automation.incidents.services.escalation_config import who_is_on_call

    try:
        moment = parse_at(at_text, time.time())
        answer = on_call_json(datetime.fromtimestamp(moment, UTC), who_is_on_call(schedule, moment))
    except AutomationError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    if not answer["schedules"]:
        click.echo("no schedule declared (automation oncall apply -f escalation.yml)")
    for entry in answer["schedules"]:
        where = f"{entry['schedule']} ({entry['timezone']})"
        if entry["user"] is None:
            click.echo(f"{where}: nobody on call")
            continue
        until = f" until {entry['until']}" if entry["until"] else ""
        click.echo(f"{where}: {entry['user']} ({entry['source']}){until}")
