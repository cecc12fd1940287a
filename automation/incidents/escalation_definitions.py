"""What operators declare for escalation (an `escalation` document in YAML, or the API): the users and the
receivers that reach them, on-call schedules (rotation layers, overrides), and the escalation policies
(which incidents, levels of targets each with a timeout, repeats). Validation names the field at fault;
names are checked across the document, and receivers against the alerting document's.

Times in a schedule without a UTC offset are wall-clock times of its `timezone`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from automation.alerting.definitions import Seconds
from automation.choices import AlertSeverity
from automation.definitions.schema import definition_error
from automation.errors import DefinitionError
from automation.incidents import escalation, oncall
from automation.incidents.choices import TargetKind

__all__ = [
    "EscalationDocument",
    "EscalationPolicyDefinition",
    "OnCallScheduleDefinition",
    "OnCallUserDefinition",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A time in a schedule: ISO 8601, a wall clock of the schedule's time zone unless it carries an offset.
def _bounded(moment: datetime) -> datetime:
    """Times far from now overflow the time-zone arithmetic of on-call resolution: 1971-9000 only."""
    if not 1971 <= moment.year <= 9000:
        raise ValueError("must be a time from 1971 to 9000 (leave `end` out for no end)")
    return moment


ScheduleTime = Annotated[
    datetime,
    AfterValidator(_bounded),
    WithJsonSchema(
        {
            "type": "string",
            "description": "ISO 8601 date and time (2026-01-05T09:00): without an offset, a wall-clock time "
            "of the schedule's time zone",
        }
    ),
]
#: Shortest turn of a rotation.
MIN_ROTATION = 60.0
#: Most passes over a policy's levels beyond the first.
MAX_REPEAT = 10


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OnCallUserDefinition(_Model):
    """A person who can be paged, and the receivers of the alerting document that reach them."""

    name: str = Field(pattern=NAME_PATTERN)
    receivers: tuple[str, ...] = Field(min_length=1, max_length=20)


class LayerRestrictionDefinition(_Model):
    """On duty only from `from` to `to` (wall clock, may pass midnight; equal: the whole day) on `days`."""

    days: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1, max_length=7)
    from_: str = Field(default="00:00", alias="from", pattern=CLOCK_PATTERN)
    to: str = Field(default="00:00", pattern=CLOCK_PATTERN)

    def build(self) -> oncall.Restriction:
        start, end = time.fromisoformat(self.from_), time.fromisoformat(self.to)
        minutes = (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % 1440 or 1440
        return oncall.Restriction(
            frozenset(WEEKDAYS.index(day) for day in self.days), start, timedelta(minutes=minutes)
        )


class OnCallLayerDefinition(_Model):
    """A rotation: `users` take turns of `rotation` each (1d, 1w, 12h), the first starting at `start`
    (the first hand-off), until `end` if given, within `restrict` if given."""

    name: str = Field(pattern=NAME_PATTERN)
    users: tuple[str, ...] = Field(min_length=1, max_length=100)
    start: ScheduleTime
    rotation: Seconds = Field(ge=MIN_ROTATION)
    end: ScheduleTime | None = None
    restrict: LayerRestrictionDefinition | None = None

    def build(self, zone: ZoneInfo) -> oncall.Layer:
        end = _wall(self.end, zone) if self.end is not None else None
        restriction = self.restrict.build() if self.restrict is not None else None
        turn = timedelta(seconds=self.rotation)
        return oncall.Layer(self.name, self.users, _wall(self.start, zone), turn, end, restriction)


class OnCallOverrideDefinition(_Model):
    """`user` is on call from `start` to `end`, whatever the layers say."""

    user: str = Field(pattern=NAME_PATTERN)
    start: ScheduleTime
    end: ScheduleTime

    def build(self, zone: ZoneInfo) -> oncall.Override:
        return oncall.Override(self.user, _instant(self.start, zone), _instant(self.end, zone))


class OnCallScheduleDefinition(_Model):
    """Layers lowest first: a later layer wins wherever it has someone; an override wins over all."""

    name: str = Field(pattern=NAME_PATTERN)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    layers: tuple[OnCallLayerDefinition, ...] = Field(min_length=1, max_length=20)
    overrides: tuple[OnCallOverrideDefinition, ...] = Field(default=(), max_length=500)
    description: str = Field(default="", max_length=2000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"unknown time zone {value[:64]!r} (an IANA name, such as Europe/Paris)")
        return value

    def build(self) -> oncall.Schedule:
        zone = ZoneInfo(self.timezone)
        return oncall.Schedule(
            self.name,
            zone,
            tuple(layer.build(zone) for layer in self.layers),
            tuple(override.build(zone) for override in self.overrides),
        )


class EscalationTargetDefinition(_Model):
    """Exactly one of: a receiver of the alerting document, a user, a schedule (whoever is on call)."""

    receiver: str | None = Field(default=None, min_length=1, max_length=100)
    user: str | None = Field(default=None, min_length=1, max_length=100)
    schedule: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_kind(self) -> EscalationTargetDefinition:
        if len([kind for kind in TargetKind.ALL if getattr(self, kind) is not None]) != 1:
            raise ValueError(f"give exactly one of {', '.join(TargetKind.ALL)}")
        return self

    def build(self) -> escalation.Target:
        kind = next(kind for kind in TargetKind.ALL if getattr(self, kind) is not None)
        return escalation.Target(kind, str(getattr(self, kind)))


class EscalationLevelDefinition(_Model):
    targets: tuple[EscalationTargetDefinition, ...] = Field(min_length=1, max_length=20)
    #: How long after this level's page the next level is paged if nobody acknowledged.
    timeout: Seconds = Field(gt=0)


class PolicyMatchDefinition(_Model):
    """Every condition given must hold; none given: every incident."""

    services: tuple[str, ...] = Field(default=(), max_length=200)
    owners: tuple[str, ...] = Field(default=(), max_length=200)
    min_severity: AlertSeverity | None = None


class EscalationPolicyDefinition(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    match: PolicyMatchDefinition = Field(default_factory=PolicyMatchDefinition)
    levels: tuple[EscalationLevelDefinition, ...] = Field(min_length=1, max_length=20)
    #: Passes over the levels after the first, while nobody acknowledges.
    repeat: int = Field(default=0, ge=0, le=MAX_REPEAT)
    description: str = Field(default="", max_length=2000)

    def build(self) -> escalation.Policy:
        match = escalation.Match(
            frozenset(self.match.services),
            frozenset(self.match.owners),
            self.match.min_severity.value if self.match.min_severity is not None else None,
        )
        levels = tuple(
            escalation.Level(tuple(t.build() for t in level.targets), float(level.timeout))
            for level in self.levels
        )
        return escalation.Policy(self.name, levels, self.repeat, match)


class EscalationDocument(_Model):
    users: tuple[OnCallUserDefinition, ...] = Field(default=(), max_length=2000)
    schedules: tuple[OnCallScheduleDefinition, ...] = Field(default=(), max_length=200)
    policies: tuple[EscalationPolicyDefinition, ...] = Field(default=(), max_length=200)

    @staticmethod
    def parse(document: Any, *, receivers: Collection[str]) -> EscalationDocument:
        """The document, checked whole; DefinitionError naming each field at fault. `receivers` are the
        alerting document's."""
        if not isinstance(document, dict):
            raise DefinitionError([("escalation", "expected a mapping of users, schedules and policies")])
        try:
            parsed = EscalationDocument.model_validate(document)
        except ValidationError as exc:
            raise definition_error(exc) from None
        problems = parsed.problems(receivers)
        if problems:
            raise DefinitionError(problems)
        return parsed

    def problems(self, receivers: Collection[str]) -> list[tuple[str, str]]:
        """What the shapes do not say: names are unique, and every name refers to something declared."""
        found = _twice("users", [u.name for u in self.users])
        found += _twice("schedules", [s.name for s in self.schedules])
        found += _twice("policies", [p.name for p in self.policies])
        users = {u.name for u in self.users}
        schedules = {s.name for s in self.schedules}
        for i, user in enumerate(self.users):
            found += _unknown(f"users[{i}].receivers", user.receivers, receivers, "receiver")
        for i, schedule in enumerate(self.schedules):
            found += _schedule_problems(f"schedules[{i}]", schedule, users)
        known = {TargetKind.RECEIVER: receivers, TargetKind.USER: users, TargetKind.SCHEDULE: schedules}
        for i, policy in enumerate(self.policies):
            for j, level in enumerate(policy.levels):
                for k, defined in enumerate(level.targets):
                    target = defined.build()
                    path = f"policies[{i}].levels[{j}].targets[{k}].{target.kind}"
                    if target.name not in known[target.kind]:
                        found.append((path, _unknown_reason(target.kind, target.name, known[target.kind])))
        return found

    def schedule(self, name: str) -> OnCallScheduleDefinition | None:
        return next((s for s in self.schedules if s.name == name), None)

    def receivers_of_users(self) -> dict[str, tuple[str, ...]]:
        return {user.name: user.receivers for user in self.users}


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """A layer's time as a wall clock of the schedule's zone (naive): as given, or converted."""
    return moment if moment.tzinfo is None else moment.astimezone(zone).replace(tzinfo=None)


def _instant(moment: datetime, zone: ZoneInfo) -> datetime:
    """An override's time as an instant: as given, or the schedule's wall clock."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else oncall.instant_of(moment, zone)


def _schedule_problems(
    where: str, schedule: OnCallScheduleDefinition, users: set[str]
) -> list[tuple[str, str]]:
    zone = ZoneInfo(schedule.timezone)  # checked by its validator
    found: list[tuple[str, str]] = []
    for j, layer in enumerate(schedule.layers):
        found += _unknown(f"{where}.layers[{j}].users", layer.users, users, "user")
        if layer.end is not None and _wall(layer.end, zone) <= _wall(layer.start, zone):
            found.append((f"{where}.layers[{j}].end", "must be after start"))
    for j, override in enumerate(schedule.overrides):
        if override.user not in users:
            found.append((f"{where}.overrides[{j}].user", _unknown_reason("user", override.user, users)))
        if _instant(override.end, zone) <= _instant(override.start, zone):
            found.append((f"{where}.overrides[{j}].end", "must be after start"))
    return found


def _twice(where: str, names: list[str]) -> list[tuple[str, str]]:
    return [
        (f"{where}[{i}].name", f"a second one named '{n}'") for i, n in enumerate(names) if n in names[:i]
    ]


def _unknown_reason(what: str, name: str, known: Collection[str]) -> str:
    shown = ", ".join(sorted(known)[:20]) or "none declared"
    return f"unknown {what} '{name}' (known: {shown})"


def _unknown(path: str, names: Collection[str], known: Collection[str], what: str) -> list[tuple[str, str]]:
    """Each of `names` (a list at `path`) that is not `known`, named by its position."""
    return [
        (f"{path}[{i}]", _unknown_reason(what, name, known))
        for i, name in enumerate(names)
        if name not in known
    ]
