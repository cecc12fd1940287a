"""The API's gate: every route declares what each method needs (`guard`) or that it is open (`public`).

`guard(view, GET="runs:read", POST="runs:cancel")` wraps a view in the URL configuration: the caller is
authenticated (401 without a valid bearer token, once any token is configured), the method's permission
is checked (403), and the principal is bound as the audit log's actor for the request. A view that no
route guards still authenticates in `api_view`, and then needs `system:admin`: an endpoint merged without
its declaration is closed, not open, and the endpoint × role test names it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from automation.access.choices import AuditSource
from automation.access.choices import Permission as P
from automation.access.principal import OPEN_PRINCIPAL, Actor, Principal, acting_as
from automation.access.services.tokens import auth_required
from automation.access.services.tokens import authenticate as from_secret

View = Callable[..., HttpResponse]

#: The attribute a guarded view carries: {METHOD: permission}; PUBLIC for an open route.
PERMISSIONS_ATTRIBUTE = "required_permissions"
PUBLIC = "public"
#: What an undeclared view needs.
UNDECLARED = P.SYSTEM_ADMIN


def _refuse(status: int, message: str) -> JsonResponse:
    answer = JsonResponse({"error": message}, status=status)
    if status == 401:
        answer["WWW-Authenticate"] = 'Bearer realm="automation"'
    return answer


def bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def authenticate(request: HttpRequest) -> Principal | JsonResponse:
    """The request's principal (the open one while no token is configured), or the 401 answer."""
    if not auth_required():
        return OPEN_PRINCIPAL
    principal = from_secret(bearer(request))
    if principal is None:
        return _refuse(401, "missing or invalid bearer token")
    return principal


Needed = str | tuple[str, ...]


def _admit(request: HttpRequest, permission: Needed) -> Principal | JsonResponse:
    principal = getattr(request, "principal", None)
    if principal is None:
        found = authenticate(request)
        if isinstance(found, JsonResponse):
            return found
        principal = found
        request.principal = principal  # type: ignore[attr-defined]
    wanted = (permission,) if isinstance(permission, str) else permission
    if not any(principal.may(one) for one in wanted):
        return _refuse(403, f"'{principal.name}' lacks the permission {' or '.join(wanted)}")
    return principal


def _actor(principal: Principal) -> Actor:
    return Actor(name=principal.name, source=AuditSource.API, via=principal.token, principal=principal)


def guard(view: View, **methods: Needed) -> View:
    """The view, open to callers whose roles grant the permission declared for the request's method (a
    tuple: any of them; the view narrows what a lesser one sees, e.g. runs:read_own).
    A method not declared needs system:admin (then the view answers it, usually 405): a method a view
    starts serving without its declaration is closed to everyone else."""
    unknown = [
        one
        for needed in methods.values()
        for one in ((needed,) if isinstance(needed, str) else needed)
        if one not in P.ALL
    ]
    if unknown:
        raise ValueError(f"unknown permissions {unknown} declared for {view.__name__}")

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        found = _admit(request, methods.get(request.method or "", UNDECLARED))
        if isinstance(found, JsonResponse):
            return found
        request.principal = found  # type: ignore[attr-defined]
        with acting_as(_actor(found)):
            return view(request, *args, **kwargs)

    setattr(wrapper, PERMISSIONS_ATTRIBUTE, dict(methods))
    return wrapper


def public(view: View) -> View:
    """A route that needs no token (health, metrics, the signed acknowledgement link): said explicitly."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, *args, **kwargs)

    setattr(wrapper, PERMISSIONS_ATTRIBUTE, PUBLIC)
    return wrapper


def undeclared(request: HttpRequest) -> HttpResponse | None:
    """For `api_view`: a request no guard admitted is authenticated here and needs system:admin.
    None when the request may go on."""
    if getattr(request, "principal", None) is not None:
        return None
    found = _admit(request, UNDECLARED)
    return found if isinstance(found, JsonResponse) else None


def principal_of(request: HttpRequest) -> Principal | None:
    return getattr(request, "principal", None)


def request_actor(request: HttpRequest) -> Actor:
    """The actor of an admitted request (for views no guard wrapped)."""
    return _actor(getattr(request, "principal", None) or OPEN_PRINCIPAL)
