"""The fleet on real processes: malformed messages set aside (the worker goes on), heartbeats, the API and
CLI views of both, and the recovery decisions that read them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from automation import ActionDefinition
from tests.conftest import REDIS_URL, ROOT, stored_run, unique, wait_for

ROUTED = {"exchange": "celery", "routing_key": "celery"}
POISON = [
    ("not JSON", b"this is not json {{{"),
    (
        "not valid base64",
        json.dumps(
            {
                "body": "!!!not-base64",
                "headers": {"task": "automation.run_workflow", "id": "p1"},
                "properties": {"delivery_tag": "p1", "body_encoding": "base64", "delivery_info": ROUTED},
                "content-type": "application/json",
                "content-encoding": "utf-8",
            }
        ).encode(),
    ),
    ("an object", b"[1, 2, 3]"),
    (
        "delivery_tag is not a non-empty string",
        json.dumps(
            {"body": "", "headers": {}, "properties": {"delivery_tag": None, "delivery_info": ROUTED}}
        ).encode(),
    ),
    (
        "timelimit is not two numbers or nulls",
        json.dumps(
            {
                "body": "W1tdLCB7fSwge31d",  # base64 of [[], {}, {}]
                "headers": {"task": "automation.action.control.wait", "id": "p4:x", "timelimit": ["a", "b"]},
                "properties": {"delivery_tag": "p4", "body_encoding": "base64", "delivery_info": ROUTED},
                "content-type": "application/json",
                "content-encoding": "utf-8",
            }
        ).encode(),
    ),
    (
        "no exchange and routing_key",
        json.dumps(
            {"body": "", "headers": {}, "properties": {"delivery_tag": "p3", "delivery_info": {}}}
        ).encode(),
    ),
    (
        "body does not decode",
        json.dumps(
            {
                "body": "bm90IGpzb24=",  # base64 of "not json"
                "headers": {"task": "automation.run_workflow", "id": "p2"},
                "properties": {"delivery_tag": "p2", "body_encoding": "base64", "delivery_info": ROUTED},
                "content-type": "application/json",
                "content-encoding": "utf-8",
            }
        ).encode(),
    ),
]


@pytest.mark.usefixtures("worker")
def test_malformed_messages_are_set_aside_and_the_worker_goes_on(engine: Any, worker: Any) -> None:
    import redis

    from automation.models import DeadLetter

    client = redis.Redis.from_url(REDIS_URL)
    before = DeadLetter.objects.count()
    try:
        for _, raw in POISON:
            client.lpush("celery", raw)
    finally:
        client.close()
    try:
        wait_for(lambda: DeadLetter.objects.count() >= before + len(POISON), timeout=30)
    except AssertionError:
        raise AssertionError(worker.log()[-4000:]) from None
    reasons = list(DeadLetter.objects.order_by("-id").values_list("reason", flat=True)[: len(POISON)])
    for expected in POISON:
        assert any(expected[0] in reason for reason in reasons), (expected[0], reasons)
    assert worker.process.poll() is None, worker.log()[-3000:]
    # And it still runs work: a run enqueued by name through the same intake queue.
    name = unique("after-poison")
    from automation import WorkflowDefinition

    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})],
        )
    )
    assert engine.run_workflow(name).wait(30).status == "succeeded"


def test_dead_letters_show_their_payload_with_secrets_masked(database: None) -> None:
    from automation.broker.deadletter import set_aside
    from automation.fleet.services import dead_letter_json, get_dead_letter

    body = json.dumps({"workflow": "w", "inputs": {"api_token": "s3cr3t-value", "service": "api"}})
    letter_id = set_aside(queue="celery", payload=json.dumps({"body": body}), reason="testing")
    assert letter_id is not None
    shown = dead_letter_json(get_dead_letter(letter_id), with_payload=True)
    assert "s3cr3t-value" not in json.dumps(shown)
    assert shown["payload"]["body"]["inputs"]["service"] == "api"
    listed = subprocess.run(
        [sys.executable, "-m", "automation.cli.main", "dead-letters", "show", str(letter_id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "s3cr3t-value" not in listed.stdout and '"service": "api"' in listed.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "automation.cli.main", "dead-letters", "show", "999999999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.usefixtures("worker")
def test_a_running_worker_heartbeats_with_what_it_executes(database: None) -> None:
    from automation.fleet.services import list_nodes

    wait_for(lambda: any(node.state == "alive" for node in list_nodes()), timeout=30)


@pytest.fixture(autouse=True)
def _forget_made_up_nodes(request: pytest.FixtureRequest) -> Any:
    """Nodes these tests make up are removed afterwards: a recovery pass elsewhere must not act on them."""
    yield
    if "database" in request.fixturenames or "engine" in request.fixturenames:
        from automation.fleet.identity import NODE_ID
        from automation.models import WorkerNode

        WorkerNode.objects.filter(id__in=[*_made_up, NODE_ID]).delete()
        _made_up.clear()


_made_up: list[str] = []


def claim(claimant: Any, *, generation: int = 0) -> Any:
    from automation.runs.claims import Claim

    return Claim(claimant=claimant, token=uuid.uuid4().hex, generation=generation)


def _node(
    node_id: str, *, seen_ago: float, executing: str = ",", fresh_for: float = 60, holding: str = ","
) -> None:
    from django.utils import timezone

    from automation.models import WorkerNode

    now = timezone.now()
    _made_up.append(node_id)
    WorkerNode.objects.update_or_create(
        id=node_id,
        defaults={
            "hostname": "h",
            "nodename": node_id,
            "executing": executing,
            "holding": holding,
            "seen_at": now - timedelta(seconds=seen_ago),
            "started_at": now,
            "stopped_at": None,
            "reaped_at": None,
            "fresh_since": now - timedelta(seconds=seen_ago + fresh_for),
        },
    )


def test_a_step_executed_by_a_live_node_is_not_taken_over_and_a_dead_nodes_is(engine: Any) -> None:
    from django.utils import timezone

    from automation.fleet.identity import NODE_ID, Claimant
    from automation.models import StepRun
    from automation.runs import services

    run = stored_run(
        engine, "takeover", ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})
    )
    other = f"other-{uuid.uuid4().hex[:8]}"
    _node(NODE_ID, seen_ago=0)
    step = StepRun.objects.get(run_id=run.id, name="a")
    _node(other, seen_ago=0, executing=f",{step.task_id},")
    first = services.claim_step(run.id, "a", claim=claim(Claimant(other, 11)))
    assert first is not None and first.attempt == 1
    me = Claimant(NODE_ID, 22)
    assert services.claim_step(run.id, "a", claim=claim(me)) is None, "claimed a moment ago"
    StepRun.objects.filter(id=step.id).update(touched_at=timezone.now() - timedelta(minutes=5))
    assert services.claim_step(run.id, "a", claim=claim(me)) is None, "its live node lists it as executing"
    _node(other, seen_ago=0, executing=",")
    taken = services.claim_step(run.id, "a", claim=claim(me))
    assert taken is not None and taken.attempt == 2, "no live node executes it: taken over"
    # Its own claim, found again by the same executor (a retried message), is taken back at once.
    assert services.claim_step(run.id, "a", claim=claim(me)) is not None


def test_a_stale_node_judges_no_one(engine: Any) -> None:
    from django.utils import timezone

    from automation.fleet.identity import NODE_ID, Claimant
    from automation.models import StepRun
    from automation.runs import services

    run = stored_run(
        engine, "outage", ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})
    )
    other = f"other-{uuid.uuid4().hex[:8]}"
    _node(other, seen_ago=600)
    assert services.claim_step(run.id, "a", claim=claim(Claimant(other, 11))) is not None
    StepRun.objects.filter(run_id=run.id).update(touched_at=timezone.now() - timedelta(minutes=5))
    _node(NODE_ID, seen_ago=600)  # as after a database outage: every heartbeat stale, ours included
    assert services.claim_step(run.id, "a", claim=claim(Claimant(NODE_ID, 22))) is None
    _node(NODE_ID, seen_ago=0, fresh_for=5)  # fresh again, but not yet for a whole dead-after window
    assert services.claim_step(run.id, "a", claim=claim(Claimant(NODE_ID, 22))) is None
    _node(NODE_ID, seen_ago=0)
    assert services.claim_step(run.id, "a", claim=claim(Claimant(NODE_ID, 22))) is not None


def test_runs_whose_messages_a_dead_node_held_are_marked(engine: Any) -> None:
    from django.utils import timezone

    from automation.fleet.identity import NODE_ID
    from automation.models import WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import mark_runs_of_dead_nodes

    run = stored_run(
        engine, "held", ActionDefinition(name="a_1", action_type="control.wait", parameters={"seconds": 0})
    )
    _node(NODE_ID, seen_ago=0)
    _node(f"dead-{uuid.uuid4().hex[:8]}", seen_ago=120, holding=f",{run.id}:a_1,not-a-step-id,")
    assert mark_runs_of_dead_nodes(timezone.now()) >= 1
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    services.cancel_run(run.id)  # nothing left for a later recovery pass to send


def test_runs_of_a_dead_node_are_sent_again_as_a_new_generation(engine: Any, worker: Any) -> None:
    from django.utils import timezone

    from automation.engine import RunHandle
    from automation.fleet.identity import NODE_ID, Claimant
    from automation.models import StepRun, WorkerNode, WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import mark_runs_of_dead_nodes, send_marked_runs

    run = stored_run(
        engine,
        "orphan",
        ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0}),
        ActionDefinition(name="b", action_type="control.wait", parameters={"seconds": 0}),
    )
    dead = f"dead-{uuid.uuid4().hex[:8]}"
    _node(dead, seen_ago=0)
    assert services.claim_step(run.id, "a", claim=claim(Claimant(dead, 7))) is not None
    StepRun.objects.filter(run_id=run.id, name="a").update(touched_at=timezone.now() - timedelta(minutes=5))
    _node(dead, seen_ago=120)
    _node(NODE_ID, seen_ago=0)
    assert mark_runs_of_dead_nodes(timezone.now()) >= 1
    assert WorkerNode.objects.get(id=dead).reaped_at is not None
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    assert send_marked_runs() >= 1
    handle = RunHandle(run.id).wait(60)
    assert handle.status == "succeeded", handle.steps
    stored = WorkflowRun.objects.get(id=run.id)
    assert stored.generation == 1 and stored.redispatch_requested_at is None
    assert handle.step("a").attempts == 2, "the orphaned step was taken over once"


def test_a_message_of_an_older_generation_retires(engine: Any) -> None:
    from celery.exceptions import Ignore

    from automation.fleet.identity import Claimant
    from automation.models import WorkflowRun
    from automation.runs import services
    from automation.runs.executor import settled_step

    run = stored_run(
        engine,
        "generations",
        ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0}),
    )
    WorkflowRun.objects.filter(id=run.id).update(generation=2)
    assert services.claim_step(run.id, "a", claim=claim(Claimant("n", 1), generation=1)) is None
    with pytest.raises(Ignore):
        settled_step(run.id, "a", {}, 1)
    assert services.claim_step(run.id, "a", claim=claim(Claimant("n", 1), generation=2)) is not None


def test_a_broker_that_lost_its_data_is_noticed_once(database: None) -> None:
    from automation.broker.epoch import EPOCH_KEY, _broker_client, broker_lost_its_data

    broker_lost_its_data()  # records the current epoch
    assert broker_lost_its_data() is False
    _broker_client().delete(EPOCH_KEY)  # as a restart without persistence
    assert broker_lost_its_data() is True
    assert broker_lost_its_data() is False


def test_beat_sends_a_slot_once_however_many_beats(database: None) -> None:
    from datetime import timedelta as delta

    from celery.schedules import schedule as every

    from automation.schedules import claim_slot, slot_of

    class Entry:
        schedule = every(delta(seconds=10))

    name = unique("job")
    assert slot_of(Entry(), 1000.0) == slot_of(Entry(), 1009.9) != slot_of(Entry(), 1010.0)
    assert claim_slot(name, slot_of(Entry(), 1000.0)) is True
    assert claim_slot(name, slot_of(Entry(), 1005.0)) is False, "a second Beat, same slot"
    assert claim_slot(name, slot_of(Entry(), 1010.0)) is True
    # Two Beats out of phase, either side of a slot boundary: the second is refused by the spacing.
    spaced = unique("job")
    assert claim_slot(spaced, slot_of(Entry(), 1019.9), spacing=5.0) is True
    assert claim_slot(spaced, slot_of(Entry(), 1020.1), spacing=5.0) is False, "the other Beat, next slot"
    assert claim_slot(spaced, slot_of(Entry(), 1020.1)) is True, "without spacing: one per slot only"


def test_a_message_the_broker_refuses_marks_its_run_for_the_recovery_job(engine: Any, worker: Any) -> None:
    from kombu import Connection

    from automation.actions.task import BROKER_ERRORS
    from automation.compiler import compile_workflow
    from automation.engine import RunHandle
    from automation.models import WorkflowRun
    from automation.runs.documents import stored_workflow
    from automation.runs.recovery import send_marked_runs
    from tests.conftest import free_port

    run = stored_run(
        engine, "refused", ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})
    )
    canvas = compile_workflow(stored_workflow(run.version_id).document, run_id=str(run.id), queue="default")
    closed = Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    try:
        with pytest.raises(BROKER_ERRORS):
            canvas.apply_async(
                connection=closed,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0},
            )
    finally:
        closed.release()
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    assert send_marked_runs() >= 1
    assert RunHandle(run.id).wait(60).status == "succeeded"


def test_notes_with_nul_are_refused_through_python_too(engine: Any) -> None:
    from automation import InputError
    from automation.models import WorkflowRun

    run = stored_run(
        engine,
        "nul-reason",
        ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0}),
    )
    with pytest.raises(InputError) as refused:
        engine.cancel_run(run.id, reason="bad\x00reason")
    assert refused.value.errors[0][0] == "reason"
    assert WorkflowRun.objects.get(id=run.id).status == "pending", "nothing was changed"


def test_a_live_node_listing_a_similar_task_id_does_not_hold_a_step(engine: Any) -> None:
    from django.utils import timezone

    from automation.fleet.identity import NODE_ID, Claimant
    from automation.models import StepRun
    from automation.runs import services

    run = stored_run(
        engine,
        "underscore",
        ActionDefinition(name="a_b", action_type="control.wait", parameters={"seconds": 0}),
    )
    other = f"other-{uuid.uuid4().hex[:8]}"
    _node(NODE_ID, seen_ago=0)
    _node(other, seen_ago=0, executing=f",{run.id}:aXb,")  # `_` is LIKE's wildcard: must not match
    assert services.claim_step(run.id, "a_b", claim=claim(Claimant(other, 11))) is not None
    StepRun.objects.filter(run_id=run.id).update(touched_at=timezone.now() - timedelta(minutes=5))
    assert services.claim_step(run.id, "a_b", claim=claim(Claimant(NODE_ID, 22))) is not None


@pytest.mark.usefixtures("worker")
def test_a_message_for_an_unknown_task_leaves_no_secret_in_the_log_or_the_api(worker: Any) -> None:
    from automation.celery import app
    from automation.fleet.services import dead_letter_json, get_dead_letter
    from automation.models import DeadLetter

    before = DeadLetter.objects.count()
    sent = app.send_task(
        "automation.no_such_task", kwargs={"inputs": {"api_token": "s3cr3t-xyz"}}, queue="celery"
    )
    wait_for(lambda: DeadLetter.objects.count() > before, timeout=30)
    letter = DeadLetter.objects.order_by("-id").first()
    assert letter is not None and "unknown task" in letter.reason
    shown = json.dumps(dead_letter_json(get_dead_letter(letter.pk), with_payload=True))
    assert "s3cr3t-xyz" not in shown and "********" in shown
    assert sent.id in letter.reason
    wait_for(lambda: f"dead letter {letter.pk}:" in worker.log(), timeout=10)
    assert "s3cr3t-xyz" not in worker.log()


@pytest.mark.usefixtures("worker")
def test_a_step_that_kills_its_worker_fails_once_its_attempts_are_spent(engine: Any) -> None:
    import tests.slow_actions  # noqa: F401 - registers testing.crash here too
    from automation import WorkflowDefinition

    name = unique("crash")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="boom", action_type="testing.crash", parameters={}, retry_attempts=0),
            ],
        )
    )
    run = engine.run_workflow(name).wait(90)
    assert run.status == "failed", run.steps
    assert "worker died" in run.step("boom").error and run.step("boom").attempts == 2


@pytest.mark.usefixtures("worker")
def test_a_retry_carrying_its_output_records_it_without_acting_again(engine: Any) -> None:
    from automation.celery import app
    from automation.fleet.identity import Claimant
    from automation.models import StepRun
    from automation.runs import services
    from automation.runs.claims import Claim
    from tests.peers import HttpPeer

    peer = HttpPeer()
    try:
        run = stored_run(
            engine,
            "carried",
            ActionDefinition(name="call", action_type="http.request", parameters={"url": f"{peer.url}/x"}),
        )
        first = Claim(claimant=Claimant("gone", 1), token=uuid.uuid4().hex)
        assert services.claim_step(run.id, "call", claim=first) is not None  # acted, then the database failed
        task_id = StepRun.objects.get(run_id=run.id, name="call").task_id
        app.send_task(
            "automation.action.http.request",
            task_id=task_id,
            queue="default",
            kwargs={"prev": first.token, "done": {"status_code": 200, "carried": True}},
        )
        wait_for(lambda: StepRun.objects.get(run_id=run.id, name="call").status == "succeeded", timeout=30)
        step = StepRun.objects.get(run_id=run.id, name="call")
        assert step.output == {"status_code": 200, "carried": True} and step.attempts == 1
        assert peer.received == [], "the action did not run again"
    finally:
        peer.close()


@pytest.mark.usefixtures("worker")
def test_a_completion_the_database_refused_after_the_successors_were_sent_is_recorded_by_a_copy(
    engine: Any,
) -> None:
    """A step's completion is recorded after Celery sent its successors; when PostgreSQL refuses it, a copy
    of the message goes out without them and records the output, without acting again."""
    from django.db import connection

    from automation.celery import app
    from automation.fleet.identity import Claimant
    from automation.models import StepRun
    from automation.runs import executor, services
    from automation.runs.claims import Claim
    from tests.peers import HttpPeer

    peer = HttpPeer()
    try:
        run = stored_run(
            engine,
            "pending",
            ActionDefinition(name="call", action_type="http.request", parameters={"url": f"{peer.url}/x"}),
            ActionDefinition(name="then", action_type="control.wait", parameters={"seconds": 0}),
        )
        acted = Claim(claimant=Claimant("gone", 1), token=uuid.uuid4().hex)
        claimed = services.claim_step(run.id, "call", claim=acted)
        assert claimed is not None
        task = app.tasks["automation.action.http.request"]
        pending = executor.PendingCompletion(
            task=task,
            token=acted.token,
            task_id=StepRun.objects.get(id=claimed.id).task_id,
            args=(),
            kwargs={},
            queue="default",
            step_id=claimed.id,
            run_id=run.id,
            output={"status_code": 200, "carried": True},
        )
        executor._pending.completion = pending
        with connection.cursor() as cursor:  # the database goes away under this process's connection
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        import psycopg2

        from tests.conftest import PG_SERVER, TEST_DB

        admin = psycopg2.connect(f"{PG_SERVER}/{TEST_DB}")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        admin.close()
        assert executor.record_pending_completion() is pending
        assert getattr(executor._pending, "completion", None) is None
        # Not recorded by this process: by the copy, a second or more later (its countdown).
        assert StepRun.objects.get(id=claimed.id).status == "running"
        wait_for(lambda: StepRun.objects.get(id=claimed.id).status == "succeeded", timeout=30)
        step = StepRun.objects.get(id=claimed.id)
        assert step.output == {"status_code": 200, "carried": True} and step.attempts == 1
        assert peer.received == [], "the action did not run again"
    finally:
        peer.close()
        services.cancel_run(run.id)


def test_a_retry_whose_message_is_long_overdue_marks_its_run(engine: Any) -> None:
    from django.utils import timezone

    from automation.fleet.identity import Claimant
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services
    from automation.runs.recovery import mark_overdue_parked_runs

    run = stored_run(
        engine, "overdue", ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})
    )
    claimed = services.claim_step(run.id, "a", claim=claim(Claimant("n", 1)))
    assert claimed is not None
    services.record_retry(claimed.id, error="boom", countdown=5)
    step = StepRun.objects.get(id=claimed.id)
    assert step.claim_token == "" and step.claimed_node == "n" and step.due_at is not None
    mark_overdue_parked_runs(timezone.now())  # other tests' runs may be overdue; this one is not yet
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None, "not overdue yet"
    StepRun.objects.filter(id=claimed.id).update(due_at=timezone.now() - timedelta(minutes=2))
    assert mark_overdue_parked_runs(timezone.now()) >= 1
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    services.cancel_run(run.id)  # nothing left for a later recovery pass to send


def test_a_heartbeat_after_a_gap_starts_freshness_again(database: None) -> None:
    from django.utils import timezone

    from automation.fleet.heartbeat import beat_once
    from automation.fleet.identity import NODE_ID
    from automation.models import WorkerNode

    class Worker:
        hostname = "test@host"

    _node(NODE_ID, seen_ago=1, fresh_for=300)
    before = WorkerNode.objects.get(id=NODE_ID).fresh_since
    assert beat_once(Worker())
    assert WorkerNode.objects.get(id=NODE_ID).fresh_since == before, "no gap: still fresh since then"
    _node(NODE_ID, seen_ago=60, fresh_for=300)  # as after a database outage
    started = timezone.now()
    assert beat_once(Worker())
    assert WorkerNode.objects.get(id=NODE_ID).fresh_since >= started


def test_beat_stamps_the_scaling_tick_with_its_send_time(database: None, monkeypatch: Any) -> None:
    """The scaling loop decides per slot of the tick's time: Beat's send time, not the worker's clock when
    it takes the message (two late messages must not fall in one slot and drop a tick)."""
    from celery.schedules import schedule
    from django_celery_beat.schedulers import DatabaseScheduler

    from automation.schedules import AutomationScheduler

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        DatabaseScheduler, "apply_entry", lambda self, entry, producer=None: sent.append(entry.kwargs)
    )

    class Entry:
        def __init__(self, task: str) -> None:
            self.name, self.task, self.kwargs = unique("stamp"), task, {}
            self.schedule = schedule(timedelta(seconds=60))

    scheduler = AutomationScheduler.__new__(AutomationScheduler)
    before = time.time()
    scheduler.apply_entry(Entry("automation.scaling.evaluate"))
    scheduler.apply_entry(Entry("automation.alerting.evaluate"))
    assert before <= sent[0]["now"] <= time.time()
    assert "now" not in sent[1]  # other jobs keep their arguments
