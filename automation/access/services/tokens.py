"""API tokens: created (the secret returned once), revoked, listed, and matched against a bearer secret."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from automation.access import tokens as secrets
from automation.access.choices import PrincipalKind, Role
from automation.access.principal import Principal
from automation.access.roles import UnknownRole, check_roles
from automation.access.services.audit import record
from automation.errors import InvalidFieldsError, NotFoundError, StateError
from automation.models import ApiToken

#: A token's last use is written at most this often (a busy client does not write on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str


def token_json(token: ApiToken) -> dict[str, Any]:
    """A token as shown: never its secret nor its digest."""
    return {
        "name": token.name,
        "user": token.user.get_username() if token.user else None,
        "roles": list(token.roles),
        "created_at": token.created_at.isoformat(),
        "created_by": token.created_by,
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "active": _active(token, timezone.now()),
    }


def _state(token: ApiToken) -> dict[str, Any]:
    shown = token_json(token)
    shown.pop("last_used_at")
    shown.pop("active")
    return shown


def _active(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and token.expires_at > now


def create_token(
    name: str, *, roles: list[str], expires_in: timedelta | str, user: str | None = None, created_by: str = ""
) -> CreatedToken:
    """A new token; its secret is in the answer and nowhere else. A user token names an existing user."""
    errors: list[tuple[str, str]] = []
    try:
        secrets.check_name(name)
    except ValueError as exc:
        errors.append(("name", str(exc)))
    try:
        known = check_roles(roles)
        if not known:
            errors.append(("roles", f"at least one role ({', '.join(Role.ALL)})"))
    except UnknownRole as exc:
        errors.append(("roles", str(exc)))
    lifetime = expires_in
    if isinstance(expires_in, str):
        try:
            lifetime = secrets.parse_duration(expires_in)
        except ValueError as exc:
            errors.append(("expires", str(exc)))
    owner = None
    if user:
        owner = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: user}).first()
        if owner is None:
            errors.append(("user", f"no user '{user}'"))
    if errors:
        raise InvalidFieldsError(errors)
    assert isinstance(lifetime, timedelta)
    secret = secrets.new_secret()
    now = timezone.now()
    taken = StateError(f"a token named '{name}' already exists (names are never reused: choose another)")
    try:
        with transaction.atomic():
            if ApiToken.objects.filter(name=name).exists():
                raise taken
            token = ApiToken.objects.create(
                name=name,
                digest=secrets.digest(secret),
                user=owner,
                roles=known,
                created_at=now,
                created_by=created_by,
                expires_at=now + lifetime,
            )
            record("token.created", "token", name, after=_state(token), note={"roles": known})
    except IntegrityError as exc:  # the same name created concurrently
        raise taken from exc
    return CreatedToken(token=token, secret=secret)


def revoke_token(name: str) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(name=name).first()
        if token is None:
            raise NotFoundError(f"token {name} does not exist")
        if token.revoked_at is not None:
            raise StateError(f"token '{name}' was already revoked")
        before = _state(token)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record("token.revoked", "token", name, before=before, after=_state(token))
    return token


def list_tokens() -> list[ApiToken]:
    return list(ApiToken.objects.select_related("user").order_by("name"))


def auth_required() -> bool:
    """Authentication is on once any token is configured: bootstrap tokens in the environment, or a token
    ever stored (revoked and expired ones too: no service deletes a token, and a user holding one cannot
    be deleted); and always for a server bound beyond loopback. Only a deployment that never had a
    token, on loopback, stays open (the development mode): an expired or revoked last token must not
    open the API."""
    if settings.AUTOMATION_API_REQUIRE_AUTH or settings.AUTOMATION_API_TOKENS:
        return True
    return ApiToken.objects.exists()


def bootstrap_principal(given: str) -> Principal | None:
    """AUTOMATION_API_TOKENS: each a bootstrap administrator until the variable is unset."""
    for position, token in enumerate(settings.AUTOMATION_API_TOKENS):
        if hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode()):
            return Principal(
                name=f"bootstrap-{position + 1}", kind=PrincipalKind.BOOTSTRAP, roles=(Role.ADMIN,)
            )
    return None


def authenticate(given: str) -> Principal | None:
    """The principal a bearer secret proves, or None (unknown, revoked or expired)."""
    if not given:
        return None
    principal = bootstrap_principal(given)
    if principal is not None:
        return principal
    if not given.startswith(secrets.PREFIX):
        return None
    wanted = secrets.digest(given)
    token = ApiToken.objects.select_related("user").filter(digest=wanted).first()
    now = timezone.now()
    # The lookup is by digest (an index cannot be timed into revealing a secret); compare once more in
    # constant time all the same.
    if token is None or not hmac.compare_digest(token.digest, wanted) or not _active(token, now):
        return None
    if token.user is not None and not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
    if token.user is None:
        return Principal(
            name=token.name, kind=PrincipalKind.SERVICE_TOKEN, roles=tuple(token.roles), token=token.name
        )
    groups = tuple(token.user.groups.values_list("name", flat=True))
    return Principal(
        name=token.user.get_username(),
        kind=PrincipalKind.USER_TOKEN,
        roles=tuple(token.roles),
        token=token.name,
        groups=groups,
    )
