"""The web UI in a real browser: a real run on a real worker, the real API server, headless Chromium
logging in through the admin's form and opening the run page; the screenshot must show one box per step
in its status's colour, where the page's SVG declares it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

import tests.slow_actions  # noqa: F401 - registers the testing.* actions in this process too
from automation import ActionDefinition, WorkflowDefinition
from automation.webui.dag import NODE_HEIGHT, NODE_WIDTH
from automation.webui.svg import STATUS_COLOURS
from tests.api_server import ApiServer
from tests.browser import Chromium
from tests.conftest import free_port, unique
from tests.webui.users import PASSWORD, make_user

pytestmark = [
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(
        shutil.which("chromium") is None, reason="chromium is installed by scripts/ensure-services.sh"
    ),
]


def finished_run(engine: Any) -> Any:
    """fetch -> (left, broken) -> merge on the shared worker: two steps succeed, one fails (its peer's
    port is closed), the last is skipped."""
    name = unique("browser")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            inputs={"password": {"type": "string", "secret": True}},
            actions=[
                ActionDefinition(
                    name="fetch", action_type="testing.echo", parameters={"value": {"token": "tok-9"}}
                ),
                ActionDefinition(
                    name="left", action_type="testing.echo", parameters={"value": "l"}, depends_on=["fetch"]
                ),
                ActionDefinition(
                    name="broken",
                    action_type="http.request",
                    parameters={"url": f"http://127.0.0.1:{free_port()}/down"},
                    retry_attempts=1,
                    depends_on=["fetch"],
                ),
                ActionDefinition(
                    name="merge", action_type="testing.echo", parameters={"value": "m"},
                    depends_on=["left", "broken"],
                ),
            ],
        )
    )
    handle = engine.run_workflow(name, {"password": "hunter2"})
    try:
        return handle.wait(120)
    except Exception:
        raise AssertionError([(s.name, s.status, s.attempts, s.error) for s in handle.steps]) from None


def boxes_of(image: np.ndarray, colour: str) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x, y, width, height) of the solid regions of `colour` the size of a step's box."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    near = np.abs(image.astype(int) - rgb).sum(axis=2) < 24
    labels, _ = ndimage.label(near)
    found = []
    for region in ndimage.find_objects(labels):
        ys, xs = region
        width, height = xs.stop - xs.start, ys.stop - ys.start
        if abs(width - NODE_WIDTH) <= 3 and abs(height - NODE_HEIGHT) <= 3:
            found.append((xs.start, ys.start, width, height))
    return sorted(found)


def test_a_logged_in_user_sees_the_run_drawn_with_every_step_coloured(engine: Any, tmp_path: Path) -> None:
    handle = finished_run(engine)
    assert handle.status == "failed", handle.steps
    statuses = {step.name: step.status for step in handle.steps}
    assert statuses == {"fetch": "succeeded", "left": "succeeded", "broken": "failed", "merge": "skipped"}
    user = make_user(superuser=True)
    server = ApiServer(log_path=tmp_path / "api.log")
    browser = Chromium(profile=tmp_path / "profile")
    try:
        run_path = f"/ui/runs/{handle.id}"
        browser.navigate(f"{server.url}{run_path}")
        assert browser.evaluate("location.pathname") == "/admin/login/"  # not logged in yet
        browser.submit(
            f"document.getElementById('id_username').value = {json.dumps(user.username)};"
            f"document.getElementById('id_password').value = {json.dumps(PASSWORD)};"
            "document.getElementById('login-form').submit();"
        )
        assert browser.evaluate("location.pathname") == run_path
        text = browser.evaluate("document.body.innerText")
        assert "hunter2" not in text and "tok-9" not in text and "********" in text
        assert browser.evaluate("document.getElementById('run-status').innerText") == "failed"
        # the admin's stylesheet came from this server (offline: nothing else could serve it)
        assert browser.evaluate("getComputedStyle(document.getElementById('header')).display") == "flex"
        declared = browser.evaluate(
            "JSON.stringify([...document.querySelectorAll('g.step')].map(g => {"
            " const b = g.querySelector('rect').getBoundingClientRect();"
            " return [g.dataset.step, g.dataset.status, Math.round(b.x), Math.round(b.y)]; }))"
        )
        shot = browser.screenshot(tmp_path / "run.png")
    finally:
        browser.close()
        server.stop()

    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB"))
    nodes = json.loads(declared)
    assert sorted(name for name, *_ in nodes) == sorted(statuses)
    for status in set(statuses.values()):
        drawn = boxes_of(image, STATUS_COLOURS[status])
        expected = sorted((x, y) for _, s, x, y in nodes if s == status)
        assert len(drawn) == len(expected), (status, drawn, expected)
        for (x, y, _, _), (ex, ey) in zip(drawn, expected, strict=True):
            assert abs(x - ex) <= 2 and abs(y - ey) <= 2, (status, drawn, expected)
    assert "GET /ui/runs/" in server.log() and "POST /admin/login/" in server.log()
