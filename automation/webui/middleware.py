"""The web UI's request wrapper: it refuses to serve sessions signed with the public development key
beyond loopback, and binds the signed-in user as the audit log's actor (source `admin`)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from automation.access.choices import AuditSource
from automation.access.principal import Actor, acting_as

#: The UI's paths (admin, run pages, the admin's static files); the API takes no cookie.
UI_PREFIXES = ("/admin", "/ui/")
NO_SECRET_KEY = (
    "The web UI is off: this server listens beyond loopback and AUTOMATION_SECRET_KEY is not set, so "
    "its sessions would be signed with the public development key. Set AUTOMATION_SECRET_KEY."
)


def insecure_beyond_loopback() -> bool:
    """Whether sessions would be signed with the public key on a server others reach (`serve` sets
    AUTOMATION_API_REQUIRE_AUTH when it binds beyond loopback)."""
    return bool(settings.AUTOMATION_API_REQUIRE_AUTH) and settings.SECRET_KEY == settings.INSECURE_SECRET_KEY


class AdminActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(UI_PREFIXES) and insecure_beyond_loopback():
            return HttpResponse(NO_SECRET_KEY, status=503, content_type="text/plain")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        with acting_as(Actor(name=str(user.get_username()), source=AuditSource.ADMIN)):
            return self.get_response(request)
