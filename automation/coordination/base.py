"""The coordination contract: a per-step lease that also takes a slot of the fleet-wide semaphore."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

DEFAULT_ACTION_LIMIT = 50


class Acquired(enum.Enum):
    OK = 1
    #: Another execution of the same step holds the lease: this message is a duplicate.
    HELD = -1
    #: max_concurrent_actions actions are running across the fleet.
    FULL = 0


@dataclass(frozen=True)
class Lease:
    key: str
    token: str


class Coordinator(ABC):
    @abstractmethod
    def acquire(self, lease: Lease, *, ttl_seconds: float) -> Acquired: ...

    @abstractmethod
    def release(self, lease: Lease) -> None: ...

    @abstractmethod
    def set_action_limit(self, limit: int) -> None: ...

    @abstractmethod
    def running_actions(self) -> int: ...
