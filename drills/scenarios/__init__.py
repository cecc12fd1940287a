"""The catalogue of drills, in the order the suite runs them; `quick` ones also run in `make test`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drills.accounting import DrillResult
from drills.harness import Harness
from drills.scenarios import broker, canvas, database, messages, workers


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    run: Callable[[Harness, DrillResult], None]
    quick: bool = False
    redis_aof: bool = False

    @property
    def description(self) -> str:
        return " ".join((self.run.__doc__ or "").split())


DRILLS: tuple[Drill, ...] = (
    Drill("redis-restart", "Redis restart, no persistence", broker.redis_restart, quick=True),
    Drill("redis-restart-aof", "Redis restart, AOF on", broker.redis_restart, redis_aof=True),
    Drill("poison-messages", "Poison messages", messages.poison, quick=True),
    Drill(
        "fanout-redis-outage", "Redis outage mid-fan-out (200 + join)", broker.fanout_outage, redis_aof=True
    ),
    Drill("action-limit-after-restart", "Action limit after a Redis restart", broker.action_limit),
    Drill("worker-sigkill", "Worker SIGKILL mid-step, defaults", workers.worker_sigkill),
    Drill("warm-shutdown", "Worker SIGTERM mid-step", workers.warm_shutdown),
    Drill("two-beats", "Two Beats", workers.two_beats, quick=True),
    Drill("postgres-restart", "PostgreSQL restart mid-run", database.postgres_restart),
    Drill("duplicate-delivery", "Every step message delivered twice", messages.duplicate_delivery),
    Drill("chord-branch-failure", "A fan-out branch failing for good", canvas.chord_branch_failure),
)


def find(name: str) -> Drill:
    for drill in DRILLS:
        if drill.name == name:
            return drill
    raise KeyError(f"no drill named {name!r}; known: {', '.join(d.name for d in DRILLS)}")
