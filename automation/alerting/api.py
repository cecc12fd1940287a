"""HTTP views of the alerting domain: metrics in, alerts in (Alertmanager webhook, events), rules,
silences, the alerting document, and the notification log ("why was I (not) paged?"). Thin: the payloads
are checked by `automation.alerting.payloads`, the state changed by the services."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.alerting.limits import MAX_LISTED
from automation.api.views import BadRequest, api_view, json_body_view, read_body
from automation.errors import InvalidFieldsError, NotFoundError


@csrf_exempt
@require_http_methods(["POST"])
@api_view
def metrics_push(request: HttpRequest) -> HttpResponse:
    """Samples in the Prometheus text exposition format, or JSON ({"samples": [...]})."""
    from automation.alerting.exposition import parse_pushed
    from automation.alerting.services.samples import ingest

    samples = parse_pushed(read_body(request), request.content_type or "", now=time.time())
    return JsonResponse({"accepted": ingest(samples)}, status=202)


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def alertmanager_webhook(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """Alertmanager's webhook payload (version 4), as it sends it."""
    from automation.alerting.payloads import webhook_alerts
    from automation.alerting.services.intake import receive

    now = time.time()
    receipts = [receive(alert, now) for alert in webhook_alerts(body, now)]
    return JsonResponse({"received": len(receipts), "alerts": [asdict(r) for r in receipts]})


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def events(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """One event from any tool: labels, annotations, status, optional starts_at/ends_at/fingerprint."""
    from automation.alerting.payloads import event_alert
    from automation.alerting.services.intake import receive

    now = time.time()
    return JsonResponse(asdict(receive(event_alert(body, now), now)), status=202)


@require_http_methods(["GET"])
@api_view
def alerts(request: HttpRequest) -> JsonResponse:
    from automation.alerting.choices import AlertState
    from automation.alerting.serializers import alert_json
    from automation.models import Alert

    state = request.GET.get("state")
    rows = Alert.objects.order_by("-updated_at")
    if state is not None:
        if state not in AlertState.ALL:
            raise InvalidFieldsError([("state", f"must be one of {', '.join(AlertState.ALL)}")])
        rows = rows.filter(state=state)
    return JsonResponse({"alerts": [alert_json(a) for a in rows[:MAX_LISTED]]})


@require_http_methods(["GET"])
@api_view
def alert_log(request: HttpRequest, fingerprint: str) -> JsonResponse:
    from automation.alerting.serializers import alert_log_json
    from automation.models import Alert

    alert = Alert.objects.filter(fingerprint=fingerprint).first()
    if alert is None:
        raise NotFoundError(f"alert {fingerprint[:40]} does not exist")
    return JsonResponse(alert_log_json(alert))


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def rules(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.alerting.serializers import rule_document_json
    from automation.alerting.services.rules import save_rule
    from automation.models import AlertRule

    if request.method == "GET":
        rows = AlertRule.objects.order_by("name")
        return JsonResponse({"rules": [rule_document_json(r.document) for r in rows]})
    return JsonResponse(rule_document_json(save_rule(body).document), status=201)


@csrf_exempt
@require_http_methods(["GET", "DELETE"])
@api_view
def rule_detail(request: HttpRequest, name: str) -> HttpResponse:
    from automation.alerting.serializers import rule_document_json
    from automation.alerting.services.rules import delete_rule
    from automation.models import AlertRule

    if request.method == "DELETE":
        delete_rule(name)
        return HttpResponse(status=204)
    rule = AlertRule.objects.filter(name=name).first()
    if rule is None:
        raise NotFoundError(f"alert rule '{name[:200]}' does not exist")
    return JsonResponse(rule_document_json(rule.document))


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def silences(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.alerting.payloads import silence_request
    from automation.alerting.serializers import silence_json
    from automation.alerting.services.silences import create_silence
    from automation.models import Silence

    now = time.time()
    if request.method == "GET":
        return JsonResponse({"silences": [silence_json(s, now) for s in Silence.objects.all()[:MAX_LISTED]]})
    silence = create_silence(**asdict(silence_request(body, now)), now=now)
    return JsonResponse(silence_json(silence, now), status=201)


@csrf_exempt
@require_http_methods(["DELETE"])
@api_view
def silence_detail(request: HttpRequest, silence_id: str) -> JsonResponse:
    from automation.alerting.serializers import silence_json
    from automation.alerting.services.silences import expire_silence

    try:
        uuid.UUID(silence_id)
    except ValueError:
        raise NotFoundError(f"silence {silence_id[:40]} does not exist") from None
    now = time.time()
    return JsonResponse(silence_json(expire_silence(silence_id, now), now))


@csrf_exempt
@require_http_methods(["GET", "PUT"])
@api_view
@json_body_view
def alerting_document(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.alerting.serializers import alerting_document_json
    from automation.alerting.services.config import current_document
    from automation.alerting.services.pipeline import apply_routing

    if request.method == "GET":
        document = current_document()
    elif not request.body:
        raise BadRequest("the alerting document is required (PUT {} to go back to the defaults)")
    else:
        document, _ = apply_routing(body, time.time())
    return JsonResponse(alerting_document_json(document))
