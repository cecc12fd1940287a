"""Scaling jobs driven by Beat: the forecasting loop's tick over the service targets, and the worker pools'
faster tick over the celery targets (one task per batch of targets, spread over workers), when
`AutomationConfig.enable_predictive_scaling` is on."""

from __future__ import annotations

import time
from typing import Any

from automation.celery import app
from automation.delivery import MONITORING_QUEUE


@app.task(name="automation.scaling.evaluate", acks_late=True)
def evaluate(now: float | None = None) -> int:
    """Send one `evaluate_targets` per batch of enabled service targets, all at the same time (`now`,
    default the current time); returns how many targets (0, and nothing sent, when predictive scaling is
    off). Celery targets have their own tick, `evaluate_pools`."""
    from automation.config import current_config
    from automation.scaling.choices import TargetKind

    return _send_batches(now, TargetKind.SERVICE, float(current_config().monitoring_interval))


@app.task(name="automation.scaling.evaluate_pools", acks_late=True)
def evaluate_pools(now: float | None = None) -> int:
    """The worker pools' tick, every `POOL_INTERVAL` seconds: one `evaluate_targets` per batch of enabled
    celery targets, in slots of that interval (`automation/scaling/services/pools.py` says why a tick of
    their own); returns how many targets."""
    from automation.scaling.choices import TargetKind
    from automation.scaling.pooltrack import POOL_INTERVAL

    return _send_batches(now, TargetKind.CELERY, POOL_INTERVAL)


def _send_batches(now: float | None, kind: str, interval: float) -> int:
    from automation.scaling.services.ticks import enabled_targets, scaling_enabled, tick_batches

    if not scaling_enabled():
        return 0
    at = float(now) if isinstance(now, int | float) else time.time()
    names = [target.name for target in enabled_targets(kind=kind)]
    for batch in tick_batches(names):
        # A batch not taken within one interval is dropped: the next tick decides on later data anyway.
        evaluate_targets.apply_async((batch, at, interval), queue=MONITORING_QUEUE, expires=interval)
    return len(names)


@app.task(name="automation.scaling.evaluate_targets", acks_late=True)
def evaluate_targets(
    names: list[str], now: float | None = None, interval: float | None = None
) -> dict[str, Any]:
    """Decide for a batch of targets at `now` (a redelivered message decides in the same slot: it finds
    the decisions stored and starts nothing again). Returns the reports."""
    from automation.scaling.services.ticks import evaluate_targets as run

    at = float(now) if isinstance(now, int | float) else time.time()
    every = float(interval) if isinstance(interval, int | float) and interval > 0 else None
    reports = run([str(name) for name in names], at, every)
    return {"targets": len(reports), "reports": reports}


@app.task(name="automation.scaling.purge_decisions")
def purge_decisions() -> int:
    """Drop the decisions older than the log's retention (hourly, from Beat); returns how many."""
    from automation.scaling.services.retention import purge_decisions as purge

    return purge(time.time())


@app.task(name="automation.scaling.tune", acks_late=True)
def tune(now: float | None = None) -> list[dict[str, Any]]:
    """Tune the forecasting targets that are due (`AutomationConfig.enable_ml_optimization`; nothing
    otherwise): each on its own recorded load, once a day or when its definition changed."""
    from automation.scaling.services.tuning import tune_due

    return tune_due(float(now) if isinstance(now, int | float) else None)
