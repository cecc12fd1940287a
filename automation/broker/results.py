"""Celery's Redis result backend, except that sending a workflow step does not subscribe to its result.

Celery's Redis backend subscribes the sending process to a task's result channel as the task is sent,
so that a later `AsyncResult.get()` misses nothing; the subscription ends when the result object is
collected. A step's task is `ignore_result` (its outcome is its StepRun row): a process with the action
task classes loaded (a worker, or any process that registered a workflow) sends steps through them and
never subscribes. A process that only starts runs (the API server started fresh) sends them by name,
and paid a SUBSCRIBE and an UNSUBSCRIBE per step, up to a thousand channels for a fan-out. Nothing waits
on a step's result: steps, named `<run id>:<step>`, are now sent without one. A `get()` on any task
still works (the backend then subscribes and reads the stored result first). Installed for `redis://`
and `rediss://` result backends (automation/celery.py); others keep Celery's class.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend as CeleryRedisBackend

from automation.delivery import parse_step_task_id


class RedisBackend(CeleryRedisBackend):
    def on_task_call(self, producer: Any, task_id: str) -> None:
        if parse_step_task_id(str(task_id)) is None:
            super().on_task_call(producer, task_id)
