"""JSON answers for unknown routes and unhandled errors (never an HTML page, never a traceback)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse


def bad_request(request: HttpRequest, exception: Any = None) -> JsonResponse:
    return JsonResponse({"error": "bad request"}, status=400)


def not_found(request: HttpRequest, exception: Any = None) -> JsonResponse:
    return JsonResponse({"error": f"no route for {request.path}"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "internal error; see the server log"}, status=500)
