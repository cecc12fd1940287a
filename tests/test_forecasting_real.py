"""Forecasting on short slices of real traces, shipped in tests/data (the full runs are the benchmark)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from automation.forecasting import evaluate_forecaster, fit_forecaster, has_daily_cycle, load_trace

DATA = Path(__file__).resolve().parent / "data"
NAB = DATA / "nab"
HOUR = pd.Timedelta(hours=1)


def test_nyc_taxi_one_hour_ahead_beats_seasonal_naive() -> None:
    trace = load_trace(NAB / "realKnownCause" / "nyc_taxi.csv").slice(0, 48 * 21)
    forecaster = fit_forecaster(trace.load, horizon=2)
    assert forecaster.model_name not in ("seasonal_naive", "drift")
    assert forecaster.relative_mae < 0.6


def test_nasa_minute_traffic_one_hour_ahead_beats_seasonal_naive() -> None:
    trace = load_trace(DATA / "nasa-http" / "requests_per_minute_rows_0-7199.csv").slice(0, 1440 * 5)
    forecaster = fit_forecaster(trace.load, horizon=60)
    assert forecaster.relative_mae < 0.8
    prediction = forecaster.forecast(60, levels=(0.05, 0.95))
    assert (prediction.quantiles[0.05] <= prediction.mean).all() and (
        prediction.mean <= prediction.quantiles[0.95]
    ).all()
    assert (prediction.quantiles[0.05] >= 0).all()


def test_hourly_job_spikes_are_a_season_not_outliers() -> None:
    trace = load_trace(NAB / "realKnownCause" / "cpu_utilization_asg_misconfiguration.csv").slice(0, 288 * 6)
    forecaster = fit_forecaster(trace.load, horizon=12)
    # the hourly spike is found as a sub-daily season; the winner forecasts the next spike
    assert "holt_winters_short" in forecaster.scores
    assert forecaster.model_name in ("seasonal_naive", "holt_winters_short")
    assert forecaster.relative_mae <= 1.0
    mean = forecaster.forecast(12).mean
    assert mean.max() > 1.5 * float(pd.Series(mean).median())


def test_daily_cycle_detection_matches_the_readme() -> None:
    aws = NAB / "realAWSCloudwatch"
    assert has_daily_cycle(
        load_trace(aws / "ec2_cpu_utilization_53ea38.csv").load.to_numpy(), pd.Timedelta("5min")
    )
    assert not has_daily_cycle(
        load_trace(aws / "ec2_cpu_utilization_24ae8d.csv").load.to_numpy(), pd.Timedelta("5min")
    )
    assert not has_daily_cycle(
        load_trace(aws / "elb_request_count_8c0756.csv").load.to_numpy(), pd.Timedelta("5min")
    )


def test_rolling_evaluation_sees_only_the_past_and_scores_against_seasonal_naive() -> None:
    trace = load_trace(NAB / "realKnownCause" / "nyc_taxi.csv").slice(0, 48 * 17)
    evaluation = evaluate_forecaster(
        trace, horizon=HOUR, warmup=pd.Timedelta(days=14), refit_every=pd.Timedelta(days=1)
    )
    assert evaluation.origins == (48 * 3 - 2) // 2 + 1
    assert evaluation.relative_mae < 1.0
    assert 0.6 < evaluation.coverage <= 1.0
