"""Secrets never appear in API answers, CLI output or worker logs."""

from __future__ import annotations

from typing import Any

import pytest

from automation import ActionDefinition, WorkflowDefinition
from automation.secrets import MASK, mask
from tests.conftest import unique
from tests.peers import HttpPeer


def test_mask_walks_nested_values() -> None:
    value = {"Authorization": "Bearer abc", "nested": [{"api_key": "k", "name": "x"}], "token": None}
    assert mask(value) == {"Authorization": MASK, "nested": [{"api_key": MASK, "name": "x"}], "token": None}
    assert mask({"pager": "p"}, secret_names=frozenset({"pager"})) == {"pager": MASK}


@pytest.mark.usefixtures("worker")
def test_secret_input_is_used_but_never_shown(engine: Any, peer: HttpPeer) -> None:
    from automation.api.serializers import run_json
    from automation.models import WorkflowRun
    from tests.conftest import STATE_DIR

    name = unique("secret")
    engine.register_workflow(WorkflowDefinition(
        name=name,
        inputs={"pager_token": {"type": "string", "secret": True}, "service": {"type": "string"}},
        actions=[ActionDefinition(name="page", action_type="http.request", parameters={
            "url": f"{peer.url}/page", "method": "POST",
            "headers": {"Authorization": "Bearer ${pager_token}"}, "json": {"service": "${service}"},
        })],
    ))
    run = engine.run_workflow(name, {"pager_token": "s3cr3t-value", "service": "api"}).wait(60)
    assert run.status == "succeeded"
    assert peer.received[0].headers["Authorization"] == "Bearer s3cr3t-value"
    shown = str(run_json(WorkflowRun.objects.get(id=run.id)))
    assert "s3cr3t-value" not in shown and MASK in shown
    for log in STATE_DIR.glob("*.log"):
        assert "s3cr3t-value" not in log.read_text()
