"""One decision of the scaling loop, without I/O: from the observed load, the forecast (or why there is
none), the replicas now and the target's memory, to the replicas wanted and every reason.

The reactive part is the registered `reactive` policy (the HPA algorithm, its scale-down window restored
from the target's memory); the predictive part reads the forecast over the window the new replicas will
serve, as the `predictive` policy does; the hybrid keeps the reactive recommendation as a floor and adds
the forecast's only while its recent record on the target has earned it (as the simulator's hybrid);
then the target's guards: replica bounds, scale-up cooldown and step, and the scale-in rules (never on a
forecast alone unless allowed, at most N% per step, cooldown).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from automation.scaling.choices import Action, Basis, PolicyKind
from automation.scaling.definitions import ScalingTargetDefinition
from automation.scaling.fitting import ForecastPath
from automation.scaling.policies import (
    DecisionContext,
    ForecastRecord,
    ReactivePolicy,
    ScalingLimits,
    make_policy,
)


@dataclass(kw_only=True)
class Memory:
    """What the guards and the reactive policy remember between decisions (stored with the target)."""

    last_scale_up_at: float | None = None
    last_change_at: float | None = None
    recommendations: list[tuple[float, int]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Situation:
    now: float
    interval: float
    observed: float  # NaN when nothing was measured
    current: int  # replicas asked for
    serving: int  # replicas running
    forecast: ForecastPath | None
    #: Why a forecasting policy has no forecast ("forecaster warming up: ...", "forecast fit failed: ...").
    no_forecast: str = ""
    #: The forecast's recent record on this target (`automation.scaling.trust`): a hybrid adds forecast
    #: capacity only once it is earned. None: not judged (the predictive policy).
    trust: ForecastRecord | None = None
    #: "forecasting cannot help (why)" or "forecastability not judged yet (why)" for this load
    #: (`automation.scaling.trust.cannot_help`; "" when it may): a hybrid stays reactive whatever the
    #: forecast's record.
    cannot_help: str = ""


@dataclass(frozen=True, kw_only=True)
class Peak:
    """The forecast's peak over the decision window: its bucket's time and the mean and interval there."""

    at: float
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True, kw_only=True)
class Outcome:
    desired: int
    action: str
    basis: str
    reasons: list[str]
    peak: Peak | None
    memory: Memory


def span(seconds: float) -> str:
    """12 min, 45 s, 2 h, 1.5 d: how far ahead or how long, for reasons."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


def amount(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".strip()


def _replicas(load: float, capacity: float) -> int:
    return max(0, math.ceil(load / capacity - 1e-9))


def _in_window(path: ForecastPath, start: float, end: float) -> np.ndarray:
    """Indexes of the forecast buckets overlapping [start, end) (the last one when none does)."""
    chosen = np.nonzero((path.times + path.step > start) & (path.times < end))[0]
    return chosen if len(chosen) else np.array([len(path.times) - 1])


def reactive(
    definition: ScalingTargetDefinition, situation: Situation, memory: Memory
) -> tuple[int, str, list[tuple[float, int]]]:
    """The `reactive` policy's recommendation, and its scale-down window to remember."""
    policy = make_policy(
        PolicyKind.REACTIVE,
        target_utilization=definition.target_utilization,
        limits=ScalingLimits(min_replicas=definition.min_replicas, max_replicas=definition.max_replicas),
    )
    assert isinstance(policy, ReactivePolicy)
    policy.recommendations = deque(
        (pd.Timestamp(t, unit="s", tz="UTC"), n) for t, n in memory.recommendations
    )
    now = pd.Timestamp(situation.now, unit="s", tz="UTC")
    policy.observe(now, situation.observed)
    recommended = policy.recommend(
        DecisionContext(
            time=now,
            requested_replicas=situation.current,
            serving_replicas=situation.serving,
            capacity_per_replica=definition.capacity,
            step=pd.Timedelta(seconds=float(definition.load.step)),
            decision_interval=pd.Timedelta(seconds=situation.interval),
            lead_time=pd.Timedelta(seconds=definition.lead),
        )
    )
    window = [(float(t.timestamp()), int(n)) for t, n in policy.recommendations]
    return recommended.desired, recommended.reason, window


def predictive(
    definition: ScalingTargetDefinition, situation: Situation, path: ForecastPath
) -> tuple[int, str, Peak]:
    """Replicas for the forecast's upper quantile over [now + lead, now + lead + interval), at the target
    utilisation; a scale-in also keeps what the forecast needs until replicas added now could be ready."""
    capacity = definition.capacity * definition.target_utilization
    unit = definition.load.unit
    now, interval = situation.now, situation.interval
    window = _in_window(path, now + definition.lead, now + definition.lead + interval)
    top = (
        int(window[np.nanargmax(path.upper[window])])
        if not np.isnan(path.upper[window]).all()
        else int(window[-1])
    )
    peak = Peak(
        at=float(path.times[top]),
        mean=float(path.mean[top]),
        lower=float(path.lower[top]),
        upper=float(path.upper[top]),
    )
    needed = _replicas(peak.upper, capacity)
    reason = (
        f"forecast peak {amount(peak.upper, unit)} in {span(peak.at - now)} needs {needed} "
        f"replica{'s' if needed != 1 else ''}"
    )
    if needed >= situation.current:
        return needed, reason, peak
    ready = _in_window(path, now, now + definition.provisioning_delay + interval)
    keep = (
        _replicas(float(np.nanmax(path.upper[ready])), capacity)
        if not np.isnan(path.upper[ready]).all()
        else needed
    )
    desired = min(situation.current, max(needed, keep))
    if desired > needed:
        reason += f"; keeping {desired} until replicas added now could be ready"
    return desired, reason, peak


def decide(definition: ScalingTargetDefinition, situation: Situation, memory: Memory) -> Outcome:
    current = situation.current
    unit = definition.load.unit
    reacted, why, window = reactive(definition, situation, memory)
    observed = (
        f"observed {amount(situation.observed, unit)}"
        if not math.isnan(situation.observed)
        else "no load observed"
    )
    reasons: list[str] = []
    peak: Peak | None = None
    if definition.policy == PolicyKind.REACTIVE:
        desired, basis = reacted, Basis.OBSERVED
        reasons.append(f"reactive: {why} ({observed})")
    elif situation.forecast is None:
        desired, basis = reacted, Basis.FALLBACK
        reasons.append(f"{situation.no_forecast or 'no forecast'}: reactive: {why} ({observed})")
    elif definition.policy == PolicyKind.HYBRID and situation.cannot_help:
        _, _, peak = predictive(definition, situation, situation.forecast)  # logged, not acted on
        desired, basis = reacted, Basis.FALLBACK
        reasons.append(f"{situation.cannot_help}: reactive: {why} ({observed})")
    elif (
        definition.policy == PolicyKind.HYBRID and situation.trust is not None and not situation.trust.earned
    ):
        _, _, peak = predictive(definition, situation, situation.forecast)  # logged, not acted on
        desired, basis = reacted, Basis.FALLBACK
        reasons.append(f"forecast not trusted ({situation.trust.why}): reactive: {why} ({observed})")
    else:
        desired, reason, peak = predictive(definition, situation, situation.forecast)
        basis = Basis.FORECAST
        if definition.policy == PolicyKind.HYBRID and situation.trust is not None:
            reason += f" ({situation.trust.why})"
        reasons.append(reason)
        if definition.policy == PolicyKind.HYBRID and reacted > desired:
            desired, basis = reacted, Basis.OBSERVED
            reasons.append(f"reactive needs more: {why} ({observed})")
    desired, guarded = guard(
        definition, situation, memory, desired=desired, basis=basis, observed_needs=reacted
    )
    reasons.extend(guarded)
    if desired > current:
        action = Action.SCALE_UP
    elif desired < current:
        action = Action.SCALE_DOWN
    elif math.isnan(situation.observed) and basis != Basis.FORECAST:
        action = Action.NO_DATA
    else:
        action = Action.HOLD
    remembered = Memory(
        last_scale_up_at=situation.now if action == Action.SCALE_UP else memory.last_scale_up_at,
        last_change_at=situation.now if action in Action.CHANGES else memory.last_change_at,
        recommendations=window,
    )
    return Outcome(desired=desired, action=action, basis=basis, reasons=reasons, peak=peak, memory=remembered)


def guard(
    definition: ScalingTargetDefinition,
    situation: Situation,
    memory: Memory,
    *,
    desired: int,
    basis: str,
    observed_needs: int,
) -> tuple[int, list[str]]:
    """The target's bounds and rules applied to what the policy wants; the reasons of each change."""
    current, now = situation.current, situation.now
    reasons: list[str] = []
    if desired > definition.max_replicas:
        desired = definition.max_replicas
        reasons.append(f"capped at max_replicas {definition.max_replicas}")
    if desired < definition.min_replicas:
        desired = definition.min_replicas
        reasons.append(f"raised to min_replicas {definition.min_replicas}")
    up, down = definition.scale_up, definition.scale_in
    if desired > current:
        if up.max_step is not None and desired > current + up.max_step:
            desired = current + up.max_step
            reasons.append(f"scale-up limited to +{up.max_step} per step")
        last = memory.last_scale_up_at
        if up.cooldown and last is not None and now - last < up.cooldown:
            reasons.append(f"held by cooldown: scale-up waits {span(up.cooldown)} after the last scale-up")
            desired = current
    elif desired < current:
        last = memory.last_change_at
        if down.cooldown and last is not None and now - last < down.cooldown:
            reasons.append(f"held by cooldown: scale-in waits {span(down.cooldown)} after the last change")
            return current, reasons
        if basis == Basis.FORECAST and not down.on_forecast_alone and observed_needs > desired:
            if observed_needs >= current:
                reasons.append(f"scale-in refused: forecast only (the observed load needs {observed_needs})")
                return current, reasons
            desired = observed_needs
            reasons.append(f"scale-in to {desired}: as far as the observed load allows")
        largest = max(1, math.floor(current * down.max_percent / 100 + 1e-9))
        if desired < current - largest:
            desired = current - largest
            reasons.append(f"scale-in limited to {down.max_percent:g}% per step")
    return desired, reasons
