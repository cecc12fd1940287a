"""What happens to an alert once it fired or resolved, in this order (as Alertmanager's pipeline, plus
what it lacks), each decision written to the notification log:

1. dedup: only the caller that took the transition gets here (automation.alerting.services.alerts);
2. flap damping: an alert changing state too often is held as flapping, notified once;
3. inhibition: a firing alert matching an inhibition rule's source mutes it;
4. silences: an active silence matching its labels mutes it;
5. remediation: the rule's workflow starts once per firing (idempotency key: fingerprint and firing
   start), unless a run for this alert started inside the rule's cooldown; the automation level decides
   whether it runs directly, behind an approval, or not at all;
6. routing and grouping: the alert joins the group of each receiver its labels route to; groups are
   flushed by automation.alerting.services.groups (group_wait, group_interval, repeat_interval).

A muted alert (flapping, inhibited, silenced) starts no workflow either: an operator's silence during
maintenance holds the automation too.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automation.alerting.choices import AlertState, Decision
from automation.alerting.definitions import RuleDefinition
from automation.alerting.inhibition import FiringAlert, InhibitRule, inhibited_by
from automation.alerting.remediation import alert_context, in_cooldown, is_gated, run_workflow_name
from automation.alerting.routing import destinations
from automation.alerting.services.alerts import firing_key, log, record_run
from automation.alerting.services.config import current_document
from automation.alerting.services.groups import join
from automation.alerting.services.silences import active_silences
from automation.alerting.silencing import silenced_by
from automation.choices import AutomationLevel
from automation.config import current_config
from automation.errors import InvalidFieldsError, NotFoundError, StateError
from automation.models import Alert
from automation.templating import TemplateError, render


def muted_by(alert: Alert, now: float) -> tuple[str, str] | None:
    """(decision, detail) when the alert is muted now (flapping, inhibited, silenced); None otherwise."""
    labels = dict(alert.labels)
    document = current_document()
    rules = [InhibitRule(r.source_matchers, r.target_matchers, r.equal) for r in document.inhibit_rules]
    if rules:
        firing = [
            FiringAlert(fp, lbl)
            for fp, lbl in Alert.objects.filter(state=AlertState.FIRING, flapping=False).values_list(
                "fingerprint", "labels"
            )
        ]
        source = inhibited_by(alert.fingerprint, labels, firing, rules)
        if source is not None:
            return Decision.INHIBITED, f"inhibited by alert {source}"
    silence = silenced_by(labels, active_silences(now), now)
    if silence is not None:
        return Decision.SILENCED, f"silenced by {silence}"
    return None


def on_fired(alert: Alert, now: float, rule: RuleDefinition | None) -> Any:
    """Run the pipeline for an alert that just fired; returns the remediation run it started, if any."""
    key = firing_key(alert)
    if alert.flapping:
        # Held while it flaps; notified once per flapping spell (its group carries it).
        log(alert, Decision.FLAPPING, now, detail="held: too many state changes", once_key=f"flapping:{key}")
        spell = alert.flapping_since.timestamp() if alert.flapping_since else 0.0
        if log(
            alert,
            Decision.HELD,
            now,
            detail="flapping: notified once for this spell",
            once_key=f"flapping-spell:{alert.fingerprint}:{spell:.3f}",
        ):
            _route(alert, now)
        return None
    muted = muted_by(alert, now)
    if muted is not None:
        log(alert, muted[0], now, detail=muted[1], once_key=f"{muted[0]}:{key}")
        return None
    run = remediate(alert, now, rule) if rule is not None else None
    _route(alert, now)
    return run


def on_resolved(alert: Alert, now: float) -> None:
    _route(alert, now)


def _route(alert: Alert, now: float) -> None:
    document = current_document()
    found = destinations(document.route.build(), dict(alert.labels))
    if not found:
        log(alert, Decision.NO_ROUTE, now)
        return
    for destination in found:
        join(alert, destination, now)


def remediate(alert: Alert, now: float, rule: RuleDefinition) -> Any:
    """Start the rule's workflow for this firing (once), or record why not. Returns the run or None."""
    if not rule.actions and rule.workflow is None:
        return None
    key = firing_key(alert)
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
    gated = is_gated(level, alert.severity)
    try:
        return _start(alert, now, rule, key=key, gated=gated, level=level.value)
    except (InvalidFieldsError, NotFoundError, StateError, TemplateError) as exc:
        log(alert, Decision.WORKFLOW_REFUSED, now, detail=str(exc), once_key=f"refused:{key}")
        return None


def _start(alert: Alert, now: float, rule: RuleDefinition, *, key: str, gated: bool, level: str) -> Any:
    from automation.runs.dispatch import enqueue_run

    context = alert_context(alert)
    with transaction.atomic():
        if gated:
            inputs: dict[str, Any] = {"alert": context}
            if rule.workflow is not None:
                inputs["call_inputs"] = render(rule.workflow.inputs, {"alert": context}, {})
        elif rule.workflow is not None:
            inputs = render(rule.workflow.inputs, {"alert": context}, {})
        else:
            inputs = {"alert": context}
        run, _ = enqueue_run(run_workflow_name(rule, gated=gated), inputs, idempotency_key=key)
        record_run(alert, run.id, now)
        decision = Decision.APPROVAL_REQUIRED if gated else Decision.WORKFLOW_STARTED
        log(alert, decision, now, run_id=run.id, detail=f"level {level}", once_key=f"run:{key}")
    return run
