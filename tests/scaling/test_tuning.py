"""Tuning a target on its own past (`enable_ml_optimization`): a candidate replaces the target's quantile
and lead time only when it dominates them on that past (fewer under-provisioned minutes at no more
replica-hours, or the reverse); the loop uses the tuning while the definition is the one it was made for,
and says so in the decision log."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from automation.forecasting.traces import Trace
from automation.scaling.definitions import ScalingTargetDefinition
from automation.scaling.policies import ScalingLimits, make_policy
from automation.scaling.simulator import SimulationSettings, simulate
from automation.scaling.tuning import LEAD_FACTORS, QUANTILES, Score, choose, tune
from tests.alerting.test_rule_evaluation import push
from tests.conftest import unique
from tests.scaling.test_loop import decisions, store_target


def score(quantile: float, under: float, hours: float, lead: float = 600.0) -> Score:
    return Score(quantile=quantile, lead_time=lead, under_provisioned_minutes=under, replica_hours=hours)


def test_only_a_candidate_that_dominates_the_settings_replaces_them() -> None:
    own = score(0.95, under=100, hours=1000)
    assert choose(own, [score(0.99, under=50, hours=1100), score(0.8, under=150, hours=900)]) is None
    assert choose(own, [score(0.95, under=100, hours=1000, lead=900)]) is None  # a tie is no reason
    best = score(0.9, under=40, hours=1000, lead=900)
    cheaper = score(0.8, under=100, hours=950)
    assert choose(own, [score(0.99, under=50, hours=1000), best, cheaper]) == best
    assert choose(own, [cheaper]) == cheaper


def daily_trace(days: int = 3, step_minutes: int = 10) -> Trace:
    periods = days * 24 * 60 // step_minutes
    index = pd.date_range("2026-01-05", periods=periods, freq=f"{step_minutes}min", tz="UTC")
    hours = index.hour + index.minute / 60
    rng = np.random.default_rng(7)
    cycle = np.clip(np.sin((hours - 6) / 24 * 2 * math.pi), 0, None)
    load = 300 + 250 * cycle + rng.normal(0, 15, len(index))
    series = pd.Series(load, index=index)
    return Trace(
        name="daily", load=series, step=pd.Timedelta(minutes=step_minutes),
        outage=pd.Series(False, index=index), source_format="test",
    )


def definition(**changes: Any) -> ScalingTargetDefinition:
    return ScalingTargetDefinition.parse(
        {
            "name": "web",
            "service": "web-api",
            "load": {"metric": "rps", "step": 600},
            "capacity_per_replica": 100,
            "target_utilization": 0.8,
            "max_replicas": 20,
            "policy": "predictive",
            "provisioning_delay": "10m",
            "forecast": {"quantile": 0.99, "refit_every": "1d", "min_history": "1d"},
            **changes,
        }
    )


def test_tuning_backtests_every_candidate_and_keeps_or_dominates_the_settings() -> None:
    trace = daily_trace()
    target = definition()
    tuned = tune(target, trace)
    assert tuned.candidates == len(QUANTILES) * len(LEAD_FACTORS) - 1
    # The baseline is the target's own settings replayed by the simulator: the same figures directly.
    direct = simulate(
        trace,
        make_policy("predictive", target_utilization=0.8, quantile=0.99,
                    limits=ScalingLimits(min_replicas=1, max_replicas=20), refit_every=pd.Timedelta(days=1)),
        settings=SimulationSettings(capacity_per_replica=100, provisioning_delay=pd.Timedelta(minutes=10),
                                    lead_time=pd.Timedelta(minutes=10)),
    )
    assert tuned.baseline.under_provisioned_minutes == direct.under_provisioned_minutes
    assert tuned.baseline.replica_hours == pytest.approx(direct.replica_hours)
    if tuned.chosen is None:
        assert tuned.quantile is None and tuned.reason.startswith("kept q0.99, lead 10m")
    else:
        assert tuned.chosen.dominates(tuned.baseline) and tuned.quantile in QUANTILES
        assert 600 <= tuned.chosen.lead_time <= 1200 and tuned.reason.startswith("tuned to q")
    with pytest.raises(ValueError, match="reactive"):
        tune(definition(policy="reactive"), trace)


@pytest.fixture
def optimizing(engine: Any) -> Iterator[None]:
    from automation import AutomationConfig
    from automation.config.apply import apply_config
    from automation.models import ScalingTarget

    original = engine.config
    on = {**original.model_dump(), "enable_predictive_scaling": True, "enable_ml_optimization": True}
    apply_config(AutomationConfig(**on))
    yield
    ScalingTarget.objects.update(enabled=False)
    apply_config(original)


@pytest.mark.integration
@pytest.mark.usefixtures("optimizing")
def test_the_loop_uses_the_tuning_made_for_its_definition_and_says_so(engine: Any) -> None:
    from automation.config.apply import apply_config
    from automation.models import ScalingState
    from automation.scaling.services.ticks import evaluate_targets
    from automation.scaling.services.tuning import tune_due, tuned_for

    name, metric = unique("tuned"), unique("rps").replace("-", "_")
    now = (time.time() // 600) * 600 + 30
    trace = daily_trace(days=4)
    shift = now - trace.load.index[-1].timestamp()
    push(metric, {"service": "web"}, [(t.timestamp() + shift, float(v)) for t, v in trace.load.items()])
    target = store_target(
        name, metric, load={"metric": metric, "matchers": {"service": "web"}, "step": 600, "history": "4d"},
        capacity_per_replica=100, target_utilization=0.8, max_replicas=20, provisioning_delay="10m",
        forecast={"quantile": 0.99, "refit_every": "1d", "min_history": "1d"},
    )
    [record] = [r for r in tune_due(now) if r["target"] == name]
    assert record["for"] == tuned_for(ScalingTargetDefinition.model_validate(target.document))
    assert record["reason"].startswith(("kept q0.99", "tuned to q")), record
    assert [r for r in tune_due(now + 60) if r["target"] == name] == []  # tuned once a day
    # A tuning that chose other settings (stored as the job stores one) is used and said.
    chosen = {**record, "quantile": 0.8, "lead_time": 1800.0, "reason": "tuned to q0.8, lead 30m (test)"}
    ScalingState.objects.filter(target=target).update(tuning=chosen)
    evaluate_targets([name], now, 600.0)
    [first] = decisions(name)
    assert "tuned to q0.8, lead 30m (test)" in first.reasons
    # The forecast is read 30 minutes ahead (the target's own lead is 10): its peak lies past that.
    peaks = [re.search(r"forecast peak .* in ([\d.]+) min", reason) for reason in first.reasons]
    [ahead] = [float(m.group(1)) for m in peaks if m]
    assert 30 <= ahead < 45, first.reasons
    # Off again: the target's own settings, and no word of tuning.
    apply_config(engine.config.model_copy(update={"enable_predictive_scaling": True}))
    evaluate_targets([name], now + 600, 600.0)
    assert not any("tuned" in reason for reason in decisions(name)[-1].reasons)
