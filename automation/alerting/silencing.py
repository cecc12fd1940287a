"""Silences: which active silence, if any, mutes a label set at a time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from automation.alerting.matchers import matches_all
from automation.alerting.series import Matcher


@dataclass(frozen=True)
class ActiveSilence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float

    def mutes(self, labels: Mapping[str, str], at: float) -> bool:
        return self.starts_at <= at < self.ends_at and matches_all(self.matchers, labels)


def silenced_by(labels: Mapping[str, str], silences: Iterable[ActiveSilence], at: float) -> str | None:
    """The id of the first silence muting `labels` at `at` (None: not silenced)."""
    for silence in silences:
        if silence.mutes(labels, at):
            return silence.id
    return None
