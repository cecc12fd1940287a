"""A claim on a step: who executes it and how (no database here, so tests and tools can build one)."""

from __future__ import annotations

from dataclasses import dataclass

from automation.fleet.identity import Claimant


@dataclass(frozen=True)
class Claim:
    """The executor, a token of its own, the token of this message's previous execution (retried after a
    database error), and the message's generation."""

    claimant: Claimant
    token: str
    previous: str = ""
    generation: int = 0
