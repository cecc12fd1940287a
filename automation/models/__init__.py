"""Durable state of the engine: definitions and their versions, runs, steps, config, the fleet's records,
alerts, scaling targets, incidents, API tokens and the audit log."""

from automation.models.access import ApiToken, AuditEntry
from automation.models.alerting import (
    Alert,
    AlertGroup,
    AlertingConfig,
    AlertLog,
    AlertRule,
    MetricSample,
    MetricSeries,
    Silence,
)
from automation.models.config import EngineConfig
from automation.models.definitions import Workflow, WorkflowVersion
from automation.models.fleet import BeatSlot, BrokerEpoch, DeadLetter, WorkerNode
from automation.models.incidents import (
    Change,
    Escalation,
    EscalationConfig,
    EscalationPage,
    Incident,
    IncidentAlert,
    IncidentEvent,
    Remediation,
    RemediationConfig,
    Service,
)
from automation.models.runs import RunTally, StepRun, WorkflowRun
from automation.models.scaling import ScalingDecision, ScalingState, ScalingTarget

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Alert",
    "AlertGroup",
    "AlertLog",
    "AlertRule",
    "AlertingConfig",
    "MetricSample",
    "MetricSeries",
    "Silence",
    "BeatSlot",
    "Change",
    "BrokerEpoch",
    "DeadLetter",
    "EngineConfig",
    "Escalation",
    "EscalationConfig",
    "EscalationPage",
    "Incident",
    "IncidentAlert",
    "IncidentEvent",
    "Remediation",
    "RemediationConfig",
    "Service",
    "ScalingDecision",
    "ScalingState",
    "ScalingTarget",
    "RunTally",
    "StepRun",
    "WorkerNode",
    "Workflow",
    "WorkflowRun",
    "WorkflowVersion",
]
