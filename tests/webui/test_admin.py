"""The admin and the run page over HTTP (Django's test client on the real PostgreSQL database): every
admin loads for an admin, none for an anonymous visitor, read-only admins offer nothing to add or
delete, permissions decide the rest, and secrets never reach a page."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
from django.test import Client

from automation import ActionDefinition, WorkflowDefinition
from automation.secrets import MASK
from tests.conftest import ROOT, unique
from tests.webui.users import PASSWORD, logged_in, make_user


@pytest.fixture(scope="module")
def objects(engine: Any) -> dict[str, Any]:
    """A workflow of two versions, a run of it with a secret input and a step output holding a token,
    a silence."""
    from automation.alerting.services.silences import create_silence
    from automation.models import StepRun, Workflow
    from automation.runs import services

    name = unique("ui")

    def version(timeout: int) -> WorkflowDefinition:
        return WorkflowDefinition(
            name=name,
            inputs={"api_password": {"type": "string", "secret": True}},
            actions=[
                ActionDefinition(name="fetch", action_type="control.wait", parameters={"seconds": 1}),
                ActionDefinition(
                    name="call",
                    action_type="notification.webhook",
                    parameters={
                        "url": "http://127.0.0.1:9/hook?token=url-secret",
                        "text": "deployed",
                        "timeout": timeout,
                    },
                    depends_on=["fetch"],
                ),
            ],
        )

    engine.register_workflow(version(5))
    engine.register_workflow(version(9))
    workflow = Workflow.objects.get(name=name)
    latest = workflow.versions.get(version=2)
    run, _ = services.create_run(
        workflow_id=workflow.id,
        version_id=latest.id,
        version_number=2,
        actions=latest.definition["actions"],
        inputs={"api_password": "hunter2"},
        idempotency_key=None,
        queue="default",
    )
    StepRun.objects.filter(run=run, name="fetch").update(output={"token": "tok-leak", "waited_seconds": 1})
    now = time.time()
    silence = create_silence(
        matchers=["service=ui-test"], starts_at=now, ends_at=now + 3600, created_by="test", comment="ui",
        now=now,
    )
    return {"workflow": workflow, "run": run, "silence": silence}


def registered() -> list[tuple[Any, Any]]:
    from automation.webui.admin import site

    return list(site._registry.items())


def changelist(model: Any) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def test_every_admin_loads_for_an_admin_and_offers_nothing_to_add_or_delete(objects: dict[str, Any]) -> None:
    client = logged_in(make_user(superuser=True))
    index = client.get("/admin/")
    assert index.status_code == 200
    for model, model_admin in registered():
        page = client.get(changelist(model))
        assert page.status_code == 200, model
        assert b"addlink" not in page.content, model
        assert client.get(changelist(model) + "add/").status_code == 403, model
        assert b'value="delete_selected"' not in page.content, model
    # the change pages of the objects we made: shown, nothing to save or delete
    for obj in (objects["workflow"], objects["run"], objects["silence"]):
        page = client.get(f"{changelist(type(obj))}{obj.pk}/change/")
        assert page.status_code == 200, obj
        assert b'name="_save"' not in page.content and b"deletelink" not in page.content, obj
        assert client.post(f"{changelist(type(obj))}{obj.pk}/delete/").status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_form(objects: dict[str, Any]) -> None:
    client = Client()
    for model, _ in registered():
        page = client.get(changelist(model))
        assert page.status_code == 302 and page["Location"].startswith("/admin/login/?next="), model
    page = client.get(f"/ui/runs/{objects['run'].id}")
    assert page.status_code == 302 and page["Location"].startswith("/admin/login/?next=/ui/runs/")
    login = client.get("/admin/login/")
    assert login.status_code == 200 and b'name="username"' in login.content
    # a user who is not staff cannot log in to the admin at all
    outsider = make_user(staff=False)
    answer = client.post("/admin/login/", {"username": outsider.username, "password": PASSWORD})
    assert answer.status_code == 200 and b"errornote" in answer.content


def test_roles_decide_what_a_staff_member_sees(objects: dict[str, Any]) -> None:
    run = objects["run"]
    reader = logged_in(make_user(roles=("viewer",)))
    assert reader.get("/admin/automation/workflowrun/").status_code == 200
    assert reader.get(f"/ui/runs/{run.id}").status_code == 200
    assert reader.get("/admin/automation/alertrule/").status_code == 200
    assert reader.get("/admin/automation/apitoken/").status_code == 403
    assert reader.get("/admin/automation/auditentry/").status_code == 403
    index = reader.get("/admin/").content.decode()
    assert "Workflow runs" in index and "Alert rules" in index and "Audit" not in index
    operator = logged_in(make_user(roles=("operator",)))
    assert operator.get("/admin/automation/auditentry/").status_code == 200
    assert operator.get("/admin/automation/apitoken/").status_code == 403
    service = logged_in(make_user(roles=("service",)))  # reads only the runs it started, through the API
    assert service.get("/admin/automation/workflowrun/").status_code == 403
    assert service.get(f"/ui/runs/{run.id}").status_code == 403
    nobody = logged_in(make_user())
    assert nobody.get("/admin/automation/workflowrun/").status_code == 403
    assert nobody.get(f"/ui/runs/{run.id}").status_code == 403


def test_runs_filter_by_workflow_status_and_time(objects: dict[str, Any]) -> None:
    client = logged_in(make_user(superuser=True))
    workflow, run = objects["workflow"], objects["run"]
    mine = client.get(f"/admin/automation/workflowrun/?workflow__id__exact={workflow.id}")
    assert mine.status_code == 200 and str(run.id)[:8].encode() in mine.content
    assert f'href="/ui/runs/{run.id}"'.encode() in mine.content
    runs = "/admin/automation/workflowrun/"
    none = client.get(runs, {"workflow__id__exact": workflow.id, "status__exact": "failed"})
    assert none.status_code == 200 and str(run.id)[:8].encode() not in none.content
    today = run.created_at
    dated = client.get(
        "/admin/automation/workflowrun/",
        {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day},
    )
    assert dated.status_code == 200 and str(run.id)[:8].encode() in dated.content
    detail = client.get(f"/admin/automation/workflowrun/{run.id}/change/").content.decode()
    assert "fetch" in detail and "call" in detail and "notification.webhook" in detail  # the step table
    assert "hunter2" not in detail and "tok-leak" not in detail and MASK in detail


def test_the_run_page_draws_every_step_and_shows_no_secret(objects: dict[str, Any]) -> None:
    client = logged_in(make_user(superuser=True))
    run = objects["run"]
    page = client.get(f"/ui/runs/{run.id}").content.decode()
    assert page.count('<g class="step"') == 2 and page.count('class="edge"') == 1
    assert 'data-step="fetch" data-status="pending"' in page
    assert 'id="step-call"' in page and "waited_seconds" in page
    assert "hunter2" not in page and "tok-leak" not in page and "url-secret" not in page
    assert '<meta http-equiv="refresh"' in page  # still pending: the page reloads itself
    assert client.get("/ui/runs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/ui/runs/not-a-uuid").status_code == 404
    assert client.post(f"/ui/runs/{run.id}").status_code == 405


def test_two_versions_are_shown_as_a_diff_with_secrets_masked(objects: dict[str, Any]) -> None:
    client = logged_in(make_user(superuser=True))
    url = f"/admin/automation/workflow/{objects['workflow'].id}/diff/"
    diff = client.get(url, {"from": 1, "to": 2})
    assert diff.status_code == 200
    text = diff.content.decode()
    assert '<div class="removed">-' in text and '&quot;timeout&quot;: 5' in text
    assert '<div class="added">+' in text and '&quot;timeout&quot;: 9' in text
    assert "url-secret" not in text
    whole = client.get(url, {"to": 1}).content.decode()
    assert "notification.webhook" in whole and "url-secret" not in whole
    assert client.get(url).status_code == 200  # the latest against the one before
    assert client.get(url, {"from": 7, "to": 2}).status_code == 404
    detail = client.get(f"/admin/automation/workflow/{objects['workflow'].id}/change/").content.decode()
    assert "diff with v1" in detail


def test_a_silence_is_expired_through_its_service_only_by_who_may(objects: dict[str, Any]) -> None:
    from automation.models import AuditEntry, Silence

    silence = objects["silence"]
    action = {"action": "expire", "_selected_action": [str(silence.pk)]}
    reader = logged_in(make_user(roles=("viewer",)))
    assert b'value="expire"' not in reader.get("/admin/automation/silence/").content
    reader.post("/admin/automation/silence/", action)
    assert Silence.objects.get(pk=silence.pk).ends_at.timestamp() > time.time()
    responder = make_user(roles=("responder",))
    admin_client = logged_in(responder)
    assert b'value="expire"' in admin_client.get("/admin/automation/silence/").content
    done = admin_client.post("/admin/automation/silence/", action, follow=True)
    assert done.status_code == 200 and b"1 expired" in done.content
    assert Silence.objects.get(pk=silence.pk).ends_at.timestamp() <= time.time()
    entry = AuditEntry.objects.get(action="silence.expired", object_id=str(silence.pk))
    assert (entry.actor, entry.source) == (responder.username, "admin")
    again = admin_client.post("/admin/automation/silence/", action, follow=True)
    assert b"already expired" in again.content


def test_schedules_show_their_inputs_masked_and_change_only_where_a_role_may(objects: dict[str, Any]) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from automation.models import AuditEntry
    from automation.timetables.services import get_schedule, save_schedule

    name = unique("nightly")
    workflow = objects["workflow"].name
    save_schedule({"name": name, "workflow": workflow, "every": "5m", "inputs": {"api_password": "hunter2"}})
    row = get_schedule(name)
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    job = PeriodicTask.objects.create(name=unique("engine-job"), task="automation.noop", interval=every)
    tasks = "/admin/django_celery_beat/periodictask/"
    admin_client = logged_in(make_user(superuser=True))
    page = admin_client.get(f"{tasks}{row.pk}/change/").content.decode()
    assert workflow in page and MASK in page
    assert "hunter2" not in page and 'name="_save"' not in page  # a workflow schedule: read-only here
    # no form edits of an engine job either: only enable and disable
    assert 'name="_save"' not in admin_client.get(f"{tasks}{job.pk}/change/").content.decode()
    listing = admin_client.get(tasks).content.decode()
    assert 'value="disable_tasks"' in listing and 'value="run_tasks"' not in listing
    disable = {"action": "disable_tasks", "_selected_action": [str(job.pk)]}
    reader = logged_in(make_user(roles=("viewer",)))
    assert 'value="disable_tasks"' not in reader.get(tasks).content.decode()
    reader.post(tasks, disable)
    assert PeriodicTask.objects.get(pk=job.pk).enabled
    assert reader.post(f"{tasks}{job.pk}/change/", {}).status_code == 403
    admin_client.post(tasks, disable)
    assert not PeriodicTask.objects.get(pk=job.pk).enabled
    entry = AuditEntry.objects.get(action="beat_job.disabled", object_id=job.name)
    assert entry.source == "admin"


def test_the_api_still_takes_posts_without_a_csrf_token(engine: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    answer = client.post("/api/v1/workflows", {"name": ""}, content_type="application/json")
    assert answer.status_code == 422, answer.content


def test_createsuperuser_makes_a_user_who_can_log_in(engine: Any) -> None:
    name = unique("root")
    env = {**os.environ, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "automation.cli.main", "createsuperuser", "--noinput"]
    command += ["--username", name]
    made = subprocess.run([*command, "--email", "root@example.com"], cwd=ROOT, env=env, capture_output=True)
    assert made.returncode == 0, made.stderr
    assert Client().login(username=name, password=PASSWORD)
    twice = subprocess.run([*command, "--email", "x@example.com"], cwd=ROOT, env=env, capture_output=True)
    assert twice.returncode == 2 and b"already taken" in twice.stderr


def test_the_permission_check_refuses_unknown_names_and_inactive_users(engine: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    from automation.webui.permissions import UnknownPermission, allowed

    root = make_user(superuser=True)
    assert allowed(root, "system:admin") and allowed(root, "audit:read")
    with pytest.raises(UnknownPermission, match="runs:raed"):
        allowed(root, "runs:raed")
    root.is_active = False
    assert not allowed(root, "runs:read")
    assert not allowed(AnonymousUser(), "runs:read")
    reader = make_user(roles=("viewer",))
    assert allowed(reader, "runs:read") and not allowed(reader, "system:admin")
    assert not allowed(reader, "audit:read") and not allowed(reader, "silences:write")
    assert allowed(make_user(roles=("responder",)), "silences:write")


def test_the_ui_is_off_beyond_loopback_with_the_public_development_key(objects: dict[str, Any]) -> None:
    from django.test import override_settings

    client = logged_in(make_user(superuser=True))
    with override_settings(AUTOMATION_API_REQUIRE_AUTH=True, SECRET_KEY="automation-insecure-dev-key"):
        refused = client.get("/admin/login/")
        assert refused.status_code == 503 and b"AUTOMATION_SECRET_KEY" in refused.content
        assert client.get("/healthz").status_code == 200  # the API is not the UI
    with override_settings(AUTOMATION_API_REQUIRE_AUTH=True, SECRET_KEY="a-real-secret-" + "x" * 40):
        assert client.get("/admin/login/").status_code in (200, 302)
