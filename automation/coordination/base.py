"""The coordination contract: the fleet-wide action semaphore behind `max_concurrent_actions`.

The stored config (PostgreSQL) holds the limit; every call passes it in, so a coordination store that
lost its copy (a Redis restart without persistence) is put right on the next call. Slots expire on
their own, so a worker killed mid-action cannot leak one for longer than the action's time limit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Coordinator(ABC):
    @abstractmethod
    def take_slot(self, token: str, *, ttl_seconds: float, limit: int) -> bool:
        """Take a slot for `token` (True), or find the limit reached across the fleet (False).

        `limit` is the stored config's, used when the coordination store has none (it lost it)."""

    @abstractmethod
    def set_limit(self, limit: int) -> None:
        """Make `limit` take effect at once (the stored config reaches every worker within seconds)."""

    @abstractmethod
    def give_back(self, token: str) -> None: ...

    @abstractmethod
    def running_actions(self) -> int: ...
