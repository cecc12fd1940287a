"""Runs on real Celery worker processes, Redis and PostgreSQL: chain, fan-out/join, retries, limits."""

from __future__ import annotations

from typing import Any

import pytest

from automation import ActionDefinition, Priority, WorkflowDefinition
from tests.conftest import Worker, unique, wait_for
from tests.peers import Answer, HttpPeer, Received

pytestmark = pytest.mark.usefixtures("worker")


def post(name: str, url: str, **extra: Any) -> ActionDefinition:
    return ActionDefinition(
        name=name,
        action_type="http.request",
        parameters={"url": url, "method": "POST", **extra.pop("params", {})},
        **extra,
    )


def test_chain_runs_steps_in_order_and_passes_outputs(engine: Any, peer: HttpPeer) -> None:
    name = unique("chain")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                post("first", f"{peer.url}/first", params={"json": {"n": "${n}"}}),
                post(
                    "second", f"{peer.url}/second", params={"json": {"seen": "${steps.first.output.json.ok}"}}
                ),
                post("third", peer.url + "/third/${steps.first.output.status_code}"),
            ],
        )
    )
    run = engine.run_workflow(name, {"n": 7}).wait(60)
    assert run.status == "succeeded", run.steps
    assert peer.paths() == ["/first", "/second", "/third/200"]
    assert peer.received[0].body == {"n": 7}
    assert peer.received[1].body == {"seen": True}
    assert [s.status for s in run.steps] == ["succeeded"] * 3
    assert all(s.attempts == 1 for s in run.steps)
    keys = [r.headers["Idempotency-Key"] for r in peer.received]
    assert keys == [f"{run.id}:first", f"{run.id}:second", f"{run.id}:third"]


def test_fan_out_and_join(engine: Any, peer: HttpPeer) -> None:
    name = unique("diamond")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                post("start", f"{peer.url}/start"),
                *[post(f"branch{i}", f"{peer.url}/branch/{i}", depends_on=["start"]) for i in range(5)],
                post(
                    "join",
                    f"{peer.url}/join",
                    depends_on=[f"branch{i}" for i in range(5)],
                    params={
                        "json": {"codes": [f"${{steps.branch{i}.output.status_code}}" for i in range(5)]}
                    },
                ),
            ],
        )
    )
    run = engine.run_workflow(name).wait(60)
    assert run.status == "succeeded", run.steps
    paths = peer.paths()
    assert paths[0] == "/start" and paths[-1] == "/join"
    assert sorted(paths[1:-1]) == sorted(f"/branch/{i}" for i in range(5))
    assert peer.received[-1].body == {"codes": [200] * 5}
    join = run.step("join")
    branches_done = max(run.step(f"branch{i}").finished_at for i in range(5))
    assert join.started_at >= branches_done


def test_retries_with_backoff_until_success(engine: Any) -> None:
    calls: list[float] = []

    def flaky(request: Received) -> Answer:
        calls.append(request.at)
        return Answer(status=503) if len(calls) <= 2 else Answer()

    server = HttpPeer(flaky)
    try:
        name = unique("retry")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    post("flaky", f"{server.url}/x", retry_attempts=3),
                ],
            )
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "succeeded"
        assert run.step("flaky").attempts == 3
        assert len(calls) == 3
        # Exponential backoff: the second pause is not shorter than half the first's ceiling.
        assert calls[1] - calls[0] >= 0.1 * 0.5
    finally:
        server.close()


def test_failure_after_retries_fails_run_and_skips_the_rest(engine: Any) -> None:
    server = HttpPeer(lambda r: Answer(status=500))
    try:
        name = unique("fail")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    post("broken", f"{server.url}/x", retry_attempts=1),
                    post("after", f"{server.url}/after"),
                ],
            )
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "failed"
        assert run.step("broken").status == "failed"
        assert run.step("broken").attempts == 2
        assert "500" in run.step("broken").error
        assert run.step("after").status == "skipped"
        assert "/after" not in server.paths()
    finally:
        server.close()


def test_client_error_is_not_retried(engine: Any) -> None:
    server = HttpPeer(lambda r: Answer(status=404))
    try:
        name = unique("noretry")
        engine.register_workflow(
            WorkflowDefinition(name=name, actions=[post("lookup", f"{server.url}/x", retry_attempts=3)])
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "failed"
        assert run.step("lookup").attempts == 1
        assert len(server.received) == 1
    finally:
        server.close()


def test_time_limit_stops_a_slow_action(engine: Any) -> None:
    server = HttpPeer(lambda r: Answer(delay=8))
    try:
        name = unique("slow")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    ActionDefinition(
                        name="slow",
                        action_type="http.request",
                        timeout_seconds=2,
                        retry_attempts=0,
                        parameters={"url": f"{server.url}/slow", "timeout": 30},
                    ),
                ],
            )
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "failed"
        step = run.step("slow")
        assert "SoftTimeLimitExceeded" in step.error
        assert (step.finished_at - step.started_at).total_seconds() < 6
    finally:
        server.close()


def test_unmet_condition_skips_the_run(engine: Any, peer: HttpPeer) -> None:
    name = unique("cond")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            conditions=["service_health_check_failed"],
            actions=[post("act", f"{peer.url}/act")],
        )
    )
    skipped = engine.run_workflow(name, {"service_health_check_failed": False}).wait(10)
    assert skipped.status == "skipped"
    assert "service_health_check_failed" in skipped.error
    assert [s.status for s in skipped.steps] == ["skipped"]
    ran = engine.run_workflow(name, {"service_health_check_failed": True}).wait(60)
    assert ran.status == "succeeded"
    assert peer.paths() == ["/act"]


def test_comparison_condition(engine: Any, peer: HttpPeer) -> None:
    name = unique("cond-cmp")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            conditions=["cpu_usage > 80"],
            actions=[post("act", f"{peer.url}/act")],
        )
    )
    assert engine.run_workflow(name, {"cpu_usage": 50}).wait(10).status == "skipped"
    assert engine.run_workflow(name, {"cpu_usage": 95}).wait(60).status == "succeeded"


def test_idempotent_enqueue_gives_the_same_run(engine: Any, peer: HttpPeer) -> None:
    name = unique("idem")
    engine.register_workflow(WorkflowDefinition(name=name, actions=[post("once", f"{peer.url}/once")]))
    first = engine.run_workflow(name, idempotency_key="deploy-42")
    second = engine.run_workflow(name, idempotency_key="deploy-42")
    assert first.id == second.id
    first.wait(60)
    third = engine.run_workflow(name, idempotency_key="deploy-42")
    assert third.id == first.id
    assert peer.paths() == ["/once"]


def test_priority_routes_to_its_queue(engine: Any, peer: HttpPeer) -> None:
    from automation.models import WorkflowRun

    name = unique("prio")
    engine.register_workflow(
        WorkflowDefinition(name=name, priority=Priority.CRITICAL, actions=[post("act", f"{peer.url}/act")])
    )
    run = engine.run_workflow(name).wait(60)
    assert WorkflowRun.objects.get(id=run.id).queue == "critical"
    assert run.status == "succeeded"


def test_new_version_does_not_change_a_started_run(engine: Any, peer: HttpPeer) -> None:
    name = unique("versions")
    v1 = engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 2}),
                post("act", f"{peer.url}/v1"),
            ],
        )
    )
    run = engine.run_workflow(name)
    v2 = engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 2}),
                post("act", f"{peer.url}/v2"),
            ],
        )
    )
    same = engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 2}),
                post("act", f"{peer.url}/v2"),
            ],
        )
    )
    assert (v1, v2, same) == (1, 2, 2)
    assert run.wait(60).status == "succeeded"
    assert peer.paths() == ["/v1"]


def test_webhook_is_slack_compatible_and_never_repeated_on_redelivery(
    engine: Any, peer: HttpPeer, worker: Worker
) -> None:
    from automation.celery import app

    name = unique("notify")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="notify",
                    action_type="notification.webhook",
                    parameters={
                        "url": f"{peer.url}/hooks/T0/B0/secretpath",
                        "text": "restarting ${svc}",
                        "channel": "#ops",
                    },
                ),
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 4}),
            ],
        )
    )
    run = engine.run_workflow(name, {"svc": "api"})
    wait_for(lambda: run.step("pause").status == "running")
    assert peer.received[0].body == {"text": "restarting api", "channel": "#ops"}
    assert peer.received[0].headers["Idempotency-Key"] == f"{run.id}:notify"
    # The step's message delivered again while its run goes on (as after a crash before the ack): the
    # guard hands on the recorded output and does not notify twice.
    # Step tasks are `ignore_result`: this copy asks for its result to be stored, to read it.
    again = app.send_task(
        "automation.action.notification.webhook",
        kwargs={"run_id": run.id, "step": "notify"},
        ignore_result=False,
    )
    assert again.get(timeout=30) == {}
    assert run.wait(60).status == "succeeded"
    # And once the run is over, a late copy is dropped.
    late = app.send_task(
        "automation.action.notification.webhook", kwargs={"run_id": run.id, "step": "notify"}
    )
    wait_for(lambda: worker.outcome(late.id) is not None)
    assert worker.outcome(late.id) == "ignored", worker.log()[-3000:]
    assert len(peer.received) == 1
    assert run.step("notify").attempts == 1
    assert "secretpath" not in str(run.step("notify").output)


def test_worker_survives_its_database_connections_being_cut(engine: Any, peer: HttpPeer) -> None:
    from django.db import connection

    name = unique("pg-cut")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 2}),
                post("after", f"{peer.url}/after"),
            ],
        )
    )
    run = engine.run_workflow(name)
    wait_for(lambda: run.step("pause").status == "running")
    with connection.cursor() as cursor:  # as a PostgreSQL failover or restart would
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    assert run.wait(60).status == "succeeded", run.steps
    assert peer.paths() == ["/after"]


def test_enqueue_inside_a_callers_transaction_is_sent_on_commit(engine: Any, peer: HttpPeer) -> None:
    from celery.signals import after_task_publish
    from django.db import transaction

    from automation.models import StepRun

    published: list[str] = []

    def record(headers: dict[str, Any] | None = None, **_: Any) -> None:
        published.append((headers or {}).get("id", ""))

    name = unique("in-tx")
    engine.register_workflow(WorkflowDefinition(name=name, actions=[post("act", f"{peer.url}/act")]))
    after_task_publish.connect(record, weak=False)
    try:
        with transaction.atomic():
            run = engine.run_workflow(name, idempotency_key="tx-1")
            again = engine.run_workflow(
                name, idempotency_key="tx-1"
            )  # a conflict must not poison the transaction
            assert again.id == run.id
            step_task = StepRun.objects.get(run_id=run.id, name="act").task_id
            # Publishing is synchronous: had the run been sent, its message would be recorded by now.
            assert step_task not in published, "nothing is sent before the caller commits"
        assert step_task in published, "sent when the caller commits"
    finally:
        after_task_publish.disconnect(record)
    assert run.wait(60).status == "succeeded"
    assert peer.paths() == ["/act"]


def test_a_join_after_a_branch_ending_in_parallel_steps(engine: Any) -> None:
    """The chord's header holds a chain ending in a group: Celery joins such a header from the result
    backend, so its steps store their results although step tasks are `ignore_result`."""

    def wait(name: str, *deps: str) -> ActionDefinition:
        return ActionDefinition(
            name=name, action_type="control.wait", parameters={"seconds": 0}, depends_on=list(deps)
        )

    name = unique("nested-header")
    actions = [wait("a"), wait("b", "a"), wait("c", "a"), wait("d"), wait("e", "b", "c", "d")]
    engine.register_workflow(WorkflowDefinition(name=name, actions=actions))
    run = engine.run_workflow(name).wait(30)
    assert run.status == "succeeded", [(s.name, s.status, s.error) for s in run.steps]


def test_a_join_after_a_branch_ending_in_a_chord_with_parallel_successors(engine: Any) -> None:
    """Review: the header holds chord(group(a1, a2), group(c1, c2)), whose frozen result is a GroupResult."""

    def wait(name: str, *deps: str) -> ActionDefinition:
        return ActionDefinition(
            name=name, action_type="control.wait", parameters={"seconds": 0}, depends_on=list(deps)
        )

    name = unique("chord-group-body-header")
    actions = [
        wait("r"), wait("a1", "r"), wait("a2", "r"), wait("c1", "a1", "a2"), wait("c2", "a1", "a2"),
        wait("e", "r"), wait("j", "c1", "c2", "e"),
    ]
    engine.register_workflow(WorkflowDefinition(name=name, actions=actions))
    run = engine.run_workflow(name).wait(60)
    assert run.status == "succeeded", [(s.name, s.status, s.error) for s in run.steps]
