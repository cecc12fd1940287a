"""The OpenAPI 3.1 document of the HTTP API, served at /api/v1/openapi.json (every route of urls.py)."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from automation.api.limits import MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_INPUTS_BYTES, TEXT_LIMITS
from automation.choices import RunStatus
from automation.definitions.schema import WorkflowDefinition

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATUS = {"type": "string", "enum": [value for value, _ in RunStatus.CHOICES]}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "One entry per field at fault",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                    "required": ["field", "reason"],
                },
            },
        },
        "required": ["error"],
    },
    "Conflict": {
        "type": "object",
        "description": "The idempotency key names a run asked for with other inputs: `run_id` is that run",
        "properties": {"error": {"type": "string"}, "run_id": {"type": "string", "format": "uuid"}},
        "required": ["error", "run_id"],
    },
    "Step": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "action_type": {"type": "string"},
            "status": _STATUS,
            "attempts": {"type": "integer", "minimum": 0},
            "started_at": _TIME,
            "finished_at": _TIME,
            "output": {"description": "The action's output (secrets masked); null until it succeeds"},
            "error": {"type": "string"},
            "approval": {
                "type": "object",
                "description": "control.approval steps only: the request and, once given, the decision",
            },
        },
        "required": ["name", "action_type", "status", "attempts", "started_at", "finished_at", "error"],
    },
    "Run": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string", "format": "uuid"},
            "workflow": {"type": "string"},
            "version": {"type": "integer"},
            "status": _STATUS,
            "queue": {"type": "string"},
            "idempotency_key": {"type": ["string", "null"]},
            "inputs": {"type": "object", "description": "Secret inputs masked"},
            "error": {"type": "string"},
            "created_at": _TIME,
            "started_at": _TIME,
            "finished_at": _TIME,
            "steps": {"type": "array", "items": _ref("Step")},
        },
        "required": ["run_id", "workflow", "version", "status", "inputs", "error", "steps"],
    },
    "RunRequest": {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "description": f"Input names to values; at most {MAX_INPUTS_BYTES} bytes as JSON",
            },
            "idempotency_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                "description": "The same key and inputs give the same run; other inputs answer 409",
            },
        },
        "additionalProperties": False,
    },
    "RunAccepted": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string", "format": "uuid"},
            "status": _STATUS,
            "created": {"type": "boolean", "description": "false: the idempotency key's existing run"},
        },
        "required": ["run_id", "status", "created"],
    },
    "Registered": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "version": {"type": "integer", "minimum": 1}},
        "required": ["name", "version"],
    },
    "WorkflowList": {
        "type": "object",
        "properties": {
            "workflows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "integer"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                    "required": ["name", "version", "updated_at"],
                },
            }
        },
        "required": ["workflows"],
    },
    "WorkflowDetail": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "definition": {"type": "object", "description": "The stored, normalized definition"},
        },
        "required": ["name", "version", "definition"],
    },
    "CancelRequest": {
        "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": TEXT_LIMITS["reason"]}},
        "additionalProperties": False,
    },
    "Decision": {
        "type": "object",
        "properties": {
            "by": {"type": "string", "maxLength": TEXT_LIMITS["by"]},
            "comment": {"type": "string", "maxLength": TEXT_LIMITS["comment"]},
        },
        "additionalProperties": False,
    },
    "Engine": {
        "type": "object",
        "properties": {"config": {"type": "object"}, "embedded": {"type": "boolean"}},
        "required": ["config", "embedded"],
    },
    "WorkerList": {
        "type": "object",
        "properties": {
            "workers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "nodename": {"type": "string"},
                        "hostname": {"type": "string"},
                        "state": {"type": "string", "enum": ["alive", "stopped", "dead", "recovered"]},
                        "seen_at": {"type": "string", "format": "date-time"},
                        "executing": {"type": "integer", "minimum": 0},
                    },
                    "required": ["id", "nodename", "hostname", "state", "seen_at", "executing"],
                },
            }
        },
        "required": ["workers"],
    },
    "DeadLetter": {
        "type": "object",
        "description": "A message no worker could run, set aside; `payload` (detail only) has secrets masked",
        "properties": {
            "id": {"type": "integer"},
            "queue": {"type": "string"},
            "reason": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "received_at": {"type": "string", "format": "date-time"},
            "worker": {"type": "string"},
            "payload": {},
        },
        "required": ["id", "queue", "reason", "size", "received_at", "worker"],
    },
    "DeadLetterList": {
        "type": "object",
        "properties": {"dead_letters": {"type": "array", "items": _ref("DeadLetter")}},
        "required": ["dead_letters"],
    },
    "Health": {
        "type": "object",
        "properties": {"status": {"const": "ok"}},
        "required": ["status"],
    },
}

_ERRORS = {
    400: "Malformed JSON, or a body that is not an object",
    401: "Missing or invalid bearer token (when tokens are configured)",
    403: "The caller is not one of the step's approvers",
    404: "No such workflow, run, step or route",
    409: "Not allowed in the current state",
    413: f"Request body larger than {MAX_BODY_BYTES} bytes",
    422: "Invalid field: each entry of `errors` names one",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(
    ok: int, schema: str, *errors: int, conflict: str = "Error", links: dict[str, Any] | None = None
) -> dict[str, Any]:
    answers: dict[str, Any] = {str(ok): {"description": "OK", "content": _json(_ref(schema))}}
    if links:
        answers[str(ok)]["links"] = links
    for code in errors:
        body = conflict if code == 409 else "Error"
        answers[str(code)] = {"description": _ERRORS[code], "content": _json(_ref(body))}
    return answers


def _body(schema: str, *, required: bool) -> dict[str, Any]:
    return {"required": required, "content": _json(_ref(schema))}


def _workflow_schemas() -> dict[str, Any]:
    """The definition schema and the models it uses, all under components/schemas (pydantic puts the
    nested ones in a local `$defs`, which no reference outside it can reach)."""
    schema = deepcopy(WorkflowDefinition.model_json_schema(ref_template=_REF))
    nested: dict[str, Any] = schema.pop("$defs", {})
    return {"WorkflowDefinition": schema, **nested}


def _links(targets: dict[str, dict[str, str]]) -> dict[str, Any]:
    """OpenAPI links: which later operations take their parameters from this answer's body."""
    return {
        operation: {"operationId": operation, "parameters": parameters}
        for operation, parameters in targets.items()
    }


_FROM_REGISTERED = _links(
    {"getWorkflow": {"name": "$response.body#/name"}, "enqueueRun": {"name": "$response.body#/name"}}
)
_FROM_ACCEPTED = _links(
    {
        operation: {"run_id": "$response.body#/run_id"}
        for operation in ("getRun", "cancelRun", "approveStep", "rejectStep")
    }
)


def openapi_document() -> dict[str, Any]:
    run_id = {
        "name": "run_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    step = {"name": "step", "in": "path", "required": True, "schema": {"type": "string"}}
    public: list[dict[str, Any]] = []  # no token needed
    decision = {
        "parameters": [run_id, step],
        "requestBody": _body("Decision", required=False),
        "responses": _responses(200, "Run", 400, 401, 403, 404, 409, 413, 422),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Automation engine API",
            "version": "1",
            "description": "Enqueue and steer workflow runs; register workflow definitions.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**_SCHEMAS, **_workflow_schemas()},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the API answers and reaches its database",
                    "security": public,
                    "responses": _responses(200, "Health"),
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "security": public,
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": public,
                    "responses": {"200": {"description": "OK", "content": _json({"type": "object"})}},
                }
            },
            "/api/v1/engine": {
                "get": {
                    "operationId": "getEngine",
                    "summary": "The engine configuration every worker reads",
                    "responses": _responses(200, "Engine", 401),
                }
            },
            "/api/v1/workflows": {
                "get": {
                    "operationId": "listWorkflows",
                    "summary": "Registered workflows and their latest versions",
                    "responses": _responses(200, "WorkflowList", 401),
                },
                "post": {
                    "operationId": "registerWorkflow",
                    "summary": "Register a workflow definition (a new version when it changed)",
                    "requestBody": _body("WorkflowDefinition", required=True),
                    "responses": _responses(201, "Registered", 400, 401, 413, 422, links=_FROM_REGISTERED),
                },
            },
            "/api/v1/workflows/{name}": {
                "get": {
                    "operationId": "getWorkflow",
                    "summary": "A workflow's latest version and its stored definition (secrets masked)",
                    "parameters": [name],
                    "responses": _responses(200, "WorkflowDetail", 401, 404, 422),
                }
            },
            "/api/v1/workflows/{name}/runs": {
                "post": {
                    "operationId": "enqueueRun",
                    "summary": "Enqueue a run; the same idempotency key and inputs return the same run",
                    "parameters": [name],
                    "requestBody": _body("RunRequest", required=False),
                    "responses": _responses(
                        202,
                        "RunAccepted",
                        400,
                        401,
                        404,
                        409,
                        413,
                        422,
                        conflict="Conflict",
                        links=_FROM_ACCEPTED,
                    ),
                }
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "operationId": "getRun",
                    "summary": "A run's status and steps",
                    "parameters": [run_id],
                    "responses": _responses(200, "Run", 401, 404, 422),
                }
            },
            "/api/v1/runs/{run_id}/cancel": {
                "post": {
                    "operationId": "cancelRun",
                    "summary": "Cancel a run (queued steps revoked, the rest marked cancelled)",
                    "parameters": [run_id],
                    "requestBody": _body("CancelRequest", required=False),
                    "responses": _responses(202, "Run", 400, 401, 404, 409, 413, 422),
                }
            },
            "/api/v1/workers": {
                "get": {
                    "operationId": "listWorkers",
                    "summary": "Worker nodes by their heartbeat: alive, stopped, dead or recovered",
                    "responses": _responses(200, "WorkerList", 401),
                }
            },
            "/api/v1/dead-letters": {
                "get": {
                    "operationId": "listDeadLetters",
                    "summary": "Messages no worker could run, newest first (without payloads)",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                        }
                    ],
                    "responses": _responses(200, "DeadLetterList", 401, 422),
                }
            },
            "/api/v1/dead-letters/{letter_id}": {
                "get": {
                    "operationId": "getDeadLetter",
                    "summary": "One dead letter with its payload (values under sensitive keys masked)",
                    "parameters": [
                        {"name": "letter_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": _responses(200, "DeadLetter", 401, 404),
                }
            },
            "/api/v1/runs/{run_id}/steps/{step}/approve": {
                "post": {
                    "operationId": "approveStep",
                    "summary": "Approve a control.approval step that asked for a decision",
                    **decision,
                }
            },
            "/api/v1/runs/{run_id}/steps/{step}/reject": {
                "post": {
                    "operationId": "rejectStep",
                    "summary": "Reject a control.approval step that asked for a decision",
                    **decision,
                }
            },
        },
    }
