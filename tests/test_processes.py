"""Beat, Flower and the compose file: the processes an operator starts, started (or checked) for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from automation.fleet.identity import Claimant
from automation.runs.claims import Claim
from tests.conftest import ROOT, STATE_DIR, answers_ok, free_port, wait_for

TEST_CLAIM = Claim(claimant=Claimant(node="test-node", pid=1), token="test-token")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_beat_merges_the_static_schedule_at_the_applied_monitoring_interval(engine: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    import beat_schedule
    from automation.config.apply import apply_config

    # Not the default: a Beat that ignored the applied interval would write DEFAULT_MONITORING_INTERVAL.
    applied = engine.config.model_copy(update={"monitoring_interval": 37})
    assert applied.monitoring_interval != beat_schedule.DEFAULT_MONITORING_INTERVAL
    apply_config(applied)
    jobs = PeriodicTask.objects.filter(name__in=beat_schedule.MONITORING_JOBS)
    jobs.delete()  # so what is found below was written by Beat itself
    schedule_db = STATE_DIR / "beat.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "beat", "-l", "INFO", "-s", str(schedule_db)],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def written() -> bool:
            assert process.poll() is None, "beat exited"
            return jobs.count() == len(beat_schedule.MONITORING_JOBS)

        wait_for(written)
        tasks = {task.name: task for task in jobs.select_related("interval")}
        static = beat_schedule.build_schedule()
        assert {name: task.task for name, task in tasks.items()} == {
            name: static[name]["task"] for name in beat_schedule.MONITORING_JOBS
        }
        for task in tasks.values():
            assert (task.interval.every, task.interval.period) == (37, IntervalSchedule.SECONDS), task.name
            assert task.queue == "critical" and task.enabled, task.name
            assert task.expire_seconds == 37, "a job not taken within its period is dropped"
    finally:
        _stop(process)
        apply_config(engine.config)


def test_stalled_run_is_dispatched_again_by_the_monitoring_job(engine: Any, worker: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from automation import ActionDefinition
    from automation.engine import RunHandle
    from automation.models import WorkflowRun
    from automation.runs.recovery import redispatch_stalled, send_marked_runs
    from tests.conftest import stored_run

    # Runs other tests left unfinished are marked first: only this test's run is counted below.
    redispatch_stalled()
    # An enqueuer that died after storing the run and before sending its canvas.
    run = stored_run(
        engine,
        "stalled",
        ActionDefinition(
            name="pause", action_type="control.wait", parameters={"seconds": 0}, timeout_seconds=10
        ),
    )
    assert redispatch_stalled() == 0, "too early: it may still be on its way"
    WorkflowRun.objects.filter(id=run.id).update(dispatched_at=timezone.now() - timedelta(minutes=10))
    assert redispatch_stalled() == 1
    assert send_marked_runs() >= 1
    assert WorkflowRun.objects.get(id=run.id).generation == 1, "sent again as a new generation"
    assert RunHandle(run.id).wait(30).status == "succeeded"
    assert redispatch_stalled() == 0, "a finished run is left alone"


def test_flower_starts_with_the_project_config(database: None) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "flower", "--conf=flower.cfg", f"--port={port}"],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert answers_ok(f"http://127.0.0.1:{port}/healthcheck", process), "flower did not answer"
        assert httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2).text.strip() == "OK"
    finally:
        _stop(process)


def test_compose_file_runs_only_commands_that_exist() -> None:
    from automation.cli.main import cli

    compose = yaml.safe_load(Path(ROOT, "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker", "beat", "flower", "migrate"} <= set(services)
    celery_commands = {"worker", "beat", "flower"}
    for name, service in services.items():
        command = service.get("command")
        if service.get("image", "").startswith(("postgres", "redis")):
            continue
        assert command, name
        if command[0] == "automation":
            assert command[1] in cli.commands, (name, command)
        else:
            assert command[:3] == ["celery", "-A", "automation"] and command[3] in celery_commands, (
                name,
                command,
            )
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["AUTOMATION_BROKER_URL"].startswith(
            "redis://"
        )
    worker_queues = services["worker"]["command"][services["worker"]["command"].index("-Q") + 1].split(",")
    assert set(worker_queues) == {"critical", "high", "default", "low", "celery"}


def test_step_killed_at_its_hard_limit_is_settled_from_the_recorded_failure(engine: Any) -> None:
    from datetime import timedelta

    from billiard.exceptions import TimeLimitExceeded
    from django.utils import timezone

    from automation import ActionDefinition
    from automation.celery import app
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import settle_lost_steps
    from tests.conftest import stored_run

    run = stored_run(
        engine,
        "killed",
        ActionDefinition(
            name="stuck", action_type="control.wait", parameters={"seconds": 0}, timeout_seconds=5
        ),
        ActionDefinition(name="after", action_type="control.wait", parameters={"seconds": 0}),
    )
    claimed = services.claim_step(run.id, "stuck", claim=TEST_CLAIM)
    assert claimed is not None
    step = StepRun.objects.get(id=claimed.id)
    # What the pool does when it kills a task at its hard limit: the failure lands in the result backend.
    app.backend.mark_as_failure(step.task_id, TimeLimitExceeded(20))
    # Counts include what other tests left running in this database: the step's own state is checked.
    settle_lost_steps()
    step.refresh_from_db()
    assert step.status == "running", "too early: the step is still within its time limit"
    later = timezone.now() + timedelta(minutes=2)
    assert settle_lost_steps(later) >= 1
    step.refresh_from_db()
    assert step.status == "failed" and "TimeLimitExceeded" in step.error
    assert WorkflowRun.objects.get(id=run.id).status == "failed"
    assert StepRun.objects.get(run_id=run.id, name="after").status == "skipped"


def test_internal_step_whose_completion_was_lost_runs_again_as_the_same_attempt(engine: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from automation import ActionDefinition
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import settle_lost_steps
    from tests.conftest import stored_run

    run = stored_run(
        engine,
        "lost-completion",
        ActionDefinition(
            name="only", action_type="control.wait", parameters={"seconds": 0}, timeout_seconds=5,
            retry_attempts=0,
        ),
    )
    claimed = services.claim_step(run.id, "only", claim=TEST_CLAIM)
    assert claimed is not None and claimed.attempt == 1
    # The task succeeded and its message was acknowledged, but the completion (written without waiting
    # for the disk) was lost in a database crash: nothing in the result backend says so.
    # Counts include what other tests left running in this database: the step's own state is checked.
    settle_lost_steps()
    row = StepRun.objects.get(id=claimed.id)
    assert not row.deferred, "too early: the step is still within its time limit"
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None
    assert settle_lost_steps(timezone.now() + timedelta(minutes=2)) >= 1
    row = StepRun.objects.get(id=claimed.id)
    assert row.status == "running" and row.deferred and row.due_at is not None
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    settle_lost_steps(timezone.now() + timedelta(minutes=3))
    assert StepRun.objects.get(id=claimed.id).touched_at == row.touched_at, "settled once"
    # The copy sent again resumes the same attempt (a step with no retries left is not failed for it).
    again = Claim(claimant=Claimant(node="other-node", pid=2), token="b" * 32, previous="", generation=0)
    resumed = services.claim_step(run.id, "only", claim=again)
    assert resumed is not None and resumed.attempt == 1
    services.complete_step(resumed.id, run_id=run.id, output={}, sink=True)
    assert StepRun.objects.get(id=claimed.id).status == "succeeded"
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_step_acting_outside_is_not_run_again_when_no_outcome_is_recorded(engine: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from automation import ActionDefinition
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import settle_lost_steps
    from tests.conftest import stored_run

    run = stored_run(
        engine,
        "outside",
        ActionDefinition(
            name="call", action_type="http.request", parameters={"url": "http://127.0.0.1:9/"},
            timeout_seconds=5,
        ),
    )
    claimed = services.claim_step(run.id, "call", claim=TEST_CLAIM)
    assert claimed is not None
    # Its completion waits for the disk: no outcome recorded does not mean a lost completion, and the
    # recovery job does not run it again as one (the stalled-run sweep's takeover is the only path left).
    settle_lost_steps(timezone.now() + timedelta(minutes=2))
    assert StepRun.objects.get(id=claimed.id).status == "running"
    assert not StepRun.objects.get(id=claimed.id).deferred
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None


def test_a_step_acting_outside_completes_durably_an_internal_one_does_not(
    engine: Any, peer: Any, monkeypatch: Any
) -> None:
    from automation import ActionDefinition
    from automation.actions.registry import get_action
    from automation.runs import executor, services
    from tests.conftest import stored_run

    run = stored_run(
        engine,
        "durability",
        ActionDefinition(name="call", action_type="http.request", parameters={"url": f"{peer.url}/x"}),
        ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 0}),
    )
    seen: dict[str, bool] = {}
    real = services.complete_step

    def recording(step_id: int, **kwargs: Any) -> None:
        seen[str(kwargs["output"])] = kwargs["durable"]
        real(step_id, **kwargs)

    monkeypatch.setattr(services, "complete_step", recording)
    for step, action_type in (("call", "http.request"), ("pause", "control.wait")):
        spec = get_action(action_type)
        assert spec is not None
        executor.run_claimed_step(spec, run.id, step, {}, TEST_CLAIM)
    durable = {("waited" in output): flag for output, flag in seen.items()}
    assert durable == {False: True, True: False}, seen
    assert len(peer.received) == 1


def test_internal_step_waiting_for_its_next_attempt_is_not_run_again_early(engine: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from automation import ActionDefinition
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import settle_lost_steps
    from tests.conftest import stored_run

    run = stored_run(
        engine,
        "between-attempts",
        ActionDefinition(
            name="only", action_type="workflow.start", parameters={"workflow": "nope"}, timeout_seconds=5,
            retry_attempts=3,
        ),
    )
    claimed = services.claim_step(run.id, "only", claim=TEST_CLAIM)
    assert claimed is not None and claimed.attempt == 1
    # Attempt 1 failed; attempt 2 is due in two minutes (a backoff longer than the step's time limit).
    services.record_retry(claimed.id, error="boom", countdown=120)
    settle_lost_steps(timezone.now() + timedelta(minutes=1))
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None
    assert not StepRun.objects.get(id=claimed.id).deferred
    again = Claim(claimant=Claimant(node="other-node", pid=2), token="c" * 32, previous="", generation=0)
    resumed = services.claim_step(run.id, "only", claim=again)
    assert resumed is not None and resumed.attempt == 2, "the next attempt is counted"
