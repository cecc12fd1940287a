"""HTTP views of escalation: the escalation document (users, schedules, policies), who is on call, and
the signed acknowledgement link a page carries. Thin: the document, the filters and the link check the
input, the services change the state. The link needs no bearer token: its signature is the credential
(`automation.incidents.ack_links`)."""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.access.choices import AuditSource
from automation.access.principal import Actor, acting_as
from automation.api.views import BadRequest, api_view, json_body_view
from automation.errors import InvalidFieldsError, NotFoundError, StateError

#: Query parameters of `GET /api/v1/oncall`.
ONCALL_PARAMETERS = ("schedule", "at")
#: A person acknowledging from a page's link says so on the timeline.
LINK_COMMENT = "from the signed link of a page"


def _unknown_parameters(request: HttpRequest, known: tuple[str, ...]) -> None:
    unknown = [(name, "unknown query parameter") for name in request.GET if name not in known]
    if unknown:
        raise InvalidFieldsError(unknown)


@csrf_exempt
@require_http_methods(["GET", "PUT"])
@api_view
@json_body_view
def escalation_document(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """The escalation document; PUT replaces it whole (all or none)."""
    from automation.incidents.services.escalation_config import apply_escalation, as_json, current_escalation

    if request.method == "GET":
        return JsonResponse(as_json(current_escalation()))
    if not request.body:
        raise BadRequest("the escalation document is required (PUT {} to clear it)")
    return JsonResponse(as_json(apply_escalation(body)))


@require_http_methods(["GET"])
@api_view
def oncall(request: HttpRequest) -> JsonResponse:
    """Who is on call (`schedule`: one schedule, else all) at `at` (default now)."""
    from automation.incidents.filters import parse_at
    from automation.incidents.serializers import on_call_json
    from automation.incidents.services.escalation_config import who_is_on_call

    _unknown_parameters(request, ONCALL_PARAMETERS)
    errors: list[tuple[str, str]] = []
    schedule = request.GET.get("schedule")
    if schedule is not None and not 0 < len(schedule) <= 100:
        errors.append(("schedule", "must be 1 to 100 characters"))
    try:
        moment = parse_at(request.GET.get("at"), time.time())
    except InvalidFieldsError as exc:
        errors += exc.errors
    if errors:
        raise InvalidFieldsError(errors)
    return JsonResponse(on_call_json(datetime.fromtimestamp(moment, UTC), who_is_on_call(schedule, moment)))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def acknowledge_link(request: HttpRequest, incident_id: str) -> HttpResponse:
    """The link of a page. GET checks the token and shows what it would do, with a button; only POST
    acknowledges the incident, as the person the page was sent to. A link scanner or a chat preview that
    fetches the link changes nothing. The token may come in the query (the link) or the form body."""
    from automation.incidents.ack_links import AckLinkRefused, verify
    from automation.incidents.serializers import incident_json
    from automation.incidents.services.queries import get_incident
    from automation.incidents.services.queries import incident_id as parse_id
    from automation.incidents.services.transitions import acknowledge

    if not settings.AUTOMATION_ACK_LINKS:
        return JsonResponse(
            {"error": "acknowledgement links are off: set AUTOMATION_ACK_SECRET (or AUTOMATION_SECRET_KEY)"},
            status=503,
        )
    try:
        _unknown_parameters(request, ("token",))
        number = parse_id(incident_id)
        now = time.time()
        token = request.POST.get("token") or request.GET.get("token")
        who = verify(token, number, now=now, secret=settings.AUTOMATION_ACK_SECRET)
        incident = get_incident(number)
        if request.method == "GET":
            page = _confirmation(incident_json(incident), who, str(token))
            return HttpResponse(page, content_type="text/html; charset=utf-8")
        # The signature names who acts: the audit log records that person, through the link.
        with acting_as(Actor(name=who, source=AuditSource.API, via="ack-link")):
            outcome = acknowledge(number, by=who, now=now, comment=LINK_COMMENT)
        return JsonResponse({**incident_json(get_incident(number)), "changed": outcome.changed})
    except InvalidFieldsError as exc:
        return JsonResponse({"error": "invalid input", "errors": exc.as_dicts()}, status=422)
    except AckLinkRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except NotFoundError as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    except StateError as exc:
        return JsonResponse({"error": str(exc)}, status=409)


def _confirmation(incident: dict[str, Any], who: str, token: str) -> str:
    e = html.escape
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Acknowledge incident</title></head><body>"
        f"<h1>Incident {incident['id']}: {e(incident['title'])}</h1>"
        f"<p>{e(incident['status'])}, severity {e(incident['severity'])}.</p>"
        "<form method='post'>"
        f"<input type='hidden' name='token' value='{e(token, quote=True)}'>"
        f"<button type='submit'>Acknowledge as {e(who)}</button></form></body></html>"
    )
