"""Capacity plans of the stored scaling targets: each target's load history read from its source (as the
loop reads it, over the load's `history`), planned by `automation.scaling.capacity`. Reads only. Celery
targets have no plan: their load is a queue read live from the broker, with no history to forecast."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from automation.errors import AutomationError
from automation.models import ScalingState, ScalingTarget
from automation.scaling.capacity import CapacityPlan, CapacitySettings, CapacitySpec, plan_capacity
from automation.scaling.choices import TargetKind
from automation.scaling.load import read_load
from automation.scaling.services.targets import target_definition

__all__ = ["plan_targets"]

logger = logging.getLogger("automation.scaling")


def plan_targets(settings: CapacitySettings, *, now: float | None = None) -> list[CapacityPlan]:
    """One plan per stored service target (enabled or not), by name. A target whose source cannot answer
    gets a plan without data that says why."""
    at = time.time() if now is None else now
    plans = []
    states = {s.target_id: s for s in ScalingState.objects.all()}
    for target in ScalingTarget.objects.exclude(kind=TargetKind.CELERY).order_by("name"):
        definition = target_definition(target)
        state = states.get(target.pk)
        spec = CapacitySpec(
            name=definition.name,
            capacity_per_replica=definition.capacity_per_replica or 1.0,
            target_utilization=definition.target_utilization,
            min_replicas=definition.min_replicas,
            max_replicas=max(definition.max_replicas, definition.min_replicas, 1),
            current_replicas=state.requested_replicas if state is not None else None,
            unit=definition.load.unit,
        )
        problem = ""
        try:
            history = read_load(definition.load, at)
            index = pd.to_datetime(history.start + history.step * np.arange(len(history.values)), unit="s")
            series = pd.Series(history.values, index=index)
        except AutomationError as exc:
            problem = f"the load could not be read: {str(exc)[:300]}"
            series = pd.Series([np.nan], index=pd.to_datetime([at], unit="s"))
        try:
            plan = plan_capacity(spec, series, settings)
        except Exception as exc:  # noqa: BLE001 - one target's plan must not take the others down
            logger.exception("capacity: planning %s failed", definition.name)
            problem = f"the plan failed: {type(exc).__name__}: {str(exc)[:300]}"
            plan = plan_capacity(spec, series.iloc[:0], settings)
        if problem:
            plan.notes.insert(0, problem)
        plans.append(plan)
    return plans
