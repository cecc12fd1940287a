"""Workflow definitions: one schema for Python, YAML and JSON, validated before anything is stored."""

from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition

__all__ = ["ActionDefinition", "InputDefinition", "WorkflowDefinition"]
