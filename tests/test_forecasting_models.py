"""Model internals: Holt-Winters recursion matches statsmodels; baselines, Fourier, aggregation, storage."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from automation.forecasting import Forecaster, fit_forecaster, model_from_dict
from automation.forecasting.aggregation import AggregatedModel, bucket_means
from automation.forecasting.fourier import fit_fourier_ar
from automation.forecasting.holtwinters import HoltWintersSpec, fit_holt_winters
from automation.forecasting.models import DriftModel, SeasonalNaiveModel


def seasonal_series(n: int, *, period: int, seed: int = 0, noise: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 0.02 * t + 30 * np.sin(2 * np.pi * t / period) + rng.normal(0, noise, n)


@pytest.mark.parametrize(
    "spec",
    [
        HoltWintersSpec(trend=True, damped=True, seasonal="add", season_length=48),
        HoltWintersSpec(trend=True, damped=False, seasonal="mul", season_length=48),
        HoltWintersSpec(trend=False, damped=False, seasonal="add", season_length=48),
        HoltWintersSpec(trend=True, damped=True, seasonal=None),
    ],
)
def test_holt_winters_state_recursion_matches_statsmodels(spec: HoltWintersSpec) -> None:
    y = seasonal_series(48 * 8, period=48)
    model = fit_holt_winters(y, spec=spec)
    reference = ExponentialSmoothing(
        y,
        trend="add" if spec.trend else None,
        damped_trend=spec.trend and spec.damped,
        seasonal=spec.seasonal,
        seasonal_periods=spec.season_length if spec.seasonal else None,
        initialization_method="heuristic",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference.fit(
            smoothing_level=model.alpha,
            smoothing_trend=model.beta if spec.trend else None,
            smoothing_seasonal=model.gamma if spec.seasonal else None,
            damping_trend=model.phi if spec.trend and spec.damped else None,
            optimized=False,
        ).forecast(30)
    np.testing.assert_allclose(model.forecast(30), expected, rtol=1e-9, atol=1e-9)


def test_holt_winters_update_equals_fitting_on_more_data_with_fixed_parameters() -> None:
    y = seasonal_series(48 * 8, period=48)
    model = fit_holt_winters(y[:-20], spec=HoltWintersSpec(season_length=48))
    restored = model_from_dict(json.loads(json.dumps(model.to_dict())))
    model.update(y[-20:])
    restored.update(y[-20:])
    np.testing.assert_allclose(model.forecast(10), restored.forecast(10))
    # a missing point advances time without learning: the forecast just shifts by one step
    before = model.forecast(11)
    model.update(np.array([np.nan]))
    np.testing.assert_allclose(model.forecast(10), before[1:], rtol=1e-12)


def test_seasonal_naive_repeats_the_season_and_bridges_gaps() -> None:
    model = SeasonalNaiveModel(season_length=3, history=np.array([1.0, 2.0, 3.0, 4.0, np.nan, 6.0]))
    assert model.forecast(4).tolist() == [4.0, 2.0, 6.0, 4.0]
    model.update(np.array([7.0]))
    assert model.forecast(3).tolist() == [2.0, 6.0, 7.0]


def test_drift_extends_the_mean_change() -> None:
    model = DriftModel(history=np.array([0.0, 1.0, 2.0, np.nan]))
    assert model.forecast(2).tolist() == [4.0, 5.0]


def test_fourier_recovers_a_long_season_at_minute_resolution() -> None:
    period = 1440
    y = seasonal_series(period * 3, period=period, noise=1.0)
    model = fit_fourier_ar(y[: period * 2], periods=(period,), harmonics=(3,), ar_order=2)
    model.update(y[period * 2 : period * 2 + 600])
    truth = (
        100
        + 0.02 * np.arange(period * 2 + 600, period * 2 + 660)
        + 30 * np.sin(2 * np.pi * np.arange(period * 2 + 600, period * 2 + 660) / period)
    )
    # the harmonic regression has no trend: 600 minutes past the window it lags by about 0.02/min * 800
    assert np.abs(model.forecast(60) - truth).mean() < 20
    assert np.corrcoef(model.forecast(60), truth)[0, 1] > 0.95


def test_aggregated_model_interpolates_between_bucket_centres() -> None:
    assert bucket_means(np.array([1.0, 3.0, np.nan, 5.0, 7.0]), 2).tolist() == [2.0, 5.0]
    inner = DriftModel(history=np.array([0.0, 10.0]))
    model = AggregatedModel(inner=inner, factor=10)
    forecast = model.forecast(20)
    # bucket centres at 4.5 (20) and 14.5 (30): a straight line through them, flat before the first
    assert forecast[0] == pytest.approx(20.0)
    assert forecast[9] == pytest.approx(24.5)
    assert forecast[14] == pytest.approx(29.5)


def test_forecaster_round_trips_through_json() -> None:
    index = pd.date_range("2024-01-01", periods=288 * 4, freq="5min")
    history = pd.Series(seasonal_series(len(index), period=288), index=index)
    forecaster = fit_forecaster(history, horizon=12)
    stored = json.dumps(forecaster.to_dict())
    restored = Forecaster.from_dict(json.loads(stored))
    original, again = forecaster.forecast(12), restored.forecast(12)
    np.testing.assert_allclose(original.mean, again.mean)
    np.testing.assert_allclose(original.quantiles[0.95], again.quantiles[0.95], rtol=0.01)
    assert original.index[0] == index[-1] + pd.Timedelta(minutes=5)
    assert len(stored) < 50_000
