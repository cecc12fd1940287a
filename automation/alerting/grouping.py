"""When a notification group is due, as Alertmanager decides it, without I/O: the stored groups
(`services/groups.py`) and the backtest (`backtest.py`) both ask `due`.

- the first notification waits `group_wait` after the first alert joined (more may join meanwhile);
- a change (an alert fired or resolved) is notified `group_interval` after the previous notification;
- nothing changed: the firing alerts are notified again after `repeat_interval`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from automation.alerting.matchers import digest
from automation.alerting.routing import Timings


@dataclass(frozen=True)
class GroupState:
    """What a group remembers between flushes."""

    #: When the first alert joined since the last notification (None: nobody joined yet).
    waiting_since: float | None = None
    last_notified_at: float | None = None
    #: `firing_digest` of the alerts the last notification carried.
    last_digest: str = ""


@dataclass(frozen=True)
class Member:
    """An audible alert of the group: firing (since `fired_at`), or resolved and not notified yet."""

    fingerprint: str
    firing: bool
    fired_at: float | None


def firing_digest(members: Sequence[Member]) -> str:
    """Names the firing alerts of a group (each fingerprint with its firing's start)."""
    firing = sorted((m for m in members if m.firing), key=lambda m: m.fingerprint)
    return digest([(m.fingerprint, m.fired_at) for m in firing])


#: Times come back from the database rounded to the microsecond (possibly up): a group due "now" must not
#: miss by that rounding (group_wait 0 would then wait for the next flush).
TOLERANCE = 0.001


def due(state: GroupState, members: Sequence[Member], now: float, timings: Timings) -> tuple[bool, str]:
    """(due, digest of the firing members). Resolved members are those not notified yet (a notification
    removes them from the group), so any is a change."""
    content = firing_digest(members)
    firing = any(m.firing for m in members)
    if state.last_notified_at is None:
        if not firing:
            return False, content
        waiting = state.waiting_since if state.waiting_since is not None else now
        return now + TOLERANCE >= waiting + timings.group_wait, content
    since = now + TOLERANCE - state.last_notified_at
    if content != state.last_digest or any(not m.firing for m in members):
        return since >= timings.group_interval, content
    return firing and since >= timings.repeat_interval, content
