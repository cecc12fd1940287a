"""When the broker refuses a step's message: mark its run so the recovery job sends it again.

A finished step's successors are sent by the worker that ran it, a chord's join by its last branch, a
run's first canvas by whoever stored the run. If the broker is down past Celery's publish retries, that
message is lost; the run is marked in PostgreSQL and sent again within one pass of the recovery job.
A chord's branch reports to its join through the Redis result backend once it returns; with Redis down,
that report would be lost and the join would never run: the branch waits for Redis as a publish would,
then marks its run the same way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.backends.redis import RedisBackend
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger("automation.recovery")


def note_unsent(run_id: Any) -> None:
    from automation.runs import services

    try:
        if services.request_redispatch(run_id):
            logger.warning("run %s: the broker refused a message; marked to be sent again", run_id)
    except Exception as exc:  # noqa: BLE001 - with the database down too, the stalled-run sweep remains
        logger.error("run %s: the broker refused a message and the run could not be marked: %s", run_id, exc)


def await_join_report(task: Task[Any, Any], run_id: str) -> None:
    """Before a chord branch returns: make sure its report to the join can reach the Redis result backend
    (Celery sends it after the task returns and loses it when Redis is down). Waits as the publish retry
    policy does; past that, marks the run to be sent again."""
    backend = task.backend
    if not task.request.chord or not isinstance(backend, RedisBackend):
        return
    policy = settings.CELERY_TASK_PUBLISH_RETRY_POLICY
    retries = int(policy["max_retries"])
    interval = float(policy["interval_start"])
    try:
        for attempt in range(retries + 1):
            try:
                backend.client.ping()
                return
            except (RedisError, ConnectionError, TimeoutError) as exc:
                if attempt == 0:
                    # The step's completion waits for nothing: written now, not after the wait.
                    from automation.runs.executor import record_pending_completion

                    record_pending_completion()
                if attempt == retries:
                    logger.warning("run %s: the result backend is unreachable (%r)", run_id, exc)
                    break
            time.sleep(interval)
            interval = min(interval + float(policy["interval_step"]), float(policy["interval_max"]))
    except SoftTimeLimitExceeded:
        # The step succeeded (recorded at the first failed ping); its time ran out waiting for the join.
        logger.warning("run %s: time limit reached waiting for the result backend", run_id)
    note_unsent(run_id)
