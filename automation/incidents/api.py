"""HTTP views of the incidents domain: incidents (list, one with its alerts and timeline, acknowledge,
mitigate, resolve), the services document of the dependency graph and the recorded changes. Thin: the
filters and the documents check the input, the services change the state (bearer token and errors as
every view: `automation.api.views.api_view`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.api.views import BadRequest, api_view, json_body_view
from automation.errors import InvalidFieldsError
from automation.incidents.limits import MAX_BY, MAX_COMMENT
from automation.runs.intake import json_type

#: Query parameters of the list.
LIST_PARAMETERS = ("status", "service", "since", "limit")
#: Query parameters of the changes' list.
CHANGE_PARAMETERS = ("service", "since", "limit")


@require_http_methods(["GET"])
@api_view
def incidents(request: HttpRequest) -> JsonResponse:
    from automation.incidents.filters import parse_filter
    from automation.incidents.serializers import incident_json
    from automation.incidents.services.queries import list_incidents

    unknown = [(name, "unknown query parameter") for name in request.GET if name not in LIST_PARAMETERS]
    if unknown:
        raise InvalidFieldsError(unknown)
    chosen = parse_filter(**{name: request.GET.get(name) for name in LIST_PARAMETERS}, now=time.time())
    return JsonResponse({"incidents": [incident_json(i) for i in list_incidents(chosen)]})


@require_http_methods(["GET"])
@api_view
def incident_detail(request: HttpRequest, incident_id: str) -> JsonResponse:
    from automation.incidents.serializers import incident_detail_json
    from automation.incidents.services.queries import get_incident

    return JsonResponse(incident_detail_json(get_incident(incident_id)))


def _step_fields(body: dict[str, Any]) -> tuple[str, str]:
    """`by` (who, required) and `comment` (optional) of an operator's step; unknown fields are refused."""
    errors = [(field, "unknown field") for field in body if field not in ("by", "comment")]
    by, comment = body.get("by"), body.get("comment", "")
    if by is None:
        errors.append(("by", "required: who takes this step"))
    elif not isinstance(by, str):
        errors.append(("by", f"must be a string, not {json_type(by)}"))
    elif not 0 < len(by.strip()) <= MAX_BY:
        errors.append(("by", f"must be 1 to {MAX_BY} characters (got {len(by.strip())})"))
    if not isinstance(comment, str):
        errors.append(("comment", f"must be a string, not {json_type(comment)}"))
    elif len(comment) > MAX_COMMENT:
        errors.append(("comment", f"must be at most {MAX_COMMENT} characters (got {len(comment)})"))
    if errors:
        raise InvalidFieldsError(errors)
    return str(by).strip(), str(comment)


def _take(
    request: HttpRequest, step: Callable[..., Any], body: dict[str, Any], incident_id: str
) -> JsonResponse:
    from automation.access.choices import PrincipalKind
    from automation.access.gate import principal_of
    from automation.incidents.serializers import incident_json
    from automation.incidents.services.queries import get_incident
    from automation.incidents.services.queries import incident_id as parse_id

    number = parse_id(incident_id)  # an id that cannot be one is a 404 before the body is judged
    principal = principal_of(request)
    if principal is not None and principal.kind != PrincipalKind.OPEN:
        # With authentication on, who acts is who the token says, never what the caller typed (a `by`
        # sent is still checked, then not used).
        _step_fields({"by": principal.name, **body})
        body = {**body, "by": principal.name}
    by, comment = _step_fields(body)
    outcome = step(number, by=by, now=time.time(), comment=comment)
    return JsonResponse({**incident_json(get_incident(number)), "changed": outcome.changed})


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def acknowledge(request: HttpRequest, body: dict[str, Any], incident_id: str) -> JsonResponse:
    from automation.incidents.services.transitions import acknowledge as step

    return _take(request, step, body, incident_id)


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def mitigate(request: HttpRequest, body: dict[str, Any], incident_id: str) -> JsonResponse:
    from automation.incidents.services.transitions import mitigate as step

    return _take(request, step, body, incident_id)


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def resolve(request: HttpRequest, body: dict[str, Any], incident_id: str) -> JsonResponse:
    from automation.incidents.services.transitions import resolve as step

    return _take(request, step, body, incident_id)


@csrf_exempt
@require_http_methods(["GET", "PUT"])
@api_view
@json_body_view
def services(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """The services document of the dependency graph; PUT replaces it whole (all or none)."""
    from automation.incidents.serializers import services_json
    from automation.incidents.services.catalog import apply_services, current_services

    if request.method == "GET":
        return JsonResponse(services_json(current_services()))
    if not request.body:
        raise BadRequest('the services document is required (PUT {"services": []} to clear it)')
    return JsonResponse(services_json(apply_services(body)))


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def changes(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """GET: recorded changes, newest first (`service`, `since`, `limit`). POST: record one (a deploy, a
    config change, a workflow run on a service); 201, or 200 with the stored one when its `key` was
    recorded before."""
    from automation.incidents.changes import parse_change
    from automation.incidents.choices import ChangeSource
    from automation.incidents.filters import parse_filter
    from automation.incidents.serializers import change_json
    from automation.incidents.services.changes import list_changes, record_change

    now = time.time()
    if request.method == "GET":
        unknown = [(name, "unknown query parameter") for name in request.GET if name not in CHANGE_PARAMETERS]
        if unknown:
            raise InvalidFieldsError(unknown)
        # the incidents' list rules: `since` is 24h, 7d or an ISO time; `limit` 1 to 1000
        chosen = parse_filter(**{name: request.GET.get(name) for name in CHANGE_PARAMETERS}, now=now)
        listed = list_changes(service=chosen.service, since=chosen.since, limit=chosen.limit)
        return JsonResponse({"changes": [change_json(c) for c in listed]})
    if not request.body:
        raise BadRequest("a change is required: {\"service\": ..., \"kind\": ...}")
    recorded = record_change(parse_change(body, now=now), source=ChangeSource.API, now=now)
    answer = {**change_json(recorded.change), "created": recorded.created}
    return JsonResponse(answer, status=201 if recorded.created else 200)

