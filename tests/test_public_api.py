"""The public API: `__all__` is pinned, and the seed's examples run as written (imports added)."""

from __future__ import annotations

import os
from typing import Any

import pytest

import automation


def test_public_names_are_pinned() -> None:
    assert automation.__all__ == [
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
        "StateError",
        "WorkflowDefinition",
    ]
    for name in automation.__all__:
        assert getattr(automation, name).__name__ == name


def test_importing_the_package_does_not_set_django_up() -> None:
    import subprocess
    import sys

    code = "import sys, automation; automation.Priority; assert 'django.db.models' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "DJANGO_SETTINGS_MODULE": ""})


def test_bad_config_is_refused_with_the_field() -> None:
    from automation.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        automation.AutomationConfig(max_concurrent_actions=0, tiemout_seconds=3)
    fields = dict(caught.value.errors)
    assert "max_concurrent_actions" in fields and "tiemout_seconds" in fields


@pytest.fixture
def restore_config(engine: Any) -> Any:
    """These tests apply configs of their own; the other tests expect the shared engine's back."""
    yield
    from automation.config.apply import apply_config

    apply_config(engine.config)


@pytest.mark.usefixtures("restore_config")
def test_seed_examples_run_as_written() -> None:
    from automation import (
        ActionDefinition,
        AlertSeverity,
        AutomationConfig,
        AutomationEngine,
        AutomationLevel,
        Priority,
        WorkflowDefinition,
    )

    # --- Configuration de Base ---
    config = AutomationConfig(
        level=AutomationLevel.AUTONOMOUS,
        max_concurrent_actions=50,
        retry_attempts=5,
        timeout_seconds=900,
        monitoring_interval=15,
        enable_predictive_scaling=True,
        enable_ml_optimization=True,
    )
    engine = AutomationEngine(config)

    # --- Création d'un Workflow Simple ---
    restart_action = ActionDefinition(
        name="restart_service",
        action_type="infrastructure",
        parameters={"service_name": "spotify-api", "graceful": True, "wait_for_health": True},
        timeout_seconds=300,
        retry_attempts=3,
    )
    workflow = WorkflowDefinition(
        name="service_restart_workflow",
        description="Redémarre un service avec vérifications de santé",
        actions=[restart_action],
        conditions=["service_health_check_failed"],
        priority=Priority.HIGH,
    )
    engine.workflow_manager.register_workflow(workflow)

    # --- Exemple 1: Automatisation de Déploiement ML ---
    ml_deployment_workflow = WorkflowDefinition(
        name="ml_model_deployment",
        description="Déploiement automatisé avec validation A/B",
        actions=[
            ActionDefinition(
                name="validate_model",
                action_type="ml",
                parameters={
                    "model_path": "${model_path}",
                    "validation_dataset": "${validation_dataset}",
                    "acceptance_threshold": 0.92,
                },
            )
        ],
    )

    assert AlertSeverity.HIGH.value == "high"
    stored = engine.workflow_manager.get_workflow("service_restart_workflow")
    assert stored.priority is Priority.HIGH
    assert stored.actions[0].action_type == "infrastructure.restart_service"
    assert stored.actions[0].timeout_seconds == 300 and stored.actions[0].retry_attempts == 3
    assert ml_deployment_workflow.actions[0].resolved_type == "ml.validate_model"


@pytest.mark.usefixtures("restore_config")
def test_config_fields_take_effect() -> None:
    from django_celery_beat.models import PeriodicTask

    from automation import AutomationConfig, AutomationEngine, AutomationLevel, WorkflowDefinition
    from automation.config import current_config
    from automation.coordination import get_coordinator
    from automation.coordination.redis import LIMIT_KEY
    from automation.runs.dispatch import latest_version

    engine = AutomationEngine(
        AutomationConfig(
            level=AutomationLevel.MANUAL,
            max_concurrent_actions=7,
            retry_attempts=4,
            timeout_seconds=111,
            monitoring_interval=23,
        )
    )
    assert current_config().level is AutomationLevel.MANUAL
    assert int(get_coordinator().client.get(LIMIT_KEY)) == 7  # type: ignore[attr-defined]
    task = PeriodicTask.objects.get(name="automation-redispatch-stalled-runs")
    assert task.interval.every == 23
    engine.register_workflow(
        WorkflowDefinition.from_document(
            {
                "name": "defaults-demo",
                "actions": [{"name": "pause", "action_type": "control.wait", "parameters": {"seconds": 0}}],
            }
        )
    )
    stored: Any = latest_version("defaults-demo").definition["actions"][0]
    assert (stored["timeout_seconds"], stored["retry_attempts"]) == (111, 4)
