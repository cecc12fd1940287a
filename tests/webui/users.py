"""Django users for the web UI's tests, made in the test database, and test clients logged in as them."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.conftest import unique

PASSWORD = "correct-horse-battery"


def make_user(*, superuser: bool = False, staff: bool = True, roles: tuple[str, ...] = ()) -> Any:
    """A user with the access domain's `roles`, given as Django groups named after them."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(
        unique("u"), password=PASSWORD, is_staff=staff, is_superuser=superuser
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client
