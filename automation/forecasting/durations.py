"""Parsing of human durations (`90s`, `5m`, `1h30m`, `7d`) into `pandas.Timedelta`."""

from __future__ import annotations

import re

import pandas as pd

from automation.forecasting.errors import DurationError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, *, allow_zero: bool = False) -> pd.Timedelta:
    """`1h30m` -> Timedelta(minutes=90); units s, m, h, d, w; raises DurationError otherwise."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise DurationError(text, "empty")
    position = 0
    seconds = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(cleaned):
        raise DurationError(text, "expected a number followed by a unit s, m, h, d or w, e.g. 10m or 1h30m")
    if seconds == 0 and not allow_zero:
        raise DurationError(text, "must be positive")
    return pd.Timedelta(seconds=seconds)


def format_duration(value: pd.Timedelta) -> str:
    """Timedelta(minutes=90) -> `1h30m` (the inverse of `parse_duration` for whole seconds)."""
    remaining = int(value.total_seconds())
    if remaining == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts)
