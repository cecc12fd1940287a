"""Whether forecasting can help a series at all: a daily cycle to learn, no level shifts that make the
past a poor guide, and a load that is demand rather than the output of an autoscaler (a step-shaped
series, held on a few quantised levels, records past scaling decisions). A scaling policy provisioning
for a forecast of noise, or of another controller's decisions, only adds cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from automation.forecasting.durations import format_duration
from automation.forecasting.seasonality import DAILY_CYCLE_THRESHOLD, DAY, autocorrelation, steps_per
from automation.forecasting.traces import Trace, trace_from_series

SHIFT_RATIO = 1.5
SHIFT_DAYS = 7  # a week either side, so a weekly cycle is not a shift
# a level counts when held for at least this many steps; the series is step-shaped when this share of
# its known steps sit on such runs, on 2 to MAX_LEVELS levels (those holding 95% of that time) that are
# whole multiples of one unit (replicas x capacity) within QUANTUM_TOLERANCE of it
MIN_RUN_STEPS = 3
FLAT_SHARE = 0.8
MAX_LEVELS = 30
QUANTUM_TOLERANCE = 0.02
LEVEL_TIME_SHARE = 0.95


@dataclass(frozen=True, kw_only=True)
class StepShape:
    """How step-shaped a series is: the share of its known steps on flat runs (a value held at least
    `MIN_RUN_STEPS` steps), the levels those runs hold (the fewest covering 95% of that time), their
    common unit (NaN when they are not whole multiples of one), and whether it all adds up to the output
    of an autoscaler rather than demand."""

    flat_share: float
    levels: tuple[float, ...]
    unit: float
    level_changes: int
    autoscaled: bool

    def describe(self, step: pd.Timedelta | None = None) -> str:
        held = f"{MIN_RUN_STEPS} steps" if step is None else format_duration(step * MIN_RUN_STEPS)
        return (
            f"step-shaped: {len(self.levels)} levels, multiples of {self.unit:.4g}, "
            f"{self.flat_share:.0%} of the time held {held} or more, {self.level_changes} level changes"
        )

    def summary(self) -> dict[str, object]:
        return {
            "autoscaled": self.autoscaled,
            "flat_share": round(self.flat_share, 3),
            "levels": len(self.levels),
            "unit": None if math.isnan(self.unit) else round(self.unit, 6),
            "level_changes": self.level_changes,
        }


def step_shape(
    values: np.ndarray,
    *,
    min_run: int = MIN_RUN_STEPS,
    flat_share: float = FLAT_SHARE,
    max_levels: int = MAX_LEVELS,
    tolerance: float = QUANTUM_TOLERANCE,
) -> StepShape:
    """Whether `values` (NaN = unknown, skipped) look like an autoscaler's output: most of the time on
    flat runs, on a few levels that are whole multiples of one unit. Idle-with-bursts (one level and
    spikes), quantised but jittery metrics (short runs) and smooth loads do not qualify."""
    y = np.asarray(values, dtype=float)
    y = y[~np.isnan(y)]
    none = StepShape(flat_share=0.0, levels=(), unit=math.nan, level_changes=0, autoscaled=False)
    if len(y) < 2 * min_run:
        return none
    scale = np.maximum(np.abs(y[1:]), np.abs(y[:-1]))
    same = np.abs(y[1:] - y[:-1]) <= 1e-9 * np.maximum(scale, 1e-12)
    starts = np.concatenate([[0], np.flatnonzero(~same) + 1])
    lengths = np.diff(np.concatenate([starts, [len(y)]]))
    flat = lengths >= min_run
    share = float(lengths[flat].sum() / len(y))
    if not flat.any():
        return StepShape(flat_share=share, levels=(), unit=math.nan, level_changes=0, autoscaled=False)
    held = np.round(y[starts[flat]], 9)
    time_on = pd.Series(lengths[flat]).groupby(held).sum().sort_values(ascending=False)
    covered = np.cumsum(time_on.to_numpy()) / time_on.sum()
    kept = np.sort(time_on.index.to_numpy(dtype=float)[: int(np.searchsorted(covered, LEVEL_TIME_SHARE)) + 1])
    sequence = held[np.isin(held, kept)]
    changes = int((sequence[1:] != sequence[:-1]).sum())
    unit = math.nan
    if len(kept) >= 2:
        gap = float(np.min(np.diff(kept)))
        multiples = (kept - kept[0]) / gap
        if gap > 0 and np.all(np.abs(multiples - np.round(multiples)) <= tolerance):
            unit = gap
    autoscaled = (
        share >= flat_share and 2 <= len(kept) <= max_levels and not math.isnan(unit) and changes >= 2
    )
    return StepShape(
        flat_share=share,
        levels=tuple(float(v) for v in kept),
        unit=unit,
        level_changes=changes,
        autoscaled=autoscaled,
    )


@dataclass(frozen=True, kw_only=True)
class Applicability:
    """The checks and their verdict; `reasons` say in words why forecasting will not help (empty when it
    may)."""

    daily_autocorrelation: float
    daily_cycle: bool
    level_shifts: tuple[pd.Timestamp, ...]
    applicable: bool
    reasons: tuple[str, ...]
    step_shape: StepShape | None = None

    @property
    def autoscaler_output(self) -> bool:
        """The load looks like the output of an autoscaler (see `step_shape`)."""
        return self.step_shape is not None and self.step_shape.autoscaled

    def summary(self) -> dict[str, object]:
        return {
            "applicable": self.applicable,
            "daily_autocorrelation": None
            if math.isnan(self.daily_autocorrelation)
            else round(self.daily_autocorrelation, 3),
            "daily_cycle": self.daily_cycle,
            "level_shifts": [t.isoformat() for t in self.level_shifts],
            "autoscaler_output": self.autoscaler_output,
            "step_shape": None if self.step_shape is None else self.step_shape.summary(),
            "reasons": list(self.reasons),
        }


def level_shifts(
    trace: Trace, *, ratio: float = SHIFT_RATIO, days: int = SHIFT_DAYS
) -> tuple[pd.Timestamp, ...]:
    """Days where the median load of the `days` days after differs from that of the `days` days before by
    more than `ratio` either way, and by more than the day-to-day wobble of daily medians would explain
    (three robust sigmas); consecutive such days count once, where the means either side differ most."""
    daily = trace.load.resample("1D").median()
    values = daily.to_numpy(dtype=float)
    if len(values) < 2 * days:
        return ()
    wobble = np.nanmedian(np.abs(np.diff(values))) * 1.4826 if len(values) > 2 else 0.0
    scores = np.zeros(len(values))
    for d in range(days, len(values) - days + 1):
        before = np.nanmedian(values[d - days : d]) if not np.isnan(values[d - days : d]).all() else math.nan
        after = np.nanmedian(values[d : d + days]) if not np.isnan(values[d : d + days]).all() else math.nan
        if math.isnan(before) or math.isnan(after):
            continue
        low, high = sorted((abs(before), abs(after)))
        change = high / low if low > 0 else (math.inf if high > 0 else 1.0)
        if change > ratio and abs(after - before) > 3 * wobble:
            # medians decide whether the level moved, means where: they peak at the day it did
            low_mean, high_mean = sorted(
                (abs(np.nanmean(values[d - days : d])), abs(np.nanmean(values[d : d + days])))
            )
            scores[d] = math.log(high_mean / low_mean) if low_mean > 0 else 1e9
    shifts = []
    d = 0
    while d < len(scores):
        if scores[d] > 0:
            end = d
            while end + 1 < len(scores) and scores[end + 1] > 0:
                end += 1
            best = d + int(np.argmax(scores[d : end + 1]))
            shifts.append(pd.Timestamp(daily.index[best]))
            d = end + 1
        else:
            d += 1
    return tuple(shifts)


def autoscaler_reason(shape: StepShape, step: pd.Timedelta | None = None) -> str:
    """Why a step-shaped load is no demand to forecast, in words."""
    return (
        f"the load looks like the output of an autoscaler ({shape.describe(step)}): a forecast of it "
        "predicts past scaling decisions, not the demand behind them"
    )


def assess_forecastability(trace: Trace, *, threshold: float = DAILY_CYCLE_THRESHOLD) -> Applicability:
    """A daily cycle (autocorrelation one day back at least `threshold`), no level shift, and a load that
    is not the output of an autoscaler (`step_shape`)."""
    values = trace.load.to_numpy(dtype=float)
    lag = steps_per(DAY, trace.step)
    correlation = autocorrelation(values, lag) if lag else math.nan
    cycle = not math.isnan(correlation) and correlation >= threshold
    shifts = level_shifts(trace)
    shape = step_shape(values)
    reasons = []
    if shape.autoscaled:
        reasons.append(autoscaler_reason(shape, trace.step))
    if not cycle:
        measured = "not measurable" if math.isnan(correlation) else f"{correlation:.2f}"
        reasons.append(
            f"no daily cycle (autocorrelation one day back {measured}, below {threshold:g}): "
            "a forecast has nothing to learn ahead of the load"
        )
    if shifts:
        when = ", ".join(f"{t:%Y-%m-%d}" for t in shifts)
        reasons.append(
            f"level shift{'s' if len(shifts) > 1 else ''} on {when} (median load changed more than "
            f"{SHIFT_RATIO:g}x): the past is a poor guide across {'them' if len(shifts) > 1 else 'it'}"
        )
    return Applicability(
        daily_autocorrelation=correlation,
        daily_cycle=cycle,
        level_shifts=shifts,
        applicable=not reasons,
        reasons=tuple(reasons),
        step_shape=shape,
    )


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether forecasting can help a load, judged on the history seen so far (`judge_history`): what a
    live policy may know at the time, unlike `assess_forecastability` on a whole trace."""

    helps: bool
    why: str
    #: False while too little history is known to judge (then `helps` is False too).
    judged: bool = True
    #: Seconds of known history it was judged on.
    known_seconds: float = 0.0

    @property
    def said(self) -> str:
        """The verdict in words, for a decision's reason."""
        if not self.judged:
            return f"forecastability not judged yet ({self.why})"
        return f"forecasting {'can' if self.helps else 'cannot'} help ({self.why})"

    def as_json(self) -> dict[str, object]:
        return {
            "helps": self.helps,
            "why": self.why,
            "judged": self.judged,
            "known_seconds": self.known_seconds,
        }

    @staticmethod
    def from_json(document: object) -> Verdict | None:
        if not isinstance(document, dict) or not isinstance(document.get("helps"), bool):
            return None
        return Verdict(
            helps=document["helps"],
            why=str(document.get("why", "")),
            judged=document.get("judged") is not False,
            known_seconds=float(document.get("known_seconds") or 0.0),
        )


def judge_history(
    values: np.ndarray, *, step: pd.Timedelta, end: pd.Timestamp, minimum: pd.Timedelta
) -> Verdict:
    """`assess_forecastability` on `values` (NaN = unknown), the steps up to `end` (the start of the
    last): no verdict for forecasting until `minimum` of it is known (a daily autocorrelation needs more
    than one day). Level shifts need two weeks of it to be seen at all."""
    y = np.asarray(values, dtype=float)
    known = step * int(np.count_nonzero(~np.isnan(y)))
    if known < minimum:
        return Verdict(
            helps=False,
            why=f"{format_duration(known)} of history, {format_duration(minimum)} needed",
            judged=False,
            known_seconds=known.total_seconds(),
        )
    index = pd.date_range(end=end, periods=len(y), freq=step)
    verdict = assess_forecastability(trace_from_series(pd.Series(y, index=index), step=step))
    if not verdict.applicable:
        return Verdict(helps=False, why="; ".join(verdict.reasons), known_seconds=known.total_seconds())
    return Verdict(
        helps=True,
        why=f"daily cycle {verdict.daily_autocorrelation:.2f} over the last {format_duration(step * len(y))}",
        known_seconds=known.total_seconds(),
    )
