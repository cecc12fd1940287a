"""Compensation: a definition's `compensate:` blocks, the derived `<name>.compensation` workflow, and its
run on real workers when a later step fails (undone in reverse order, once per (run, step))."""

from __future__ import annotations

from typing import Any

import pytest

from automation import ActionDefinition, WorkflowDefinition
from automation.definitions.compensation import compensation_definition, should_act
from automation.definitions.validation import validate_definition
from automation.errors import DefinitionError
from tests.conftest import stored_run, unique, wait_for
from tests.peers import Answer, HttpPeer


def post(name: str, url: str, *, undo: str | None = None, **extra: Any) -> ActionDefinition:
    compensate = (
        {"action_type": "http.request", "parameters": {"url": undo, "method": "POST"}} if undo else None
    )
    return ActionDefinition(
        name=name,
        action_type="http.request",
        parameters={"url": url, "method": "POST"},
        compensate=compensate,  # type: ignore[arg-type]
        **extra,
    )


def test_derived_workflow_undoes_in_reverse_dependency_order() -> None:
    definition = WorkflowDefinition(
        name="deploy",
        actions=[
            post("a", "http://x/a", undo="http://x/undo-a"),
            post("b", "http://x/b", undo="http://x/undo-b", depends_on=["a"]),
            post("c", "http://x/c", depends_on=["b"]),
            post("d", "http://x/d", undo="http://x/undo-d", depends_on=["c"]),
        ],
    )
    document = validate_definition(definition)
    assert document["compensation"] == "deploy.compensation"
    undo = compensation_definition(document)
    assert undo is not None
    assert [a.name for a in undo.actions] == ["undo_d", "undo_b", "undo_a"]
    assert [a.compensates for a in undo.actions] == ["d", "b", "a"]
    assert undo.actions[1].depends_on == ["undo_d"]
    assert compensation_definition(validate_definition(undo.model_copy())) is None


def test_no_compensation_leaves_the_document_as_it_was() -> None:
    document = validate_definition(WorkflowDefinition(name="plain", actions=[post("a", "http://x/a")]))
    assert "compensation" not in document and "compensate" not in document["actions"][0]


def test_compensation_errors_name_the_field() -> None:
    with pytest.raises(DefinitionError) as caught:
        validate_definition(
            WorkflowDefinition(
                name="bad",
                actions=[
                    post("a", "http://x/a"),
                    ActionDefinition(
                        name="b",
                        action_type="http.request",
                        parameters={"url": "http://x/b"},
                        compensate={  # type: ignore[arg-type]
                            "action_type": "nope.nothing",
                            "parameters": {"url": "${steps.a.output.x}"},
                        },
                    ),
                ],
            )
        )
    fields = [field for field, _ in caught.value.errors]
    assert "actions[1].compensate.action_type" in fields
    assert "actions[1].compensate.parameters.url" in fields
    with pytest.raises(DefinitionError) as shape:
        WorkflowDefinition.from_document(
            {"name": "w", "actions": [{"name": "a", "action_type": "x.y", "compensate": {"parameters": {}}}]}
        )
    assert [f for f, _ in shape.value.errors] == ["actions[0].compensate.action_type"]


def test_a_step_acts_only_when_the_step_it_undoes_succeeded() -> None:
    step = {"name": "undo_a", "compensates": "a"}
    assert should_act(step, {"a"}) is None
    assert should_act(step, {"b"}) is not None
    assert should_act({"name": "a"}, set()) is None


@pytest.mark.integration
@pytest.mark.usefixtures("worker")
def test_a_failing_step_undoes_the_steps_before_it_in_reverse_order(engine: Any) -> None:
    from automation.runs.compensation import compensate, compensation_of

    peer = HttpPeer(lambda r: Answer(status=400) if r.path == "/c" else Answer())
    try:
        name = unique("undoable")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    post("a", f"{peer.url}/a", undo=f"{peer.url}/undo-a"),
                    post("b", f"{peer.url}/b", undo=f"{peer.url}/undo-b"),
                    post("c", f"{peer.url}/c", undo=f"{peer.url}/undo-c", retry_attempts=0),
                    post("d", f"{peer.url}/d", undo=f"{peer.url}/undo-d"),
                ],
            )
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "failed"
        wait_for(lambda: compensation_of(run.id) is not None)
        undo = engine.get_run(compensation_of(run.id).id).wait(60)  # type: ignore[union-attr]
        assert undo.status == "succeeded", undo.steps
        # c failed and d never ran: only b and a are undone, b first; undo_c and undo_d do nothing
        wait_for(lambda: "/undo-a" in peer.paths())
        assert peer.paths() == ["/a", "/b", "/c", "/undo-b", "/undo-a"]
        assert {s.name: s.output for s in undo.steps}["undo_d"]["skipped"].startswith("step d")
        keys = [r.headers["Idempotency-Key"] for r in peer.received[3:]]
        assert keys == [f"{undo.id}:undo_b", f"{undo.id}:undo_a"]
        # asking again (a follow job, a redelivery) starts nothing new and repeats no effect
        again = compensate(run.id, reason="asked again")
        assert again is not None and str(again.id) == str(undo.id)
        assert peer.paths().count("/undo-a") == 1
    finally:
        peer.close()


@pytest.mark.integration
@pytest.mark.usefixtures("worker")
def test_the_sweep_undoes_a_failed_run_whose_worker_died_before_asking(engine: Any) -> None:
    """A run failed by a process that died before starting its compensation (the step transitions are
    taken here, as that process took them): the Beat sweep starts it, once."""
    from datetime import timedelta

    from automation.fleet.identity import Claimant
    from automation.models import WorkflowRun
    from automation.runs import services
    from automation.runs.claims import Claim
    from automation.runs.compensation import compensate_missed, compensation_of

    peer = HttpPeer()
    try:
        run = stored_run(
            engine,
            "died",
            post("a", f"{peer.url}/a", undo=f"{peer.url}/undo-a"),
            post("b", f"{peer.url}/b", undo=f"{peer.url}/undo-b"),
        )
        claim = Claim(claimant=Claimant(node="gone-node", pid=1), token="gone-token")
        first = services.claim_step(run.id, "a", claim=claim)
        assert first is not None
        services.complete_step(first.id, run_id=run.id, output={"status_code": 200}, sink=False)
        second = services.claim_step(run.id, "b", claim=claim)
        assert second is not None and services.fail_step(second.id, run_id=run.id, error="boom")
        long_ago = WorkflowRun.objects.get(pk=run.id).finished_at - timedelta(seconds=60)
        WorkflowRun.objects.filter(pk=run.id).update(finished_at=long_ago)
        assert compensation_of(run.id) is None

        assert compensate_missed() >= 1
        assert compensate_missed() == 0  # not twice
        undo = engine.get_run(compensation_of(run.id).id).wait(60)  # type: ignore[union-attr]
        assert undo.status == "succeeded", undo.steps
        assert peer.paths() == ["/undo-a"]  # b failed: only a is undone
        assert undo.step("undo_a").output["status_code"] == 200
        assert WorkflowRun.objects.get(pk=undo.id).inputs["compensation"]["reason"] == "step failed: boom"
    finally:
        peer.close()


@pytest.mark.integration
@pytest.mark.usefixtures("worker")
def test_a_parallel_branch_that_succeeds_after_the_run_failed_is_undone_too(engine: Any) -> None:
    """`slow` still runs when `fail` fails the run: the compensation waits until it settled (the sweep
    starts it then) and undoes it with `fast`."""
    from automation.models import StepRun, WorkflowRun
    from automation.runs.compensation import compensate, compensate_missed, compensation_of

    peer = HttpPeer(
        lambda r: Answer(status=400) if r.path == "/fail" else Answer(delay=4.0 if r.path == "/slow" else 0)
    )
    try:
        name = unique("branches")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    post("fast", f"{peer.url}/fast", undo=f"{peer.url}/undo-fast", depends_on=[]),
                    post("slow", f"{peer.url}/slow", undo=f"{peer.url}/undo-slow", depends_on=[]),
                    post("fail", f"{peer.url}/fail", retry_attempts=0, depends_on=["fast"]),
                ],
            )
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "failed"
        assert StepRun.objects.get(run_id=run.id, name="slow").status == "running"
        assert compensate(run.id, reason="asked early") is None  # slow still runs: not yet
        compensate_missed()
        assert compensation_of(run.id) is None
        wait_for(lambda: StepRun.objects.get(run_id=run.id, name="slow").status == "succeeded")
        assert compensation_of(run.id) is None  # nobody asked at once, the sweep does
        compensate_missed()
        undo = compensation_of(run.id)
        assert undo is not None
        assert sorted(WorkflowRun.objects.get(pk=undo.id).inputs["compensation"]["succeeded"]) == [
            "fast",
            "slow",
        ]
        assert engine.get_run(undo.id).wait(60).status == "succeeded"
        assert sorted(p for p in peer.paths() if p.startswith("/undo")) == ["/undo-fast", "/undo-slow"]
    finally:
        peer.close()


def test_user_definitions_cannot_take_the_engines_compensation_name_or_marks(engine: Any) -> None:
    name = unique("owned")
    with pytest.raises(DefinitionError) as named:
        engine.register_workflow(
            WorkflowDefinition(name=f"{name}.compensation", actions=[post("a", "http://x/a")])
        )
    assert [field for field, _ in named.value.errors] == ["name"]
    marked = ActionDefinition(name="undo_a", action_type="http.request", parameters={"url": "http://x"})
    marked = marked.model_copy(update={"compensates": "a"})
    with pytest.raises(DefinitionError) as forged:
        engine.register_workflow(WorkflowDefinition(name=name, actions=[marked]))
    assert [field for field, _ in forged.value.errors] == ["actions[0].compensates"]
    # the engine's own derived registration still works
    engine.register_workflow(
        WorkflowDefinition(name=name, actions=[post("a", "http://x/a", undo="http://x/u")])
    )
    from automation.models import Workflow

    assert Workflow.objects.filter(name=f"{name}.compensation").exists()


def test_a_compensation_workflow_cannot_be_started_through_public_paths(engine: Any, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    import httpx

    from automation.errors import InputError
    from tests.api_server import ApiServer
    from tests.conftest import ROOT, STATE_DIR

    name = unique("guarded")
    engine.register_workflow(
        WorkflowDefinition(name=name, actions=[post("a", "http://x/a", undo="http://x/u")])
    )
    forged = {"compensation": {"run": "0" * 32, "workflow": name, "reason": "x", "succeeded": ["a"]}}
    with pytest.raises(InputError) as refused:
        engine.run_workflow(f"{name}.compensation", forged)
    assert [field for field, _ in refused.value.errors] == ["workflow"]

    done = subprocess.run(
        [sys.executable, "-m", "automation.cli.main", "run", f"{name}.compensation"],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "compensation workflow" in done.stderr + done.stdout

    server = ApiServer(log_path=STATE_DIR / f"{unique('compensation-api')}.log", tokens="comp-t0ken")
    try:
        answer = httpx.post(
            f"{server.url}/api/v1/workflows/{name}.compensation/runs",
            json={"inputs": forged},
            headers={"Authorization": "Bearer comp-t0ken"},
            timeout=20,
        )
    finally:
        server.stop()
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["workflow"]


@pytest.mark.integration
@pytest.mark.usefixtures("worker")
def test_a_compensation_step_reads_what_succeeded_from_the_run_undone_not_its_input(engine: Any) -> None:
    """A compensation run whose input claims a step succeeded that did not (as a forged one would):
    the step reads the undone run's own step records and does nothing."""
    from automation.runs.compensation import compensation_key
    from automation.runs.dispatch import enqueue_run

    peer = HttpPeer(lambda r: Answer(status=400) if r.path == "/b" else Answer())
    try:
        name = unique("truthful")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    post("a", f"{peer.url}/a", undo=f"{peer.url}/undo-a"),
                    post("b", f"{peer.url}/b", undo=f"{peer.url}/undo-b", retry_attempts=0),
                ],
            )
        )
        run = engine.run_workflow(name).wait(60)
        assert run.status == "failed"
        claims = {"run": str(run.id), "workflow": name, "reason": "x", "succeeded": ["a", "b"], "outputs": {}}
        undo, _ = enqueue_run(
            f"{name}.compensation",
            {"compensation": claims},
            idempotency_key=f"{compensation_key(run.id)}:forged",
            undoing=True,
        )
        done = engine.get_run(undo.id).wait(60)
        assert done.step("undo_b").output["skipped"].startswith("step b did not succeed")
        assert done.step("undo_a").output["status_code"] == 200
    finally:
        peer.close()


@pytest.mark.integration
@pytest.mark.usefixtures("worker")
def test_a_run_is_undone_by_the_compensation_of_its_own_version_not_the_latest(engine: Any) -> None:
    """The workflow is registered again, undoing its steps another way, while a run of its first version
    is in flight: when that run fails, the first version's compensation undoes it."""
    import threading

    from automation.models import WorkflowRun
    from automation.runs.compensation import compensation_of

    released = threading.Event()

    def answer(request: Any) -> Answer:
        if request.path == "/b":
            released.wait(30)  # b is in flight until the workflow has been registered again
            return Answer(status=400)
        return Answer()

    peer = HttpPeer(answer)
    try:
        name = unique("reworked")

        def definition(undo: str) -> WorkflowDefinition:
            return WorkflowDefinition(
                name=name,
                actions=[
                    post("a", f"{peer.url}/a", undo=f"{peer.url}/undo-a-{undo}"),
                    post("b", f"{peer.url}/b", undo=f"{peer.url}/undo-b-{undo}", retry_attempts=0),
                ],
            )

        engine.register_workflow(definition("v1"))
        handle = engine.run_workflow(name)
        wait_for(lambda: "/b" in peer.paths())
        engine.register_workflow(definition("v2"))  # the latest compensation now undoes a with /undo-a-v2
        released.set()
        run = handle.wait(60)
        assert run.status == "failed"
        wait_for(lambda: compensation_of(run.id) is not None)
        undo = engine.get_run(compensation_of(run.id).id).wait(60)  # type: ignore[union-attr]
        assert undo.status == "succeeded", undo.steps
        assert [p for p in peer.paths() if p.startswith("/undo")] == ["/undo-a-v1"]
        stored = WorkflowRun.objects.select_related("version").get(pk=undo.id)
        assert stored.version.version == 1 and stored.version.workflow.latest_version == 2
    finally:
        released.set()
        peer.close()


def test_the_compensation_of_a_version_is_found_by_its_digest_or_stored_again(engine: Any) -> None:
    """`compensation_version` finds the compensation registered with a version, after newer ones; one
    whose stored digest no longer matches (registered by an older engine) is stored again, as derived."""
    from automation.definitions.registry import compensation_version
    from automation.models import WorkflowVersion

    name = unique("versions")

    def register(undo: str) -> Any:
        return engine.register_workflow(
            WorkflowDefinition(name=name, actions=[post("a", "http://x/a", undo=f"http://x/{undo}")])
        )

    register("one"), register("two")
    first, second = (
        WorkflowVersion.objects.get(workflow__name=name, version=n).definition for n in (1, 2)
    )
    assert compensation_version(first).version == 1  # type: ignore[union-attr]
    assert compensation_version(second).version == 2  # type: ignore[union-attr]
    WorkflowVersion.objects.filter(workflow__name=f"{name}.compensation", version=1).update(digest="old")
    again = compensation_version(first)
    assert again is not None and again.version == 3
    assert again.definition["actions"][0]["parameters"]["url"] == "http://x/one"
    assert compensation_version({**first, "compensation": None}) is None
