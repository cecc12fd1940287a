"""HTTP views of workflow schedules: list, create, get, replace, delete (bearer token and errors as every
view: `automation.api.views.api_view`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from automation.api.views import api_view, json_body_view
from automation.errors import InvalidFieldsError


@csrf_exempt
@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def schedules(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.timetables.serializers import schedule_json
    from automation.timetables.services import get_schedule, list_schedules, save_schedule

    if request.method == "GET":
        return JsonResponse({"schedules": [schedule_json(row) for row in list_schedules()]})
    saved = save_schedule(body)
    return JsonResponse(schedule_json(get_schedule(saved.name)), status=201)


@csrf_exempt
@require_http_methods(["GET", "PUT", "DELETE"])
@api_view
@json_body_view
def schedule_detail(request: HttpRequest, body: dict[str, Any], name: str) -> HttpResponse:
    from automation.timetables.serializers import schedule_json
    from automation.timetables.services import delete_schedule, get_schedule, save_schedule

    if request.method == "DELETE":
        delete_schedule(name)
        return HttpResponse(status=204)
    if request.method == "PUT":
        given = body.get("name", name)
        if given != name:
            raise InvalidFieldsError([("name", f"must be the name in the path ('{name[:200]}') or left out")])
        save_schedule({**body, "name": name})
    return JsonResponse(schedule_json(get_schedule(name)))
