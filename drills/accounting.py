"""What a drill measured, and the pure arithmetic behind it: duplicated effects, re-sends excused by a fault,
recovery times, sends per schedule slot. No I/O here, so every rule can be tested on its own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drills.receiver import Delivery

#: The targets of issue 6, for every drill.
TARGET_RECOVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Fault:
    """A window in which something broke: from the fault's start to its end (service back, process gone)."""

    what: str
    start: float
    end: float


@dataclass(frozen=True)
class EffectCount:
    applied_keys: int
    #: Deliveries of a key beyond its first, beyond the one re-send excused per delivery caught by a fault.
    duplicated: int
    #: Re-sends of a key whose earlier delivery was in flight when a fault struck (same key: legitimate).
    resent_in_flight: int
    duplicated_keys: list[str]


def in_flight_during(delivery: Delivery, fault: Fault) -> bool:
    """The request had arrived by the fault's end and was not answered before the fault began."""
    return delivery.arrived <= fault.end and (delivery.answered is None or delivery.answered >= fault.start)


def count_effects(deliveries: Iterable[Delivery], faults: Sequence[Fault]) -> EffectCount:
    """Applied deliveries per Idempotency-Key: the first is the effect; a later one is a re-send, excused
    once per earlier delivery of that key that a fault caught in flight, a duplicated effect otherwise."""
    by_key: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        if delivery.applied:
            by_key[delivery.key].append(delivery)
    duplicated = resent = 0
    duplicated_keys: list[str] = []
    for key, found in by_key.items():
        found.sort(key=lambda d: d.arrived)
        extra = len(found) - 1
        caught = sum(1 for d in found[:-1] if any(in_flight_during(d, f) for f in faults))
        excused = min(caught, extra)
        resent += excused
        if extra > excused:
            duplicated += extra - excused
            duplicated_keys.append(key)
    return EffectCount(len(by_key), duplicated, resent, sorted(duplicated_keys))


def seconds_after(times: Iterable[float], moment: float) -> float | None:
    """Seconds from `moment` to the first of `times` after it (None if nothing came after it)."""
    later = [t for t in times if t > moment]
    return min(later) - moment if later else None


def sends_per_slot(times: Iterable[float], *, start: float, interval: float, slots: int) -> list[int]:
    """How many of `times` fall in each of `slots` consecutive windows of `interval` seconds from `start`.

    One scheduler alone sends a job at most once per window (its sends are at least `interval` apart).
    """
    counts = [0] * slots
    for at in times:
        index = int((at - start) // interval)
        if 0 <= index < slots:
            counts[index] += 1
    return counts


@dataclass
class DrillResult:
    """One drill's measurements and verdict; `misses` name every target it did not meet."""

    name: str
    title: str
    runs_accepted: int = 0
    runs_lost: int = 0
    effects_applied: int = 0
    effects_duplicated: int = 0
    resent_in_flight: int = 0
    #: Seconds from the fault's end to the measured recovery point (None: never, within the deadline).
    recovery_seconds: float | None = None
    #: What recovery means in this drill (None: the drill has no recovery to time).
    recovery_point: str | None = None
    deadline_seconds: float = 0.0
    misses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Lines from the engine's logs worth a maintainer's look (crashes, unrecoverable errors).
    observations: list[str] = field(default_factory=list)
    #: Interference from outside the drill (another program stopping its processes): rerun it.
    disturbances: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def met(self) -> bool:
        return not self.misses and not self.error

    def judge(self) -> None:
        """Add the misses of the common targets: 0 lost, 0 duplicated, recovery within 60 s."""
        if self.runs_lost:
            self.misses.append(f"{self.runs_lost} run(s) lost")
        if self.effects_duplicated:
            self.misses.append(f"{self.effects_duplicated} effect(s) duplicated")
        if self.recovery_point is not None:
            if self.recovery_seconds is None:
                self.misses.append(f"no recovery within the {self.deadline_seconds:.0f} s deadline")
            elif self.recovery_seconds > TARGET_RECOVERY_SECONDS:
                self.misses.append(
                    f"recovery {self.recovery_seconds:.1f} s > {TARGET_RECOVERY_SECONDS:.0f} s"
                )

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "met": self.met}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrillResult:
        return cls(**{k: v for k, v in data.items() if k != "met"})
