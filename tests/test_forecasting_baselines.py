"""The baselines a model must beat one hour ahead, the day-block bootstrap, and causal outlier cleaning."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automation.forecasting import (
    BASELINE_NAMES,
    ForecastConfigError,
    day_block_interval,
    evaluate_forecaster,
    load_trace,
    trace_from_series,
)
from automation.forecasting.applicability import assess_forecastability
from automation.forecasting.baselines import (
    drift_forecast,
    fit_auto_ets,
    last_value_forecast,
    trailing_mean_forecast,
)
from automation.forecasting.cleaning import clip_outliers

DATA = Path(__file__).parent / "data"
HOUR = pd.Timedelta(hours=1)


def test_simple_baselines_on_hand_checkable_histories() -> None:
    history = np.array([1.0, 2.0, 3.0, np.nan, 5.0, np.nan])
    assert last_value_forecast(history, 2).tolist() == [5.0, 5.0]
    assert trailing_mean_forecast(history, 1, window=4).tolist() == [4.0]  # 3 and 5 known
    assert drift_forecast(np.array([0.0, 1.0, 2.0]), 3).tolist() == [3.0, 4.0, 5.0]
    assert math.isnan(last_value_forecast(np.array([np.nan]), 1)[0])


def test_auto_ets_takes_the_daily_season_when_there_is_one() -> None:
    step = pd.Timedelta(minutes=30)
    t = np.arange(48 * 10)
    seasonal = 100 + 40 * np.sin(2 * np.pi * t / 48) + np.random.default_rng(0).normal(0, 2, len(t))
    model = fit_auto_ets(seasonal, step=step)
    assert "A" in model.name.split(",")[1] and "m=48" in model.name
    walk = 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, len(t)))
    assert "m=" not in fit_auto_ets(walk, step=step).name


def test_day_block_interval_resamples_whole_days() -> None:
    days = np.repeat(np.arange(10), 24)
    errors = np.random.default_rng(2).normal(0, 1, len(days))
    assert day_block_interval(errors, errors, days) == (pytest.approx(1.0), pytest.approx(1.0))
    low, high = day_block_interval(errors / 2, errors, days)
    assert low == pytest.approx(0.5) and high == pytest.approx(0.5)
    noisy_low, noisy_high = day_block_interval(errors, np.roll(errors, 5), days)
    assert noisy_low < 1 < noisy_high or noisy_high - noisy_low > 0.05
    assert all(math.isnan(v) for v in day_block_interval(errors[:24], errors[:24], days[:24]))


def test_causal_cleaning_of_a_prefix_does_not_depend_on_what_follows() -> None:
    rng = np.random.default_rng(3)
    day = 48
    t = np.arange(day * 6)
    y = 100 + 30 * np.sin(2 * np.pi * t / day) + rng.normal(0, 1, len(t))
    y[day * 4 + 5] += 200  # a spike on day 5
    y[day * 5 + 10 : day * 5 + 14] += 80  # something that follows
    causal, clipped = clip_outliers(y, window=9, season_length=day)
    assert clipped >= 1 and causal[day * 4 + 5] < 200
    for cut in (day * 4 + 6, day * 5 + 11, day * 5 + 20):
        prefix, _ = clip_outliers(y[:cut], window=9, season_length=day)
        np.testing.assert_array_equal(prefix, causal[:cut])
    # the centred window looks ahead: cutting the series changes what was cleaned before the cut
    centred, _ = clip_outliers(y, window=9, season_length=day, causal=False)
    centred_prefix, _ = clip_outliers(y[: day * 5 + 11], window=9, season_length=day, causal=False)
    assert not np.array_equal(centred_prefix, centred[: day * 5 + 11])


def test_rolling_evaluation_against_every_baseline_with_intervals() -> None:
    trace = load_trace(DATA / "nab" / "realKnownCause" / "nyc_taxi.csv").slice(0, 48 * 17)
    evaluation = evaluate_forecaster(trace, horizon=HOUR, warmup=pd.Timedelta(days=14))
    assert set(evaluation.baselines) == set(BASELINE_NAMES)
    seasonal = evaluation.baselines["seasonal_naive"]
    assert seasonal.relative_mae == pytest.approx(evaluation.relative_mae)
    assert evaluation.mase == evaluation.relative_mae  # the former name still answers
    for comparison in evaluation.baselines.values():
        low, high = comparison.interval
        assert comparison.mae > 0 and low <= comparison.relative_mae <= high
    assert len(evaluation.coverage_by_step) == 2
    assert 0.5 < evaluation.upper_hit_rate <= 1.0 and evaluation.upper_level == 0.95
    with pytest.raises(ForecastConfigError, match="baselines"):
        evaluate_forecaster(trace, horizon=HOUR, baselines=("oracle",))


def daily(days: int, *, level: float = 100.0, seed: int = 0) -> np.ndarray:
    t = np.arange(days * 288)
    cycle = level * (1 + 0.5 * np.sin(2 * np.pi * t / 288))
    return cycle + np.random.default_rng(seed).normal(0, level * 0.03, len(t))


def test_forecastability_wants_a_daily_cycle_and_no_level_shift() -> None:
    step = pd.Timedelta(minutes=5)
    seasonal = assess_forecastability(trace_from_series(daily(21), step=step))
    assert seasonal.applicable and seasonal.daily_cycle and seasonal.reasons == ()
    noise = np.random.default_rng(1).normal(100, 10, 288 * 21)
    flat = assess_forecastability(trace_from_series(noise, step=step))
    assert not flat.applicable and flat.reasons[0].startswith("no daily cycle (autocorrelation one day back")
    shifted = np.r_[daily(10), daily(11, level=300.0, seed=2)]
    index = pd.date_range("2024-03-01", periods=len(shifted), freq=step)
    moved = assess_forecastability(trace_from_series(pd.Series(shifted, index=index), step=step))
    assert moved.daily_cycle and not moved.applicable
    assert [f"{t:%Y-%m-%d}" for t in moved.level_shifts] == ["2024-03-11"]
    assert "level shift on 2024-03-11" in moved.reasons[0]


def test_the_real_traces_with_a_daily_cycle_are_judged_applicable() -> None:
    nab = DATA / "nab"
    assert assess_forecastability(load_trace(nab / "realKnownCause" / "nyc_taxi.csv")).applicable
    spiky = assess_forecastability(load_trace(nab / "realAWSCloudwatch" / "elb_request_count_8c0756.csv"))
    assert not spiky.applicable and not spiky.daily_cycle
