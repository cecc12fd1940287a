"""`automation remediation apply|show|list|approve`: the remediation policies and what they decided, from
a shell. Exit code 2 for bad input (one line per error, naming the field), 1 for a refused step."""

from __future__ import annotations

import getpass
import json
import time

import click
import yaml

from automation.cli.inputs import fail, load_yaml
from automation.errors import AutomationError
from automation.incidents.choices import RemediationStatus

__all__ = ["remediation"]


@click.group()
def remediation() -> None:
    """Guarded remediation: policies mapping alerts to workflows, and their decisions."""


@remediation.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def remediation_apply(path: str) -> None:
    """Replace the remediation policies with a YAML file's; all or none."""
    from automation.incidents.services.remediation_config import apply_remediation

    document = load_yaml(path)
    try:
        applied = apply_remediation({} if document is None else document)
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(f"remediation applied: {len(applied.policies)} policy(ies)")


@remediation.command("show")
@click.option("--json", "as_json", is_flag=True)
def remediation_show(as_json: bool) -> None:
    """The stored remediation policies, as YAML (or JSON)."""
    from automation.incidents.services.remediation_config import as_json as document_json
    from automation.incidents.services.remediation_config import current_remediation

    answer = document_json(current_remediation())
    click.echo(json.dumps(answer, indent=2) if as_json else yaml.safe_dump(answer, sort_keys=False).rstrip())


@remediation.command("list")
@click.option("--status", type=click.Choice(RemediationStatus.ALL), default=None)
@click.option("--incident", type=int, default=None)
@click.option("--policy", default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def remediation_list(
    status: str | None, incident: int | None, policy: str | None, limit: int, as_json: bool
) -> None:
    """Remediations, newest first: what each policy decided, which guard held it and why."""
    from automation.incidents.remediation_serializers import remediation_json
    from automation.incidents.services.remediations import listed

    shown = [
        remediation_json(r) for r in listed(status=status, incident=incident, policy=policy, limit=limit)
    ]
    if as_json:
        click.echo(json.dumps({"remediations": shown}, indent=2))
        return
    for r in shown:
        where = f"incident {r['incident_id']}" if r["incident_id"] else "no incident"
        guard = f" [{r['guard']}]" if r["guard"] else ""
        click.echo(
            f"{r['id']:>6}  {r['status']:<17} {r['policy']} on {r['service'] or '-'} ({where}){guard}: "
            f"{r['detail']}"
        )


@remediation.command("approve")
@click.argument("remediation_id", type=int)
@click.option("--by", default=None, help="who approves (default: the current user)")
def remediation_approve(remediation_id: int, by: str | None) -> None:
    """Approve a remediation waiting for an approval: it is decided again at once (guards included)."""
    from automation.incidents.services.remediations import approve

    try:
        row = approve(remediation_id, by=(by or getpass.getuser()).strip(), now=time.time())
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(f"remediation {row.pk} approved by {row.approved_by}: deciding again")
