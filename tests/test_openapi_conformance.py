"""Schemathesis against a real `automation serve`: no server error, every answer as the OpenAPI document says.

Operations get real identifiers some of the time (a registered workflow, live and finished runs, a step
name, an alert rule, an alert's fingerprint, live and expired silences, the incident that alert opened), so
generated requests reach the engine's logic and not only its 404s.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automation.errors import StateError
from tests.api_server import ApiServer
from tests.conftest import STATE_DIR, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]

TOKEN = "st-t0ken"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
#: Examples per operation and phase: enough to find the bad-input classes (NUL, surrogates, huge numbers,
#: wrong types), bounded so the run takes well under a minute on two cores.
MAX_EXAMPLES = 30
SEED = 20261101


@pytest.fixture
def server(engine: Any) -> Iterator[ApiServer]:
    from automation.models import ApiToken

    started = ApiServer(log_path=STATE_DIR / f"{unique('schemathesis-api')}.log", tokens=TOKEN, workers=2)
    yield started
    started.stop()
    # The run creates tokens through POST /api/v1/tokens: a stored token keeps authentication on, and the
    # session's other API tests run in the open mode (a test's cleanup; no service deletes a token).
    ApiToken.objects.all().delete()


def _values(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _config(
    path: Path,
    *,
    workflow: str,
    runs: list[str],
    rule: str,
    fingerprints: list[str],
    silences: list[str],
    incidents: list[int],
) -> Path:
    path.write_text(f"""
[dictionaries.workflows]
values = ["{workflow}"]
[dictionaries.runs]
values = [{_values(runs)}]
[dictionaries.steps]
values = ["gate"]
[dictionaries.rules]
values = ["{rule}"]
[dictionaries.fingerprints]
values = [{_values(fingerprints)}]
[dictionaries.silences]
values = [{_values(silences)}]
[dictionaries.incidents]
values = [{", ".join(str(i) for i in incidents)}]

[parameters]
"path.name" = {{ dictionary = "workflows", probability = 0.7 }}
"path.run_id" = {{ dictionary = "runs", probability = 0.7 }}
"path.step" = {{ dictionary = "steps", probability = 0.7 }}
"path.fingerprint" = {{ dictionary = "fingerprints", probability = 0.7 }}
"path.silence_id" = {{ dictionary = "silences", probability = 0.7 }}
"path.incident_id" = {{ dictionary = "incidents", probability = 0.7 }}

[[operations]]
include-path = "/api/v1/alert-rules/{{name}}"
[operations.parameters]
"path.name" = {{ dictionary = "rules", probability = 0.7 }}

# Events and webhook alerts that name the handler rule, or an existing alert, reach remediation and dedup.
[[operations]]
include-operation-id = "receiveEvent"
[operations.parameters]
"body.labels.alertname" = {{ dictionary = "rules", probability = 0.3 }}
"body.fingerprint" = {{ dictionary = "fingerprints", probability = 0.3 }}

[[operations]]
include-operation-id = "receiveAlertmanagerWebhook"
[operations.parameters]
"body.alerts[*].fingerprint" = {{ dictionary = "fingerprints", probability = 0.3 }}
""")
    return path


def _alerting_fixtures(client: httpx.Client, rule: str) -> tuple[list[str], list[str]]:
    """A handler rule, an alert fired through it, a live and an expired silence: (fingerprints, silences)."""
    handler = {"name": rule, "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}]}
    assert client.post("/api/v1/alert-rules", json=handler).status_code == 201
    fired = client.post("/api/v1/events", json={"labels": {"alertname": rule, "service": "st"}})
    assert fired.status_code == 202, fired.text
    silence = {"matchers": ['service="st-none"'], "ends_at": time.time() + 3600, "created_by": "st"}
    live = client.post("/api/v1/silences", json={**silence, "comment": "live"}).json()["id"]
    expired = client.post("/api/v1/silences", json={**silence, "comment": "expired"}).json()["id"]
    assert client.delete(f"/api/v1/silences/{expired}").status_code == 200
    return [fired.json()["fingerprint"]], [live, expired]


def test_no_server_error_and_no_schema_violation(server: ApiServer, tmp_path: Path) -> None:
    from django.db.models import Q

    from automation.alerting.services.config import apply_document
    from automation.incidents.services.catalog import apply_services, current_services
    from automation.incidents.services.escalation_config import apply_escalation, as_json, current_escalation
    from automation.models import AlertingConfig, IncidentAlert, WorkflowRun
    from automation.runs.control import cancel

    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    workflow = unique("st-gate")
    definition = {
        "name": workflow,
        "inputs": {},
        "actions": [
            {
                "name": "gate",
                "action_type": "control.approval",
                "parameters": {"approvers": ["alice"], "timeout_seconds": 3, "poll_seconds": 0.5},
            }
        ],
    }
    assert client.post("/api/v1/workflows", json=definition).status_code == 201
    waiting = client.post(f"/api/v1/workflows/{workflow}/runs", json={}).json()["run_id"]
    finished = client.post(f"/api/v1/workflows/{workflow}/runs", json={}).json()["run_id"]
    assert client.post(f"/api/v1/runs/{finished}/cancel", json={}).status_code == 202
    wait_for(lambda: "approvers" in client.get(f"/api/v1/runs/{waiting}").json()["steps"][0]["approval"])

    rule = unique("st_rule")
    before = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() or {}
    services = current_services().model_dump()
    escalation = as_json(current_escalation())
    fingerprints, silences = _alerting_fixtures(client, rule)
    incidents = list(
        IncidentAlert.objects.filter(fingerprint__in=fingerprints).values_list("incident_id", flat=True)
    )
    assert incidents, "the alert opened an incident"
    config = _config(
        tmp_path / "schemathesis.toml",
        workflow=workflow,
        runs=[waiting, finished],
        rule=rule,
        fingerprints=fingerprints,
        silences=silences,
        incidents=incidents,
    )
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run"]
    command += [f"{server.url}/api/v1/openapi.json", "--header", f"Authorization: Bearer {TOKEN}"]
    command += ["--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)]
    # One worker: hypothesis, shared by the workers' threads, is not thread-safe (seen: "AST constructor
    # recursion depth mismatch").
    command += ["--workers", "1", "--request-timeout", "20", "--no-color"]
    ran = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = ran.stdout + ran.stderr
    saved = STATE_DIR / f"{workflow}-schemathesis.txt"
    saved.write_text(report)
    try:
        assert ran.returncode == 0, f"{report[-6000:]}\n(whole report: {saved})"
        counted = re.search(r"(\d+) generated, (\d+) passed", report)
        assert counted and counted.group(1) == counted.group(2), report[-3000:]
        assert int(counted.group(1)) > 300, report[-3000:]
        # The server's own access log, independently of schemathesis' verdict.
        statuses = re.findall(r'" (\d{3}) ', server.log())
        assert len(statuses) > 300 and not [s for s in statuses if s.startswith("5")], report[-3000:]
        assert {"202", "409", "422", "404", "200", "201", "204"} <= set(statuses)
    finally:
        # Generated events may have started remediation runs of the handler rule (behind an approval).
        ours = Q(workflow__name=workflow) | Q(workflow__name__startswith=f"alert.{rule}")
        for run in WorkflowRun.objects.filter(ours, status__in=("pending", "running")):
            with contextlib.suppress(StateError):  # it may end on its own meanwhile
                cancel(run.id, reason="schemathesis test over")
        # Schemathesis replaced the alerting, services and escalation documents many times: the next tests
        # find them as they were.
        apply_document(before)
        apply_services(services)
        apply_escalation(escalation)
