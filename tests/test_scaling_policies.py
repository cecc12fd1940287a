"""Scaling policies: the HPA algorithm step by step, common limits, the predictive window, the registry."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from automation.forecasting import ForecastConfigError
from automation.scaling import (
    DecisionContext,
    ReactivePolicy,
    ScalingLimits,
    make_policy,
    policy_names,
    register_policy,
)
from automation.scaling.policies import forecast_window

T0 = pd.Timestamp("2024-01-01 00:00")
MINUTE = pd.Timedelta(minutes=1)


def context(at: int, requested: int, serving: int | None = None) -> DecisionContext:
    return DecisionContext(
        time=T0 + at * MINUTE,
        requested_replicas=requested,
        serving_replicas=requested if serving is None else serving,
        capacity_per_replica=10.0,
        step=MINUTE,
        decision_interval=MINUTE,
        lead_time=pd.Timedelta(minutes=10),
    )


def decide(policy: ReactivePolicy, at: int, load: float, requested: int, serving: int | None = None) -> int:
    policy.observe(T0 + at * MINUTE, load)
    return policy.decide(context(at, requested, serving)).desired


def test_hpa_scales_to_ceil_of_utilisation_over_target_outside_the_tolerance() -> None:
    policy = ReactivePolicy(target_utilization=0.5)
    assert decide(policy, 0, 20.0, 4) == 4  # utilisation 0.5: on target
    assert decide(policy, 1, 21.9, 4) == 4  # ratio 1.095: inside the 10% tolerance
    assert decide(policy, 2, 30.0, 4) == 6  # ratio 1.5 -> ceil(1.5 * 4)


def test_hpa_counts_unready_pods_at_zero_when_scaling_up() -> None:
    policy = ReactivePolicy(target_utilization=0.5)
    # 4 ready pods at 100% (ratio 2.0); with 2 unready at 0% the ratio is 40 / (6 * 10 * 0.5) = 1.33 -> 8
    assert decide(policy, 0, 40.0, 6, serving=4) == 8
    # ratio 0.9 on the ready pods, falling further with unready ones: hold, do not scale down mid-rollout
    assert decide(policy, 1, 18.0, 6, serving=4) == 6


def test_hpa_scale_down_waits_for_the_five_minute_stabilisation_window() -> None:
    policy = ReactivePolicy(target_utilization=0.5)
    assert decide(policy, 0, 30.0, 6) == 6
    for minute in range(1, 5):
        assert decide(policy, minute, 10.0, 6) == 6  # the recommendation of minute 0 still counts
    assert decide(policy, 5, 10.0, 6) == 2  # minute 0 has left the window
    assert decide(policy, 6, 50.0, 2) == 6  # scale-up is immediate, up to max(4 pods, 100%): 6 of 10


def test_hpa_scale_up_rate_limit_is_max_of_4_pods_and_100_percent_per_15_seconds() -> None:
    policy = ReactivePolicy(target_utilization=1.0)
    second = pd.Timedelta(seconds=1)

    def at(seconds: int, requested: int, serving: int) -> int:
        policy.observe(T0 + seconds * second, 200.0)
        when = replace(context(0, requested, serving), time=T0 + seconds * second)
        return policy.decide(when).desired

    assert at(0, 2, 2) == 6  # wants 20: max(2 + 4, 2 * 2)
    assert at(10, 6, 2) == 6  # the +4 of 10 s ago is inside the 15 s period: the period started at 2
    assert at(15, 6, 2) == 12  # it has left the period: max(6 + 4, 2 * 6)
    assert at(30, 12, 2) == 20  # unready pods at 0%: 200 / 120 -> 20, under max(16, 24)
    unlimited = ReactivePolicy(target_utilization=1.0, scale_up_rule=None)
    unlimited.observe(T0, 200.0)
    assert unlimited.decide(context(0, 2)).desired == 20


def test_limits_bound_steps_range_and_cooldown() -> None:
    limits = ScalingLimits(
        min_replicas=2,
        max_replicas=9,
        max_step_up=3,
        max_step_down=1,
        scale_down_cooldown=pd.Timedelta(minutes=10),
    )
    policy = ReactivePolicy(target_utilization=1.0, scale_down_window=pd.Timedelta(0), limits=limits)
    assert decide(policy, 0, 100.0, 2) == 5  # wants 10: +3 per decision
    assert decide(policy, 1, 100.0, 5) == 8
    assert decide(policy, 2, 100.0, 8) == 9  # max_replicas
    assert decide(policy, 5, 10.0, 9) == 9  # scale-down cooldown: 10 minutes after the last action
    assert decide(policy, 12, 10.0, 9) == 8  # then one at a time
    assert decide(policy, 30, 0.0, 3) == 2  # never below min_replicas


def test_forecast_window_covers_lead_time_to_lead_plus_interval() -> None:
    assert forecast_window(step=MINUTE, lead_time=pd.Timedelta(minutes=10), decision_interval=MINUTE) == (
        11,
        11,
    )
    thirty = pd.Timedelta(minutes=30)
    assert forecast_window(step=thirty, lead_time=pd.Timedelta(minutes=10), decision_interval=thirty) == (
        1,
        2,
    )
    five = pd.Timedelta(minutes=5)
    assert forecast_window(
        step=five, lead_time=pd.Timedelta(minutes=10), decision_interval=pd.Timedelta(minutes=15)
    ) == (
        3,
        5,
    )


def test_forecast_window_late_in_a_step_reaches_further() -> None:
    thirty = pd.Timedelta(minutes=30)
    lead = pd.Timedelta(minutes=10)
    # deciding every minute on a 30-minute trace: 25 minutes into the step, now + 10 min is in the next one
    assert forecast_window(step=thirty, lead_time=lead, decision_interval=MINUTE) == (1, 1)
    late = forecast_window(
        step=thirty, lead_time=lead, decision_interval=MINUTE, elapsed=pd.Timedelta(minutes=25)
    )
    assert late == (2, 2)


def test_registry_refuses_unknown_and_duplicate_names() -> None:
    assert policy_names() == ("hybrid", "predictive", "reactive")
    with pytest.raises(ForecastConfigError, match="unknown policy 'magic'"):
        make_policy("magic")
    with pytest.raises(ForecastConfigError, match="already registered"):
        register_policy("reactive", lambda **_: ReactivePolicy())
    with pytest.raises(ForecastConfigError, match="target_utilization"):
        ReactivePolicy(target_utilization=1.5)
    with pytest.raises(ForecastConfigError, match="max_replicas"):
        ScalingLimits(min_replicas=5, max_replicas=2)
