"""The endpoint × role matrix, built from the URL configuration itself: every route declares what each
method needs (or that it is public); each role is let through where its permissions say (never 401/403)
and refused elsewhere (403); without a token every guarded call is 401. A route added without a
declaration fails here."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from automation.access.choices import Role
from automation.access.roles import allows
from tests.api_server import ApiServer

pytestmark = pytest.mark.integration

METHODS = ("GET", "POST", "PUT", "DELETE")
#: Path parameters that name nothing stored: allowed calls answer 404/422, and change nothing.
PARAMETERS = {
    "run_id": str(uuid.UUID(int=1)),
    "silence_id": str(uuid.UUID(int=2)),
    "incident_id": "999999999",
    "letter_id": "999999999",
    "decision": "approve",
}
#: A body every mutating view refuses (an unknown field, or not what it parses), so that an allowed call
#: in the matrix stores nothing.
REFUSED_BODY = b'{"matrix_unknown_field": true}'
#: Public routes, said explicitly in urls.py.
PUBLIC = {"/healthz", "/metrics", "/api/v1/openapi.json", "/api/v1/incidents/{incident_id}/ack"}


def _routes() -> list[Any]:
    from automation.access.routes import api_routes

    return api_routes()


def _concrete(template: str) -> str:
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1 : end]
        path = path[:start] + PARAMETERS.get(name, f"matrix-missing-{name}") + path[end + 1 :]
    return path


def _call(server: ApiServer, method: str, path: str, secret: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    body = REFUSED_BODY if method in ("POST", "PUT") else None
    return httpx.request(method, server.url + path, content=body, headers=headers, timeout=30)


def test_every_route_declares_its_permission_or_that_it_is_public(engine: Any) -> None:
    routes = _routes()
    assert len(routes) > 40
    undeclared = [route.path for route in routes if not route.public and not route.methods]
    assert not undeclared, f"routes without a declared permission (guard(...) or public(...)): {undeclared}"
    assert {route.path for route in routes if route.public} == PUBLIC


def test_each_role_is_let_through_or_refused_as_its_permissions_say(
    server: ApiServer, role_tokens: dict[str, str]
) -> None:
    wrong: list[str] = []
    calls = 0
    for route in _routes():
        if route.public:
            continue
        path = _concrete(route.path)
        for method in route.methods:
            permission = " or ".join(route.needs(method))
            answer = _call(server, method, path, None)
            if answer.status_code != 401:
                wrong.append(f"{method} {route.path} without a token: {answer.status_code}")
            answer = _call(server, method, path, "atk_not-a-token")
            if answer.status_code != 401:
                wrong.append(f"{method} {route.path} with a bad token: {answer.status_code}")
            for role, secret in role_tokens.items():
                answer = _call(server, method, path, secret)
                calls += 1
                if any(allows([role], one) for one in route.needs(method)):
                    if answer.status_code in (401, 403) or answer.status_code >= 500:
                        wrong.append(f"{method} {route.path} as {role} ({permission}): {answer.status_code}")
                elif answer.status_code != 403:
                    wrong.append(f"{method} {route.path} as {role} lacks {permission}: {answer.status_code}")
        # A method the route does not declare is served to nobody but system:admin, and then the view
        # says it does not serve it: the declaration covers every method the view serves.
        for method in METHODS:
            if method in route.methods:
                continue
            answer = _call(server, method, path, role_tokens[Role.ADMIN])
            if answer.status_code != 405:
                wrong.append(f"{method} {route.path} is not declared but answers {answer.status_code}")
            answer = _call(server, method, path, role_tokens[Role.VIEWER])
            if answer.status_code != 403:
                wrong.append(f"{method} {route.path} (undeclared) as viewer: {answer.status_code}")
    assert calls > 250
    assert not wrong, "\n".join(wrong)


def test_public_routes_need_no_token_while_tokens_are_configured(server: ApiServer) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/metrics").status_code == 200
    assert httpx.get(f"{server.url}/api/v1/openapi.json").status_code == 200
    # The signed link checks its own signature: no bearer token, and a bad signature is its own refusal.
    answer = httpx.get(f"{server.url}/api/v1/incidents/1/ack", params={"token": "x"})
    assert answer.status_code not in (401, 403, 500) or "bearer" not in answer.text


def test_the_openapi_document_names_each_operations_permission(server: ApiServer) -> None:
    document = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    for route in _routes():
        if route.public:
            continue
        templates = [route.path]
        if route.path.endswith("/{decision}"):
            templates = [route.path.replace("{decision}", d) for d in ("approve", "reject")]
        for template in templates:
            for method in route.methods:
                operation = document["paths"][template][method.lower()]
                needed = route.needs(method)
                assert operation["x-permission"] == (needed[0] if len(needed) == 1 else list(needed))
                assert {"401", "403"} <= set(operation["responses"]), (template, method)


#: The promises each role makes, pinned on the routes that show them (the matrix above checks that the
#: server enforces the declarations; this checks that the declarations say what the roles promise).
ADMIN, OPERATOR, RESPONDER, VIEWER, SERVICE = Role.ALL
PROMISES = {
    ("POST", "/api/v1/workflows"): {ADMIN, OPERATOR},
    ("GET", "/api/v1/workflows"): {ADMIN, OPERATOR, RESPONDER, VIEWER},
    ("POST", "/api/v1/workflows/{name}/runs"): {ADMIN, OPERATOR, SERVICE},
    ("GET", "/api/v1/runs/{run_id}"): {ADMIN, OPERATOR, RESPONDER, VIEWER, SERVICE},
    ("POST", "/api/v1/runs/{run_id}/cancel"): {ADMIN, OPERATOR},
    ("POST", "/api/v1/runs/{run_id}/steps/{step}/{decision}"): {ADMIN, OPERATOR, RESPONDER},
    ("POST", "/api/v1/metrics"): {ADMIN, OPERATOR, SERVICE},
    ("POST", "/api/v1/events"): {ADMIN, OPERATOR, SERVICE},
    ("POST", "/api/v1/alert-rules"): {ADMIN, OPERATOR},
    ("POST", "/api/v1/silences"): {ADMIN, OPERATOR, RESPONDER},
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): {ADMIN, OPERATOR, RESPONDER},
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): {ADMIN, OPERATOR, RESPONDER},
    ("PUT", "/api/v1/scaling/targets/{name}"): {ADMIN, OPERATOR},
    ("POST", "/api/v1/schedules"): {ADMIN, OPERATOR},
    ("GET", "/api/v1/audit"): {ADMIN, OPERATOR},
    ("POST", "/api/v1/tokens"): {ADMIN},
    ("GET", "/api/v1/tokens"): {ADMIN},
}


def test_the_declarations_keep_each_roles_promises(engine: Any) -> None:
    routes = {route.path: route for route in _routes()}
    for (method, path), promised in PROMISES.items():
        needs = routes[path].needs(method)
        allowed = {role for role in Role.ALL if any(allows([role], one) for one in needs)}
        assert allowed == promised, (method, path, needs)
