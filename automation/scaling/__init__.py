"""Scaling: the policies (reactive HPA, predictive, hybrid), the trace-replay simulator and cost matching
(pure, on pandas), and the domain that acts on them: targets, the forecasting loop, its decision log.

The policy names below load on first use (PEP 562), so the domain's leaf modules (`choices`,
`definitions`) and the models importing them do not load pandas. Plotting lives in
`automation.scaling.plot` so importing the policies does not load matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automation.scaling.comparison import (
        REACTIVE_TARGETS,
        CostMatch,
        CostPoint,
        cost_match,
        reactive_under_at,
    )
    from automation.scaling.policies import (
        Decision,
        DecisionContext,
        HybridPolicy,
        PredictivePolicy,
        PredictiveSettings,
        ReactivePolicy,
        ScalingLimits,
        ScalingPolicy,
        make_policy,
        policy_names,
        register_policy,
    )
    from automation.scaling.simulator import SimulationResult, SimulationSettings, simulate

_HOMES = {
    "comparison": ("REACTIVE_TARGETS", "CostMatch", "CostPoint", "cost_match", "reactive_under_at"),
    "policies": (
        "Decision",
        "DecisionContext",
        "HybridPolicy",
        "PredictivePolicy",
        "PredictiveSettings",
        "ReactivePolicy",
        "ScalingLimits",
        "ScalingPolicy",
        "make_policy",
        "policy_names",
        "register_policy",
    ),
    "simulator": ("SimulationResult", "SimulationSettings", "simulate"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'automation.scaling' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"automation.scaling.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "REACTIVE_TARGETS",
    "CostMatch",
    "CostPoint",
    "Decision",
    "DecisionContext",
    "HybridPolicy",
    "PredictivePolicy",
    "PredictiveSettings",
    "ReactivePolicy",
    "ScalingLimits",
    "ScalingPolicy",
    "SimulationResult",
    "SimulationSettings",
    "cost_match",
    "make_policy",
    "policy_names",
    "reactive_under_at",
    "register_policy",
    "simulate",
]
