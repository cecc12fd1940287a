"""A plain Celery app with a no-op task: the baseline `bench_engine.py` compares the engine to (and a task
returning its start time, the baseline of `bench_alerting.py`'s alert-to-first-step figure).

It shares nothing with the engine but the broker and the result backend (the same Redis database). Its
worker runs alone (`celery -A benchmarks.plain_celery worker`), never beside the engine's. Each setting,
and why it is there:

- `fixups=[]`: no Django fixup. Celery installs it in any app whose process has DJANGO_SETTINGS_MODULE
  set; the benchmark also removes that variable from this worker's environment.
- `broker` and `backend`: the Redis database the engine uses for both (AUTOMATION_BENCH_REDIS).
- `task_acks_late`, `task_reject_on_worker_lost`: at-least-once delivery, as the engine's steps.
- `worker_prefetch_multiplier = 1`: one reserved message per pool process, as the engine.
- `task_serializer`, `result_serializer`, `accept_content`: JSON only, as the engine.
- `worker_send_task_events`, `task_send_sent_event`: task events on (Flower sees them), as the engine.
- `result_extended`: the result keeps name, args and queue, as the engine's (its recovery reads them).
- `broker_transport_options = {"visibility_timeout": 3600}`: the engine's value, also kombu's default;
  the unacked-restore interval and throttle are kombu's defaults, the same values the engine sets.
- `task_default_queue = "default"`: the queue of a NORMAL-priority workflow; the worker consumes it
  alone (`-Q default`), as the benchmark's engine worker does.
- Left at Celery's defaults, as a user would: `worker_deduplicate_successful_tasks` off (the engine
  turns it on; it only costs a result lookup for a redelivered message), `result_expires` one day
  (the engine keeps seven; both are one SETEX per result), `task_track_started` off (as the engine).
- The task is declared with `typing=False` (no argument check against its signature), as the engine's
  action tasks.
- `set_as_current=False`: importing this module in the benchmark process does not make it the
  current app of the engine's code running there.

Worker flags are the engine worker's: `-P prefork -c 2 -Q default --without-gossip --without-mingle`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

REDIS_URL = os.environ.get("AUTOMATION_BENCH_REDIS", "redis://127.0.0.1:6379/6")

app = Celery("plain", broker=REDIS_URL, backend=REDIS_URL, fixups=[], set_as_current=False)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_send_task_events=True,
    task_send_sent_event=True,
    result_extended=True,
    broker_transport_options={"visibility_timeout": 3600},
    task_default_queue="default",
    broker_connection_retry_on_startup=True,
)


@app.task(name="plain.noop", typing=False)
def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing: what is left to measure is Celery's own cost (broker, result backend, worker)."""
    return None


@app.task(name="plain.started", typing=False)
def started(*args: Any, **kwargs: Any) -> float:
    """Return the moment the task started (epoch s): enqueue -> task start, for bench_alerting.py."""
    return time.time()
