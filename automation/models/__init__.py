"""Durable state of the engine: definitions and their versions, runs, steps, engine settings."""

from automation.models.definitions import Workflow, WorkflowVersion
from automation.models.engine import EngineSettings
from automation.models.runs import StepRun, WorkflowRun

__all__ = ["EngineSettings", "StepRun", "Workflow", "WorkflowRun", "WorkflowVersion"]
