"""`automation tokens create|list|revoke` and `automation audit list`. Exit code 2 for bad input."""

from __future__ import annotations

import json

import click

from automation.cli.inputs import InputProblem, fail
from automation.errors import AutomationError

__all__ = ["audit", "tokens"]


@click.group()
def tokens() -> None:
    """API tokens: each carries roles and expires; only its sha256 is stored, the secret is shown once."""


@tokens.command("create")
@click.option("--name", required=True, help="The token's name (letters, digits, '.', '_', '-').")
@click.option("--role", "roles", multiple=True, required=True, help="A role; repeat for several.")
@click.option("--expires", default="90d", show_default=True, help="Lifetime: 90d, 12h, 2w...")
@click.option("--user", default=None, help="The user it acts as (a Django user); none: a service token.")
def tokens_create(name: str, roles: tuple[str, ...], expires: str, user: str | None) -> None:
    """Create a token and print its secret, once: it cannot be shown again."""
    from automation.access.principal import current_actor
    from automation.access.services.tokens import create_token

    try:
        created = create_token(
            name, roles=list(roles), expires_in=expires, user=user, created_by=current_actor().name
        )
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(created.secret)
    expires_at = f"{created.token.expires_at:%Y-%m-%d %H:%M} UTC"
    roles_text = ", ".join(created.token.roles)
    click.echo(
        f"token {name}: roles {roles_text}, expires {expires_at} (the secret above is shown only now)",
        err=True,
    )


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
def tokens_list(as_json: bool) -> None:
    """Every token: name, owner, roles, expiry, state (never the secret)."""
    from automation.access.services.tokens import list_tokens, token_json

    rows = [token_json(token) for token in list_tokens()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "active" if row["active"] else ("revoked" if row["revoked_at"] else "expired")
        owner = row["user"] or "(service)"
        click.echo(
            f"{row['name']:<24} {owner:<16} {','.join(row['roles']):<28} {row['expires_at'][:16]}  {state}"
        )


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke NAME: it stops working at once."""
    from automation.access.services.tokens import revoke_token

    try:
        revoke_token(name)
    except AutomationError as exc:
        fail(exc)
    click.echo(f"token {name}: revoked")


@click.group()
def audit() -> None:
    """The audit log: every change, who made it, from where, when (read only)."""


@audit.command("list")
@click.option("--since", default=None, help="A duration (1h, 7d) or an ISO 8601 time.")
@click.option("--actor", default=None)
@click.option("--object", "object_ref", default=None, help="TYPE or TYPE:ID (workflow:deploy).")
@click.option("--limit", "-n", default=100, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True)
def audit_list(
    since: str | None, actor: str | None, object_ref: str | None, limit: int, as_json: bool
) -> None:
    """Newest first."""
    from django.utils import timezone

    from automation.access.filters import parse_since
    from automation.access.services.audit import entries, entry_json

    moment = None
    if since:
        try:
            moment = parse_since(since, timezone.now())
        except ValueError as exc:
            raise InputProblem(f"--since: {exc}") from None
    object_type, _, object_id = (object_ref or "").partition(":")
    rows = entries(
        since=moment, actor=actor, object_type=object_type or None, object_id=object_id or None, limit=limit
    )
    if as_json:
        click.echo(json.dumps([entry_json(row) for row in rows], indent=2))
        return
    for row in rows:
        click.echo(
            f"{row.at:%Y-%m-%d %H:%M:%S}  {row.actor:<16} {row.source:<6} {row.action:<22} "
            f"{row.object_type}:{row.object_id}  {row.after_digest[:12] or '-'}"
        )
