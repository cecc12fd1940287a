"""Binds the signed-in user as the audit log's actor for the UI's requests (source `admin`)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from automation.access.choices import AuditSource
from automation.access.principal import Actor, acting_as


class AdminActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        with acting_as(Actor(name=str(user.get_username()), source=AuditSource.ADMIN)):
            return self.get_response(request)
