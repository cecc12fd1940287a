"""Scaling policies (reactive HPA, predictive, hybrid), the trace-replay simulator and the frontier
comparison.

Plotting lives in `automation.scaling.plot` so importing this package does not load matplotlib.
"""

from __future__ import annotations

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
