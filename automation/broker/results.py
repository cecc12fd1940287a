"""Celery's Redis result backend, except that nothing subscribes to a workflow step's result channel
unless it waits on that result.

Celery's Redis backend subscribes the sending process to a task's result channel as the task is sent,
and again for every result a GroupResult holds (a chord's header, twice: once as the chord is set up and
once as its group is sent), so that a later `get()` misses nothing; each subscription ends with an
UNSUBSCRIBE when its result object goes. A step's task is `ignore_result` (its outcome is its StepRun
row), and nothing in the engine waits on a step's result: a 1,000-way fan-out cost its producer (the API
server, a worker sending a run again) a thousand SUBSCRIBE and a thousand UNSUBSCRIBE. Steps, named
`<run id>:<step>`, are now sent and grouped without one; a `get()` or a group's `join_native()` on a step
still works (it subscribes first, then reads the stored result, as Celery does). Installed for
`redis://` and `rediss://` result backends (automation/celery.py); others keep Celery's class.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend as CeleryRedisBackend

from automation.delivery import parse_step_task_id


def _is_step(task_id: Any) -> bool:
    return parse_step_task_id(str(task_id)) is not None


class RedisBackend(CeleryRedisBackend):
    # Celery's signatures here are newer than its type stubs: `base` is this class's superclass, untyped.

    def on_task_call(self, producer: Any, task_id: str) -> None:
        if not _is_step(task_id):
            super().on_task_call(producer, task_id)

    def add_pending_result(self, result: Any, weak: bool = False, start_drainer: bool = True) -> Any:
        """Followed at once, except a step's: only once something waits on it (below)."""
        if _is_step(result.id):
            return result
        base: Any = super()
        return base.add_pending_result(result, weak=weak, start_drainer=start_drainer)

    def _follow_steps(self, results: Any) -> None:
        """Subscribe to every step among `results` whose outcome this process does not hold yet, at any
        depth (a chord's header may hold groups)."""
        base: Any = super()
        for result in results:
            if _is_step(result.id) and getattr(result, "_cache", None) is None:
                base.add_pending_result(result)
            self._follow_steps(getattr(result, "results", None) or [])

    def wait_for_pending(self, result: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._follow_steps([result])
        base: Any = super()
        return base.wait_for_pending(result, **kwargs)

    def iter_native(self, result: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._follow_steps(getattr(result, "results", None) or [])
        base: Any = super()
        return base.iter_native(result, **kwargs)
