"""The seed's Example 1 (`ml_model_deployment`) as written, then the steps it announces: deploy a 10%
canary, judge it on live metrics, promote or roll back, notify. Used by the end-to-end tests and
`benchmarks/bench_canary_timing.py`; its inputs: model_path, validation_dataset, model_version,
notify_url."""

from __future__ import annotations

from automation.definitions.schema import ActionDefinition, WorkflowDefinition
from automation.demo.load_generator import ACCURACY, ERROR_COUNT, ERRORS, LATENCY, REQUESTS


def ml_model_deployment(
    service: str, *, name: str = "ml_model_deployment", warmup: float = 2, window: float = 8
) -> WorkflowDefinition:
    """Example 1 for `service` (served by automation.demo.model_service through the local provider),
    judging its canary `window` seconds after `warmup` seconds."""
    return WorkflowDefinition(
        name=name,
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
            ),
            ActionDefinition(
                name="deploy_model",
                action_type="ml",
                parameters={
                    "service_name": service,
                    "model_path": "${model_path}",
                    "model_version": "${model_version}",
                    "percent": 10,
                    "model_sha256": "${steps.validate_model.output.model_sha256}",
                },
            ),
            ActionDefinition(
                name="canary_analysis",
                action_type="ml",
                parameters={
                    "baseline_version": "${steps.deploy_model.output.stable_version}",
                    "canary_version": "${model_version}",
                    "labels": {"service": service},
                    "warmup": warmup,
                    "window": window,
                    "metrics": [
                        {"metric": ERROR_COUNT, "denominator": REQUESTS, "name": ERRORS},
                        {"metric": LATENCY, "regression": "increase", "tolerance": 0.5},
                        {"metric": ACCURACY, "regression": "decrease", "tolerance": 0.05},
                    ],
                },
            ),
            ActionDefinition(
                name="promote",
                action_type="ml",
                parameters={
                    "service_name": service,
                    "model_version": "${model_version}",
                    "verdict": "${steps.canary_analysis.output.verdict}",
                },
            ),
            ActionDefinition(
                name="rollback",
                action_type="ml",
                depends_on=["canary_analysis"],
                parameters={
                    "service_name": service,
                    "model_version": "${model_version}",
                    "verdict": "${steps.canary_analysis.output.verdict}",
                },
            ),
            ActionDefinition(
                name="notify",
                action_type="notification.webhook",
                depends_on=["promote", "rollback"],
                parameters={
                    "url": "${notify_url}",
                    "text": f"{service}: "
                    "${steps.promote.output.summary}; ${steps.rollback.output.summary}. "
                    "${steps.canary_analysis.output.summary}",
                    "fields": {
                        "service": service,
                        "version": "${model_version}",
                        "promoted": "${steps.promote.output.acted}",
                        "rolled_back": "${steps.rollback.output.acted}",
                        "verdict": "${steps.canary_analysis.output.verdict}",
                        "score": "${steps.canary_analysis.output.score}",
                        "reasons": "${steps.canary_analysis.output.reasons}",
                    },
                },
            ),
        ],
    )
