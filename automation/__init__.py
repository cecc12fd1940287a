"""Workflow automation for operations: definitions compiled to Celery canvas, durable runs, real actions.

The public API is re-exported here; importing the package does not set Django up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ActionDefinition",
    "AlertSeverity",
    "AutomationConfig",
    "AutomationEngine",
    "AutomationError",
    "AutomationLevel",
    "DefinitionError",
    "InputDefinition",
    "Priority",
    "RunHandle",
    "WorkflowDefinition",
]

_LOCATIONS = {
    "ActionDefinition": "automation.definitions.schema",
    "InputDefinition": "automation.definitions.schema",
    "WorkflowDefinition": "automation.definitions.schema",
    "AlertSeverity": "automation.choices",
    "AutomationLevel": "automation.choices",
    "Priority": "automation.choices",
    "AutomationConfig": "automation.config.schema",
    "AutomationEngine": "automation.engine",
    "RunHandle": "automation.engine",
    "AutomationError": "automation.errors",
    "DefinitionError": "automation.errors",
}

if TYPE_CHECKING:
    from automation.choices import AlertSeverity, AutomationLevel, Priority
    from automation.config.schema import AutomationConfig
    from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition
    from automation.engine import AutomationEngine, RunHandle
    from automation.errors import AutomationError, DefinitionError


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        import importlib

        value = getattr(importlib.import_module(_LOCATIONS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'automation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
