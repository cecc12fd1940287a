"""Fleet-wide coordination: the action semaphore (Redis; in memory when embedded)."""

from __future__ import annotations

from functools import lru_cache

from automation.coordination.base import Coordinator


@lru_cache(maxsize=1)
def get_coordinator() -> Coordinator:
    from django.conf import settings

    if settings.AUTOMATION_REDIS_URL:
        from automation.coordination.redis import RedisCoordinator

        return RedisCoordinator(settings.AUTOMATION_REDIS_URL)
    from automation.coordination.memory import MemoryCoordinator

    return MemoryCoordinator()


__all__ = ["Coordinator", "get_coordinator"]
