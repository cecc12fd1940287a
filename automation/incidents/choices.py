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
    """What one row of an incident's timeline says happened. Later parts (remediation, verification) add
    their kinds here."""

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
