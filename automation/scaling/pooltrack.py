"""What a worker pool's controller carries from one reading of its queue to the next, and one step of it:
the recent readings its rates are taken against, the pool policy's memory, the last per-worker throughput
measured. Pure and JSON-ready: the in-process controller (`worker_autoscaler.py`) keeps the track in
memory, the Beat loop (`services/pools.py`) on the target's state row, so any worker continues where
another stopped. Also the rule of which of the loop's pool decisions go into the decision log.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from automation.scaling.choices import Action
from automation.scaling.queues import QueueLoad, QueueLoadError, queue_rates
from automation.scaling.workerpool import (
    PoolDecision,
    PoolMemory,
    PoolObservation,
    WorkerPoolError,
    WorkerPoolSettings,
    decide_pool_size,
)

#: Arrivals and throughput are measured over about this many seconds of readings.
RATE_WINDOW = 5.0
#: Readings are kept this many rate windows (and at least three ticks): older ones are stale.
KEPT_WINDOWS = 4
#: Seconds between two ticks of the Beat loop over `celery` targets (`automation.scaling.evaluate_pools`).
POOL_INTERVAL = float(os.environ.get("AUTOMATION_POOL_INTERVAL", "5"))


def pool_observation(
    history: Iterable[QueueLoad],
    current: QueueLoad,
    *,
    workers: int,
    last_throughput: float | None = None,
    rate_window: float = RATE_WINDOW,
) -> PoolObservation:
    """The policy's input from the current reading and earlier ones (oldest first): rates are taken
    against the newest earlier reading at least `rate_window` old (or the oldest there is); a window
    in which nothing finished keeps `last_throughput`."""
    base = None
    for reading in history:
        if reading.at <= current.at - rate_window or base is None:
            base = reading
    rates = queue_rates(base, current) if base is not None else None
    throughput = rates.per_worker_rate if rates is not None else None
    return PoolObservation(
        at=current.at,
        backlog=current.backlog,
        workers=workers,
        arrival_rate=rates.arrival_rate if rates is not None else None,
        per_worker_rate=throughput if throughput is not None else last_throughput,
    )


@dataclass(frozen=True)
class PoolTrack:
    """Recent readings (oldest first), the policy's memory, the last measured throughput (tasks/s)."""

    readings: tuple[QueueLoad, ...] = ()
    memory: PoolMemory = field(default_factory=PoolMemory)
    throughput: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "readings": [reading.to_dict() for reading in self.readings],
            "memory": self.memory.to_dict(),
            "throughput": self.throughput,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> PoolTrack:
        """A track stored by `to_dict`; QueueLoadError or WorkerPoolError when it does not read back."""
        readings = document.get("readings", [])
        memory = document.get("memory", {})
        throughput = document.get("throughput")
        if not isinstance(readings, list) or not all(isinstance(r, Mapping) for r in readings):
            raise QueueLoadError([("readings", "must be a list of readings")])
        if not isinstance(memory, Mapping):
            raise WorkerPoolError([("memory", "must be a mapping")])
        if throughput is not None and (
            isinstance(throughput, bool)
            or not isinstance(throughput, int | float)
            or not 0 < throughput < math.inf
        ):
            raise WorkerPoolError([("throughput", "must be a positive number or null")])
        return cls(
            readings=tuple(QueueLoad.from_dict(reading) for reading in readings),
            memory=PoolMemory.from_dict(memory),
            throughput=None if throughput is None else float(throughput),
        )


@dataclass(frozen=True)
class PoolStep:
    """One step: what the policy saw and decided, and the track to carry on. `unchanged` is the track to
    carry when the decided change is not made (a scale run still going, or refused)."""

    observation: PoolObservation
    decision: PoolDecision
    track: PoolTrack
    unchanged: PoolTrack


def step_pool(
    settings: WorkerPoolSettings,
    track: PoolTrack,
    reading: QueueLoad,
    *,
    workers: int,
    rate_window: float = RATE_WINDOW,
    keep: float | None = None,
) -> PoolStep:
    """Decide from `reading` and the track: rates against the kept readings (those of the same queue, at
    most `keep` seconds old: default `KEPT_WINDOWS` rate windows). A track whose readings are all stale
    (the loop stopped a while) starts the policy's memory afresh: a calm seen long ago says nothing of
    the time between."""
    keep = KEPT_WINDOWS * rate_window if keep is None else keep
    fresh = tuple(
        earlier
        for earlier in track.readings
        if earlier.queue == reading.queue and reading.at - keep <= earlier.at < reading.at
    )
    memory = track.memory if fresh or not track.readings else PoolMemory()
    observation = pool_observation(
        fresh, reading, workers=workers, last_throughput=track.throughput, rate_window=rate_window
    )
    decision = decide_pool_size(settings, observation, memory)
    readings = (*fresh, reading)
    carried = PoolTrack(readings, decision.memory, observation.per_worker_rate)
    # Not made, a scale-in leaves the calm (and its cooldown) as it was; anything else keeps what the
    # decision learnt (a calm starting, or ending).
    kept = memory if decision.desired < workers else decision.memory
    return PoolStep(observation, decision, carried, PoolTrack(readings, kept, observation.per_worker_rate))


@dataclass(frozen=True)
class Logged:
    """What the decision log last holds for a target: its action, workers current and desired, its time."""

    action: str
    current: int
    desired: int
    at: float


def log_due(last: Logged | None, action: str, current: int, desired: int, now: float, every: float) -> bool:
    """Whether a pool decision goes into the decision log: every change of workers, and any decision that
    differs from the last one logged; one that repeats it (same action, same workers) at most once every
    `every` seconds. A pool decided every few seconds thus logs a row a minute while nothing happens."""
    if last is None or action in Action.CHANGES:
        return True
    same = (last.action, last.current, last.desired) == (action, current, desired)
    return not same or now - last.at >= every
