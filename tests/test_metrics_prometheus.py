"""The seed's metrics as a real Prometheus scrapes them from the API after a known sequence of runs:
exact names and types, counts read from the durable state (so every process answers the same)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from automation import ActionDefinition, WorkflowDefinition
from automation.metrics import CACHE_SECONDS
from tests.alerting.peers import PrometheusServer
from tests.api_server import ApiServer
from tests.conftest import ROOT, STATE_DIR, free_port, gated_workflow, unique, wait_for

RULES = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "automation-dashboard.json"
#: Names of the engine's series in a PromQL expression (a histogram's are its _bucket/_sum/_count).
#: The test Prometheus scrapes every second (tests/alerting/peers.py).
SCRAPE_SECONDS = 1.0
SERIES = re.compile(r"\b(workflow_[a-z_]+|active_workflows|automation_[a-z_]+)\b")

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('metrics-api')}.log", tokens="m3trics", workers=1)
    yield started
    started.stop()


def _value(prometheus: PrometheusServer, promql: str) -> float | None:
    result = prometheus.instant(promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_seeds_four_names_with_their_values(engine: Any, server: ApiServer) -> None:
    from automation.choices import RunStatus
    from automation.models import WorkflowRun

    name = unique("metered")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            inputs={"url": {"type": "string", "required": False, "default": ""}},
            conditions=[],
            actions=[ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 0})],
        )
    )
    failing = unique("failing")
    engine.register_workflow(
        WorkflowDefinition(
            name=failing,
            actions=[
                ActionDefinition(
                    name="call",
                    action_type="http.request",
                    parameters={"url": f"http://127.0.0.1:{free_port()}/nothing-listens"},
                    retry_attempts=0,
                )
            ],
        )
    )
    runs = [engine.run_workflow(name) for _ in range(3)] + [engine.run_workflow(failing)]
    gated = engine.run_workflow(gated_workflow(engine, "metered-gate"))
    wait_for(lambda: all(WorkflowRun.objects.get(id=r.id).status in RunStatus.TERMINAL for r in runs), 60)
    wait_for(lambda: "requested_at" in gated.step("gate").state)
    engine.cancel_run(gated.id)
    target = httpx.URL(server.url).netloc.decode()
    prometheus = PrometheusServer([target], job="automation")
    try:
        def scraped(promql: str, expected: float) -> bool:
            return _value(prometheus, promql) == expected

        wait_for(lambda: scraped(f'workflow_executions_total{{workflow="{name}",status="succeeded"}}', 3), 30)
        assert _value(prometheus, f'workflow_executions_total{{workflow="{failing}",status="failed"}}') == 1
        assert _value(prometheus, f'workflow_execution_duration_seconds_count{{workflow="{name}"}}') == 3
        every = f'workflow_execution_duration_seconds_bucket{{workflow="{name}",le="+Inf"}}'
        assert _value(prometheus, every) == 3
        assert _value(prometheus, f'workflow_execution_duration_seconds_sum{{workflow="{name}"}}') >= 0
        succeeded = _value(
            prometheus, 'automation_action_executions_total{action_type="control.wait",status="succeeded"}'
        )
        assert succeeded is not None and succeeded >= 3
        metadata = httpx.get(f"{prometheus.url}/api/v1/metadata").json()["data"]
        kinds = {metric: entries[0]["type"] for metric, entries in metadata.items()}
        assert kinds["workflow_executions_total"] == "counter"
        assert kinds["workflow_execution_duration_seconds"] == "histogram"
        assert kinds["active_workflows"] == "gauge" and kinds["automation_efficiency_ratio"] == "gauge"

        def active_matches() -> bool:
            stored = WorkflowRun.objects.filter(status__in=RunStatus.ACTIVE).count()
            return _value(prometheus, "active_workflows") == stored

        wait_for(active_matches, 30)
        # Every series the shipped dashboard and alert rules read is one the engine serves.
        dashboard = json.loads(DASHBOARD.read_text())
        exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
        exprs.append((RULES / "automation-rules.yml").read_text())
        used = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in SERIES.findall(e)}
        assert used and used <= set(kinds), used - set(kinds)
        ratio = _value(prometheus, "automation_efficiency_ratio")
        assert ratio is not None and 0 < ratio < 1  # this test's failed and cancelled runs count against it

        # Beat's job adds the finished runs to the tallies: the scraped values do not move (no run counted
        # twice or lost), once the API's cache and Prometheus have seen a read made after it.
        from automation.runs.tallies import add_up

        add_up()
        assert not WorkflowRun.objects.filter(id__in=[r.id for r in runs], counted=False).exists()
        time.sleep(CACHE_SECONDS + 2 * SCRAPE_SECONDS)
        assert _value(prometheus, f'workflow_executions_total{{workflow="{name}",status="succeeded"}}') == 3
        assert _value(prometheus, f'workflow_executions_total{{workflow="{failing}",status="failed"}}') == 1
        assert _value(prometheus, f'workflow_execution_duration_seconds_count{{workflow="{name}"}}') == 3
    finally:
        prometheus.stop()


def test_the_shipped_alert_rules_pass_promtools_checks_and_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    checked = subprocess.run([promtool, "check", "rules", "automation-rules.yml"], cwd=RULES,
                             capture_output=True, text=True, timeout=60, check=False)
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0 and "SUCCESS: 7 rules found" in checked.stdout, output
    tested = subprocess.run([promtool, "test", "rules", "automation-rules.test.yml"], cwd=RULES,
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
