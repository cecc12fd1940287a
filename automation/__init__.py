"""Workflow automation for operations: definitions compiled to Celery canvas, durable runs, real actions.

The public API is re-exported here; importing the package does not set Django up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ActionDefinition",
    "ActionError",
    "AlertSeverity",
    "AutomationConfig",
    "AutomationEngine",
    "AutomationError",
    "AutomationLevel",
    "ConfigurationError",
    "DefinitionError",
    "ForbiddenError",
    "InputDefinition",
    "InputError",
    "NotFoundError",
    "Priority",
    "RunHandle",
    "RunTimeout",
    "SourceError",
    "StateError",
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
    "RunTimeout": "automation.engine",
    "ActionError": "automation.errors",
    "AutomationError": "automation.errors",
    "ConfigurationError": "automation.errors",
    "DefinitionError": "automation.errors",
    "ForbiddenError": "automation.errors",
    "InputError": "automation.errors",
    "NotFoundError": "automation.errors",
    "SourceError": "automation.errors",
    "StateError": "automation.errors",
}

if TYPE_CHECKING:
    from automation.choices import AlertSeverity, AutomationLevel, Priority
    from automation.config.schema import AutomationConfig
    from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition
    from automation.engine import AutomationEngine, RunHandle, RunTimeout
    from automation.errors import (
        ActionError,
        AutomationError,
        ConfigurationError,
        DefinitionError,
        ForbiddenError,
        InputError,
        NotFoundError,
        SourceError,
        StateError,
    )


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        import importlib

        value = getattr(importlib.import_module(_LOCATIONS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'automation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
