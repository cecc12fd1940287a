"""A target's forecaster between ticks: fitted within a time limit, kept as JSON (`Forecaster.to_dict`,
never pickle), brought up to date with the points measured since, and read over a decision's window."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.forecaster import Forecaster, ForecasterSettings, fit_forecaster
from automation.scaling.definitions import ScalingTargetDefinition
from automation.scaling.load import LoadHistory


class FitTimeout(Exception):
    """A fit ran past its target's `forecast.fit_timeout`."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupts the block after `seconds` with FitTimeout, where a signal can (the main thread, with
    SIGALRM not otherwise used: a Celery prefork child, the CLI); elsewhere the caller measures."""
    usable = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGALRM) in (
        signal.SIG_DFL,
        signal.SIG_IGN,
        None,
    )
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise FitTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def horizon_steps(definition: ScalingTargetDefinition, interval: float) -> int:
    """Steps a forecast must cover: up to the end of the decision window, and of the scale-in guard's."""
    reach = max(definition.lead, definition.provisioning_delay) + interval
    return max(1, math.ceil(reach / definition.load.step) + 1)


def as_series(history: LoadHistory) -> pd.Series:
    index = pd.date_range(
        pd.Timestamp(history.start, unit="s", tz="UTC"),
        periods=len(history.values),
        freq=pd.Timedelta(seconds=history.step),
    )
    return pd.Series(history.values, index=index)


@dataclass(frozen=True)
class Fit:
    forecaster: Forecaster
    seconds: float


def fit(
    definition: ScalingTargetDefinition, history: LoadHistory, *, interval: float, limit: float | None = None
) -> Fit:
    """Fit a forecaster to the history within `limit` (default `forecast.fit_timeout`): FitTimeout past it
    (interrupted where a signal can, else judged when it returns), the forecaster's own error when it
    cannot fit."""
    limit = float(definition.forecast.fit_timeout) if limit is None else limit
    settings = ForecasterSettings(
        model=definition.forecast.model, max_history=pd.Timedelta(seconds=float(definition.load.history))
    )
    began = time.perf_counter()
    with _time_limit(limit):
        fitted = fit_forecaster(
            as_series(history),
            horizon=horizon_steps(definition, interval),
            step=pd.Timedelta(seconds=history.step),
            settings=settings,
        )
    took = time.perf_counter() - began
    if took > limit:
        raise FitTimeout()
    return Fit(fitted, took)


#: Non-finite floats as strict JSON (PostgreSQL's jsonb refuses NaN and Infinity), and back.
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return value


def _loose(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and value.get("float") in _NONFINITE:
            return _NONFINITE[value["float"]]
        return {key: _loose(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_loose(item) for item in value]
    return value


def stored(forecaster: Forecaster) -> dict[str, Any]:
    """The forecaster as strict JSON (a few KB: the model's parameters and state, the error quantiles)."""
    found: dict[str, Any] = _strict(forecaster.to_dict())
    return found


def restore(document: dict[str, Any]) -> Forecaster:
    return Forecaster.from_dict(_loose(document))


def last_point(forecaster: Forecaster) -> float:
    return float(pd.Timestamp(forecaster.last_time).timestamp())


def catch_up(forecaster: Forecaster, history: LoadHistory) -> bool:
    """Feed the forecaster the points of `history` after its last one; False when they do not join up
    (another step, or a gap longer than the history): then it must be fitted afresh."""
    if abs(forecaster.step.total_seconds() - history.step) > 1e-9:
        return False
    last = last_point(forecaster)
    offset = (last - history.start) / history.step
    if offset < -1 or abs(offset - round(offset)) > 1e-6:
        return False
    first_new = int(round(offset)) + 1
    if first_new < len(history.values):
        forecaster.update(np.asarray(history.values[max(first_new, 0) :], dtype=float))
    return True


@dataclass(frozen=True)
class ForecastPath:
    """The forecast from the last complete bucket on: bucket start times (epoch s), mean and interval."""

    times: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    step: float
    model: str

    def as_json(self) -> dict[str, Any]:
        return {
            "times": [float(t) for t in self.times],
            "mean": [_finite(v) for v in self.mean],
            "lower": [_finite(v) for v in self.lower],
            "upper": [_finite(v) for v in self.upper],
            "step": self.step,
        }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def forecast_path(forecaster: Forecaster, steps: int, quantile: float) -> ForecastPath:
    lower_level = round(1 - quantile, 6)
    found = forecaster.forecast(steps, levels=(lower_level, quantile))
    times = np.array([t.timestamp() for t in found.index], dtype=float)
    return ForecastPath(
        times=times,
        mean=np.asarray(found.mean, dtype=float),
        lower=np.asarray(found.quantiles[lower_level], dtype=float),
        upper=np.asarray(found.quantiles[quantile], dtype=float),
        step=forecaster.step.total_seconds(),
        model=forecaster.model_name,
    )
