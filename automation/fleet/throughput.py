"""What each worker counts per queue in the broker's Redis: tasks finished and the seconds spent on them.

The queue reader (`automation/scaling/queues.py`) turns these counters into completions per second and
per-worker throughput. Each pool process adds its counts up in memory and writes them at most once per
`FLUSH_EVERY` (and when it stops), on a connection of its own with replies switched off
(`CLIENT REPLY OFF`): never a round trip on the task's path, and under load one write per second
instead of one per task (a write wakes redis-server, which on a small host takes the core a task
needed). A process that goes idle keeps at most its last second of counts until its next task: the
reader's rates lag that much when a queue drains, never when it fills. A failure to count never touches
the task; the counts wait and the connection is opened again later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from celery.signals import task_postrun, task_prerun, worker_process_shutdown

logger = logging.getLogger("automation.fleet")

#: Hash per queue: `completed` (tasks finished, whatever their outcome) and `busy_seconds` (their run time).
QUEUE_STATS_KEY = "automation:queue-stats:{queue}"
COMPLETED_FIELD = "completed"
BUSY_FIELD = "busy_seconds"

# Start times of the tasks this process is running, by task id (a pool process runs one at a time, but
# a thread pool runs several).
_started: dict[str, float] = {}
_connection: tuple[int, Any] | None = None  # (pid, connection): a forked pool process opens its own
#: After a failed count, counting waits this long before connecting again.
RETRY_AFTER = 30.0
_retry_at = 0.0
#: A process writes what it counted at most this often (seconds).
FLUSH_EVERY = 1.0
# Counted and not yet written: queue -> [tasks finished, busy seconds].
_pending: dict[str, list[float]] = {}
_flushed_at = 0.0


def queue_stats_key(queue: str) -> str:
    return QUEUE_STATS_KEY.format(queue=queue)


def _counting_connection() -> Any:
    """This process's reply-less connection to the broker's Redis; None when the broker is not Redis."""
    global _connection
    if _connection is not None and _connection[0] == os.getpid():
        return _connection[1]
    from django.conf import settings

    if time.monotonic() < _retry_at:
        return None  # the broker failed us a moment ago: no connect timeout on every task meanwhile
    url = str(settings.CELERY_BROKER_URL)
    connection: Any = None
    if url.startswith(("redis://", "rediss://")):
        import redis

        # RESP2: no push messages (RESP3's maintenance notifications would read as replies below).
        connection = redis.ConnectionPool.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.2, protocol=2
        ).make_connection()
        connection.connect()
        # Replies off means nothing comes back, not even to PING. Whether something does (CLIENT denied
        # by an ACL, a proxy) is looked at by every write, without waiting (the first usually comes too
        # early to see it, the next a second later): never waited for here, on the task's path.
        connection.send_command("CLIENT", "REPLY", "OFF")
        connection.send_command("PING")
    _connection = (os.getpid(), connection)
    return connection


def _answers(connection: Any) -> bool:
    """Whether the broker sent anything back on the reply-less connection (it then ignores REPLY OFF)."""
    return bool(connection.can_read(timeout=0))


def _drop_connection() -> None:
    global _connection, _retry_at
    _retry_at = time.monotonic() + RETRY_AFTER
    if _connection is not None and _connection[0] == os.getpid() and _connection[1] is not None:
        with contextlib.suppress(Exception):
            _connection[1].disconnect()
    _connection = None


def _queue_of(task: Any) -> str | None:
    info = getattr(getattr(task, "request", None), "delivery_info", None) or {}
    queue = info.get("routing_key")
    return queue if isinstance(queue, str) and queue else None


def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


def _task_finished(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    started = _started.pop(task_id, None) if task_id else None
    queue = _queue_of(task)
    if started is None or queue is None:
        return  # run eagerly, or outside a worker: no queue to count for
    now = time.monotonic()
    counts = _pending.setdefault(queue, [0, 0.0])
    counts[0] += 1
    counts[1] += now - started
    if now - _flushed_at >= FLUSH_EVERY:
        flush(now)


def flush(now: float | None = None) -> None:
    """Write what this process counted since its last write (kept for later when the broker fails; dropped,
    and counting off in this process, when the broker answers despite CLIENT REPLY OFF)."""
    global _flushed_at, _connection
    _flushed_at = time.monotonic() if now is None else now
    if not _pending:
        return
    try:
        connection = _counting_connection()
        if connection is None:
            return
        if _answers(connection):
            # Replies would pile up unread on the broker: such a broker gets no counts from this process.
            logger.warning("queue stats disabled: the broker does not accept CLIENT REPLY OFF")
            connection.disconnect()
            _connection = (os.getpid(), None)
            _pending.clear()
            return
        commands = []
        for queue, (completed, busy) in _pending.items():
            key = queue_stats_key(queue)
            commands += [
                ("HINCRBY", key, COMPLETED_FIELD, int(completed)),
                ("HINCRBYFLOAT", key, BUSY_FIELD, f"{busy:.6f}"),
            ]
        connection.send_packed_command(connection.pack_commands(commands))
        _pending.clear()
    except Exception as exc:  # noqa: BLE001 - a late count costs the scaler a sample, never the task
        logger.debug("queue stats not written: %r", exc)
        _drop_connection()


def _process_stopping(**_: Any) -> None:
    flush()


def install() -> None:
    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_finished, weak=False)
    worker_process_shutdown.connect(_process_stopping, weak=False)
