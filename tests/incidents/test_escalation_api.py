"""The escalation document and who is on call as an operator uses them: a real `automation serve` and real
`automation oncall` processes. Bad input answers 422 (exit 2) naming the field, and stores nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api_server import ApiServer
from tests.conftest import STATE_DIR, unique
from tests.incidents.escalation_setup import (
    Setup,
    apply_receivers,
    level,
    restore_documents,
    stored_documents,
    webhook,
)
from tests.incidents.test_incidents_api import cli

TOKEN = "escalation-t0ken"


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('escalation-api')}.log", tokens=TOKEN, workers=1)
    yield started
    started.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    saved = stored_documents()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        yield c
    restore_documents(saved)


def oncall_document(setup: Setup) -> dict[str, Any]:
    """alice and bob by the week from Monday 5 January 2026 09:00 Paris, office hours by dora above them,
    and carol overriding one evening."""
    hook = setup.name("hook")
    apply_receivers(webhook(hook, "http://127.0.0.1:9/unused"))
    return {
        "users": [{"name": name, "receivers": [hook]} for name in ("alice", "bob", "carol", "dora")],
        "schedules": [
            {
                "name": setup.name("primary"),
                "timezone": "Europe/Paris",
                "layers": [
                    {
                        "name": "weekly",
                        "users": ["alice", "bob"],
                        "start": "2026-01-05T09:00:00",
                        "rotation": "1w",
                    },
                    {
                        "name": "office",
                        "users": ["dora"],
                        "start": "2026-01-05T00:00:00",
                        "rotation": "1w",
                        "restrict": {
                            "days": ["mon", "tue", "wed", "thu", "fri"],
                            "from": "09:00",
                            "to": "17:00",
                        },
                    },
                ],
                "overrides": [
                    {"user": "carol", "start": "2026-01-06T18:00:00", "end": "2026-01-07T09:00:00"}
                ],
                "description": "",
            },
            {
                "name": setup.name("empty"),
                "timezone": "UTC",
                "layers": [
                    {"name": "later", "users": ["bob"], "start": "2030-01-01T00:00:00", "rotation": 86400.0}
                ],
                "overrides": [],
                "description": "",
            },
        ],
        "policies": [
            {
                "name": setup.name("default"),
                "match": {"services": [], "owners": [], "min_severity": "high"},
                "levels": [level({"schedule": setup.name("primary")}, timeout=300.0)],
                "repeat": 0,
                "description": "",
            }
        ],
    }


def test_the_document_is_put_and_read_and_who_is_on_call_is_answered(client: httpx.Client) -> None:
    setup = Setup()
    document = oncall_document(setup)
    answer = client.put("/api/v1/escalation", json=document)
    assert answer.status_code == 200, answer.text
    assert client.get("/api/v1/escalation").json() == answer.json()
    assert answer.json()["policies"][0]["levels"][0] == {
        "targets": [{"schedule": setup.name("primary")}],
        "timeout": 300.0,
    }

    primary = setup.name("primary")
    cases = {
        "2026-01-06T12:00:00+01:00": ("dora", "layer office", "2026-01-06T16:00:00+00:00"),
        "2026-01-06T17:30:00+01:00": ("alice", "layer weekly", "2026-01-06T17:00:00+00:00"),
        "2026-01-06T20:00:00+01:00": ("carol", "override", "2026-01-07T08:00:00+00:00"),
        "2026-01-10T12:00:00Z": ("alice", "layer weekly", "2026-01-12T08:00:00+00:00"),
        "1768651200": ("bob", "layer weekly", "2026-01-19T08:00:00+00:00"),  # Saturday 17 January, 12:00 UTC
    }
    for at, expected in cases.items():
        found = client.get("/api/v1/oncall", params={"schedule": primary, "at": at})
        assert found.status_code == 200, found.text
        (entry,) = found.json()["schedules"]
        assert (entry["user"], entry["source"], entry["until"]) == expected, at
    both = client.get("/api/v1/oncall", params={"at": "2026-01-10T12:00:00Z"}).json()
    assert both["at"] == "2026-01-10T12:00:00+00:00"
    assert [(e["schedule"], e["user"]) for e in both["schedules"]] == [
        (primary, "alice"),
        (setup.name("empty"), None),
    ]


def test_bad_documents_and_questions_name_the_field_and_store_nothing(client: httpx.Client) -> None:
    setup = Setup()
    good = oncall_document(setup)
    assert client.put("/api/v1/escalation", json=good).status_code == 200
    stored = client.get("/api/v1/escalation").json()
    bad_cases = [
        ({**good, "users": [{"name": "alice", "receivers": ["nowhere"]}]}, "users[0].receivers[0]"),
        (
            {**good, "policies": [{"name": "p", "levels": [level({"schedule": "ghost"}, timeout=5)]}]},
            "policies[0].levels[0].targets[0].schedule",
        ),
        (
            {**good, "schedules": [{**good["schedules"][0], "timezone": "Mars/Olympus"}]},
            "schedules[0].timezone",
        ),
        ({**good, "schedule": []}, "schedule"),
    ]
    for document, field in bad_cases:
        answer = client.put("/api/v1/escalation", json=document)
        assert answer.status_code == 422, answer.text
        assert field in [e["field"] for e in answer.json()["errors"]], answer.json()
    assert client.put("/api/v1/escalation", content=b"").status_code == 400
    assert client.get("/api/v1/escalation").json() == stored  # nothing stored half-written

    for query, status, field in (
        ({"at": "yesterday"}, 422, "at"),
        ({"at": "-5"}, 422, "at"),
        ({"schedul": "x"}, 422, "schedul"),
        ({"schedule": ""}, 422, "schedule"),
    ):
        answer = client.get("/api/v1/oncall", params=query)
        assert answer.status_code == status, (query, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == [field]
    unknown = client.get("/api/v1/oncall", params={"schedule": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"].startswith("schedule nope is not declared")
    assert httpx.get(f"{client.base_url}/api/v1/oncall").status_code == 401


def test_the_cli_applies_shows_and_says_who_is_on_call(client: httpx.Client, tmp_path: Path) -> None:
    setup = Setup()
    path = tmp_path / "escalation.yml"
    path.write_text(yaml.safe_dump(oncall_document(setup)))
    applied = cli("oncall", "apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "escalation applied: 4 user(s), 2 schedule(s), 1 policy(ies)"
    shown = yaml.safe_load(cli("oncall", "show").stdout)
    assert [s["name"] for s in shown["schedules"]] == [setup.name("primary"), setup.name("empty")]

    who = cli("oncall", "who", "--schedule", setup.name("primary"), "--at", "2026-01-06T20:00:00+01:00")
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == (
        f"{setup.name('primary')} (Europe/Paris): carol (override) until 2026-01-07T08:00:00+00:00"
    )
    every = cli("oncall", "who", "--at", "2026-01-10T12:00:00Z").stdout.splitlines()
    assert every == [
        f"{setup.name('primary')} (Europe/Paris): alice (layer weekly) until 2026-01-12T08:00:00+00:00",
        f"{setup.name('empty')} (UTC): nobody on call",
    ]
    as_json = yaml.safe_load(cli("oncall", "who", "--schedule", setup.name("empty"), "--json").stdout)
    assert as_json["schedules"][0]["user"] is None

    stored = cli("oncall", "show", "--json").stdout
    path.write_text(yaml.safe_dump({"users": [{"name": "x", "receivers": ["nowhere"]}]}))
    for args, words in (
        (("oncall", "apply", "-f", str(path)), "users[0].receivers[0]: unknown receiver 'nowhere'"),
        (
            ("oncall", "who", "--at", "yesterday"),
            "at: 'yesterday' is neither an ISO 8601 time nor epoch seconds",
        ),
        (("oncall", "who", "--schedule", "nope"), "schedule nope is not declared"),
    ):
        result: subprocess.CompletedProcess[str] = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr, (args, result.stderr)
    assert cli("oncall", "show", "--json").stdout == stored
