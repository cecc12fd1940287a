"""One decision of the loop for one target at one time: read the load, bring the stored forecaster up to
date (refit on its cadence, within its time limit), decide (`automation.scaling.control`), and, under the
target's state row lock, store the decision once per slot and start the scale run when the replicas
change (idempotency key: the target and the slot)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from automation.choices import RunStatus
from automation.config import current_config
from automation.errors import AutomationError, SourceError
from automation.forecasting.forecaster import Forecaster
from automation.models import ScalingDecision, ScalingState, ScalingTarget, WorkflowRun
from automation.scaling import trust
from automation.scaling.choices import Action, Basis, PolicyKind
from automation.scaling.control import Memory, Outcome, Situation, decide, span
from automation.scaling.definitions import ScalingTargetDefinition, workflow_name
from automation.scaling.fitting import (
    FitTimeout,
    ForecastPath,
    catch_up,
    fit,
    forecast_path,
    horizon_steps,
    last_point,
    restore,
    stored,
)
from automation.scaling.load import LoadHistory, read_load
from automation.scaling.policies import TrustSettings
from automation.scaling.services.tuning import applied_tuning

logger = logging.getLogger("automation.scaling")

#: When a hybrid target's forecast has earned the right to add capacity: the simulator's defaults.
TRUST = TrustSettings()
#: After a failed fit, the next try waits this long (or the refit cadence, if shorter).
FIT_RETRY_SECONDS = 600.0


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def slot_of(now: float, interval: float) -> int:
    """The decision slot of a tick at `now`: every tick of one Beat period shares it."""
    return int(now // interval)


def run_key(target: str, slot: int) -> str:
    return f"scaling:{target}:{slot}"


def fitted_for(definition: ScalingTargetDefinition) -> str:
    text = json.dumps(definition.state_key(), sort_keys=True)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class ForecasterUpdate:
    """What the forecasting part of a decision found, and what to store of it."""

    path: ForecastPath | None = None
    why_none: str = ""
    note: str = ""  # said in the reasons, with a forecast (a deferred refit)
    document: dict[str, Any] | None = None  # the forecaster to store (None: leave it)
    clear: bool = False
    fitted: bool = False
    fit_seconds: float | None = None
    error: str | None = None  # a failed fit (stored with its time)


@dataclass
class FitBudget:
    """Seconds, and fits, a batch may spend fitting: refits due past either wait for a later tick (a
    stored forecaster goes on meanwhile), so a cold start or a cadence shared by many targets does not
    overrun the tick. The seconds bound one batch; the count bounds the whole tick, every batch getting
    its share (`fits_for_batch`), since batches run side by side on the workers."""

    seconds: float
    spent: float = 0.0
    fits: int | None = None
    done: int = 0

    def allows(self) -> bool:
        return self.spent < self.seconds and (self.fits is None or self.done < self.fits)

    def charge(self, seconds: float) -> None:
        self.spent += seconds
        self.done += 1


#: Fits a tick allows, as a multiple of the steady rate (targets x interval / refit cadence): room for
#: failed fits retried and cadences that bunch up; a cold start fits everything within half a cadence.
FIT_RATE_HEADROOM = 2.0


def fits_for_batch(batch: int, interval: float, refit_every: float) -> int:
    """The fits a batch of `batch` targets may do in one tick: its share of twice the steady rate, at
    least one (so every batch makes progress)."""
    return max(1, math.ceil(FIT_RATE_HEADROOM * batch * interval / max(refit_every, interval)))


@dataclass
class Plan:
    """Before reading: from when the load is needed, whether this decision fits a forecaster, and whether
    it judges whether forecasting can help (a hybrid's, `trust.judging_due`: the whole history is read)."""

    read_from: float
    fit: bool = False
    judge: bool = False
    forecaster: Forecaster | None = None
    #: Why there is no forecast, known before reading (a failed fit's retry wait, a deferred first fit).
    blocked: str = ""
    note: str = ""


def refit_phase(name: str) -> float:
    """A target's own fraction of a quarter of its refit cadence, in [0.75, 1): targets fitted in the
    same tick (a cold start) refit spread over the last quarter of their cadence, not all at once."""
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).digest()
    return 0.75 + 0.25 * int.from_bytes(digest[:4], "big") / 2**32


def plan_forecast(
    definition: ScalingTargetDefinition, state: ScalingState, now: float, budget: FitBudget
) -> Plan:
    """What the decision needs to read: the last two steps (reactive, or no forecast possible), the
    points since the stored forecaster's last one (continued), or the whole history (a fit, or a hybrid's
    judgement of whether forecasting can help)."""
    plan = _plan_forecast(definition, state, now, budget)
    if definition.policy == PolicyKind.HYBRID and trust.judging_due(
        trust.TrustState.from_json(state.trust, float(definition.load.step)), now, TRUST
    ):
        plan = replace(plan, read_from=min(plan.read_from, now - float(definition.load.history)), judge=True)
    return plan


def _plan_forecast(
    definition: ScalingTargetDefinition, state: ScalingState, now: float, budget: FitBudget
) -> Plan:
    settings, step = definition.forecast, float(definition.load.step)
    recent = now - 2 * step
    if definition.policy not in PolicyKind.FORECASTING:
        return Plan(read_from=recent)
    key = fitted_for(definition)
    forecaster = None
    if state.forecaster is not None and state.fitted_for == key:
        try:
            forecaster = restore(state.forecaster)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning(
                "scaling %s: stored forecaster unreadable (%s): fitting afresh", definition.name, exc
            )
    continued = min(last_point(forecaster), recent) if forecaster is not None else recent
    fitted_at = _epoch(state.fitted_at)
    cadence = settings.refit_every * refit_phase(definition.name)
    if forecaster is not None and fitted_at is not None and now - fitted_at < cadence:
        return Plan(read_from=continued, forecaster=forecaster)
    attempted = _epoch(state.fit_attempted_at)
    retry = min(FIT_RETRY_SECONDS, settings.refit_every)
    if state.fit_error and attempted is not None and now - attempted < retry and state.fitted_for == key:
        return Plan(
            read_from=recent,
            blocked=f"forecast fit failed {span(now - attempted)} ago ({state.fit_error}); "
            f"next try in {span(retry - (now - attempted))}",
        )
    if not budget.allows():
        if forecaster is not None:
            return Plan(
                read_from=continued,
                forecaster=forecaster,
                note="refit deferred to a later tick (this batch's fit time is spent)",
            )
        return Plan(
            read_from=recent, blocked="forecast fit deferred to a later tick (this batch's fit time is spent)"
        )
    return Plan(read_from=now - float(definition.load.history), fit=True)


def update_forecaster(
    definition: ScalingTargetDefinition,
    plan: Plan,
    history: LoadHistory,
    interval: float,
    budget: FitBudget,
) -> ForecasterUpdate:
    """Continue the stored forecaster, or fit one as planned. A fit that fails or runs past
    `forecast.fit_timeout` leaves no forecaster: the decision is reactive and says why; the fit is tried
    again after FIT_RETRY_SECONDS (or the refit cadence if shorter)."""
    settings = definition.forecast
    if plan.blocked:
        return ForecasterUpdate(why_none=plan.blocked)
    forecaster = plan.forecaster
    update = ForecasterUpdate(note=plan.note)
    if plan.fit:
        have = history.known * history.step
        if have < settings.min_history:
            needs = span(settings.min_history)
            return ForecasterUpdate(
                why_none=f"forecaster warming up ({span(have)} of history, needs {needs})"
            )
        began = time.perf_counter()
        # Within the target's own limit and what is left of the batch's fit time: one long fit must not
        # hold the rest of the batch past its tick.
        allowed = min(float(settings.fit_timeout), max(budget.seconds - budget.spent, 0.001))
        try:
            found = fit(definition, history, interval=interval, limit=allowed)
        except FitTimeout:
            if allowed < settings.fit_timeout:
                return ForecasterUpdate(
                    why_none="forecast fit deferred to a later tick (this batch's fit time ran out during it)"
                )
            error = f"ran past fit_timeout {settings.fit_timeout:g} s"
            return ForecasterUpdate(why_none=f"forecast fit {error}", clear=True, error=error)
        except Exception as exc:  # noqa: BLE001 - any failure of a fit falls back to reactive, and says so
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            logger.warning("scaling %s: forecast fit failed: %s", definition.name, error)
            return ForecasterUpdate(why_none=f"forecast fit failed ({error})", clear=True, error=error)
        finally:
            budget.charge(time.perf_counter() - began)
        forecaster = found.forecaster
        update = ForecasterUpdate(fitted=True, fit_seconds=found.seconds)
    elif forecaster is None:
        return ForecasterUpdate()
    elif not catch_up(forecaster, history):
        return ForecasterUpdate(
            why_none="the stored forecaster does not join the data: refit next tick", clear=True
        )
    update.document = stored(forecaster)
    update.path = forecast_path(forecaster, horizon_steps(definition, interval), settings.quantile)
    return update


def current_replicas(definition: ScalingTargetDefinition, state: ScalingState) -> tuple[int, int, str]:
    """(replicas asked for, replicas running, a note). While the last scale run is still going, what it
    asked for; otherwise what the provider says (what was last asked for when it cannot answer)."""
    requested = state.requested_replicas
    if state.last_run_id is not None and requested is not None:
        status = WorkflowRun.objects.filter(id=state.last_run_id).values_list("status", flat=True).first()
        if status in RunStatus.ACTIVE:
            return requested, requested, f"scale run {state.last_run_id} to {requested} still going"
    from automation.providers import get_provider

    try:
        found = get_provider(definition.provider).status(definition.service)
        return int(found["desired_replicas"]), int(found["running_replicas"]), ""
    except AutomationError as exc:
        fallback = requested if requested is not None else definition.min_replicas
        return fallback, fallback, f"provider could not answer ({str(exc)[:200]}): assuming {fallback}"


def scale_run_active(state: ScalingState) -> bool:
    """Whether the last scale run the target started is still going (then no second one starts)."""
    if state.last_run_id is None:
        return False
    status = WorkflowRun.objects.filter(id=state.last_run_id).values_list("status", flat=True).first()
    return status in RunStatus.ACTIVE


def evaluate_target(
    target: ScalingTarget,
    now: float,
    interval: float,
    *,
    budget: FitBudget | None = None,
    source: Any = None,
) -> dict[str, Any]:
    """Decide for `target` at `now`; the report of the decision (or why none was taken). `budget` bounds
    the fitting of a batch (default: half an interval for this target alone); a push load reads through
    `source` when given (a batch's shared `PushSource`)."""
    definition = ScalingTargetDefinition.model_validate(target.document)
    slot = slot_of(now, interval)
    if ScalingDecision.objects.filter(target=target, slot=slot).exists():
        return {"target": target.name, "slot": slot, "skipped": "already decided in this slot"}
    state, _ = ScalingState.objects.get_or_create(target=target)
    tuned = ""
    if definition.policy != PolicyKind.REACTIVE and current_config().enable_ml_optimization:
        definition, tuned = applied_tuning(definition, state.tuning)
    budget = budget if budget is not None else FitBudget(seconds=interval / 2)
    plan = plan_forecast(definition, state, now, budget)
    try:
        history = read_load(definition.load, now, since=plan.read_from, source=source)
    except SourceError as exc:
        return _record_error(target, definition, slot, now, f"load not read: {exc}")
    update = update_forecaster(definition, plan, history, interval, budget)
    with transaction.atomic():
        locked = ScalingState.objects.select_for_update().get(pk=target.pk)
        if ScalingDecision.objects.filter(target=target, slot=slot).exists():
            return {"target": target.name, "slot": slot, "skipped": "already decided in this slot"}
        current, serving, note = current_replicas(definition, locked)
        memory = Memory(
            last_scale_up_at=_epoch(locked.last_scale_up_at),
            last_change_at=_epoch(locked.last_change_at),
            recommendations=[(float(t), int(n)) for t, n in locked.recommendations],
        )
        trusted = trust.update(
            trust.TrustState.from_json(locked.trust, float(definition.load.step)),
            history,
            update.path,
            now=now,
            lead=definition.lead,
            settings=TRUST,
        )
        hybrid = definition.policy == PolicyKind.HYBRID
        if hybrid and plan.judge:
            trusted = trust.judge(trusted, history, TRUST, now=now)
        situation = Situation(
            now=now,
            interval=interval,
            observed=history.observed,
            current=current,
            serving=serving,
            forecast=update.path,
            no_forecast=update.why_none,
            trust=trust.record(trusted, definition.forecast.quantile, TRUST) if hybrid else None,
            cannot_help=_cannot_help(definition, trusted) if hybrid else "",
        )
        outcome = decide(definition, situation, memory)
        reasons = ([note] if note else []) + outcome.reasons + ([update.note] if update.note else [])
        reasons += [tuned] if tuned else []
        if outcome.action in Action.CHANGES and scale_run_active(locked):
            # A provider sets an absolute count: a second run finishing before the first would leave
            # the older count. The next tick decides again once this run is done.
            reasons.append(f"held: scale run {locked.last_run_id} still going; no second run meanwhile")
            outcome = replace(
                outcome,
                action=Action.HOLD,
                desired=current,
                memory=replace(
                    outcome.memory,
                    last_scale_up_at=memory.last_scale_up_at,
                    last_change_at=memory.last_change_at,
                ),
            )
        run_id = None
        if outcome.action in Action.CHANGES:
            from automation.runs.dispatch import enqueue_run

            try:
                with transaction.atomic():
                    run, _ = enqueue_run(
                        workflow_name(target.name),
                        {"replicas": outcome.desired},
                        idempotency_key=run_key(target.name, slot),
                    )
            except AutomationError as exc:  # its workflow gone, the engine refusing: logged, nothing changed
                reasons.append(f"scale run not started: {str(exc)[:300]}")
                # the guards' clocks stay as they were: nothing changed (the reactive window moves on)
                kept = replace(
                    outcome.memory,
                    last_scale_up_at=memory.last_scale_up_at,
                    last_change_at=memory.last_change_at,
                )
                outcome = replace(outcome, action=Action.ERROR, desired=current, memory=kept)
            else:
                run_id = run.id
                reasons.append(f"scale run {run.id} started: {current} -> {outcome.desired} replicas")
        decision = _decision(
            target, definition, slot, now, history, update, outcome, current, reasons, run_id
        )
        locked.trust = trusted.as_json()
        _remember(locked, key=fitted_for(definition), now=now, update=update, outcome=outcome, run_id=run_id)
    return _report(decision)


def _cannot_help(definition: ScalingTargetDefinition, state: trust.TrustState) -> str:
    why = trust.cannot_help(state, TRUST)
    needed = TRUST.judge_after.total_seconds()
    if why and TRUST.forecastability and float(definition.load.history) < needed:
        why += (
            f"; load.history {span(float(definition.load.history))} is under the {span(needed)} it needs: "
            "this hybrid stays reactive until it is raised"
        )
    return why


def _decision(
    target: ScalingTarget,
    definition: ScalingTargetDefinition,
    slot: int,
    now: float,
    history: LoadHistory,
    update: ForecasterUpdate,
    outcome: Outcome,
    current: int,
    reasons: list[str],
    run_id: Any,
) -> ScalingDecision:
    peak = outcome.peak
    return ScalingDecision.objects.create(
        target=target,
        slot=slot,
        at=_at(now),
        policy=definition.policy,
        basis=outcome.basis,
        action=outcome.action,
        observed_load=history.observed if math.isfinite(history.observed) else None,
        forecast_at=_at(peak.at) if peak else None,
        forecast_mean=_finite(peak.mean) if peak else None,
        forecast_lower=_finite(peak.lower) if peak else None,
        forecast_upper=_finite(peak.upper) if peak else None,
        forecast=update.path.as_json() if update.path is not None else None,
        model=update.path.model if update.path is not None else "",
        current_replicas=current,
        desired_replicas=outcome.desired,
        reasons=reasons,
        run_id=run_id,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _remember(
    state: ScalingState, *, key: str, now: float, update: ForecasterUpdate, outcome: Outcome, run_id: Any
) -> None:
    memory = outcome.memory
    state.recommendations = [[t, n] for t, n in memory.recommendations]
    state.last_scale_up_at = _at(memory.last_scale_up_at) if memory.last_scale_up_at is not None else None
    state.last_change_at = _at(memory.last_change_at) if memory.last_change_at is not None else None
    if run_id is not None:
        state.requested_replicas = outcome.desired
        state.last_run_id = run_id
    if update.document is not None:
        state.forecaster = update.document
        state.fitted_for = key
    if update.fitted:
        state.fitted_at = _at(now)
        state.fit_seconds = update.fit_seconds
        state.fit_attempted_at = _at(now)
        state.fit_error = ""
    if update.clear:
        state.forecaster = None
        state.fitted_for = key
    if update.error is not None:
        state.fit_attempted_at = _at(now)
        state.fit_error = update.error
    state.save()


def _record_error(
    target: ScalingTarget, definition: ScalingTargetDefinition, slot: int, now: float, reason: str
) -> dict[str, Any]:
    with transaction.atomic():
        locked = ScalingState.objects.select_for_update().get(pk=target.pk)
        if ScalingDecision.objects.filter(target=target, slot=slot).exists():
            return {"target": target.name, "slot": slot, "skipped": "already decided in this slot"}
        replicas = (
            locked.requested_replicas if locked.requested_replicas is not None else definition.min_replicas
        )
        decision = ScalingDecision.objects.create(
            target=target,
            slot=slot,
            at=_at(now),
            policy=definition.policy,
            basis=Basis.OBSERVED,
            action=Action.ERROR,
            current_replicas=replicas,
            desired_replicas=replicas,
            reasons=[reason[:2000]],
        )
    return _report(decision)


def _report(decision: ScalingDecision) -> dict[str, Any]:
    return {
        "target": decision.target.name,
        "slot": decision.slot,
        "action": decision.action,
        "current": decision.current_replicas,
        "desired": decision.desired_replicas,
        "reasons": decision.reasons,
        "run_id": str(decision.run_id) if decision.run_id else None,
    }
