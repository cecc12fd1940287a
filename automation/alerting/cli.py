"""`automation rules`, `automation alerts`, `automation silences`, `automation alerting`, `automation
anomaly`: the alerting domain from a shell. Exit code 2 for bad input (one line per error), 1 for a refused
operation. `rules backtest` and `anomaly score` work on files alone, without the engine's database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from automation.alerting.choices import AlertState
from automation.cli.inputs import InputProblem, fail, items_of, load_yaml
from automation.errors import AutomationError, StateError

#: `automation rules` subcommands that need no database (the others set it up first).
WITHOUT_DATABASE = frozenset({"backtest"})


@click.group()
@click.pass_context
def rules(ctx: click.Context) -> None:
    """Alert rules: apply from YAML, list, evaluate once, backtest against a recorded trace."""
    if ctx.invoked_subcommand not in WITHOUT_DATABASE:
        from automation.bootstrap import setup

        setup()


@rules.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def rules_apply(path: str) -> None:
    """Store the rules of a YAML file (`rules:` list; an `alerting:` section is applied too); all or none."""
    from django.db import transaction

    from automation.alerting.services.pipeline import apply_routing
    from automation.alerting.services.rules import save_rules

    document = load_yaml(path)
    try:
        with transaction.atomic():
            if isinstance(document, dict) and "alerting" in document:
                apply_routing(document["alerting"], time.time())
            stored = save_rules(items_of(document, "rules", path))
    except AutomationError as exc:
        fail(exc)
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
        fail(exc)
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
        fail(exc)
    click.echo(f"silence {silence_id} expired")


@click.group()
def alerting() -> None:
    """The alerting document: routes, receivers, inhibition rules, the Prometheus source."""


@alerting.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def alerting_apply(path: str) -> None:
    from automation.alerting.services.pipeline import apply_routing

    document = load_yaml(path)
    if isinstance(document, dict) and "alerting" in document:
        document = document["alerting"]
    try:
        applied, rerouted = apply_routing(document, time.time())
    except AutomationError as exc:
        fail(exc)
        return
    click.echo(
        f"alerting document applied: {len(applied.receivers)} receiver(s), "
        f"{len(applied.inhibit_rules)} inhibition rule(s); {rerouted} firing alert(s) re-routed"
    )


# -- backtests and anomaly scores: files in, no database -----------------------------------------------


def _duration_option(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    from automation.alerting.definitions import _seconds

    try:
        seconds = float(_seconds(text))
    except ValueError as exc:
        raise InputProblem(f"{option}: {exc}") from None
    if seconds <= 0:
        raise InputProblem(f"{option}: must be more than 0 seconds")
    return seconds


def _points(path: str, column: str | None, interval: float | None) -> Any:
    import pandas as pd

    from automation.forecasting.errors import ForecastingError
    from automation.forecasting.traces import load_points

    if not Path(path).is_file():
        raise InputProblem(f"--trace {path}: no such file")
    try:
        return load_points(path, column=column, interval=pd.Timedelta(seconds=interval) if interval else None)
    except ForecastingError as exc:
        raise InputProblem(f"--trace {exc}") from None


def _epoch(points: Any) -> list[float]:
    return [float(t) / 1e9 for t in points.times.asi8]


METRIC_NAME = r"^[A-Za-z_:][A-Za-z0-9_:]*$"


@rules.command("backtest")
@click.option("-f", "--file", "path", required=True, help="rules YAML: `rules:` (and `alerting:` for routes)")
@click.option("--trace", "trace_path", required=True, help="CSV trace: a timestamp column and values (NAB's)")
@click.option("--column", default=None, help="the value column (default: the only one, or `value`)")
@click.option("--metric", default=None, help="the series' metric name in rules (default: the column's name)")
@click.option(
    "--interval", default=None, help="evaluation step, e.g. 5m (default: the trace's sampling interval)"
)
@click.option(
    "--level",
    type=click.Choice(["manual", "supervised", "semi_autonomous", "autonomous"]),
    default="supervised",
    show_default=True,
    help="automation level the runs would start at",
)
@click.option("--labels", "labels_path", default=None, help="NAB combined_windows.json: score the firings")
@click.option("--json", "as_json", is_flag=True)
@click.option("--log", "with_log", is_flag=True, help="with --json: the simulated notification log too")
def rules_backtest(
    path: str,
    trace_path: str,
    column: str | None,
    metric: str | None,
    interval: str | None,
    level: str,
    labels_path: str | None,
    as_json: bool,
    with_log: bool,
) -> None:
    """Replay the rules over a recorded trace with a simulated clock: firings, notifications that survive
    suppression, runs that would have started. The trace is one series named after its value column
    (`value` for NAB files; --metric renames it) with the label trace=<file stem>."""
    import re

    from automation.alerting.backtest import backtest, result_json, sampling_interval, trace_series
    from automation.alerting.definitions import AlertingDocument, RuleDefinition
    from automation.alerting.nab import read_windows, score_alerts, windows_for
    from automation.alerting.sources.memory import MemorySource
    from automation.choices import AutomationLevel

    document = load_yaml(path)
    items = items_of(document, "rules", path)
    try:
        definitions = [RuleDefinition.parse(item, where=f"rules[{i}]") for i, item in enumerate(items)]
        alerting_document = (
            AlertingDocument.parse(document["alerting"])
            if isinstance(document, dict) and "alerting" in document
            else AlertingDocument()
        )
    except AutomationError as exc:
        fail(exc)
        return
    step = _duration_option(interval, "--interval")
    points = _points(trace_path, column, step)
    name = metric or points.column
    if not re.match(METRIC_NAME, name):
        raise InputProblem(
            f"--metric: '{name}' is not a metric name (letters, digits, _ and :); pass --metric"
        )
    windows = None
    if labels_path is not None:
        try:
            key, windows = windows_for(read_windows(labels_path), trace_path)
        except AutomationError as exc:
            fail(exc)
            return
    times = _epoch(points)
    series = trace_series(times, points.values, metric=name, labels={"trace": points.name})
    if not series.samples:
        raise InputProblem(f"--trace {trace_path}: no values")
    first, last = series.samples[0].at, series.samples[-1].at
    try:
        step = step or sampling_interval(times)
        result = backtest(
            definitions,
            MemorySource([series], name="trace"),
            start=first,
            end=last,
            interval=step,
            document=alerting_document,
            level=AutomationLevel(level),
        )
    except AutomationError as exc:
        fail(exc)
        return
    scored = (
        {
            rule: score_alerts([f.detected_at for f in report.firings], windows, start=first, end=last)
            for rule, report in result.rules.items()
        }
        if windows is not None
        else {}
    )
    if as_json:
        payload = result_json(result, with_log=with_log)
        payload["trace"] = {
            "file": trace_path,
            "metric": name,
            "labels": series.label_map,
            "samples": len(series.samples),
        }
        if windows is not None:
            payload["labels"] = {"file": labels_path, "entry": key}
            for rule, score in scored.items():
                payload["rules"][rule]["windows"] = score.as_dict()
        click.echo(json.dumps(payload, indent=2))
        return
    _render_backtest(result, series, trace_path, scored)


def _render_backtest(result: Any, series: Any, trace_path: str, scored: dict[str, Any]) -> None:
    from automation.alerting.backtest import iso

    shown = f'{series.metric}{{trace="{series.label_map["trace"]}"}}'
    click.echo(
        f"{trace_path}: {shown}, {len(series.samples)} samples, "
        f"{iso(result.start)} to {iso(result.end)}; {result.evaluations} evaluations every "
        f"{result.interval:.0f} s; level {result.level}"
    )
    for name, reason in result.skipped.items():
        click.echo(f"rule {name}: skipped, {reason}")
    for name, report in result.rules.items():
        gated = sum(1 for r in report.runs if r.gated)
        click.echo(
            f"rule {name}: {len(report.firings)} firing(s), {len(report.notifications)} notification(s), "
            f"{len(report.runs)} run(s) ({gated} behind an approval)"
        )
        held = {
            d: n
            for d, n in report.decisions.items()
            if d in ("flapping", "cooldown", "inhibited", "silenced")
        }
        if held:
            click.echo("  suppressed: " + ", ".join(f"{d} {n}" for d, n in sorted(held.items())))
        for firing in report.firings[:20]:
            click.echo(f"  firing {iso(firing.start)} -> {iso(firing.end) or 'still firing'}")
        if len(report.firings) > 20:
            click.echo(f"  ... {len(report.firings) - 20} more (--json lists them all)")
        score = scored.get(name)
        if score is not None:
            delay = score.mean_delay
            click.echo(
                f"  labelled windows: {score.caught} of {len(score.windows)} caught"
                + (f" (mean delay {delay / 60:.0f} min from the window's start)" if delay is not None else "")
                + f"; {score.false_alerts} false alert(s), {score.false_alerts_per_week:.2f} per week"
            )


@click.group()
def anomaly() -> None:
    """Anomaly scores as `anomaly()` sees them, for offline study (NAB's result format)."""


@anomaly.command("score")
@click.option("--trace", "trace_path", required=True, help="CSV trace: a timestamp column and values (NAB's)")
@click.option("--column", default=None, help="the value column (default: the only one, or `value`)")
@click.option("-o", "--output", required=True, help="CSV to write: timestamp,value,anomaly_score")
def anomaly_score(trace_path: str, column: str | None, output: str) -> None:
    """For each row of the trace, the score in [0, 1] that anomaly() would have seen at that row's time,
    judged from the rows before it only (score / (score + 3): 0.5 is 3 interval half-widths out)."""
    import csv
    import math

    import numpy as np

    from automation.alerting.backtest import anomaly_scores, trace_series
    from automation.alerting.rules import anomaly_score_01

    if not Path(output).parent.is_dir():
        raise InputProblem(f"--output {output}: no such directory")
    points = _points(trace_path, column, None)
    times = _epoch(points)
    series = trace_series(times, points.values, metric="value", labels={})
    scores = anomaly_scores(series, times)
    stamps = points.times.strftime("%Y-%m-%d %H:%M:%S")
    try:
        with Path(output).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for stamp, value, score in zip(stamps, points.values, scores, strict=True):
                shown = "" if math.isnan(value) else np.format_float_positional(value, trim="-")
                writer.writerow([stamp, shown, f"{anomaly_score_01(score):.6f}"])
    except OSError as exc:
        raise InputProblem(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    judged = sum(1 for s in scores if not math.isnan(s))
    click.echo(
        f"{output}: {len(scores)} rows, {judged} scored ({len(scores) - judged} before enough history)"
    )
