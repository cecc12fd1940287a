"""HTTP views of guarded remediation: the policies document, the remediations (what each policy decided
and why) and the approval of one waiting for it. Thin: the document and the services check the input."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.access.choices import PrincipalKind
from automation.access.gate import principal_of
from automation.api.views import BadRequest, api_view, json_body_view
from automation.errors import InvalidFieldsError, NotFoundError
from automation.incidents.choices import RemediationStatus
from automation.incidents.limits import MAX_BY
from automation.runs.intake import json_type

#: Query parameters of the list.
LIST_PARAMETERS = ("status", "incident", "policy", "limit")
MAX_LISTED = 500


@csrf_exempt
@require_http_methods(["GET", "PUT"])
@api_view
@json_body_view
def remediation_document(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """The remediation policies; PUT replaces them whole (all or none)."""
    from automation.incidents.services.remediation_config import (
        apply_remediation,
        as_json,
        current_remediation,
    )

    if request.method == "GET":
        return JsonResponse(as_json(current_remediation()))
    if not request.body:
        raise BadRequest('the remediation document is required (PUT {"policies": []} to clear it)')
    return JsonResponse(as_json(apply_remediation(body)))


@require_http_methods(["GET"])
@api_view
def remediations(request: HttpRequest) -> JsonResponse:
    """Remediations, newest first; `status`, `incident`, `policy` filter, `limit` (default 100)."""
    from automation.incidents.remediation_serializers import remediation_json
    from automation.incidents.services.remediations import listed

    errors = [(name, "unknown query parameter") for name in request.GET if name not in LIST_PARAMETERS]
    status = request.GET.get("status")
    if status is not None and status not in RemediationStatus.ALL:
        errors.append(("status", f"must be one of {', '.join(RemediationStatus.ALL)}"))
    incident = request.GET.get("incident")
    if incident is not None and not incident.isdigit():
        errors.append(("incident", "must be an incident id"))
    limit_text = request.GET.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LISTED:
        errors.append(("limit", f"must be an integer from 1 to {MAX_LISTED}"))
    if errors:
        raise InvalidFieldsError(errors)
    rows = listed(
        status=status,
        incident=int(incident) if incident else None,
        policy=request.GET.get("policy"),
        limit=int(limit_text),
    )
    return JsonResponse({"remediations": [remediation_json(row) for row in rows]})


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def approve(request: HttpRequest, body: dict[str, Any], remediation_id: str) -> JsonResponse:
    """Approve a remediation waiting for an approval: it is decided again at once (guards included)."""
    from automation.incidents.remediation_serializers import remediation_json
    from automation.incidents.services.remediations import approve as take

    if not remediation_id.isdigit():
        raise NotFoundError(f"remediation {remediation_id[:40]} not found")
    errors = [(field, "unknown field") for field in body if field != "by"]
    principal = principal_of(request)
    authenticated = principal is not None and principal.kind != PrincipalKind.OPEN
    by = body.get("by")
    if not (authenticated and "by" not in body):
        if not isinstance(by, str):
            errors.append(("by", f"required: who approves (a string, not {json_type(by)})"))
        elif not 0 < len(by.strip()) <= MAX_BY:
            errors.append(("by", f"must be 1 to {MAX_BY} characters"))
    if errors:
        raise InvalidFieldsError(errors)
    if principal is not None and authenticated:
        # With authentication on, who approves is who the token says (a `by` sent is checked, not used).
        by = principal.name
    return JsonResponse(remediation_json(take(int(remediation_id), by=str(by).strip(), now=time.time())))
