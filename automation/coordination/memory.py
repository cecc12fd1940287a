"""In-process coordination for the embedded mode (one process) and for users' unit tests."""

from __future__ import annotations

import threading
import time

from automation.coordination.base import Coordinator


class MemoryCoordinator(Coordinator):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, float] = {}
        self._limit: int | None = None

    def set_limit(self, limit: int) -> None:
        self._limit = int(limit)

    def take_slot(self, token: str, *, ttl_seconds: float, limit: int) -> bool:
        now = time.monotonic()
        limit = self._limit if self._limit is not None else limit
        with self._lock:
            self._slots = {held: until for held, until in self._slots.items() if until > now}
            if token not in self._slots and len(self._slots) >= limit:
                return False
            self._slots[token] = now + ttl_seconds
            return True

    def give_back(self, token: str) -> None:
        with self._lock:
            self._slots.pop(token, None)

    def running_actions(self) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(1 for until in self._slots.values() if until > now)
