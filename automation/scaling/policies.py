"""Scaling policies: `reactive` (the Kubernetes HPA algorithm), `predictive` (forecast upper quantile over
the window the new replicas will serve) and `hybrid` (the larger of the two), behind common limits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automation.forecasting.errors import ForecastConfigError
from automation.forecasting.forecaster import Forecast, ForecasterSettings, RollingForecaster

HPA_TOLERANCE = 0.1
HPA_SCALE_DOWN_WINDOW = pd.Timedelta(minutes=5)


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
        desired = int(np.clip(desired, limits.min_replicas, limits.max_replicas))
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


def _within(last: pd.Timestamp | None, cooldown: pd.Timedelta, now: pd.Timestamp) -> bool:
    return last is not None and cooldown > pd.Timedelta(0) and now - last < cooldown


class ReactivePolicy(ScalingPolicy):
    """The Kubernetes HPA on a utilisation target: desired = ceil(ready * utilisation / target), no change
    within the 10% tolerance, unready pods counted at 0% when scaling up, scale-up applied at once and
    scale-down to the highest recommendation of the last five minutes (the default stabilisation)."""

    name = "reactive"

    def __init__(
        self,
        *,
        target_utilization: float = 0.7,
        tolerance: float = HPA_TOLERANCE,
        scale_down_window: pd.Timedelta = HPA_SCALE_DOWN_WINDOW,
        limits: ScalingLimits | None = None,
    ) -> None:
        super().__init__(limits=limits)
        if not 0 < target_utilization <= 1:
            raise ForecastConfigError("target_utilization", "must be in (0, 1]")
        self.target_utilization = target_utilization
        self.tolerance = tolerance
        self.scale_down_window = scale_down_window
        self.latest_load = math.nan
        self.recommendations: deque[tuple[pd.Timestamp, int]] = deque()

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

    def recommend(self, context: DecisionContext) -> Decision:
        proposal, reason = self.raw_recommendation(context)
        cutoff = context.time - self.scale_down_window
        while self.recommendations and self.recommendations[0][0] <= cutoff:
            self.recommendations.popleft()
        # like the HPA controller: the current proposal plus those stored within the window
        stabilised = max([proposal] + [r for _, r in self.recommendations])
        self.recommendations.append((context.time, proposal))
        desired = proposal
        if proposal < context.requested_replicas:
            desired = min(context.requested_replicas, stabilised)
            if desired != proposal:
                reason += f"; scale-down stabilised at {desired}"
        return Decision(desired=desired, reason=reason)

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "target_utilization": self.target_utilization,
            "tolerance": self.tolerance,
            "scale_down_window": str(self.scale_down_window),
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


class PredictivePolicy(ScalingPolicy):
    """desired = ceil(q-quantile of forecast load over [now + lead, now + lead + interval] / capacity).

    Removing replicas is immediate but re-adding one takes the provisioning delay, so a scale-down also
    keeps what the forecast needs until then (the whole of [now, now + lead + interval]). Until the
    forecaster has enough history it behaves like `reactive` and says so in the reason."""

    name = "predictive"

    def __init__(
        self,
        *,
        settings: PredictiveSettings | None = None,
        fallback: ReactivePolicy | None = None,
        limits: ScalingLimits | None = None,
    ) -> None:
        super().__init__(limits=limits)
        self.settings = settings or PredictiveSettings()
        self.fallback = fallback or ReactivePolicy()
        self.forecaster: RollingForecaster | None = None
        self.horizon_steps = 0

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
    ) -> None:
        """Called by the simulator before the first observation: sizes the forecast horizon."""
        _, last = forecast_window(step=step, lead_time=lead_time, decision_interval=decision_interval)
        self._ensure_forecaster(start, step, last)

    def observe(self, time: pd.Timestamp, load: float) -> None:
        self.fallback.observe(time, load)
        if self.forecaster is not None:
            self.forecaster.observe(load)

    def recommend(self, context: DecisionContext) -> Decision:
        first, last = forecast_window(
            step=context.step, lead_time=context.lead_time, decision_interval=context.decision_interval
        )
        forecaster = self._ensure_forecaster(context.time, context.step, last)
        fallback = self.fallback.recommend(context)
        prediction = forecaster.forecast(last, levels=(self.settings.quantile,))
        if prediction is None:
            return Decision(
                desired=fallback.desired, reason=f"forecaster warming up, reactive: {fallback.reason}"
            )
        upper = prediction.quantiles[self.settings.quantile]
        capacity = context.capacity_per_replica
        needed = math.ceil(float(np.max(upper[first - 1 : last])) / capacity - 1e-9)
        current = context.requested_replicas
        if needed >= current:
            return Decision(
                desired=needed,
                reason=f"forecast q{self.settings.quantile:g} needs {needed}",
                forecast=prediction,
                window=(first, last),
            )
        keep = math.ceil(float(np.max(upper[:last])) / capacity - 1e-9)
        desired = min(current, max(needed, keep))
        reason = f"forecast q{self.settings.quantile:g} needs {needed}"
        if desired > needed:
            reason += f", keeping {desired} until new replicas could be ready"
        return Decision(desired=desired, reason=reason, forecast=prediction, window=(first, last))

    def describe(self) -> dict[str, Any]:
        model = self.forecaster.chosen_model if self.forecaster else None
        return {
            "policy": self.name,
            "quantile": self.settings.quantile,
            "refit_every": str(self.settings.refit_every),
            "model": model,
        }


class HybridPolicy(ScalingPolicy):
    """The larger of predictive and reactive, as AWS pairs predictive scaling with dynamic scaling."""

    name = "hybrid"

    def __init__(
        self,
        *,
        predictive: PredictivePolicy | None = None,
        reactive: ReactivePolicy | None = None,
        limits: ScalingLimits | None = None,
    ) -> None:
        super().__init__(limits=limits)
        self.reactive = reactive or ReactivePolicy()
        self.predictive = predictive or PredictivePolicy(fallback=ReactivePolicy())

    def configure(
        self,
        *,
        start: pd.Timestamp,
        step: pd.Timedelta,
        lead_time: pd.Timedelta,
        decision_interval: pd.Timedelta,
    ) -> None:
        self.predictive.configure(
            start=start, step=step, lead_time=lead_time, decision_interval=decision_interval
        )

    def observe(self, time: pd.Timestamp, load: float) -> None:
        self.reactive.observe(time, load)
        self.predictive.observe(time, load)

    def recommend(self, context: DecisionContext) -> Decision:
        predicted = self.predictive.recommend(context)
        reacted = self.reactive.recommend(context)
        if reacted.desired > predicted.desired:
            return Decision(
                desired=reacted.desired,
                reason=f"reactive: {reacted.reason}",
                forecast=predicted.forecast,
                window=predicted.window,
            )
        return predicted

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "predictive": self.predictive.describe(),
            "reactive": self.reactive.describe(),
        }


def forecast_window(
    *, step: pd.Timedelta, lead_time: pd.Timedelta, decision_interval: pd.Timedelta
) -> tuple[int, int]:
    """Steps ahead (1 = the step starting now) overlapping [now + lead, now + lead + interval)."""
    first = int(math.floor(lead_time / step + 1e-9)) + 1
    last = max(first, int(math.ceil((lead_time + decision_interval) / step - 1e-9)))
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
    quantile: float = 0.95,
    limits: ScalingLimits | None = None,
    forecaster: ForecasterSettings | None = None,
    refit_every: pd.Timedelta = pd.Timedelta(days=1),
) -> ScalingPolicy:
    """Build a registered policy with the common options; unknown names are an error."""
    if name not in _POLICIES:
        raise ForecastConfigError(
            "policy", f"unknown policy {name!r}; choose from {', '.join(policy_names())}"
        )
    return _POLICIES[name](
        target_utilization=target_utilization,
        quantile=quantile,
        limits=limits,
        forecaster=forecaster or ForecasterSettings(),
        refit_every=refit_every,
    )


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
) -> ScalingPolicy:
    return PredictivePolicy(
        settings=_predictive_settings(quantile, forecaster, refit_every),
        fallback=ReactivePolicy(target_utilization=target_utilization),
        limits=limits,
    )


def _hybrid(
    *,
    target_utilization: float,
    quantile: float,
    limits: ScalingLimits | None,
    forecaster: ForecasterSettings,
    refit_every: pd.Timedelta,
) -> ScalingPolicy:
    predictive = PredictivePolicy(
        settings=_predictive_settings(quantile, forecaster, refit_every),
        fallback=ReactivePolicy(target_utilization=target_utilization),
    )
    return HybridPolicy(
        predictive=predictive, reactive=ReactivePolicy(target_utilization=target_utilization), limits=limits
    )


register_policy("reactive", _reactive)
register_policy("predictive", _predictive)
register_policy("hybrid", _hybrid)
