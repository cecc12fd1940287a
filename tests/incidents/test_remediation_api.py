"""The remediation routes and CLI: the policies document stored whole or refused naming the field (422,
exit 2), the list and its filters, an approval of a remediation that waits for none refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api_server import ApiServer
from tests.conftest import STATE_DIR, unique
from tests.incidents.test_incidents_api import cli

TOKEN = "remediation-t0ken"


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('remediation-api')}.log", tokens=TOKEN, workers=1)
    yield started
    started.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        before = c.get("/api/v1/remediation").json()
        yield c
        assert c.put("/api/v1/remediation", json=before).status_code == 200


@pytest.fixture
def workflow(engine: Any) -> str:
    from automation import ActionDefinition, WorkflowDefinition

    name = unique("fix")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[ActionDefinition(name="noop", action_type="http.request", parameters={"url": "${url}"})],
        )
    )
    return name


def test_policies_are_stored_whole_or_refused_naming_the_field(client: httpx.Client, workflow: str) -> None:
    good = {"name": "p1", "match": ['alertname="down"'], "workflow": workflow, "verify": {"within": "2m"}}
    answer = client.put("/api/v1/remediation", json={"policies": [good]})
    assert answer.status_code == 200, answer.text
    stored = answer.json()["policies"][0]
    assert stored["verify"]["within"] == 120.0 and stored["rate_limit"]["per_service"] == {
        "runs": 3,
        "window": 600.0,
    }
    bad = client.put(
        "/api/v1/remediation",
        json={"policies": [good, {**good, "name": "p2", "workflow": "nope", "loop": {"max_repeats": 0}}]},
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["policies[1].loop.max_repeats"], bad.json()
    unknown = client.put(
        "/api/v1/remediation", json={"policies": [good, {**good, "name": "p2", "workflow": "x"}]}
    )
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["policies[1].workflow"], unknown.json()
    assert client.get("/api/v1/remediation").json()["policies"] == [stored]  # nothing half-stored
    listed = client.get("/api/v1/remediations", params={"status": "bogus", "limit": "0", "x": "1"})
    assert listed.status_code == 422
    assert sorted(e["field"] for e in listed.json()["errors"]) == ["limit", "status", "x"]
    assert client.get("/api/v1/remediations", params={"policy": "p1"}).json() == {"remediations": []}
    missing = client.post("/api/v1/remediations/999999/approve", json={"by": "ann"})
    assert missing.status_code == 404
    # Authentication is on (the server's token): who approves is the token's principal, so `by` is not
    # required; one that is sent is still checked.
    nobody = client.post("/api/v1/remediations/1/approve", json={"who": "ann", "by": 7})
    assert nobody.status_code == 422
    assert sorted(e["field"] for e in nobody.json()["errors"]) == ["by", "who"]


def test_the_cli_applies_and_refuses_with_exit_2(client: httpx.Client, workflow: str, tmp_path: Path) -> None:
    path = tmp_path / "fixes.yml"
    path.write_text(yaml.safe_dump({"policies": [{"name": "p", "match": {"a": "b"}, "workflow": workflow}]}))
    applied = cli("remediation", "apply", "-f", str(path))
    assert applied.returncode == 0 and applied.stdout == "remediation applied: 1 policy(ies)\n", (
        applied.stderr
    )
    shown = cli("remediation", "show", "--json")
    assert '"workflow": "' + workflow in shown.stdout
    path.write_text(yaml.safe_dump({"policies": [{"name": "p", "match": {"a": "b"}, "workflow": "nope"}]}))
    refused = cli("remediation", "apply", "-f", str(path))
    assert refused.returncode == 2
    assert "policies[0].workflow: unknown workflow 'nope'" in refused.stderr
    assert cli("remediation", "approve", "999999", "--by", "ann").returncode == 2
