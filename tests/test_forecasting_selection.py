"""Model choice on synthetic series whose best model and error follow from their construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automation.forecasting import ForecastConfigError, ForecasterSettings, fit_forecaster

STEP = pd.Timedelta(minutes=5)
DAY = 288
SIGMA = 2.0


def series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq=STEP))


def daily_shape(t: np.ndarray) -> np.ndarray:
    return 30 * np.sin(2 * np.pi * t / DAY) + 10 * np.cos(4 * np.pi * t / DAY)


def noise(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, SIGMA, n)


def test_stable_daily_season_is_modelled_and_beats_seasonal_naive_by_root_two() -> None:
    # y = level + fixed season + white noise: a model that knows the season errs by the noise alone,
    # seasonal naive by the difference of two noises, so MASE ~ 1/sqrt(2) = 0.71
    t = np.arange(DAY * 10)
    forecaster = fit_forecaster(series(100 + daily_shape(t) + noise(len(t))), horizon=12)
    assert forecaster.model_name in ("fourier", "fourier_log", "holt_winters_add", "holt_winters_mul")
    assert 0.62 < forecaster.relative_mae < 0.80
    assert forecaster.scores["seasonal_naive"] == pytest.approx(1.0)


def test_linear_trend_without_season_picks_a_trend_model() -> None:
    t = np.arange(DAY * 10)
    forecaster = fit_forecaster(series(50 + 0.05 * t + noise(len(t))), horizon=12)
    assert forecaster.model_name in ("holt_damped", "drift", "holt_winters_add")
    # seasonal naive is one day of trend behind (0.05 * 288 = 14.4); a trend model errs by the noise
    prediction = forecaster.forecast(12)
    truth = 50 + 0.05 * np.arange(len(t), len(t) + 12)
    assert np.abs(prediction.mean - truth).mean() < 2 * SIGMA
    assert forecaster.relative_mae < 0.2


def test_trend_plus_season_picks_trended_holt_winters() -> None:
    t = np.arange(DAY * 10)
    forecaster = fit_forecaster(series(100 + 0.02 * t + daily_shape(t) + noise(len(t))), horizon=12)
    assert forecaster.model_name == "holt_winters_add"
    assert forecaster.relative_mae < 0.5


def test_season_growing_with_level_picks_multiplicative() -> None:
    t = np.arange(DAY * 10)
    level = 100 + 0.05 * t
    forecaster = fit_forecaster(
        series(level * (1 + 0.3 * np.sin(2 * np.pi * t / DAY)) + noise(len(t)) / 2), horizon=12
    )
    assert forecaster.model_name == "holt_winters_mul"


def test_intervals_cover_what_they_claim_on_fresh_data() -> None:
    t = np.arange(DAY * 12)
    values = 100 + daily_shape(t) + noise(len(t), seed=3)
    history, future = values[: DAY * 10], values[DAY * 10 :]
    forecaster = fit_forecaster(series(history), horizon=12)
    inside = []
    for origin in range(0, len(future) - 12, 12):
        prediction = forecaster.forecast(12, levels=(0.05, 0.95))
        actual = future[origin : origin + 12]
        inside.append((actual >= prediction.quantiles[0.05]) & (actual <= prediction.quantiles[0.95]))
        forecaster.update(actual)
    coverage = np.concatenate(inside).mean()
    assert 0.84 < coverage < 0.96


def test_outliers_do_not_drag_the_fit() -> None:
    t = np.arange(DAY * 10)
    clean = 100 + daily_shape(t) + noise(len(t))
    spiky = clean.copy()
    spiky[np.arange(500, len(t), 397)] += 400
    forecaster = fit_forecaster(series(spiky), horizon=12)
    assert any("outliers clipped" in note for note in forecaster.notes)
    truth = 100 + daily_shape(np.arange(len(t), len(t) + 12))
    assert np.abs(forecaster.forecast(12).mean - truth).mean() < 3 * SIGMA


def test_gaps_are_filled_for_fitting_and_reported() -> None:
    t = np.arange(DAY * 10)
    values = 100 + daily_shape(t) + noise(len(t))
    values[DAY * 4 : DAY * 5] = np.nan
    forecaster = fit_forecaster(series(values), horizon=12)
    assert any("missing points filled" in note for note in forecaster.notes)
    assert forecaster.relative_mae < 0.85


def test_short_history_falls_back_and_says_so() -> None:
    t = np.arange(DAY)  # one day: no seasonal model can be fitted
    forecaster = fit_forecaster(series(100 + daily_shape(t) + noise(len(t))), horizon=12)
    assert forecaster.model_name in ("holt_damped", "drift")
    assert any("skipped" in note and "holt_winters_add" in note for note in forecaster.notes)
    tiny = fit_forecaster(series(np.array([1.0, 2.0, 3.0])), horizon=4)
    assert tiny.model_name == "naive" and "too short" in tiny.notes[-1]
    assert tiny.forecast(2).mean.tolist() == [3.0, 3.0]


def test_a_named_model_is_used_even_when_the_baseline_scores_better() -> None:
    t = np.arange(DAY * 10)
    forecaster = fit_forecaster(
        series(100 + daily_shape(t) + noise(len(t))), horizon=12, settings=ForecasterSettings(model="drift")
    )
    assert forecaster.model_name == "drift"
    assert set(forecaster.scores) == {"seasonal_naive", "drift"} and forecaster.relative_mae > 1


def test_a_named_model_that_cannot_fit_falls_back_with_a_note() -> None:
    t = np.arange(DAY)
    forecaster = fit_forecaster(
        series(100 + daily_shape(t)), horizon=12, settings=ForecasterSettings(model="holt_winters_add")
    )
    assert forecaster.model_name != "holt_winters_add"
    assert any("holt_winters_add needs" in note for note in forecaster.notes)


def test_unknown_model_and_empty_history_are_errors() -> None:
    with pytest.raises(ForecastConfigError, match="unknown model"):
        ForecasterSettings(model="prophet")
    with pytest.raises(ForecastConfigError, match="no known values"):
        fit_forecaster(series(np.full(10, np.nan)), horizon=2)
