"""The OpenAPI 3.1 document of the HTTP API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from automation.definitions.schema import WorkflowDefinition

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
    "required": ["error"],
}
_STEP = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "action_type": {"type": "string"},
        "status": {"enum": ["pending", "running", "succeeded", "failed", "cancelled", "skipped"]},
        "attempts": {"type": "integer"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "output": {},
        "error": {"type": "string"},
    },
}
_RUN = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string", "format": "uuid"},
        "workflow": {"type": "string"},
        "version": {"type": "integer"},
        "status": _STEP["properties"]["status"],  # type: ignore[index]
        "inputs": {"type": "object"},
        "error": {"type": "string"},
        "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
    },
}


def _responses(ok: int, schema: str, *errors: int) -> dict[str, Any]:
    answers: dict[str, Any] = {
        str(ok): {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }
    descriptions = {
        400: "Malformed JSON",
        401: "Missing or invalid token",
        404: "Not found",
        409: "Not allowed in the current state",
        422: "Invalid field (each error names it)",
    }
    for code in errors:
        answers[str(code)] = {
            "description": descriptions[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return answers


def openapi_document() -> dict[str, Any]:
    run_id = {
        "name": "run_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    step = {"name": "step", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Automation engine API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Step": _STEP,
                "Run": _RUN,
                "WorkflowDefinition": WorkflowDefinition.model_json_schema(),
                "RunRequest": {
                    "type": "object",
                    "properties": {
                        "inputs": {"type": "object"},
                        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    "additionalProperties": False,
                },
                "RunAccepted": {
                    "type": "object",
                    "properties": {
                        "run_id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string"},
                        "created": {"type": "boolean"},
                    },
                    "required": ["run_id"],
                },
                "Registered": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
                },
                "Decision": {
                    "type": "object",
                    "properties": {"by": {"type": "string"}, "comment": {"type": "string"}},
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/workflows": {
                "post": {
                    "summary": "Register a workflow definition (a new version when it changed)",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/WorkflowDefinition"}
                            }
                        }
                    },
                    "responses": _responses(201, "Registered", 400, 401, 422),
                },
            },
            "/api/v1/workflows/{name}/runs": {
                "post": {
                    "summary": "Enqueue a run; the same idempotency_key returns the same run",
                    "parameters": [name],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}
                        }
                    },
                    "responses": _responses(202, "RunAccepted", 400, 401, 404, 422),
                },
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "summary": "A run's status and steps",
                    "parameters": [run_id],
                    "responses": _responses(200, "Run", 401, 404),
                },
            },
            "/api/v1/runs/{run_id}/cancel": {
                "post": {
                    "summary": "Cancel a run (queued steps revoked, the rest marked cancelled)",
                    "parameters": [run_id],
                    "responses": _responses(202, "Run", 400, 401, 404, 409),
                },
            },
            "/api/v1/runs/{run_id}/steps/{step}/approve": {
                "post": {
                    "summary": "Approve a waiting control.approval step",
                    "parameters": [run_id, step],
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decision"}}}
                    },
                    "responses": _responses(200, "Run", 400, 401, 404, 409),
                },
            },
            "/api/v1/runs/{run_id}/steps/{step}/reject": {
                "post": {
                    "summary": "Reject a waiting control.approval step",
                    "parameters": [run_id, step],
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decision"}}}
                    },
                    "responses": _responses(200, "Run", 400, 401, 404, 409),
                },
            },
        },
    }
