"""The access domain's part of the OpenAPI document (merged by `automation.api.openapi`): tokens, the audit
log, and each operation's permission (`x-permission`) read from the routes' declarations."""

from __future__ import annotations

from typing import Any

from automation.access.choices import Role
from automation.access.filters import MAX_PAGE

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_MOMENT = {"type": ["string", "null"], "format": "date-time"}

ACCESS_SCHEMAS: dict[str, Any] = {
    "Token": {
        "type": "object",
        "description": "An API token as listed: never its secret",
        "properties": {
            "name": {"type": "string"},
            "user": {"type": ["string", "null"]},
            "roles": {"type": "array", "items": {"type": "string", "enum": list(Role.ALL)}},
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time"},
            "revoked_at": _MOMENT,
            "last_used_at": _MOMENT,
            "active": {"type": "boolean"},
        },
        "required": ["name", "user", "roles", "created_at", "expires_at", "revoked_at", "active"],
    },
    "TokenList": {
        "type": "object",
        "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
        "required": ["tokens"],
    },
    "CreatedToken": {
        "allOf": [_ref("Token")],
        "type": "object",
        "description": "The new token, with its secret: shown in this answer only",
        "properties": {"token": {"type": "string"}},
        "required": ["token"],
    },
    "TokenRequest": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
            "roles": {"type": "array", "items": {"type": "string", "enum": list(Role.ALL)}, "minItems": 1},
            "expires": {"type": "string", "description": "A lifetime: 90d, 12h, 2w", "examples": ["90d"]},
            "user": {"type": "string", "description": "The user it acts as; none: a service token"},
        },
        "required": ["name", "roles", "expires"],
        "additionalProperties": False,
    },
    "AuditEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "source": {"type": "string", "enum": ["api", "cli", "python", "admin"]},
            "via": {"type": "string"},
            "action": {"type": "string"},
            "object_type": {"type": "string"},
            "object_id": {"type": "string"},
            "before_digest": {"type": "string"},
            "after_digest": {"type": "string"},
            "summary": {"type": "object"},
        },
        "required": ["id", "at", "actor", "source", "action", "object_type", "object_id"],
    },
    "AuditPage": {
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": _ref("AuditEntry"), "maxItems": MAX_PAGE},
            "next_before": {"type": ["integer", "null"], "description": "Pass as `before` for the next page"},
        },
        "required": ["entries", "next_before"],
    },
}


def access_paths(responses: Any, body: Any, errors_only: Any) -> dict[str, Any]:
    """The token and audit routes of urls.py (views in automation/access/api.py)."""

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    return {
        "/api/v1/tokens": {
            "get": {
                "operationId": "listTokens",
                "summary": "API tokens (never their secrets)",
                "responses": responses(200, "TokenList", 401, 403),
            },
            "post": {
                "operationId": "createToken",
                "summary": "Create a token with roles and a lifetime; its secret is in this answer only",
                "requestBody": body("TokenRequest", required=True),
                "responses": responses(201, "CreatedToken", 400, 401, 403, 409, 413, 422),
            },
        },
        "/api/v1/tokens/{name}": {
            "delete": {
                "operationId": "revokeToken",
                "summary": "Revoke a token: it stops working at once",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": responses(200, "Token", 401, 403, 404, 409, 422),
            }
        },
        "/api/v1/audit": {
            "get": {
                "operationId": "listAudit",
                "summary": "The audit log, newest first: who changed what, from where, when",
                "parameters": [
                    query("since", {"type": "string"}, "A duration (1h, 7d) or an ISO 8601 time"),
                    query("actor", {"type": "string"}, "Only this actor's entries"),
                    query("object_type", {"type": "string"}, "workflow, run, alert_rule, token..."),
                    query("object_id", {"type": "string"}, "Only this object's entries"),
                    query("before", {"type": "integer", "minimum": 0}, "Entries older than this id"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "Page size"),
                ],
                "responses": responses(200, "AuditPage", 401, 403, 422),
            }
        },
    }


def declare_permissions(paths: dict[str, Any], errors_only: Any) -> None:
    """Each guarded operation gets its permission (`x-permission`) and its 401 and 403 answers; a public
    route's operations need no token (`security: []`). Read from the URL configuration."""
    from automation.access.routes import api_routes

    for route in api_routes():
        templates = [route.path]
        if route.path.endswith("/{decision}"):
            templates = [route.path.replace("{decision}", d) for d in ("approve", "reject")]
        for template in templates:
            operations = paths.get(template, {})
            if route.public:
                for operation in operations.values():
                    operation["security"] = []
                continue
            for method in route.methods:
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                needed = route.needs(method)
                operation["x-permission"] = needed[0] if len(needed) == 1 else list(needed)
                for code, answer in errors_only(401, 403).items():
                    operation["responses"].setdefault(code, answer)
