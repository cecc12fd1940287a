"""Pins the public surface of the forecasting and scaling packages, so it never changes by accident."""

from __future__ import annotations

import automation.forecasting as forecasting
import automation.scaling as scaling


def test_forecasting_public_names() -> None:
    assert sorted(forecasting.__all__) == sorted(
        [
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
    )
    assert all(hasattr(forecasting, name) for name in forecasting.__all__)


def test_scaling_public_names() -> None:
    assert sorted(scaling.__all__) == sorted(
        [
            "HYBRID_TARGETS",
            "POLICY_QUANTILES",
            "REACTIVE_TARGETS",
            "CostMatch",
            "CostPoint",
            "Decision",
            "DecisionContext",
            "ForecastTape",
            "FrontierComparison",
            "FrontierMatch",
            "FrontierReport",
            "HybridPolicy",
            "PredictivePolicy",
            "PredictiveSettings",
            "ReactivePolicy",
            "ScalingLimits",
            "ScalingPolicy",
            "SimulationResult",
            "SimulationSettings",
            "TrustSettings",
            "capacity_at_percentile",
            "cost_match",
            "make_policy",
            "match_frontiers",
            "policy_names",
            "reactive_under_at",
            "register_policy",
            "simulate",
            "sweep_frontier",
        ]
    )
    assert all(hasattr(scaling, name) for name in scaling.__all__)


def test_errors_are_automation_errors_and_durations_parse() -> None:
    from automation.errors import AutomationError

    assert issubclass(forecasting.TraceFormatError, AutomationError)
    assert forecasting.parse_duration("1h30m").total_seconds() == 5400
    assert forecasting.format_duration(forecasting.parse_duration("90s")) == "1m30s"


def test_bad_durations_say_what_is_expected() -> None:
    import pytest

    for text in ("10x", "", "m10", "0m", "5 minutes"):
        with pytest.raises(forecasting.DurationError):
            forecasting.parse_duration(text)
    assert forecasting.parse_duration("0s", allow_zero=True).total_seconds() == 0
