"""Load of a Celery queue read from the Redis broker, and the arrival rate estimated from two readings.

A reading (`QueueLoad`) is taken in one pipelined round trip, on the broker's clock:
- `ready`: messages waiting, the LLEN of the queue's list and of its priority sub-lists, named as kombu's
  Redis transport names them (`QUEUE` for priority 0, `QUEUE<sep>N` for the other priority steps);
- `reserved`: messages a worker took and has not acknowledged yet (running or prefetched), counted from
  kombu's `unacked` hash by routing key;
- `scheduled`: messages a worker holds until their ETA (a retry's countdown, a parked `control.wait` or
  approval): not load until due, so not in the backlog; once due they count as reserved (an arrival);
- `completed` and `busy_seconds`: what the workers counted for this queue (`automation/fleet/throughput.py`).

Between two readings every message is conserved: it is still in the backlog (ready + reserved) or it was
completed, so arrivals = Δbacklog + Δcompleted. Messages a dead worker held move from `reserved` back to
`ready` and change neither side; a retried task counts one completion and one arrival. Per-worker
throughput is Δcompleted / Δbusy_seconds: tasks per second of one busy process (a `-c 1` worker),
measured whether or not the pool is saturated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as KombuRedisChannel

from automation.errors import InvalidFieldsError
from automation.fleet.throughput import BUSY_FIELD, COMPLETED_FIELD, queue_stats_key

#: Readings less than this far apart give no rate: the broker's clock is read to the microsecond, but
#: a count taken a moment apart is mostly noise.
MIN_RATE_SPAN = 0.5


class QueueLoadError(InvalidFieldsError):
    """A queue reading that cannot be taken or used; `errors` names the field at fault."""


@dataclass(frozen=True)
class BrokerKeys:
    """How kombu's Redis transport names its keys (its defaults, or the broker transport options)."""

    sep: str = KombuRedisChannel.sep
    priority_steps: tuple[int, ...] = tuple(PRIORITY_STEPS)
    unacked_key: str = KombuRedisChannel.unacked_key
    key_prefix: str = ""

    @classmethod
    def from_transport_options(cls, options: Mapping[str, Any]) -> BrokerKeys:
        defaults = cls()
        return cls(
            sep=str(options.get("sep", defaults.sep)),
            priority_steps=tuple(
                int(step) for step in options.get("priority_steps", defaults.priority_steps)
            ),
            unacked_key=str(options.get("unacked_key", defaults.unacked_key)),
            key_prefix=str(options.get("global_keyprefix", defaults.key_prefix)),
        )

    def queue_lists(self, queue: str) -> list[str]:
        """The Redis lists holding `queue`'s ready messages, one per priority step."""
        return [
            self.key_prefix + (f"{queue}{self.sep}{step}" if step else queue) for step in self.priority_steps
        ]


@dataclass(frozen=True)
class QueueLoad:
    """One reading of a queue; `at` is the broker's clock (seconds), shared by every reader."""

    queue: str
    at: float
    ready: int
    reserved: int
    completed: int
    busy_seconds: float
    scheduled: int = 0

    @property
    def backlog(self) -> int:
        """Messages not finished yet: waiting, or taken by a worker and not acknowledged."""
        return self.ready + self.reserved

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> QueueLoad:
        """A reading stored by `to_dict` (so a loop on another worker continues from it)."""
        try:
            return cls(
                queue=str(document["queue"]),
                at=float(document["at"]),
                ready=int(document["ready"]),
                reserved=int(document["reserved"]),
                completed=int(document["completed"]),
                busy_seconds=float(document["busy_seconds"]),
                scheduled=int(document.get("scheduled", 0)),
            )
        except KeyError as exc:
            raise QueueLoadError([(str(exc.args[0]), "is required")]) from None
        except (TypeError, ValueError):
            raise QueueLoadError([("reading", "holds a value of the wrong type")]) from None


def _unacked_entry(value: bytes | str, now: float) -> tuple[str, bool] | None:
    """(routing key, due) of an `unacked` value: kombu stores [payload, exchange, routing key], and
    Celery's payload headers carry the ETA of a message held until later. None for what is not that."""
    try:
        entry = json.loads(value)
    except ValueError:
        return None
    if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], str)):
        return None
    headers = entry[0].get("headers") if isinstance(entry[0], dict) else None
    eta = headers.get("eta") if isinstance(headers, dict) else None
    if not isinstance(eta, str):
        return entry[2], True
    try:
        moment = datetime.fromisoformat(eta)
    except ValueError:
        return entry[2], True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Celery writes UTC (enable_utc)
    return entry[2], moment.timestamp() <= now


def read_queue_loads(
    client: Any, queues: Iterable[str], *, keys: BrokerKeys | None = None
) -> list[QueueLoad]:
    """Read several queues in one round trip (`client`: a redis-py client on the broker's database)."""
    names = list(queues)
    for name in names:
        if not isinstance(name, str) or not name:
            raise QueueLoadError([("queue", "must be a non-empty string")])
    keys = keys or BrokerKeys()
    pipe = client.pipeline(transaction=False)
    pipe.time()
    for name in names:
        for key in keys.queue_lists(name):
            pipe.llen(key)
        # Written by the workers with a plain client: kombu's key prefix does not apply.
        pipe.hmget(queue_stats_key(name), [COMPLETED_FIELD, BUSY_FIELD])
    # Every reserved message, once for all queues: one entry per message a worker holds (prefetch is 1
    # per process), so the hash stays as small as the fleet.
    pipe.hvals(keys.key_prefix + keys.unacked_key)
    replies = pipe.execute()
    seconds, micros = replies[0]
    at = float(seconds) + float(micros) / 1e6
    reserved: dict[str, int] = {}
    scheduled: dict[str, int] = {}
    for value in replies[-1]:
        entry = _unacked_entry(value, at)
        if entry is not None:
            counts = reserved if entry[1] else scheduled
            counts[entry[0]] = counts.get(entry[0], 0) + 1
    loads = []
    position = 1
    for name in names:
        lengths = replies[position : position + len(keys.priority_steps)]
        position += len(keys.priority_steps)
        completed, busy = replies[position]
        position += 1
        loads.append(
            QueueLoad(
                queue=name,
                at=at,
                ready=sum(int(length) for length in lengths),
                reserved=reserved.get(name, 0),
                completed=int(completed or 0),
                busy_seconds=float(busy or 0.0),
                scheduled=scheduled.get(name, 0),
            )
        )
    return loads


def read_queue_load(client: Any, queue: str, *, keys: BrokerKeys | None = None) -> QueueLoad:
    """Read one queue (see `read_queue_loads`)."""
    return read_queue_loads(client, [queue], keys=keys)[0]


def broker_client() -> Any:
    """A redis-py client on the broker's database, with the key names of the configured transport."""
    import redis
    from django.conf import settings

    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://")):
        raise QueueLoadError([("broker", "queue load needs a Redis broker (AUTOMATION_BROKER_URL)")])
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def broker_keys() -> BrokerKeys:
    """The key names of the configured transport (CELERY_BROKER_TRANSPORT_OPTIONS)."""
    from django.conf import settings

    return BrokerKeys.from_transport_options(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}))


@dataclass(frozen=True)
class QueueRates:
    """What happened between two readings of a queue; None where the readings cannot tell."""

    span: float
    arrival_rate: float | None  # messages per second
    completion_rate: float | None  # messages per second, over the whole pool
    per_worker_rate: float | None  # messages per second of one busy process


def queue_rates(previous: QueueLoad, current: QueueLoad) -> QueueRates:
    """Arrivals, completions and per-worker throughput between two readings of the same queue.

    Counters that went backwards (Redis lost its data, or somebody reset them) give no rate for that
    span; arrivals are never negative (messages that left without completing, a purge, read as none).
    """
    if previous.queue != current.queue:
        raise QueueLoadError(
            [("queue", f"readings of '{previous.queue}' and '{current.queue}' give no rate")]
        )
    span = current.at - previous.at
    if span < MIN_RATE_SPAN:
        return QueueRates(span=span, arrival_rate=None, completion_rate=None, per_worker_rate=None)
    completed = current.completed - previous.completed
    busy = current.busy_seconds - previous.busy_seconds
    if completed < 0 or busy < 0:
        return QueueRates(span=span, arrival_rate=None, completion_rate=None, per_worker_rate=None)
    arrivals = max(0, current.backlog - previous.backlog + completed)
    return QueueRates(
        span=span,
        arrival_rate=arrivals / span,
        completion_rate=completed / span,
        per_worker_rate=completed / busy if completed and busy > 0 else None,
    )
