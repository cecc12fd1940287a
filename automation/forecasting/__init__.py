"""Forecasting core: trace loading, statsmodels-based models chosen by backtest, calibrated intervals."""

from __future__ import annotations

from automation.forecasting.applicability import Applicability, assess_forecastability
from automation.forecasting.baselines import BASELINE_NAMES, day_block_interval
from automation.forecasting.batch import BatchJob, forecast_many
from automation.forecasting.durations import format_duration, parse_duration
from automation.forecasting.errors import (
    DurationError,
    ForecastConfigError,
    ForecastingError,
    TraceFormatError,
)
from automation.forecasting.evaluation import BaselineComparison, Evaluation, evaluate_forecaster
from automation.forecasting.forecaster import (
    MODEL_NAMES,
    Forecast,
    Forecaster,
    ForecasterSettings,
    RollingForecaster,
    fit_forecaster,
)
from automation.forecasting.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_absolute_scaled_error,
    relative_mae,
)
from automation.forecasting.models import model_from_dict
from automation.forecasting.seasonality import has_daily_cycle
from automation.forecasting.traces import Trace, load_trace, mark_zero_outages, trace_from_series

__all__ = [
    "BASELINE_NAMES",
    "Applicability",
    "MODEL_NAMES",
    "BaselineComparison",
    "BatchJob",
    "DurationError",
    "Evaluation",
    "Forecast",
    "ForecastConfigError",
    "Forecaster",
    "ForecasterSettings",
    "ForecastingError",
    "RollingForecaster",
    "Trace",
    "TraceFormatError",
    "evaluate_forecaster",
    "fit_forecaster",
    "forecast_many",
    "assess_forecastability",
    "day_block_interval",
    "format_duration",
    "has_daily_cycle",
    "load_trace",
    "mark_zero_outages",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_absolute_scaled_error",
    "model_from_dict",
    "parse_duration",
    "relative_mae",
    "trace_from_series",
]
