"""A whole tick: every enabled target at one time, in batches (the Beat task sends one message per batch,
spread over workers; `automation scaling evaluate --once` runs them in the foreground). Service targets
are decided every `monitoring_interval` (`loop.py`), celery targets every `POOL_INTERVAL` by a tick of
their own (`pools.py`). With `AutomationConfig.enable_predictive_scaling` off, no target is evaluated and
no decision is stored."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from automation.config import current_config
from automation.errors import AutomationError
from automation.models import ScalingTarget
from automation.scaling.choices import TargetKind
from automation.scaling.pooltrack import POOL_INTERVAL

logger = logging.getLogger("automation.scaling")

#: Targets per batch: one message of the tick, decided by one worker process (a refit may take seconds).
TARGETS_PER_BATCH = 20
#: Share of the interval one batch may spend fitting forecasters (refits past it wait for a later tick).
FIT_SHARE = 0.5


def scaling_enabled() -> bool:
    return bool(current_config().enable_predictive_scaling)


def enabled_targets(names: Sequence[str] | None = None, *, kind: str | None = None) -> list[ScalingTarget]:
    """The enabled targets (of `kind`, when given; of `names`, when given), by name."""
    rows = ScalingTarget.objects.filter(enabled=True).order_by("name")
    if names is not None:
        rows = rows.filter(name__in=list(names))
    if kind is not None:
        rows = rows.filter(kind=kind)
    return list(rows)


def _refit_every(target: ScalingTarget) -> float:
    """The target's refit cadence; a stored document that no longer validates counts as hourly here (its
    own evaluation reports the error, alone)."""
    from automation.scaling.services.targets import target_definition

    try:
        return float(target_definition(target).forecast.refit_every)
    except Exception:  # noqa: BLE001 - one bad document must not fail the batch
        return 3600.0


def tick_batches(names: Sequence[str], size: int = TARGETS_PER_BATCH) -> list[list[str]]:
    ordered = sorted(names)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def evaluate_targets(
    names: Sequence[str] | None, now: float, interval: float | None = None
) -> list[dict[str, Any]]:
    """Decide for these enabled targets (all when None) at `now`, in slots of `interval` (default the
    monitoring interval); one target's failure is reported, not raised. Nothing when predictive scaling
    is off."""
    if not scaling_enabled():
        return []
    every = float(interval if interval is not None else current_config().monitoring_interval)
    targets = enabled_targets(names)
    services = [t for t in targets if t.kind != TargetKind.CELERY]
    pools = [t for t in targets if t.kind == TargetKind.CELERY]
    reports = _evaluate_services(services, now, every) if services else []
    return reports + (_evaluate_pools(pools, now, every) if pools else [])


def _evaluate_pools(targets: Sequence[ScalingTarget], now: float, every: float) -> list[dict[str, Any]]:
    from automation.scaling.services.pools import broker_reader, evaluate_pool

    reports: list[dict[str, Any]] = []
    try:
        with broker_reader() as client:  # the batch's queues read on one connection
            for target in targets:
                try:
                    reports.append(evaluate_pool(target, now, every, client=client))
                except Exception as exc:  # noqa: BLE001 - one target must not stop the others
                    logger.exception("scaling: target %s failed", target.name)
                    reports.append(
                        {"target": target.name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                    )
    except AutomationError as exc:  # no Redis broker configured: each target says so
        reports.extend({"target": target.name, "error": str(exc)[:300]} for target in targets)
    return reports


def _evaluate_services(targets: Sequence[ScalingTarget], now: float, every: float) -> list[dict[str, Any]]:
    from automation.alerting.push import PushSource
    from automation.scaling.services.loop import FitBudget, evaluate_target, fits_for_batch

    # The batch's fits share half an interval and its share of the tick's fits (the rest of the tick
    # reads and decides); its push loads share one source (a metric read by several targets is loaded
    # once).
    cadence = min((_refit_every(t) for t in targets), default=3600.0)
    budget = FitBudget(seconds=every * FIT_SHARE, fits=fits_for_batch(len(targets), every, cadence))
    source = PushSource()
    reports = []
    for target in targets:
        try:
            reports.append(evaluate_target(target, now, every, budget=budget, source=source))
        except Exception as exc:  # noqa: BLE001 - one target must not stop the others
            logger.exception("scaling: target %s failed", target.name)
            reports.append({"target": target.name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    return reports


def evaluate_all(now: float | None = None) -> list[dict[str, Any]]:
    """One tick of each loop now: the service targets in their monitoring-interval slot, the celery
    targets in their `POOL_INTERVAL` slot."""
    at = time.time() if now is None else now
    services = [target.name for target in enabled_targets(kind=TargetKind.SERVICE)]
    pools = [target.name for target in enabled_targets(kind=TargetKind.CELERY)]
    return evaluate_targets(services, at) + evaluate_targets(pools, at, POOL_INTERVAL)
