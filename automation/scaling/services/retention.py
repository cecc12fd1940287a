"""Retention of the scaling decision log: one row per target and tick (1,000 targets at 60 s write 1.44M
rows a day), kept `DECISION_SECONDS`. Per target, so the (target, at) index serves each delete."""

from __future__ import annotations

from datetime import UTC, datetime

from automation.models import ScalingDecision, ScalingTarget

#: How long decisions are kept (the plot and the capacity plan read at most this far back).
DECISION_SECONDS = 14 * 86_400.0


def purge_decisions(now: float, *, keep: float = DECISION_SECONDS) -> int:
    horizon = datetime.fromtimestamp(now - keep, tz=UTC)
    removed = 0
    for target_id in ScalingTarget.objects.values_list("pk", flat=True):
        count, _ = ScalingDecision.objects.filter(target_id=target_id, at__lt=horizon).delete()
        removed += count
    return removed
