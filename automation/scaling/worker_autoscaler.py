"""A controller of one queue's workers in one process: read the queue, decide, scale, once per tick.

The Beat loop's `celery` targets do the same with their track stored and their scale actions run as
`infrastructure.scale_service` workflows (`services/pools.py`); this one keeps its track in memory and
calls the provider itself (`benchmarks/bench_workers.py`, a host without Beat). Both take each step with
`pooltrack.step_pool`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from automation.scaling.pooltrack import RATE_WINDOW, PoolTrack, step_pool
from automation.scaling.queues import BrokerKeys, QueueLoad, read_queue_load
from automation.scaling.worker_services import current_workers, worker_service_name
from automation.scaling.workerpool import PoolDecision, PoolObservation, WorkerPoolSettings


@dataclass(frozen=True)
class Tick:
    reading: QueueLoad
    observation: PoolObservation
    decision: PoolDecision
    scaled: dict[str, Any] | None  # the provider's answer when the pool size changed


@dataclass
class WorkerAutoscaler:
    """Scales the `local` service `celery-<queue>` (see `worker_services`) to the policy's decision."""

    queue: str
    settings: WorkerPoolSettings
    provider: Any
    client: Any
    keys: BrokerKeys = field(default_factory=BrokerKeys)
    rate_window: float = RATE_WINDOW
    track: PoolTrack = field(default_factory=PoolTrack)

    def tick(self) -> Tick:
        reading = read_queue_load(self.client, self.queue, keys=self.keys)
        workers = current_workers(self.provider, self.queue)
        step = step_pool(self.settings, self.track, reading, workers=workers, rate_window=self.rate_window)
        self.track = step.track
        decision = step.decision
        scaled = None
        if decision.desired != workers:
            scaled = self.provider.scale(
                worker_service_name(self.queue), replicas=decision.desired, wait_for_health=False
            )
        return Tick(reading, step.observation, decision, scaled)

    def run(self, *, seconds: float, interval: float = 1.0, until: Any = None) -> list[Tick]:
        """Tick every `interval` for `seconds`, or until `until(ticks)` is true."""
        ticks: list[Tick] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            ticks.append(self.tick())
            if until is not None and until(ticks):
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        return ticks
