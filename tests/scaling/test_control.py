"""One decision of the loop, without I/O: the reasons say why, scale-in follows its rules, and a
forecasting policy without a forecast is reactive and says why."""

from __future__ import annotations

from typing import Any

import numpy as np

from automation.scaling.choices import Action, Basis
from automation.scaling.control import Memory, Situation, decide
from automation.scaling.definitions import ScalingTargetDefinition
from automation.scaling.fitting import ForecastPath

NOW = 1_800_000_000.0  # a multiple of 60: buckets start on the minute


def definition(**changes: Any) -> ScalingTargetDefinition:
    return ScalingTargetDefinition.parse(
        {
            "name": "web",
            "service": "web-api",
            "load": {"metric": "rps", "unit": "req/s", "step": 60},
            "capacity_per_replica": 200,
            "target_utilization": 1.0,
            "max_replicas": 20,
            "provisioning_delay": "10m",
            "lead_time": "12m",
            **changes,
        }
    )


def path(values: list[float], *, width: float = 0.0) -> ForecastPath:
    """A forecast of one value per minute from the current minute on."""
    mean = np.asarray(values, dtype=float)
    return ForecastPath(
        times=NOW + 60.0 * np.arange(len(values)),
        mean=mean,
        lower=mean - width,
        upper=mean + width,
        step=60.0,
        model="test",
    )


def situation(observed: float, current: int, forecast: ForecastPath | None = None, **more: Any) -> Situation:
    return Situation(
        now=NOW, interval=60.0, observed=observed, current=current, serving=current, forecast=forecast, **more
    )


def test_a_forecast_peak_ahead_scales_up_and_says_so() -> None:
    forecast = path([600.0] * 12 + [1140.0] + [600.0] * 4, width=100.0)  # 1,240 req/s at +12 min
    outcome = decide(definition(), situation(600.0, 3, forecast), Memory())
    assert outcome.action == Action.SCALE_UP and outcome.basis == Basis.FORECAST
    assert outcome.desired == 7
    assert outcome.reasons[0] == "forecast peak 1,240 req/s in 12 min needs 7 replicas"
    assert outcome.peak is not None and (outcome.peak.lower, outcome.peak.upper) == (1040.0, 1240.0)
    assert outcome.memory.last_scale_up_at == NOW == outcome.memory.last_change_at


def test_scale_in_on_a_forecast_alone_is_refused() -> None:
    forecast = path([100.0] * 30)  # the forecast says one replica; the observed load needs four
    outcome = decide(definition(policy="predictive"), situation(790.0, 4, forecast), Memory())
    assert outcome.desired == 4 and outcome.action == Action.HOLD
    assert any(r.startswith("scale-in refused: forecast only") for r in outcome.reasons), outcome.reasons


def test_scale_in_goes_as_far_as_the_observed_load_and_the_step_allow() -> None:
    forecast = path([100.0] * 30)
    allowed = definition(
        policy="predictive", scale_in={"on_forecast_alone": True, "max_percent": 25, "cooldown": 0}
    )
    outcome = decide(allowed, situation(100.0, 8, forecast), Memory())
    assert outcome.desired == 6  # 25% of 8 per step
    assert "scale-in limited to 25% per step" in outcome.reasons


def test_scale_in_waits_for_its_cooldown() -> None:
    memory = Memory(last_change_at=NOW - 120)
    outcome = decide(definition(policy="reactive"), situation(100.0, 6), memory)
    assert outcome.desired == 6 and outcome.action == Action.HOLD
    assert any(r.startswith("held by cooldown") for r in outcome.reasons), outcome.reasons


def test_a_forecasting_policy_without_a_forecast_is_reactive_and_says_why() -> None:
    why = "forecast fit failed (ValueError: boom)"
    outcome = decide(definition(policy="predictive"), situation(1000.0, 2, None, no_forecast=why), Memory())
    assert outcome.basis == Basis.FALLBACK
    assert outcome.desired == 5  # 1000 req/s at 200 per replica, fully used
    assert outcome.reasons[0].startswith(f"{why}: reactive: ")


def test_hybrid_takes_the_reactive_answer_when_it_is_larger() -> None:
    outcome = decide(definition(policy="hybrid"), situation(1500.0, 3, path([500.0] * 30)), Memory())
    # reactive wants 8, but the HPA adds at most max(4 pods, 100%) per 15-second period: 3 -> 7
    assert outcome.desired == 7 and outcome.basis == Basis.OBSERVED
    assert outcome.reasons[1].startswith("reactive needs more")


def test_bounds_cap_what_the_policy_wants() -> None:
    outcome = decide(definition(max_replicas=5), situation(600.0, 3, path([5000.0] * 30)), Memory())
    assert outcome.desired == 5 and "capped at max_replicas 5" in outcome.reasons


def test_no_load_and_no_forecast_changes_nothing() -> None:
    outcome = decide(definition(policy="reactive"), situation(float("nan"), 3), Memory())
    assert (outcome.desired, outcome.action) == (3, Action.NO_DATA)
