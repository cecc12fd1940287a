"""Every code block of README.md runs as written, in order, against real processes.

- `bash` blocks run in one scratch directory with the project's virtualenv first on PATH (as after
  `. .venv/bin/activate`), against this session's PostgreSQL, Redis, worker and a real `automation serve`;
  blocks that start with `make` run in the repository as a fresh clone would (embedded: no database or
  broker URL). Every `curl` answer must match the `# STATUS {json}` comment under its command (`…` stands
  for any value), and every other `curl` call must succeed.
- `python` blocks run in a fresh interpreter; `yaml` blocks must be valid definitions (workflows, alert
  rules under `rules:`, or scaling targets under `targets:`), and one marked
  `<!-- file: NAME -->` is saved as NAME in the scratch directory for the blocks after it.
- A block marked `<!-- not-run: reason -->` is skipped, and listed as skipped with its reason.
- `text` blocks are illustrations. Two addresses are replaced, the only changes made: the API's
  `localhost:8000` by this test's server and the broker's `redis://localhost:6379/0` by this session's.

The actions table must be the one `automation actions list --markdown` prints from the action registry.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ECHO_SERVICE, REDIS_URL, ROOT, SERVICES_FILE, STATE_DIR, free_port, wait_for

README = ROOT / "README.md"
LANGUAGES = {"bash", "python", "yaml", "text"}
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!-- (not-run|file): (.+?) -->$")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the block's first line in README.md
    marker: tuple[str, str] | None

    def __str__(self) -> str:
        return f"README.md:{self.line}:{self.language}"


def readme_blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        marker = _MARKER.match(lines[i - 1]) if i else None
        end = i + 1
        while not lines[end].startswith("```"):
            end += 1
        text = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(opened.group(1), text, i + 2, marker.groups() if marker else None))  # type: ignore[arg-type]
        i = end + 1
    return found


BLOCKS = readme_blocks()


def test_every_block_has_a_language_the_test_knows() -> None:
    assert BLOCKS
    assert {b.language for b in BLOCKS} <= LANGUAGES, [str(b) for b in BLOCKS if b.language not in LANGUAGES]


def test_readme_says_how_to_reach_the_virtualenv() -> None:
    text = README.read_text()
    assert ". .venv/bin/activate" in text and ".venv/bin/automation" in text


def test_actions_table_is_generated_from_the_registry() -> None:
    from automation.bootstrap import setup

    setup()
    from automation.cli.catalog import actions_markdown

    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<!-- actions-table")) + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    in_readme = "\n".join(lines[start:end]) + "\n"
    assert in_readme == actions_markdown(), "regenerate it: automation actions list --markdown"


# Running the blocks.


@dataclass
class Scene:
    """What the blocks run against, shared by all of them in README order."""

    workdir: Path
    env: dict[str, str]
    api: Any
    peer: Any
    curl_log: Path
    substitutions: dict[str, str]

    def substituted(self, text: str) -> str:
        for written, here in self.substitutions.items():
            text = text.replace(written, here)
        return text


@pytest.fixture(scope="module")
def scene(engine: Any, worker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    from automation import AutomationEngine
    from automation.providers import get_provider
    from tests.api_server import ApiServer
    from tests.peers import HttpPeer

    # The README's services: `api` and `spotify-api`, both the demo's echo service, started.
    services = {
        name: {
            "command": ["{python}", str(ECHO_SERVICE), "--port", "{port}"],
            "port": free_port(),
            "health_url": "http://127.0.0.1:{port}/health",
            "grace_period": 5,
        }
        for name in ("api", "spotify-api")
    }
    SERVICES_FILE.write_text(yaml.safe_dump({"services": services}))
    provider = get_provider("local", services_file=str(SERVICES_FILE))
    for name in services:
        provider.start(name)
    peer = HttpPeer()
    api = ApiServer(log_path=STATE_DIR / "readme-api.log")
    workdir = tmp_path_factory.mktemp("readme")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(bin_dir.parent),
        "SLACK_WEBHOOK_URL": f"{peer.url}/slack",
    }
    env.pop("AUTOMATION_API_TOKENS", None)
    yield Scene(
        workdir=workdir,
        env=env,
        api=api,
        peer=peer,
        curl_log=workdir / "curl.log",
        substitutions={"localhost:8000": f"127.0.0.1:{api.port}", "redis://localhost:6379/0": REDIS_URL},
    )
    api.stop()
    peer.close()
    for name in services:
        provider.stop(name, grace_period=1)
    AutomationEngine(engine.config)  # the README's Python block stored its own engine config


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    ran = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert ran.returncode == 0, (
        f"exit {ran.returncode}\n--- stdout\n{ran.stdout[-4000:]}\n--- stderr\n{ran.stderr[-4000:]}"
    )
    return ran.stdout


@pytest.mark.integration
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language != "text"], ids=str)
def test_block_runs_as_written(block: Block, scene: Scene) -> None:
    if block.marker and block.marker[0] == "not-run":
        pytest.skip(f"{block}: not-run: {block.marker[1]}")
    if block.language == "yaml":
        _yaml_block(block, scene)
    elif block.language == "python":
        _python_block(block, scene)
    else:
        _bash_block(block, scene)


def _yaml_block(block: Block, scene: Scene) -> None:
    from automation.definitions.schema import WorkflowDefinition
    from automation.definitions.validation import validate_definition

    # Validation alone (nothing stored): the blocks that register definitions do so as a user would.
    document = yaml.safe_load(block.text)
    if isinstance(document, dict) and "rules" in document:
        from automation.alerting.definitions import RuleDefinition
        from automation.alerting.rules import parse_rule

        for i, raw in enumerate(document["rules"]):
            rule = RuleDefinition.parse(raw, where=f"rules[{i}]")
            if rule.condition is not None:
                parse_rule(rule.condition)
    elif isinstance(document, dict) and "targets" in document:
        from automation.scaling.definitions import ScalingTargetDefinition

        for i, raw in enumerate(document["targets"]):
            ScalingTargetDefinition.parse(raw, where=f"targets[{i}]")
    else:
        validate_definition(WorkflowDefinition.from_document(document))
    if block.marker and block.marker[0] == "file":
        (scene.workdir / block.marker[1]).write_text(block.text)


def _python_block(block: Block, scene: Scene) -> None:
    from automation.models import WorkflowRun

    code = scene.substituted(block.text)
    out = _run([sys.executable, "-c", code], cwd=scene.workdir, env=scene.env)
    if "AutomationEngine(" in code:
        assert re.fullmatch(r"succeeded \d+\n", out), out
    if "send_task(" in code:
        key = re.search(r'"idempotency_key": "([^"]+)"', code).group(1)  # type: ignore[union-attr]
        wait_for(lambda: WorkflowRun.objects.filter(idempotency_key=key, status="succeeded").exists(), 90)


# The curl wrapper records each call's line in the script, status and body; the body still goes to stdout.
_PRELUDE = """set -euo pipefail
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -sS -o "$body" -w '%{http_code}' "$@")
  printf '%s\\t%s\\t%s\\n' "${BASH_LINENO[0]}" "$status" "$(base64 -w0 < "$body")" >> "$CURL_LOG"
  cat "$body"
  rm -f "$body"
}
"""


def _bash_block(block: Block, scene: Scene) -> None:
    if block.text.startswith("make "):
        # A fresh clone: embedded mode, its own state directory, in the repository.
        env = {k: v for k, v in scene.env.items() if k not in ("DATABASE_URL", "AUTOMATION_BROKER_URL")}
        env["AUTOMATION_STATE_DIR"] = str(scene.workdir / "embedded")
        out = _run(["bash", "-c", _PRELUDE + block.text], cwd=ROOT, env=env)
        if block.text.startswith("make demo"):
            assert "was restarted for real" in out, out
            assert "one chat message for the group of two alerts" in out, out
        return
    script = scene.workdir / f"block-{block.line}.sh"
    script.write_text(_PRELUDE + scene.substituted(block.text))
    scene.curl_log.write_text("")
    _run(["bash", str(script)], cwd=scene.workdir, env={**scene.env, "CURL_LOG": str(scene.curl_log)})
    _check_curl_answers(block, _PRELUDE.count("\n"), scene.curl_log)
    if "automation runs approve" in block.text:
        _check_cli_effects(scene)


@dataclass(frozen=True)
class Expected:
    first: int  # block lines of the curl command
    last: int
    status: int
    body: Any


def expected_answers(text: str) -> list[Expected]:
    """Each curl command followed by a `# STATUS {json}` comment, with its lines in the block (1-based)."""
    lines = text.splitlines()
    found: list[Expected] = []
    i = 0
    while i < len(lines):
        first = i
        while lines[i].endswith("\\"):
            i += 1
        heredoc = re.search(r"<<\s*'?(\w+)'?", lines[i])
        if heredoc:
            while lines[i] != heredoc.group(1):
                i += 1
        answer = re.match(r"^# (\d{3})(?: (.*))?$", lines[i + 1]) if i + 1 < len(lines) else None
        if lines[first].startswith("curl ") and answer:
            body = json.loads(answer.group(2).replace("[…]", '"…"')) if answer.group(2) else None
            found.append(Expected(first + 1, i + 1, int(answer.group(1)), body))
        i += 1
    return found


def _matches_text(pattern: str, text: str) -> bool:
    """`pattern` with each "…" standing for any text (nothing else is special)."""
    first, *middle, last = pattern.split("…")
    if not text.startswith(first) or len(text) < len(first) + len(last) or not text.endswith(last):
        return False
    at, end = len(first), len(text) - len(last)
    for part in middle:
        found = text.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


def matches(expected: Any, actual: Any) -> bool:
    """`expected` is a part of `actual`; "…" stands for any value, or for any text inside a string."""
    if expected == "…":
        return True
    if isinstance(expected, str) and "…" in expected:
        return isinstance(actual, str) and _matches_text(expected, actual)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual) and type(expected) is type(actual)


def _check_curl_answers(block: Block, prelude_lines: int, log: Path) -> None:
    calls = []
    for entry in log.read_text().splitlines():
        line, status, body = entry.split("\t")
        calls.append((int(line) - prelude_lines, int(status), base64.b64decode(body).decode()))
    expectations = expected_answers(block.text)
    answered = set()
    for expected in expectations:
        here = [c for c in calls if expected.first <= c[0] <= expected.last]
        where = f"README.md:{block.line + expected.first - 1}"
        assert len(here) == 1, f"{where}: {len(here)} calls"
        _, status, body = here[0]
        assert status == expected.status, f"{where}: {status} {body}"
        if expected.body is not None:
            assert matches(expected.body, json.loads(body)), f"{where}: {body}"
        answered.add(here[0])
    for call in calls:
        if call not in answered:
            assert call[1] < 400, f"README.md:{block.line + call[0] - 1}: {call[1]} {call[2]}"


def _check_cli_effects(scene: Scene) -> None:
    """The CLI block ran a restart for real, approved one gated run and cancelled another."""
    from automation.models import WorkflowRun

    def statuses(workflow: str) -> list[str]:
        return list(
            WorkflowRun.objects.filter(workflow__name=workflow)
            .order_by("created_at")
            .values_list("status", flat=True)
        )

    assert statuses("restart-and-tell") == ["succeeded"]
    wait_for(lambda: statuses("gated-restart") == ["succeeded", "cancelled"], 60)
    texts = [r.body.get("text", "") for r in scene.peer.received if isinstance(r.body, dict)]
    assert any(re.fullmatch(r"api restarted, new pid \d+", t) for t in texts), texts
