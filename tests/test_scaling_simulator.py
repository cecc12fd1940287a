"""The simulator's physics and accounting on hand-checkable traces, and predictive vs reactive on a ramp."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automation.forecasting import ForecastConfigError, trace_from_series
from automation.scaling import (
    CostPoint,
    ReactivePolicy,
    SimulationSettings,
    cost_match,
    make_policy,
    reactive_under_at,
    simulate,
)
from automation.scaling.plot import plot_simulation

MINUTE = pd.Timedelta(minutes=1)


def settings(**overrides: object) -> SimulationSettings:
    values: dict = {
        "capacity_per_replica": 10.0,
        "provisioning_delay": pd.Timedelta(minutes=10),
        "warmup": pd.Timedelta(0),
    }
    values.update(overrides)
    return SimulationSettings(**values)


def test_constant_load_settles_on_the_hpa_count_and_bills_every_replica() -> None:
    trace = trace_from_series(np.full(120, 42.0), step=MINUTE)
    result = simulate(trace, ReactivePolicy(target_utilization=0.5), settings=settings())
    # starts at ceil(42 / 10 / 0.7) = 6, scales to ceil(42 / (10 * 0.5)) = 9 at the first decision
    assert result.timeline["requested_replicas"].tolist() == [6.0] + [9.0] * 119
    assert result.under_provisioned_minutes == 0
    assert result.replica_hours == pytest.approx((6 + 9 * 119) / 60)
    assert result.scale_actions == 1
    assert math.isnan(result.mape) and result.model == "none (reactive)"


def test_a_load_step_is_short_for_measurement_lag_plus_provisioning_delay() -> None:
    load = np.r_[np.full(60, 10.0), np.full(60, 40.0)]
    trace = trace_from_series(load, step=MINUTE)
    policy = ReactivePolicy(target_utilization=1.0)
    result = simulate(trace, policy, settings=settings(initial_replicas=1))
    # minute 60 is seen at the decision of minute 61; the 3 new replicas serve from minute 71
    assert result.under_provisioned_minutes == 11
    instant = simulate(
        trace,
        ReactivePolicy(target_utilization=1.0),
        settings=settings(initial_replicas=1, provisioning_delay=pd.Timedelta(0)),
    )
    assert instant.under_provisioned_minutes == 1


def test_replicas_ready_mid_step_serve_the_rest_of_it() -> None:
    thirty = pd.Timedelta(minutes=30)
    trace = trace_from_series(np.r_[np.full(4, 10.0), np.full(4, 40.0)], step=thirty)
    result = simulate(trace, ReactivePolicy(target_utilization=1.0), settings=settings(initial_replicas=1))
    # the 30-minute step at 40 is short, then 10 more minutes until the new replicas are ready
    assert result.under_provisioned_minutes == 40
    assert result.timeline["serving_capacity"].iloc[5] == pytest.approx(10 + 30 * 20 / 30)


def test_missing_load_is_not_scored_and_the_policy_holds() -> None:
    load = np.r_[np.full(30, 20.0), np.full(30, np.nan), np.full(30, 20.0)]
    result = simulate(trace_from_series(load, step=MINUTE), ReactivePolicy(), settings=settings())
    assert result.scored_minutes == 60
    assert result.timeline["requested_replicas"].nunique() == 1
    assert "30 steps without load" in result.notes[0]


def test_decision_interval_must_be_a_multiple_of_the_step() -> None:
    trace = trace_from_series(np.full(10, 1.0), step=pd.Timedelta(minutes=5))
    with pytest.raises(ForecastConfigError, match="decision_interval"):
        simulate(trace, ReactivePolicy(), settings=settings(decision_interval=pd.Timedelta(minutes=7)))


def daily_ramps(days: int, *, step: pd.Timedelta, seed: int = 0) -> np.ndarray:
    steps_per_day = int(pd.Timedelta(days=1) / step)
    hours = (np.arange(days * steps_per_day) % steps_per_day) * step / pd.Timedelta(hours=1)
    busy = np.clip(np.minimum(hours - 7, 20 - hours), 0, 1)  # one-hour ramps up at 07:00, down at 19:00
    return 100 + 300 * busy + np.random.default_rng(seed).normal(0, 5, len(hours))


def test_predictive_anticipates_daily_ramps_that_reactive_chases(tmp_path: Path) -> None:
    step = pd.Timedelta(minutes=5)
    trace = trace_from_series(daily_ramps(6, step=step), step=step, name="ramps")
    common = settings(capacity_per_replica=50.0, warmup=pd.Timedelta(days=3))
    reactive = simulate(trace, make_policy("reactive", target_utilization=0.7), settings=common)
    predictive = simulate(trace, make_policy("predictive"), settings=common)
    # every ramp-up costs reactive at least its measurement step plus the provisioning delay
    assert reactive.under_provisioned_minutes >= 3 * 10
    assert predictive.under_provisioned_minutes <= reactive.under_provisioned_minutes / 3
    assert predictive.replica_hours < reactive.replica_hours
    # with 2-5 days of history a seasonal model still carries ~sigma/sqrt(days) noise in its season, so it
    # beats seasonal naive (MASE 1) by less than the 1/sqrt(2) of a perfectly known season
    assert 0.7 < predictive.mase < 0.95 and predictive.mape < 5
    hybrid = simulate(trace, make_policy("hybrid"), settings=common)
    assert hybrid.under_provisioned_minutes <= predictive.under_provisioned_minutes
    assert hybrid.replica_hours >= predictive.replica_hours
    written = plot_simulation(predictive, tmp_path / "plots" / "ramps.png")
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(predictive.summary()) >= {
        "under_provisioned_minutes",
        "replica_hours",
        "over_provisioning_ratio",
        "scale_actions",
        "mape",
        "mase",
        "model",
    }


def test_cost_match_interpolates_the_reactive_curve_and_refuses_to_extrapolate() -> None:
    curve = [
        CostPoint(label="0.9", replica_hours=100, under_provisioned_minutes=50),
        CostPoint(label="0.5", replica_hours=200, under_provisioned_minutes=10),
    ]
    assert reactive_under_at(curve, 150) == pytest.approx(30)
    match = cost_match(curve, CostPoint(label="p", replica_hours=125, under_provisioned_minutes=10))
    assert (
        match.inside
        and match.reactive_under_at_same_cost == pytest.approx(40)
        and match.ratio == pytest.approx(0.25)
    )
    outside = cost_match(curve, CostPoint(label="p", replica_hours=90, under_provisioned_minutes=1))
    assert not outside.inside and math.isnan(outside.ratio)
