"""What happens to an alert once it fired or resolved, in this order (as Alertmanager's pipeline, plus
what it lacks), each decision written to the notification log:

1. dedup: only the caller that took the transition gets here (automation.alerting.services.alerts);
2. flap damping: an alert changing state too often is held as flapping: no remediation, and its group
   carries it in one notification per flapping spell;
3. inhibition: a firing alert matching an inhibition rule's source mutes it;
4. silences: an active silence matching its labels mutes it;
5. remediation: unless muted (2-4), the rule's workflow starts once per firing (idempotency key:
   fingerprint and firing start), unless a run for this alert started inside the rule's cooldown; the
   automation level decides whether it runs directly, behind an approval, or not at all;
6. routing and grouping: the alert joins the group of each receiver its labels route to, muted or not;
   groups are flushed by automation.alerting.services.groups (group_wait, group_interval,
   repeat_interval), which leaves muted alerts out of each notification, so an alert whose silence ends
   or whose inhibiting alert resolves is notified then;
7. incidents: the firing joins the incident it correlates with (its group keys, or a linked service of
   the dependency graph firing within the window), or opens one unless muted; a resolution is marked on
   its incident (automation.incidents.services.alerts). After routing, in a transaction of its own: the
   transition is committed by then, and a failure here leaves the transition unhandled, so `repair`
   takes it up again (joining is idempotent per firing).
8. guarded remediation: unless muted or flapping, each remediation policy matching the alert is
   requested once per firing (automation.incidents.services.remediations); a worker decides it under
   the guards, against the alert's state at that moment.

A muted alert starts no workflow: an operator's silence during maintenance holds the automation too.
Once the pipeline of a transition is done, the alert records it (`handled_for`); a transition whose
process died before that is taken up again by the flush job (`repair`), every step being idempotent.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, Q

from automation.alerting.choices import AlertState, Decision
from automation.alerting.definitions import AlertingDocument, RuleDefinition
from automation.alerting.remediation import (
    alert_context,
    in_cooldown,
    is_gated,
    outside_remediate_when,
    run_workflow_name,
)
from automation.alerting.routing import Destination, destinations
from automation.alerting.services.alerts import (
    FIRST_SIGHT_ONLY_IF,
    StartWith,
    at,
    firing_key,
    lock_firing,
    log,
    record_run,
)
from automation.alerting.services.config import apply_document, current_document
from automation.alerting.services.groups import join
from automation.alerting.services.muting import Muting
from automation.choices import AlertSeverity, AutomationLevel
from automation.config import current_config
from automation.errors import (
    AutomationError,
    IdempotencyConflict,
    InvalidFieldsError,
    NotFoundError,
    StateError,
)
from automation.incidents.services.alerts import alert_fired, alert_resolved
from automation.incidents.services.remediations import request as request_remediations
from automation.models import Alert, WorkflowRun
from automation.templating import TemplateError, render

#: A transition left unhandled this long (its process died mid-pipeline) is taken up again.
REPAIR_AFTER = 30.0


def on_fired(
    alert: Alert,
    now: float,
    rule: RuleDefinition | None,
    *,
    repairing: bool = False,
    started: Any = None,
    raced: bool = False,
    muting: Muting | None = None,
) -> Any:
    """Run the pipeline for an alert that just fired; returns the remediation run it started, if any.
    `repairing`: the pipeline of this firing ran before and was cut off; a run it had already started is
    recorded as it is, whatever the level, silences or cooldown say now. `started`: the run stored and
    recorded with the alert's first sight (`planned_start`), the one step 5 would have started. `raced`:
    the alert was first sighted here without a run of its own, so a copy of it received by another
    process (or before a crash) may have stored and sent this firing's run first: that run is recorded
    as on repair, never a second one started beside it (under the other workflow, gated or direct, after
    the level changed in between) nor one left unrecorded (the alert silenced in between). `muting`:
    the silences and inhibitions read for this firing already (`planned_start`)."""
    key = firing_key(alert)
    run = started
    if run is None and (repairing or raced) and rule is not None:
        detail = "recorded on repair" if repairing else COPY_STARTED
        run = _started_before(alert, now, rule, detail=detail)
    muted = (muting or Muting.now(now, alert=alert)).of(alert)
    if run is None:
        if alert.flapping:
            detail = "held: too many state changes"
            log(alert, Decision.FLAPPING, now, detail=detail, once_key=f"flapping:{key}")
        elif muted is not None:
            log(alert, muted[0], now, detail=muted[1], once_key=f"{muted[0]}:{key}")
        elif rule is not None:
            run = remediate(alert, now, rule)
    found = _route(alert, now)
    incident_id = alert_fired(alert, now, group_keys=[d.group_key for d in found], may_open=muted is None)
    if muted is None and not alert.flapping:
        request_remediations(alert, now, incident_id)
    _handled(alert, alert.fired_at)
    return run


def on_resolved(alert: Alert, now: float) -> None:
    _route(alert, now)
    alert_resolved(alert, now)
    _handled(alert, alert.resolved_at)


def _handled(alert: Alert, moment: Any) -> None:
    # Always a write, waiting for the disk: the commit that makes a received alert's first sight and its
    # run durable (they do not wait) before the sender is answered, when nothing after them did.
    Alert.objects.filter(pk=alert.pk).update(handled_for=moment)
    alert.handled_for = moment


def _route(alert: Alert, now: float, document: AlertingDocument | None = None) -> list[Destination]:
    """The alert joins the group of each receiver its labels route to; returns those destinations."""
    document = document or current_document()
    found = destinations(document.route.build(), dict(alert.labels))
    if not found:
        started = alert.fired_at.timestamp() if alert.fired_at else 0.0
        log(
            alert,
            Decision.NO_ROUTE,
            now,
            once_key=f"no_route:{alert.fingerprint}:{started:.3f}:{alert.state}",
        )
    for destination in found:
        join(alert, destination, now)
    return found


def apply_routing(raw: Any, now: float) -> tuple[AlertingDocument, int]:
    """Apply a new alerting document and re-route the firing alerts under it, in one transaction (all or
    nothing); returns the document and how many alerts changed groups. See `reroute`."""
    with transaction.atomic():
        document = apply_document(raw)
        return document, reroute(now, document)


def reroute(now: float, document: AlertingDocument | None = None) -> int:
    """Every firing alert joins the groups its labels route to under the current routes and leaves those
    it no longer routes to (Alertmanager re-dispatches its alerts on a reload the same way): a new route
    or receiver takes effect for alerts already firing, not only for the next ones. A group an alert
    joins waits its group_wait as a new group does. Returns the alerts whose groups changed."""
    tree = (document or current_document()).route.build()
    changed = 0
    firing = Alert.objects.filter(state=AlertState.FIRING).prefetch_related("groups").order_by("pk")
    for alert in firing.iterator(chunk_size=500):
        wanted = {found.group_key: found for found in destinations(tree, dict(alert.labels))}
        held = {group.key: group for group in alert.groups.all()}
        leaving = [group for key, group in held.items() if key not in wanted]
        joining = [found for key, found in wanted.items() if key not in held]
        if leaving:
            alert.groups.remove(*leaving)
        for found in joining:
            join(alert, found, now)
        if not wanted and held:
            _route(alert, now, document)  # logs no_route once
        changed += bool(leaving or joining)
    return changed


def repair(now: float) -> int:
    """Take up the transitions whose pipeline never finished (the process died, the database failed
    between the transition and its follow-up): the pipeline runs again; its steps are idempotent."""
    stale = at(now - REPAIR_AFTER)
    firing = Q(state=AlertState.FIRING) & ~Q(handled_for=F("fired_at"))
    resolved = Q(state=AlertState.RESOLVED) & ~Q(handled_for=F("resolved_at"))
    found = 0
    for alert in Alert.objects.filter(firing | resolved, changed_at__lt=stale).select_related("rule")[:500]:
        found += 1
        if alert.state == AlertState.FIRING:
            rule = RuleDefinition.model_validate(alert.rule.document) if alert.rule is not None else None
            on_fired(alert, now, rule, repairing=True)
        else:
            on_resolved(alert, now)
    return found


_RANK = [s.value for s in AlertSeverity]


def gating_severity(alert: Alert, rule: RuleDefinition) -> str:
    """The worse of the rule's severity and the alert's: a sender cannot skip an approval by labelling
    its alert `low` when the rule handling it says `critical`."""
    ranked = [s for s in (alert.severity, rule.severity.value) if s in _RANK]
    return min(ranked, key=_RANK.index) if ranked else rule.severity.value


def remediate(alert: Alert, now: float, rule: RuleDefinition) -> Any:
    """Start the rule's workflow for this firing (once), or record why not. Returns the run or None."""
    if not rule.actions and rule.workflow is None:
        return None
    key = firing_key(alert)
    outside = outside_remediate_when(rule, alert.labels)
    if outside is not None:
        log(alert, Decision.WORKFLOW_REFUSED, now, detail=outside, once_key=f"refused:{key}")
        return None
    last_run = alert.last_run_at.timestamp() if alert.last_run_at is not None else None
    if in_cooldown(last_run, now, rule.cooldown_period):
        since = now - (last_run or now)
        detail = f"run {alert.last_run_id} started {since:.0f} s ago, cooldown {rule.cooldown_period:.0f}"
        log(alert, Decision.COOLDOWN, now, detail=detail, once_key=f"cooldown:{key}")
        return None
    level = current_config().level
    if level == AutomationLevel.MANUAL:
        log(alert, Decision.NOT_AUTOMATED, now, detail="level manual: notify only", once_key=f"manual:{key}")
        return None
    gated = is_gated(level, gating_severity(alert, rule))
    try:
        return _start(alert, now, rule, key=key, gated=gated, level=level.value)
    except (InvalidFieldsError, NotFoundError, StateError, TemplateError) as exc:
        log(alert, Decision.WORKFLOW_REFUSED, now, detail=str(exc), once_key=f"refused:{key}")
        return None


def planned_start(
    alert: Alert, now: float, rule: RuleDefinition, version: tuple[Any, Any], muting: Muting
) -> StartWith | None:
    """The run `remediate` would start for the firing of this new alert (not stored yet), to be stored and
    sent just before the alert is inserted (`observe_if_new`, two statements): only when step 5 would
    start it directly or behind an approval, under the rule's `version` (id, updated_at) as this process
    knows it, and `muting` (`Muting.now`) mutes nothing of it. None otherwise: `remediate` then decides
    after the alert is stored, and logs why not. A new alert is not flapping and has no run to be in
    cooldown after."""
    if (not rule.actions and rule.workflow is None) or alert.flapping:
        return None
    if muting.of(alert) is not None or outside_remediate_when(rule, alert.labels) is not None:
        return None
    level = current_config().level
    if level == AutomationLevel.MANUAL:
        return None
    from automation.runs.dispatch import dispatch, guarded_run

    gated = is_gated(level, gating_severity(alert, rule))
    try:
        inputs = _run_inputs(alert, rule, gated=gated)
        insert = guarded_run(
            run_workflow_name(rule, gated=gated),
            inputs,
            idempotency_key=firing_key(alert),
            only_if=FIRST_SIGHT_ONLY_IF,
        )
    except (AutomationError, TemplateError):
        return None  # refused: `remediate` finds out again and logs why
    if insert is None:
        return None
    decision = Decision.APPROVAL_REQUIRED if gated else Decision.WORKFLOW_STARTED
    send = _send_on_commit(dispatch)
    other = run_workflow_name(rule, gated=not gated)
    return StartWith(insert, version, decision, f"level {level.value}", send=send, other_workflow=other)


def _send_on_commit(dispatch: Any) -> Any:
    def send(run: WorkflowRun) -> None:
        # Only the process that stored the run sends it (once the caller's transaction, if any, commits);
        # if it dies in between, the stalled-run sweep does.
        transaction.on_commit(lambda: dispatch(run))

    return send


def _run_inputs(alert: Alert, rule: RuleDefinition, *, gated: bool) -> dict[str, Any]:
    context = alert_context(alert)
    if gated:
        inputs: dict[str, Any] = {"alert": context}
        if rule.workflow is not None:
            inputs["call_inputs"] = render(rule.workflow.inputs, {"alert": context}, {})
        return inputs
    if rule.workflow is not None:
        rendered: dict[str, Any] = render(rule.workflow.inputs, {"alert": context}, {})
        return rendered
    return {"alert": context}


def _start(alert: Alert, now: float, rule: RuleDefinition, *, key: str, gated: bool, level: str) -> Any:
    """Store and send the run first, in a transaction of its own (the first step starts while the alert's
    bookkeeping is written), then record it on the alert. A process dying in between leaves the run
    stored and sent under the firing's key, not yet recorded: `repair` finds it (`_started_before`) and
    records it, never starting a second one. Where a copy of the alert stored the firing's run under the
    rule's other workflow (gated or direct), that run is recorded instead of a second one started."""
    from automation.runs.dispatch import enqueue_run

    inputs = _run_inputs(alert, rule, gated=gated)
    # Not waiting for the disk: `_record_start` below does, and writes the run with it before anyone is
    # answered (the step may start meanwhile; a run lost in a crash is asked for again).
    with transaction.atomic():
        # Under the firing's lock: a copy of the alert storing this firing's run under the rule's other
        # workflow (planned under another level) has committed it, or waits until this one is committed.
        other = lock_firing(key, other_workflow=run_workflow_name(rule, gated=not gated), durable=False)
        if other is None:
            try:
                run, _ = enqueue_run(
                    run_workflow_name(rule, gated=gated), inputs, idempotency_key=key, durable=False
                )
            except IdempotencyConflict as exc:
                # This firing's run exists, asked with the alert as it was then: it is the one to record.
                run = WorkflowRun.objects.get(id=exc.run_id)
    if other is not None:
        run = WorkflowRun.objects.get(id=other)
        _record_start(alert, now, run, gated=not gated, detail=COPY_STARTED)
        return run
    _record_start(alert, now, run, gated=gated, detail=f"level {level}")
    return run


def record_sent_run(alert: Alert, now: float, run: WorkflowRun, *, gated: bool) -> None:
    """Record on `alert` the run of its firing a copy of it stored and sent (`planned_start`)."""
    _record_start(alert, now, run, gated=gated, detail=COPY_STARTED)


#: The log detail of a run recorded on an alert whose firing's run a copy of the alert started.
COPY_STARTED = "started by a copy of this alert"


def _record_start(alert: Alert, now: float, run: Any, *, gated: bool, detail: str) -> None:
    decision = Decision.APPROVAL_REQUIRED if gated else Decision.WORKFLOW_STARTED
    record_run(alert, run.id, now, decision=decision, detail=detail, once_key=f"run:{firing_key(alert)}")


def _started_before(alert: Alert, now: float, rule: RuleDefinition, *, detail: str) -> Any:
    """The run this firing already started (its key, under the rule's direct or gated workflow), now
    recorded on the alert (its log line saying `detail`); None if it started none."""
    if not rule.actions and rule.workflow is None:
        return None
    names = {run_workflow_name(rule, gated=False): False, run_workflow_name(rule, gated=True): True}
    run = (
        WorkflowRun.objects.filter(idempotency_key=firing_key(alert), workflow__name__in=list(names))
        .select_related("workflow")
        .order_by("created_at")
        .first()
    )
    if run is None:
        return None
    if alert.last_run_id != run.id:
        _record_start(alert, now, run, gated=names[run.workflow.name], detail=detail)
    return run
