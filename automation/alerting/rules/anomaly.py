"""Anomaly scores from `automation.forecasting`: how far a sample lies outside the one-step prediction
interval of a forecaster fitted on the series' past, and the [0, 1] form of a score.

`ForecastAnomalyScorer` is causal and a function of the data alone. Time is cut into periods of
`refit_every` (aligned to the epoch); a sample in the period starting at B is scored by the forecaster
fitted on the `history` before B, then updated bin by bin (the series' median spacing) up to the sample's
bin. So the score of a sample never depends on when the scorer was created or what it scored before: a
fresh scorer and one that has run for weeks agree. Fits are cached per (metric, labels); one per period.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from automation.alerting.rules.ast import ANOMALY_HISTORY_SECONDS, ANOMALY_REFIT_SECONDS
from automation.alerting.rules.values import LabelKey
from automation.alerting.series import Series
from automation.errors import ConfigurationError
from automation.forecasting import Forecaster, ForecasterSettings, ForecastingError, fit_forecaster

#: The score that maps to 0.5 in `anomaly_score_01`: a typical alert threshold.
SCORE_AT_HALF = 3.0


def anomaly_score_01(score: float) -> float:
    """A score mapped monotonically onto [0, 1) for NAB-style output: score / (score + 3). Inside the
    interval (0) or unknown (NaN) -> 0; 3 half-widths outside -> 0.5; 9 -> 0.75; infinity -> 1."""
    if math.isnan(score) or score <= 0:
        return 0.0
    if math.isinf(score):
        return 1.0
    return score / (score + SCORE_AT_HALF)


Band = tuple[float, float, float]  # low, mean, high of the one-step forecast


@dataclass
class _Fit:
    """A forecaster fitted at `boundary` and rolled forward: `position` is the last bin absorbed."""

    boundary: float
    step: float
    forecaster: Forecaster | None
    position: int
    absorbed: float = math.nan
    bands: dict[int, Band] = field(default_factory=dict)


class ForecastAnomalyScorer:
    """Scores with `automation.forecasting`: the model is chosen by backtest at each refit (cheap: a fit on
    a week of 30-minute data takes well under a second), updated per bin in between. `level` is the
    coverage of the prediction interval (0.9: the 5% and 95% quantiles). A period whose history holds
    fewer than `min_points` samples cannot be judged: NaN."""

    def __init__(
        self,
        *,
        history: float = ANOMALY_HISTORY_SECONDS,
        refit_every: float = ANOMALY_REFIT_SECONDS,
        level: float = 0.9,
        min_points: int = 48,
        max_points: int = 10_000,
        max_series: int = 10_000,
        settings: ForecasterSettings | None = None,
    ) -> None:
        if not 0 < level < 1:
            raise ConfigurationError([("level", "must be between 0 and 1")])
        self.history = history
        self.refit_every = refit_every
        self.levels = ((1 - level) / 2, (1 + level) / 2)
        self.min_points = min_points
        self.max_points = max_points
        self.max_series = max_series
        self.settings = settings
        self.fits = 0
        self._cache: OrderedDict[tuple[str, LabelKey], dict[float, _Fit]] = OrderedDict()
        self._arrays: OrderedDict[int, tuple[Series, list[float], list[float]]] = OrderedDict()

    def score(self, series: Series, at: float) -> float:
        """How many half-widths of the prediction interval the latest sample at or before `at` lies
        outside the one-step forecast for it (the half-width on its side); 0 inside, NaN if unknown."""
        times, values = self._lists(series)
        index = bisect_right(times, at) - 1
        if index < 0 or math.isnan(values[index]):
            return math.nan
        at_sample, value = times[index], values[index]
        boundary = math.floor(at_sample / self.refit_every) * self.refit_every
        key = (series.metric, tuple(sorted(series.labels)))
        fits = self._cache.setdefault(key, {})
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_series:
            self._cache.popitem(last=False)
        fit = fits.get(boundary)
        if fit is None or not _agrees(fit, times, values):
            fit = fits[boundary] = self._fit(times, values, boundary)
            for old in sorted(fits)[:-2]:  # a duration window spans at most two periods in practice
                del fits[old]
        if fit.forecaster is None:
            return math.nan
        bin_index = math.floor(at_sample / fit.step)
        band = fit.bands.get(bin_index)
        if band is None:  # bins from the boundary on are all remembered: this one is ahead
            band = self._advance(fit, times, values, bin_index)
        return _outside(value, band)

    def _lists(self, series: Series) -> tuple[list[float], list[float]]:
        found = self._arrays.get(id(series))
        if found is None or found[0] is not series:
            found = (series, [s.at for s in series.samples], [s.value for s in series.samples])
            self._arrays[id(series)] = found
            while len(self._arrays) > 256:
                self._arrays.popitem(last=False)
        return found[1], found[2]

    def _fit(self, times: list[float], values: list[float], boundary: float) -> _Fit:
        low, high = bisect_left(times, boundary - self.history), bisect_left(times, boundary)
        known = [(a, v) for a, v in zip(times[low:high], values[low:high], strict=True) if not math.isnan(v)]
        if len(known) < max(self.min_points, 4):
            return _Fit(boundary, 1.0, None, 0)
        gaps = [b[0] - a[0] for a, b in zip(known, known[1:], strict=False) if b[0] > a[0]]
        step = statistics.median(gaps)
        step = float(round(step)) if step >= 1 else step
        end = math.floor(boundary / step)  # bins before `end` end by the boundary: the history
        first = max(math.floor(known[0][0] / step), end - self.max_points)
        bins = np.full(end - first, np.nan)
        for a, v in known:
            if first <= (k := math.floor(a / step)) < end:
                bins[k - first] = v
        index = pd.date_range(
            pd.Timestamp(first * step, unit="s"), periods=len(bins), freq=pd.Timedelta(seconds=step)
        )
        self.fits += 1
        try:
            forecaster = fit_forecaster(
                pd.Series(bins, index=index),
                horizon=1,
                step=pd.Timedelta(seconds=step),
                settings=self.settings,
            )
        except ForecastingError:
            return _Fit(boundary, step, None, end - 1)
        return _Fit(boundary, step, forecaster, end - 1, absorbed=float(bins[-1]))

    def _advance(self, fit: _Fit, times: list[float], values: list[float], bin_index: int) -> Band:
        """Forecast each bin up to `bin_index`, absorbing the bins before it (never `bin_index` itself: later
        samples may still fall in it)."""
        assert fit.forecaster is not None
        for k in range(fit.position + 1, bin_index + 1):
            if k not in fit.bands:
                forecast = fit.forecaster.forecast(1, levels=self.levels)
                fit.bands[k] = (
                    float(forecast.quantiles[self.levels[0]][0]),
                    float(forecast.mean[0]),
                    float(forecast.quantiles[self.levels[1]][0]),
                )
            if k < bin_index:
                observed = _bin_value(times, values, k, fit.step)
                fit.forecaster.update(np.array([observed]))
                fit.position, fit.absorbed = k, observed
        return fit.bands[bin_index]


def _bin_value(times: list[float], values: list[float], k: int, step: float) -> float:
    """The last sample in bin k, [k * step, (k + 1) * step), or NaN."""
    index = bisect_left(times, (k + 1) * step) - 1
    return values[index] if index >= 0 and times[index] >= k * step else math.nan


def _agrees(fit: _Fit, times: list[float], values: list[float]) -> bool:
    """Whether `times`/`values` are the data `fit` absorbed (its last bin), so a cache filled from another
    source's series of the same name is not used."""
    if fit.forecaster is None or math.isnan(fit.absorbed):
        return True
    seen = _bin_value(times, values, fit.position, fit.step)
    return math.isnan(seen) or seen == fit.absorbed


def _outside(value: float, band: Band) -> float:
    low, mean, high = band
    if math.isnan(mean):
        return math.nan
    tiny = 1e-9 * max(1.0, abs(mean))
    if value > high:
        return (value - high) / max(high - mean, tiny)
    if value < low:
        return (low - value) / max(mean - low, tiny)
    return 0.0


_default: ForecastAnomalyScorer | None = None


def default_scorer() -> ForecastAnomalyScorer:
    """The process-wide scorer `evaluate` uses when given none (one per worker process; not for sharing
    between threads). Backtests over another source's copy of live series should pass their own."""
    global _default
    if _default is None:
        _default = ForecastAnomalyScorer()
    return _default
