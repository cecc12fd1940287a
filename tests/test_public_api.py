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
        "SourceError",
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
        DefinitionError,
        Priority,
        WorkflowDefinition,
    )
    from automation.actions.registry import known_action_types
    from automation.errors import NotFoundError
    from automation.models import Workflow
    from automation.templating import iter_references

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

    # --- Configuration d'Alertes Intelligentes ---
    alert_config = {
        "name": "high_cpu_usage",
        "condition": "cpu_usage > 80 AND duration > 5m",
        "severity": AlertSeverity.HIGH,
        "actions": [
            {
                "type": "scale_infrastructure",
                "parameters": {
                    "service_name": "recommendation-engine",
                    "scale_factor": 1.5,
                    "max_instances": 20,
                },
            }
        ],
        "cooldown_period": 600,  # 10 minutes
    }
    engine.register_alert_workflow(alert_config)

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

    from automation.models import AlertRule

    rule = AlertRule.objects.get(name="high_cpu_usage")
    assert rule.severity == "high" and rule.document["condition"] == "cpu_usage > 80 AND duration > 5m"
    assert rule.document["cooldown_period"] == 600
    remediation = engine.workflow_manager.get_workflow("alert.high_cpu_usage")
    assert remediation.actions[0].action_type == "infrastructure.scale_service"
    assert remediation.actions[0].parameters["scale_factor"] == 1.5

    stored = engine.workflow_manager.get_workflow("service_restart_workflow")
    assert stored.priority is Priority.HIGH and stored.conditions == workflow.conditions
    # stored under its full type, which is a registered action (the family plus the step's name)
    assert stored.actions[0].action_type == restart_action.resolved_type
    assert stored.actions[0].action_type in known_action_types()
    assert stored.actions[0].timeout_seconds == 300 and stored.actions[0].retry_attempts == 3

    # Exemple 1 builds; what the engine reads in it: an `ml` step, run inputs behind the `${...}` values,
    # time limit and retries left to the configuration, and a document that reads back to the same thing.
    ml_action = ml_deployment_workflow.actions[0]
    assert ml_action.resolved_type.split(".") == [ml_action.action_type, ml_action.name]
    references = {path: ref.input for path, ref in iter_references(ml_action.parameters)}
    assert references == {".model_path": "model_path", ".validation_dataset": "validation_dataset"}
    assert (ml_action.timeout_seconds, ml_action.retry_attempts, ml_action.depends_on) == (None, None, None)
    assert WorkflowDefinition.from_document(ml_deployment_workflow.to_document()) == ml_deployment_workflow
    # ...and registers: `ml.validate_model` is an action, its literal threshold checked at registration,
    # the two `${...}` values required inputs of every run.
    assert ml_action.resolved_type in known_action_types()
    engine.workflow_manager.register_workflow(ml_deployment_workflow)
    stored_ml = engine.workflow_manager.get_workflow("ml_model_deployment")
    assert stored_ml.actions[0].action_type == "ml.validate_model"
    assert stored_ml.actions[0].parameters == ml_action.parameters
    from automation.runs.dispatch import latest_version

    stored_inputs = latest_version("ml_model_deployment").definition["inputs"]
    assert {name for name, spec in stored_inputs.items() if spec["required"]} == {
        "model_path",
        "validation_dataset",
    }
    # A threshold out of range is refused on its field, and nothing is stored.
    out_of_range = ml_deployment_workflow.model_copy(
        update={
            "name": "ml_model_deployment_bad",
            "actions": [
                ml_action.model_copy(
                    update={"parameters": {**ml_action.parameters, "acceptance_threshold": 92}}
                )
            ],
        }
    )
    with pytest.raises(DefinitionError) as refused:
        engine.workflow_manager.register_workflow(out_of_range)
    assert [path for path, _ in refused.value.errors] == ["actions[0].parameters.acceptance_threshold"]
    assert not Workflow.objects.filter(name="ml_model_deployment_bad").exists()
    with pytest.raises(NotFoundError):
        engine.workflow_manager.get_workflow("ml_model_deployment_bad")


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
