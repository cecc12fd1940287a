"""The incidents HTTP API and CLI as an operator uses them: a real `automation serve` takes events, the
services document and the operators' steps; real `automation` processes list, show, acknowledge and
resolve. Bad input answers 4xx (exit 2) naming the field, and stores nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api_server import ApiServer
from tests.conftest import ROOT, STATE_DIR, unique

TOKEN = "incidents-t0ken"
#: Who the server says acts with TOKEN (its first bootstrap token): a `by` in the body is not used.
ACTOR = "bootstrap-1"


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('incidents-api')}.log", tokens=TOKEN, workers=1)
    yield started
    started.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        yield c


@pytest.fixture
def graph(client: httpx.Client) -> Iterator[dict[str, str]]:
    """A stored chain (web → api → db) of unique names, put through the API; the document before it is put
    back afterwards."""
    before = client.get("/api/v1/services").json()
    tag = unique("g")
    names = {role: f"{role}-{tag}" for role in ("db", "api", "web")}
    document = {
        "services": [
            {"name": names["web"], "depends_on": [names["api"]], "owners": ["web-team"], "description": ""},
            {"name": names["api"], "depends_on": [names["db"]], "owners": [], "description": "the API"},
            {"name": names["db"], "depends_on": [], "owners": ["dba", "oncall"], "description": ""},
        ]
    }
    answer = client.put("/api/v1/services", json=document)
    assert answer.status_code == 200, answer.text
    assert answer.json() == document and client.get("/api/v1/services").json() == document
    yield names
    assert client.put("/api/v1/services", json=before).status_code == 200


def fire(client: httpx.Client, service: str, *, status: str = "firing", severity: str = "high") -> str:
    labels = {"alertname": f"{service}_down", "service": service, "severity": severity}
    answer = client.post("/api/v1/events", json={"labels": labels, "status": status})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["fingerprint"])


def only_incident(client: httpx.Client, service: str) -> dict[str, Any]:
    answer = client.get("/api/v1/incidents", params={"service": service})
    assert answer.status_code == 200, answer.text
    (incident,) = answer.json()["incidents"]
    return dict(incident)


def test_events_open_one_incident_and_operators_ack_mitigate_resolve_it(
    client: httpx.Client, graph: dict[str, str]
) -> None:
    db = fire(client, graph["db"], severity="high")
    web = fire(client, graph["web"], severity="critical")
    incident = only_incident(client, graph["web"])
    assert only_incident(client, graph["db"])["id"] == incident["id"]
    assert incident["services"] == sorted([graph["db"], graph["web"]])
    assert (incident["status"], incident["severity"], incident["alert_count"], incident["firing_count"]) == (
        "triggered",
        "critical",
        2,
        2,
    )
    number = incident["id"]
    listed = client.get("/api/v1/incidents", params={"status": "open", "since": "1h", "limit": 1000}).json()
    assert number in [i["id"] for i in listed["incidents"]]
    assert number not in [
        i["id"] for i in client.get("/api/v1/incidents?status=resolved").json()["incidents"]
    ]

    step = f"/api/v1/incidents/{number}"
    # Authentication is on (the server's bootstrap token): who acts is the token's principal, not `by`.
    acked = client.post(f"{step}/acknowledge", json={"by": "alice", "comment": "looking"})
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["acknowledged_by"], acked.json()["changed"]) == (
        "acknowledged",
        ACTOR,
        True,
    )
    again = client.post(f"{step}/acknowledge", json={"by": "bob"})
    assert (again.status_code, again.json()["changed"], again.json()["acknowledged_by"]) == (
        200,
        False,
        ACTOR,
    )
    mitigated = client.post(f"{step}/mitigate", json={"by": "bob"}).json()
    assert (mitigated["status"], mitigated["mitigated_by"], mitigated["acknowledged_by"]) == (
        "mitigated",
        ACTOR,
        ACTOR,
    )
    fire(client, graph["db"], status="resolved")
    resolved = client.post(f"{step}/resolve", json={"by": "carol", "comment": "db failover done"})
    assert (resolved.status_code, resolved.json()["status"], resolved.json()["resolved_by"]) == (
        200,
        "resolved",
        ACTOR,
    )
    assert client.post(f"{step}/resolve", json={"by": "carol"}).json()["changed"] is False
    refused = client.post(f"{step}/acknowledge", json={"by": "dave"})
    assert refused.status_code == 409
    assert refused.json()["error"] == f"incident {number} is resolved: it cannot be acknowledged"

    detail = client.get(step).json()
    assert [(a["fingerprint"], a["resolved_at"] is not None) for a in detail["alerts"]] == [
        (db, True),
        (web, False),
    ]
    events = [(e["kind"], e["actor"], e["alert"]) for e in detail["timeline"]]
    assert events == [
        ("opened", "engine", db),
        ("alert_joined", "engine", db),
        ("alert_joined", "engine", web),
        ("severity_raised", "engine", web),
        ("acknowledged", ACTOR, None),
        ("mitigated", ACTOR, None),
        ("alert_resolved", "engine", db),
        ("resolved", ACTOR, None),
    ]
    assert detail["timeline"][4]["detail"] == "looking"
    assert detail["timeline"][-1]["detail"] == "1 alert(s) still firing; db failover done"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/acknowledge", {"by": ""}, 422, "by"),
        ("/acknowledge", {"by": 7}, 422, "by"),
        ("/acknowledge", {"by": "x" * 201}, 422, "by"),
        ("/mitigate", {"by": "a", "why": "x"}, 422, "why"),
        ("/resolve", {"by": "a", "comment": ["x"]}, 422, "comment"),
    ],
)
def test_bad_steps_name_the_field_and_change_nothing(
    client: httpx.Client, graph: dict[str, str], path: str, body: dict[str, Any], status: int, field: str
) -> None:
    fire(client, graph["api"])
    incident = only_incident(client, graph["api"])
    answer = client.post(f"/api/v1/incidents/{incident['id']}{path}", json=body)
    assert answer.status_code == status, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert only_incident(client, graph["api"]) == incident


def test_unknown_incidents_bad_filters_and_bad_documents(client: httpx.Client, graph: dict[str, str]) -> None:
    for missing in ("999999999999", "abc", "0", "-3", str(2**70)):
        answer = client.get(f"/api/v1/incidents/{missing}")
        assert answer.status_code == 404, (missing, answer.text)
        assert client.post(f"/api/v1/incidents/{missing}/resolve", json={"by": "a"}).status_code == 404
    cases = {
        "status=closed": "status",
        "since=yesterday": "since",
        "limit=0": "limit",
        "service=": "service",
        "statu=open": "statu",
    }
    for query, field in cases.items():
        answer = client.get(f"/api/v1/incidents?{query}")
        assert answer.status_code == 422, (query, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == [field]

    stored = client.get("/api/v1/services").json()
    bad = {
        "services": [
            {"name": "a-" + graph["db"]},
            {"name": "b-" + graph["db"], "depends_on": ["nowhere"]},
            {"name": "a-" + graph["db"]},
        ]
    }
    answer = client.put("/api/v1/services", json=bad)
    assert answer.status_code == 422, answer.text
    assert {e["field"] for e in answer.json()["errors"]} >= {"services[2].name"}
    answer = client.put("/api/v1/services", json={"services": [{"name": "x", "depends_on": ["ghost"]}]})
    assert answer.json()["errors"] == [
        {"field": "services[0].depends_on", "reason": "unknown service 'ghost'"}
    ]
    assert client.put("/api/v1/services", json={"services": [{"nam": "x"}]}).status_code == 422
    assert client.put("/api/v1/services", content=b"").status_code == 400
    assert client.get("/api/v1/services").json() == stored  # nothing stored half-written
    assert httpx.get(f"{client.base_url}/api/v1/incidents").status_code == 401


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automation.cli.main", *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_applies_services_and_lists_shows_acks_resolves(
    client: httpx.Client, graph: dict[str, str], tmp_path: Path
) -> None:
    from automation.incidents.services.catalog import current_services

    services = tmp_path / "services.yml"
    tag = unique("cli")
    names = {role: f"{role}-{tag}" for role in ("cache", "api")}
    services.write_text(
        yaml.safe_dump(
            {
                "services": [
                    {"name": names["api"], "depends_on": [names["cache"]], "owners": ["api-team"]},
                    {"name": names["cache"]},
                ]
            }
        )
    )
    applied = cli("services", "apply", "-f", str(services))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "services applied: 2 service(s), 1 dependency(ies)"
    shown = yaml.safe_load(cli("services", "show").stdout)
    assert [s["name"] for s in shown["services"]] == [names["api"], names["cache"]]

    stored = current_services()
    services.write_text(
        yaml.safe_dump({"services": [{"name": "x", "depends_on": ["ghost"]}, {"name": "bad name"}]})
    )
    refused = cli("services", "apply", "-f", str(services))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("Error: services[1].name: String should match pattern")
    assert current_services() == stored

    fire(client, names["cache"])
    fire(client, names["api"])
    number = only_incident(client, names["api"])["id"]
    listed = cli("incidents", "list", "--service", names["cache"])
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.split()[:3] == [str(number), "triggered", "high"] and "alerts 2/2 firing" in line

    acked = cli("incidents", "ack", str(number), "--by", "erin", "--comment", "paged")
    assert (acked.returncode, acked.stdout.strip()) == (0, f"incident {number} acknowledged by erin")
    again = cli("incidents", "ack", str(number), "--by", "erin")
    assert again.stdout.strip() == f"incident {number} is acknowledged already: nothing changed"
    resolved = cli("incidents", "resolve", str(number), "--by", "erin")
    assert (resolved.returncode, resolved.stdout.strip()) == (0, f"incident {number} resolved by erin")
    late = cli("incidents", "ack", str(number), "--by", "frank")
    assert late.returncode == 1 and f"incident {number} is resolved" in late.stderr

    show = cli("incidents", "show", str(number))
    assert show.returncode == 0, show.stderr
    assert "acknowledged at" in show.stdout and "by erin" in show.stdout
    timeline = show.stdout.split("timeline:")[1].split()
    assert timeline.count("alert_joined") == 2 and "acknowledged" in timeline and "resolved" in timeline
    as_json = yaml.safe_load(cli("incidents", "show", str(number), "--json").stdout)
    assert as_json["status"] == "resolved" and as_json["timeline"][-1]["actor"] == "erin"

    for args, words in (
        (("incidents", "show", "nope"), "incident nope does not exist"),
        (("incidents", "ack", "0", "--by", "x"), "incident 0 does not exist"),
        (("incidents", "list", "--since", "yesterday"), "since: 'yesterday' is neither"),
        (("incidents", "ack", str(number), "--by", " "), "--by: must be 1 to 200 characters"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr, (args, result.stderr)
