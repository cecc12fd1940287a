"""The seed's restart workflow restarts a real local process through a real worker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from automation import ActionDefinition, Priority, WorkflowDefinition
from tests.conftest import unique

pytestmark = pytest.mark.usefixtures("worker")


def test_seed_restart_workflow_restarts_a_real_process(engine: Any, local_service: Any) -> None:
    before = local_service.status("spotify-api")["replicas"][0]
    name = unique("service_restart_workflow")
    engine.workflow_manager.register_workflow(
        WorkflowDefinition(
            name=name,
            description="Redémarre un service avec vérifications de santé",
            actions=[
                ActionDefinition(
                    name="restart_service",
                    action_type="infrastructure",
                    parameters={"service_name": "spotify-api", "graceful": True, "wait_for_health": True},
                    timeout_seconds=60,
                    retry_attempts=3,
                )
            ],
            conditions=["service_health_check_failed"],
            priority=Priority.HIGH,
        )
    )
    run = engine.run_workflow(name, {"service_health_check_failed": True}).wait(60)
    assert run.status == "succeeded", run.steps
    output = run.step("restart_service").output
    assert output["old_pid"] == before["pid"]
    assert output["pid"] != before["pid"]
    health = httpx.get(f"http://127.0.0.1:{before['port']}/health").json()
    assert health["pid"] == output["pid"]


def test_scale_by_factor_within_bounds(engine: Any, local_service: Any) -> None:
    name = unique("scale")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="scale_service",
                    action_type="infrastructure",
                    parameters={"service_name": "spotify-api", "scale_factor": 3, "max_instances": 2},
                ),
            ],
        )
    )
    run = engine.run_workflow(name).wait(60)
    assert run.status == "succeeded", run.steps
    assert run.step("scale_service").output["replicas"] == 2
    status = local_service.status("spotify-api")
    assert status["running_replicas"] == 2
    ports = {r["port"] for r in status["replicas"]}
    for port in ports:
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
