"""Recorded changes: the document as the API and the CLI take it (pure), `POST/GET /api/v1/changes` on a
real `automation serve`, `automation changes record|list` as processes, the engine's own record of a step
acting on a service (once per run and step, through a real worker), and the
post-incident report weighing a change as evidence."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from automation.errors import InvalidFieldsError
from automation.incidents.changes import parse_change
from tests.conftest import unique
from tests.incidents.test_incidents_api import server  # noqa: F401 - the fixture

NOW = 1_790_000_000.0


def fields_of(body: Any) -> list[str]:
    with pytest.raises(InvalidFieldsError) as caught:
        parse_change(body, now=NOW)
    return [field for field, _ in caught.value.errors]


def test_a_change_document_is_checked_field_by_field() -> None:
    record = parse_change(
        {"service": " db ", "kind": "deploy", "description": "v42", "at": "2026-09-21T10:00:00Z",
         "actor": "ci", "key": "deploy-42", "run_id": "6f1d5d0e-8a43-4c1e-9d0f-3b3c1f4e2a10"},
        now=NOW,
    )  # fmt: skip
    assert (record.service, record.kind, record.description, record.actor, record.key) == (
        "db", "deploy", "v42", "ci", "deploy-42"
    )  # fmt: skip
    assert record.at == datetime(2026, 9, 21, 10, tzinfo=UTC).timestamp()
    assert parse_change({"service": "db", "kind": "config"}, now=NOW).at == NOW
    assert parse_change({"service": "db", "kind": "config", "at": NOW - 60}, now=NOW).at == NOW - 60
    assert fields_of({"kind": "deploy"}) == ["service"]
    assert fields_of({"service": "db", "kind": "reboot"}) == ["kind"]
    assert fields_of({"service": "", "kind": "deploy", "colour": 1}) == ["colour", "service"]
    assert fields_of({"service": "db", "kind": "deploy", "at": "yesterday"}) == ["at"]
    assert fields_of({"service": "db", "kind": "deploy", "at": NOW + 3600}) == ["at"]
    assert fields_of({"service": "db", "kind": "deploy", "at": True}) == ["at"]
    assert fields_of({"service": "db", "kind": "deploy", "run_id": "nope"}) == ["run_id"]
    assert fields_of({"service": "db", "kind": "deploy", "key": "run:1:restart"}) == ["key"]  # the engine's
    long = {"service": 3, "kind": "deploy", "description": "x" * 3000}
    assert fields_of(long) == ["service", "description"]
    assert fields_of(["not", "an", "object"]) == ["(body)"]


# --- through the API, the CLI and a worker -------------------------------------------------------------

integration = pytest.mark.integration


@pytest.fixture
def client(server: Any) -> Iterator[httpx.Client]:  # noqa: F811
    from tests.incidents.test_incidents_api import TOKEN

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        yield c


@integration
def test_the_api_records_lists_and_refuses_changes(client: httpx.Client) -> None:
    service = unique("svc")
    answer = client.post(
        "/api/v1/changes",
        json={"service": service, "kind": "deploy", "description": "v7", "actor": "ci",
              "key": f"{service}-v7"},
    )
    assert answer.status_code == 201, answer.text
    first = answer.json()
    assert first["created"] and first["source"] == "api" and first["kind"] == "deploy"
    same = {"service": service, "kind": "deploy", "key": f"{service}-v7"}
    again = client.post("/api/v1/changes", json=same)
    assert again.status_code == 200 and again.json()["id"] == first["id"] and not again.json()["created"]
    assert client.post("/api/v1/changes", json={"service": service, "kind": "config"}).status_code == 201
    listed = client.get("/api/v1/changes", params={"service": service}).json()["changes"]
    assert [c["kind"] for c in listed] == ["config", "deploy"]  # newest first
    bad = client.post("/api/v1/changes", json={"service": service, "kind": "reboot", "at": "soon"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"kind", "at"}
    assert len(client.get("/api/v1/changes", params={"service": service}).json()["changes"]) == 2
    assert client.get("/api/v1/changes", params={"colour": "red"}).status_code == 422
    assert client.get("/api/v1/changes", params={"limit": "0"}).status_code == 422


@integration
def test_the_cli_records_and_lists_changes(engine: Any) -> None:
    from tests.incidents.test_incidents_api import cli

    service = unique("svc")
    done = cli("changes", "record", "--service", service, "--kind", "config", "--description", "pool 50",
               "--actor", "bob", "--key", f"{service}-1")  # fmt: skip
    assert done.returncode == 0 and "recorded" in done.stdout, done.stderr
    again = cli("changes", "record", "--service", service, "--kind", "config", "--key", f"{service}-1")
    assert again.returncode == 0 and "already recorded" in again.stdout
    listed = json.loads(cli("changes", "list", "--service", service, "--json").stdout)["changes"]
    assert [(c["kind"], c["actor"], c["source"]) for c in listed] == [("config", "bob", "cli")]
    bad = cli("changes", "record", "--service", service, "--kind", "config", "--at", "when")
    assert bad.returncode == 2 and "at:" in bad.stderr
    assert len(json.loads(cli("changes", "list", "--service", service, "--json").stdout)["changes"]) == 1


@integration
@pytest.mark.usefixtures("worker")
def test_the_engine_records_a_step_acting_on_a_service_once(engine: Any) -> None:
    from automation import ActionDefinition, WorkflowDefinition
    from automation.incidents.services.changes import record_step_change
    from automation.models import Change

    service = unique("nowhere")  # not in the services file: the step fails, after its change is recorded
    name = unique("scale")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="scale_service",
                    action_type="infrastructure",
                    parameters={"service_name": service, "replicas": 2, "wait_for_health": False},
                    retry_attempts=2,
                )
            ],
        )
    )
    run = engine.run_workflow(name).wait(60)
    assert run.status == "failed", run.steps  # the provider refuses an unknown service, after the record
    (change,) = Change.objects.filter(service=service)
    assert (change.kind, change.source, change.actor) == ("workflow_run", "engine", "engine")
    assert str(change.run_id) == str(run.id) and change.key == f"run:{run.id}:scale_service"
    assert "infrastructure.scale_service" in change.description and name in change.description
    # the same step executed again (a redelivered message, a retry) records nothing more
    again = record_step_change(
        service=service, kind="workflow_run", action_type="infrastructure.scale_service",
        run_id=change.run_id, step="scale_service", workflow=name, now=time.time(),
    )  # fmt: skip
    assert not again.created and again.change.pk == change.pk
    assert Change.objects.filter(service=service).count() == 1


@integration
def test_the_report_weighs_a_change_before_the_trouble(engine: Any) -> None:
    from automation.alerting.services.intake import receive
    from automation.incidents.changes import parse_change
    from automation.incidents.services.catalog import apply_services, current_services
    from automation.incidents.services.changes import record_change
    from automation.incidents.services.reports import incident_report
    from tests.incidents.test_incidents_integration import Chain, incidents_of, received

    before = current_services().model_dump()
    chain = Chain()
    try:
        now = time.time() - 3600
        record_change(
            parse_change({"service": chain.api, "kind": "deploy", "description": "v9", "at": now - 600},
                         now=now),
            source="api", now=now,
        )  # fmt: skip
        record_change(parse_change({"service": chain.noise, "kind": "deploy", "at": now - 60}, now=now),
                      source="api", now=now)  # fmt: skip
        # api and web alert together; db (upstream of both) is silent: the deploy on api names it
        for service in (chain.web, chain.api):
            receive(received(service, starts=now), now)
        (incident,) = incidents_of(chain.api, chain.web)
        report = incident_report(incident)
    finally:
        apply_services(before)
    assert [(c["service"], c["kind"]) for c in report["changes"]] == [(chain.api, "deploy")]
    top = report["causes"][0]
    assert top["service"] == chain.api, report["causes"]
    assert any(line.startswith("change: deploy v9") for line in top["evidence"]), top["evidence"]
