"""The forecasting loop on the real database (and, where said, through a real Celery worker and a real
local service): one decision and one run per target and slot however often a tick arrives, the fitted
forecaster stored as JSON and continued by the next tick, a failing or slow fit falling back to reactive
with the reason logged, and nothing decided while predictive scaling is off."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerting.test_alerting_cli import cli
from tests.alerting.test_pipeline import runs_of
from tests.alerting.test_rule_evaluation import push
from tests.conftest import unique, wait_for

pytestmark = pytest.mark.usefixtures("engine")

INTERVAL = 60.0


def ramp(metric: str, now: float, *, minutes: int = 90, start: float = 100.0, slope: float = 5.0) -> None:
    """A load rising `slope` per minute for `minutes`, one sample a minute, up to `now`."""
    begin = (now // 60) * 60 - minutes * 60
    push(metric, {"service": "web"}, [(begin + 60 * k, start + slope * k) for k in range(minutes + 1)])


LOAD = {"matchers": {"service": "web"}, "step": 60, "history": "3h", "unit": "req/s"}


def store_target(name: str, metric: str, **changes: Any) -> Any:
    from automation.scaling.services.targets import save_target

    return save_target(
        {
            "name": name,
            "service": "web-api",
            "provider": "stub",
            "load": {
                "metric": metric,
                "matchers": {"service": "web"},
                "step": 60,
                "history": "3h",
                "unit": "req/s",
            },
            "capacity_per_replica": 200,
            "target_utilization": 1.0,
            "min_replicas": 1,
            "max_replicas": 10,
            "policy": "predictive",
            "provisioning_delay": "5m",
            "forecast": {"min_history": "30m", "refit_every": "1h"},
            **changes,
        }
    )


def decisions(name: str) -> list[Any]:
    from automation.models import ScalingDecision

    return list(ScalingDecision.objects.filter(target__name=name).order_by("at"))


def state(name: str) -> Any:
    from automation.models import ScalingState

    return ScalingState.objects.get(target__name=name)


def test_nothing_is_decided_while_predictive_scaling_is_off() -> None:
    from automation.scaling.services.ticks import evaluate_all
    from tasks.scaling import evaluate

    name, metric = unique("off"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30  # mid-slot
    ramp(metric, now)
    store_target(name, metric)
    assert evaluate_all(now) == []
    assert evaluate(now) == 0  # the Beat task sends no batch
    assert decisions(name) == []
    assert state(name).forecaster is None


@pytest.mark.usefixtures("predictive_scaling")
def test_two_ticks_in_one_slot_decide_once_and_start_one_run() -> None:
    from automation.scaling.services.ticks import evaluate_targets

    name, metric = unique("twice"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30  # mid-slot
    ramp(metric, now)
    store_target(name, metric)
    first = evaluate_targets([name], now, INTERVAL)
    again = evaluate_targets([name], now + 20, INTERVAL)  # a second Beat, a moment later in the same slot
    redelivered = evaluate_targets([name], now, INTERVAL)
    assert first[0]["action"] == "scale_up", first
    assert "skipped" in again[0] and "skipped" in redelivered[0], (again, redelivered)
    assert again[0]["skipped"] == redelivered[0]["skipped"] == "already decided in this slot"
    [decision] = decisions(name)
    [run] = runs_of(f"scaling.{name}")
    assert decision.run_id == run.id and run.idempotency_key == f"scaling:{name}:{decision.slot}"
    assert run.inputs == {"replicas": decision.desired_replicas}
    assert decision.basis == "forecast" and decision.forecast_upper is not None
    assert decision.forecast_lower <= decision.forecast_mean <= decision.forecast_upper
    assert decision.reasons[1].startswith("forecast peak "), decision.reasons
    assert f"needs {decision.desired_replicas} replicas" in decision.reasons[1]


@pytest.mark.usefixtures("predictive_scaling")
def test_the_fitted_forecaster_is_stored_as_json_and_continued_by_the_next_tick() -> None:
    from automation.scaling.services.ticks import evaluate_targets

    name, metric = unique("state"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    store_target(name, metric)
    evaluate_targets([name], now, INTERVAL)
    first = state(name)
    assert first.forecaster is not None and first.fit_error == ""
    size = len(json.dumps(first.forecaster))
    assert size < 64_000, size
    push(metric, {"service": "web"}, [((now // 60) * 60, 560.0)])
    evaluate_targets([name], now + 60, INTERVAL)  # the next slot: no refit due, the point is absorbed
    second = state(name)
    assert second.fitted_at == first.fitted_at
    assert second.forecaster["last_time"] > first.forecaster["last_time"]
    assert len(decisions(name)) == 2


@pytest.mark.usefixtures("predictive_scaling")
def test_a_slow_fit_falls_back_to_reactive_and_says_so() -> None:
    from automation.scaling.services.ticks import evaluate_targets

    name, metric = unique("slow"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30  # mid-slot
    ramp(metric, now)
    store_target(name, metric, forecast={"min_history": "30m", "fit_timeout": 0.000001})
    [report] = evaluate_targets([name], now, INTERVAL)
    [decision] = decisions(name)
    assert decision.basis == "fallback", report
    assert decision.reasons[1].startswith("forecast fit ran past fit_timeout 1e-06 s: reactive: "), (
        decision.reasons
    )
    assert decision.desired_replicas == 3  # the observed 550 req/s at 200 per replica
    assert state(name).fit_error == "ran past fit_timeout 1e-06 s" and state(name).forecaster is None
    evaluate_targets([name], now + INTERVAL, INTERVAL)  # within the retry delay: no new fit, the reason kept
    assert decisions(name)[-1].reasons[1].startswith("forecast fit failed ")


@pytest.mark.usefixtures("predictive_scaling")
def test_a_failing_fit_falls_back_to_reactive_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from automation.scaling.services import loop
    from automation.scaling.services.ticks import evaluate_targets

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("the model diverged")

    monkeypatch.setattr(loop, "fit", broken)
    name, metric = unique("broken"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30  # mid-slot
    ramp(metric, now)
    store_target(name, metric)
    evaluate_targets([name], now, INTERVAL)
    [decision] = decisions(name)
    assert decision.basis == "fallback"
    assert decision.reasons[1].startswith("forecast fit failed (ValueError: the model diverged): reactive: ")
    assert state(name).fit_error == "ValueError: the model diverged"


@pytest.mark.usefixtures("worker", "predictive_scaling")
def test_the_beat_tick_twice_and_a_redelivered_batch_scale_a_real_service_once(local_service: Any) -> None:
    from automation.celery import app
    from automation.models import WorkflowRun

    name, metric = unique("spotify"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30  # mid-slot
    ramp(metric, now)
    store_target(name, metric, service="spotify-api", provider="local", max_replicas=3)
    # The worker reads the config a few seconds late: the tick is sent (same time, same slot) until the
    # worker sees predictive scaling on; then twice more, as two Beats would, and its batch once more.
    wait_for(
        lambda: app.send_task("automation.scaling.evaluate", (now,), queue="critical").get(timeout=30) >= 1
    )
    for _ in range(2):
        app.send_task("automation.scaling.evaluate", (now,), queue="critical").get(timeout=30)
    app.send_task("automation.scaling.evaluate_targets", ([name], now, INTERVAL), queue="critical").get(
        timeout=60
    )
    wait_for(lambda: len(decisions(name)) == 1, timeout=60)
    wait_for(
        lambda: WorkflowRun.objects.filter(workflow__name=f"scaling.{name}", status="succeeded").exists(), 60
    )
    assert len(runs_of(f"scaling.{name}")) == 1 and len(decisions(name)) == 1
    assert local_service.status("spotify-api")["running_replicas"] == 3
    [decision] = decisions(name)
    assert (decision.current_replicas, decision.desired_replicas, decision.action) == (1, 3, "scale_up")


@pytest.mark.usefixtures("predictive_scaling")
def test_the_decision_log_is_read_by_the_api_the_cli_and_the_plot(
    client: httpx.Client, tmp_path: Path
) -> None:
    from automation.scaling.services.ticks import evaluate_targets

    name, metric = unique("log"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    store_target(name, metric, policy="hybrid")
    for k in range(3):
        push(metric, {"service": "web"}, [((now // 60) * 60 + 60 * k, 550.0 + 5 * k)])
        evaluate_targets([name], now + 60 * k, INTERVAL)
    answer = client.get(f"/api/v1/scaling/targets/{name}/decisions", params={"limit": 2})
    assert answer.status_code == 200, answer.text
    log = answer.json()["decisions"]
    assert [d["at"] for d in log] == sorted(d["at"] for d in log) and len(log) == 2
    assert log[-1]["forecast"]["lower"] <= log[-1]["forecast"]["upper"]
    assert log[-1]["observed_load"] == 560.0
    listed = client.get(f"/api/v1/scaling/targets/{name}").json()
    assert listed["status"] == "active" and listed["last_decision"] == log[-1]
    shown = cli("scaling", "decisions", name, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["decisions"][-2:] == log
    text = cli("scaling", "decisions", name)
    assert (
        "forecastability not judged yet (1h30m of history, 1d12h needed); load.history 3 h is under the "
        "1.5 d it needs: this hybrid stays reactive until it is raised: reactive" in text.stdout
    )
    assert text.stdout.count("\n    ") >= 3
    picture = cli("scaling", "plot", name, "-o", str(tmp_path / "log.png"))
    assert picture.returncode == 0, picture.stderr
    assert (tmp_path / "log.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "does not exist" in cli("scaling", "decisions", "no-such-target").stderr


@pytest.mark.usefixtures("predictive_scaling")
def test_a_hybrid_judges_at_its_fit_that_forecasting_cannot_help_a_load_without_a_daily_cycle() -> None:
    import numpy as np

    from automation.scaling.services.ticks import evaluate_targets

    name, metric = unique("nocycle"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    begin = (now // 60) * 60 - 40 * 3600
    rng = np.random.default_rng(11)
    noise = [(begin + 60 * k, 300.0 + rng.normal(0, 40)) for k in range(40 * 60 + 1)]
    push(metric, {"service": "web"}, noise)
    store_target(name, metric, policy="hybrid", load={**LOAD, "metric": metric, "history": "40h"})
    evaluate_targets([name], now, INTERVAL)
    stored_fit = state(name).fitted_at
    [decision] = decisions(name)
    assert decision.basis == "fallback"
    assert any(
        r.startswith("forecasting cannot help (no daily cycle (autocorrelation one day back")
        and "): reactive: " in r
        for r in decision.reasons
    ), decision.reasons
    stored = state(name).trust
    verdict = stored["verdict"]
    assert verdict["judged"] and verdict["helps"] is False and "no daily cycle" in verdict["why"]
    assert stored["judged_at"] == now
    # the next tick continues the stored forecaster and keeps the verdict: judged again in a day
    evaluate_targets([name], now + 60, INTERVAL)
    later = decisions(name)[-1]
    assert later.basis == "fallback" and any(r.startswith("forecasting cannot help (") for r in later.reasons)
    assert state(name).trust["verdict"] == verdict and state(name).trust["judged_at"] == now
    # a state stored before verdicts existed is judged on the next tick, without waiting for a refit
    old = state(name)
    old.trust = {k: v for k, v in old.trust.items() if k not in ("verdict", "judged_at")}
    old.save(update_fields=["trust"])
    evaluate_targets([name], now + 120, INTERVAL)
    again = state(name).trust
    assert again["judged_at"] == now + 120 and again["verdict"]["helps"] is False
    assert again["verdict"]["why"].startswith("no daily cycle")
    assert again["verdict"]["known_seconds"] >= 39 * 3600
    assert state(name).fitted_at == stored_fit


@pytest.mark.usefixtures("predictive_scaling")
def test_fits_past_the_batch_budget_wait_and_the_stored_forecaster_goes_on() -> None:
    from automation.models import ScalingTarget
    from automation.scaling.services.loop import FitBudget, evaluate_target, refit_phase

    name, metric = unique("budget"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    store_target(name, metric, forecast={"min_history": "30m", "refit_every": "1h"})
    target = ScalingTarget.objects.get(name=name)
    spent = FitBudget(seconds=1.0, spent=1.0)
    evaluate_target(target, now, INTERVAL, budget=spent)  # no forecaster yet and no fit time: reactive
    [first] = decisions(name)
    assert first.basis == "fallback"
    assert first.reasons[1].startswith("forecast fit deferred to a later tick"), first.reasons
    evaluate_target(target, now + 60, INTERVAL, budget=FitBudget(seconds=30.0))  # fitted
    fitted_at = state(name).fitted_at
    assert fitted_at is not None
    later = now + 60 + 3600  # past the cadence, whatever the target's phase: due, but no fit time left
    push(metric, {"service": "web"}, [((later // 60) * 60 - 60 * k, 600.0) for k in range(3)])
    evaluate_target(target, later, INTERVAL, budget=spent)
    last = decisions(name)[-1]
    assert last.basis == "forecast" and state(name).fitted_at == fitted_at
    assert "refit deferred to a later tick (this batch's fit time is spent)" in last.reasons
    assert 0.75 <= refit_phase(name) < 1.0


@pytest.mark.usefixtures("predictive_scaling")
def test_evaluate_once_decides_for_every_enabled_target_in_the_foreground() -> None:
    from automation.models import ScalingTarget

    ScalingTarget.objects.update(enabled=False)  # only this test's target
    name, metric = unique("once"), unique("rps").replace("-", "_")
    ramp(metric, time.time())
    store_target(name, metric)
    result = cli("scaling", "evaluate", "--once", "--json")
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["target"] == name and report["action"] == "scale_up" and report["run_id"]
    assert [d.run_id for d in decisions(name)] == [uuid.UUID(report["run_id"])]
    text = cli("scaling", "evaluate", "--once")  # the same slot, unless the minute turned meanwhile
    assert text.returncode == 0 and text.stdout.startswith(f"{name}: ")


@pytest.mark.usefixtures("predictive_scaling")
def test_a_scale_run_the_engine_refuses_is_an_error_decision_that_changes_nothing() -> None:
    from automation.models import Workflow
    from automation.scaling.services.ticks import evaluate_targets

    name, metric = unique("refused"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30  # mid-slot
    ramp(metric, now)
    store_target(name, metric)
    Workflow.objects.filter(name=f"scaling.{name}").delete()  # its scale workflow gone
    [report] = evaluate_targets([name], now, INTERVAL)
    assert report["action"] == "error" and report["run_id"] is None
    assert report["desired"] == report["current"]
    assert report["reasons"][-1].startswith("scale run not started: workflow "), report["reasons"]
    assert state(name).last_change_at is None and state(name).requested_replicas is None


@pytest.mark.usefixtures("predictive_scaling")
def test_a_tick_fits_its_share_of_the_cadence_and_defers_the_rest() -> None:
    from automation.scaling.services.loop import FitBudget, fits_for_batch
    from automation.scaling.services.ticks import evaluate_targets

    assert fits_for_batch(20, 60.0, 3600.0) == 1 and fits_for_batch(500, 60.0, 3600.0) == 17
    assert fits_for_batch(3, 60.0, 60.0) == 6
    budget = FitBudget(seconds=30.0, fits=1)
    assert budget.allows()
    budget.charge(0.5)
    assert not budget.allows()  # one fit done: the count, not the seconds, stops the next

    metric = unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    names = [unique("share") for _ in range(3)]
    for name in names:
        store_target(name, metric)
    evaluate_targets(names, now, INTERVAL)  # 3 targets x 60 s / 1 h, twice: one fit this tick
    fitted = [name for name in names if state(name).forecaster is not None]
    assert len(fitted) == 1
    waiting = [d for name in names if name not in fitted for d in decisions(name)]
    assert waiting and all("deferred" in " ".join(d.reasons) for d in waiting)


def test_decisions_past_the_retention_are_purged() -> None:
    from automation.scaling.services.retention import DECISION_SECONDS, purge_decisions
    from automation.scaling.services.ticks import evaluate_targets

    metric, name = unique("rps").replace("-", "_"), unique("old")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    store_target(name, metric, policy="reactive")
    from automation import AutomationConfig
    from automation.config import current_config
    from automation.config.apply import apply_config

    original = current_config()
    apply_config(AutomationConfig(**{**original.model_dump(), "enable_predictive_scaling": True}))
    try:
        evaluate_targets([name], now - DECISION_SECONDS - 120, INTERVAL)
        evaluate_targets([name], now, INTERVAL)
    finally:
        apply_config(original)
    assert len(decisions(name)) == 2
    assert purge_decisions(now) >= 1
    (kept,) = decisions(name)
    assert kept.at.timestamp() == pytest.approx(now)


@pytest.mark.usefixtures("predictive_scaling")
def test_no_second_scale_run_while_one_is_going(engine: Any) -> None:
    from automation import ActionDefinition
    from automation.models import ScalingState
    from automation.scaling.services.ticks import evaluate_targets
    from tests.conftest import stored_run

    name, metric = unique("going"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    store_target(name, metric, policy="reactive")
    first = evaluate_targets([name], now, INTERVAL)
    assert first[0]["action"] == "scale_up", first
    # The last scale run still going (stored, never sent: no worker can finish it under the test)
    going = stored_run(
        engine,
        "slow-scale",
        ActionDefinition(name="w", action_type="control.wait", parameters={"seconds": 0}),
    )
    ScalingState.objects.filter(target__name=name).update(last_run_id=going.id)
    push(metric, {"service": "web"}, [((now // 60) * 60 + 60, 1900.0)])
    second = evaluate_targets([name], now + 60, INTERVAL)
    assert second[0]["action"] == "hold", second
    assert any("still going; no second run" in reason for reason in decisions(name)[-1].reasons)
    assert len(runs_of(f"scaling.{name}")) == 1


@pytest.mark.usefixtures("predictive_scaling")
def test_a_fit_cut_by_the_batch_time_is_deferred_not_an_error() -> None:
    from automation.models import ScalingTarget
    from automation.scaling.services.loop import FitBudget, evaluate_target

    name, metric = unique("cut"), unique("rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    ramp(metric, now)
    store_target(name, metric)
    target = ScalingTarget.objects.get(name=name)
    evaluate_target(target, now, INTERVAL, budget=FitBudget(seconds=1e-6))  # nearly no fit time left
    (decision,) = decisions(name)
    assert any("deferred" in reason for reason in decision.reasons), decision.reasons
    assert state(name).forecaster is None and not state(name).fit_error  # tried again next tick, no wait
