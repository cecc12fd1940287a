"""HTTP views of the alerting domain: metrics in, alerts in (Alertmanager webhook, events), rules,
silences, the alerting document, and the notification log ("why was I (not) paged?")."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.api.limits import MAX_BODY_BYTES
from automation.api.views import BadRequest, _error, api_view, json_body_view
from automation.errors import InvalidFieldsError, NotFoundError
from automation.secrets import mask

FINGERPRINT_MAX = 40


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidFieldsError([(field, "must be an RFC 3339 time or epoch seconds")])
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFieldsError([(field, f"'{value[:40]}' is not an RFC 3339 time")]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _raw_body(request: HttpRequest) -> bytes:
    length = (
        int(request.META.get("CONTENT_LENGTH") or 0)
        if str(request.META.get("CONTENT_LENGTH") or "0").isdigit()
        else 0
    )
    if length > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES}", status=413)
    return request.body


def alert_json(alert: Any) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "name": alert.name,
        "origin": alert.origin,
        "state": alert.state,
        "severity": alert.severity,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "value": alert.value,
        "active_since": _iso(alert.active_since),
        "fired_at": _iso(alert.fired_at),
        "resolved_at": _iso(alert.resolved_at),
        "flapping": alert.flapping,
        "last_run_id": str(alert.last_run_id) if alert.last_run_id else None,
    }


def log_json(entry: Any) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "decision": entry.decision,
        "receiver": entry.receiver,
        "run_id": str(entry.run_id) if entry.run_id else None,
        "detail": entry.detail,
    }


def silence_json(silence: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "id": str(silence.id),
        "matchers": silence.matchers,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "state": "expired"
        if silence.ends_at.timestamp() <= now
        else ("pending" if silence.starts_at.timestamp() > now else "active"),
    }


@csrf_exempt
@require_http_methods(["POST"])
@api_view
def metrics_push(request: HttpRequest) -> HttpResponse:
    """Samples in the Prometheus text exposition format, or JSON ({"samples": [...]})."""
    from automation.alerting.exposition import parse_pushed
    from automation.alerting.services.samples import ingest

    try:
        raw = _raw_body(request)
    except BadRequest as exc:
        return _error(exc.status, str(exc))
    stored = ingest(parse_pushed(raw, request.content_type or "", now=time.time()))
    return JsonResponse({"accepted": stored}, status=202)


def _received_alert(item: Any, where: str, origin: str, default_start: datetime) -> Any:
    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert

    if not isinstance(item, dict):
        raise InvalidFieldsError([(where, "must be an object")])
    errors: list[tuple[str, str]] = []
    labels, annotations = item.get("labels", {}), item.get("annotations", {})
    for field, value in (("labels", labels), ("annotations", annotations)):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            errors.append((f"{where}.{field}", "must be an object of strings"))
    if not errors and not labels:
        errors.append((f"{where}.labels", "at least one label is required"))
    status = item.get("status", "firing")
    if status not in ("firing", "resolved"):
        errors.append((f"{where}.status", "must be 'firing' or 'resolved'"))
    fingerprint = item.get("fingerprint")
    if fingerprint is not None and (
        not isinstance(fingerprint, str) or not 1 <= len(fingerprint) <= FINGERPRINT_MAX
    ):
        errors.append((f"{where}.fingerprint", f"must be a string of 1 to {FINGERPRINT_MAX} characters"))
    if errors:
        raise InvalidFieldsError(errors)
    starts = item.get("startsAt", item.get("starts_at"))
    ends = item.get("endsAt", item.get("ends_at"))
    starts_at = _time(starts, f"{where}.startsAt") if starts else default_start
    ends_at = _time(ends, f"{where}.endsAt") if ends and not str(ends).startswith("0001-") else None
    firing = status == "firing" and (ends_at is None or ends_at.timestamp() > time.time())
    return ReceivedAlert(
        fingerprint=fingerprint or digest(origin, labels),
        origin=origin,
        labels=labels,
        annotations=annotations,
        firing=firing,
        starts_at=starts_at,
        ends_at=ends_at,
    )


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def alertmanager_webhook(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """Alertmanager's webhook payload (version 4), as it sends it."""
    from automation.alerting.choices import AlertOrigin
    from automation.alerting.services.intake import receive

    if str(body.get("version", "4")) != "4":
        raise InvalidFieldsError(
            [("version", f"unsupported webhook version '{body.get('version')}' (expected 4)")]
        )
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise InvalidFieldsError([("alerts", "must be a non-empty list")])
    now = datetime.now(tz=UTC)
    received = [
        _received_alert(a, f"alerts[{i}]", AlertOrigin.ALERTMANAGER, now) for i, a in enumerate(alerts)
    ]
    receipts = [receive(r, now.timestamp()) for r in received]
    return JsonResponse({"received": len(receipts), "alerts": [r.__dict__ for r in receipts]})


@csrf_exempt
@require_http_methods(["POST"])
@api_view
@json_body_view
def events(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    """One event from any tool: labels, annotations, status, optional starts_at/ends_at/fingerprint."""
    from automation.alerting.choices import AlertOrigin
    from automation.alerting.services.intake import receive

    unknown = set(body) - {"labels", "annotations", "status", "starts_at", "ends_at", "fingerprint"}
    if unknown:
        raise InvalidFieldsError([(name, "unknown field") for name in sorted(unknown)])
    now = datetime.now(tz=UTC)
    receipt = receive(_received_alert(body, "event", AlertOrigin.EVENT, now), now.timestamp())
    return JsonResponse(receipt.__dict__, status=202)


@require_http_methods(["GET"])
@api_view
def alerts(request: HttpRequest) -> JsonResponse:
    from automation.alerting.choices import AlertState
    from automation.models import Alert

    state = request.GET.get("state")
    rows = Alert.objects.order_by("-updated_at")
    if state is not None:
        if state not in AlertState.ALL:
            raise InvalidFieldsError([("state", f"must be one of {', '.join(AlertState.ALL)}")])
        rows = rows.filter(state=state)
    return JsonResponse({"alerts": [alert_json(a) for a in rows[:1000]]})


@require_http_methods(["GET"])
@api_view
def alert_log(request: HttpRequest, fingerprint: str) -> JsonResponse:
    from automation.models import Alert

    alert = Alert.objects.filter(fingerprint=fingerprint[:FINGERPRINT_MAX]).first()
    if alert is None:
        raise NotFoundError(f"alert {fingerprint[:40]} does not exist")
    return JsonResponse({"alert": alert_json(alert), "log": [log_json(e) for e in alert.log.all()]})


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def rules(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.alerting.services.rules import save_rule
    from automation.models import AlertRule

    if request.method == "GET":
        return JsonResponse({"rules": [mask(r.document) for r in AlertRule.objects.order_by("name")]})
    rule = save_rule(body)
    return JsonResponse(mask(rule.document), status=201)


@csrf_exempt
@require_http_methods(["GET", "DELETE"])
@api_view
def rule_detail(request: HttpRequest, name: str) -> HttpResponse:
    from automation.alerting.services.rules import delete_rule
    from automation.models import AlertRule

    if request.method == "DELETE":
        delete_rule(name)
        return HttpResponse(status=204)
    rule = AlertRule.objects.filter(name=name).first()
    if rule is None:
        raise NotFoundError(f"alert rule '{name[:200]}' does not exist")
    return JsonResponse(mask(rule.document))


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def silences(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.alerting.services.silences import create_silence
    from automation.models import Silence

    if request.method == "GET":
        return JsonResponse({"silences": [silence_json(s) for s in Silence.objects.all()[:1000]]})
    unknown = set(body) - {"matchers", "starts_at", "ends_at", "created_by", "comment"}
    if unknown:
        raise InvalidFieldsError([(name, "unknown field") for name in sorted(unknown)])
    now = time.time()
    starts = _time(body["starts_at"], "starts_at").timestamp() if body.get("starts_at") is not None else now
    if body.get("ends_at") is None:
        raise InvalidFieldsError([("ends_at", "is required")])
    silence = create_silence(
        matchers=body.get("matchers"),
        starts_at=starts,
        ends_at=_time(body["ends_at"], "ends_at").timestamp(),
        created_by=body.get("created_by", ""),
        comment=body.get("comment", ""),
        now=now,
    )
    return JsonResponse(silence_json(silence), status=201)


@csrf_exempt
@require_http_methods(["DELETE"])
@api_view
def silence_detail(request: HttpRequest, silence_id: str) -> JsonResponse:
    from automation.alerting.services.silences import expire_silence

    try:
        uuid.UUID(silence_id)
    except ValueError:
        raise NotFoundError(f"silence {silence_id[:40]} does not exist") from None
    return JsonResponse(silence_json(expire_silence(silence_id, time.time())))


@csrf_exempt
@require_http_methods(["GET", "PUT"])
@api_view
@json_body_view
def alerting_document(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.alerting.services.config import apply_document, current_document

    document = current_document() if request.method == "GET" else apply_document(body)
    return JsonResponse(mask(document.model_dump(mode="json", by_alias=True, exclude_none=True)))
