"""A controller of one queue's workers in one process: read the queue, decide, scale, once per tick.

The Beat loop of scaling targets does the same with its state stored and its scale actions run as
`infrastructure.scale_service` workflows; this one keeps its state in memory and calls the provider
itself (the integration test, `benchmarks/bench_workers.py`, a host without Beat). Both build the
policy's observation with `pool_observation`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from automation.scaling.queues import BrokerKeys, QueueLoad, queue_rates, read_queue_load
from automation.scaling.worker_services import current_workers, worker_service_name
from automation.scaling.workerpool import (
    PoolDecision,
    PoolMemory,
    PoolObservation,
    WorkerPoolSettings,
    decide_pool_size,
)

#: Arrivals and throughput are measured over about this many seconds of readings.
RATE_WINDOW = 5.0


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
    history: deque[QueueLoad] = field(default_factory=lambda: deque(maxlen=120))
    memory: PoolMemory = field(default_factory=PoolMemory)
    throughput: float | None = None

    def tick(self) -> Tick:
        reading = read_queue_load(self.client, self.queue, keys=self.keys)
        workers = current_workers(self.provider, self.queue)
        observation = pool_observation(
            self.history,
            reading,
            workers=workers,
            last_throughput=self.throughput,
            rate_window=self.rate_window,
        )
        self.history.append(reading)
        while self.history and self.history[0].at < reading.at - 4 * self.rate_window:
            self.history.popleft()
        self.throughput = observation.per_worker_rate
        decision = decide_pool_size(self.settings, observation, self.memory)
        self.memory = decision.memory
        scaled = None
        if decision.desired != workers:
            scaled = self.provider.scale(
                worker_service_name(self.queue), replicas=decision.desired, wait_for_health=False
            )
        return Tick(reading, observation, decision, scaled)

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
