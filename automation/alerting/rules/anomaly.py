"""Anomaly scores from `automation.forecasting`: how far a sample lies outside a robust prediction interval
around the one-step forecast made from the series' past, and the [0, 1] form of a score.

The interval is forecast +- z * sigma (z for `level`: 1.645 at 0.9). sigma is the size of the recent
one-step errors (the last `error_window`): 1.4826 * their median absolute value, or, when their tail is
heavier than a normal one's, their `error_quantile` (0.999) quantile / 3.29, so on a spiky series the spikes
it usually has stay inside and only larger ones stand out; a score of 3 then means more than twice the
largest recent error. sigma is never below a floor from the series' own values (1 % of its typical level,
5 % of its typical spread), so an idle or quantised series does not turn a blip into a huge score.

`ForecastAnomalyScorer` is causal and a function of the data alone. Time is cut into periods of
`refit_every` (aligned to the epoch); a sample in the period starting at B is judged by the forecaster
fitted on the `history` before B (only what follows its last silence longer than `restart_after`: the
series restarted there), then updated bin by bin (the series' median spacing) up to the sample's bin; its
errors start from the fit's own backtest errors. Where no such fit judges (a new series, or a silence
since B) a local model does: the median of the previous `local_points` samples, against its own recent
errors. So the score of a sample never depends on when the scorer was created or what it scored before: a
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
#: sigma of a normal distribution from the median absolute deviation.
MAD_TO_SIGMA = 1.4826
#: the 95% quantile of a standard normal distribution.
NINETY_TO_SIGMA = 1.6449


def anomaly_score_01(score: float) -> float:
    """A score mapped monotonically onto [0, 1) for NAB-style output: score / (score + 3). Inside the
    interval (0) or unknown (NaN) -> 0; 3 half-widths outside -> 0.5; 9 -> 0.75; infinity -> 1."""
    if math.isnan(score) or score <= 0:
        return 0.0
    if math.isinf(score):
        return 1.0
    return score / (score + SCORE_AT_HALF)


Band = tuple[float, float]  # mean of the one-step forecast, half-width of the interval around it


@dataclass
class _Period:
    """The forecaster fitted at `boundary`, rolled forward: `position` is the last bin absorbed. `errors`
    holds one-step errors, actual - forecast (the fit's backtest ones, then one per bin absorbed); `floor`
    is the least sigma its history allows; `restart` is the first sample after a silence longer than
    `restart_after` from the history's last sample on (checked up to `checked`): from there the fit no
    longer judges."""

    boundary: float
    step: float
    forecaster: Forecaster | None
    position: int
    floor: float = 0.0
    absorbed: float = math.nan
    errors: list[float] = field(default_factory=list)
    bands: dict[int, Band] = field(default_factory=dict)
    last_known: float = -math.inf
    checked: float = -math.inf
    restart: float = math.inf


class ForecastAnomalyScorer:
    """Scores with `automation.forecasting`: the model is chosen by backtest at each refit (cheap: a fit on
    a week of 30-minute data takes well under a second), updated per bin in between. `level` is the
    coverage the interval would have for normal errors (0.9: +-1.645 sigma). A period whose history (after
    its last long silence) holds fewer than `min_points` samples is judged by the local model, which needs
    `min_local` earlier samples since the last long silence: before that, NaN. The defaults were chosen on
    half of NAB's real files and checked on the other half (docs/alerting.md)."""

    def __init__(
        self,
        *,
        history: float = ANOMALY_HISTORY_SECONDS,
        refit_every: float = ANOMALY_REFIT_SECONDS,
        level: float = 0.9,
        min_points: int = 48,
        max_points: int = 10_000,
        max_series: int = 10_000,
        error_window: int = 1000,
        error_quantile: float = 0.999,
        level_floor: float = 0.01,
        spread_floor: float = 0.05,
        restart_after: float = 86_400.0,
        local_points: int = 5,
        min_local: int = 12,
        settings: ForecasterSettings | None = None,
    ) -> None:
        problems = []
        if not 0 < level < 1:
            problems.append(("level", "must be between 0 and 1"))
        if error_window < 4:
            problems.append(("error_window", "must be at least 4"))
        if level_floor < 0 or spread_floor < 0:
            problems.append(("level_floor" if level_floor < 0 else "spread_floor", "must not be negative"))
        if restart_after <= 0:
            problems.append(("restart_after", "must be positive"))
        if local_points < 1 or min_local < 2:
            problems.append(("local_points" if local_points < 1 else "min_local", "too small"))
        if problems:
            raise ConfigurationError(problems)
        self.history = history
        self.refit_every = refit_every
        self.z = statistics.NormalDist().inv_cdf((1 + level) / 2)
        self.min_points = min_points
        self.max_points = max_points
        self.max_series = max_series
        self.error_window = error_window
        self.error_quantile = error_quantile
        # sigma of normal errors from the `error_quantile` quantile of their absolute values
        self.quantile_to_sigma = 1 / statistics.NormalDist().inv_cdf((1 + error_quantile) / 2)
        self.level_floor = level_floor
        self.spread_floor = spread_floor
        self.restart_after = restart_after
        self.local_points = local_points
        self.min_local = min_local
        self.settings = settings
        self.fits = 0
        self._cache: OrderedDict[tuple[str, LabelKey], dict[float, _Period]] = OrderedDict()
        self._arrays: OrderedDict[int, tuple[Series, list[float], list[float]]] = OrderedDict()

    def score(self, series: Series, at: float) -> float:
        """How many half-widths of the prediction interval the latest sample at or before `at` lies
        outside the interval around the one-step forecast for it (on its side); 0 inside, NaN if unknown."""
        times, values = self._lists(series)
        index = bisect_right(times, at) - 1
        if index < 0 or math.isnan(values[index]):
            return math.nan
        at_sample, value = times[index], values[index]
        boundary = math.floor(at_sample / self.refit_every) * self.refit_every
        key = (series.metric, tuple(sorted(series.labels)))
        periods = self._cache.setdefault(key, {})
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_series:
            self._cache.popitem(last=False)
        period = periods.get(boundary)
        if period is None or not _agrees(period, times, values):
            period = periods[boundary] = self._fit(times, values, boundary)
            for old in sorted(periods)[:-2]:  # a duration window spans at most two periods in practice
                del periods[old]
        if period.forecaster is not None and not self._restarted(period, times, values, index):
            bin_index = math.floor(at_sample / period.step)
            band = period.bands.get(bin_index)
            if band is None:  # bins from the boundary on are all remembered: this one is ahead
                band = self._advance(period, times, values, bin_index)
            return _outside(value, band)
        return self._local(times, values, index, period)

    def _lists(self, series: Series) -> tuple[list[float], list[float]]:
        found = self._arrays.get(id(series))
        if found is None or found[0] is not series:
            found = (series, [s.at for s in series.samples], [s.value for s in series.samples])
            self._arrays[id(series)] = found
            while len(self._arrays) > 256:
                self._arrays.popitem(last=False)
        return found[1], found[2]

    def _fit(self, times: list[float], values: list[float], boundary: float) -> _Period:
        low, high = bisect_left(times, boundary - self.history), bisect_left(times, boundary)
        known = [(a, v) for a, v in zip(times[low:high], values[low:high], strict=True) if not math.isnan(v)]
        if len(known) < 4:
            return _Period(boundary, math.nan, None, 0)
        step = _spacing([a for a, _ in known])
        # only what follows the last long silence: the series restarted there
        for j in range(len(known) - 1, 0, -1):
            if known[j][0] - known[j - 1][0] > self.restart_after:
                known = known[j:]
                break
        last_known = known[-1][0]
        if len(known) < max(self.min_points, 4):
            return _Period(boundary, step, None, 0, last_known=last_known, checked=last_known)
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
        period = _Period(
            boundary,
            step,
            None,
            end - 1,
            floor=self._floor(np.array([v for _, v in known])),
            last_known=last_known,
            checked=last_known,
        )
        try:
            period.forecaster = fit_forecaster(
                pd.Series(bins, index=index),
                horizon=1,
                step=pd.Timedelta(seconds=step),
                settings=self.settings,
            )
        except ForecastingError:
            return period
        period.absorbed = float(bins[-1])
        period.errors = period.forecaster.one_step_errors.tolist()  # the backtest's, oldest first
        return period

    def _floor(self, values: np.ndarray) -> float:
        """The least sigma the series' own values allow: a fraction of its typical level (median absolute
        value) and of its typical spread (the sigma its central 90% would have if normal)."""
        low, middle, high = np.quantile(values, (0.05, 0.5, 0.95))
        level = float(np.median(np.abs(values)))
        spread = float(high - low) / (2 * NINETY_TO_SIGMA)
        return max(self.level_floor * level, self.spread_floor * spread, 1e-9 * max(1.0, level))

    def _sigma(self, errors: list[float] | np.ndarray) -> float:
        """The robust sigma of recent errors: from their median absolute value, or from their
        `error_quantile` quantile when the tail is heavier than a normal one's."""
        recent = np.abs(np.asarray(errors[-self.error_window :], dtype=float))
        if len(recent) == 0:
            return 0.0
        middle, tail = np.quantile(recent, (0.5, self.error_quantile))
        return max(float(middle) * MAD_TO_SIGMA, float(tail) * self.quantile_to_sigma)

    def _restarted(self, period: _Period, times: list[float], values: list[float], index: int) -> bool:
        """Whether a silence longer than `restart_after` lies between the period's history and sample `index`
        (checked once per sample, remembered)."""
        at = times[index]
        if period.restart <= at:
            return True
        if period.checked >= at:
            return False
        for j in range(bisect_right(times, period.checked), index + 1):
            if math.isnan(values[j]):
                continue
            if times[j] - period.last_known > self.restart_after:
                period.restart = times[j]
                return True
            period.last_known = period.checked = times[j]
        return False

    def _advance(self, period: _Period, times: list[float], values: list[float], bin_index: int) -> Band:
        """Forecast each bin up to `bin_index`, absorbing the bins before it (never `bin_index` itself: later
        samples may still fall in it); each band's width comes from the errors before it."""
        forecaster = period.forecaster
        assert forecaster is not None
        for k in range(period.position + 1, bin_index + 1):
            band = period.bands.get(k)
            if band is None:
                mean = float(forecaster.forecast(1, levels=()).mean[0])
                band = period.bands[k] = (mean, self.z * max(self._sigma(period.errors), period.floor))
            if k < bin_index:
                observed = _bin_value(times, values, k, period.step)
                if not math.isnan(observed) and not math.isnan(band[0]):
                    period.errors.append(observed - band[0])
                forecaster.update(np.array([observed]))
                period.position, period.absorbed = k, observed
        return period.bands[bin_index]

    def _local(self, times: list[float], values: list[float], index: int, period: _Period) -> float:
        """The local model's score for sample `index`: its distance from the median of the previous
        `local_points` samples, against the robust size of that prediction's recent errors (and the floor
        from the same samples). Only samples since the last long silence and within the history count."""
        need = self.local_points + self.error_window
        low = max(bisect_left(times, period.boundary - self.history), index - 2 * need)
        at = np.asarray(times[low : index + 1])
        y = np.asarray(values[low : index + 1])
        known = ~np.isnan(y)
        y = y[known]
        if len(y) <= self.min_local:
            return math.nan
        silences = np.flatnonzero(np.diff(at[known]) > self.restart_after)
        y = y[silences[-1] + 1 :] if len(silences) else y
        y = y[-(need + 1) :]
        if len(y) <= self.min_local:
            return math.nan
        m = min(self.local_points, len(y) - 3)
        windows = np.lib.stride_tricks.sliding_window_view(y[:-1], m)
        predicted = np.median(windows, axis=1)  # predicted[i] is the forecast for y[i + m]
        errors = y[m:-1] - predicted[:-1]
        half = self.z * max(self._sigma(errors), self._floor(y[:-1]))
        return _outside(float(y[-1]), (float(predicted[-1]), half))


def _spacing(times: list[float]) -> float:
    """The median spacing of sample times (whole seconds from one second up)."""
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    if not gaps:
        return 1.0
    step = statistics.median(gaps)
    return float(round(step)) if step >= 1 else step


def _bin_value(times: list[float], values: list[float], k: int, step: float) -> float:
    """The last sample in bin k, [k * step, (k + 1) * step), or NaN."""
    index = bisect_left(times, (k + 1) * step) - 1
    return values[index] if index >= 0 and times[index] >= k * step else math.nan


def _agrees(period: _Period, times: list[float], values: list[float]) -> bool:
    """Whether `times`/`values` are the data `period` absorbed (its last bin), so a cache filled from
    another source's series of the same name is not used."""
    if period.forecaster is None or math.isnan(period.absorbed):
        return True
    seen = _bin_value(times, values, period.position, period.step)
    return math.isnan(seen) or seen == period.absorbed


def _outside(value: float, band: Band) -> float:
    mean, half = band
    if math.isnan(mean) or math.isnan(half):
        return math.nan
    half = max(half, 1e-12)
    return max(abs(value - mean) - half, 0.0) / half


_default: ForecastAnomalyScorer | None = None


def default_scorer() -> ForecastAnomalyScorer:
    """The process-wide scorer `evaluate` uses when given none (one per worker process; not for sharing
    between threads). Backtests over another source's copy of live series should pass their own."""
    global _default
    if _default is None:
        _default = ForecastAnomalyScorer()
    return _default
