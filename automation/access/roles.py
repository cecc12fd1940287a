"""What each role may do (permissions as data) and the one decision every adapter asks: is it allowed."""

from __future__ import annotations

from collections.abc import Iterable

from automation.access.choices import Permission as P
from automation.access.choices import Role

_OPERATOR_WRITES = {
    P.WORKFLOWS_CREATE,
    P.WORKFLOWS_EXECUTE,
    P.WORKFLOWS_DELETE,
    P.RUNS_CANCEL,
    P.RUNS_APPROVE,
    P.METRICS_WRITE,
    P.EVENTS_WRITE,
    P.RULES_WRITE,
    P.SILENCES_WRITE,
    P.SCALING_WRITE,
    P.INCIDENTS_WRITE,
    P.INCIDENTS_CONFIGURE,
    P.SCHEDULES_WRITE,
    P.CONFIG_WRITE,
    P.AUDIT_READ,
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # The seed's role, exactly its four permissions; system:admin stands for everything else.
    Role.ADMIN: frozenset({P.WORKFLOWS_CREATE, P.WORKFLOWS_EXECUTE, P.WORKFLOWS_DELETE, P.SYSTEM_ADMIN}),
    # Runs the engine day to day; cannot mint tokens.
    Role.OPERATOR: P.READ | _OPERATOR_WRITES,
    # On call: approve steps, silence, acknowledge and resolve incidents.
    Role.RESPONDER: P.READ | {P.RUNS_APPROVE, P.SILENCES_WRITE, P.INCIDENTS_WRITE},
    Role.VIEWER: P.READ,
    # Other services: start runs, read the runs they started, push metrics, events and alerts.
    Role.SERVICE: frozenset({P.WORKFLOWS_EXECUTE, P.RUNS_READ_OWN, P.METRICS_WRITE, P.EVENTS_WRITE}),
}


class UnknownRole(ValueError):
    def __init__(self, role: str) -> None:
        super().__init__(f"unknown role '{role}' (one of {', '.join(Role.ALL)})")
        self.role = role


def check_roles(roles: Iterable[str]) -> list[str]:
    """The roles, deduplicated in the order given; UnknownRole for a name that is not a role."""
    known: list[str] = []
    for role in roles:
        if role not in ROLE_PERMISSIONS:
            raise UnknownRole(role)
        if role not in known:
            known.append(role)
    return known


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """Every permission the roles grant (unknown role names grant nothing)."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    if P.SYSTEM_ADMIN in granted:
        return P.ALL
    return frozenset(granted)


def allows(roles: Iterable[str], permission: str) -> bool:
    if permission not in P.ALL:
        raise ValueError(f"unknown permission '{permission}'")
    return permission in permissions_of(roles)
