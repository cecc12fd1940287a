"""At-least-once delivery settings, and countdowns the broker would deliver twice are refused."""

from __future__ import annotations

import pytest

from automation.celery import app
from automation.errors import ConfigurationError


def test_celery_is_set_for_at_least_once_delivery() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.broker_transport_options["visibility_timeout"] == 1000  # tests/conftest.py sets it
    assert {q.name for q in conf.task_queues} == {"critical", "high", "default", "low", "celery"}


def test_countdown_beyond_the_visibility_timeout_is_refused() -> None:
    from automation.discovery import import_task_modules

    import_task_modules()
    task = app.tasks["automation.action.control.wait"]
    with pytest.raises(ConfigurationError) as caught:
        task.apply_async(kwargs={"run_id": "x", "step": "y"}, countdown=5000)
    assert caught.value.errors[0][0] == "countdown"
    from datetime import UTC, datetime, timedelta

    with pytest.raises(ConfigurationError):
        task.apply_async(kwargs={"run_id": "x", "step": "y"}, eta=datetime.now(UTC) + timedelta(hours=2))
    from tasks.workflow import run_workflow as entry

    with pytest.raises(ConfigurationError):
        entry.apply_async(kwargs={"workflow": "w"}, countdown=1000)
