"""Bad run requests through Python and `send_task`: typed errors naming the field, never a retry loop."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from automation.errors import IdempotencyConflict, InputError
from tests.conftest import REDIS_URL, gated_workflow, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def _fields(exc: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [path for path, _ in exc.value.errors]


def test_python_api_refuses_bad_inputs_and_keys_naming_the_field(engine: Any) -> None:
    from automation.models import WorkflowRun

    name = gated_workflow(engine, "intake")
    for inputs in ("a string", ["a", "list"], 5):
        with pytest.raises(InputError) as refused:
            engine.run_workflow(name, inputs)
        assert _fields(refused) == ["inputs"] and "must be an object" in str(refused.value)
    with pytest.raises(InputError) as refused:
        engine.run_workflow(name, {"who": object()})
    assert _fields(refused) == ["inputs"] and "must be JSON data" in str(refused.value)
    with pytest.raises(InputError) as refused:
        engine.run_workflow(name, {"who": "x" * 70_000})
    assert _fields(refused) == ["inputs"] and "at most 65536 bytes" in str(refused.value)
    with pytest.raises(InputError) as refused:
        engine.run_workflow(name, {}, idempotency_key="k" * 5_000_000)
    assert refused.value.errors == [("idempotency_key", "must be at most 200 characters (got 5000000)")]
    with pytest.raises(InputError) as refused:
        engine.run_workflow(name, {}, idempotency_key="k\x00")
    assert refused.value.errors == [("idempotency_key", "contains a NUL character")]
    with pytest.raises(InputError) as refused:
        engine.run_workflow(name + "\x00", {})
    assert refused.value.errors == [("workflow", "contains a NUL character")]
    assert not WorkflowRun.objects.filter(workflow__name=name).exists()


def test_a_key_reused_with_other_inputs_raises_a_conflict_carrying_the_run(engine: Any) -> None:
    name = gated_workflow(engine, "intake")
    first = engine.run_workflow(name, {"who": "alice"}, idempotency_key="inc-7")
    assert engine.run_workflow(name, {"who": "alice"}, idempotency_key="inc-7").id == first.id
    # Defaults count as given: the stored run holds them.
    second = engine.run_workflow(name, {}, idempotency_key="inc-8")
    assert engine.run_workflow(name, {"who": "nobody"}, idempotency_key="inc-8").id == second.id
    with pytest.raises(IdempotencyConflict) as conflict:
        engine.run_workflow(name, {"who": "bob"}, idempotency_key="inc-7")
    assert conflict.value.run_id == str(first.id)
    assert "inc-7" in str(conflict.value)
    for run in (first, second):
        engine.cancel_run(run.id)


CLIENT = """
import json, sys
from celery import Celery
app = Celery(broker=sys.argv[1], backend=sys.argv[1])
result = app.send_task("automation.run_workflow", kwargs=json.loads(sys.argv[2]))
try:
    result.get(timeout=60)
except Exception as exc:  # the worker's typed error, rebuilt from the result backend
    print(json.dumps({"task_id": result.id, "type": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({"task_id": result.id, "type": None}))
assert not any(name.startswith(("automation", "tasks")) for name in sys.modules), "imported our code"
"""


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"inputs": "a string"}, "inputs"),
        ({"inputs": ["a", "list"]}, "inputs"),
        ({"inputs": {}, "idempotency_key": "k" * 300}, "idempotency_key"),
    ],
)
def test_send_task_with_bad_arguments_fails_once_with_an_input_error(
    engine: Any, worker: Any, tmp_path: Any, kwargs: dict[str, Any], field: str
) -> None:
    name = gated_workflow(engine, "intake")
    # -I: isolated mode, as another service that does not have this project installed.
    sent = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, REDIS_URL, json.dumps({"workflow": name, **kwargs})],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    outcome = json.loads(sent.stdout)
    assert outcome["type"] == "InputError", outcome
    assert outcome["message"].startswith(f"{field}: "), outcome
    task_id = outcome["task_id"]
    # The worker logged the refusal once, without a traceback, and did not retry it.
    wait_for(lambda: f"{task_id}] raised expected: InputError" in worker.log())
    lines = [line for line in worker.log().splitlines() if task_id in line]
    assert sum("received" in line for line in lines) == 1, lines
    assert not any("Retry" in line for line in lines), lines


def test_send_task_reusing_a_key_with_other_inputs_fails_with_the_run_id(engine: Any, tmp_path: Any) -> None:
    from automation.models import WorkflowRun

    name = gated_workflow(engine, "intake")
    key = unique("key")

    def send(inputs: dict[str, Any]) -> dict[str, Any]:
        kwargs = {"workflow": name, "inputs": inputs, "idempotency_key": key}
        sent = subprocess.run(
            [sys.executable, "-I", "-c", CLIENT, REDIS_URL, json.dumps(kwargs)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
        result: dict[str, Any] = json.loads(sent.stdout)
        return result

    assert send({"who": "alice"})["type"] is None
    run = WorkflowRun.objects.get(workflow__name=name, idempotency_key=key)
    refused = send({"who": "bob"})
    assert refused["type"] == "IdempotencyConflict"
    assert refused["message"].endswith(f"by run {run.id}")
    engine.cancel_run(run.id)
