"""The pure parts of the access domain: what each role may do, token secrets and lifetimes, audit digests
and filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automation.access import tokens
from automation.access.choices import Permission as P
from automation.access.choices import PrincipalKind, Role
from automation.access.digests import state_digest, summary
from automation.access.filters import parse_filters, parse_since
from automation.access.principal import Principal
from automation.access.roles import ROLE_PERMISSIONS, UnknownRole, allows, check_roles, permissions_of


def test_the_seeds_admin_role_has_exactly_its_four_permissions_and_system_admin_implies_all() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == {
        "workflows:create",
        "workflows:execute",
        "workflows:delete",
        "system:admin",
    }
    assert permissions_of([Role.ADMIN]) == P.ALL
    assert all(allows([Role.ADMIN], permission) for permission in P.ALL)


def test_each_role_grants_what_it_is_for() -> None:
    assert allows([Role.VIEWER], P.RUNS_READ) and not allows([Role.VIEWER], P.RUNS_CANCEL)
    assert permissions_of([Role.VIEWER]) == P.READ
    assert {P.RUNS_APPROVE, P.SILENCES_WRITE, P.INCIDENTS_WRITE} <= permissions_of([Role.RESPONDER])
    assert not allows([Role.RESPONDER], P.RULES_WRITE)
    assert permissions_of([Role.SERVICE]) == {
        P.WORKFLOWS_EXECUTE,
        P.RUNS_READ_OWN,
        P.METRICS_WRITE,
        P.EVENTS_WRITE,
    }
    assert not allows([Role.SERVICE], P.WORKFLOWS_CREATE)
    assert allows([Role.OPERATOR], P.SCALING_WRITE) and not allows([Role.OPERATOR], P.TOKENS_WRITE)
    assert not allows([Role.OPERATOR], P.SYSTEM_ADMIN)
    # Roles add up; none grants a permission nobody declared.
    assert not allows([Role.SERVICE], P.RUNS_READ)
    assert permissions_of([Role.VIEWER, Role.SERVICE]) == P.READ | permissions_of([Role.SERVICE])
    assert all(permissions <= P.ALL for permissions in ROLE_PERMISSIONS.values())
    assert permissions_of([]) == frozenset() and permissions_of(["nobody"]) == frozenset()


def test_unknown_roles_and_permissions_are_refused_by_name() -> None:
    with pytest.raises(UnknownRole, match="unknown role 'root'"):
        check_roles(["viewer", "root"])
    assert check_roles(["viewer", "service", "viewer"]) == ["viewer", "service"]
    with pytest.raises(ValueError, match="unknown permission 'runs:explode'"):
        allows([Role.ADMIN], "runs:explode")


def test_secrets_are_random_prefixed_and_matched_by_digest_only() -> None:
    first, second = tokens.new_secret(), tokens.new_secret()
    assert first != second and first.startswith("atk_") and len(first) > 40
    stored = tokens.digest(first)
    assert len(stored) == 64 and first not in stored
    assert tokens.matches(first, stored) and not tokens.matches(second, stored)
    assert not tokens.matches(first[:-1], stored)


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        (" 30m", timedelta(minutes=30)),
    ],
)
def test_lifetimes_parse(text: str, lifetime: timedelta) -> None:
    assert tokens.parse_duration(text) == lifetime


@pytest.mark.parametrize("text", ["", "90", "d", "-1d", "0d", "1y", "1.5d", "99999999d", "4000d"])
def test_bad_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        tokens.parse_duration(text)


def test_token_names() -> None:
    assert tokens.check_name("ci-bot.v2_x") == "ci-bot.v2_x"
    for bad in ("", "-x", "a b", "x" * 101, "ci/bot", "é"):
        with pytest.raises(ValueError):
            tokens.check_name(bad)


def test_a_principal_is_admitted_by_its_name_or_group_not_its_tokens_name() -> None:
    alice = Principal(
        name="alice",
        kind=PrincipalKind.USER_TOKEN,
        roles=("responder",),
        token="alice-laptop",
        groups=("sre",),
    )
    assert alice.identities == {"alice", "group:sre"}
    # bob's token named "alice" does not pass for alice
    bob = Principal(name="bob", kind=PrincipalKind.USER_TOKEN, roles=("responder",), token="alice")
    assert "alice" not in bob.identities
    assert alice.may(P.RUNS_APPROVE) and not alice.may(P.RULES_WRITE)


def test_digests_are_canonical_and_never_carry_secrets() -> None:
    one = {"b": 1, "a": {"password": "hunter2", "x": [1, 2]}}
    same = {"a": {"x": [1, 2], "password": "other"}, "b": 1}
    assert state_digest(one) == state_digest(same)  # order does not matter; secrets are masked first
    assert state_digest(one) != state_digest({"b": 2, "a": {"x": [1, 2]}})
    assert state_digest(None) == ""
    shown = summary({"a": 1, "token": "s3cret"}, {"a": 2, "token": "n3w"}, {"password": "p"})
    assert shown == {"changed": ["a", "token"], "password": "********"}
    assert "s3cret" not in str(shown) and "n3w" not in str(shown)
    assert summary(None, {"a": 1}) == {"created": True} and summary({"a": 1}, None) == {"deleted": True}


def test_audit_filters_name_the_field_at_fault() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert parse_since("1h", now) == now - timedelta(hours=1)
    assert parse_since("2026-11-30T10:00:00", now) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    filters, errors = parse_filters({"since": "1d", "actor": "alice", "limit": "5", "before": "40"}, now)
    assert not errors and filters.limit == 5 and filters.before_id == 40 and filters.actor == "alice"
    _, errors = parse_filters({"since": "yesterday", "limit": "0", "before": "x", "colour": "red"}, now)
    assert sorted(field for field, _ in errors) == ["before", "colour", "limit", "since"]
