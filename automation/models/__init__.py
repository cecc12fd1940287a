"""Durable state of the engine: definitions and their versions, runs, steps, config, the fleet's records."""

from automation.models.config import EngineConfig
from automation.models.definitions import Workflow, WorkflowVersion
from automation.models.fleet import BeatSlot, BrokerEpoch, DeadLetter, WorkerNode
from automation.models.runs import StepRun, WorkflowRun

__all__ = [
    "BeatSlot",
    "BrokerEpoch",
    "DeadLetter",
    "EngineConfig",
    "StepRun",
    "WorkerNode",
    "Workflow",
    "WorkflowRun",
    "WorkflowVersion",
]
