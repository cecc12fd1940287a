"""`automation scaling replay`: a recorded trace through the real loop on a simulated clock (the stored
forecaster, the guards, the decision log, the scale workflows run against the replayed fleet), scored as
`scaling backtest` scores the simulator. The reactive policy, written twice (automation/scaling/control.py
for the loop, automation/scaling/policies.py for the simulator), must decide the same on the same trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerting.test_alerting_cli import cli
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]

TAXI = ROOT / "tests" / "data" / "nab" / "realKnownCause" / "nyc_taxi.csv"
STEPS = 480  # ten days of 30-minute buckets
NASA = ROOT / "tests" / "data" / "nasa-http" / "requests_per_minute_rows_0-7199.csv"
NASA_MINUTES = 360  # six hours of requests per minute


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    lines = TAXI.read_text().splitlines()
    path = tmp_path / "taxi.csv"
    path.write_text("\n".join(lines[: STEPS + 1]) + "\n")
    return path


def targets_file(tmp_path: Path, **changes: Any) -> Path:
    target = {
        "name": "taxi",
        "service": "taxi-api",
        "provider": "local",
        "load": {"metric": "rides", "step": 60, "history": "7d"},
        "capacity_per_replica": 3000,
        "target_utilization": 0.7,
        "min_replicas": 1,
        "max_replicas": 20,
        "policy": "reactive",
        "provisioning_delay": "10m",
        "forecast": {"refit_every": "1d", "min_history": "2d"},
        **changes,
    }
    path = tmp_path / "scaling.yml"
    path.write_text(yaml.safe_dump({"targets": [target]}))
    return path


def replay(*args: Any) -> Any:
    return cli("scaling", "replay", *map(str, args), timeout=180)


def test_the_loops_reactive_policy_decides_as_the_simulators_and_leaves_nothing_behind(
    tmp_path: Path, trace: Path
) -> None:
    from automation.models import ScalingTarget, Workflow

    file = targets_file(tmp_path)
    ran = replay("-f", file, "--trace", trace, "--decision-interval", "30m", "--compare", "--json")
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    loop, simulator = answer["loop"], answer["simulator"]
    # One decision per 30-minute tick after the first; a scale run (a real workflow) per change.
    assert loop["policy"]["decisions"] == STEPS - 1
    assert loop["policy"]["scale_runs"] >= loop["scale_actions"] > 10
    for figure in ("under_provisioned_minutes", "replica_hours", "scale_actions"):
        assert loop[figure] == simulator[figure], figure
    assert loop["under_provisioned_minutes"] > 0  # the figure measures something on this slice
    assert not ScalingTarget.objects.filter(name__startswith="replay-").exists()
    assert not Workflow.objects.filter(name__startswith="scaling.replay-").exists()


def test_without_the_scale_in_rules_the_loops_reactive_decides_as_the_simulators_every_15_s(
    tmp_path: Path,
) -> None:
    """At the HPA's 15 s on minute data the loop's default scale-in rules (cooldown after any change, at
    most 50% a step) are what separates it from the simulator's reactive: without them, the same figures
    (bench_scaling_replay.py's `--guards simulator`)."""
    lines = NASA.read_text().splitlines()
    trace = tmp_path / "nasa.csv"
    trace.write_text("\n".join(lines[: NASA_MINUTES + 1]) + "\n")
    no_rules = {"cooldown": 0, "max_percent": 100}
    file = targets_file(
        tmp_path, capacity_per_replica=20, load={"metric": "hits", "step": 60}, scale_in=no_rules
    )
    ran = replay("-f", file, "--trace", trace, "--decision-interval", "15s", "--compare", "--json")
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    loop, simulator = answer["loop"], answer["simulator"]
    assert loop["policy"]["decisions"] == NASA_MINUTES * 4 - 1
    for figure in ("under_provisioned_minutes", "replica_hours", "scale_actions"):
        assert loop[figure] == simulator[figure], figure
    assert loop["under_provisioned_minutes"] > 0 and loop["scale_actions"] > 10


def test_a_kept_replay_leaves_its_decision_log_and_runs_to_read(tmp_path: Path, trace: Path) -> None:
    from automation.models import ScalingDecision, ScalingTarget, WorkflowRun

    forecast = {"quantile": 0.9, "refit_every": "1d", "min_history": "2d"}
    file = targets_file(tmp_path, policy="hybrid", forecast=forecast)
    ran = replay("-f", file, "--trace", trace, "--decision-interval", "30m", "--keep", "--json")
    assert ran.returncode == 0, ran.stderr
    policy = json.loads(ran.stdout)["loop"]["policy"]
    copy = ScalingTarget.objects.get(name=policy["kept_as"])
    try:
        assert not copy.enabled  # the Beat loop never evaluates a replay copy
        decisions = ScalingDecision.objects.filter(target=copy)
        assert decisions.count() == policy["decisions"] == STEPS - 1
        # The forecast drove decisions once the history allowed a fit; the stored forecaster was continued.
        assert decisions.exclude(model="").count() > STEPS // 2
        assert any("forecast" in " ".join(d.reasons) for d in decisions)
        runs = WorkflowRun.objects.filter(workflow__name=f"scaling.{copy.name}")
        assert runs.filter(status="succeeded").count() == runs.count() == policy["scale_runs"] > 0
        assert set(decisions.exclude(run_id=None).values_list("run_id", flat=True)) == set(
            runs.values_list("id", flat=True)
        )
    finally:
        from automation.scaling.replay import delete_replay_copy

        delete_replay_copy(copy.name)
    assert not ScalingTarget.objects.filter(name=copy.name).exists()


def test_bad_input_is_refused_naming_the_field(tmp_path: Path, trace: Path) -> None:
    from automation.models import ScalingTarget

    unnamed = replay("-f", targets_file(tmp_path), "--trace", trace, "--target", "nope")
    assert unnamed.returncode == 2 and "--target: no target 'nope'" in unnamed.stderr
    no_capacity = targets_file(tmp_path, capacity_per_replica=None)
    refused = replay("-f", no_capacity, "--trace", trace)
    assert refused.returncode == 2 and "capacity_per_replica" in refused.stderr, refused.stderr
    bad = replay("-f", targets_file(tmp_path, min_replicas=-1), "--trace", trace)
    assert bad.returncode == 2 and "targets[0].min_replicas" in bad.stderr, bad.stderr
    assert not ScalingTarget.objects.filter(name__startswith="replay-").exists()


def test_a_celery_target_has_no_trace_to_replay(trace: Path, tmp_path: Path) -> None:
    from tests.alerting.test_alerting_cli import one_line_error

    path = tmp_path / "pools.yml"
    path.write_text(yaml.safe_dump({"targets": [{"kind": "celery", "name": "own-low", "queue": "low"}]}))
    error = one_line_error(cli("scaling", "replay", "-f", str(path), "--trace", str(trace)))
    assert error.startswith("kind: a celery target's load is its queue"), error
