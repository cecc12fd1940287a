"""CLI: `automation capacity plan`: per stored scaling target, the forecast peak over a horizon, the
replicas it needs, the headroom, and right-sizing advice; `--html` writes the offline report. `--trace`
plans one recorded trace (with the target's numbers given as options) without the database."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from automation.forecasting.errors import ForecastingError
from automation.scaling.capacity import CapacityPlan, CapacitySettings, CapacitySpec, plan_capacity

__all__ = ["capacity_group"]


def _settings(
    ctx: click.Context, horizon: pd.Timedelta, resolution: pd.Timedelta, level: float
) -> CapacitySettings:
    try:
        return CapacitySettings(horizon=horizon, resolution=resolution, level=level)
    except ForecastingError as exc:
        option = getattr(exc, "option", None)
        raise click.BadParameter(str(exc), ctx=ctx, param_hint=f"'--{option}'" if option else None) from exc


def _print(plans: list[CapacityPlan], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"targets": [plan.to_dict() for plan in plans]}, indent=2))
        return
    for plan in plans:
        found = plan.to_dict()
        click.echo(
            f"{plan.spec.name}: {found['verdict']}; expected peak {found['expected_peak_upper']} "
            f"({found['expected_peak_at'] or 'observed'}), needs {plan.replicas_needed} of "
            f"{plan.spec.max_replicas} replicas, headroom {found['headroom']}"
        )
        for line in plan.advice:
            click.echo(f"  - {line}")
        for line in plan.notes:
            click.echo(f"  note: {line}")


@click.group("capacity")
def capacity_group() -> None:
    """Capacity planning from the load forecasts."""


@capacity_group.command("plan")
@click.option("--horizon", default="30d", show_default=True, help="How far ahead to plan (e.g. 30d).")
@click.option("--resolution", default="1h", show_default=True, help="Planning resolution: bucket peaks.")
@click.option(
    "--level",
    type=click.FloatRange(0.5, 0.999, min_open=True),
    default=0.95,
    show_default=True,
    help="Upper quantile of the forecast the replicas are planned for.",
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the report."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Plan one recorded trace (CSV, as `automation forecast`) instead of the stored targets.",
)
@click.option("--column", default=None, help="With --trace: the value column.")
@click.option("--name", default=None, help="With --trace: the target's name (default: the file name).")
@click.option("--capacity-per-replica", type=float, help="With --trace: load one replica holds at 100%.")
@click.option("--target-utilization", type=float, default=0.8, show_default=True)
@click.option("--min-replicas", type=int, default=1, show_default=True)
@click.option("--max-replicas", type=int, help="With --trace: the target's max_replicas.")
@click.option("--current-replicas", type=int, default=None, help="With --trace: replicas running now.")
@click.option("--unit", default="", help="With --trace: the load's unit, for the report (e.g. req/s).")
@click.pass_context
def plan_command(
    ctx: click.Context,
    horizon: str,
    resolution: str,
    level: float,
    html_path: Path | None,
    as_json: bool,
    trace_path: Path | None,
    column: str | None,
    name: str | None,
    capacity_per_replica: float | None,
    target_utilization: float,
    min_replicas: int,
    max_replicas: int | None,
    current_replicas: int | None,
    unit: str,
) -> None:
    """The capacity plan: expected peak and when, replicas needed, headroom, advice per target."""
    from automation.cli.forecast import _duration, _load

    horizon_value = _duration(ctx, _param(ctx, "horizon"), horizon)
    resolution_value = _duration(ctx, _param(ctx, "resolution"), resolution)
    assert horizon_value is not None and resolution_value is not None  # noqa: S101 - defaults are set
    settings = _settings(ctx, horizon_value, resolution_value, level)
    if trace_path is None:
        plans = _stored_plans(settings)
    else:
        for flag, value in (
            ("--capacity-per-replica", capacity_per_replica),
            ("--max-replicas", max_replicas),
        ):
            if value is None:
                raise click.BadParameter("is required with --trace", param_hint=f"'{flag}'")
        trace = _load(trace_path, column, None, None)
        try:
            spec = CapacitySpec(
                name=name or trace_path.stem,
                capacity_per_replica=float(capacity_per_replica or 0),
                target_utilization=target_utilization,
                min_replicas=min_replicas,
                max_replicas=int(max_replicas or 0),
                current_replicas=current_replicas,
                unit=unit,
            )
        except ForecastingError as exc:
            option = str(getattr(exc, "option", "")).replace("_", "-")
            raise click.BadParameter(str(exc), param_hint=f"'--{option}'" if option else None) from exc
        plans = [plan_capacity(spec, trace.load, settings)]
    if html_path is not None:
        from automation.scaling.capacity_report import write_html

        write_html(plans, html_path)
        if not as_json:
            click.echo(f"report written to {html_path}")
    _print(plans, as_json)


def _param(ctx: click.Context, name: str) -> click.Parameter:
    for param in ctx.command.params:
        if param.name == name:
            return param
    raise LookupError(name)  # pragma: no cover - the options are declared above


def _stored_plans(settings: CapacitySettings) -> list[CapacityPlan]:
    """The plans of the stored scaling targets (the database is set up here: `--trace` needs none)."""
    from automation.bootstrap import setup

    setup()
    from automation.scaling.services.capacity import plan_targets

    plans = plan_targets(settings)
    if not plans:
        click.echo(
            "no scaling targets stored (automation scaling apply -f scaling.yml), nothing to plan", err=True
        )
    return plans
