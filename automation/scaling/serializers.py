"""JSON views of scaling targets and their decision log, for API answers and the CLI."""

from __future__ import annotations

from typing import Any

from automation.models import ScalingDecision, ScalingTarget
from automation.scaling.choices import TargetStatus


def target_status(target: ScalingTarget, scaling_on: bool) -> str:
    """Disabled when the target is, or when predictive scaling is off (then nothing is decided)."""
    return TargetStatus.ACTIVE if scaling_on and target.enabled else TargetStatus.DISABLED


def target_json(target: ScalingTarget, scaling_on: bool) -> dict[str, Any]:
    last = target.decisions.order_by("-at", "-id").first()
    return {
        "name": target.name,
        "status": target_status(target, scaling_on),
        "definition": target.document,
        "last_decision": decision_json(last) if last is not None else None,
    }


def decision_json(decision: ScalingDecision) -> dict[str, Any]:
    return {
        "at": decision.at.isoformat(),
        "slot": decision.slot,
        "policy": decision.policy,
        "basis": decision.basis,
        "action": decision.action,
        "observed_load": decision.observed_load,
        "forecast": None
        if decision.forecast_at is None
        else {
            "at": decision.forecast_at.isoformat(),
            "mean": decision.forecast_mean,
            "lower": decision.forecast_lower,
            "upper": decision.forecast_upper,
            "model": decision.model,
        },
        "current_replicas": decision.current_replicas,
        "desired_replicas": decision.desired_replicas,
        "reasons": list(decision.reasons),
        "run_id": str(decision.run_id) if decision.run_id else None,
    }


def decisions_json(target: ScalingTarget, limit: int) -> dict[str, Any]:
    """The target's newest `limit` decisions, oldest first."""
    newest = list(target.decisions.order_by("-at", "-id")[:limit])
    return {"target": target.name, "decisions": [decision_json(d) for d in reversed(newest)]}
