"""What each worker counts per queue in the broker's Redis: tasks finished and the seconds spent on them.

The queue reader (`automation/scaling/queues.py`) turns these counters into completions per second and
per-worker throughput. One pipelined round trip per task, from the pool process that ran it; a failure
to count never touches the task.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.signals import task_postrun, task_prerun

logger = logging.getLogger("automation.fleet")

#: Hash per queue: `completed` (tasks finished, whatever their outcome) and `busy_seconds` (their run time).
QUEUE_STATS_KEY = "automation:queue-stats:{queue}"
COMPLETED_FIELD = "completed"
BUSY_FIELD = "busy_seconds"

# Start times of the tasks this process is running, by task id (a pool process runs one at a time, but
# a thread pool runs several).
_started: dict[str, float] = {}
_client: tuple[int, Any] | None = None  # (pid, client): a forked pool process opens its own


def queue_stats_key(queue: str) -> str:
    return QUEUE_STATS_KEY.format(queue=queue)


def _broker_client() -> Any:
    global _client
    if _client is not None and _client[0] == os.getpid():
        return _client[1]
    from django.conf import settings

    url = str(settings.CELERY_BROKER_URL)
    client = None
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    _client = (os.getpid(), client)
    return client


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
    busy = time.monotonic() - started
    try:
        client = _broker_client()
        if client is None:
            return
        key = queue_stats_key(queue)
        client.pipeline(transaction=False).hincrby(key, COMPLETED_FIELD, 1).hincrbyfloat(
            key, BUSY_FIELD, busy
        ).execute()
    except Exception as exc:  # noqa: BLE001 - a lost count costs the scaler one sample, never the task
        logger.debug("queue stats not counted for %s: %r", queue, exc)


def install() -> None:
    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_finished, weak=False)
