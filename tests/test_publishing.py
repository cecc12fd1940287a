"""Messages go to the real Redis in fewer writes (automation/broker/publishing.py): a task message with its
`task-sent` event in one, a whole canvas in pipelines; a pipeline that failed is sent again the
ordinary way, once."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
import redis
from celery import group

from automation.delivery import step_task_id
from tests.conftest import REDIS_URL, unique

pytestmark = pytest.mark.integration

TASK = "automation.action.control.wait"


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write this process sends to Redis (one per command, or one per pipeline), as bytes."""
    from redis.connection import AbstractConnection

    sent: list[bytes] = []
    original = AbstractConnection.send_packed_command

    def recorded(self: Any, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes | str) else list(command)
        sent.append(b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks))
        original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", recorded)
    return sent


def queued_ids(queue: str) -> list[str]:
    client = redis.Redis.from_url(REDIS_URL)
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)]


def test_a_message_and_its_task_sent_event_share_one_write(idle_queue: str, writes: list[bytes]) -> None:
    from automation.celery import app

    assert app.conf.task_send_sent_event
    task_id = step_task_id(str(uuid.uuid4()), "only")
    app.send_task(TASK, task_id=task_id, queue=idle_queue)

    carrying = [w for w in writes if task_id.encode() in w]
    assert len(carrying) == 1, [w[:80] for w in carrying]
    assert b"LPUSH" in carrying[0] and b"PUBLISH" in carrying[0]
    assert queued_ids(idle_queue) == [task_id]


def test_a_canvas_sent_in_a_batch_goes_out_in_a_few_pipelines(idle_queue: str, writes: list[bytes]) -> None:
    from automation.broker.publishing import BATCH_COMMANDS, batched
    from automation.celery import app

    run = str(uuid.uuid4())
    few = [step_task_id(run, f"first{i}") for i in range(3)]
    with batched(app):
        group(app.signature(TASK, task_id=task_id, queue=idle_queue) for task_id in few).apply_async()
        assert queued_ids(idle_queue) == []  # nothing is sent before the block ends
    assert sorted(queued_ids(idle_queue)) == sorted(few)
    assert len([w for w in writes if b"LPUSH" in w]) == 1

    writes.clear()
    many = [step_task_id(run, f"branch{i}") for i in range(BATCH_COMMANDS)]
    with batched(app):
        group(app.signature(TASK, task_id=task_id, queue=idle_queue) for task_id in many).apply_async()
    # 1,000 messages and their 1,000 events: two full pipelines, not 2,000 writes.
    assert len([w for w in writes if b"LPUSH" in w]) == 2
    assert sorted(queued_ids(idle_queue)) == sorted(few + many)


def test_a_pipeline_that_failed_is_sent_again_without_a_batch(
    idle_queue: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, writes: list[bytes]
) -> None:
    """The pipeline reaches Redis, then the connection breaks before its replies: delivery is uncertain,
    so the message is sent again, message and event apart (Celery's ordinary way, with its retries). The
    copy that arrives twice is what the step guard stops (tests/test_recovery_integration.py)."""
    from redis.client import Pipeline

    from automation.celery import app

    task_id = step_task_id(str(uuid.uuid4()), "only")
    failures: list[int] = []
    original = Pipeline.execute

    def written_then_broken(self: Any, raise_on_error: bool = True) -> Any:
        ours = any(task_id in str(args) for args, _ in self.command_stack)
        result = original(self, raise_on_error)
        if ours and not failures:
            failures.append(1)
            raise redis.ConnectionError("connection reset by peer (test)")
        return result

    monkeypatch.setattr(Pipeline, "execute", written_then_broken)
    with caplog.at_level(logging.WARNING, logger="automation.broker"):
        app.send_task(TASK, task_id=task_id, queue=idle_queue)

    assert failures == [1]
    assert queued_ids(idle_queue) == [task_id, task_id]
    # The pipeline (message and event), then the message in a write of its own (its event follows apart).
    carrying = [w for w in writes if task_id.encode() in w]
    assert len(carrying) == 2
    assert b"LPUSH" in carrying[0] and b"PUBLISH" in carrying[0]
    assert b"LPUSH" in carrying[1] and b"PUBLISH" not in carrying[1]
    assert "pipeline failed" in caplog.text and "sending it again" in caplog.text


def test_a_failure_that_is_not_the_broker_s_is_raised_as_itself(
    idle_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What kombu wraps in BatchPublishError may be a task's soft time limit arriving mid-write: raised as
    itself, not swallowed by a second send."""
    from celery.exceptions import SoftTimeLimitExceeded
    from redis.client import Pipeline

    from automation.celery import app

    original = Pipeline.execute
    interruptions: list[int] = []

    def interrupted(self: Any, raise_on_error: bool = True) -> Any:
        if not any(str(args[0]).upper() == "LPUSH" for args, _ in self.command_stack):
            return original(self, raise_on_error)  # the queue's declaration
        interruptions.append(1)
        self.reset()
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(Pipeline, "execute", interrupted)
    with pytest.raises(SoftTimeLimitExceeded):
        app.send_task(TASK, task_id=step_task_id(str(uuid.uuid4()), "only"), queue=idle_queue)
    assert interruptions == [1]
    assert queued_ids(idle_queue) == []


def test_a_run_whose_canvas_pipeline_failed_is_sent_again(
    engine: Any, idle_queue: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the run's own path: the canvas is compiled again and sent without a batch."""
    from redis.client import Pipeline

    from automation import ActionDefinition, WorkflowDefinition
    from automation.models import WorkflowRun
    from automation.runs.dispatch import send_canvas

    name = unique("pipeline-fails")
    branches = [
        ActionDefinition(name=f"b{i}", action_type="control.wait", parameters={"seconds": 0}, depends_on=[])
        for i in range(3)
    ]
    engine.register_workflow(WorkflowDefinition(name=name, actions=branches))
    run = engine.run_workflow(name)

    failures: list[int] = []
    original = Pipeline.execute

    def fails_once(self: Any, raise_on_error: bool = True) -> Any:
        if not failures and any(str(args[0]).upper() == "LPUSH" for args, _ in self.command_stack):
            failures.append(1)
            self.reset()
            raise redis.ConnectionError("connection reset by peer (test)")
        return original(self, raise_on_error)

    monkeypatch.setattr(Pipeline, "execute", fails_once)
    stored = WorkflowRun.objects.get(id=run.id)
    stored.queue = idle_queue  # not saved: this copy of the canvas goes where no worker takes it
    with caplog.at_level(logging.WARNING, logger="automation.dispatch"):
        send_canvas(stored, generation=stored.generation)
    assert failures == [1]
    assert f"run {run.id}: pipeline failed" in caplog.text
    # Sent again whole, once: nothing of the failed pipeline was written.
    assert sorted(queued_ids(idle_queue)) == sorted(step_task_id(str(run.id), f"b{i}") for i in range(3))
