"""The one permission check of the web UI: `allowed(user, permission)` with the API's permission names.

Today a permission maps to Django's own: an active staff user, and the superuser flag or the model
permission named below. The access domain (roles as data) replaces the body of `allowed` at merge; every
admin and page of the UI asks through it and nothing else.
"""

from __future__ import annotations

from typing import Any

#: The API's permission names the UI asks for, and the Django model permission each maps to today.
#: None: only a superuser (`system:admin`, and the access domain's models, which do not exist yet).
PERMISSIONS: dict[str, str | None] = {
    "workflows:read": "automation.view_workflow",
    "runs:read": "automation.view_workflowrun",
    "rules:read": "automation.view_alertrule",
    "silences:read": "automation.view_silence",
    "silences:write": "automation.change_silence",
    "scaling:read": "automation.view_scalingtarget",
    "incidents:read": "automation.view_incident",
    "incidents:acknowledge": "automation.change_incident",
    "schedules:read": "django_celery_beat.view_periodictask",
    "schedules:write": "django_celery_beat.change_periodictask",
    "tokens:read": None,
    "audit:read": None,
    "system:admin": None,
}


class UnknownPermission(KeyError):
    """A permission name the UI does not know: a typo must not silently deny (or grant) access."""


def allowed(user: Any, permission: str) -> bool:
    """Whether `user` (a Django user, anonymous included) holds `permission` (e.g. `runs:read`)."""
    if permission not in PERMISSIONS:
        raise UnknownPermission(f"unknown permission {permission!r}")
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    model_permission = PERMISSIONS[permission]
    return model_permission is not None and bool(user.has_perm(model_permission))
