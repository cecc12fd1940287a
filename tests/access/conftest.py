"""Tokens of every role for the access tests: stored, handed out, and revoked afterwards. A stored token,
even revoked, keeps the API's authentication on, and the session's other API tests run in the open mode:
each access test module deletes every token row when it ends (a test's cleanup; no service deletes one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from automation.access.choices import Role
from tests.api_server import ApiServer
from tests.conftest import STATE_DIR, unique


@pytest.fixture(scope="module", autouse=True)
def forget_tokens(engine: Any) -> Iterator[None]:
    from automation.models import ApiToken

    yield
    ApiToken.objects.all().delete()


@pytest.fixture(scope="module")
def role_tokens(engine: Any) -> Iterator[dict[str, str]]:
    """{role: secret}, one service token per role."""
    from automation.access.services.tokens import create_token, revoke_token

    made = {role: create_token(unique(f"matrix-{role}"), roles=[role], expires_in="1h") for role in Role.ALL}
    yield {role: created.secret for role, created in made.items()}
    for created in made.values():
        revoke_token(created.token.name)


@pytest.fixture(scope="module")
def server(role_tokens: dict[str, str]) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('access-api')}.log", workers=2)
    yield started
    started.stop()
