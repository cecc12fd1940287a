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
    """What one row of an incident's timeline says happened. Later parts (notification, escalation,
    remediation, verification) add their kinds here."""

    OPENED = "opened"  # the first alert opened it (detail: why no open incident took it)
    ALERT_JOINED = "alert_joined"  # one firing of an alert joined (detail: the correlation's reason)
    ALERT_RESOLVED = "alert_resolved"  # that firing resolved
    SEVERITY_RAISED = "severity_raised"  # a joining alert was more severe than the incident
    ACKNOWLEDGED = "acknowledged"  # actor: who
    MITIGATED = "mitigated"  # actor: who
    RESOLVED = "resolved"  # by someone (actor)
    AUTO_RESOLVED = "auto_resolved"  # every alert resolved and stayed resolved for the hold time

    ALL = (
        OPENED,
        ALERT_JOINED,
        ALERT_RESOLVED,
        SEVERITY_RAISED,
        ACKNOWLEDGED,
        MITIGATED,
        RESOLVED,
        AUTO_RESOLVED,
    )
    #: Events of a status change.
    TRANSITIONS = (ACKNOWLEDGED, MITIGATED, RESOLVED, AUTO_RESOLVED)
    CHOICES = [(s, s) for s in ALL]
