"""Scaling policies (reactive HPA, predictive, hybrid), the trace-replay simulator and cost matching.

Plotting lives in `automation.scaling.plot` so importing this package does not load matplotlib.
"""

from __future__ import annotations

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
    ForecastTape,
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

__all__ = [
    "REACTIVE_TARGETS",
    "CostMatch",
    "CostPoint",
    "Decision",
    "DecisionContext",
    "ForecastTape",
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
