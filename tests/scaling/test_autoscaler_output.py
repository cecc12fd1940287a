"""A load that is already an autoscaler's output (step-shaped, a few quantised levels) is told apart from
demand, idle-with-bursts and jittery quantised metrics; `assess_forecastability`, `automation scaling
backtest` and the capacity plan say so."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from automation.cli.forecast import scaling_group
from automation.forecasting import load_trace, trace_from_series
from automation.forecasting.applicability import assess_forecastability, step_shape
from automation.scaling.capacity import CapacitySettings, CapacitySpec, plan_capacity

DATA = Path(__file__).resolve().parents[1] / "data"
STEP = pd.Timedelta(minutes=5)


def demand(days: int = 10, *, seed: int = 1) -> pd.Series:
    """5-minute demand: a daily cycle between 200 and 1,000 with 5% noise."""
    index = pd.date_range("2026-03-02", periods=288 * days, freq="5min")
    hours = (index.hour + index.minute / 60).to_numpy()
    shape = 600 - 400 * np.cos(2 * np.pi * (hours - 3) / 24)
    noise = np.random.default_rng(seed).normal(0, 0.05, len(index))
    return pd.Series(shape * (1 + noise), index=index)


def replicas_of(load: pd.Series, *, per_replica: float = 100.0, target: float = 0.7) -> pd.Series:
    """What an autoscaler held for `load`: replicas at the target, up at once, down only after the need
    stayed lower for half an hour (a stabilisation window)."""
    need = np.ceil(load.to_numpy() / (per_replica * target))
    held = np.empty_like(need)
    current, lower_since = need[0], 0
    for i, wanted in enumerate(need):
        if wanted > current:
            current, lower_since = wanted, 0
        elif wanted < current:
            lower_since += 1
            if lower_since >= 6:
                current, lower_since = max(need[i - 5 : i + 1]), 0
        else:
            lower_since = 0
        held[i] = current
    return pd.Series(held, index=load.index)


def test_an_autoscalers_replica_count_is_flagged() -> None:
    replicas = replicas_of(demand())
    shape = step_shape(replicas.to_numpy())
    assert shape.autoscaled
    assert shape.unit == pytest.approx(1.0)
    assert 2 <= len(shape.levels) <= 30 and shape.flat_share >= 0.8 and shape.level_changes >= 2


def test_capacity_it_held_in_load_units_is_flagged_with_its_unit() -> None:
    capacity = replicas_of(demand(seed=2)) * 37.5  # replicas x capacity per replica, with a gap or two
    capacity.iloc[100:110] = np.nan
    shape = step_shape(capacity.to_numpy())
    assert shape.autoscaled and shape.unit == pytest.approx(37.5)


def test_the_demand_behind_it_is_not() -> None:
    shape = step_shape(demand().to_numpy())
    assert not shape.autoscaled and shape.flat_share < 0.1


def test_idle_with_bursts_is_not_an_autoscaler() -> None:
    # a disk that writes nothing most of the time: one flat level (zero) and spikes
    rng = np.random.default_rng(3)
    values = np.zeros(288 * 7)
    bursts = rng.choice(len(values), 200, replace=False)
    values[bursts] = rng.gamma(2.0, 5e5, len(bursts))
    shape = step_shape(values)
    assert not shape.autoscaled and shape.flat_share > 0.8 and len(shape.levels) == 1


def test_a_jittery_quantised_metric_is_not_an_autoscaler() -> None:
    # idle CPU reported in steps of 0.002 %: few values, but it rarely holds one for three samples
    rng = np.random.default_rng(4)
    values = 0.13 + 0.002 * rng.integers(-2, 3, 288 * 7)
    shape = step_shape(values)
    assert not shape.autoscaled and shape.flat_share < 0.5


def test_steps_on_levels_of_no_common_unit_are_not_an_autoscaler() -> None:
    levels = np.array([1.0, 1.73, 2.91, 4.2])
    values = np.repeat(levels[np.arange(40) % 4], 36)
    shape = step_shape(values)
    assert shape.flat_share == 1.0 and math.isnan(shape.unit) and not shape.autoscaled


def test_a_constant_series_is_not_an_autoscaler() -> None:
    assert not step_shape(np.full(500, 3.0)).autoscaled
    assert not step_shape(np.array([1.0, 2.0])).autoscaled
    assert not step_shape(np.full(100, np.nan)).autoscaled


@pytest.mark.parametrize(
    "name",
    [
        "nab/realKnownCause/nyc_taxi.csv",
        "nab/realKnownCause/cpu_utilization_asg_misconfiguration.csv",
        "nab/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv",
        "nab/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
        "nab/realAWSCloudwatch/elb_request_count_8c0756.csv",
        "nasa-http/requests_per_minute_rows_0-7199.csv",
        "nasa-http/requests_per_minute_rows_38000-44012.csv",
    ],
)
def test_real_loads_are_not_taken_for_an_autoscalers_output(name: str) -> None:
    trace = load_trace(DATA / name)
    verdict = assess_forecastability(trace)
    assert not verdict.autoscaler_output
    assert verdict.summary()["autoscaler_output"] is False


def test_forecastability_says_why_forecasting_cannot_help() -> None:
    trace = trace_from_series(replicas_of(demand()) * 100.0, step=STEP, name="held")
    verdict = assess_forecastability(trace)
    assert verdict.autoscaler_output and not verdict.applicable
    reason = next(r for r in verdict.reasons if "autoscaler" in r)
    assert "multiples of 100" in reason and "held 15m or more" in reason
    summary = verdict.summary()
    assert summary["autoscaler_output"] is True
    assert summary["step_shape"]["unit"] == pytest.approx(100.0)  # type: ignore[index]


def test_scaling_backtest_says_it(tmp_path: Path) -> None:
    held = replicas_of(demand(days=3)) * 100.0
    path = tmp_path / "held.csv"
    pd.DataFrame({"timestamp": held.index.strftime("%Y-%m-%d %H:%M:%S"), "value": held.to_numpy()}).to_csv(
        path, index=False
    )
    args = ["backtest", "--trace", str(path), "--policy", "hybrid", "--capacity-per-replica", "100"]
    result = CliRunner().invoke(scaling_group, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["forecastability"]["autoscaler_output"] is True
    assert any("output of an autoscaler" in note and "reactive" in note for note in payload["notes"])
    args[args.index("hybrid")] = "reactive"  # the verdict is printed whatever the policy
    text = CliRunner().invoke(scaling_group, args)
    assert text.exit_code == 0, text.output
    assert "forecasting applicable     no — the load looks like the output of an autoscaler" in text.output


def test_the_capacity_plan_holds_the_observed_peak_and_says_why() -> None:
    spec = CapacitySpec(name="web", capacity_per_replica=100.0, max_replicas=40)
    held = replicas_of(demand(days=14)) * 100.0
    plan = plan_capacity(spec, held, CapacitySettings(horizon=pd.Timedelta(days=7)))
    assert plan.autoscaler_output and not plan.forecast_applies and plan.forecast.empty
    assert plan.peak_upper == pytest.approx(held.max())
    assert any("output of an autoscaler" in note and "observed peak" in note for note in plan.notes)
    assert plan.to_dict()["autoscaler_output"] is True
    # the demand behind it is forecast as before
    planned = plan_capacity(spec, demand(days=14), CapacitySettings(horizon=pd.Timedelta(days=7)))
    assert planned.forecast_applies and not planned.autoscaler_output
