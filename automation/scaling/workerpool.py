"""How many workers a queue wants: a pure decision from its backlog, arrivals and per-worker throughput.

W workers of throughput μ facing arrivals λ drain a backlog B in B / (Wμ − λ) seconds; drained within
the target T when W ≥ (λ + B/T) / μ. Scale-up to that count is immediate. Scale-in waits until the
backlog has stayed at or under a bound for a whole cooldown, goes down at most `max_scale_in_step`
workers per decision, and each step down starts the cooldown again (the smaller pool is watched before
the next). The decision says why in words, and hands back the little memory the next one needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automation.errors import InvalidFieldsError


class WorkerPoolError(InvalidFieldsError):
    """Settings or an observation the policy refuses; `errors` names each field at fault."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class WorkerPoolSettings:
    min_workers: int = 0
    max_workers: int = 8
    #: Seconds within which the backlog should be drained.
    drain_seconds: float = 30.0
    #: Scale-in only while the backlog (waiting + in flight) is at or under this many messages...
    scale_in_backlog: int = 0
    #: ...and has been for this many seconds.
    scale_in_cooldown: float = 60.0
    max_scale_in_step: int = 1
    #: Tasks per second of one worker, assumed until one was measured.
    fallback_throughput: float = 1.0

    def __post_init__(self) -> None:
        errors: list[tuple[str, str]] = []
        for name in ("min_workers", "max_workers", "scale_in_backlog", "max_scale_in_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors.append((name, "must be a non-negative integer"))
        for name in ("drain_seconds", "fallback_throughput"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < math.inf:
                errors.append((name, "must be a positive number"))
        cooldown = self.scale_in_cooldown
        if (
            isinstance(cooldown, bool)
            or not isinstance(cooldown, int | float)
            or not 0 <= cooldown < math.inf
        ):
            errors.append(("scale_in_cooldown", "must be a non-negative number"))
        if not errors and self.max_workers < max(1, self.min_workers):
            errors.append(("max_workers", "must be at least 1 and at least min_workers"))
        if not errors and self.max_scale_in_step < 1:
            errors.append(("max_scale_in_step", "must be at least 1"))
        if errors:
            raise WorkerPoolError(errors)


@dataclass(frozen=True, kw_only=True)
class PoolObservation:
    """What the loop saw: time (seconds), backlog, the workers it last asked for, measured rates or None."""

    at: float
    backlog: int
    workers: int
    arrival_rate: float | None = None
    per_worker_rate: float | None = None

    def __post_init__(self) -> None:
        errors: list[tuple[str, str]] = []
        for name in ("backlog", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors.append((name, "must be a non-negative integer"))
        for name in ("arrival_rate", "per_worker_rate"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0 <= value < math.inf):
                errors.append((name, "must be a non-negative number or None"))
        if errors:
            raise WorkerPoolError(errors)


@dataclass(frozen=True)
class PoolMemory:
    """Carried from one decision to the next: since when the backlog has been calm (None: it is not)."""

    calm_since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"calm_since": self.calm_since}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> PoolMemory:
        calm_since = document.get("calm_since")
        if calm_since is not None and (
            isinstance(calm_since, bool) or not isinstance(calm_since, int | float)
        ):
            raise WorkerPoolError([("calm_since", "must be a number or null")])
        return cls(calm_since=None if calm_since is None else float(calm_since))


@dataclass(frozen=True)
class PoolDecision:
    desired: int
    needed: int  # what drain time and arrivals ask for, before the bounds and the scale-in guards
    reason: str
    memory: PoolMemory


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def drain_time(backlog: int, workers: int, arrival_rate: float, per_worker_rate: float) -> float:
    """Seconds `workers` take to drain `backlog` while arrivals go on (inf if they never do)."""
    spare = workers * per_worker_rate - arrival_rate
    if backlog == 0:
        return 0.0
    return backlog / spare if spare > 0 else math.inf


def workers_needed(backlog: int, arrival_rate: float, per_worker_rate: float, drain_seconds: float) -> int:
    """The fewest workers that keep up with arrivals and drain the backlog within `drain_seconds`."""
    demand = arrival_rate + backlog / drain_seconds
    # A hair under a whole number of workers is that number: rates measured over seconds are not exact.
    return max(0, math.ceil(demand / per_worker_rate - 1e-9))


def decide_pool_size(
    settings: WorkerPoolSettings, observation: PoolObservation, memory: PoolMemory | None = None
) -> PoolDecision:
    """The workers `observation.workers` should become, why, and the memory for the next decision."""
    memory = memory or PoolMemory()
    now, backlog, current = observation.at, observation.backlog, observation.workers
    arrivals = observation.arrival_rate
    throughput = observation.per_worker_rate
    notes = [f"backlog {backlog:,}"]
    notes.append("arrivals unknown yet" if arrivals is None else f"arrivals {_number(arrivals)}/s")
    if throughput is None or throughput <= 0:
        throughput = settings.fallback_throughput
        notes.append(f"{_number(throughput)}/s per worker assumed")
    else:
        notes.append(f"{_number(throughput)}/s per worker")
    rate = arrivals or 0.0
    needed = workers_needed(backlog, rate, throughput, settings.drain_seconds)
    bounded = min(max(needed, settings.min_workers), settings.max_workers)
    drains = drain_time(backlog, bounded, rate, throughput)
    pool = f"{bounded} worker{'' if bounded == 1 else 's'}"
    if drains == math.inf:
        outlook = f"{pool} never drain{'s' if bounded == 1 else ''} it"
    else:
        outlook = f"{pool} drain{'s' if bounded == 1 else ''} it in {_number(drains)} s"
    outlook += f" (target {_number(settings.drain_seconds)} s)"
    if bounded != needed:
        outlook += f", {needed} needed, held to [{settings.min_workers}, {settings.max_workers}]"
    calm = backlog <= settings.scale_in_backlog
    calm_since = (memory.calm_since if memory.calm_since is not None else now) if calm else None
    summary = ", ".join(notes) + f": {outlook}"
    if bounded >= current:
        # Scale-up (or staying put) is immediate; so is coming back inside [min, max].
        return PoolDecision(bounded, needed, f"{summary}: want {bounded}", PoolMemory(calm_since))
    if current > settings.max_workers:
        return PoolDecision(
            bounded, needed, f"{summary}: want {bounded} (over max_workers)", PoolMemory(None)
        )
    if calm_since is None:
        held = f"scale-in held: backlog {backlog:,} over {settings.scale_in_backlog:,}"
        return PoolDecision(current, needed, f"{summary}: {held}: keep {current}", PoolMemory(None))
    calm_for = now - calm_since
    if calm_for < settings.scale_in_cooldown:
        held = (
            f"scale-in held by cooldown: backlog at or under {settings.scale_in_backlog:,} for "
            f"{_number(calm_for)} s of {_number(settings.scale_in_cooldown)} s"
        )
        return PoolDecision(current, needed, f"{summary}: {held}: keep {current}", PoolMemory(calm_since))
    desired = max(bounded, current - settings.max_scale_in_step)
    step = f" (at most {settings.max_scale_in_step} down per step)" if desired != bounded else ""
    # The smaller pool is watched for a whole cooldown before the next step down.
    return PoolDecision(desired, needed, f"{summary}: scale in to {desired}{step}", PoolMemory(now))
