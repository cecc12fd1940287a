"""The forecast's recent record on one target, kept between the loop's ticks: whether the hybrid policy's
forecast has earned the right to add capacity (see `TrustSettings` in automation/scaling/policies.py,
whose judgement `forecast_record` this shares with the simulator's `HybridPolicy`).

Each completed load bucket checks the forecast made a lead time before it (did the provisioned quantile
hold; was it closer than the trailing one-hour mean made at the same time), then the newest forecast
notes what it says about the bucket a lead time ahead. Checks are summed in bins of a 48th of the
window, so the state stays small (a few hundred bytes) whatever the load's step; the window slides a bin
at a time. Once a day (hourly until there is enough history) the loop also reads the whole history and
judges it (`judge`): can forecasting help this load at all (a daily cycle, not an autoscaler's output)?
Pure: the loop passes the history
it read and the forecast it made, and stores the JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.applicability import Verdict, judge_history
from automation.scaling.fitting import ForecastPath
from automation.scaling.load import LoadHistory
from automation.scaling.policies import ForecastRecord, TrustSettings, forecast_record

#: Bins per trust window.
BINS = 48


@dataclass(kw_only=True)
class TrustState:
    step: float = 0.0
    #: Start time of the newest complete bucket folded in (NaN: none yet).
    last: float = math.nan
    #: The newest complete buckets' loads, oldest first, for the trailing mean (None: missing).
    recent: list[float | None] = field(default_factory=list)
    #: Forecasts waiting for their bucket: bucket start (epoch s) -> (upper, mean, trailing mean then).
    pending: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    #: Checks summed per bin: [bin start, hits, checks, sum |error|, sum |trailing error|].
    bins: list[list[float]] = field(default_factory=list)
    #: Whether forecasting can help this load (None: not judged since this state began), and when it was
    #: judged (epoch s; NaN: never).
    verdict: Verdict | None = None
    judged_at: float = math.nan

    @staticmethod
    def from_json(document: Any, step: float) -> TrustState:
        """The stored state, or a fresh one when there is none or the load's step changed."""
        if not isinstance(document, dict) or document.get("step") != step:
            return TrustState(step=step)
        last = document.get("last")
        pending = document.get("pending", {})
        return TrustState(
            step=step,
            last=float(last) if last is not None else math.nan,
            recent=[None if v is None else float(v) for v in document.get("recent", [])],
            pending={float(k): (float(u), float(m), float(t)) for k, (u, m, t) in pending.items()},
            bins=[[float(x) for x in b] for b in document.get("bins", [])],
            verdict=Verdict.from_json(document.get("verdict")),
            judged_at=float(document["judged_at"]) if document.get("judged_at") is not None else math.nan,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "last": None if math.isnan(self.last) else self.last,
            "recent": self.recent,
            "pending": {f"{k:.0f}": list(v) for k, v in self.pending.items()},
            "bins": self.bins,
            "verdict": None if self.verdict is None else self.verdict.as_json(),
            "judged_at": None if math.isnan(self.judged_at) else self.judged_at,
        }


def lead_steps(lead: float, step: float) -> int:
    """Buckets between the newest complete one and the one a forecast made now is checked against."""
    return max(1, round(lead / step))


def update(
    state: TrustState,
    history: LoadHistory,
    path: ForecastPath | None,
    *,
    now: float,
    lead: float,
    settings: TrustSettings,
) -> TrustState:
    """Fold the complete buckets of `history` newer than the state's into the checks, then note the
    forecast `path` makes for the bucket a lead time past the newest complete one."""
    step = state.step
    window = settings.window.total_seconds()
    width = max(step, window / BINS)
    trailing_count = max(1, int(settings.trailing.total_seconds() // step))
    for k, value in enumerate(history.values):
        at = history.start + k * step
        if at + step > now or (not math.isnan(state.last) and at <= state.last):
            continue
        made = state.pending.pop(at, None)
        if made is not None and not math.isnan(value) and not math.isnan(made[2]):
            upper, mean, trailing = made
            where = math.floor(at / width) * width
            _add(state, where, value <= upper, abs(value - mean), abs(value - trailing))
        state.recent.append(None if math.isnan(value) else float(value))
        del state.recent[:-trailing_count]
        state.last = at
    horizon = now - window
    state.bins = [b for b in state.bins if b[0] + width > horizon]
    if not math.isnan(state.last):
        state.pending = {at: made for at, made in state.pending.items() if at > state.last}
    if path is None or math.isnan(state.last):
        return state
    target = state.last + lead_steps(lead, step) * step
    found = np.nonzero(np.abs(path.times - target) < step / 2)[0]
    known = [v for v in state.recent if v is not None]
    if len(found) and known:
        i = int(found[0])
        upper, mean = float(path.upper[i]), float(path.mean[i])
        if math.isfinite(upper) and math.isfinite(mean):
            state.pending[target] = (upper, mean, float(np.mean(known)))
    return state


def _add(state: TrustState, bin_start: float, hit: bool, error: float, trailing_error: float) -> None:
    if not state.bins or state.bins[-1][0] != bin_start:
        state.bins.append([bin_start, 0.0, 0.0, 0.0, 0.0])
    current = state.bins[-1]
    current[1] += int(hit)
    current[2] += 1
    current[3] += error
    current[4] += trailing_error


def record(state: TrustState, quantile: float, settings: TrustSettings) -> ForecastRecord:
    """The forecast's record over the window, judged as the simulator's hybrid judges it."""
    hits = sum(b[1] for b in state.bins)
    checks = int(sum(b[2] for b in state.bins))
    return forecast_record(
        hits=hits,
        checks=checks,
        error=sum(b[3] for b in state.bins),
        trailing_error=sum(b[4] for b in state.bins),
        quantile=quantile,
        trust=settings,
    )


def judging_due(state: TrustState, now: float, settings: TrustSettings) -> bool:
    """Whether the load must be judged (again) now: never judged, or the last verdict's time is up
    (`TrustSettings.wait_after`: hourly while it rests on under `judged_over` of history, daily after)."""
    if not settings.forecastability:
        return False
    if state.verdict is None or math.isnan(state.judged_at):
        return True
    return bool(now - state.judged_at >= settings.wait_after(state.verdict).total_seconds())


def judge(state: TrustState, history: LoadHistory, settings: TrustSettings, *, now: float) -> TrustState:
    """Judge whether forecasting can help the load on the last `judged_over` of `history`, as the
    simulator's hybrid judges the history it has seen (`judge_history`)."""
    keep = max(1, int(settings.judged_over.total_seconds() // history.step))
    values = np.asarray(history.values, dtype=float)[-keep:]
    state.verdict = judge_history(
        values,
        step=pd.Timedelta(seconds=history.step),
        end=pd.Timestamp(history.end, unit="s", tz="UTC"),
        minimum=settings.judge_after,
    )
    state.judged_at = now
    return state


def cannot_help(state: TrustState, settings: TrustSettings) -> str:
    """Why the forecast may not add capacity whatever its record ("" when it may): forecasting cannot
    help this load, or that is not judged yet."""
    if not settings.forecastability:
        return ""
    if state.verdict is None:
        return "forecastability not judged yet"
    return "" if state.verdict.helps else state.verdict.said
