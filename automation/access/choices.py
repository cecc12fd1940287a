"""Permissions, roles and audit sources as named constants; nothing else spells them."""

from __future__ import annotations


class Permission:
    # The seed's four; system:admin implies every other.
    WORKFLOWS_CREATE = "workflows:create"
    WORKFLOWS_EXECUTE = "workflows:execute"
    WORKFLOWS_DELETE = "workflows:delete"
    SYSTEM_ADMIN = "system:admin"
    # Reading, one per domain.
    WORKFLOWS_READ = "workflows:read"
    RUNS_READ = "runs:read"
    #: Only the runs the principal started (the service role's).
    RUNS_READ_OWN = "runs:read_own"
    ENGINE_READ = "engine:read"
    ALERTS_READ = "alerts:read"
    SCALING_READ = "scaling:read"
    INCIDENTS_READ = "incidents:read"
    SCHEDULES_READ = "schedules:read"
    AUDIT_READ = "audit:read"
    # Changing.
    RUNS_CANCEL = "runs:cancel"
    RUNS_APPROVE = "runs:approve"
    METRICS_WRITE = "metrics:write"
    EVENTS_WRITE = "events:write"
    RULES_WRITE = "rules:write"
    SILENCES_WRITE = "silences:write"
    SCALING_WRITE = "scaling:write"
    INCIDENTS_WRITE = "incidents:write"
    INCIDENTS_CONFIGURE = "incidents:configure"
    SCHEDULES_WRITE = "schedules:write"
    CONFIG_WRITE = "config:write"
    TOKENS_WRITE = "tokens:write"

    READ = frozenset(
        {WORKFLOWS_READ, RUNS_READ, ENGINE_READ, ALERTS_READ, SCALING_READ, INCIDENTS_READ, SCHEDULES_READ}
    )
    ALL = frozenset(value for name, value in vars().items() if name.isupper() and isinstance(value, str))


class Role:
    ADMIN = "automation_admin"
    OPERATOR = "operator"
    RESPONDER = "responder"
    VIEWER = "viewer"
    SERVICE = "service"

    ALL = (ADMIN, OPERATOR, RESPONDER, VIEWER, SERVICE)


class AuditSource:
    API = "api"
    CLI = "cli"
    PYTHON = "python"
    ADMIN = "admin"

    ALL = (API, CLI, PYTHON, ADMIN)
    CHOICES = [(value, value) for value in ALL]


class PrincipalKind:
    """How a caller proved who it is."""

    USER_TOKEN = "user"
    SERVICE_TOKEN = "service"
    BOOTSTRAP = "bootstrap"
    OPEN = "open"
