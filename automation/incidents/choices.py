"""Statuses of an incident and kinds of its timeline events, with their named groups; no literal of them
anywhere else."""

from __future__ import annotations


class IncidentStatus:
    """triggered → acknowledged → mitigated → resolved. Acknowledging and mitigating may be skipped (an
    incident resolves from any active status); nothing leaves `resolved`."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"

    ALL = (TRIGGERED, ACKNOWLEDGED, MITIGATED, RESOLVED)
    #: Open incidents: firing alerts join them, auto-resolve watches them.
    ACTIVE = (TRIGGERED, ACKNOWLEDGED, MITIGATED)
    TERMINAL = (RESOLVED,)
    CHOICES = [(s, s) for s in ALL]
    #: A filter value of the list (API `status=open`, CLI `--status open`), not a status: any of ACTIVE.
    OPEN = "open"


class EventKind:
    """What one row of an incident's timeline says happened."""

    OPENED = "opened"  # the first alert opened it (detail: why no open incident took it)
    ALERT_JOINED = "alert_joined"  # one firing of an alert joined (detail: the correlation's reason)
    ALERT_RESOLVED = "alert_resolved"  # that firing resolved
    SEVERITY_RAISED = "severity_raised"  # a joining alert was more severe than the incident
    ACKNOWLEDGED = "acknowledged"  # actor: who
    MITIGATED = "mitigated"  # actor: who
    RESOLVED = "resolved"  # by someone (actor)
    AUTO_RESOLVED = "auto_resolved"  # every alert resolved and stayed resolved for the hold time
    ESCALATION_STARTED = "escalation_started"  # a policy was chosen (detail: which, and why)
    ESCALATION_UNMATCHED = "escalation_unmatched"  # policies are declared but none matches it
    PAGED = "paged"  # one receiver paged (detail: level, pass, who and how; run_id: the delivery run)
    PAGE_SKIPPED = "page_skipped"  # a target reached nobody (nobody on call, receiver gone, refused)
    ESCALATED = "escalated"  # nobody acknowledged within the level's timeout: the next level is paged
    ESCALATION_STOPPED = "escalation_stopped"  # acknowledged, mitigated or resolved (actor: by whom)
    ESCALATION_EXHAUSTED = "escalation_exhausted"  # every level of every pass paged, nobody acknowledged
    # guarded remediation (automation/incidents/services/remediations.py); detail: the policy and why
    REMEDIATION_STARTED = "remediation_started"  # its run started (run_id), alone or once approved
    REMEDIATION_HELD = "remediation_held"  # nothing ran: a guard refused, the level only notifies, approval
    REMEDIATION_FAILED = "remediation_failed"  # its run failed (run_id)
    VERIFIED = "verified"  # its verification saw the fix work
    VERIFICATION_FAILED = "verification_failed"  # it did not, within the policy's time
    ROLLED_BACK = "rolled_back"  # the compensation run started (run_id) for a failed run or verification
    BREAKER_OPENED = "breaker_opened"  # K failures of one policy in a row: it acts no more for a while
    ESCALATION_HASTENED = "escalation_hastened"  # remediation gave up: the next level is paged now

    ALL = (
        OPENED,
        ALERT_JOINED,
        ALERT_RESOLVED,
        SEVERITY_RAISED,
        ACKNOWLEDGED,
        MITIGATED,
        RESOLVED,
        AUTO_RESOLVED,
        ESCALATION_STARTED,
        ESCALATION_UNMATCHED,
        PAGED,
        PAGE_SKIPPED,
        ESCALATED,
        ESCALATION_STOPPED,
        ESCALATION_EXHAUSTED,
        REMEDIATION_STARTED,
        REMEDIATION_HELD,
        REMEDIATION_FAILED,
        VERIFIED,
        VERIFICATION_FAILED,
        ROLLED_BACK,
        BREAKER_OPENED,
        ESCALATION_HASTENED,
    )
    #: Events of a status change.
    TRANSITIONS = (ACKNOWLEDGED, MITIGATED, RESOLVED, AUTO_RESOLVED)
    CHOICES = [(s, s) for s in ALL]


class EscalationStatus:
    """Where an incident's escalation stands. `active` until the incident is acknowledged (or mitigated,
    or resolved: `stopped`), every level of every pass was paged and timed out (`exhausted`), or no
    policy matched it (`unmatched`). Nothing leaves a terminal status."""

    ACTIVE = "active"
    STOPPED = "stopped"
    EXHAUSTED = "exhausted"
    UNMATCHED = "unmatched"

    ALL = (ACTIVE, STOPPED, EXHAUSTED, UNMATCHED)
    TERMINAL = (STOPPED, EXHAUSTED, UNMATCHED)
    CHOICES = [(s, s) for s in ALL]


class EscalationStep:
    """What the escalation of one incident does at one moment (`automation.incidents.escalation.decide`)."""

    WAIT = "wait"  # its next level is not due yet
    CHOOSE = "choose"  # it has no policy yet: choose one, then page its first level
    PAGE = "page"  # the level at its position is due
    EXHAUST = "exhaust"  # past its last level and pass, and that level's timeout passed
    STOP = "stop"  # the incident is no longer triggered: someone is on it

    ALL = (WAIT, CHOOSE, PAGE, EXHAUST, STOP)


class TargetKind:
    """Who a level of an escalation policy pages: a receiver of the alerting document, a declared user
    (through the receivers it lists), or whoever is on call for a schedule."""

    RECEIVER = "receiver"
    USER = "user"
    SCHEDULE = "schedule"

    ALL = (RECEIVER, USER, SCHEDULE)


class ChangeKind:
    """What a recorded change was (`automation.incidents.services.changes`): root-cause analysis weighs a
    change on a service shortly before its trouble began."""

    DEPLOY = "deploy"  # a new version of the service (or a model it serves)
    CONFIG = "config"  # its configuration changed
    WORKFLOW_RUN = "workflow_run"  # a workflow acted on it (a restart, a scale)

    ALL = (DEPLOY, CONFIG, WORKFLOW_RUN)
    CHOICES = [(s, s) for s in ALL]


class ChangeSource:
    """Who recorded a change: an operator's tool through the API or the CLI, or the engine itself when one
    of its workflow steps acted on a service."""

    API = "api"
    CLI = "cli"
    ENGINE = "engine"

    ALL = (API, CLI, ENGINE)
    CHOICES = [(s, s) for s in ALL]


class RemediationStatus:
    """Where one remediation (a policy acting on one firing of one alert) stands.

    requested → running → verifying → succeeded | unverified, or running → failed; from requested it may
    also end refused (a guard, or the alert resolved before it started), notified (level `manual`) or
    wait for an approval (awaiting_approval → requested once approved). Nothing leaves a terminal status.
    """

    REQUESTED = "requested"
    AWAITING_APPROVAL = "awaiting_approval"
    NOTIFIED = "notified"
    REFUSED = "refused"
    RUNNING = "running"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNVERIFIED = "unverified"

    ALL = (REQUESTED, AWAITING_APPROVAL, NOTIFIED, REFUSED, RUNNING, VERIFYING, SUCCEEDED, FAILED, UNVERIFIED)
    #: Not decided yet.
    PENDING = (REQUESTED, AWAITING_APPROVAL)
    #: Touching their service now: the blast radius counts them.
    ACTIVE = (RUNNING, VERIFYING)
    #: Their run started: the rate limits count them.
    STARTED = (RUNNING, VERIFYING, SUCCEEDED, FAILED, UNVERIFIED)
    #: Finished, and the fix did not work: the circuit breaker counts them.
    FAILURES = (FAILED, UNVERIFIED)
    FINISHED = (SUCCEEDED, FAILED, UNVERIFIED)
    TERMINAL = (NOTIFIED, REFUSED, SUCCEEDED, FAILED, UNVERIFIED)
    CHOICES = [(s, s) for s in ALL]


class Guard:
    """What decided that a remediation does not run (its `guard`), one per check of
    `automation.incidents.guards`, in the order they are checked."""

    ALERT_RESOLVED = "alert_resolved"  # the alert no longer fires (durable state, read when deciding)
    LEVEL = "level"  # the automation level: notify only, or wait for an approval
    CIRCUIT_BREAKER = "circuit_breaker"
    LOOP = "loop"
    RATE_LIMIT_SERVICE = "rate_limit_service"
    RATE_LIMIT_WORKFLOW = "rate_limit_workflow"
    BLAST_RADIUS = "blast_radius"
    INPUTS = "inputs"  # its inputs could not be made from the alert, or the workflow refused them

    ALL = (
        ALERT_RESOLVED,
        LEVEL,
        CIRCUIT_BREAKER,
        LOOP,
        RATE_LIMIT_SERVICE,
        RATE_LIMIT_WORKFLOW,
        BLAST_RADIUS,
        INPUTS,
    )
    #: Guards whose refusal hands the incident to people at once (the escalation's next level is due now).
    #: Not the circuit breaker's: the failure that opened it escalated already, and every firing refused
    #: while it is open would otherwise page the next level again.
    ESCALATING = (LOOP,)
