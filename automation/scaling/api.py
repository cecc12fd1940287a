"""HTTP views of the scaling domain: targets (list, get, put, delete), each target's decision log, and the
capacity plan of all targets.
Thin: the definitions check the input, the services change the state (bearer token and errors as every
view: `automation.api.views.api_view`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.api.views import api_view, json_body_view
from automation.errors import InvalidFieldsError
from automation.scaling.limits import DEFAULT_DECISIONS, MAX_DECISIONS, MAX_LISTED


def _scaling_on() -> bool:
    from automation.config import current_config

    return bool(current_config().enable_predictive_scaling)


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def targets(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.models import ScalingTarget
    from automation.scaling.serializers import target_json
    from automation.scaling.services.targets import save_target

    on = _scaling_on()
    if request.method == "GET":
        rows = ScalingTarget.objects.order_by("name")[:MAX_LISTED]
        return JsonResponse({"enabled": on, "targets": [target_json(t, on) for t in rows]})
    return JsonResponse(target_json(save_target(body), on), status=201)


@csrf_exempt
@require_http_methods(["GET", "PUT", "DELETE"])
@api_view
@json_body_view
def target_detail(request: HttpRequest, body: dict[str, Any], name: str) -> HttpResponse:
    from automation.scaling.serializers import target_json
    from automation.scaling.services.targets import delete_target, get_target, save_target

    if request.method == "DELETE":
        delete_target(name)
        return HttpResponse(status=204)
    if request.method == "PUT":
        given = body.get("name", name)
        if given != name:
            raise InvalidFieldsError([("name", f"must be the name in the path ('{name[:200]}') or left out")])
        return JsonResponse(target_json(save_target({**body, "name": name}), _scaling_on()))
    return JsonResponse(target_json(get_target(name), _scaling_on()))


@require_http_methods(["GET"])
@api_view
def target_decisions(request: HttpRequest, name: str) -> JsonResponse:
    from automation.scaling.serializers import decisions_json
    from automation.scaling.services.targets import get_target

    text = request.GET.get("limit", str(DEFAULT_DECISIONS))
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_DECISIONS:
        raise InvalidFieldsError([("limit", f"must be a whole number from 1 to {MAX_DECISIONS}")])
    return JsonResponse(decisions_json(get_target(name), limit))


@require_http_methods(["GET"])
@api_view
def capacity(request: HttpRequest) -> JsonResponse:
    """`automation capacity plan --json` over HTTP: `?horizon=30d&level=0.95`."""
    from automation.forecasting.durations import parse_duration
    from automation.forecasting.errors import DurationError, ForecastingError
    from automation.scaling.capacity import CapacitySettings
    from automation.scaling.services.capacity import plan_targets

    try:
        horizon = parse_duration(request.GET.get("horizon", "30d"))
    except DurationError as exc:
        raise InvalidFieldsError([("horizon", exc.reason)]) from None
    try:
        level = float(request.GET.get("level", "0.95"))
    except ValueError:
        raise InvalidFieldsError([("level", "must be a number between 0.5 and 1")]) from None
    try:
        settings = CapacitySettings(horizon=horizon, level=level)
    except ForecastingError as exc:
        option = str(getattr(exc, "option", "horizon"))
        raise InvalidFieldsError([(option, str(getattr(exc, "reason", exc)))]) from None
    return JsonResponse({"targets": [plan.to_dict() for plan in plan_targets(settings)]})
