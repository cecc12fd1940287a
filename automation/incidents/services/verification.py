"""What becomes of a remediation once its run started: Beat's `automation.incidents.follow_remediations`
judges the run; a run that succeeded is verified (its alert resolves, or a health check answers) until the
policy's `verify.within`; a failed run, or a fix not seen in time, is rolled back (the run's compensation:
automation/runs/compensation.py), counted by the circuit breaker (which may open with it) and escalated
(the incident's next level paged now). The pass also sends again the starts whose message was lost. Each
transition is guarded by the row's status, under its row lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import httpx
from django.db import transaction

from automation.alerting.choices import AlertState, Decision
from automation.alerting.remediation import alert_context
from automation.choices import RunStatus
from automation.incidents.choices import EventKind, RemediationStatus
from automation.incidents.guards import trips_breaker
from automation.incidents.remediation_definitions import RemediationPolicy
from automation.incidents.services.escalations import hasten
from automation.incidents.services.remediations import note, outcomes_of, send_start, set_status
from automation.incidents.services.timeline import at
from automation.models import Alert, Remediation, WorkflowRun
from automation.runs.compensation import compensate, steps_active
from automation.templating import TemplateError, render

logger = logging.getLogger("automation.remediation")

#: A request not decided this long after it was made (its start message lost) is sent again.
RESEND_AFTER = 30.0
#: Rows one follow pass looks at, per status.
FOLLOW_BATCH = 200


def _when(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def follow(now: float) -> dict[str, int]:
    """One pass: lost starts sent again, finished runs judged, verifications checked. Counts by what was
    done."""
    done = {"resent": 0, "failed": 0, "verifying": 0, "verified": 0, "unverified": 0}
    stale = Remediation.objects.filter(
        status=RemediationStatus.REQUESTED, updated_at__lt=at(now - RESEND_AFTER)
    ).values_list("pk", flat=True)[:FOLLOW_BATCH]
    if stale:
        send_start(list(stale))
        done["resent"] = len(stale)
    running = Remediation.objects.filter(status=RemediationStatus.RUNNING).order_by("started_at")
    for pk in running.values_list("pk", flat=True)[:FOLLOW_BATCH]:
        _count(done, pk, _follow_run, now)
    verifying = Remediation.objects.filter(status=RemediationStatus.VERIFYING).order_by("verify_until")
    for pk in verifying.values_list("pk", flat=True)[:FOLLOW_BATCH]:
        _count(done, pk, verify, now)
    return done


def _count(done: dict[str, int], pk: int, step: Callable[[int, float], str | None], now: float) -> None:
    """One row's step of the pass, counted; a row that raises is logged and tried again next pass (it
    must not hold up the others)."""
    try:
        outcome = step(pk, now)
    except Exception:  # noqa: BLE001 - one row must not stop the follow job for every remediation
        logger.exception("remediation %s: not followed this pass; the next pass tries again", pk)
        return
    if outcome:
        done[outcome] += 1


def _follow_run(pk: int, now: float) -> str | None:
    with transaction.atomic():
        row = (
            Remediation.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, status=RemediationStatus.RUNNING)
            .first()
        )
        if row is None:
            return None
        run = WorkflowRun.objects.filter(pk=row.run_id).first() if row.run_id is not None else None
        if run is not None and run.status not in RunStatus.TERMINAL:
            return None
        if run is not None and run.status == RunStatus.FAILED and steps_active(run.pk):
            return None  # its rollback waits for the steps still running; a later pass gives up
        if run is not None and run.status == RunStatus.SUCCEEDED:
            policy = RemediationPolicy.model_validate(row.plan)
            until = now + policy.verify.within
            how = f"GET {policy.verify.http.url}" if policy.verify.http else "the alert resolves"
            set_status(
                row,
                now,
                RemediationStatus.VERIFYING,
                f"run succeeded; verifying ({how}) for {policy.verify.within:g} s",
                verify_until=at(until),
            )
        else:
            error = run.error if run is not None else "its run is gone"
            status = run.status if run is not None else "missing"
            _escalate(_give_up(row, now, RemediationStatus.FAILED, f"run {status}: {error[:500]}"), now)
            return "failed"
    return verify(pk, now) or "verifying"


def verify(pk: int, now: float) -> str | None:
    """Check one verifying remediation: succeeded when the fix is seen, unverified (rolled back,
    escalated) once its time is up. None while it waits."""
    row = Remediation.objects.filter(pk=pk, status=RemediationStatus.VERIFYING).first()
    if row is None:
        return None
    policy = RemediationPolicy.model_validate(row.plan)
    until = _when(row.verify_until) or now
    seen, how = _seen_fixed(policy, row) if now < until else (False, _expected(policy))
    with transaction.atomic():
        row = (
            Remediation.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, status=RemediationStatus.VERIFYING)
            .first()
        )
        if row is None:
            return None
        if seen:
            set_status(row, now, RemediationStatus.SUCCEEDED, f"verified: {how}")
            note(row, now, EventKind.VERIFIED, how, decision=Decision.REMEDIATION_VERIFIED, run_id=row.run_id)
            return "verified"
        if now < until:
            return None
        within = policy.verify.within
        gave_up = _give_up(
            row, now, RemediationStatus.UNVERIFIED, f"verification failed: {how} within {within:g} s"
        )
        _escalate(gave_up, now)
    return "unverified"


def _seen_fixed(policy: RemediationPolicy, row: Remediation) -> tuple[bool, str]:
    """Whether the fix is seen now, and what was looked at."""
    check = policy.verify.http
    if check is not None:
        alert = Alert.objects.filter(pk=row.alert_id).first() if row.alert_id is not None else None
        context = {"alert": alert_context(alert)} if alert is not None else {}
        try:
            url = str(render(check.url, context, {}))
        except TemplateError as exc:
            return False, f"health check URL: {exc}"
        try:
            with httpx.Client(timeout=check.timeout, follow_redirects=False) as client:
                answer = client.get(url)
        except Exception as exc:  # noqa: BLE001 - a URL httpx refuses (InvalidURL, UnicodeError): not healthy
            why = f"{type(exc).__name__}: {str(exc)[:200]}"
            return False, f"health check GET {url} did not answer {check.status} ({why})"
        if answer.status_code == check.status:
            return True, f"health check GET {url} answered {answer.status_code}"
        return False, f"health check GET {url} did not answer {check.status} (last: {answer.status_code})"
    alert = Alert.objects.filter(pk=row.alert_id).first() if row.alert_id is not None else None
    if alert is None or alert.state != AlertState.FIRING or alert.fired_at != row.fired_at:
        return True, "the alert resolved"
    return False, "the alert did not resolve"


def _expected(policy: RemediationPolicy) -> str:
    """What was to be seen, for a verification whose time is up (not looked at again: it times out)."""
    check = policy.verify.http
    if check is not None:
        return f"health check GET {check.url} did not answer {check.status}"
    return "the alert did not resolve"


def _give_up(row: Remediation, now: float, status: str, reason: str) -> Remediation:
    """The fix did not work: recorded, its run's effects undone (compensation), its breaker judged."""
    undo: WorkflowRun | None = None
    could_not = ""
    if row.run_id is not None:
        try:
            with transaction.atomic():
                undo = compensate(row.run_id, reason=reason)
        except Exception as exc:  # noqa: BLE001 - the row still ends and escalates; people roll back
            logger.warning(
                "remediation %s: rollback of run %s could not start", row.pk, row.run_id, exc_info=True
            )
            could_not = f"rollback could not start: {str(exc)[:500]}"
    if could_not:
        reason = f"{reason}; {could_not}"
    set_status(row, now, status, reason, compensation_run_id=undo.pk if undo is not None else None)
    kind = (
        EventKind.REMEDIATION_FAILED if status == RemediationStatus.FAILED else EventKind.VERIFICATION_FAILED
    )
    note(row, now, kind, reason, decision=Decision.REMEDIATION_FAILED, run_id=row.run_id)
    if undo is not None:
        note(row, now, EventKind.ROLLED_BACK, f"run {undo.pk} undoes run {row.run_id}", run_id=undo.pk)
    elif could_not:
        note(row, now, EventKind.ROLLED_BACK, f"{could_not}; people decide what to undo")
    else:
        note(
            row, now, EventKind.ROLLED_BACK, "nothing to undo: no step that declares a compensation succeeded"
        )
    policy = RemediationPolicy.model_validate(row.plan)
    if trips_breaker(policy, outcomes_of(policy, policy.circuit_breaker.failures + 1), now):
        breaker = policy.circuit_breaker
        note(
            row,
            now,
            EventKind.BREAKER_OPENED,
            f"{breaker.failures} failure(s) in a row: no remediation of this policy for "
            f"{breaker.reset_after:g} s; people decide",
        )
        row.detail = f"{row.detail}; circuit breaker opened"
        row.save(update_fields=["detail", "updated_at"])
    return row


def _escalate(row: Remediation, now: float) -> None:
    """Hasten the incident's escalation, in the transaction that gives the row up: once that commits, no
    pass looks at the row again, so a hastening left for after the commit would be lost with a process
    dying in between. The tick's nudge, sent after the commit, may be lost: the escalation tick then pages
    the level due now within its interval."""
    if row.incident_id is not None:
        hasten(row.incident_id, now, f"remediation {row.pk} ({row.policy}) did not fix it: {row.detail}")
