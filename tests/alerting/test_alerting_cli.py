"""`automation silences|alerts|alerting|rules` as an operator runs them: real processes, exit codes, one line
per error on stderr; bad input stores nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, unique

pytestmark = pytest.mark.usefixtures("engine")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automation.cli.main", *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `Error: ...` line of a refused command (exit 2), without its prefix."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix("Error: ").rstrip("\n")


@pytest.fixture
def stored_document() -> Iterator[None]:
    from automation.alerting.services.config import apply_document
    from automation.models import AlertingConfig

    before = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() or {}
    yield
    apply_document(before)


def silence_count() -> int:
    from automation.models import Silence

    return Silence.objects.count()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("service",), "matchers: 'service' is not a matcher"),
        (('pod=~"("',), "matchers: 'pod=~\"(\"': bad regular expression"),
        (('service="api"', "--until", "soon"), "--until: 'soon' is neither +DURATION nor an ISO 8601 time"),
        (('service="api"', "--until", "+2x"), "--until: '2x' is not a duration"),
        (('service="api"', "--until", "2001-01-01T00:00:00Z"), "ends_at: is in the past"),
        (('service="api"', "--until", "+2h", "--by", "x" * 201), "created_by: must be at most 200"),
    ],
)
def test_a_bad_silence_exits_2_with_one_line_naming_the_problem(args: tuple[str, ...], words: str) -> None:
    options = {"--until": "+2h", "--by": "alice", "--comment": "maintenance"}
    given = list(args)
    for option, value in options.items():
        if option not in given:
            given += [option, value]
    before = silence_count()
    assert words in one_line_error(cli("silences", "add", *given))
    assert silence_count() == before


def test_a_silence_added_is_listed_then_expired() -> None:
    service = unique("svc")
    added = cli(
        "silences", "add", f'service="{service}"', 'env=~"prod|staging"', "--until", "+2h",
        "--by", "alice", "--comment", "disk swap",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    listed = cli("silences", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(silence_id))
    assert " active " in line and f'service="{service}"' in line and 'env=~"prod|staging"' in line
    assert line.endswith("by alice: disk swap")

    assert cli("silences", "expire", silence_id).returncode == 0
    line = next(line for line in cli("silences", "list").stdout.splitlines() if line.startswith(silence_id))
    assert " expired " in line
    again = cli("silences", "expire", silence_id)
    assert again.returncode == 1 and "already expired" in again.stderr
    unknown = cli("silences", "expire", "00000000-0000-0000-0000-000000000000")
    assert "does not exist" in one_line_error(unknown)
    assert "silence_id" in one_line_error(cli("silences", "expire", "banana"))


def test_why_of_an_unknown_alert_exits_2() -> None:
    assert one_line_error(cli("alerts", "why", "UNKNOWN")) == "alert UNKNOWN does not exist"


def test_why_tells_the_decisions_about_an_alert(engine: Any) -> None:
    import json
    import time
    from datetime import UTC, datetime

    from automation.alerting.payloads import ReceivedAlert
    from automation.alerting.services.intake import receive

    name = unique("cli_why")
    fingerprint = unique("fp")
    labels = {"alertname": name, "service": "api"}
    alert = ReceivedAlert(fingerprint, "event", labels, {}, True, datetime.now(UTC))
    receive(alert, time.time())
    receive(alert, time.time())
    shown = cli("alerts", "why", fingerprint)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(name) and shown.stdout.splitlines()[0].endswith(" is firing")
    assert [line.split()[1] for line in shown.stdout.splitlines()[1:3]] == ["fired", "held"]
    listed = cli("alerts", "list", "--state", "firing").stdout.splitlines()
    assert any(line.startswith(f"{fingerprint}  firing") and name in line for line in listed)
    assert cli("alerts", "list", "--state", "burning").returncode == 2
    answer = json.loads(cli("alerts", "why", fingerprint, "--json").stdout)
    assert answer["alert"]["state"] == "firing"
    assert "deduplicated" in [entry["decision"] for entry in answer["log"]]


@pytest.mark.usefixtures("stored_document")
def test_alerting_apply_refuses_a_bad_file_and_applies_a_good_one(tmp_path: Path) -> None:
    from automation.models import AlertingConfig

    team = unique("team")
    stored = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first()
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"""
alerting:
  route:
    receiver: {team}
    routes:
      - matchers: ['severity="critical"']
        receiver: pager
  receivers:
    - name: {team}
      slack: {{url: "http://127.0.0.1:9/hook"}}
""")
    error = one_line_error(cli("alerting", "apply", "-f", str(bad)))
    assert error.startswith("route.routes[0].receiver: unknown receiver 'pager'")
    broken = _write(tmp_path, "broken.yaml", "a: [")
    assert "not valid YAML" in one_line_error(cli("alerting", "apply", "-f", str(broken)))
    assert "cannot read" in one_line_error(cli("alerting", "apply", "-f", str(tmp_path / "absent.yaml")))
    assert AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() == stored

    good = _write(tmp_path, "good.yaml", bad.read_text().replace("receiver: pager", f"receiver: {team}"))
    applied = cli("alerting", "apply", "-f", str(good))
    assert applied.returncode == 0, applied.stderr
    assert re.fullmatch(
        r"alerting document applied: 1 receiver\(s\), 0 inhibition rule\(s\); "
        r"\d+ firing alert\(s\) re-routed\n",
        applied.stdout,
    ), applied.stdout
    document = AlertingConfig.objects.get(pk=1).document
    assert document["route"]["routes"][0]["receiver"] == team


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_rules_apply_stores_handlers_all_or_none(tmp_path: Path) -> None:
    from automation.models import AlertRule, Workflow

    first, second = unique("cli_disk"), unique("cli_cpu")
    good = _write(
        tmp_path,
        "rules.yaml",
        f"""
rules:
  - name: {first}
    severity: high
    actions:
      - type: control.wait
        parameters: {{seconds: 0}}
  - name: {second}
    cooldown_period: 10m
    actions:
      - type: control.wait
        parameters: {{seconds: 1}}
""",
    )
    applied = cli("rules", "apply", "-f", str(good))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [f"rule {first} stored", f"rule {second} stored"]
    assert AlertRule.objects.get(name=second).document["cooldown_period"] == 600
    assert Workflow.objects.filter(name__in=[f"alert.{first}", f"alert.{first}.gated"]).count() == 2
    listed = cli("rules", "list").stdout
    assert f"{first}" in listed and "(received alerts only)" in listed

    third, fourth = unique("cli_ok"), unique("cli_bad")
    bad = _write(
        tmp_path,
        "bad.yaml",
        f"""
rules:
  - name: {third}
    actions: [{{type: control.wait, parameters: {{seconds: 0}}}}]
  - name: {fourth}
    actions: [{{type: control.wait, parameters: {{seconds: soon}}}}]
""",
    )
    error = one_line_error(cli("rules", "apply", "-f", str(bad)))
    assert error.startswith("rules[1].actions[0].parameters.seconds: ")
    assert not AlertRule.objects.filter(name__in=[third, fourth]).exists()
    assert not Workflow.objects.filter(name__startswith=f"alert.{third}").exists()

    shapeless = f"rules:\n  - name: {third}\n  - just text\n  - {{name: {third}, workflow: {{name: w}}}}\n"
    error = one_line_error(cli("rules", "apply", "-f", str(_write(tmp_path, "shapeless.yaml", shapeless))))
    assert error.startswith("rules[0]: ") and "; rules[1]: expected a mapping" in error
    assert not AlertRule.objects.filter(name=third).exists()
    call = f"{{name: {third}, workflow: {{name: w}}}}"
    twice = f"rules:\n  - {call}\n  - {call}\n"
    error = one_line_error(cli("rules", "apply", "-f", str(_write(tmp_path, "twice.yaml", twice))))
    assert error == f"rules[1].name: a second rule named '{third}'"
