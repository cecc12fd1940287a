"""The one permission check of the web UI: `allowed(user, permission)`, the access domain's roles.

A Django user's roles are the Django groups it belongs to that are named after a role
(`automation_admin`, `operator`, `responder`, `viewer`, `service`); a superuser is `automation_admin`.
The UI answers only active staff users (Django's admin lets no one else log in). Every admin and page of
the UI asks through `allowed` and nothing else, so the UI and the API grant the same things to a role.
"""

from __future__ import annotations

from typing import Any

from automation.access.choices import Permission as P
from automation.access.choices import Role
from automation.access.roles import allows

#: The UI's names for what the access domain spells otherwise.
ALIASES: dict[str, str] = {
    "rules:read": P.ALERTS_READ,
    "silences:read": P.ALERTS_READ,
    "incidents:acknowledge": P.INCIDENTS_WRITE,
    "tokens:read": P.TOKENS_WRITE,
}


class UnknownPermission(KeyError):
    """A permission name the UI does not know: a typo must not silently deny (or grant) access."""


def roles_of(user: Any) -> list[str]:
    """The roles of a Django user: its groups named after a role; `automation_admin` for a superuser."""
    if user.is_superuser:
        return [Role.ADMIN]
    return [name for name in user.groups.values_list("name", flat=True) if name in Role.ALL]


def allowed(user: Any, permission: str) -> bool:
    """Whether `user` (a Django user, anonymous included) holds `permission` (e.g. `runs:read`)."""
    name = ALIASES.get(permission, permission)
    if name not in P.ALL:
        raise UnknownPermission(f"unknown permission {permission!r}")
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return allows(roles_of(user), name)
