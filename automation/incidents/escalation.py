"""Escalation without I/O: which policy an incident gets, what its escalation does at a moment, where it
stands after a page, and whom a level reaches.

The policy rule: the first policy, in the document's order, whose `match` holds for the incident when its
escalation starts (right after it opens). A match holds when each condition it gives holds: `services`
(one of the incident's services is listed), `owners` (one of its services is owned by a listed owner in
the services document), `min_severity` (the incident is at least that severe). A policy without `match`
takes every incident: put it last.

A running escalation keeps its policy's levels, timeouts and repeats as they were when it was chosen;
users, schedules and receivers are read when each level is paged (whoever is on call then).

The timers: a level is paged when due; the next level is due its `timeout` after that page (a level that
reached nobody hands on at once). After the last level the policy starts over from the first, `repeat`
times; the escalation is exhausted once the last page of the last pass has timed out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from automation.incidents.choices import EscalationStep, TargetKind
from automation.incidents.lifecycle import highest_severity

__all__ = [
    "ESCALATE_TASK",
    "Level",
    "Match",
    "Policy",
    "Position",
    "Reach",
    "Recipient",
    "Target",
    "after_page",
    "choose_policy",
    "decide",
    "reach",
]

#: The task that advances due escalations (Beat's tick, and the nudge sent when an incident opens).
ESCALATE_TASK = "automation.incidents.escalate"


@dataclass(frozen=True)
class Target:
    kind: str  # a TargetKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Level:
    targets: tuple[Target, ...]
    #: Seconds after this level's page before the next level is paged.
    timeout: float


@dataclass(frozen=True)
class Match:
    services: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()
    min_severity: str | None = None

    def why(self, *, services: Collection[str], owners: Collection[str], severity: str) -> str | None:
        """Why the incident matches (None when it does not)."""
        reasons = []
        if self.services:
            found = sorted(self.services.intersection(services))
            if not found:
                return None
            reasons.append(f"service {', '.join(found)}")
        if self.owners:
            found = sorted(self.owners.intersection(owners))
            if not found:
                return None
            reasons.append(f"owner {', '.join(found)}")
        if self.min_severity is not None:
            if highest_severity([severity, self.min_severity]) != severity:
                return None
            reasons.append(f"severity {severity} (at least {self.min_severity})")
        return ", ".join(reasons) or "any incident"


@dataclass(frozen=True)
class Policy:
    name: str
    levels: tuple[Level, ...]
    repeat: int = 0
    match: Match = field(default_factory=Match)

    @property
    def passes(self) -> int:
        return self.repeat + 1

    def as_json(self) -> dict[str, Any]:
        """What an escalation keeps of its policy (a later document does not change a running one)."""
        return {
            "name": self.name,
            "repeat": self.repeat,
            "levels": [
                {"timeout": level.timeout, "targets": [[t.kind, t.name] for t in level.targets]}
                for level in self.levels
            ],
        }

    @staticmethod
    def from_json(kept: Mapping[str, Any]) -> Policy:
        levels = tuple(
            Level(tuple(Target(str(k), str(n)) for k, n in level["targets"]), float(level["timeout"]))
            for level in kept["levels"]
        )
        return Policy(str(kept["name"]), levels, int(kept["repeat"]))


def choose_policy(
    policies: Iterable[Policy], *, services: Collection[str], owners: Collection[str], severity: str
) -> tuple[Policy, str] | None:
    """The first policy whose match holds, and why; None when none does."""
    for policy in policies:
        reason = policy.match.why(services=services, owners=owners, severity=severity)
        if reason is not None:
            return policy, reason
    return None


@dataclass(frozen=True)
class Position:
    """The next page: level `level` (0-based) of pass `round` (0-based). `level == len(levels)` is past
    the end: nothing left to page."""

    level: int
    round: int

    def describe(self, policy: Policy) -> str:
        text = f"level {self.level + 1} of {len(policy.levels)}"
        return text + (f", pass {self.round + 1} of {policy.passes}" if policy.repeat else "")


def decide(
    *, triggered: bool, policy: Policy | None, position: Position, due: float | None, now: float
) -> str:
    """The EscalationStep to take now."""
    if not triggered:
        return EscalationStep.STOP
    if due is None or now < due:
        return EscalationStep.WAIT
    if policy is None:
        return EscalationStep.CHOOSE
    if position.level >= len(policy.levels):
        return EscalationStep.EXHAUST
    return EscalationStep.PAGE


def after_page(
    policy: Policy, position: Position, *, paged_at: float, reached: bool
) -> tuple[Position, float]:
    """Where the escalation stands once `position` was paged at `paged_at`, and when that is due."""
    wait = policy.levels[position.level].timeout if reached else 0.0
    if position.level + 1 < len(policy.levels):
        following = Position(position.level + 1, position.round)
    elif position.round < policy.repeat:
        following = Position(0, position.round + 1)
    else:
        following = Position(len(policy.levels), position.round)
    return following, paged_at + wait


@dataclass(frozen=True)
class Recipient:
    receiver: str
    #: Whom the page is for (a user, or the receiver itself): the acknowledgement link names them.
    who: str
    #: How the level reached them: `user alice`, `alice on call for schedule primary`, `receiver team`.
    via: str


@dataclass(frozen=True)
class Reach:
    recipients: tuple[Recipient, ...]
    #: Why a target reached nobody.
    skipped: tuple[str, ...]


def reach(
    level: Level,
    *,
    users: Mapping[str, tuple[str, ...]],
    on_call: Callable[[str], str | None],
    receivers: Collection[str],
) -> Reach:
    """Whom `level` pages: each target's receivers (a user's own, those of whoever `on_call(schedule)`
    names), each receiver once; `receivers` are those the alerting document declares."""
    found: dict[str, Recipient] = {}
    skipped: list[str] = []

    def add(receiver: str, who: str, via: str) -> None:
        if receiver not in receivers:
            skipped.append(f"receiver {receiver} ({via}) is not in the alerting document")
        else:
            found.setdefault(receiver, Recipient(receiver, who, via))

    for target in level.targets:
        if target.kind == TargetKind.RECEIVER:
            add(target.name, target.name, f"receiver {target.name}")
            continue
        user = target.name if target.kind == TargetKind.USER else on_call(target.name)
        if user is None:
            skipped.append(f"nobody is on call for schedule {target.name}")
            continue
        via = (
            f"user {user}" if target.kind == TargetKind.USER else f"{user} on call for schedule {target.name}"
        )
        if user not in users:
            skipped.append(f"user {user} ({via}) is not declared")
            continue
        for receiver in users[user]:
            add(receiver, user, via)
    return Reach(tuple(found.values()), tuple(dict.fromkeys(skipped)))
