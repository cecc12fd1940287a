"""Who is calling (the authenticated principal) and who is acting (the actor the audit log records).

The actor is a context variable: each adapter binds it once (the API's gate per request, the CLI's group
per command, the admin per request), and the services that write audit entries read it. Code that binds
nothing is the Python API, acting as the operating-system user.
"""

from __future__ import annotations

import contextvars
import functools
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from automation.access.choices import AuditSource, PrincipalKind
from automation.access.roles import allows


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its name, the roles it carries, and the names an approver list may use."""

    name: str
    kind: str
    roles: tuple[str, ...]
    token: str = ""
    groups: tuple[str, ...] = field(default=())

    def may(self, permission: str) -> bool:
        return allows(self.roles, permission)

    @property
    def identities(self) -> frozenset[str]:
        """Names an approval step's `approvers` may list to admit this principal: the user's name (or
        the service token's), and `group:NAME` for each of the user's groups. Not a user token's own
        name: bob's token named `alice` must not pass for alice."""
        return frozenset({self.name, *(f"group:{group}" for group in self.groups)})


@dataclass(frozen=True)
class Actor:
    name: str
    source: str
    via: str = ""
    #: The principal that authenticated, when one did (approvals take identities from it).
    principal: Principal | None = None


_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("automation_actor", default=None)


@functools.cache
def _os_user() -> str:
    """The operating-system user of this process (looked up once: getpass may read the password file)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def bound_actor() -> Actor | None:
    """The actor an adapter bound, or None (engine-internal work, or the bare Python API)."""
    return _ACTOR.get()


def current_actor() -> Actor:
    """The bound actor, else the Python API acting as the operating-system user."""
    return _ACTOR.get() or Actor(name=_os_user(), source=AuditSource.PYTHON)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def bind(actor: Actor) -> None:
    """Bind for the rest of the current context (a CLI command runs to its end in one)."""
    _ACTOR.set(actor)


def cli_actor() -> Actor:
    return Actor(name=os.environ.get("AUTOMATION_ACTOR") or _os_user(), source=AuditSource.CLI)


OPEN_PRINCIPAL = Principal(name="anonymous", kind=PrincipalKind.OPEN, roles=("automation_admin",))
