"""The HTTP API served by a real `automation serve` process, runs executed by the real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, unique
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def api(engine: Any) -> Iterator[httpx.Client]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "automation.cli.main",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, "AUTOMATION_API_TOKENS": "t0ken"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer t0ken"}, timeout=10
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "API server did not start"
        time.sleep(0.2)
    yield client
    client.close()
    process.terminate()
    process.wait(20)


def register(api: httpx.Client, peer: HttpPeer, **extra: Any) -> str:
    name = unique("api")
    body = {
        "name": name,
        "actions": [
            {
                "name": "call",
                "action_type": "http.request",
                "parameters": {"url": f"{peer.url}/hit", "method": "POST", "json": {"who": "${who}"}},
            },
        ],
        **extra,
    }
    answer = api.post("/api/v1/workflows", json=body)
    assert answer.status_code == 201, answer.text
    return name


def wait_status(api: httpx.Client, run_id: str, *, until: tuple[str, ...] = ("succeeded", "failed")) -> dict:
    deadline = time.monotonic() + 60
    while True:
        data = api.get(f"/api/v1/runs/{run_id}").json()
        if data["status"] in until:
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.1)


def test_enqueue_and_follow_a_run(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    answer = api.post(
        f"/api/v1/workflows/{name}/runs", json={"inputs": {"who": "api"}, "idempotency_key": "k1"}
    )
    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    again = api.post(
        f"/api/v1/workflows/{name}/runs", json={"inputs": {"who": "api"}, "idempotency_key": "k1"}
    )
    assert again.status_code == 202 and again.json()["run_id"] == run_id and again.json()["created"] is False
    data = wait_status(api, run_id)
    assert data["status"] == "succeeded"
    assert data["steps"][0]["name"] == "call" and data["steps"][0]["output"]["status_code"] == 200
    assert [r.body for r in peer.received] == [{"who": "api"}]


def test_token_is_required(api: httpx.Client) -> None:
    answer = httpx.get(f"{api.base_url}/api/v1/workflows")
    assert answer.status_code == 401


def test_unknown_ids_and_routes(api: httpx.Client) -> None:
    assert api.get("/api/v1/runs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/api/v1/runs/not-a-uuid").status_code == 404
    assert api.post("/api/v1/workflows/nope/runs", json={}).status_code == 404
    assert api.get("/api/v1/nothing-here").status_code == 404


def test_malformed_json_is_400(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    answer = api.post(
        f"/api/v1/workflows/{name}/runs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert "malformed JSON" in answer.json()["error"]
    assert api.post(f"/api/v1/workflows/{name}/runs", json=[1, 2]).status_code == 400


def test_bad_inputs_are_422_with_fields(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    answer = api.post(f"/api/v1/workflows/{name}/runs", json={"inputs": {}, "idempotency_key": 5, "extra": 1})
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"idempotency_key", "extra"}
    answer = api.post(f"/api/v1/workflows/{name}/runs", json={"inputs": {}})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "inputs.who", "reason": "required input is missing"}]


def test_invalid_definition_is_422_and_nothing_is_stored(api: httpx.Client) -> None:
    name = unique("cyclic")
    body = {
        "name": name,
        "actions": [
            {"name": "a", "action_type": "control.wait", "parameters": {"seconds": 0}, "depends_on": ["b"]},
            {"name": "b", "action_type": "control.wait", "parameters": {"seconds": 0}, "depends_on": ["a"]},
        ],
    }
    answer = api.post("/api/v1/workflows", json=body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"].endswith(".depends_on")
    assert "cycle" in answer.json()["errors"][0]["reason"]
    assert api.get(f"/api/v1/workflows/{name}").status_code == 404


def test_changed_definition_keeps_old_version_on_error(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    broken = {"name": name, "actions": [{"name": "x", "action_type": "nope.nothing"}]}
    assert api.post("/api/v1/workflows", json=broken).status_code == 422
    detail = api.get(f"/api/v1/workflows/{name}").json()
    assert detail["version"] == 1
    assert detail["definition"]["actions"][0]["action_type"] == "http.request"


def test_cancel_and_approve_through_the_api(api: httpx.Client, peer: HttpPeer) -> None:
    name = unique("api-gate")
    body = {
        "name": name,
        "actions": [
            {"name": "gate", "action_type": "control.approval", "parameters": {"poll_seconds": 0.3}},
            {"name": "call", "action_type": "http.request", "parameters": {"url": f"{peer.url}/after"}},
        ],
    }
    assert api.post("/api/v1/workflows", json=body).status_code == 201
    run_id = api.post(f"/api/v1/workflows/{name}/runs", json={}).json()["run_id"]
    wait_status(api, run_id, until=("running",))
    assert api.post(f"/api/v1/runs/{run_id}/steps/call/approve", json={}).status_code == 409
    answer = api.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"by": "alice"})
    assert answer.status_code == 200
    assert wait_status(api, run_id)["status"] == "succeeded"
    assert api.post(f"/api/v1/runs/{run_id}/cancel", json={}).status_code == 409

    other = api.post(f"/api/v1/workflows/{name}/runs", json={}).json()["run_id"]
    cancelled = api.post(f"/api/v1/runs/{other}/cancel", json={"reason": "change freeze"})
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    assert {s["status"] for s in cancelled.json()["steps"]} == {"cancelled"}


def test_openapi_document_lists_the_routes(api: httpx.Client) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/workflows/{name}/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/cancel"} <= set(
        doc["paths"]
    )
    assert "422" in doc["paths"]["/api/v1/workflows/{name}/runs"]["post"]["responses"]


def test_metrics_endpoint(api: httpx.Client) -> None:
    text = api.get("/metrics").text
    assert "\nactive_workflows " in text and "workflow_executions_total{" in text
    assert "automation_workflow_runs{" in text


# Bad input: every case answers 4xx naming the field; nothing reaches the database half-written.


def test_nul_characters_are_422_naming_the_field(api: httpx.Client, peer: HttpPeer) -> None:
    from automation.models import WorkflowRun

    name = register(api, peer)
    runs = f"/api/v1/workflows/{name}/runs"
    answer = api.post(runs, json={"inputs": {"who": "a"}, "idempotency_key": "k\x00ey"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [{"field": "idempotency_key", "reason": "contains a NUL character"}]
    answer = api.post(runs, json={"inputs": {"who": "a\x00b"}})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "inputs.who", "reason": "contains a NUL character"}]
    assert not WorkflowRun.objects.filter(workflow__name=name).exists()

    answer = api.post("/api/v1/workflows/wf%00x/runs", json={})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "name"
    assert api.get("/api/v1/workflows/wf%00x").status_code == 422

    run_id = api.post(runs, json={"inputs": {"who": "a"}}).json()["run_id"]
    answer = api.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": "freeze\x00"})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "reason", "reason": "contains a NUL character"}]
    answer = api.post(f"/api/v1/runs/{run_id}/steps/ca%00ll/approve", json={})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "step"
    # A lone surrogate is not text PostgreSQL can store either.
    answer = api.post(runs, content=b'{"inputs": {"who": "\\ud800"}}')
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "inputs.who"


def test_field_types_and_unknown_fields_of_cancel_and_decisions(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    run_id = api.post(f"/api/v1/workflows/{name}/runs", json={"inputs": {"who": "a"}}).json()["run_id"]
    answer = api.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": {"nested": 1}, "force": True})
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"reason", "force"}
    answer = api.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": "x" * 1001})
    assert answer.status_code == 422 and "at most 1000 characters" in answer.json()["errors"][0]["reason"]
    answer = api.post(f"/api/v1/runs/{run_id}/steps/call/approve", json={"by": 7})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "by", "reason": "must be a string, not a number"}]


def test_sizes_are_bounded(api: httpx.Client, peer: HttpPeer) -> None:
    from automation.runs.intake import MAX_INPUTS_BYTES

    name = register(api, peer)
    runs = f"/api/v1/workflows/{name}/runs"
    answer = api.post(runs, json={"inputs": {"who": "a"}, "idempotency_key": "k" * 201})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "idempotency_key", "reason": "must be a string of 1 to 200 characters, not 201 characters"}
    ]
    answer = api.post(runs, json={"inputs": {"who": "x" * MAX_INPUTS_BYTES}})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "inputs"
    assert f"at most {MAX_INPUTS_BYTES} bytes" in answer.json()["errors"][0]["reason"]
    # A 5 MB key makes a body beyond the 1 MiB bound: refused before it is read.
    answer = api.post(runs, json={"inputs": {"who": "a"}, "idempotency_key": "k" * 5_000_000})
    assert answer.status_code == 413
    assert "limit is 1048576" in answer.json()["error"]


def test_numbers_json_cannot_hold_are_400(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    for body in (b'{"inputs": {"who": NaN}}', b'{"inputs": {"who": 1e999}}', b"[" * 100_000):
        answer = api.post(f"/api/v1/workflows/{name}/runs", content=body)
        assert answer.status_code == 400, (body[:20], answer.text)
        assert answer.json()["error"].startswith("malformed JSON body")


def test_a_key_reused_with_other_inputs_is_409_with_the_run(api: httpx.Client, peer: HttpPeer) -> None:
    name = register(api, peer)
    runs = f"/api/v1/workflows/{name}/runs"
    first = api.post(runs, json={"inputs": {"who": "a"}, "idempotency_key": "inc-1"})
    assert first.status_code == 202 and first.json()["created"] is True
    run_id = first.json()["run_id"]
    again = api.post(runs, json={"inputs": {"who": "a"}, "idempotency_key": "inc-1"})
    assert again.status_code == 202
    assert again.json()["run_id"] == run_id and again.json()["created"] is False
    other = api.post(runs, json={"inputs": {"who": "b"}, "idempotency_key": "inc-1"})
    assert other.status_code == 409
    assert other.json()["run_id"] == run_id
    assert "inc-1" in other.json()["error"] and "other inputs" in other.json()["error"]


def test_every_route_is_documented_and_every_reference_resolves(api: httpx.Client) -> None:
    from django.urls import URLResolver

    from automation.api.urls import urlpatterns

    doc = api.get("/api/v1/openapi.json").json()
    documented = {path.removeprefix("/") for path in doc["paths"]}
    for pattern in urlpatterns:
        if isinstance(pattern, URLResolver):
            continue  # the web UI's include (automation/webui/urls.py): HTML pages, not the API
        route = str(pattern.pattern).replace("<str:", "{").replace(">", "}")
        if route.endswith("/{decision}"):
            assert {route.replace("{decision}", d) for d in ("approve", "reject")} <= documented
        else:
            assert route in documented, route
    assert "get" in doc["paths"]["/api/v1/workflows"]
    assert doc["paths"]["/api/v1/workflows"]["post"]["requestBody"]["required"] is True

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    found = set(refs(doc))
    assert found and all(ref.startswith("#/components/schemas/") for ref in found), found
    assert {ref.rsplit("/", 1)[1] for ref in found} <= set(doc["components"]["schemas"])


def test_the_fleet_is_visible(api: httpx.Client) -> None:
    from automation.broker.deadletter import set_aside

    letter = set_aside(queue="celery", payload='{"inputs": {"password": "hunter2"}}', reason="api test")
    listed = api.get("/api/v1/dead-letters", params={"limit": 5})
    assert listed.status_code == 200
    assert any(item["id"] == letter for item in listed.json()["dead_letters"])
    assert "payload" not in listed.json()["dead_letters"][0]
    detail = api.get(f"/api/v1/dead-letters/{letter}")
    assert detail.status_code == 200 and "hunter2" not in detail.text
    assert api.get("/api/v1/dead-letters", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/dead-letters/banana").status_code == 404
    assert api.get("/api/v1/workers").status_code == 200
    metrics = api.get("/metrics").text
    assert "automation_dead_letters " in metrics
