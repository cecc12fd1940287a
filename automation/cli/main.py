"""`automation`: migrate, serve the API, apply workflows, start and follow runs.

Exit codes: 0 success, 1 a run failed or an operation was refused, 2 bad input (usage, definition, inputs).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from automation.choices import RunStatus
from automation.errors import AutomationError, ForbiddenError, InvalidFieldsError, NotFoundError, StateError


class InputProblem(click.ClickException):
    exit_code = 2


def _setup() -> None:
    from automation.bootstrap import setup

    setup()


def _fail_on_errors(exc: AutomationError) -> None:
    if isinstance(exc, InvalidFieldsError):
        lines = "\n".join(f"  {path}: {reason}" for path, reason in exc.errors)
        raise InputProblem(f"{type(exc).__name__}:\n{lines}")
    if isinstance(exc, NotFoundError):
        raise InputProblem(str(exc))
    raise click.ClickException(str(exc))


#: Subcommands that work without the engine's database.
WITHOUT_DATABASE = frozenset({"migrate", "forecast", "scaling", "anomaly", "capacity"})
#: Groups that set the database up themselves, for those of their subcommands that need it.
SETS_UP_ITSELF = frozenset({"rules"})
#: Long-running commands: their requests and jobs bind their own actors.
SERVES = frozenset({"serve", "demo"})


class _Commands(click.Group):
    """Loads the forecasting and scaling commands (pandas, statsmodels) only when they are asked for."""

    lazy = {
        "forecast": ("automation.cli.forecast", "forecast_command"),
        "scaling": ("automation.scaling.cli", "scaling_group"),
        "capacity": ("automation.cli.capacity", "capacity_group"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module_name, attribute = self.lazy[name]
            command: click.Command = getattr(importlib.import_module(module_name), attribute)
            return command
        return super().get_command(ctx, name)


@click.group(cls=_Commands)
@click.version_option(package_name="automation")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Workflow automation for operations, on Celery, Redis and PostgreSQL."""
    if ctx.invoked_subcommand == "demo":
        os.environ.setdefault("AUTOMATION_LOG_LEVEL", "WARNING")
    if ctx.invoked_subcommand not in WITHOUT_DATABASE | SETS_UP_ITSELF:
        _setup()
    if ctx.invoked_subcommand not in SERVES:
        from automation.access.principal import bind, cli_actor

        # What this command changes is in the audit log as the operating-system user's (or AUTOMATION_ACTOR).
        bind(cli_actor())


@cli.command()
def migrate() -> None:
    """Create or update the database schema."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.STATE_DIR.mkdir(parents=True, exist_ok=True)
    from automation.bootstrap import migrate as run_migrations

    run_migrations(verbosity=1)


@cli.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve beyond loopback without any API token: anyone who reaches it can run workflows.",
)
def serve(bind: str, workers: int, insecure_no_auth: bool) -> None:
    """Serve the HTTP API (gunicorn). Beyond loopback it needs an API token (stored or in the environment)."""
    from django.conf import settings

    from automation.access.services.tokens import auth_required
    from automation.api.server import is_loopback
    from automation.api.server import serve as run_server

    if not is_loopback(bind) and not insecure_no_auth and not auth_required():
        raise InputProblem(
            f"--bind {bind} is reachable from other machines and no API token is configured: create one "
            "(automation tokens create --name NAME --role automation_admin) or set AUTOMATION_API_TOKENS; "
            "clients send 'Authorization: Bearer <token>'; "
            "or pass --insecure-no-auth to serve an open API on purpose"
        )
    if not is_loopback(bind) and not insecure_no_auth:
        # Beyond loopback the API never falls back to open, even once every stored token expired.
        settings.AUTOMATION_API_REQUIRE_AUTH = True
    run_server(bind=bind, workers=workers)


@cli.command("createsuperuser")
@click.option("--username", default=None, help="Asked for unless given.")
@click.option("--email", default=None, help="Asked for unless given (may be empty when asked).")
@click.option(
    "--noinput",
    is_flag=True,
    help="Ask nothing: --username and --email are needed, the password is read from "
    "DJANGO_SUPERUSER_PASSWORD (without it the user cannot log in until `changepassword`).",
)
def createsuperuser(username: str | None, email: str | None, noinput: bool) -> None:
    """Create a Django superuser, who may log in to the web UI (/admin/, /ui/) with every permission."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    try:
        call_command("createsuperuser", username=username, email=email, interactive=not noinput)
    except CommandError as exc:
        raise InputProblem(str(exc)) from None


@cli.group()
def workflow() -> None:
    """Register and inspect workflow definitions."""


@workflow.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=click.Path(dir_okay=False))
def workflow_apply(files: tuple[str, ...]) -> None:
    """Validate and register definitions from YAML or JSON files (all or nothing per file)."""
    from automation.config import current_config
    from automation.definitions.loader import load_definitions
    from automation.definitions.registry import register_definition

    for file in files:
        try:
            definitions = load_definitions(file)
            from django.db import transaction

            with transaction.atomic():
                versions = [register_definition(d, current_config()) for d in definitions]
        except AutomationError as exc:
            raise InputProblem(f"{file}: " + _describe(exc)) from None
        for version in versions:
            click.echo(f"{version.workflow.name}: version {version.version}")


def _describe(exc: AutomationError) -> str:
    if isinstance(exc, InvalidFieldsError):
        return "\n" + "\n".join(f"  {path}: {reason}" for path, reason in exc.errors)
    return str(exc)


@workflow.command("list")
def workflow_list() -> None:
    from automation.models import Workflow

    for name, version in Workflow.objects.values_list("name", "latest_version"):
        click.echo(f"{name}\tv{version}")


def _parse_input(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise InputProblem(f"--input {text!r}: expected KEY=VALUE")
    key, _, raw = text.partition("=")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


@cli.command("run")
@click.argument("name")
@click.option(
    "--input", "-i", "inputs", multiple=True, help="KEY=VALUE (VALUE parsed as JSON when it is JSON)."
)
@click.option("--idempotency-key", default=None)
@click.option("--wait/--no-wait", default=False, help="Follow the run's steps until it ends.")
@click.option("--timeout", default=3600.0, show_default=True, type=float)
def run_command(
    name: str, inputs: tuple[str, ...], idempotency_key: str | None, wait: bool, timeout: float
) -> None:
    """Start a run of workflow NAME."""
    from automation.embedded import ensure_worker
    from automation.runs.dispatch import enqueue_run

    given = dict(_parse_input(i) for i in inputs)
    try:
        if wait:
            ensure_worker()
        run, created = enqueue_run(name, given, idempotency_key=idempotency_key)
    except AutomationError as exc:
        _fail_on_errors(exc)
        return
    click.echo(f"run {run.id} {'created' if created else 'already exists'} ({run.status})")
    if wait:
        from automation.cli.follow import follow

        status = follow(str(run.id), timeout=timeout)
        sys.exit(0 if status == "succeeded" else 1)


@cli.group()
def runs() -> None:
    """Inspect and steer runs."""


def _existing_run_id(text: str) -> str:
    """The run id, or exit 2 with one line when no run has it (a run id is a UUID)."""
    from automation.models import WorkflowRun

    try:
        run_id = uuid.UUID(text)
    except ValueError:
        raise InputProblem(f"run {text} does not exist") from None
    if not WorkflowRun.objects.filter(id=run_id).exists():
        raise InputProblem(f"run {text} does not exist")
    return str(run_id)


@runs.command("list")
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option(
    "--status",
    "-s",
    "statuses",
    multiple=True,
    type=click.Choice([value for value, _ in RunStatus.CHOICES]),
    help="Only runs in this status (repeatable).",
)
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="A JSON array of runs (without their steps).")
@click.option("--quiet", "-q", is_flag=True, help="Only the run ids, one per line.")
def runs_list(
    workflow: str | None, statuses: tuple[str, ...], limit: int, as_json: bool, quiet: bool
) -> None:
    """The latest runs, newest first."""
    from automation.api.serializers import run_json
    from automation.models import Workflow, WorkflowRun

    found = WorkflowRun.objects.select_related("workflow", "version").order_by("-created_at")
    if workflow is not None:
        if not Workflow.objects.filter(name=workflow).exists():
            raise InputProblem(f"workflow '{workflow}' is not registered")
        found = found.filter(workflow__name=workflow)
    if statuses:
        found = found.filter(status__in=statuses)
    rows = [run_json(run, with_steps=False) for run in found[:limit]]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if quiet:
        for row in rows:
            click.echo(row["run_id"])
        return
    table = [("RUN ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "ERROR")]
    for row in rows:
        created = (row["created_at"] or "")[:19].replace("T", " ")
        error = (row["error"] or "").replace("\n", " ")[:60]
        table.append((row["run_id"], row["workflow"], str(row["version"]), row["status"], created, error))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
def runs_show(run_id: str, as_json: bool) -> None:
    from automation.api.serializers import run_json
    from automation.api.views import _run_or_404

    data = run_json(_run_or_404(_existing_run_id(run_id)))
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"run {data['run_id']}  {data['workflow']} v{data['version']}  {data['status']}")
    if data["error"]:
        click.echo(f"  error: {data['error']}")
    for step in data["steps"]:
        result = json.dumps(step["output"], default=str) if step["output"] is not None else step["error"]
        click.echo(f"  {step['name']:<28} {step['status']:<10} attempts={step['attempts']}  {result[:200]}")


@runs.command("cancel")
@click.argument("run_id")
def runs_cancel(run_id: str) -> None:
    from automation.runs.control import cancel

    run_id = _existing_run_id(run_id)
    try:
        cancel(run_id, reason="cancelled from the CLI")
    except AutomationError as exc:
        _fail_on_errors(exc)
    click.echo(f"run {run_id}: cancelled")


def _decide(run_id: str, step: str, approved: bool, by: str, comment: str) -> None:
    from automation.runs.services import decide_approval

    run_id = _existing_run_id(run_id)
    try:
        decide_approval(run_id, step, approved=approved, by=by, comment=comment)
    except AutomationError as exc:
        _fail_on_errors(exc)
    click.echo(f"run {run_id} step {step}: {'approved' if approved else 'rejected'}")


@runs.command("approve")
@click.argument("run_id")
@click.argument("step")
@click.option("--by", default="cli")
@click.option("--comment", default="")
def runs_approve(run_id: str, step: str, by: str, comment: str) -> None:
    _decide(run_id, step, True, by, comment)


@runs.command("reject")
@click.argument("run_id")
@click.argument("step")
@click.option("--by", default="cli")
@click.option("--comment", default="")
def runs_reject(run_id: str, step: str, by: str, comment: str) -> None:
    _decide(run_id, step, False, by, comment)


@cli.group()
def actions() -> None:
    """The action types workflows can use."""


@actions.command("list")
@click.option("--markdown", is_flag=True, help="The README's actions table: parameters, types, defaults.")
def actions_list(markdown: bool) -> None:
    """Built-in action types with their parameters."""
    from automation.cli.catalog import actions_markdown, builtin_actions, parameters

    if markdown:
        click.echo(actions_markdown(), nl=False)
        return
    for spec in builtin_actions():
        click.echo(f"{spec.action_type}  {spec.description}")
        for line in parameters(spec.params):
            click.echo(f"    {line.replace('`', '')}")


@cli.command()
@click.option("--services-file", default=None, type=click.Path(dir_okay=False))
def demo(services_file: str | None) -> None:
    """Run the demo workflow: a fan-out and a join that restarts a real local service."""
    from automation.demo import run_demo

    sys.exit(run_demo(services_file=Path(services_file) if services_file else None))


from automation.cli.fleet import dead_letters, workers  # noqa: E402 - the groups attach to `cli`

cli.add_command(dead_letters)
cli.add_command(workers)

from automation.alerting.cli import alerting, alerts, anomaly, rules, silences  # noqa: E402

for group in (rules, alerts, silences, alerting, anomaly):
    cli.add_command(group)

from automation.incidents.cli import changes, incidents, services  # noqa: E402
from automation.incidents.oncall_cli import oncall  # noqa: E402
from automation.incidents.remediation_cli import remediation  # noqa: E402

cli.add_command(incidents)
cli.add_command(changes)
cli.add_command(services)
cli.add_command(oncall)
cli.add_command(remediation)

from automation.access.cli import audit, tokens  # noqa: E402
from automation.timetables.cli import schedule  # noqa: E402

cli.add_command(schedule)
cli.add_command(tokens)
cli.add_command(audit)


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except (StateError, NotFoundError, ForbiddenError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
