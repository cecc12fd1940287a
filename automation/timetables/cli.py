"""`automation schedule add|list|show|delete`: workflow schedules from a shell. Exit code 2 for bad input
(one line per error)."""

from __future__ import annotations

import json
from typing import Any

import click

from automation.cli.inputs import InputProblem, fail
from automation.errors import AutomationError

__all__ = ["schedule"]


def _input(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise InputProblem(f"--input {text!r}: expected KEY=VALUE")
    key, _, raw = text.partition("=")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


@click.group()
def schedule() -> None:
    """Workflows started by Beat on a cron expression or an interval, one run per slot."""


@schedule.command("add")
@click.argument("workflow")
@click.option("--cron", default=None, help='Five fields, e.g. "*/5 * * * *" (minute hour day month weekday).')
@click.option("--every", default=None, help="An interval instead: seconds, or 30s, 5m, 1h, 1d.")
@click.option("--input", "-i", "inputs", multiple=True, help="KEY=VALUE (VALUE read as JSON if it is).")
@click.option("--name", default=None, help="The schedule's name (default: the workflow's).")
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of the cron expression.")
@click.option("--disabled", is_flag=True, help="Store it without Beat sending it yet.")
def schedule_add(
    workflow: str,
    cron: str | None,
    every: str | None,
    inputs: tuple[str, ...],
    name: str | None,
    timezone: str,
    disabled: bool,
) -> None:
    """Schedule WORKFLOW (a schedule of the same name is replaced)."""
    from automation.timetables.services import save_schedule

    document: dict[str, Any] = {
        "name": name or workflow,
        "workflow": workflow,
        "inputs": dict(_input(text) for text in inputs),
        "timezone": timezone,
        "enabled": not disabled,
    }
    if cron is not None:
        document["cron"] = cron
    if every is not None:
        document["every"] = every
    try:
        saved = save_schedule(document)
    except AutomationError as exc:
        fail(exc)
        return
    timing = f"cron '{saved.cron}' ({saved.timezone})" if saved.cron else f"every {saved.period:g} s"
    click.echo(f"schedule {saved.name} stored: {saved.workflow} {timing}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True)
def schedule_list(as_json: bool) -> None:
    """Workflow schedules by name, with when Beat last sent each."""
    from automation.timetables.serializers import schedule_json
    from automation.timetables.services import list_schedules

    shown = [schedule_json(row) for row in list_schedules()]
    if as_json:
        click.echo(json.dumps({"schedules": shown}, indent=2))
        return
    for item in shown:
        every = f"every {item.get('every', 0):g} s"
        timing = f"cron '{item['cron']}' {item['timezone']}" if "cron" in item else every
        state = "enabled" if item["enabled"] else "disabled"
        last = item["last_run_at"] or "never"
        click.echo(f"{item['name']}\t{item['workflow']}\t{timing}\t{state}\tlast sent {last}")


@schedule.command("show")
@click.argument("name")
def schedule_show(name: str) -> None:
    """One schedule as JSON."""
    from automation.timetables.serializers import schedule_json
    from automation.timetables.services import get_schedule

    try:
        row = get_schedule(name)
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(json.dumps(schedule_json(row), indent=2))


@schedule.command("delete")
@click.argument("name")
def schedule_delete(name: str) -> None:
    """Delete a schedule (the runs it started stay)."""
    from automation.timetables.services import delete_schedule

    try:
        delete_schedule(name)
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(f"schedule {name} deleted")
