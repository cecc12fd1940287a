"""`automation rules`, `automation alerts`, `automation silences`, `automation alerting`: the alerting
domain from a shell. Exit code 2 for bad input (one line per error), 1 for a refused operation."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from automation.alerting.choices import AlertState
from automation.errors import AutomationError, InvalidFieldsError, NotFoundError, StateError


class InputProblem(click.ClickException):
    exit_code = 2


def _fail(exc: AutomationError) -> None:
    if isinstance(exc, InvalidFieldsError):
        raise InputProblem("; ".join(f"{path}: {reason}" for path, reason in exc.errors))
    if isinstance(exc, NotFoundError):
        raise InputProblem(str(exc))
    raise click.ClickException(str(exc))


def _load(path: str) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InputProblem(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise InputProblem(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def _rules_of(document: Any, path: str) -> list[Any]:
    if isinstance(document, dict) and "rules" in document:
        document = document["rules"]
    if not isinstance(document, list):
        raise InputProblem(f"{path}: expected a list of rules, or a mapping with `rules:`")
    return document


@click.group()
def rules() -> None:
    """Alert rules: apply from YAML, list, evaluate once, backtest against a recorded trace."""


@rules.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def rules_apply(path: str) -> None:
    """Store the rules of a YAML file (`rules:` list; an `alerting:` section is applied too); all or none."""
    from django.db import transaction

    from automation.alerting.services.config import apply_document
    from automation.alerting.services.rules import save_rules

    document = _load(path)
    try:
        with transaction.atomic():
            if isinstance(document, dict) and "alerting" in document:
                apply_document(document["alerting"])
            stored = save_rules(_rules_of(document, path))
    except AutomationError as exc:
        _fail(exc)
        return
    for rule in stored:
        click.echo(f"rule {rule.name} stored")


@rules.command("list")
def rules_list() -> None:
    from automation.models import AlertRule

    for rule in AlertRule.objects.order_by("name"):
        text = rule.document.get("condition") or rule.document.get("expr") or "(received alerts only)"
        click.echo(f"{rule.name:<30} {rule.severity:<9} {rule.source:<10} {text}")


@rules.command("evaluate")
@click.option("--once", is_flag=True, required=True, help="one tick in the foreground, then exit")
@click.option("--json", "as_json", is_flag=True)
def rules_evaluate(once: bool, as_json: bool) -> None:
    """Evaluate every enabled rule now and send the due notifications (what Beat does every interval)."""
    from automation.alerting.services.ticks import evaluate_all

    reports = evaluate_all()
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for report in reports:
        if "error" in report:
            click.echo(f"{report['rule']}: error: {report['error']}")
            continue
        click.echo(
            f"{report['rule']}: {report['series']} series, fired {len(report['fired'])}, "
            f"resolved {len(report['resolved'])}, pending {len(report['pending'])}"
        )


@click.group()
def alerts() -> None:
    """Alerts and their notification log."""


@alerts.command("list")
@click.option("--state", type=click.Choice(AlertState.ALL))
def alerts_list(state: str | None) -> None:
    from automation.models import Alert

    rows = Alert.objects.order_by("-updated_at")
    if state:
        rows = rows.filter(state=state)
    for alert in rows[:500]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        click.echo(f"{alert.fingerprint}  {alert.state:<9} {alert.severity:<9} {alert.name} {{{labels}}}")


@alerts.command("why")
@click.argument("fingerprint")
@click.option("--json", "as_json", is_flag=True)
def alerts_why(fingerprint: str, as_json: bool) -> None:
    """Why was I (not) paged? Every decision about this alert, oldest first."""
    from automation.alerting.serializers import alert_log_json
    from automation.models import Alert

    alert = Alert.objects.filter(fingerprint=fingerprint).first()
    if alert is None:
        raise InputProblem(f"alert {fingerprint[:40]} does not exist")
    answer = alert_log_json(alert)
    entries = answer["log"]
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"{alert.name} {alert.labels} is {alert.state}")
    for e in entries:
        extra = " ".join(
            x
            for x in (e["receiver"] and f"receiver={e['receiver']}", e["run_id"] and f"run={e['run_id']}")
            if x
        )
        click.echo(f"  {e['at']}  {e['decision']:<18} {extra} {e['detail']}".rstrip())


def _when(text: str, field: str) -> float:
    from automation.alerting.definitions import _seconds

    if text.startswith("+"):
        try:
            return time.time() + float(_seconds(text[1:]))
        except ValueError as exc:
            raise InputProblem(f"{field}: {exc}") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputProblem(f"{field}: '{text}' is neither +DURATION nor an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@click.group()
def silences() -> None:
    """Silences: mute matching alerts for a while (notifications and remediation alike)."""


@silences.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--until", "until", required=True, help="+2h, or an ISO 8601 time")
@click.option("--from", "start", default=None, help="ISO 8601 time (default now)")
@click.option("--by", "created_by", required=True)
@click.option("--comment", required=True)
def silences_add(
    matchers: tuple[str, ...], until: str, start: str | None, created_by: str, comment: str
) -> None:
    from automation.alerting.services.silences import create_silence

    now = time.time()
    try:
        silence = create_silence(
            matchers=list(matchers),
            starts_at=_when(start, "--from") if start else now,
            ends_at=_when(until, "--until"),
            created_by=created_by,
            comment=comment,
            now=now,
        )
    except AutomationError as exc:
        _fail(exc)
        return
    click.echo(str(silence.id))


@silences.command("list")
def silences_list() -> None:
    from automation.alerting.serializers import silence_json
    from automation.models import Silence

    now = time.time()
    for silence in Silence.objects.all()[:500]:
        s = silence_json(silence, now)
        matchers = ",".join(f'{m["name"]}{m["op"]}"{m["value"]}"' for m in s["matchers"])
        click.echo(
            f"{s['id']}  {s['state']:<8} until {s['ends_at']}  {matchers}"
            f"  by {s['created_by']}: {s['comment']}"
        )


@silences.command("expire")
@click.argument("silence_id")
def silences_expire(silence_id: str) -> None:
    from automation.alerting.services.silences import expire_silence

    try:
        expire_silence(silence_id, time.time())
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    except AutomationError as exc:
        _fail(exc)
    click.echo(f"silence {silence_id} expired")


@click.group()
def alerting() -> None:
    """The alerting document: routes, receivers, inhibition rules, the Prometheus source."""


@alerting.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def alerting_apply(path: str) -> None:
    from automation.alerting.services.config import apply_document

    document = _load(path)
    if isinstance(document, dict) and "alerting" in document:
        document = document["alerting"]
    try:
        applied = apply_document(document)
    except AutomationError as exc:
        _fail(exc)
        return
    click.echo(
        f"alerting document applied: {len(applied.receivers)} receiver(s), "
        f"{len(applied.inhibit_rules)} inhibition rule(s)"
    )
