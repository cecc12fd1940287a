"""The guards of guarded remediation, as decisions without I/O: given what the durable state says (the
remediations already started, finished and active, read under one lock by services/remediations.py),
whether one more may start now, and if not, which guard refused and why. Replayable: a test or a
benchmark gives the history and a time.

Checked in this order (the first refusal wins): circuit breaker, loop, rate limit per service, rate
limit per workflow, blast radius. Whether the alert still fires and the automation level are the
service's to check (before and after these).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from automation.incidents.choices import Guard
from automation.incidents.remediation_definitions import RemediationPolicy


@dataclass(frozen=True)
class Outcome:
    """One finished remediation of the policy: when it finished and whether the fix worked."""

    finished_at: float
    worked: bool


@dataclass(frozen=True)
class Active:
    """One remediation touching a service now."""

    service: str
    replicas: int


@dataclass(frozen=True)
class History:
    """What the guards decide from, read from the durable state."""

    #: Start times of the remediations started on this service (any policy), within its rate window.
    service_starts: Sequence[float] = ()
    #: Start times of the runs of this workflow (any policy), within its rate window.
    workflow_starts: Sequence[float] = ()
    #: The policy's finished remediations, newest first (enough of them for its breaker).
    outcomes: Sequence[Outcome] = ()
    #: The remediations of this policy and alert that worked, their finish times (the loop's window).
    worked_for_alert: Sequence[float] = ()
    #: The remediations active now (any policy).
    active: Sequence[Active] = ()
    #: How many remediations of this policy are active now (running or verifying): a half-open breaker's
    #: one trial.
    policy_active: int = 0
    #: Replicas of the service (None: unknown), when the policy bounds the share touched.
    service_replicas: int | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    guard: str = ""
    reason: str = ""

    @property
    def escalates(self) -> bool:
        """Whether the refusal hands the incident to people now."""
        return self.guard in Guard.ESCALATING


ALLOWED = Verdict(True)


def breaker_open(policy: RemediationPolicy, outcomes: Sequence[Outcome], now: float) -> str | None:
    """Why the policy's circuit breaker is open at `now` (its last `failures` remediations failed and the
    last of them less than `reset_after` ago), or None: closed, or half-open (one trial may run)."""
    breaker = policy.circuit_breaker
    last = list(outcomes[: breaker.failures])
    if len(last) < breaker.failures or any(o.worked for o in last):
        return None
    since = now - last[0].finished_at
    if since >= breaker.reset_after:
        return None
    return (
        f"circuit breaker open: the last {breaker.failures} remediation(s) of policy {policy.name} failed, "
        f"the last {since:.0f} s ago (closes for one trial after {breaker.reset_after:g} s)"
    )


def breaker_half_open(policy: RemediationPolicy, outcomes: Sequence[Outcome], now: float) -> bool:
    """Whether the policy's last `failures` remediations failed but the last of them is `reset_after` or
    more ago: one trial may run."""
    breaker = policy.circuit_breaker
    last = list(outcomes[: breaker.failures])
    if len(last) < breaker.failures or any(o.worked for o in last):
        return False
    return now - last[0].finished_at >= breaker.reset_after


def trips_breaker(policy: RemediationPolicy, outcomes: Sequence[Outcome], now: float) -> bool:
    """Whether the newest outcome (a failure just recorded) is the one that opened the breaker: open with
    it, closed (or half-open) without it."""
    return breaker_open(policy, outcomes, now) is not None and breaker_open(policy, outcomes[1:], now) is None


def _rate(what: str, starts: Sequence[float], runs: int, window: float, now: float) -> str | None:
    recent = [t for t in starts if now - window < t <= now]
    if len(recent) < runs:
        return None
    free_at = sorted(recent)[-runs] + window
    return (
        f"rate limit of {what}: {len(recent)} run(s) started in the last {window:g} s, at most {runs} "
        f"(next in {max(free_at - now, 0):.0f} s)"
    )


def judge(policy: RemediationPolicy, *, service: str, history: History, now: float) -> Verdict:
    """Whether one more remediation of `policy` on `service` may start at `now`."""
    why = breaker_open(policy, history.outcomes, now)
    if why is not None:
        return Verdict(False, Guard.CIRCUIT_BREAKER, why)
    if history.policy_active and breaker_half_open(policy, history.outcomes, now):
        return Verdict(
            False,
            Guard.CIRCUIT_BREAKER,
            f"circuit breaker half-open: one trial is running (policy {policy.name}, whose last "
            f"{policy.circuit_breaker.failures} remediation(s) failed); the next waits for its outcome",
        )
    loop = policy.loop
    repeats = [t for t in history.worked_for_alert if now - loop.window < t <= now]
    if len(repeats) >= loop.max_repeats:
        return Verdict(
            False,
            Guard.LOOP,
            f"loop: this alert fired again after {len(repeats)} remediation(s) of it that worked in the "
            f"last {loop.window:g} s (at most {loop.max_repeats}): its fix does not hold",
        )
    rates = policy.rate_limit
    if rates.per_service is not None:  # no service label is a service of its own: still bounded
        why = _rate(
            f"service {_shown(service)}",
            history.service_starts,
            rates.per_service.runs,
            rates.per_service.window,
            now,
        )
        if why is not None:
            return Verdict(False, Guard.RATE_LIMIT_SERVICE, why)
    if rates.per_workflow is not None:
        why = _rate(
            f"workflow {policy.workflow}",
            history.workflow_starts,
            rates.per_workflow.runs,
            rates.per_workflow.window,
            now,
        )
        if why is not None:
            return Verdict(False, Guard.RATE_LIMIT_WORKFLOW, why)
    return _blast_radius(policy, service, history)


def _shown(service: str) -> str:
    return service or "(no service label)"


def _blast_radius(policy: RemediationPolicy, service: str, history: History) -> Verdict:
    blast = policy.blast_radius
    touched = {a.service for a in history.active}  # "" (no service label) counts as one service
    if blast.max_services is not None and service not in touched and len(touched) >= blast.max_services:
        shown = ", ".join(_shown(t) for t in sorted(touched)[:10])
        return Verdict(
            False,
            Guard.BLAST_RADIUS,
            f"blast radius: {len(touched)} service(s) under remediation now ({shown}), at most "
            f"{blast.max_services}",
        )
    if blast.max_replica_percent is not None:
        total = history.service_replicas
        if not total:
            return Verdict(
                False,
                Guard.BLAST_RADIUS,
                f"blast radius: the replicas of {service or 'its service'} are unknown to provider "
                f"{blast.provider}, so no share of them may be touched",
            )
        busy = sum(a.replicas for a in history.active if a.service == service)
        share = 100.0 * (busy + blast.replicas_touched) / total
        if share > blast.max_replica_percent + 1e-9:
            return Verdict(
                False,
                Guard.BLAST_RADIUS,
                f"blast radius: {busy + blast.replicas_touched} of {total} replica(s) of {service} would "
                f"be touched at once ({share:.0f} %), at most {blast.max_replica_percent:g} %",
            )
    return ALLOWED
