"""The lifecycle rules of one alert (inactive → pending → firing → resolved), without I/O: which state an
observation leads to, when a firing may resolve, how state changes feed flap damping. The stored alerts
(`services/alerts.py`) and the backtest (`backtest.py`) both decide with these functions."""

from __future__ import annotations

from collections.abc import Sequence

from automation.alerting.choices import AlertState
from automation.alerting.flapping import FlapPolicy

#: Recent change times kept per alert (the flap window needs no more).
MAX_CHANGES = 100


def observed_state(before: str, *, holds: bool, active_since: float | None) -> str:
    """The state after an observation: firing when the condition holds with its duration met; pending when
    it holds without its duration yet (a firing alert stays firing); otherwise unchanged (expiry is
    `resolves`' business)."""
    if holds:
        return AlertState.FIRING
    if active_since is not None:
        return AlertState.PENDING if before != AlertState.FIRING else AlertState.FIRING
    return before


def resolves(last_seen_at: float | None, now: float, keep_firing_for: float) -> bool:
    """Whether a firing alert whose condition no longer holds resolves now: once `keep_firing_for` has
    passed since its condition last held."""
    # The stored time may come back rounded up to the microsecond: a millisecond's tolerance.
    return now + 0.001 - (last_seen_at if last_seen_at is not None else 0.0) >= keep_firing_for


def record_change(changes: Sequence[float], now: float, flap: FlapPolicy) -> tuple[list[float], bool]:
    """The change times kept after a state change at `now`, and whether the alert is flapping then."""
    kept = [*flap.recent(changes, now), now][-MAX_CHANGES:]
    return kept, flap.is_flapping(kept, now)
