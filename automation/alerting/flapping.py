"""Flap damping: an alert that changed state more than `changes` times inside `window` is flapping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FlapPolicy:
    changes: int = 6
    window: float = 3600.0

    def recent(self, times: Sequence[float], now: float) -> list[float]:
        """The change times still inside the window (what is worth keeping)."""
        return [t for t in times if now - t <= self.window]

    def is_flapping(self, times: Sequence[float], now: float) -> bool:
        return self.changes > 0 and len(self.recent(times, now)) > self.changes
