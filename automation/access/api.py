"""HTTP views of the access domain: tokens (list, create: the secret shown once, revoke) and the audit log
(read only). Their permissions are declared with their routes in automation/api/urls.py."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from automation.access.filters import parse_filters
from automation.access.principal import current_actor
from automation.api.views import api_view, json_body_view
from automation.errors import InvalidFieldsError
from automation.runs.intake import json_type

_CREATE_FIELDS = ("name", "roles", "expires", "user")


def _create_request(body: dict[str, Any]) -> dict[str, Any]:
    errors = [(field, "unknown field") for field in body if field not in _CREATE_FIELDS]
    for field in ("name", "expires", "user"):
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            errors.append((field, f"must be a string, not {json_type(value)}"))
    for field in ("name", "expires"):
        if body.get(field) is None:
            errors.append((field, "required"))
    roles = body.get("roles")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        errors.append(("roles", "must be a list of role names"))
    if errors:
        raise InvalidFieldsError(errors)
    return body


@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def tokens(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.access.services.tokens import create_token, list_tokens, token_json

    if request.method == "GET":
        return JsonResponse({"tokens": [token_json(token) for token in list_tokens()]})
    fields = _create_request(body)
    created = create_token(
        fields["name"],
        roles=fields["roles"],
        expires_in=fields["expires"],
        user=fields.get("user"),
        created_by=current_actor().name,
    )
    return JsonResponse({**token_json(created.token), "token": created.secret}, status=201)


@require_http_methods(["DELETE"])
@api_view
def token_detail(request: HttpRequest, name: str) -> HttpResponse:
    from automation.access.services.tokens import revoke_token, token_json

    return JsonResponse(token_json(revoke_token(name)))


@require_http_methods(["GET"])
@api_view
def audit(request: HttpRequest) -> JsonResponse:
    from automation.access.services.audit import entries, entry_json

    filters, errors = parse_filters({key: str(value) for key, value in request.GET.items()}, timezone.now())
    if errors:
        raise InvalidFieldsError(errors)
    rows = entries(
        since=filters.since,
        actor=filters.actor,
        object_type=filters.object_type,
        object_id=filters.object_id,
        before_id=filters.before_id,
        limit=filters.limit,
    )
    following = rows[-1].id if len(rows) == filters.limit else None
    return JsonResponse({"entries": [entry_json(row) for row in rows], "next_before": following})
