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


def test_a_service_reads_only_runs_it_started_through_the_api(engine: Any) -> None:
    """A CLI user's name is free (AUTOMATION_ACTOR): a service token named alike gains nothing by it."""
    import uuid

    from automation.access.choices import AuditSource
    from automation.access.principal import Actor
    from automation.access.services.audit import record, started_by

    by_cli, by_api = str(uuid.uuid4()), str(uuid.uuid4())
    record("run.started", "run", by_cli, actor=Actor(name="deploy", source=AuditSource.CLI))
    record("run.started", "run", by_api, actor=Actor(name="deploy", source=AuditSource.API))
    assert not started_by(by_cli, "deploy")
    assert started_by(by_api, "deploy")
