"""Tuning each forecasting target on its own past, on a slow cadence (`AutomationConfig.
enable_ml_optimization`): read its recorded load, backtest the candidates (automation/scaling/tuning.py),
store the outcome on its state; the loop uses it while the definition is the one it was tuned for."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from automation.errors import SourceError
from automation.models import ScalingState, ScalingTarget
from automation.scaling.choices import PolicyKind, TargetKind
from automation.scaling.definitions import ScalingTargetDefinition

logger = logging.getLogger("automation.scaling")

#: A target is tuned again after this long (or at once when its definition changed).
TUNE_EVERY = 86_400.0
#: Seconds one tuning job may spend; the targets it did not reach wait for the next job.
TUNE_BUDGET = 600.0


def tuned_for(definition: ScalingTargetDefinition) -> str:
    """What a tuning depends on: the definition without its name, enabled flag and description."""
    document = {
        k: v for k, v in definition.as_document().items() if k not in ("name", "enabled", "description")
    }
    return hashlib.sha1(json.dumps(document, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def applied_tuning(
    definition: ScalingTargetDefinition, tuning: dict[str, Any]
) -> tuple[ScalingTargetDefinition, str]:
    """`definition` with its tuned quantile and lead time, and the reason to log; unchanged (and no
    reason) when the tuning kept its settings or was made for another definition."""
    if not tuning or tuning.get("for") != tuned_for(definition) or tuning.get("quantile") is None:
        return definition, ""
    forecast = definition.forecast.model_copy(update={"quantile": float(tuning["quantile"])})
    tuned = definition.model_copy(update={"forecast": forecast, "lead_time": float(tuning["lead_time"])})
    return tuned, str(tuning.get("reason", "tuned"))


def _trace(name: str, start: float, step: float, values: np.ndarray) -> Any:
    from automation.forecasting.traces import Trace

    index = pd.date_range(pd.Timestamp(start, unit="s", tz="UTC"), periods=len(values), freq=f"{step:g}s")
    load = pd.Series(values, index=index, dtype=float)
    return Trace(
        name=name,
        load=load,
        step=pd.Timedelta(seconds=step),
        outage=pd.Series(False, index=index),
        source_format="scaling target history",
    )


def tune_target(target: ScalingTarget, now: float) -> dict[str, Any]:
    """Tune one target now and store the outcome; the stored record."""
    from automation.scaling.load import read_load
    from automation.scaling.tuning import finite_history, tune

    definition = ScalingTargetDefinition.model_validate(target.document)
    record: dict[str, Any] = {"tuned_at": now, "for": tuned_for(definition), "quantile": None}
    try:
        history = read_load(definition.load, now)
    except SourceError as exc:
        record["reason"] = f"not tuned: load not read ({str(exc)[:300]})"
    else:
        trace = _trace(target.name, history.start, history.step, history.values)
        if not finite_history(trace):
            record["reason"] = "not tuned: less than 3 days of recorded load"
        else:
            try:
                record.update(tune(definition, trace).as_json())
            except Exception as exc:  # noqa: BLE001 - one target's failure must not stop the others
                logger.exception("scaling target %s: tuning failed", target.name)
                record["reason"] = f"not tuned: {type(exc).__name__}: {str(exc)[:300]}"
    ScalingState.objects.filter(target=target).update(tuning=record)
    return record


def tune_due(now: float | None = None, *, budget: float = TUNE_BUDGET) -> list[dict[str, Any]]:
    """Tune the forecasting targets whose tuning is older than TUNE_EVERY or made for another definition,
    oldest first, until `budget` seconds are spent; nothing while enable_ml_optimization is off."""
    from automation.config import current_config

    if not current_config().enable_ml_optimization:
        return []
    now = time.time() if now is None else now
    began = time.monotonic()
    due: list[tuple[float, ScalingTarget]] = []
    forecasting = ScalingTarget.objects.filter(enabled=True).exclude(policy=PolicyKind.REACTIVE)
    for target in forecasting.select_related("state"):
        if target.document.get("kind", TargetKind.SERVICE) != TargetKind.SERVICE:
            continue
        tuning = getattr(getattr(target, "state", None), "tuning", None) or {}
        definition = ScalingTargetDefinition.model_validate(target.document)
        last = float(tuning.get("tuned_at", 0.0))
        if tuning.get("for") == tuned_for(definition) and now - last < TUNE_EVERY:
            continue
        due.append((last, target))
    done = []
    for _, target in sorted(due, key=lambda item: (item[0], item[1].name)):
        if time.monotonic() - began > budget:
            break
        record = tune_target(target, now)
        logger.info("scaling target %s: %s", target.name, record.get("reason"))
        done.append({"target": target.name, **record})
    return done
