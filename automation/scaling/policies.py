"""Scaling policies: `reactive` (the Kubernetes HPA algorithm), `predictive` (forecast upper quantile over
the window the new replicas will serve) and `hybrid` (the larger of the two), behind common limits.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.applicability import Verdict, judge_history
from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.forecaster import Forecast, ForecasterSettings, RollingForecaster

#: The hybrid's default forecast quantile, chosen leave-one-trace-out over 20 traces by
#: `benchmarks/bench_scaling_loo.py`: q 0.95 in all 20 folds against q 0.99, both policies deciding every
#: 15 s and the hybrid's floor searched at each reactive point's cost (see docs/forecasting.md). An earlier
#: run (the hybrid deciding every minute, a 0.05 grid of floor targets) had picked 0.99, by a weak margin.
HYBRID_QUANTILE = 0.95
HPA_TOLERANCE = 0.1
HPA_SCALE_DOWN_WINDOW = pd.Timedelta(minutes=5)
HPA_SYNC_PERIOD = pd.Timedelta(seconds=15)
#: A forecastability verdict on little history stands this long (see `TrustSettings.wait_after`).
JUDGE_RETRY = pd.Timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class ScaleUpRule:
    """The HPA's default scale-up behaviour: per `period`, add at most the larger of `pods` and `percent`%
    of the count at the period's start (`selectPolicy: Max`)."""

    pods: int = 4
    percent: float = 100.0
    period: pd.Timedelta = HPA_SYNC_PERIOD

    def limit(self, period_start_replicas: int) -> int:
        by_pods = period_start_replicas + self.pods
        by_percent = math.ceil(period_start_replicas * (1 + self.percent / 100) - 1e-9)
        return max(by_pods, by_percent)


@dataclass(frozen=True, kw_only=True)
class ScalingLimits:
    """Bounds every policy obeys: replica range, largest step per decision, and cooldowns (a scale-up
    waits `scale_up_cooldown` after the last scale-up; a scale-down waits `scale_down_cooldown` after any
    action)."""

    min_replicas: int = 1
    max_replicas: int = 1000
    max_step_up: int | None = None
    max_step_down: int | None = None
    scale_up_cooldown: pd.Timedelta = pd.Timedelta(0)
    scale_down_cooldown: pd.Timedelta = pd.Timedelta(0)

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < max(1, self.min_replicas):
            raise ForecastConfigError(
                "max_replicas", "need 0 <= min_replicas <= max_replicas and max_replicas >= 1"
            )
        for name in ("max_step_up", "max_step_down"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ForecastConfigError(name, "must be at least 1")


@dataclass(frozen=True, kw_only=True)
class DecisionContext:
    """What a policy may know when deciding: the past loads it observed and the fleet right now."""

    time: pd.Timestamp
    requested_replicas: int
    serving_replicas: int
    capacity_per_replica: float
    step: pd.Timedelta
    decision_interval: pd.Timedelta
    lead_time: pd.Timedelta


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The replicas a policy wants, why, and the forecast behind it (None for reactive)."""

    desired: int
    reason: str
    forecast: Forecast | None = None
    window: tuple[int, int] | None = None


@dataclass(kw_only=True)
class _ActionClock:
    last_up: pd.Timestamp | None = None
    last_any: pd.Timestamp | None = None


class ScalingPolicy:
    """Base of every policy: subclasses implement `recommend`; `decide` applies the limits and keeps the
    cooldown clock. `observe` is called with each new measured load, in order."""

    name = "policy"

    def __init__(self, *, limits: ScalingLimits | None = None) -> None:
        self.limits = limits or ScalingLimits()
        self._clock = _ActionClock()

    def configure(
        self,
        *,
        start: pd.Timestamp,
        step: pd.Timedelta,
        lead_time: pd.Timedelta,
        decision_interval: pd.Timedelta,
        tick: pd.Timedelta | None = None,
    ) -> None:
        """Called by the simulator before the first observation: the trace's step, the grid the policy
        observes on (`tick`, by default the step) and its decision cadence."""

    def finish(self) -> None:
        """Called by the simulator after the last observation."""

    def model_counts(self) -> dict[str, int]:
        """How many times each forecasting model family was fitted (none for a reactive policy)."""
        return {}

    def observe(self, time: pd.Timestamp, load: float) -> None:
        """A new measurement (NaN when the metric is missing)."""

    def recommend(self, context: DecisionContext) -> Decision:
        raise NotImplementedError

    def decide(self, context: DecisionContext) -> Decision:
        decision = self.recommend(context)
        current = context.requested_replicas
        desired = decision.desired
        limits = self.limits
        if desired > current and limits.max_step_up is not None:
            desired = min(desired, current + limits.max_step_up)
        if desired < current and limits.max_step_down is not None:
            desired = max(desired, current - limits.max_step_down)
        desired = int(min(max(desired, limits.min_replicas), limits.max_replicas))
        reason = decision.reason
        if desired > current and _within(self._clock.last_up, limits.scale_up_cooldown, context.time):
            desired, reason = current, f"{reason}; scale-up cooldown"
        if desired < current and _within(self._clock.last_any, limits.scale_down_cooldown, context.time):
            desired, reason = current, f"{reason}; scale-down cooldown"
        if desired != current:
            self._clock.last_any = context.time
            if desired > current:
                self._clock.last_up = context.time
        return Decision(desired=desired, reason=reason, forecast=decision.forecast, window=decision.window)

    def describe(self) -> dict[str, Any]:
        return {"policy": self.name}


_NO_TIME = pd.Timedelta(0)


def _within(last: pd.Timestamp | None, cooldown: pd.Timedelta, now: pd.Timestamp) -> bool:
    return last is not None and cooldown > _NO_TIME and now - last < cooldown


class ReactivePolicy(ScalingPolicy):
    """The Kubernetes HPA on a utilisation target: desired = ceil(ready * utilisation / target), no change
    within the 10% tolerance, unready pods counted at 0% when scaling up, scale-down to the highest
    recommendation of the last five minutes (the default stabilisation), and scale-up limited per 15 s to
    max(4 pods, 100%) of the count at the period's start (the default `behavior.scaleUp` policies).

    The rate limit reads the scale-ups from the requested counts it is shown, so it also holds when the
    policy is a fallback or a floor inside another one."""

    name = "reactive"

    def __init__(
        self,
        *,
        target_utilization: float = 0.7,
        tolerance: float = HPA_TOLERANCE,
        scale_down_window: pd.Timedelta = HPA_SCALE_DOWN_WINDOW,
        scale_up_rule: ScaleUpRule | None = ScaleUpRule(),
        limits: ScalingLimits | None = None,
    ) -> None:
        super().__init__(limits=limits)
        if not 0 < target_utilization <= 1:
            raise ForecastConfigError("target_utilization", "must be in (0, 1]")
        self.target_utilization = target_utilization
        self.tolerance = tolerance
        self.scale_down_window = scale_down_window
        self.scale_up_rule = scale_up_rule
        self.latest_load = math.nan
        self.recommendations: deque[tuple[pd.Timestamp, int]] = deque()
        self._last_seen: tuple[pd.Timestamp, int] | None = None
        self._scale_ups: deque[tuple[pd.Timestamp, int]] = deque()

    def observe(self, time: pd.Timestamp, load: float) -> None:
        self.latest_load = load

    def raw_recommendation(self, context: DecisionContext) -> tuple[int, str]:
        current = context.requested_replicas
        ready = context.serving_replicas
        unready = max(0, current - ready)
        load = self.latest_load
        if math.isnan(load) or ready == 0:
            return current, "no metric from ready pods: hold"
        capacity = context.capacity_per_replica
        usage_ratio = load / (ready * capacity) / self.target_utilization
        if not (unready > 0 and usage_ratio > 1.0):
            if abs(1.0 - usage_ratio) <= self.tolerance:
                return current, f"utilisation ratio {usage_ratio:.2f} within tolerance"
            return math.ceil(usage_ratio * ready - 1e-9), f"utilisation ratio {usage_ratio:.2f}"
        new_ratio = load / ((ready + unready) * capacity) / self.target_utilization
        if abs(1.0 - new_ratio) <= self.tolerance or new_ratio < 1.0:
            return current, f"ratio {new_ratio:.2f} with unready pods at 0%: hold"
        proposal = math.ceil(new_ratio * (ready + unready) - 1e-9)
        return max(proposal, current), f"utilisation ratio {new_ratio:.2f} (unready pods at 0%)"

    def _scale_up_limit(self, context: DecisionContext) -> int | None:
        """Most replicas the rate limit allows now: scale-ups are read off the requested counts seen at
        successive decisions (an increase happened at the previous decision)."""
        rule = self.scale_up_rule
        current = context.requested_replicas
        if self._last_seen is not None and current > self._last_seen[1]:
            self._scale_ups.append((self._last_seen[0], current - self._last_seen[1]))
        self._last_seen = (context.time, current)
        if rule is None:
            return None
        if self._scale_ups:
            since = context.time.value - rule.period.value  # nanoseconds: Timestamp arithmetic is slow
            while self._scale_ups and self._scale_ups[0][0].value <= since:
                self._scale_ups.popleft()
        added = sum(count for _, count in self._scale_ups)
        return rule.limit(max(0, current - added))

    def recommend(self, context: DecisionContext) -> Decision:
        proposal, reason = self.raw_recommendation(context)
        limit = self._scale_up_limit(context)
        cutoff = context.time.value - self.scale_down_window.value  # nanoseconds, as above
        while self.recommendations and self.recommendations[0][0].value <= cutoff:
            self.recommendations.popleft()
        # like the HPA controller: the current proposal plus those stored within the window
        stabilised = max([proposal] + [r for _, r in self.recommendations])
        self.recommendations.append((context.time, proposal))
        desired = proposal
        if proposal < context.requested_replicas:
            desired = min(context.requested_replicas, stabilised)
            if desired != proposal:
                reason += f"; scale-down stabilised at {desired}"
        if limit is not None and desired > max(limit, context.requested_replicas):
            desired = max(limit, context.requested_replicas)
            reason += f"; scale-up rate-limited to {desired}"
        return Decision(desired=desired, reason=reason)

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "target_utilization": self.target_utilization,
            "tolerance": self.tolerance,
            "scale_down_window": str(self.scale_down_window),
            "scale_up_rule": None
            if self.scale_up_rule is None
            else {
                "pods": self.scale_up_rule.pods,
                "percent": self.scale_up_rule.percent,
                "period": str(self.scale_up_rule.period),
            },
        }


@dataclass(frozen=True, kw_only=True)
class PredictiveSettings:
    """How the predictive policy forecasts: the quantile of load to provision for, the history it waits
    for before trusting a forecast (reactive until then), and the refit cadence."""

    quantile: float = 0.95
    min_history: pd.Timedelta = pd.Timedelta(days=1)
    refit_every: pd.Timedelta = pd.Timedelta(days=1)
    reselect_every: pd.Timedelta = pd.Timedelta(days=7)
    forecaster: ForecasterSettings = field(default_factory=ForecasterSettings)

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile < 1:
            raise ForecastConfigError("quantile", "must be in [0.5, 1)")


@dataclass(kw_only=True)
class ForecastTape:
    """Forecasts of one trace, recorded by the first run (one per completed trace step, at every level of a
    sweep) and replayed by later runs with the same trace, forecaster settings and a horizon no longer than
    the tape's. The forecaster sees only the load, never a policy's decisions, so its forecasts do not
    depend on the quantile or the utilisation target; a sweep fits once instead of once per point. Set
    `horizon` before the first run to record for the longest lead time a sweep will replay (the forecaster
    is then fitted and chosen for that horizon)."""

    levels: tuple[float, ...]
    horizon: int = 0
    means: list[np.ndarray | None] = field(default_factory=list)
    quantiles: list[np.ndarray | None] = field(default_factory=list)
    times: list[pd.Timestamp] = field(default_factory=list)
    model_names: list[str] = field(default_factory=list)
    models: dict[str, int] = field(default_factory=dict)
    step: pd.Timedelta | None = None
    complete: bool = False
    _grid: tuple[pd.DatetimeIndex, bool] | None = field(default=None, repr=False)  # (grid, regular)

    def record(self, forecast: Forecast | None, *, last_time: pd.Timestamp, model: str) -> None:
        self.times.append(last_time)
        self.model_names.append(model)
        if forecast is None:
            self.means.append(None)
            self.quantiles.append(None)
            return
        self.means.append(forecast.mean)
        self.quantiles.append(np.vstack([forecast.quantiles[level] for level in self.levels]))

    def replay(self, index: int, steps: int, level: float) -> Forecast | None:
        """The forecast made after `index + 1` completed steps (None while the forecaster warmed up)."""
        if level not in self.levels:
            raise ForecastConfigError("quantile", f"{level} is not on the tape (levels {self.levels})")
        mean = self.means[index] if index < len(self.means) else None
        quantiles = self.quantiles[index]
        if mean is None or quantiles is None or self.step is None:
            return None
        row = quantiles[self.levels.index(level)]
        return Forecast(
            index=self._index(index, steps),
            mean=mean[:steps],
            quantiles={level: row[:steps]},
            model=self.model_names[index],
        )

    def _index(self, index: int, steps: int) -> pd.DatetimeIndex:
        """The `steps` times after the forecast made after `index + 1` completed steps: a slice of one grid
        built once (a forecaster's times advance one step per completed step), not a range per step."""
        assert self.step is not None
        size = len(self.times) + max(self.horizon, steps)
        if self._grid is None or (self._grid[1] and len(self._grid[0]) < size):
            grid = pd.date_range(self.times[0] + self.step, periods=size, freq=self.step)
            self._grid = (grid, bool(grid[len(self.times) - 1] == self.times[-1] + self.step))
        grid, regular = self._grid
        if not regular:
            return pd.date_range(self.times[index] + self.step, periods=steps, freq=self.step)
        return grid[index : index + steps]


class PredictivePolicy(ScalingPolicy):
    """desired = ceil(q-quantile of forecast load over [now + lead, now + lead + interval] / capacity).

    Removing replicas is immediate but re-adding one takes the provisioning delay, so a scale-down also
    keeps what the forecast needs until then (the whole of [now, now + lead + interval]). Until the
    forecaster has enough history it behaves like `reactive` and says so in the reason.

    The forecaster works at the trace's step; the policy may observe and decide on a finer grid (`tick`,
    set by `configure`): ticks are averaged into steps for the forecaster, and each decision reads the
    latest forecast over the window as seen from its own time within the current step."""

    name = "predictive"

    def __init__(
        self,
        *,
        settings: PredictiveSettings | None = None,
        fallback: ReactivePolicy | None = None,
        limits: ScalingLimits | None = None,
        tape: ForecastTape | None = None,
    ) -> None:
        super().__init__(limits=limits)
        self.settings = settings or PredictiveSettings()
        self.fallback = fallback or ReactivePolicy()
        self.forecaster: RollingForecaster | None = None
        self.horizon_steps = 0
        self.tape = tape
        self.tick: pd.Timedelta | None = None
        self.ticks_per_step = 1
        self.completed_steps = 0
        self._partial: list[float] = []
        self._cached: tuple[int, Forecast | None] | None = None

    @property
    def partial_step(self) -> list[float]:
        """The loads observed so far in the trace step in progress."""
        return list(self._partial)

    @property
    def replaying(self) -> bool:
        return self.tape is not None and self.tape.complete

    def _ensure_forecaster(self, time: pd.Timestamp, step: pd.Timedelta, horizon: int) -> RollingForecaster:
        if self.forecaster is None or self.horizon_steps < horizon:
            self.horizon_steps = horizon
            self.forecaster = RollingForecaster(
                step=step,
                horizon=horizon,
                start=time,
                refit_every=self.settings.refit_every,
                reselect_every=self.settings.reselect_every,
                settings=self.settings.forecaster,
                min_history=max(12, int(self.settings.min_history / step)),
            )
        return self.forecaster

    def configure(
        self,
        *,
        start: pd.Timestamp,
        step: pd.Timedelta,
        lead_time: pd.Timedelta,
        decision_interval: pd.Timedelta,
        tick: pd.Timedelta | None = None,
    ) -> None:
        """Called by the simulator before the first observation: the grid it observes on (`tick`, by
        default the step) and the forecast horizon, which must cover a decision late in a step."""
        tick = tick or step
        self.tick = tick
        self.ticks_per_step = max(1, int(round(step / tick)))
        _, last = forecast_window(
            step=step, lead_time=lead_time, decision_interval=decision_interval, elapsed=step - tick
        )
        tape = self.tape
        if tape is not None:
            if tape.complete and tape.horizon < last:
                raise ForecastConfigError(
                    "tape", f"recorded with a {tape.horizon}-step horizon, this run needs {last}"
                )
            if self.settings.quantile not in tape.levels:
                raise ForecastConfigError("quantile", f"{self.settings.quantile} is not on the tape")
            if not tape.complete:
                # a horizon set beforehand (for a longer lead time in the same sweep) is kept
                tape.horizon, tape.step = max(tape.horizon, last), step
            last = tape.horizon
        if not self.replaying:
            self._ensure_forecaster(start, step, last)
        self.horizon_steps = last

    def observe(self, time: pd.Timestamp, load: float) -> None:
        self.fallback.observe(time, load)
        self._partial.append(load)
        if len(self._partial) < self.ticks_per_step:
            return
        known = [v for v in self._partial if not math.isnan(v)]
        value = float(np.mean(known)) if known else math.nan
        self._partial.clear()
        self.completed_steps += 1
        if self.replaying or self.forecaster is None:
            return
        self.forecaster.observe(value)
        tape = self.tape
        if tape is not None:
            forecast = self.forecaster.forecast(tape.horizon, levels=tape.levels)
            tape.record(
                forecast,
                last_time=self.forecaster.last_time,
                model=self.forecaster.chosen_model or "none",
            )

    def finish(self) -> None:
        """Called by the simulator after the last observation: a recording tape is complete."""
        if self.tape is not None and not self.tape.complete and self.forecaster is not None:
            self.tape.models = dict(self.forecaster.stats.models)
            self.tape.complete = True

    def latest_forecast(self, steps: int) -> Forecast | None:
        """The latest forecast, computed once per completed step."""
        key = self.completed_steps
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        level = self.settings.quantile
        if self.replaying:
            assert self.tape is not None
            prediction = self.tape.replay(key - 1, steps, level) if key else None
        else:
            assert self.forecaster is not None
            prediction = self.forecaster.forecast(steps, levels=(level,))
        self._cached = (key, prediction)
        return prediction

    def forecast_need(self, context: DecisionContext) -> tuple[int, int, Forecast, tuple[int, int]] | None:
        """(replicas the window needs, replicas to keep until new ones could be ready, the forecast, the
        window in steps after the last completed one), or None while the forecaster warms up."""
        elapsed = (self.tick or context.step) * len(self._partial)
        first, last = forecast_window(
            step=context.step,
            lead_time=context.lead_time,
            decision_interval=context.decision_interval,
            elapsed=elapsed,
        )
        if not self.replaying and (self.forecaster is None or self.horizon_steps < last):
            self._ensure_forecaster(context.time, context.step, last)
        prediction = self.latest_forecast(max(last, self.horizon_steps))
        if prediction is None:
            return None
        upper = prediction.quantiles[self.settings.quantile]
        capacity = context.capacity_per_replica
        needed = math.ceil(float(upper[first - 1 : last].max()) / capacity - 1e-9)
        keep = math.ceil(float(upper[:last].max()) / capacity - 1e-9)
        return needed, keep, prediction, (first, last)

    def recommend(self, context: DecisionContext) -> Decision:
        fallback = self.fallback.recommend(context)
        need = self.forecast_need(context)
        if need is None:
            return Decision(
                desired=fallback.desired, reason=f"forecaster warming up, reactive: {fallback.reason}"
            )
        needed, keep, prediction, window = need
        current = context.requested_replicas
        reason = f"forecast q{self.settings.quantile:g} needs {needed}"
        if needed >= current:
            return Decision(desired=needed, reason=reason, forecast=prediction, window=window)
        desired = min(current, max(needed, keep))
        if desired > needed:
            reason += f", keeping {desired} until new replicas could be ready"
        return Decision(desired=desired, reason=reason, forecast=prediction, window=window)

    def model_counts(self) -> dict[str, int]:
        """How many times each model family was fitted (for a replayed tape: by the recording run)."""
        if self.replaying:
            assert self.tape is not None
            counts = self.tape.models
        elif self.forecaster is not None:
            counts = self.forecaster.stats.models
        else:
            counts = {}
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def describe(self) -> dict[str, Any]:
        if self.replaying:
            assert self.tape is not None
            model = self.tape.model_names[-1] if self.tape.model_names else None
        else:
            model = self.forecaster.chosen_model if self.forecaster else None
        return {
            "policy": self.name,
            "quantile": self.settings.quantile,
            "refit_every": str(self.settings.refit_every),
            "model": model,
        }


@dataclass(frozen=True, kw_only=True)
class TrustSettings:
    """When the hybrid's forecast has earned the right to add capacity: over the last `window` of checks
    (each a completed trace step against the forecast made a lead time before it), at least `min_checks`
    checks; the share at or below the provisioned quantile q not below q (minus `slack`) by more than
    sampling error, `z` binomial standard errors sqrt(q(1-q)/n) — a calibrated bound holds less than q
    half the time, so `z = 0` would distrust a good forecast at random, while 1.64 distrusts one whose
    shortfall is significant at 5%, one-sided; and an MAE below that of the trailing one-hour mean made
    at the same time.

    Before any of that, with `forecastability` on, forecasting must be able to help this load at all:
    `judge_history` on the last `judged_over` of it (the loop's default `load.history`) finds a daily
    cycle and no autoscaler's output (and no level shift, which it can only see with `judged_over` of 14
    days or more). Until `judge_after` of history is known there is no verdict and the hybrid stays
    reactive (36 hours: half a day of pairs one day apart, and within the push store's 48-hour
    retention). A verdict on less than `judged_over` of history is noisy (on the NAB iio trace 36 hours
    said 0.41, two days 0.13), so it is judged again hourly until then, every `judge_every` after
    (`wait_after`)."""

    window: pd.Timedelta = pd.Timedelta(days=1)
    min_checks: int = 12
    slack: float = 0.0
    z: float = 1.64
    trailing: pd.Timedelta = pd.Timedelta(hours=1)
    forecastability: bool = True
    judged_over: pd.Timedelta = pd.Timedelta(days=7)
    judge_after: pd.Timedelta = pd.Timedelta(hours=36)
    judge_every: pd.Timedelta = pd.Timedelta(days=1)

    def __post_init__(self) -> None:
        if self.window <= pd.Timedelta(0):
            raise ForecastConfigError("window", "must be positive")
        if self.min_checks < 1:
            raise ForecastConfigError("min_checks", "must be at least 1")
        if not 0 <= self.slack < 0.5:
            raise ForecastConfigError("slack", "must be in [0, 0.5)")
        if not 0 <= self.z <= 5:
            raise ForecastConfigError("z", "must be in [0, 5]")
        if self.judge_after > self.judged_over:
            raise ForecastConfigError("judge_after", "must be at most judged_over")
        if self.judge_every <= pd.Timedelta(0):
            raise ForecastConfigError("judge_every", "must be positive")

    def wait_after(self, verdict: Verdict | None) -> pd.Timedelta:
        """How long a verdict stands before the load is judged again: none, at once; one on less than
        `judged_over` of history (or none yet for too little), an hour; else `judge_every`."""
        if verdict is None:
            return pd.Timedelta(0)
        if not verdict.judged or verdict.known_seconds < self.judged_over.total_seconds():
            return JUDGE_RETRY
        return self.judge_every


@dataclass(frozen=True, kw_only=True)
class ForecastRecord:
    """The forecast's recent record on this series: checks, hit rate of its upper bound, and its skill
    over the trailing mean (1 - its MAE / the trailing mean's)."""

    checks: int
    hit_rate: float
    skill: float
    earned: bool
    why: str


def forecast_record(
    *, hits: float, checks: int, error: float, trailing_error: float, quantile: float, trust: TrustSettings
) -> ForecastRecord:
    """Judge a forecast's record: `checks` recent steps, `hits` of them at or below its q bound, the sums
    of its absolute errors and of the trailing mean's (shared by the simulator's hybrid and the loop's)."""
    if checks < trust.min_checks:
        return ForecastRecord(
            checks=checks,
            hit_rate=math.nan,
            skill=math.nan,
            earned=False,
            why=f"{checks} checks of the forecast so far, {trust.min_checks} needed",
        )
    hit_rate = hits / checks
    skill = 1 - error / trailing_error if trailing_error > 0 else (0.0 if error else 1.0)
    reasons = []
    tolerance = trust.slack + trust.z * math.sqrt(quantile * (1 - quantile) / checks)
    if hit_rate < quantile - tolerance:
        reasons.append(
            f"q{quantile:g} bound held {hit_rate:.1%} of {checks} recent steps, "
            f"below {quantile - tolerance:.1%}"
        )
    if skill <= 0:
        reasons.append(f"no skill over the trailing one-hour mean ({skill:+.2f})")
    return ForecastRecord(
        checks=checks,
        hit_rate=hit_rate,
        skill=skill,
        earned=not reasons,
        why="; ".join(reasons) or f"q{quantile:g} held {hit_rate:.1%}, skill {skill:+.2f}",
    )


class HybridPolicy(ScalingPolicy):
    """Reactive at its target as a floor, plus forecast capacity only when the forecast has earned it.

    The reactive (HPA) recommendation at the same target is always kept, so the hybrid holds at least what
    the HPA would; the predictive need (its quantile over the lead-time window) is added on top only while
    the forecast's recent record on this series is good (see `TrustSettings`): its upper bound has held
    at least as often as its nominal level, and it beats the trailing one-hour mean, and forecasting can
    help this load at all (`TrustSettings.forecastability`, judged on the history seen so far at each
    refit). Otherwise the hybrid is the reactive policy and its decision reason says why."""

    name = "hybrid"

    def __init__(
        self,
        *,
        predictive: PredictivePolicy | None = None,
        reactive: ReactivePolicy | None = None,
        limits: ScalingLimits | None = None,
        trust: TrustSettings | None = None,
    ) -> None:
        super().__init__(limits=limits)
        self.reactive = reactive or ReactivePolicy()
        self.predictive = predictive or PredictivePolicy(
            settings=PredictiveSettings(quantile=HYBRID_QUANTILE), fallback=ReactivePolicy()
        )
        self.trust = trust or TrustSettings()
        self.step: pd.Timedelta | None = None
        self.lead_steps = 0
        self._seen_steps = 0
        self._step_values: deque[float] = deque()
        self._pending: dict[int, tuple[float, float, float]] = {}  # target step -> (upper, mean, trailing)
        self._checks: deque[tuple[bool, float, float]] = deque()  # (hit, |error|, |trailing error|)
        self._totals = [0, 0.0, 0.0]  # hits, sum |error|, sum |trailing error| over `_checks`
        self._record: tuple[int, ForecastRecord] | None = None  # cached until the next check
        self._added_checks = 0
        self._start: pd.Timestamp | None = None
        self._history: list[float] = []  # completed steps' loads, for the forecastability verdict
        self._verdict: tuple[int, Verdict] | None = None  # (completed steps then, verdict)
        #: decisions by what set them: "warming up", "not judged yet", "not forecastable", "not trusted",
        #: "reactive floor", "forecast"
        self.decided_by: dict[str, int] = {}

    def configure(
        self,
        *,
        start: pd.Timestamp,
        step: pd.Timedelta,
        lead_time: pd.Timedelta,
        decision_interval: pd.Timedelta,
        tick: pd.Timedelta | None = None,
    ) -> None:
        self.predictive.configure(
            start=start, step=step, lead_time=lead_time, decision_interval=decision_interval, tick=tick
        )
        self._set_step(step, lead_time)

    def _set_step(self, step: pd.Timedelta, lead_time: pd.Timedelta) -> None:
        self.step = step
        self.lead_steps = forecast_window(step=step, lead_time=lead_time, decision_interval=step)[0]

    def finish(self) -> None:
        self.predictive.finish()

    def model_counts(self) -> dict[str, int]:
        return self.predictive.model_counts()

    def observe(self, time: pd.Timestamp, load: float) -> None:
        if self._start is None:
            self._start = time
        self.reactive.observe(time, load)
        partial = self.predictive.partial_step
        self.predictive.observe(time, load)
        completed = self.predictive.completed_steps
        if completed == self._seen_steps or self.step is None:
            return
        self._seen_steps = completed
        known = [v for v in [*partial, load] if not math.isnan(v)]
        self._check_step(completed, float(np.mean(known)) if known else math.nan)

    def _check_step(self, completed: int, value: float) -> None:
        """Step number `completed` (1-based) has ended with `value`: score the forecast made for it, then
        note what the newest forecast says about the step a lead time ahead."""
        assert self.step is not None
        trailing_steps = max(1, int(self.trust.trailing / self.step))
        window_steps = max(1, int(self.trust.window / self.step))
        made = self._pending.pop(completed, None)
        if made is not None and not math.isnan(value):
            upper, mean, trailing = made
            if not math.isnan(trailing):
                self._add_check((value <= upper, abs(value - mean), abs(value - trailing)), window_steps)
        self._step_values.append(value)
        if self.trust.forecastability:
            self._history.append(value)
            del self._history[: -max(1, int(self.trust.judged_over / self.step))]
            self._judge(completed)
        while len(self._step_values) > trailing_steps:
            self._step_values.popleft()
        prediction = self.predictive.latest_forecast(max(self.lead_steps, self.predictive.horizon_steps))
        if prediction is None:
            return
        known = [v for v in self._step_values if not math.isnan(v)]
        trailing_mean = float(np.mean(known)) if known else math.nan
        h = self.lead_steps
        bound = prediction.quantiles[self.predictive.settings.quantile]
        self._pending[completed + h] = (float(bound[h - 1]), float(prediction.mean[h - 1]), trailing_mean)

    def _judge(self, completed: int) -> None:
        """Judge again whether forecasting can help, on the history seen so far, when the last verdict's
        time is up (`TrustSettings.wait_after`)."""
        assert self.step is not None and self._start is not None
        last = self._verdict
        if last is not None and (completed - last[0]) * self.step < self.trust.wait_after(last[1]):
            return
        end = self._start + self.step * (completed - 1)
        verdict = judge_history(
            np.asarray(self._history), step=self.step, end=end, minimum=self.trust.judge_after
        )
        self._verdict = (completed, verdict)

    @property
    def verdict(self) -> Verdict | None:
        """Whether forecasting can help this load, as last judged (None: not judged, or not asked to)."""
        return self._verdict[1] if self._verdict is not None else None

    def _add_check(self, check: tuple[bool, float, float], window_steps: int) -> None:
        self._checks.append(check)
        self._added_checks += 1
        self._totals[0] += int(check[0])
        self._totals[1] += check[1]
        self._totals[2] += check[2]
        while len(self._checks) > window_steps:
            hit, error, trailing_error = self._checks.popleft()
            self._totals[0] -= int(hit)
            self._totals[1] -= error
            self._totals[2] -= trailing_error

    def record(self) -> ForecastRecord:
        """The forecast's recent record and whether it has earned the right to add capacity (recomputed
        only when a check is added)."""
        if self._record is not None and self._record[0] == self._added_checks:
            return self._record[1]
        record = self._compute_record()
        self._record = (self._added_checks, record)
        return record

    def _compute_record(self) -> ForecastRecord:
        return forecast_record(
            hits=self._totals[0],
            checks=len(self._checks),
            error=self._totals[1],
            trailing_error=self._totals[2],
            quantile=self.predictive.settings.quantile,
            trust=self.trust,
        )

    def recommend(self, context: DecisionContext) -> Decision:
        floor = self.reactive.recommend(context)
        if self.step is None:
            self._set_step(context.step, context.lead_time)
        need = self.predictive.forecast_need(context)
        if need is None:
            self._count("warming up")
            return Decision(desired=floor.desired, reason=f"forecaster warming up, reactive: {floor.reason}")
        needed, keep, prediction, window = need
        verdict = self.verdict
        if self.trust.forecastability and (verdict is None or not verdict.helps):
            self._count("not forecastable" if verdict is not None and verdict.judged else "not judged yet")
            said = verdict.said if verdict is not None else "forecastability not judged yet"
            return Decision(
                desired=floor.desired,
                reason=f"{said}, reactive: {floor.reason}",
                forecast=prediction,
                window=window,
            )
        record = self.record()
        if not record.earned:
            self._count("not trusted")
            return Decision(
                desired=floor.desired,
                reason=f"forecast not trusted ({record.why}), reactive: {floor.reason}",
                forecast=prediction,
                window=window,
            )
        current = context.requested_replicas
        forecast_part = needed if needed >= current else min(current, max(needed, keep))
        if floor.desired >= forecast_part:
            self._count("reactive floor")
            return Decision(
                desired=floor.desired,
                reason=f"reactive floor: {floor.reason} (forecast q{self.predictive.settings.quantile:g} "
                f"needs {needed})",
                forecast=prediction,
                window=window,
            )
        self._count("forecast")
        reason = (
            f"forecast q{self.predictive.settings.quantile:g} needs {needed} over reactive {floor.desired}"
        )
        if forecast_part > needed:
            reason += f", keeping {forecast_part} until new replicas could be ready"
        return Decision(
            desired=forecast_part, reason=f"{reason} ({record.why})", forecast=prediction, window=window
        )

    def _count(self, what: str) -> None:
        self.decided_by[what] = self.decided_by.get(what, 0) + 1

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "predictive": self.predictive.describe(),
            "reactive": self.reactive.describe(),
            "decided_by": dict(self.decided_by),
            "trust": {
                "window": str(self.trust.window),
                "min_checks": self.trust.min_checks,
                "slack": self.trust.slack,
                "z": self.trust.z,
                "forecastability": self.trust.forecastability,
            },
            "forecastability": None if self.verdict is None else self.verdict.as_json(),
        }


@functools.lru_cache(maxsize=4096)
def forecast_window(
    *,
    step: pd.Timedelta,
    lead_time: pd.Timedelta,
    decision_interval: pd.Timedelta,
    elapsed: pd.Timedelta = pd.Timedelta(0),
) -> tuple[int, int]:
    """Steps ahead of the last completed step (1 = the step in progress, of which `elapsed` has passed)
    overlapping [now + lead, now + lead + interval)."""
    first = int(math.floor((elapsed + lead_time) / step + 1e-9)) + 1
    last = max(first, int(math.ceil((elapsed + lead_time + decision_interval) / step - 1e-9)))
    return first, last


PolicyFactory = Callable[..., ScalingPolicy]
_POLICIES: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Add a policy by name; a name can be registered once."""
    if name in _POLICIES:
        raise ForecastConfigError("policy", f"a policy named {name!r} is already registered")
    _POLICIES[name] = factory


def policy_names() -> tuple[str, ...]:
    return tuple(sorted(_POLICIES))


def make_policy(
    name: str,
    *,
    target_utilization: float = 0.7,
    quantile: float | None = None,
    limits: ScalingLimits | None = None,
    forecaster: ForecasterSettings | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
    tape: ForecastTape | None = None,
    trust: TrustSettings | None = None,
) -> ScalingPolicy:
    """Build a registered policy with the common options; unknown names are an error. `quantile` defaults
    to `default_quantile(name)`; `tape` shares one trace's forecasts across the runs of a sweep (see
    `ForecastTape`); `trust` is the hybrid's gate (see `TrustSettings`; other policies ignore it)."""
    if name not in _POLICIES:
        raise ForecastConfigError(
            "policy", f"unknown policy {name!r}; choose from {', '.join(policy_names())}"
        )
    return _POLICIES[name](
        target_utilization=target_utilization,
        quantile=default_quantile(name) if quantile is None else quantile,
        limits=limits,
        forecaster=forecaster or ForecasterSettings(),
        refit_every=refit_every,
        tape=tape,
        trust=trust,
    )


def default_quantile(policy: str) -> float:
    """The forecast quantile a policy provisions for unless told: `HYBRID_QUANTILE` for the hybrid, the
    predictive policy's own default (0.95) otherwise."""
    return HYBRID_QUANTILE if policy == "hybrid" else PredictiveSettings().quantile


def _reactive(*, target_utilization: float, limits: ScalingLimits | None, **_: Any) -> ScalingPolicy:
    return ReactivePolicy(target_utilization=target_utilization, limits=limits)


def _predictive_settings(
    quantile: float, forecaster: ForecasterSettings, refit_every: pd.Timedelta
) -> PredictiveSettings:
    return PredictiveSettings(quantile=quantile, forecaster=forecaster, refit_every=refit_every)


def _predictive(
    *,
    target_utilization: float,
    quantile: float,
    limits: ScalingLimits | None,
    forecaster: ForecasterSettings,
    refit_every: pd.Timedelta,
    tape: ForecastTape | None = None,
    **_: Any,
) -> ScalingPolicy:
    return PredictivePolicy(
        settings=_predictive_settings(quantile, forecaster, refit_every),
        fallback=ReactivePolicy(target_utilization=target_utilization),
        limits=limits,
        tape=tape,
    )


def _hybrid(
    *,
    target_utilization: float,
    quantile: float,
    limits: ScalingLimits | None,
    forecaster: ForecasterSettings,
    refit_every: pd.Timedelta,
    tape: ForecastTape | None = None,
    trust: TrustSettings | None = None,
) -> ScalingPolicy:
    predictive = PredictivePolicy(
        settings=_predictive_settings(quantile, forecaster, refit_every),
        fallback=ReactivePolicy(target_utilization=target_utilization),
        tape=tape,
    )
    return HybridPolicy(
        predictive=predictive,
        reactive=ReactivePolicy(target_utilization=target_utilization),
        limits=limits,
        trust=trust,
    )


register_policy("reactive", _reactive)
register_policy("predictive", _predictive)
register_policy("hybrid", _hybrid)
