"""CLI: `automation forecast` (forecast a trace), `automation scaling backtest` (replay a trace through a
scaling policy) and `automation scaling frontier` (a policy's cost frontier against the HPA's). Exports
`forecast_command` and `scaling_group` for the main CLI.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from automation.forecasting.durations import format_duration, parse_duration
from automation.forecasting.errors import (
    DurationError,
    ForecastConfigError,
    ForecastingError,
    TraceFormatError,
)
from automation.forecasting.forecaster import MODEL_NAMES, ForecasterSettings, fit_forecaster
from automation.forecasting.traces import Trace, load_trace

__all__ = ["forecast_command", "scaling_group"]

PROGRESS_MIN_STEPS = 5000
# the defaults of automation.scaling.comparison, repeated so `--help` does not import the simulator
REACTIVE_TARGETS_DEFAULT = (0.5, 0.6, 0.7, 0.8, 0.9)
POLICY_QUANTILES_DEFAULT = (0.8, 0.85, 0.9, 0.95, 0.99)
HYBRID_TARGETS_DEFAULT = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> pd.Timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(
            value, allow_zero=param.name in ("provisioning_delay", "lead_time", "cooldown", "warmup")
        )
    except DurationError as exc:
        raise click.BadParameter(f"{exc.reason} (got {value!r})", ctx=ctx, param=param) from exc


def _load(
    path: Path, column: str | None, interval: pd.Timedelta | None, zero_outage: pd.Timedelta | None
) -> Trace:
    try:
        return load_trace(path, column=column, interval=interval, zero_outage=zero_outage)
    except TraceFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="'--trace'") from exc


def _progress(flag: bool | None, steps: int) -> bool:
    if flag is not None:
        return flag
    return sys.stderr.isatty() and steps >= PROGRESS_MIN_STEPS


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


trace_option = click.option(
    "--trace",
    "trace_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV trace: timestamp,value (NAB), minute_index,requests (NASA), or any CSV with --column.",
)
column_option = click.option("--column", default=None, help="Value column when the CSV has several.")
interval_option = click.option(
    "--interval",
    default=None,
    callback=_duration,
    help="Sampling interval (e.g. 5m): needed without timestamps; timestamped traces are resampled to it.",
)
warmup_option = click.option(
    "--warmup",
    default=None,
    callback=_duration,
    help="Excluded from the scores (default: a quarter of the trace, at most 7d).",
)
outage_option = click.option(
    "--zero-outage",
    default=None,
    callback=_duration,
    help="Runs of zeros at least this long are an outage (missing), e.g. 1h. NASA traces: 1h by default.",
)


@click.command("forecast")
@trace_option
@column_option
@interval_option
@outage_option
@click.option(
    "--horizon", default="1h", show_default=True, callback=_duration, help="How far ahead to forecast."
)
@click.option(
    "--model",
    type=click.Choice(MODEL_NAMES),
    default="auto",
    show_default=True,
    help="Model family; auto picks by rolling-origin backtest (MAE relative to seasonal naive).",
)
@click.option(
    "--coverage",
    type=click.FloatRange(0.5, 0.999),
    default=0.9,
    show_default=True,
    help="Central coverage of the prediction interval.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def forecast_command(
    trace_path: Path,
    column: str | None,
    interval: pd.Timedelta | None,
    zero_outage: pd.Timedelta | None,
    horizon: pd.Timedelta,
    model: str,
    coverage: float,
    as_json: bool,
) -> None:
    """Forecast the next HORIZON of a trace with prediction intervals."""
    trace = _load(trace_path, column, interval, zero_outage)
    steps = math.ceil(horizon / trace.step - 1e-9)
    if steps < 1:
        raise click.BadParameter(
            f"shorter than the trace step {format_duration(trace.step)}", param_hint="'--horizon'"
        )
    levels = (round((1 - coverage) / 2, 6), round(1 - (1 - coverage) / 2, 6))
    try:
        forecaster = fit_forecaster(
            trace.load, horizon=steps, step=trace.step, settings=ForecasterSettings(model=model)
        )
    except ForecastingError as exc:
        raise click.UsageError(str(exc)) from exc
    prediction = forecaster.forecast(steps, levels=levels)
    notes = list(trace.notes) + list(prediction.notes)
    lower, upper = prediction.quantiles[levels[0]], prediction.quantiles[levels[1]]
    if as_json:
        payload: dict[str, Any] = {
            "trace": str(trace_path),
            "model": forecaster.model_name,
            "model_detail": forecaster.model.name,
            "relative_mae": _number(forecaster.relative_mae),
            "backtest_relative_mae": {name: _number(score) for name, score in forecaster.scores.items()},
            "step": format_duration(trace.step),
            "horizon": format_duration(horizon),
            "coverage": coverage,
            "forecast": [
                {"time": time.isoformat(), "mean": _number(m), "lower": _number(lo), "upper": _number(hi)}
                for time, m, lo, hi in zip(prediction.index, prediction.mean, lower, upper, strict=True)
            ],
            "notes": notes,
        }
        click.echo(json.dumps(payload))
        return
    click.echo(f"trace      {trace_path} ({len(trace.load)} steps of {format_duration(trace.step)})")
    click.echo(
        f"model      {forecaster.model_name} [{forecaster.model.name}], backtest MAE / seasonal naive's "
        f"{forecaster.relative_mae:.3f}"
    )
    for note in notes:
        click.echo(f"note       {note}")
    click.echo(f"{'time':<20} {'mean':>12} {f'q{levels[0]:g}':>12} {f'q{levels[1]:g}':>12}")
    for time, m, lo, hi in zip(prediction.index, prediction.mean, lower, upper, strict=True):
        click.echo(f"{time:%Y-%m-%d %H:%M:%S} {m:12.3f} {lo:12.3f} {hi:12.3f}")


@click.group("scaling")
def scaling_group() -> None:
    """Scaling policies: replay traces through them."""


@scaling_group.command("backtest")
@trace_option
@column_option
@interval_option
@outage_option
@click.option("--policy", type=click.Choice(["predictive", "reactive", "hybrid"]), required=True)
@click.option(
    "--capacity-per-replica",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    help="Load one replica serves at 100% utilisation.",
)
@click.option(
    "--target-utilization",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.7,
    show_default=True,
    help="Reactive (HPA) utilisation target; also the predictive policy's warm-up fallback.",
)
@click.option(
    "--quantile",
    type=click.FloatRange(0.5, 1, max_open=True),
    default=None,
    help="Forecast quantile the policy provisions for (default: 0.99 for hybrid, chosen leave-one-trace-out; "
    "0.95 for predictive).",
)
@click.option(
    "--lead-time",
    default="10m",
    show_default=True,
    callback=_duration,
    help="How far ahead the predictive policy provisions (usually the provisioning delay).",
)
@click.option(
    "--provisioning-delay",
    default="10m",
    show_default=True,
    callback=_duration,
    help="Time from scale-up until a new replica serves.",
)
@click.option(
    "--decision-interval",
    default=None,
    callback=_duration,
    help="How often the policy decides: 15s, 20s, 30s or whole minutes (default: 1m, or the step if finer).",
)
@click.option("--min-replicas", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--max-replicas", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--max-step-up", type=click.IntRange(min=1), default=None, help="Most replicas added per decision."
)
@click.option(
    "--max-step-down", type=click.IntRange(min=1), default=None, help="Most replicas removed per decision."
)
@click.option(
    "--cooldown", default=None, callback=_duration, help="Wait after a scale action before the next."
)
@click.option(
    "--refit-every", default="1d", show_default=True, callback=_duration, help="Forecaster refit cadence."
)
@warmup_option
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG of load, forecast band and serving capacity.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal for long runs)."
)
def backtest_command(
    trace_path: Path,
    column: str | None,
    interval: pd.Timedelta | None,
    zero_outage: pd.Timedelta | None,
    policy: str,
    capacity_per_replica: float,
    target_utilization: float,
    quantile: float | None,
    lead_time: pd.Timedelta,
    provisioning_delay: pd.Timedelta,
    decision_interval: pd.Timedelta | None,
    min_replicas: int,
    max_replicas: int,
    max_step_up: int | None,
    max_step_down: int | None,
    cooldown: pd.Timedelta | None,
    refit_every: pd.Timedelta,
    warmup: pd.Timedelta | None,
    plot_path: Path | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Replay a load trace through a scaling policy and score it."""
    from automation.forecasting.applicability import assess_forecastability
    from automation.scaling.plot import plot_simulation
    from automation.scaling.policies import ScalingLimits, make_policy
    from automation.scaling.simulator import SimulationSettings, simulate

    trace = _load(trace_path, column, interval, zero_outage)
    try:
        limits = ScalingLimits(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            max_step_up=max_step_up,
            max_step_down=max_step_down,
            scale_up_cooldown=cooldown or pd.Timedelta(0),
            scale_down_cooldown=cooldown or pd.Timedelta(0),
        )
        chosen = make_policy(
            policy,
            target_utilization=target_utilization,
            quantile=quantile,
            limits=limits,
            refit_every=refit_every,
        )
        settings = SimulationSettings(
            capacity_per_replica=capacity_per_replica,
            provisioning_delay=provisioning_delay,
            lead_time=lead_time,
            decision_interval=decision_interval,
            warmup=warmup,
        )
        result = simulate(trace, chosen, settings=settings, progress=_progress(progress, len(trace.load)))
    except ForecastingError as exc:
        raise click.UsageError(str(exc)) from exc
    if plot_path is not None:
        plot_simulation(result, plot_path)
    summary = result.summary()
    forecastability = assess_forecastability(trace)
    summary["forecastability"] = forecastability.summary()
    summary["notes"] = list(trace.notes) + summary["notes"]
    if not forecastability.applicable and policy != "reactive":
        summary["notes"].append(
            "forecasting is unlikely to help this load: "
            + "; ".join(forecastability.reasons)
            + " — the reactive policy is the safer choice"
        )
    summary["settings"] = {
        "capacity_per_replica": capacity_per_replica,
        "provisioning_delay": format_duration(provisioning_delay),
        "lead_time": format_duration(lead_time),
        "decision_interval": summary["policy"]["decision_interval"],
        "step": format_duration(trace.step),
    }
    if plot_path is not None:
        summary["plot"] = str(plot_path)
    if as_json:
        click.echo(json.dumps(summary, default=_json_default))
        return
    click.echo(
        f"trace                      {trace_path} ({len(trace.load)} steps of {format_duration(trace.step)})"
    )
    click.echo(f"policy                     {json.dumps(summary['policy'], default=_json_default)}")
    for key in (
        "under_provisioned_minutes",
        "replica_hours",
        "over_provisioning_ratio",
        "scale_actions",
        "mape",
        "relative_mae",
        "model",
        "models",
        "scored_minutes",
    ):
        click.echo(f"{key:<26} {summary[key]}")
    verdict = "yes" if forecastability.applicable else "no — " + "; ".join(forecastability.reasons)
    click.echo(f"{'forecasting applicable':<26} {verdict}")
    for note in summary["notes"]:
        click.echo(f"note                       {note}")
    if plot_path is not None:
        click.echo(f"plot                       {plot_path}")


def _numbers(low: float, high: float, *, high_open: bool = False) -> Any:
    """A click callback for a comma-separated list of numbers in [low, high] (or [low, high))."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
        numbers = []
        for part in value.split(","):
            try:
                number = float(part)
            except ValueError:
                raise click.BadParameter(f"{part.strip()!r} is not a number", ctx=ctx, param=param) from None
            if not (low <= number <= high) or (high_open and number >= high) or math.isnan(number):
                bound = f"[{low:g}, {high:g}{')' if high_open else ']'}"
                raise click.BadParameter(f"{number:g} is outside {bound}", ctx=ctx, param=param)
            numbers.append(number)
        if len(set(numbers)) != len(numbers):
            raise click.BadParameter("values repeat", ctx=ctx, param=param)
        return tuple(numbers)

    return parse


@scaling_group.command("frontier")
@click.option(
    "--trace",
    "trace_paths",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV trace (repeat for several): as for `scaling backtest`.",
)
@column_option
@interval_option
@outage_option
@click.option("--policy", type=click.Choice(["hybrid", "predictive"]), default="hybrid", show_default=True)
@click.option(
    "--capacity-per-replica",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Load one replica serves (default: each trace's 99.9th percentile / 10).",
)
@click.option(
    "--targets",
    default=",".join(f"{t:g}" for t in REACTIVE_TARGETS_DEFAULT),
    show_default=True,
    callback=_numbers(0.05, 1.0),
    help="Reactive (HPA) utilisation targets to sweep.",
)
@click.option(
    "--policy-targets",
    default=",".join(f"{t:g}" for t in HYBRID_TARGETS_DEFAULT),
    show_default=True,
    callback=_numbers(0.05, 1.0),
    help="Utilisation targets of the hybrid's reactive floor (ignored for predictive).",
)
@click.option(
    "--search-floor",
    is_flag=True,
    help="Search the hybrid's floor target at each reactive point's cost (to 0.005) instead of sweeping "
    "--policy-targets: reads its frontier where the matches are made.",
)
@click.option(
    "--quantiles",
    default=",".join(f"{q:g}" for q in POLICY_QUANTILES_DEFAULT),
    show_default=True,
    callback=_numbers(0.5, 1.0, high_open=True),
    help="Forecast quantiles the policy is swept over.",
)
@click.option(
    "--provisioning-delay",
    default="10m",
    show_default=True,
    callback=_duration,
    help="Time from scale-up until a new replica serves; also the policy's lead time.",
)
@click.option(
    "--reactive-interval",
    default="15s",
    show_default=True,
    callback=_duration,
    help="How often the HPA decides (its sync period).",
)
@click.option(
    "--decision-interval",
    default="1m",
    show_default=True,
    callback=_duration,
    help="How often the policy decides (the scaling loop's monitoring interval).",
)
@warmup_option
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG of both curves and the matched pairs, one panel per trace.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def frontier_command(
    trace_paths: tuple[Path, ...],
    column: str | None,
    interval: pd.Timedelta | None,
    zero_outage: pd.Timedelta | None,
    policy: str,
    capacity_per_replica: float | None,
    targets: tuple[float, ...],
    policy_targets: tuple[float, ...],
    search_floor: bool,
    quantiles: tuple[float, ...],
    provisioning_delay: pd.Timedelta,
    reactive_interval: pd.Timedelta,
    decision_interval: pd.Timedelta,
    warmup: pd.Timedelta | None,
    plot_path: Path | None,
    as_json: bool,
) -> None:
    """Sweep the HPA over utilisation targets and a policy over forecast quantiles on each trace; match
    every reactive point that under-provisions with the policy's best point at no more replica-hours."""
    from automation.forecasting.applicability import assess_forecastability
    from automation.scaling.comparison import capacity_at_percentile, sweep_frontier
    from automation.scaling.plot import plot_frontiers
    from automation.scaling.simulator import SimulationSettings, control_grid

    if search_floor and policy != "hybrid":
        raise click.BadParameter("only the hybrid has a floor to search", param_hint="'--search-floor'")
    cadences = (("--reactive-interval", reactive_interval), ("--decision-interval", decision_interval))
    for name, value in cadences:
        try:
            control_grid(pd.Timedelta(minutes=1), value)
        except ForecastConfigError as exc:
            raise click.BadParameter(exc.reason, param_hint=f"'{name}'") from exc
    traces = [_load(path, column, interval, zero_outage) for path in trace_paths]
    reports = []
    for trace in traces:
        capacity = capacity_per_replica or capacity_at_percentile(trace)
        if not capacity > 0:
            raise click.BadParameter(
                f"{trace.name}: no positive load to size replicas from", param_hint="'--capacity-per-replica'"
            )
        settings = SimulationSettings(
            capacity_per_replica=capacity,
            provisioning_delay=provisioning_delay,
            lead_time=provisioning_delay,
            warmup=warmup,
        )
        try:
            report = sweep_frontier(
                trace,
                policy=policy,
                settings=settings,
                targets=targets,
                policy_targets=policy_targets,
                quantiles=quantiles,
                reactive_interval=reactive_interval,
                policy_interval=decision_interval,
                search_floor=search_floor,
            )
        except ForecastingError as exc:
            raise click.UsageError(str(exc)) from exc
        reports.append(report)
    if plot_path is not None:
        plot_frontiers(reports, plot_path)
    payload: dict[str, Any] = {
        "traces": [
            report.summary() | {"forecastability": assess_forecastability(trace).summary()}
            for report, trace in zip(reports, traces, strict=True)
        ]
    }
    if plot_path is not None:
        payload["plot"] = str(plot_path)
    if as_json:
        click.echo(json.dumps(payload, default=_json_default))
        return
    for summary, path in zip(payload["traces"], trace_paths, strict=True):
        click.echo(f"trace {path} — {policy} against reactive (HPA), frontier against frontier")
        applicability = summary["forecastability"]
        verdict = "yes" if applicability["applicable"] else "no — " + "; ".join(applicability["reasons"])
        click.echo(f"  forecasting applicable: {verdict}")
        click.echo(
            f"  capacity per replica {summary['settings']['capacity_per_replica']:g}, "
            f"provisioning delay {format_duration(provisioning_delay)}, reactive every "
            f"{format_duration(reactive_interval)}, {policy} every {format_duration(decision_interval)}"
        )
        click.echo(f"  {'run':<24} {'replica-hours':>14} {'under-min':>10}")
        for point in summary["reactive_curve"] + summary["policy_curve"]:
            click.echo(
                f"  {point['label']:<24} {point['replica_hours']:>14.1f} "
                f"{point['under_provisioned_minutes']:>10.1f}"
            )
        for match in summary["matches"]:
            base, best = match["reactive"], match["policy"]
            if best is None:
                click.echo(f"  {base['label']:<24} no {policy} point at no more replica-hours")
                continue
            click.echo(
                f"  {base['label']:<24} {base['under_provisioned_minutes']:>8.1f} min <- {best['label']} "
                f"{best['under_provisioned_minutes']:.1f} min: ratio {match['ratio']:.3f}"
            )
        median, worst = summary["median_ratio"], summary["worst_ratio"]
        click.echo(
            f"  matched ratio median {'-' if median is None else f'{median:.3f}'}, worst "
            f"{'-' if worst is None else f'{worst:.3f}'} ({summary['matched']} matched, "
            f"{summary['unmatched']} reactive points with no {policy} point as cheap)"
        )
    if plot_path is not None:
        click.echo(f"plot {plot_path}")


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
