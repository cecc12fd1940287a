"""Scaling ahead of load, end to end: a service whose load rises at the same time every day. The loop has
seen the rise on the days before, and its ticks of the last two hours have checked its forecast against
what came (the hybrid adds forecast capacity only once the forecast has earned it); before today's rise
begins (the load still needs one replica, and the reactive policy would hold), a tick through a real
worker decides from the forecast, starts the scale workflow, and the real local service runs the
replicas the rise needs before the rise arrives."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerting.test_pipeline import runs_of
from tests.alerting.test_rule_evaluation import push
from tests.conftest import unique, wait_for
from tests.scaling.test_loop import decisions, store_target

pytestmark = pytest.mark.integration

DAY = 86_400.0
#: The daily rise starts this long after the test's tick, and takes this long to reach its peak.
RISE_IN = 25 * 60.0
RISE_LENGTH = 20 * 60.0
QUIET, PEAK = 100.0, 700.0  # req/s; a replica serves 200


def daily_load(at: float, rise_at: float) -> float:
    """The load at `at` of a day whose rise begins at `rise_at` (mod one day): quiet, a 20-minute ramp,
    an hour at the peak, a 20-minute ramp down, with a small deterministic ripple."""
    since = (at - rise_at) % DAY
    ripple = 5.0 * math.sin(2 * math.pi * since / 3600.0)  # the same each day
    if since < RISE_LENGTH:
        return QUIET + (PEAK - QUIET) * since / RISE_LENGTH + ripple
    if since < RISE_LENGTH + 3600:
        return PEAK + ripple
    if since < 2 * RISE_LENGTH + 3600:
        return PEAK - (PEAK - QUIET) * (since - RISE_LENGTH - 3600) / RISE_LENGTH + ripple
    return QUIET + ripple


@pytest.fixture
def seen_before(engine: Any) -> Iterator[tuple[str, float, float]]:
    """A metric with 47 hours of that daily load up to a mid-slot `now` (inside the push store's 48-hour
    retention): the rise happened twice before, and starts again `RISE_IN` after `now`."""
    metric = unique("plays_rps").replace("-", "_")
    now = (time.time() // 60) * 60 + 30
    rise_at = now + RISE_IN
    start = now - 47 * 3600
    minutes = range(int(start), int(now) + 1, 60)
    push(metric, {"service": "web"}, [(at, daily_load(at, rise_at)) for at in minutes])
    yield metric, now, rise_at


@pytest.mark.usefixtures("worker", "predictive_scaling")
def test_a_rise_seen_on_the_days_before_is_met_by_replicas_started_before_it(
    seen_before: tuple[str, float, float], local_service: Any
) -> None:
    from automation.celery import app
    from automation.models import WorkflowRun

    metric, now, rise_at = seen_before
    name = unique("ahead")
    store_target(
        name,
        metric,
        service="spotify-api",
        provider="local",
        policy="hybrid",
        load={"metric": metric, "matchers": {"service": "web"}, "step": 60, "history": "47h"},
        max_replicas=5,
        provisioning_delay="10m",
        lead_time="45m",
        forecast={"min_history": "30h", "refit_every": "1h", "fit_timeout": "60s"},
    )
    local_service.scale("spotify-api", replicas=1)  # an earlier test may have left it scaled
    assert local_service.status("spotify-api")["running_replicas"] == 1
    # The loop's ticks from two hours to half an hour ago (in this process: the services the worker runs),
    # each checking the forecast made a lead time before against the load that came.
    from automation.scaling.services.ticks import evaluate_targets

    for minute in range(120, 30, -1):
        evaluate_targets([name], now - 60 * minute, 60.0)
    before = decisions(name)
    assert len(before) == 90 and all(d.action == "hold" for d in before)
    assert "forecast not trusted" in " ".join(before[0].reasons)  # no record yet
    assert "held 100.0%" in " ".join(before[-1].reasons), before[-1].reasons  # earned since
    # The Beat tick, through a real worker (sent until the worker has seen predictive scaling on).
    wait_for(
        lambda: app.send_task("automation.scaling.evaluate", (now,), queue="critical").get(timeout=60) >= 1,
        timeout=90,
    )
    wait_for(lambda: len(decisions(name)) == 91, timeout=90)  # the tick's batch, on the worker
    decision = decisions(name)[-1]
    # Today's rise has not begun: the load needs one replica, which is what a reactive policy keeps.
    assert decision.observed_load is not None and decision.observed_load < 200
    assert (decision.current_replicas, decision.action, decision.basis) == (1, "scale_up", "forecast")
    assert decision.desired_replicas == math.ceil(PEAK / 200) == 4
    assert decision.forecast_at is not None and decision.forecast_at.timestamp() > rise_at
    assert any(reason.startswith("forecast peak") for reason in decision.reasons), decision.reasons
    wait_for(
        lambda: WorkflowRun.objects.filter(workflow__name=f"scaling.{name}", status="succeeded").exists(), 90
    )
    assert [run.id for run in runs_of(f"scaling.{name}")] == [decision.run_id]
    status = local_service.status("spotify-api")
    assert (status["desired_replicas"], status["running_replicas"]) == (4, 4)
    # The replicas serve before the rise begins (it begins RISE_IN after the tick).
    assert time.time() < rise_at - 60
