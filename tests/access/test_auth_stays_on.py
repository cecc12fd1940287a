"""Authentication never turns itself off: a revoked or expired last token leaves the API closed, and a
user holding a token cannot be deleted (which would delete the token with it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.integration


def test_a_revoked_or_expired_last_token_leaves_authentication_on(engine: Any) -> None:
    """The API never falls back to open because its last token was revoked or ran out."""
    from datetime import timedelta

    from django.db.models.deletion import ProtectedError
    from django.utils import timezone

    from automation.access.services.tokens import auth_required, create_token, revoke_token
    from automation.models import ApiToken

    assert not auth_required()  # no token stored yet: every access module deletes its own at its end
    made = create_token(unique("last"), roles=["viewer"], expires_in="1h")
    assert auth_required()
    revoke_token(made.token.name)
    assert auth_required()
    expired = timezone.now() - timedelta(days=1)
    ApiToken.objects.filter(pk=made.token.pk).update(revoked_at=None, expires_at=expired)
    assert auth_required()
    from django.contrib.auth.models import User

    owner = User.objects.create_user(unique("owner"))
    create_token(unique("owned"), roles=["viewer"], expires_in="1h", user=owner.username)
    with pytest.raises(ProtectedError):
        owner.delete()
