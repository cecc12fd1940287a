"""States and kinds of the alerting domain, with their named groups; no literal of them anywhere else."""

from __future__ import annotations


class AlertState:
    """inactive → pending → firing → resolved, per fingerprint (a rule and one label set, or an alert
    received from Alertmanager or the events endpoint)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"

    ALL = (INACTIVE, PENDING, FIRING, RESOLVED)
    ACTIVE = (PENDING, FIRING)
    CHOICES = [(s, s) for s in ALL]


class AlertOrigin:
    """Where an alert came from: a rule this engine evaluates, or an alert another tool raised."""

    RULE = "rule"
    ALERTMANAGER = "alertmanager"
    EVENT = "event"

    ALL = (RULE, ALERTMANAGER, EVENT)
    CHOICES = [(s, s) for s in ALL]


class SilenceState:
    """Where a silence is in its time range."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"

    ALL = (PENDING, ACTIVE, EXPIRED)


class SourceKind:
    """Where a rule reads metrics: samples pushed to the engine's own store, or a Prometheus server."""

    PUSH = "push"
    PROMETHEUS = "prometheus"

    ALL = (PUSH, PROMETHEUS)
    CHOICES = [(s, s) for s in ALL]


class Decision:
    """What the pipeline decided about an alert, one row of the notification log each time."""

    PENDING = "pending"  # the condition holds; its duration is not met yet
    FIRED = "fired"  # the alert started firing
    RESOLVED = "resolved"  # the alert stopped firing
    DEDUPLICATED = "deduplicated"  # the same firing was reported again (webhook, second evaluator)
    FLAPPING = "flapping"  # held: too many state changes in the flap window
    INHIBITED = "inhibited"  # muted by another firing alert (detail: which)
    SILENCED = "silenced"  # muted by a silence (detail: which)
    NO_ROUTE = "no_route"  # no route matched and there is no default receiver
    HELD = "held"  # waiting in its group (group_wait / group_interval)
    NOTIFIED = "notified"  # a notification was sent to a receiver (detail: the delivery run)
    DELIVERED = "delivered"  # the receiver took the notification (its delivery run succeeded)
    DELIVERY_FAILED = "delivery_failed"  # the receiver's delivery failed for good
    COOLDOWN = "cooldown"  # no workflow started: a run for this alert started inside the cooldown
    WORKFLOW_STARTED = "workflow_started"  # a remediation run started (run id)
    APPROVAL_REQUIRED = "approval_required"  # the run started behind an approval gate (level)
    WORKFLOW_REFUSED = "workflow_refused"  # the run could not be started (unknown workflow, bad inputs)
    NOT_AUTOMATED = "not_automated"  # level `manual`: notified only, no run
    GUARD_REFUSED = "guard_refused"  # a remediation policy's guard kept its run from starting (which, why)
    REMEDIATION_VERIFIED = "remediation_verified"  # the remediation's run worked: verification saw it
    REMEDIATION_FAILED = "remediation_failed"  # its run or its verification failed: rolled back, escalated

    ALL = (
        PENDING,
        FIRED,
        RESOLVED,
        DEDUPLICATED,
        FLAPPING,
        INHIBITED,
        SILENCED,
        NO_ROUTE,
        HELD,
        NOTIFIED,
        DELIVERED,
        DELIVERY_FAILED,
        COOLDOWN,
        WORKFLOW_STARTED,
        APPROVAL_REQUIRED,
        WORKFLOW_REFUSED,
        NOT_AUTOMATED,
        GUARD_REFUSED,
        REMEDIATION_VERIFIED,
        REMEDIATION_FAILED,
    )
    #: Decisions that mean "not paged".
    MUTED = (FLAPPING, INHIBITED, SILENCED, NO_ROUTE)
    CHOICES = [(s, s) for s in ALL]
