"""`automation workers` and `automation dead-letters`: the fleet's liveness and the messages set aside."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import click

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: expected a number and a unit, e.g. 30m, 12h, 7d")
    try:
        return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError:
        raise click.BadParameter(f"{text!r}: too long a duration") from None


@click.group()
def workers() -> None:
    """Worker nodes: alive, stopped, or dead (their runs were sent again)."""


@workers.command("list")
@click.option("--json", "as_json", is_flag=True)
def workers_list(as_json: bool) -> None:
    from automation.fleet.services import list_nodes

    nodes = list_nodes()
    if as_json:
        rows = [{**node.__dict__, "seen_at": node.seen_at.isoformat()} for node in nodes]
        click.echo(json.dumps(rows, indent=2))
        return
    for node in nodes:
        click.echo(
            f"{node.nodename or node.hostname:<40} {node.state:<10} executing {node.executing:<3} "
            f"last seen {node.seen_at:%Y-%m-%d %H:%M:%S}"
        )


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages no worker could run, set aside instead of crashing the worker."""


@dead_letters.command("list")
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def dead_letters_list(limit: int, as_json: bool) -> None:
    from automation.fleet.services import dead_letter_json, list_dead_letters

    letters = [dead_letter_json(letter) for letter in list_dead_letters(limit=limit)]
    if as_json:
        click.echo(json.dumps(letters, indent=2))
        return
    for letter in letters:
        when, queue, reason = letter["received_at"][:19], letter["queue"], letter["reason"][:100]
        click.echo(f"{letter['id']:>6}  {when}  {queue:<10} {reason}")


@dead_letters.command("show")
@click.argument("letter_id", type=int)
def dead_letters_show(letter_id: int) -> None:
    """One dead letter with its payload (values under sensitive keys masked)."""
    from automation.cli.main import InputProblem
    from automation.errors import NotFoundError
    from automation.fleet.services import dead_letter_json, get_dead_letter

    try:
        letter = get_dead_letter(letter_id)
    except NotFoundError as exc:
        raise InputProblem(str(exc)) from None
    click.echo(json.dumps(dead_letter_json(letter, with_payload=True), indent=2, default=str))


@dead_letters.command("purge")
@click.option("--older-than", "older_than", default="7d", show_default=True, help="e.g. 30m, 12h, 7d")
def dead_letters_purge(older_than: str) -> None:
    from automation.fleet.services import purge_dead_letters

    click.echo(f"{purge_dead_letters(older_than=_duration(older_than))} dead letter(s) purged")
