"""The decisions the incident services take, without I/O: what each operator step does from each status,
and an incident's severity from its alerts'."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from automation.choices import AlertSeverity
from automation.incidents.choices import EventKind, IncidentStatus

__all__ = ["ACKNOWLEDGE", "MITIGATE", "RESOLVE", "Step", "highest_severity", "more_severe"]


@dataclass(frozen=True)
class Step:
    """One operator step: the statuses it is taken from, where it leads, and the statuses in which it is
    already done (asked again, it changes nothing: idempotent); from any other status it is refused."""

    name: str
    past: str  # "acknowledged": for messages
    leaves: tuple[str, ...]
    to: str
    done: tuple[str, ...]
    event: str

    def outcome(self, status: str) -> str:
        """`take`, `done` or `refused` from `status`."""
        if status in self.leaves:
            return "take"
        return "done" if status in self.done else "refused"

    def refusal(self, incident: int | str, status: str) -> str:
        return f"incident {incident} is {status}: it cannot be {self.past}"


ACKNOWLEDGE = Step(
    "acknowledge",
    "acknowledged",
    leaves=(IncidentStatus.TRIGGERED,),
    to=IncidentStatus.ACKNOWLEDGED,
    done=(IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED),
    event=EventKind.ACKNOWLEDGED,
)
MITIGATE = Step(
    "mitigate",
    "mitigated",
    leaves=(IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED),
    to=IncidentStatus.MITIGATED,
    done=(IncidentStatus.MITIGATED,),
    event=EventKind.MITIGATED,
)
RESOLVE = Step(
    "resolve",
    "resolved",
    leaves=IncidentStatus.ACTIVE,
    to=IncidentStatus.RESOLVED,
    done=IncidentStatus.TERMINAL,
    event=EventKind.RESOLVED,
)

#: Most severe first.
_RANK = [s.value for s in AlertSeverity]


def highest_severity(severities: Iterable[str]) -> str:
    """The most severe of `severities` (unknown values count as the least); medium when there is none."""
    known = [s for s in severities if s in _RANK]
    return min(known, key=_RANK.index) if known else AlertSeverity.MEDIUM.value


def more_severe(severity: str, than: str) -> bool:
    """Whether `severity` ranks above `than` (a known severity ranks above an unknown one)."""
    return severity in _RANK and (than not in _RANK or _RANK.index(severity) < _RANK.index(than))
