"""Scheduled workflows: stored in django-celery-beat's tables from the CLI, the API and Python; bad input
refused naming the field; one run per slot, with two real Beats sending the schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from automation import ActionDefinition, WorkflowDefinition
from automation.errors import DefinitionError
from automation.timetables.definitions import ScheduleDefinition
from tests.alerting.test_alerting_cli import cli, one_line_error
from tests.api_server import ApiServer
from tests.conftest import ROOT, STATE_DIR, unique, wait_for

TOKEN = "schedules-t0ken"


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('schedules-api')}.log", tokens=TOKEN, workers=1)
    yield started
    started.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        yield c


def _errors(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as refused:
        ScheduleDefinition.parse({"name": "nightly", "workflow": "backup", **document})
    return refused.value.errors


def test_a_schedule_needs_one_valid_timing_and_a_known_time_zone() -> None:
    assert ScheduleDefinition.parse({"name": "n", "workflow": "w", "cron": "*/5 * * * *"}).period == 60.0
    assert ScheduleDefinition.parse({"name": "n", "workflow": "w", "every": "5m"}).period == 300.0
    assert _errors({}) == [("cron", "give exactly one of `cron` and `every`")]
    assert _errors({"cron": "* * * * *", "every": 60})[0][1] == "give exactly one of `cron` and `every`"
    [(field, reason)] = _errors({"cron": "61 * * * *"})
    assert field == "cron" and reason.startswith("cron minute '61' is not valid")
    [(field, reason)] = _errors({"cron": "* * * *  "})
    assert field == "cron" and "has 4 fields; five are needed" in reason
    [(field, reason)] = _errors({"every": 2})
    assert field == "every" and "10" in reason
    [(field, reason)] = _errors({"cron": "0 3 * * *", "timezone": "Mars/Olympus"})
    assert field == "timezone" and "not a known IANA time zone" in reason
    [(field, _)] = _errors({"every": 60, "colour": "red"})
    assert field == "colour"
    assert _errors({"every": 10.5}) == [("every", "`every` must be a whole number of seconds")]


def _workflow(engine: Any) -> str:
    name = unique("nightly")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            inputs={"who": {"type": "string", "required": True}},
            actions=[ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 0})],
        )
    )
    return name


@pytest.mark.integration
def test_cli_stores_lists_and_deletes_and_refuses_what_would_fail_every_slot(engine: Any) -> None:
    from django_celery_beat.models import PeriodicTask

    workflow = _workflow(engine)
    name = unique("sched")
    assert "workflow: workflow 'nope' is not registered" in one_line_error(
        cli("schedule", "add", "nope", "--every", "1m", "--name", name)
    )
    assert "inputs.who" in one_line_error(cli("schedule", "add", workflow, "--every", "1m", "--name", name))
    assert "cron minute '99'" in one_line_error(
        cli("schedule", "add", workflow, "--cron", "99 * * * *", "-i", "who=ops", "--name", name)
    )
    assert not PeriodicTask.objects.filter(name__endswith=name).exists()
    added = cli("schedule", "add", workflow, "--cron", "*/5 * * * *", "-i", "who=ops", "--name", name,
                "--timezone", "Europe/Paris")
    assert added.returncode == 0, added.stderr
    row = PeriodicTask.objects.get(name=f"workflow:{name}")
    assert row.task == "automation.schedules.run_workflow" and row.crontab.minute == "*/5"
    assert str(row.crontab.timezone) == "Europe/Paris" and row.enabled
    listed = cli("schedule", "list")
    assert name in listed.stdout and "cron '*/5 * * * *' Europe/Paris" in listed.stdout
    assert cli("schedule", "delete", name).returncode == 0
    assert not PeriodicTask.objects.filter(name=f"workflow:{name}").exists()
    assert one_line_error(cli("schedule", "delete", name)) == f"schedule '{name}' does not exist"


@pytest.mark.integration
def test_the_api_stores_replaces_and_deletes_a_schedule(engine: Any, client: httpx.Client) -> None:
    workflow = _workflow(engine)
    name = unique("api")
    refused = client.post("/api/v1/schedules", json={"name": name, "workflow": workflow, "every": 5})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "every"
    created = client.post(
        "/api/v1/schedules", json={"name": name, "workflow": workflow, "every": "1h", "inputs": {"who": "a"}}
    )
    assert created.status_code == 201, created.text
    assert created.json() | {"last_run_at": None} == created.json() and created.json()["every"] == 3600
    replaced = client.put(f"/api/v1/schedules/{name}", json={"workflow": workflow, "cron": "0 3 * * *",
                                                             "inputs": {"who": "b"}})
    assert replaced.status_code == 200 and replaced.json()["cron"] == "0 3 * * *"
    assert "every" not in replaced.json() and replaced.json()["inputs"] == {"who": "b"}
    assert name in [s["name"] for s in client.get("/api/v1/schedules").json()["schedules"]]
    too_big = client.put(f"/api/v1/schedules/{name}", json={"workflow": workflow, "every": 60,
                                                             "inputs": {"who": "x" * 70_000}})
    assert too_big.status_code == 422 and "65536 bytes" in too_big.text
    assert client.get(f"/api/v1/schedules/{name}").json()["inputs"] == {"who": "b"}  # nothing stored
    assert client.delete(f"/api/v1/schedules/{name}").status_code == 204
    assert client.get(f"/api/v1/schedules/{name}").status_code == 404


@pytest.mark.integration
def test_every_message_of_a_slot_starts_the_same_run(engine: Any) -> None:
    from automation.timetables.services import fire

    workflow = _workflow(engine)
    name = unique("slot")
    now = 1_800_000_000.0
    first = fire(name, workflow, {"who": "ops"}, 60.0, now)
    assert first is not None
    assert fire(name, workflow, {"who": "ops"}, 60.0, now + 59) == first  # a second Beat, a redelivery
    later = fire(name, workflow, {"who": "ops"}, 60.0, now + 60)
    assert later not in (None, first)
    assert fire(name, "gone", {}, 60.0, now) is None  # logged, never retried


@pytest.mark.integration
@pytest.mark.usefixtures("worker")
def test_two_beats_start_one_run_per_slot(engine: Any) -> None:
    from automation.models import WorkflowRun
    from automation.timetables.services import delete_schedule, save_schedule

    workflow = _workflow(engine)
    name = unique("twobeats")
    beats = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "automation", "beat", "-l", "INFO",
             "-s", str(STATE_DIR / f"beat-{k}.db")],
            cwd=ROOT, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for k in range(2)
    ]
    runs = WorkflowRun.objects.filter(workflow__name=workflow)
    try:
        save_schedule({"name": name, "workflow": workflow, "every": 10, "inputs": {"who": "beat"}})
        started = time.time()
        wait_for(lambda: runs.count() >= 3, timeout=90)
        elapsed = time.time() - started
    finally:
        delete_schedule(name)
        for beat in beats:
            beat.terminate()
        for beat in beats:
            beat.wait(20)
    keys = list(runs.values_list("idempotency_key", flat=True))
    slots = sorted(int(key.rsplit(":", 1)[1]) for key in keys)
    assert len(set(slots)) == len(slots), keys  # one run per slot
    assert slots == list(range(slots[0], slots[0] + len(slots))), slots  # every slot, none twice
    assert len(slots) <= elapsed / 10 + 2
    wait_for(lambda: not runs.exclude(status="succeeded").exists(), timeout=60)


@pytest.mark.integration
def test_secret_inputs_are_masked_and_never_travel_in_beats_messages(engine: Any) -> None:
    from django_celery_beat.models import PeriodicTask

    from automation.timetables.services import delete_schedule, save_schedule

    workflow = unique("secretive")
    engine.register_workflow(
        WorkflowDefinition(
            name=workflow,
            inputs={"token": {"type": "string", "required": True, "secret": True}},
            actions=[ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 0})],
        )
    )
    name = unique("masked")
    save_schedule({"name": name, "workflow": workflow, "every": 60, "inputs": {"token": "hunter2-s3cret"}})
    try:
        assert "hunter2" not in PeriodicTask.objects.get(name=f"workflow:{name}").kwargs
        shown = cli("schedule", "show", name)
        assert shown.returncode == 0 and "hunter2" not in shown.stdout and '"token"' in shown.stdout
        assert "hunter2" not in cli("schedule", "list", "--json").stdout
    finally:
        delete_schedule(name)
