"""`automation scaling apply|targets|delete|evaluate|decisions|replay`: scaling targets and the loop's
decision log from a shell, beside `scaling backtest` (automation/cli/forecast.py, on files alone). Exit
code 2 for bad input (one line per error), 1 for a refused operation."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from automation.cli.forecast import (
    _duration,
    _json_default,
    _load,
    _progress,
    column_option,
    interval_option,
    outage_option,
    scaling_group,
    trace_option,
    warmup_option,
)
from automation.cli.inputs import InputProblem, fail, items_of, load_yaml
from automation.errors import AutomationError
from automation.scaling.choices import TargetKind
from automation.scaling.limits import DEFAULT_DECISIONS, MAX_DECISIONS

__all__ = ["scaling_group"]


def _setup() -> None:
    from automation.bootstrap import setup

    setup()


@scaling_group.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
def scaling_apply(path: str) -> None:
    """Store the scaling targets of a YAML file (`targets:` list); all or none."""
    document = load_yaml(path)
    targets = items_of(document, "targets", path)
    _setup()
    from automation.scaling.services.targets import save_targets

    try:
        stored = save_targets(targets)
    except AutomationError as exc:
        fail(exc)
        return
    for target in stored:
        click.echo(f"scaling target {target.name} stored")


@scaling_group.command("targets")
@click.option("--json", "as_json", is_flag=True)
def scaling_targets(as_json: bool) -> None:
    """The scaling targets, each active or disabled (disabled: its own `enabled`, or predictive scaling
    off in the config), with its last decision."""
    _setup()
    from automation.config import current_config
    from automation.models import ScalingTarget
    from automation.scaling.serializers import target_json

    on = bool(current_config().enable_predictive_scaling)
    shown = [target_json(t, on) for t in ScalingTarget.objects.order_by("name")]
    if as_json:
        click.echo(json.dumps({"enabled": on, "targets": shown}, indent=2))
        return
    if not on:
        click.echo("predictive scaling is off (AutomationConfig.enable_predictive_scaling): no decisions")
    for target in shown:
        definition = target["definition"]
        last = target["last_decision"]
        tail = (
            f"last: {last['action']} {last['current_replicas']}->{last['desired_replicas']}" if last else ""
        )
        click.echo(
            f"{target['name']:<30} {target['status']:<9} {definition['policy']:<10} "
            f"{definition['service']} "
            f"[{definition.get('min_replicas', 1)}..{definition.get('max_replicas', 10)}] "
            f"{tail}".rstrip()
        )


@scaling_group.command("delete")
@click.argument("name")
def scaling_delete(name: str) -> None:
    """Delete a scaling target and its decision log."""
    _setup()
    from automation.scaling.services.targets import delete_target

    try:
        delete_target(name)
    except AutomationError as exc:
        fail(exc)
    click.echo(f"scaling target {name} deleted")


@scaling_group.command("evaluate")
@click.option("--once", is_flag=True, required=True, help="one tick in the foreground, then exit")
@click.option("--json", "as_json", is_flag=True)
def scaling_evaluate(once: bool, as_json: bool) -> None:
    """Decide for every enabled target now (what Beat does every monitoring_interval)."""
    _setup()
    from automation.scaling.services.ticks import evaluate_all, scaling_enabled

    if not scaling_enabled():
        click.echo("predictive scaling is off (AutomationConfig.enable_predictive_scaling): nothing decided")
        return
    reports = evaluate_all()
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for report in reports:
        if "error" in report or "skipped" in report:
            click.echo(f"{report['target']}: {report.get('error') or report.get('skipped')}")
            continue
        click.echo(
            f"{report['target']}: {report['action']} {report['current']} -> {report['desired']}: "
            + "; ".join(report["reasons"])
        )


@scaling_group.command("decisions")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, MAX_DECISIONS), default=DEFAULT_DECISIONS, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def scaling_decisions(name: str, limit: int, as_json: bool) -> None:
    """A target's newest decisions, oldest first: load, forecast with its interval, replicas, reasons."""
    _setup()
    from automation.scaling.serializers import decisions_json
    from automation.scaling.services.targets import get_target

    try:
        log = decisions_json(get_target(name), limit)
    except AutomationError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(log, indent=2))
        return
    for decision in log["decisions"]:
        load = decision["observed_load"]
        forecast = decision["forecast"]
        band = ""
        if forecast is not None and forecast["upper"] is not None:
            band = f" forecast {forecast['mean']:.4g} [{forecast['lower']:.4g}, {forecast['upper']:.4g}]"
        click.echo(
            f"{decision['at'][:19]} {decision['action']:<10} {decision['current_replicas']}->"
            f"{decision['desired_replicas']} load {'-' if load is None else format(load, '.4g')}{band}"
        )
        for reason in decision["reasons"]:
            click.echo(f"    {reason}")


@scaling_group.command("plot")
@click.argument("name")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="default: NAME.png")
@click.option("--limit", type=click.IntRange(1, MAX_DECISIONS), default=MAX_DECISIONS, show_default=True)
def scaling_plot(name: str, output: str | None, limit: int) -> None:
    """A PNG of the target's decision log: load, the forecast band, capacity and replicas over time."""
    _setup()
    from automation.scaling.decision_plot import plot_decisions
    from automation.scaling.services.targets import get_target, target_definition

    try:
        target = get_target(name)
    except AutomationError as exc:
        fail(exc)
        return
    newest = list(target.decisions.order_by("-at", "-id")[:limit])
    if not newest:
        raise InputProblem(f"scaling target '{name}' has no decisions yet")
    definition = target_definition(target)
    pool = definition.worker_pool
    # A worker pool's load is its backlog: one worker's share is what it drains within the drain target.
    capacity = (
        pool.fallback_throughput * pool.drain_seconds
        if definition.kind == TargetKind.CELERY
        else definition.capacity * definition.target_utilization
    )
    written = plot_decisions(
        list(reversed(newest)),
        output or f"{name}.png",
        capacity=capacity,
        title=f"{name}: {definition.service}, {definition.policy}, last {len(newest)} decisions",
    )
    click.echo(str(written))


@scaling_group.command("replay")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False))
@click.option("--target", "target_name", default=None, help="Target of the file to replay.")
@trace_option
@column_option
@interval_option
@outage_option
@click.option(
    "--decision-interval",
    default=None,
    callback=_duration,
    help="How often the loop decides: 15s, 20s, 30s or whole minutes (default: 1m, or the step if finer).",
)
@warmup_option
@click.option("--compare", is_flag=True, help="Also run the simulator's own policy of the same settings.")
@click.option("--keep", is_flag=True, help="Keep the replay copy and its decision log (deleted by default).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def scaling_replay(
    path: str,
    target_name: str | None,
    trace_path: Path,
    column: str | None,
    interval: pd.Timedelta | None,
    zero_outage: pd.Timedelta | None,
    decision_interval: pd.Timedelta | None,
    warmup: pd.Timedelta | None,
    compare: bool,
    keep: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Replay a trace through the real loop (stored forecaster, guards, decision log, scale workflows
    run in this process against a replayed fleet) on a simulated clock; the figures of `scaling backtest`."""
    document = load_yaml(path)
    targets = items_of(document, "targets", path)
    trace = _load(trace_path, column, interval, zero_outage)
    _setup()
    from automation.scaling.definitions import ScalingTargetDefinition
    from automation.scaling.replay import replay

    try:
        definitions = [ScalingTargetDefinition.parse(t, where=f"targets[{i}]") for i, t in enumerate(targets)]
    except AutomationError as exc:
        fail(exc)
        return
    names = [d.name for d in definitions]
    if target_name is None and len(definitions) != 1:
        raise InputProblem(f"--target: {path} has {len(definitions)} targets; name one ({', '.join(names)})")
    chosen = [d for d in definitions if target_name in (None, d.name)]
    if not chosen:
        raise InputProblem(f"--target: no target '{target_name}' in {path} ({', '.join(names)})")
    try:
        answer = replay(
            chosen[0],
            trace,
            decision_interval=decision_interval,
            warmup=warmup,
            keep=keep,
            compare=compare,
            progress=_progress(progress, len(trace.load)),
        )
    except AutomationError as exc:
        fail(exc)
        return
    answer["notes"] = list(trace.notes) + answer["loop"].pop("notes", [])
    if as_json:
        click.echo(json.dumps(answer, default=_json_default))
        return
    sides = ["loop"] + (["simulator"] if compare else [])
    step = answer["settings"]["step"]
    click.echo(f"{'trace':<27}{trace_path} ({len(trace.load)} steps of {step})")
    for side in sides:
        click.echo(f"{side + ' policy':<27}{json.dumps(answer[side]['policy'], default=_json_default)}")
    for key in ("under_provisioned_minutes", "replica_hours", "over_provisioning_ratio", "scale_actions"):
        values = "  ".join(f"{str(answer[side][key]):>14}" for side in sides)
        click.echo(f"{key:<27}{values}")
    for note in answer["notes"]:
        click.echo(f"note: {note}")
