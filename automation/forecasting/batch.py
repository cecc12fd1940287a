"""Fit and forecast many series at once (one Beat tick), spread over worker processes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pandas as pd

from automation.forecasting.forecaster import Forecast, ForecasterSettings, fit_forecaster

FAST_SETTINGS = ForecasterSettings(model="holt_winters_add", backtest_share=0.15)


@dataclass(frozen=True, kw_only=True)
class BatchJob:
    """One series to fit; `key` comes back with its forecast."""

    key: str
    history: pd.Series


def _fit_one(job: BatchJob, horizon: int, settings: ForecasterSettings) -> tuple[str, Forecast]:
    forecaster = fit_forecaster(job.history, horizon=horizon, settings=settings)
    return job.key, forecaster.forecast(horizon)


def _fit_chunk(
    jobs: Sequence[BatchJob], horizon: int, settings: ForecasterSettings
) -> list[tuple[str, Forecast]]:
    return [_fit_one(job, horizon, settings) for job in jobs]


def forecast_many(
    jobs: Sequence[BatchJob],
    *,
    horizon: int,
    settings: ForecasterSettings = FAST_SETTINGS,
    workers: int | None = None,
) -> dict[str, Forecast]:
    """Fit `settings.model` on every series and forecast `horizon` steps; `workers` processes (default:
    the CPU count). The default fast settings skip model selection: choose the family per series on a
    slower cadence with `fit_forecaster(..., model="auto")` and pass it here."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) < 2 * workers:
        return dict(_fit_chunk(jobs, horizon, settings))
    chunks = [list(jobs[i::workers]) for i in range(workers)]
    results: dict[str, Forecast] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(_fit_chunk, chunks, [horizon] * workers, [settings] * workers):
            results.update(part)
    return results
