"""In-process coordination for the embedded mode (one process) and for users' unit tests."""

from __future__ import annotations

import threading
import time

from automation.coordination.base import DEFAULT_ACTION_LIMIT, Acquired, Coordinator, Lease


class MemoryCoordinator(Coordinator):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}
        self._slots: dict[str, float] = {}
        self._limit = DEFAULT_ACTION_LIMIT

    def acquire(self, lease: Lease, *, ttl_seconds: float) -> Acquired:
        now = time.monotonic()
        with self._lock:
            holder = self._leases.get(lease.key)
            if holder and holder[0] != lease.token and holder[1] > now:
                return Acquired.HELD
            self._slots = {token: until for token, until in self._slots.items() if until > now}
            if lease.token not in self._slots and len(self._slots) >= self._limit:
                return Acquired.FULL
            self._slots[lease.token] = now + ttl_seconds
            self._leases[lease.key] = (lease.token, now + ttl_seconds)
            return Acquired.OK

    def release(self, lease: Lease) -> None:
        with self._lock:
            if self._leases.get(lease.key, ("",))[0] == lease.token:
                del self._leases[lease.key]
            self._slots.pop(lease.token, None)

    def set_action_limit(self, limit: int) -> None:
        self._limit = int(limit)

    def running_actions(self) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(1 for until in self._slots.values() if until > now)
