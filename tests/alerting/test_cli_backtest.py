"""`automation rules backtest` and `automation anomaly score` as a user runs them: real processes, files
in, no database (the state directory is never created), exit code 2 and one line for bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "nab"
CPU = DATA / "realAWSCloudwatch" / "ec2_cpu_utilization_24ae8d.csv"
LABELS = DATA / "labels" / "combined_windows.json"
NASA = ROOT / "tests" / "data" / "nasa-http" / "requests_per_minute_rows_0-7199.csv"

RULES = """
rules:
  - name: cpu_peak
    condition: value > 2
    severity: high
    actions: [{type: notify, parameters: {url: "http://127.0.0.1:9/"}}]
  - name: cpu_busy
    condition: value > 1 AND duration > 5m
  - name: from_prometheus
    source: prometheus
    expr: up == 0
alerting:
  route: {receiver: log, group_by: [alertname], group_wait: 30s}
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def automation(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AUTOMATION_BROKER_URL")}
    env["AUTOMATION_STATE_DIR"] = str(state)  # an embedded database would be created here
    done = subprocess.run(
        [sys.executable, "-m", "automation.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not state.exists(), "the command set a database up"
    return done


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    return path


def test_backtest_json_reports_firings_runs_and_labelled_windows(state: Path, rules_file: Path) -> None:
    done = automation(
        state, "rules", "backtest", "-f", str(rules_file), "--trace", str(CPU), "--labels", str(LABELS),
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["trace"]["metric"] == "value" and report["trace"]["labels"] == {"trace": CPU.stem}
    assert report["evaluations"] == 4032 and report["interval_seconds"] == 300
    assert report["skipped"] == {"from_prometheus": "its `expr` is PromQL, evaluated by Prometheus"}
    peak = report["rules"]["cpu_peak"]
    assert [f["detected_at"] for f in peak["firings"]] == ["2014-02-26T22:05:00Z"]
    assert peak["runs"][0]["workflow"] == "alert.cpu_peak.gated"  # level supervised by default
    assert [n["at"] for n in peak["notifications"]] == ["2014-02-26T22:05:30Z", "2014-02-26T22:10:30Z"]
    windows = peak["windows"]
    assert (windows["windows"], windows["caught"], windows["false_alerts"]) == (2, 1, 0)
    assert windows["per_window"][0]["delay_minutes"] == 500.0
    busy = report["rules"]["cpu_busy"]["firings"]
    assert all(f["start"] < f["detected_at"] for f in busy)  # dated from when the condition began


def test_backtest_text_summary(state: Path, rules_file: Path) -> None:
    done = automation(
        state, "rules", "backtest", "-f", str(rules_file), "--trace", str(CPU), "--labels", str(LABELS),
        "--level", "autonomous",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "rule cpu_peak: 1 firing(s), 2 notification(s), 1 run(s) (0 behind an approval)" in done.stdout
    assert "labelled windows: 1 of 2 caught (mean delay 500 min" in done.stdout
    assert "rule from_prometheus: skipped" in done.stdout


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"-f": "/nonexistent/rules.yml"}, "/nonexistent/rules.yml: cannot read"),
        ({"rules": "rules: [\n"}, "not valid YAML"),
        ({"--trace": "/nonexistent/trace.csv"}, "--trace /nonexistent/trace.csv: no such file"),
        ({"--column": "cpu"}, "column 'cpu': no such column; the header has timestamp, value"),
        ({"rules": "rules:\n  - name: x\n    condition: value >> 1\n"}, "x.condition: column 8"),
        ({"--interval": "5x"}, "--interval: '5x' is not a duration"),
        ({"--labels": "/nonexistent/labels.json"}, "/nonexistent/labels.json: cannot read"),
        ({"--trace": str(NASA), "--labels": str(LABELS)}, "no windows for requests_per_minute_rows_0-7199"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(
    state: Path, rules_file: Path, change: dict[str, str], problem: str
) -> None:
    if "rules" in change:
        rules_file.write_text(change.pop("rules"))
    options = {"-f": str(rules_file), "--trace": str(CPU), **change}
    done = automation(state, "rules", "backtest", *[part for pair in options.items() for part in pair])
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], done.stderr


def test_anomaly_score_writes_nab_results(state: Path, tmp_path: Path) -> None:
    trace = tmp_path / "cpu.csv"
    with CPU.open() as source:
        trace.write_text("".join(line for _, line in zip(range(801), source, strict=False)))  # ~2.8 days
    output = tmp_path / "scores.csv"
    done = automation(state, "anomaly", "score", "--trace", str(trace), "--output", str(output))
    assert done.returncode == 0, done.stderr
    with trace.open() as handle:
        rows = list(csv.DictReader(handle))
    with output.open() as handle:
        scored = list(csv.DictReader(handle))
    assert list(scored[0]) == ["timestamp", "value", "anomaly_score"]
    assert [(r["timestamp"], float(r["value"])) for r in scored] == [
        (r["timestamp"], float(r["value"])) for r in rows
    ]
    scores = [float(r["anomaly_score"]) for r in scored]
    assert all(0 <= s < 1 for s in scores)
    assert scores[0] == 0 and max(scores) > 0.5  # no history at first; spikes later
    assert f"{len(rows)} rows" in done.stdout


def test_anomaly_score_bad_input(state: Path, tmp_path: Path) -> None:
    done = automation(state, "anomaly", "score", "--trace", str(CPU), "--output", "/nonexistent/dir/out.csv")
    assert done.returncode == 2 and "--output /nonexistent/dir/out.csv: no such directory" in done.stderr
    output = str(tmp_path / "o.csv")
    done = automation(state, "anomaly", "score", "--trace", str(CPU), "--column", "x", "-o", output)
    assert done.returncode == 2 and "column 'x': no such column" in done.stderr
