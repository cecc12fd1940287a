"""Scaling: the policies (reactive HPA, predictive, hybrid), the trace-replay simulator and the frontier
comparison (pure, on pandas), and the domain that acts on them: targets, the forecasting loop, its
decision log.

The policy names below load on first use (PEP 562), so the domain's leaf modules (`choices`,
`definitions`) and the models importing them do not load pandas. Plotting lives in
`automation.scaling.plot` so importing the policies does not load matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automation.scaling.comparison import (
        HYBRID_TARGETS,
        POLICY_QUANTILES,
        REACTIVE_TARGETS,
        CostMatch,
        CostPoint,
        FrontierComparison,
        FrontierMatch,
        FrontierReport,
        capacity_at_percentile,
        cost_match,
        match_frontiers,
        reactive_under_at,
        sweep_frontier,
    )
    from automation.scaling.policies import (
        Decision,
        DecisionContext,
        ForecastTape,
        HybridPolicy,
        PredictivePolicy,
        PredictiveSettings,
        ReactivePolicy,
        ScalingLimits,
        ScalingPolicy,
        TrustSettings,
        make_policy,
        policy_names,
        register_policy,
    )
    from automation.scaling.simulator import SimulationResult, SimulationSettings, simulate

_HOMES = {
    "comparison": (
        "HYBRID_TARGETS",
        "POLICY_QUANTILES",
        "REACTIVE_TARGETS",
        "CostMatch",
        "CostPoint",
        "FrontierComparison",
        "FrontierMatch",
        "FrontierReport",
        "capacity_at_percentile",
        "cost_match",
        "match_frontiers",
        "reactive_under_at",
        "sweep_frontier",
    ),
    "policies": (
        "Decision",
        "DecisionContext",
        "ForecastTape",
        "HybridPolicy",
        "PredictivePolicy",
        "PredictiveSettings",
        "ReactivePolicy",
        "ScalingLimits",
        "ScalingPolicy",
        "TrustSettings",
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
    "HYBRID_TARGETS",
    "POLICY_QUANTILES",
    "REACTIVE_TARGETS",
    "CostMatch",
    "CostPoint",
    "Decision",
    "DecisionContext",
    "ForecastTape",
    "FrontierComparison",
    "FrontierMatch",
    "FrontierReport",
    "HybridPolicy",
    "PredictivePolicy",
    "PredictiveSettings",
    "ReactivePolicy",
    "ScalingLimits",
    "ScalingPolicy",
    "SimulationResult",
    "SimulationSettings",
    "TrustSettings",
    "capacity_at_percentile",
    "cost_match",
    "make_policy",
    "match_frontiers",
    "policy_names",
    "reactive_under_at",
    "register_policy",
    "simulate",
    "sweep_frontier",
]
