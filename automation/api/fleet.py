"""API views of the fleet: worker nodes and the dead letters (messages set aside) — read only."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_http_methods

from automation.api.views import api_view
from automation.errors import InvalidFieldsError, NotFoundError


def _limit(request: HttpRequest, default: int = 50, most: int = 1000) -> int:
    text = request.GET.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise InvalidFieldsError([("limit", f"must be an integer from 1 to {most}")])
    return int(text)


@require_http_methods(["GET"])
@api_view
def workers(request: HttpRequest) -> JsonResponse:
    from automation.fleet.services import list_nodes

    return JsonResponse(
        {"workers": [{**node.__dict__, "seen_at": node.seen_at.isoformat()} for node in list_nodes()]}
    )


@require_http_methods(["GET"])
@api_view
def dead_letters(request: HttpRequest) -> JsonResponse:
    from automation.fleet.services import dead_letter_json, list_dead_letters

    letters = list_dead_letters(limit=_limit(request))
    return JsonResponse({"dead_letters": [dead_letter_json(letter) for letter in letters]})


@require_http_methods(["GET"])
@api_view
def dead_letter_detail(request: HttpRequest, letter_id: str) -> JsonResponse:
    from automation.fleet.services import dead_letter_json, get_dead_letter

    if not letter_id.isdigit() or len(letter_id) > 18:
        raise NotFoundError(f"dead letter {letter_id[:40]} does not exist")
    return JsonResponse(dead_letter_json(get_dead_letter(int(letter_id)), with_payload=True))
