"""One decision for a `celery` target (the engine's own workers of one queue): the queue read from the
broker, one step of the pool policy on the track stored with the target (`pooltrack.step_pool`), and,
under the target's state row lock, the scale run started when the workers change, with idempotency key
(target, slot), as for a service target (`loop.py`): one run per slot however often a tick arrives, none
while the last one is still going.

Why a tick of its own and a stored track. The pool policy measures arrivals and throughput over seconds
(`pool.rate_window`, 5 s by default), and a flood grows by its arrival rate every second it goes unseen:
deciding once a `monitoring_interval` (60 s) would let a backlog build for up to a minute before the first
worker is asked for. So Beat's `automation.scaling.evaluate_pools` runs every `POOL_INTERVAL` (5 s) over
the celery targets alone (the forecasting tick leaves them out). Two readings a few seconds apart are
still needed for a rate, and consecutive ticks run on any worker, so the recent readings, the policy's
memory (since when the backlog has been calm) and the last throughput measured are stored as JSON on the
target's state row (`ScalingState.pool`, well under a kilobyte), as the forecaster is for a service.

A scale-in run lasts until its departing workers have finished their steps (the `local` provider's warm
shutdown, up to `pool.grace_period`); as for any target, no other run starts meanwhile, so a flood that
begins during a scale-in is answered by the first tick after that run ends.

The decision log keeps every change of workers and every decision unlike the last one logged, each with
its reasons in words; a hold that repeats the last logged decision is logged at most once a
`monitoring_interval` (`pooltrack.log_due`), so a quiet pool writes a row a minute, not twelve.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from redis.exceptions import RedisError

from automation.config import current_config
from automation.errors import AutomationError
from automation.models import ScalingDecision, ScalingState, ScalingTarget
from automation.scaling.choices import Action, Basis
from automation.scaling.definitions import ScalingTargetDefinition, workflow_name
from automation.scaling.pooltrack import KEPT_WINDOWS, Logged, PoolTrack, log_due, step_pool
from automation.scaling.queues import (
    BrokerKeys,
    QueueLoad,
    QueueLoadError,
    broker_client,
    broker_keys,
    read_queue_load,
)
from automation.scaling.services.loop import current_replicas, run_key, scale_run_active, slot_of
from automation.scaling.workerpool import WorkerPoolError

logger = logging.getLogger("automation.scaling")

__all__ = ["broker_reader", "evaluate_pool"]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@contextmanager
def broker_reader(client: Any = None) -> Iterator[Any]:
    """`client`, or a client on the broker opened for the block and closed after it."""
    if client is not None:
        yield client
        return
    opened = broker_client()
    try:
        yield opened
    finally:
        opened.close()


def _skipped(target: ScalingTarget, slot: int) -> dict[str, Any]:
    return {"target": target.name, "slot": slot, "skipped": "already decided in this slot"}


def _stored_track(target: ScalingTarget, state: ScalingState) -> PoolTrack:
    if not state.pool:
        return PoolTrack()
    try:
        return PoolTrack.from_dict(state.pool)
    except (QueueLoadError, WorkerPoolError) as exc:
        logger.warning("scaling %s: stored pool track unreadable (%s): starting afresh", target.name, exc)
        return PoolTrack()


def _last_logged(target: ScalingTarget) -> Logged | None:
    last = (
        ScalingDecision.objects.filter(target=target)
        .order_by("-at", "-id")
        .values_list("action", "current_replicas", "desired_replicas", "at")
        .first()
    )
    return Logged(last[0], last[1], last[2], last[3].timestamp()) if last is not None else None


def evaluate_pool(
    target: ScalingTarget,
    now: float,
    interval: float,
    *,
    client: Any = None,
    keys: BrokerKeys | None = None,
) -> dict[str, Any]:
    """Decide for the celery target `target` at `now` (slot: `now // interval`); the report of the
    decision (`logged`: whether it went into the decision log), or why none was taken. `client` reads the
    broker (default: one opened for this decision)."""
    definition = ScalingTargetDefinition.model_validate(target.document)
    slot = slot_of(now, interval)
    if ScalingDecision.objects.filter(target=target, slot=slot).exists():
        return _skipped(target, slot)
    ScalingState.objects.get_or_create(target=target)
    queue = definition.queue or ""
    try:
        with broker_reader(client) as reader:
            reading = read_queue_load(reader, queue, keys=keys or broker_keys())
    except (QueueLoadError, RedisError, OSError) as exc:
        return _decide(target, definition, slot, now, interval, None, f"queue '{queue}' not read: {exc}")
    return _decide(target, definition, slot, now, interval, reading, "")


def _decide(
    target: ScalingTarget,
    definition: ScalingTargetDefinition,
    slot: int,
    now: float,
    interval: float,
    reading: QueueLoad | None,
    error: str,
) -> dict[str, Any]:
    every = float(current_config().monitoring_interval)
    with transaction.atomic():
        locked = ScalingState.objects.select_for_update().get(pk=target.pk)
        if ScalingDecision.objects.filter(target=target, slot=slot).exists():
            return _skipped(target, slot)
        current, _, note = current_replicas(definition, locked)
        reasons = [note] if note else []
        run_id = None
        if reading is None:
            action, desired, kept = Action.ERROR, current, None
            reasons.append(error[:2000])
        else:
            pool = definition.worker_pool
            step = step_pool(
                definition.pool_settings(),
                _stored_track(target, locked),
                reading,
                workers=current,
                rate_window=float(pool.rate_window),
                # Kept at least three ticks, so a tick slower than the rate window still has a base.
                keep=max(KEPT_WINDOWS * float(pool.rate_window), 3 * interval),
            )
            desired, kept = step.decision.desired, step.track
            action = (
                Action.SCALE_UP
                if desired > current
                else Action.SCALE_DOWN
                if desired < current
                else Action.HOLD
            )
            reasons.append(step.decision.reason)
            if action in Action.CHANGES and scale_run_active(locked):
                # A provider sets an absolute count, and a scale-in waits for its workers' warm shutdown:
                # a second run finishing first would leave the older count. The next tick decides again.
                reasons.append(f"held: scale run {locked.last_run_id} still going; no second run meanwhile")
                action, desired, kept = Action.HOLD, current, step.unchanged
            if action in Action.CHANGES:
                from automation.runs.dispatch import enqueue_run

                try:
                    with transaction.atomic():
                        run, _ = enqueue_run(
                            workflow_name(target.name),
                            {"replicas": desired},
                            idempotency_key=run_key(target.name, slot),
                        )
                except AutomationError as exc:  # its workflow gone, the engine refusing: nothing changed
                    reasons.append(f"scale run not started: {str(exc)[:300]}")
                    action, desired, kept = Action.ERROR, current, step.unchanged
                else:
                    run_id = run.id
                    reasons.append(f"scale run {run.id} started: {current} -> {desired} workers")
        logged = log_due(_last_logged(target), action, current, desired, now, every)
        if logged:
            ScalingDecision.objects.create(
                target=target,
                slot=slot,
                at=_at(now),
                policy=definition.policy,
                basis=Basis.OBSERVED,
                action=action,
                observed_load=float(reading.backlog) if reading is not None else None,
                current_replicas=current,
                desired_replicas=desired,
                reasons=reasons,
                run_id=run_id,
            )
        if kept is not None:
            locked.pool = kept.to_dict()
        if run_id is not None:
            locked.requested_replicas = desired
            locked.last_run_id = run_id
            locked.last_change_at = _at(now)
            if action == Action.SCALE_UP:
                locked.last_scale_up_at = _at(now)
        locked.save()
    return {
        "target": target.name,
        "slot": slot,
        "action": action,
        "current": current,
        "desired": desired,
        "reasons": reasons,
        "run_id": str(run_id) if run_id else None,
        "logged": logged,
    }
