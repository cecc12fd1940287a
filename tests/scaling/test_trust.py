"""The hybrid's trust in its forecast, kept between the loop's ticks: earned by a bound that holds and
beats the trailing mean, refused otherwise (and the decision falls back to reactive, saying why), judged
as the simulator's hybrid judges it, in a small JSON state."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from automation.scaling import trust
from automation.scaling.choices import Basis
from automation.scaling.control import Memory, decide
from automation.scaling.fitting import ForecastPath
from automation.scaling.load import LoadHistory
from automation.scaling.policies import ForecastRecord, TrustSettings, forecast_record
from tests.scaling.test_control import definition, path, situation

STEP = 60.0
START = 1_800_000_000.0
SETTINGS = TrustSettings()
LEAD = 600.0  # ten buckets


def load(minute: int) -> float:
    return 500.0 + 200.0 * math.sin(minute / 30.0)  # a load that moves: the trailing mean lags it


def run(minutes: int, forecast: Callable[[float], float]) -> trust.TrustState:
    """Tick once a minute: the history up to now, and a forecast of each bucket ahead from `forecast`."""
    state = trust.TrustState(step=STEP)
    for m in range(1, minutes + 1):
        now = START + m * STEP
        values = np.array([load(k) for k in range(m - 5, m)])
        history = LoadHistory(start=now - 5 * STEP, step=STEP, values=values, observed=load(m))
        times = now - STEP + STEP * np.arange(30)
        mean = np.array([load(int(round((t - START) / STEP))) for t in times])
        upper = np.array([forecast(v) for v in mean])
        forecasted = ForecastPath(times=times, mean=mean, lower=mean, upper=upper, step=STEP, model="test")
        state = trust.update(state, history, forecasted, now=now, lead=LEAD, settings=SETTINGS)
        state = trust.TrustState.from_json(json.loads(json.dumps(state.as_json())), STEP)  # stored, read back
    return state


def test_a_bound_that_holds_and_beats_the_trailing_mean_earns_trust() -> None:
    state = run(120, lambda mean: mean + 50)
    record = trust.record(state, 0.95, SETTINGS)
    assert record.earned, record.why
    assert record.checks == 120 - 10 and record.hit_rate == 1.0 and record.skill > 0.5
    assert len(json.dumps(state.as_json())) < 4000


def test_a_bound_that_fails_loses_it_and_says_why() -> None:
    record = trust.record(run(120, lambda mean: mean - 50), 0.95, SETTINGS)
    assert not record.earned and record.hit_rate == 0.0
    assert "q0.95 bound held 0.0%" in record.why
    early = trust.record(run(15, lambda mean: mean + 50), 0.95, SETTINGS)
    assert not early.earned and "checks of the forecast so far, 12 needed" in early.why


def test_checks_older_than_the_window_are_dropped_and_a_new_step_starts_afresh() -> None:
    short = TrustSettings(window=pd.Timedelta(hours=1))
    state = trust.TrustState(step=STEP)
    state.bins = [[START - 7200.0, 5.0, 5.0, 1.0, 2.0]]
    history = LoadHistory(start=START, step=STEP, values=np.array([1.0]), observed=1.0)
    state = trust.update(state, history, None, now=START + 2 * STEP, lead=LEAD, settings=short)
    assert state.bins == [] and state.last == START
    assert trust.TrustState.from_json(state.as_json(), 300.0).last != START  # another step: afresh


def test_the_record_is_judged_as_the_simulators_hybrid_judges_it() -> None:
    def judged(hits: int) -> ForecastRecord:
        return forecast_record(
            hits=hits, checks=100, error=10.0, trailing_error=20.0, quantile=0.95, trust=SETTINGS
        )

    # 95% nominal, 100 checks: 1.64 standard errors (3.6 points) of slack, so 90% is a significant shortfall.
    assert not judged(90).earned and "below 91.4%" in judged(90).why
    assert judged(93).earned


def test_an_untrusted_forecast_leaves_the_hybrid_reactive_and_the_reason_says_why() -> None:
    forecast = path([600.0] * 12 + [1140.0] + [600.0] * 4, width=100.0)  # would need 7 replicas
    untrusted = trust.record(run(120, lambda mean: mean - 50), 0.95, SETTINGS)
    outcome = decide(definition(policy="hybrid"), situation(600.0, 3, forecast, trust=untrusted), Memory())
    assert (outcome.basis, outcome.desired) == (Basis.FALLBACK, 3)
    assert outcome.reasons[0].startswith("forecast not trusted (q0.95 bound held 0.0%")
    assert outcome.peak is not None  # the forecast is still logged
    trusted = trust.record(run(120, lambda mean: mean + 50), 0.95, SETTINGS)
    outcome = decide(definition(policy="hybrid"), situation(600.0, 3, forecast, trust=trusted), Memory())
    assert (outcome.basis, outcome.desired) == (Basis.FORECAST, 7)
    assert "q0.95 held 100.0%" in outcome.reasons[0]


def daily(minutes: int, *, cycle: bool, seed: int = 3) -> LoadHistory:
    """Per-minute load ending at START: a daily rise and fall, or noise around the same level."""
    rng = np.random.default_rng(seed)
    k = np.arange(minutes)
    shape = 400.0 + 300.0 * np.sin(2 * np.pi * k / 1440) if cycle else np.full(minutes, 400.0)
    values = shape + rng.normal(0, 30, minutes)
    return LoadHistory(start=START - minutes * STEP, step=STEP, values=values, observed=float(values[-1]))


def test_a_fit_judges_whether_forecasting_can_help_and_the_state_keeps_the_verdict() -> None:
    forecast = path([600.0] * 12 + [1140.0] + [600.0] * 4, width=100.0)  # would need 7 replicas
    trusted = trust.record(run(120, lambda mean: mean + 50), 0.95, SETTINGS)
    fresh = trust.TrustState(step=STEP)
    assert trust.cannot_help(fresh, SETTINGS) == "forecastability not judged yet"
    noise = trust.judge(trust.TrustState(step=STEP), daily(3 * 1440, cycle=False), SETTINGS, now=START)
    kept = trust.TrustState.from_json(json.loads(json.dumps(noise.as_json())), STEP)
    assert kept.verdict == noise.verdict and kept.verdict is not None and not kept.verdict.helps
    why = trust.cannot_help(kept, SETTINGS)
    assert why.startswith("forecasting cannot help (no daily cycle (autocorrelation one day back")
    # whatever the forecast's record, the hybrid stays reactive, and says why
    outcome = decide(
        definition(policy="hybrid"), situation(600.0, 3, forecast, trust=trusted, cannot_help=why), Memory()
    )
    assert (outcome.basis, outcome.desired) == (Basis.FALLBACK, 3)
    assert outcome.reasons[0].startswith(why + ": reactive: ") and outcome.peak is not None
    cycle = trust.judge(trust.TrustState(step=STEP), daily(3 * 1440, cycle=True), SETTINGS, now=START)
    assert cycle.verdict is not None and cycle.verdict.helps and trust.cannot_help(cycle, SETTINGS) == ""
    assert cycle.verdict.said.startswith("forecasting can help (daily cycle 0.9")
    short = trust.judge(trust.TrustState(step=STEP), daily(1440, cycle=True), SETTINGS, now=START)
    assert trust.cannot_help(short, SETTINGS) == (
        "forecastability not judged yet (1d of history, 1d12h needed)"
    )
    # the gate off (as the leave-one-trace-out benchmark's "ungated" candidate): only the record counts
    assert trust.cannot_help(kept, TrustSettings(forecastability=False)) == ""


def test_the_load_is_judged_again_daily_on_its_last_week_and_a_state_from_before_is_judged_at_once() -> None:
    # a state stored before the verdict existed (no "verdict" key) is judged on the next tick
    before = run(30, lambda mean: mean + 50).as_json()
    del before["verdict"], before["judged_at"]
    old = trust.TrustState.from_json(before, STEP)
    assert old.verdict is None and trust.judging_due(old, START, SETTINGS)
    # ten days: a daily cycle for three, then a week of noise: only the last week is judged
    first = daily(3 * 1440, cycle=True).values
    last = daily(7 * 1440, cycle=False, seed=9).values
    history = LoadHistory(
        start=START - 10 * 1440 * STEP, step=STEP, values=np.concatenate([first, last]), observed=400.0
    )
    judged = trust.judge(old, history, SETTINGS, now=START)
    assert judged.verdict is not None and not judged.verdict.helps and judged.judged_at == START
    assert not trust.judging_due(judged, START + 86_399, SETTINGS)
    assert trust.judging_due(judged, START + 86_400, SETTINGS)
    # too little history: sought again after an hour, not a day
    short = trust.judge(trust.TrustState(step=STEP), daily(600, cycle=True), SETTINGS, now=START)
    assert short.verdict is not None and not short.verdict.judged
    assert not trust.judging_due(short, START + 3599, SETTINGS)
    assert trust.judging_due(short, START + 3600, SETTINGS)
    assert not trust.judging_due(old, START, TrustSettings(forecastability=False))
