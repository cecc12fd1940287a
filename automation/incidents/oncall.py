"""Who is on call for a schedule at a moment, without I/O. Rotations hand off at wall-clock times of the
schedule's time zone (09:00 stays 09:00 across daylight saving), a higher layer wins where it has someone,
and an override (a person for a time range) wins over every layer.

Wall-clock times become instants one way everywhere (`instant_of`): a time that occurs twice (the hour
repeated in autumn) is its first occurrence, and a time that does not occur (the hour skipped in spring)
is the moment the clocks jump. So every hand-off happens once, and turns never run backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Layer", "OnCall", "Override", "Restriction", "Schedule", "instant_of", "on_call", "wall_clock"]

#: How far ahead `OnCall.until` looks for the next change (None past it).
HORIZON = timedelta(days=400)
#: Edges `until` steps over at most (a one-person rotation hands off to the same person each turn).
MAX_EDGES = 2000
_DAY = timedelta(days=1)


def wall_clock(at: datetime, zone: ZoneInfo) -> datetime:
    """What a clock in `zone` reads at instant `at` (naive)."""
    return at.astimezone(zone).replace(tzinfo=None)


def instant_of(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which a clock in `zone` reads `local` (naive) or later, in UTC."""
    earlier = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if wall_clock(earlier, zone) == local:
        return earlier  # it exists: its first occurrence
    # Skipped by a jump forward: fold=1 reads before `local`, fold=0 after; the jump lies between.
    low = int(local.replace(tzinfo=zone, fold=1).timestamp())
    high = int(earlier.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if wall_clock(datetime.fromtimestamp(middle, UTC), zone) >= local:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@dataclass(frozen=True)
class Restriction:
    """A layer is on duty only in a window opening at `start` (wall clock) on each of `days` (0 is
    Monday) and lasting `length` (at most a day: a window may run past midnight)."""

    days: frozenset[int]
    start: time
    length: timedelta

    def _window(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        opens = datetime.combine(day, self.start)
        return instant_of(opens, zone), instant_of(opens + self.length, zone)

    def covers(self, at: datetime, zone: ZoneInfo) -> bool:
        today = wall_clock(at, zone).date()
        for day in (today - _DAY, today):
            if day.weekday() in self.days:
                opens, closes = self._window(day, zone)
                if opens <= at < closes:
                    return True
        return False

    def next_edge(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        today = wall_clock(at, zone).date()
        edges = [
            edge
            for offset in range(-1, 9)
            if (today + offset * _DAY).weekday() in self.days
            for edge in self._window(today + offset * _DAY, zone)
            if edge > at
        ]
        return min(edges, default=None)


@dataclass(frozen=True)
class Layer:
    """A rotation: `users` take turns of `turn` each, in order, the first from `start` (wall clock of the
    schedule's zone), until `end` if given; only within `restriction` if given."""

    name: str
    users: tuple[str, ...]
    start: datetime
    turn: timedelta
    end: datetime | None = None
    restriction: Restriction | None = None

    def _hand_off(self, turn: int, zone: ZoneInfo) -> datetime:
        return instant_of(self.start + turn * self.turn, zone)

    def _turn(self, at: datetime, zone: ZoneInfo) -> int:
        """The turn under way at `at` (not before `start`): estimated on the wall clock, then settled on
        the hand-off instants (an hour is repeated or skipped around daylight saving changes)."""
        turn = max(0, (wall_clock(at, zone) - self.start) // self.turn)
        while turn > 0 and self._hand_off(turn, zone) > at:
            turn -= 1
        while self._hand_off(turn + 1, zone) <= at:
            turn += 1
        return turn

    def who(self, at: datetime, zone: ZoneInfo) -> str | None:
        if at < self._hand_off(0, zone):
            return None
        if self.end is not None and at >= instant_of(self.end, zone):
            return None
        if self.restriction is not None and not self.restriction.covers(at, zone):
            return None
        return self.users[self._turn(at, zone) % len(self.users)]

    def next_edge(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """The first instant after `at` at which this layer may change hands (or start or stop)."""
        first = self._hand_off(0, zone)
        edges: list[datetime | None] = [
            first if at < first else self._hand_off(self._turn(at, zone) + 1, zone)
        ]
        if self.end is not None:
            edges.append(instant_of(self.end, zone))
        if self.restriction is not None:
            edges.append(self.restriction.next_edge(at, zone))
        return min((edge for edge in edges if edge is not None and edge > at), default=None)


@dataclass(frozen=True)
class Override:
    """`user` is on call from `start` (included) to `end` (excluded), instants."""

    user: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Schedule:
    """Layers lowest first (the last one is the highest); overrides in declaration order (the last one
    covering a moment wins)."""

    name: str
    zone: ZoneInfo
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class OnCall:
    user: str
    #: `override`, or `layer NAME`.
    source: str
    #: When someone else (or nobody) takes over, in UTC; None when that is not within HORIZON.
    until: datetime | None


def _holder(schedule: Schedule, at: datetime) -> tuple[str, str] | None:
    for override in reversed(schedule.overrides):
        if override.start <= at < override.end:
            return override.user, "override"
    for layer in reversed(schedule.layers):
        user = layer.who(at, schedule.zone)
        if user is not None:
            return user, f"layer {layer.name}"
    return None


def _next_edge(schedule: Schedule, at: datetime) -> datetime | None:
    edges = [layer.next_edge(at, schedule.zone) for layer in schedule.layers]
    edges += [edge for o in schedule.overrides for edge in (o.start, o.end)]
    return min((edge for edge in edges if edge is not None and edge > at), default=None)


def _until(schedule: Schedule, at: datetime, user: str) -> datetime | None:
    moment = at
    for _ in range(MAX_EDGES):
        edge = _next_edge(schedule, moment)
        if edge is None or edge - at > HORIZON:
            return None
        holder = _holder(schedule, edge)
        if holder is None or holder[0] != user:
            return edge
        moment = edge
    return None


def on_call(schedule: Schedule, at: datetime) -> OnCall | None:
    """Who is on call for `schedule` at instant `at` (timezone-aware), from which layer or override, and
    until when; None when nobody is."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    moment = at.astimezone(UTC)
    holder = _holder(schedule, moment)
    if holder is None:
        return None
    return OnCall(holder[0], holder[1], _until(schedule, moment, holder[0]))
