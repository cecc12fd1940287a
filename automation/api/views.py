"""API views: thin JSON adapters over the engine's services; errors name the field at fault."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from automation.access.choices import Permission, PrincipalKind
from automation.access.gate import principal_of, request_actor, undeclared
from automation.access.principal import acting_as, bound_actor
from automation.api.limits import MAX_BODY_BYTES, TEXT_LIMITS
from automation.api.openapi import openapi_document
from automation.api.serializers import run_json
from automation.errors import (
    ForbiddenError,
    IdempotencyConflict,
    InvalidFieldsError,
    NotFoundError,
    StateError,
)
from automation.runs.intake import MAX_IDEMPOTENCY_KEY_LENGTH, json_type, unstorable_strings

View = Callable[..., HttpResponse]


def _error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def api_view(view: View) -> View:
    """The mapping of typed errors to statuses. Authentication and the permission are the route's guard
    (automation/access/gate.py); a view no guard admitted is authenticated here and needs system:admin."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = undeclared(request)
        if refused is not None:
            return refused
        actor = bound_actor() or request_actor(request)
        try:
            # Path parameters reach the database as text: NUL and lone surrogates are refused here.
            bad = [error for name, value in kwargs.items() for error in unstorable_strings(value, name)]
            if bad:
                raise InvalidFieldsError(bad)
            with acting_as(actor):
                return view(request, *args, **kwargs)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        except InvalidFieldsError as exc:
            return _error(422, "invalid input", exc.as_dicts())
        except NotFoundError as exc:
            return _error(404, str(exc))
        except IdempotencyConflict as exc:
            return JsonResponse({"error": str(exc), "run_id": exc.run_id}, status=409)
        except StateError as exc:
            return _error(409, str(exc))
        except ForbiddenError as exc:
            return _error(403, str(exc))

    return wrapper


class BadRequest(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constants(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def read_body(request: HttpRequest) -> bytes:
    """The raw body; BadRequest (413) when it is larger than MAX_BODY_BYTES."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES}", status=413)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes", status=413) from None
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes", status=413)
    return raw


def _json_body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object in the body ({} when empty); too large, malformed or unstorable input is refused."""
    raw = read_body(request)
    if not raw:
        return {}
    try:
        body = json.loads(raw, parse_float=_finite_float, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed JSON body: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object")
    bad = unstorable_strings(body, "")
    if bad:
        raise InvalidFieldsError([(path.lstrip("."), reason) for path, reason in bad])
    return body


def json_body_view(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            body = {} if request.method in ("GET", "HEAD") else _json_body(request)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        return view(request, body, *args, **kwargs)

    return wrapper


def _text_fields(body: dict[str, Any], fields: dict[str, int]) -> dict[str, str]:
    """The body's optional text fields, each within its length; unknown fields are refused."""
    errors = [(field, "unknown field") for field in body if field not in fields]
    values: dict[str, str] = {}
    for field, limit in fields.items():
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append((field, f"must be a string, not {json_type(value)}"))
        elif len(value) > limit:
            errors.append((field, f"must be at most {limit} characters (got {len(value)})"))
        else:
            values[field] = value
    if errors:
        raise InvalidFieldsError(errors)
    return values


def _run_or_404(run_id: str) -> Any:
    from automation.models import WorkflowRun

    try:
        uuid.UUID(run_id)
    except ValueError:
        raise NotFoundError(f"run {run_id} does not exist") from None
    run = WorkflowRun.objects.select_related("workflow", "version").filter(id=run_id).first()
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist")
    return run


def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())


def healthz(request: HttpRequest) -> JsonResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
@api_view
@json_body_view
def workflows(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    from automation.config import current_config
    from automation.definitions.registry import register_definition
    from automation.definitions.schema import WorkflowDefinition
    from automation.models import Workflow

    if request.method == "GET":
        rows = Workflow.objects.values("name", "latest_version", "updated_at")
        return JsonResponse(
            {
                "workflows": [
                    {
                        "name": r["name"],
                        "version": r["latest_version"],
                        "updated_at": r["updated_at"].isoformat(),
                    }
                    for r in rows
                ]
            }
        )
    version = register_definition(WorkflowDefinition.from_document(body), current_config())
    return JsonResponse({"name": version.workflow.name, "version": version.version}, status=201)


@require_http_methods(["GET"])
@api_view
def workflow_detail(request: HttpRequest, name: str) -> JsonResponse:
    from automation.runs.dispatch import latest_version
    from automation.secrets import mask_definition

    version = latest_version(name)
    definition = mask_definition(version.definition)
    return JsonResponse({"name": name, "version": version.version, "definition": definition})


@require_http_methods(["POST"])
@api_view
@json_body_view
def workflow_runs(request: HttpRequest, body: dict[str, Any], name: str) -> JsonResponse:
    from automation.runs.dispatch import enqueue_run

    errors = []
    inputs = body.get("inputs", {})
    key = body.get("idempotency_key")
    if not isinstance(inputs, dict):
        errors.append(("inputs", f"must be an object, not {json_type(inputs)}"))
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH):
        given = f"{len(key)} characters" if isinstance(key, str) else json_type(key)
        bound = f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH}"
        errors.append(("idempotency_key", f"must be a string of {bound} characters, not {given}"))
    for field in body:
        if field not in ("inputs", "idempotency_key"):
            errors.append((field, "unknown field"))
    if errors:
        raise InvalidFieldsError(errors)
    run, created = enqueue_run(name, inputs, idempotency_key=key)
    return JsonResponse({"run_id": str(run.id), "status": run.status, "created": created}, status=202)


@require_http_methods(["GET"])
@api_view
def run_detail(request: HttpRequest, run_id: str) -> JsonResponse:
    from automation.access.services.audit import started_by

    run = _run_or_404(run_id)
    principal = principal_of(request)
    if principal is not None and not principal.may(Permission.RUNS_READ):
        # runs:read_own (a service): its own runs only; another's is as unknown as a missing one.
        if not started_by(run.id, principal.name):
            raise NotFoundError(f"run {run_id} does not exist")
    return JsonResponse(run_json(run))


@require_http_methods(["POST"])
@api_view
@json_body_view
def run_cancel(request: HttpRequest, body: dict[str, Any], run_id: str) -> JsonResponse:
    from automation.runs.control import cancel

    fields = _text_fields(body, {"reason": TEXT_LIMITS["reason"]})
    run = _run_or_404(run_id)
    cancel(run.id, reason=fields.get("reason") or "cancelled through the API")
    return JsonResponse(run_json(_run_or_404(run_id)), status=202)


@require_http_methods(["POST"])
@api_view
@json_body_view
def step_decision(
    request: HttpRequest, body: dict[str, Any], run_id: str, step: str, decision: str
) -> JsonResponse:
    from automation.runs.services import decide_approval

    if decision not in ("approve", "reject"):
        raise NotFoundError(f"no step action '{decision}' (approve or reject)")
    fields = _text_fields(body, {"by": TEXT_LIMITS["by"], "comment": TEXT_LIMITS["comment"]})
    by, identities = fields.get("by", ""), None
    principal = principal_of(request)
    if principal is not None and principal.kind != PrincipalKind.OPEN:
        # With authentication on, the approver is who the token says, never what the caller typed: a
        # `by` in the body is not used (the open development mode still takes it).
        by, identities = principal.name, principal.identities
    run = _run_or_404(run_id)
    decide_approval(
        run.id,
        step,
        approved=decision == "approve",
        by=by,
        comment=fields.get("comment", ""),
        identities=identities,
    )
    return JsonResponse(run_json(_run_or_404(run_id)))


@require_http_methods(["GET"])
@api_view
def engine(request: HttpRequest) -> JsonResponse:
    from automation.config import current_config

    return JsonResponse({"config": current_config().model_dump(mode="json"), "embedded": settings.EMBEDDED})


def metrics(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from automation.metrics import REGISTRY, refresh_from_database

    refresh_from_database()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
