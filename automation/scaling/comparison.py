"""Cost-matched comparison: a policy against the reactive cost curve (replica-hours vs under-provisioned
minutes over a sweep of utilisation targets), interpolated at the policy's own replica-hours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

REACTIVE_TARGETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, kw_only=True)
class CostPoint:
    """One run: what it cost and how often it was short."""

    label: str
    replica_hours: float
    under_provisioned_minutes: float


@dataclass(frozen=True, kw_only=True)
class CostMatch:
    """`ratio` = the policy's under-provisioned minutes / the reactive curve's at the same replica-hours;
    NaN (and `inside` False) when the policy's replica-hours fall outside the curve."""

    policy: CostPoint
    reactive_under_at_same_cost: float
    ratio: float
    inside: bool


def reactive_under_at(curve: Sequence[CostPoint], replica_hours: float) -> float:
    """Linear interpolation between the two reactive points around `replica_hours` (NaN outside)."""
    points = sorted(curve, key=lambda p: p.replica_hours)
    xs = np.array([p.replica_hours for p in points])
    ys = np.array([p.under_provisioned_minutes for p in points])
    if len(xs) < 2 or replica_hours < xs[0] or replica_hours > xs[-1]:
        return math.nan
    return float(np.interp(replica_hours, xs, ys))


def cost_match(curve: Sequence[CostPoint], policy: CostPoint) -> CostMatch:
    reference = reactive_under_at(curve, policy.replica_hours)
    if math.isnan(reference):
        return CostMatch(policy=policy, reactive_under_at_same_cost=math.nan, ratio=math.nan, inside=False)
    ratio = (
        policy.under_provisioned_minutes / reference
        if reference > 0
        else (0.0 if policy.under_provisioned_minutes == 0 else math.inf)
    )
    return CostMatch(policy=policy, reactive_under_at_same_cost=reference, ratio=ratio, inside=True)
