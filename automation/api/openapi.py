"""The OpenAPI 3.1 document of the HTTP API, served at /api/v1/openapi.json (every route of urls.py)."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from pydantic import BaseModel

from automation.access.openapi import ACCESS_SCHEMAS, access_paths, declare_permissions
from automation.alerting.choices import AlertOrigin, AlertState, Decision
from automation.alerting.definitions import MATCHERS_SCHEMA, AlertingDocument, RuleDefinition
from automation.alerting.exposition import MAX_LABELS as MAX_SAMPLE_LABELS
from automation.alerting.exposition import MAX_SAMPLES, METRIC_NAME
from automation.alerting.limits import (
    LATEST_EPOCH,
    MAX_COMMENT,
    MAX_CREATED_BY,
    MAX_LABEL_NAME,
    MAX_LABELS,
    MAX_LISTED,
    MAX_LOG_ENTRIES,
    MAX_WEBHOOK_ALERTS,
)
from automation.alerting.payloads import FINGERPRINT, FINGERPRINT_TEXT, STATUSES
from automation.api.limits import MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_INPUTS_BYTES, TEXT_LIMITS
from automation.choices import RunStatus
from automation.definitions.schema import WorkflowDefinition
from automation.incidents.openapi import INCIDENTS_MODELS, INCIDENTS_SCHEMAS, incidents_paths
from automation.scaling.openapi import SCALING_MODELS, SCALING_SCHEMAS, scaling_paths
from automation.timetables.openapi import TIMETABLES_MODELS, TIMETABLES_SCHEMAS, timetables_paths

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
    400: "Malformed JSON, a body that is not an object, or a required body missing",
    401: "Missing or invalid bearer token (when tokens are configured)",
    403: "The token's roles lack the operation's permission (x-permission), or the caller is not one of "
    "the step's approvers",
    404: "No such workflow, run, step, alert, alert rule, silence, incident or route",
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


def _model_schemas(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """A model's schema and the models it uses, all under components/schemas (pydantic puts the nested
    ones in a local `$defs`, which no reference outside it can reach)."""
    schema = deepcopy(model.model_json_schema(ref_template=_REF))
    nested: dict[str, Any] = schema.pop("$defs", {})
    return {name: schema, **nested}


def _component_schemas() -> dict[str, Any]:
    merged: dict[str, Any] = {
        **_SCHEMAS,
        **ALERTING_SCHEMAS,
        **SCALING_SCHEMAS,
        **INCIDENTS_SCHEMAS,
        **TIMETABLES_SCHEMAS,
        **ACCESS_SCHEMAS,
    }
    for name, model in (
        ("WorkflowDefinition", WorkflowDefinition),
        ("AlertRule", RuleDefinition),
        ("AlertingDocument", AlertingDocument),
        *SCALING_MODELS,
        *INCIDENTS_MODELS,
        *TIMETABLES_MODELS,
    ):
        for key, schema in _model_schemas(name, model).items():
            if merged.setdefault(key, schema) != schema:
                raise RuntimeError(f"two schemas named {key}: one would hide the other")
    return merged


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
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Automation engine API",
            "version": "1",
            "description": "Enqueue and steer workflow runs; register workflow definitions; push metrics, "
            "receive alerts (Alertmanager's webhook, events), manage alert rules, silences and the "
            "alerting document, and read why an alert was (not) notified.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`automation tokens create`, `POST /api/v1/tokens`) or a "
                    "bootstrap one of AUTOMATION_API_TOKENS. Each operation's permission is its "
                    "`x-permission` (a list: any of them); the token's roles must grant it, else 403.",
                }
            },
            "schemas": _component_schemas(),
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
            **alerting_paths(),
            **scaling_paths(_responses, _body, _errors_only),
            **incidents_paths(_responses, _body, _errors_only),
            **timetables_paths(_responses, _body, _errors_only),
            **access_paths(_responses, _body, _errors_only),
        },
    }
    declare_permissions(document["paths"], _errors_only)
    return document


# -- alerting ------------------------------------------------------------------------------------------

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_LABELS = {
    **_STRINGS,
    "maxProperties": MAX_LABELS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_LABEL_NAME},
    "description": "Label names to values",
}
_INPUT_TIME = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number", "minimum": 0, "maximum": LATEST_EPOCH},
    ],
    "description": "An RFC 3339 time (Go's zero time means not set) or epoch seconds",
}
_FINGERPRINT = {"type": "string", "pattern": f"^{FINGERPRINT.pattern}$", "description": FINGERPRINT_TEXT}
_ALERT_STATE = {"type": "string", "enum": list(AlertState.ALL)}

ALERTING_SCHEMAS: dict[str, Any] = {
    "MetricSamples": {
        "type": "object",
        "description": f"Samples to store; at most {MAX_SAMPLES} in one request",
        "properties": {
            "samples": {
                "type": "array",
                "maxItems": MAX_SAMPLES,
                "items": {
                    "type": "object",
                    "properties": {
                        "metric": {"type": "string", "pattern": f"^{METRIC_NAME.pattern}$"},
                        "labels": {**_STRINGS, "maxProperties": MAX_SAMPLE_LABELS},
                        "value": {"type": "number"},
                        "timestamp": {
                            "anyOf": [
                                {"type": "number", "minimum": 0},
                                {"type": "string", "format": "date-time"},
                            ],
                            "description": "Epoch seconds or an RFC 3339 time with a zone; default now",
                        },
                    },
                    "required": ["metric", "value"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["samples"],
        "additionalProperties": False,
    },
    "MetricsAccepted": {
        "type": "object",
        "properties": {"accepted": {"type": "integer", "minimum": 0, "description": "Samples stored"}},
        "required": ["accepted"],
    },
    "Alert": {
        "type": "object",
        "properties": {
            "fingerprint": {"type": "string"},
            "name": {"type": "string"},
            "origin": {"type": "string", "enum": list(AlertOrigin.ALL)},
            "state": _ALERT_STATE,
            "severity": {"type": "string"},
            "labels": _STRINGS,
            "annotations": _STRINGS,
            "value": {"type": ["number", "null"]},
            "active_since": _TIME,
            "fired_at": _TIME,
            "resolved_at": _TIME,
            "flapping": {"type": "boolean"},
            "last_run_id": {"type": ["string", "null"], "format": "uuid"},
        },
        "required": ["fingerprint", "name", "origin", "state", "severity", "labels", "annotations"],
    },
    "AlertList": {
        "type": "object",
        "properties": {"alerts": {"type": "array", "items": _ref("Alert"), "maxItems": MAX_LISTED}},
        "required": ["alerts"],
    },
    "AlertLog": {
        "type": "object",
        "description": f"The alert and every decision about it, oldest first (the newest {MAX_LOG_ENTRIES})",
        "properties": {
            "alert": _ref("Alert"),
            "log": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "decision": {"type": "string", "enum": list(Decision.ALL)},
                        "receiver": {"type": "string"},
                        "run_id": {"type": ["string", "null"], "format": "uuid"},
                        "detail": {"type": "string"},
                    },
                    "required": ["at", "decision", "receiver", "run_id", "detail"],
                },
            },
        },
        "required": ["alert", "log"],
    },
    "WebhookAlert": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": list(STATUSES)},
            "labels": {**_LABELS, "minProperties": 1},
            "annotations": _LABELS,
            "startsAt": _INPUT_TIME,
            "endsAt": _INPUT_TIME,
            "generatorURL": {"type": "string"},
            "fingerprint": _FINGERPRINT,
        },
        "required": ["labels"],
    },
    "AlertmanagerWebhook": {
        "type": "object",
        "description": "Alertmanager's webhook payload, version 4, as it sends it (group fields are read "
        "from the alerts themselves)",
        "properties": {
            "version": {"type": "string", "enum": ["4"]},
            "status": {"type": "string", "enum": list(STATUSES)},
            "receiver": {"type": "string"},
            "groupKey": {"type": "string"},
            "truncatedAlerts": {"type": "integer", "minimum": 0},
            "groupLabels": _STRINGS,
            "commonLabels": _STRINGS,
            "commonAnnotations": _STRINGS,
            "externalURL": {"type": "string"},
            "alerts": {
                "type": "array",
                "items": _ref("WebhookAlert"),
                "minItems": 1,
                "maxItems": MAX_WEBHOOK_ALERTS,
            },
        },
        "required": ["alerts"],
    },
    "Receipt": {
        "type": "object",
        "description": "What became of one received alert",
        "properties": {
            "fingerprint": {"type": "string"},
            "state": _ALERT_STATE,
            "outcome": {"type": "string", "enum": ["fired", "resolved", "deduplicated"]},
        },
        "required": ["fingerprint", "state", "outcome"],
    },
    "WebhookReceipts": {
        "type": "object",
        "properties": {
            "received": {"type": "integer", "minimum": 1},
            "alerts": {"type": "array", "items": _ref("Receipt")},
        },
        "required": ["received", "alerts"],
    },
    "Event": {
        "type": "object",
        "description": "An alert from any tool: it fires (or resolves) the alert of its fingerprint, by "
        "default the digest of its labels; `alertname` names the handler rule",
        "properties": {
            "labels": {**_LABELS, "minProperties": 1},
            "annotations": _LABELS,
            "status": {"type": "string", "enum": list(STATUSES), "default": "firing"},
            "starts_at": _INPUT_TIME,
            "ends_at": _INPUT_TIME,
            "fingerprint": _FINGERPRINT,
        },
        "required": ["labels"],
        "additionalProperties": False,
    },
    "AlertRuleList": {
        "type": "object",
        "properties": {"rules": {"type": "array", "items": _ref("AlertRule")}},
        "required": ["rules"],
    },
    "SilenceRequest": {
        "type": "object",
        "properties": {
            "matchers": MATCHERS_SCHEMA,
            "starts_at": {**_INPUT_TIME, "description": "Default: now"},
            "ends_at": _INPUT_TIME,
            "created_by": {"type": "string", "pattern": r"\S", "maxLength": MAX_CREATED_BY},
            "comment": {"type": "string", "pattern": r"\S", "maxLength": MAX_COMMENT},
        },
        "required": ["matchers", "ends_at", "created_by", "comment"],
        "additionalProperties": False,
    },
    "Silence": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "matchers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "op": {"type": "string", "enum": ["=", "!=", "=~", "!~"]},
                        "value": {"type": "string"},
                    },
                    "required": ["name", "op", "value"],
                },
            },
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"},
            "comment": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "active", "expired"]},
        },
        "required": ["id", "matchers", "starts_at", "ends_at", "created_by", "comment", "state"],
    },
    "SilenceList": {
        "type": "object",
        "properties": {"silences": {"type": "array", "items": _ref("Silence"), "maxItems": MAX_LISTED}},
        "required": ["silences"],
    },
}


def _errors_only(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": _ERRORS[code], "content": _json(_ref("Error"))} for code in codes}


def _path_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def alerting_paths() -> dict[str, Any]:
    """The alerting routes of urls.py (views in automation/alerting/api.py)."""
    fingerprint = _path_parameter("fingerprint", {"type": "string"})
    rule = _path_parameter("name", {"type": "string"})
    silence_id = _path_parameter("silence_id", {"type": "string", "format": "uuid"})
    to_log = _links({"getAlertLog": {"fingerprint": "$response.body#/fingerprint"}})
    to_rule = _links(
        {
            "getAlertRule": {"name": "$response.body#/name"},
            "deleteAlertRule": {"name": "$response.body#/name"},
        }
    )
    to_silence = _links({"expireSilence": {"silence_id": "$response.body#/id"}})
    return {
        "/api/v1/metrics": {
            "post": {
                "operationId": "pushMetrics",
                "summary": "Store samples for the `push` source: Prometheus's text exposition format "
                "(timestamps in ms optional) or JSON; one bad line or field stores nothing",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {
                            "schema": {"type": "string", "description": "The text exposition format 0.0.4"}
                        },
                        "application/json": {"schema": _ref("MetricSamples")},
                    },
                },
                "responses": {
                    "202": {"description": "Stored", "content": _json(_ref("MetricsAccepted"))},
                    **_errors_only(401, 413, 422),
                },
            }
        },
        "/api/v1/alerts": {
            "get": {
                "operationId": "listAlerts",
                "summary": f"Alerts, most recently changed first (at most {MAX_LISTED})",
                "parameters": [{"name": "state", "in": "query", "required": False, "schema": _ALERT_STATE}],
                "responses": _responses(200, "AlertList", 401, 422),
            }
        },
        "/api/v1/alerts/alertmanager": {
            "post": {
                "operationId": "receiveAlertmanagerWebhook",
                "summary": "Alertmanager's webhook receiver: firing and resolved alerts, keyed by "
                "Alertmanager's fingerprint (an HA pair's copies are one firing)",
                "requestBody": _body("AlertmanagerWebhook", required=True),
                "responses": _responses(200, "WebhookReceipts", 400, 401, 413, 422),
            }
        },
        "/api/v1/alerts/{fingerprint}/log": {
            "get": {
                "operationId": "getAlertLog",
                "summary": "Why was I (not) paged? The alert and every decision about it",
                "parameters": [fingerprint],
                "responses": _responses(200, "AlertLog", 401, 404, 422),
            }
        },
        "/api/v1/events": {
            "post": {
                "operationId": "receiveEvent",
                "summary": "An alert from any tool, through the same pipeline as the rules' alerts",
                "requestBody": _body("Event", required=True),
                "responses": _responses(202, "Receipt", 400, 401, 413, 422, links=to_log),
            }
        },
        "/api/v1/alert-rules": {
            "get": {
                "operationId": "listAlertRules",
                "summary": "Alert rules by name (secrets masked)",
                "responses": _responses(200, "AlertRuleList", 401),
            },
            "post": {
                "operationId": "saveAlertRule",
                "summary": "Store an alert rule (a new one, or a new definition of the same name) and "
                "register its remediation workflows; nothing is stored when anything is wrong",
                "requestBody": _body("AlertRule", required=True),
                "responses": _responses(201, "AlertRule", 400, 401, 413, 422, links=to_rule),
            },
        },
        "/api/v1/alert-rules/{name}": {
            "get": {
                "operationId": "getAlertRule",
                "summary": "One alert rule (secrets masked)",
                "parameters": [rule],
                "responses": _responses(200, "AlertRule", 401, 404, 422),
            },
            "delete": {
                "operationId": "deleteAlertRule",
                "summary": "Delete an alert rule (its alerts stay, without a rule)",
                "parameters": [rule],
                "responses": {"204": {"description": "Deleted"}, **_errors_only(401, 404, 422)},
            },
        },
        "/api/v1/silences": {
            "get": {
                "operationId": "listSilences",
                "summary": f"Silences, latest start first (at most {MAX_LISTED})",
                "responses": _responses(200, "SilenceList", 401),
            },
            "post": {
                "operationId": "createSilence",
                "summary": "Mute the alerts matching every matcher, notifications and remediation alike",
                "requestBody": _body("SilenceRequest", required=True),
                "responses": _responses(201, "Silence", 400, 401, 413, 422, links=to_silence),
            },
        },
        "/api/v1/silences/{silence_id}": {
            "delete": {
                "operationId": "expireSilence",
                "summary": "Expire a silence now",
                "parameters": [silence_id],
                "responses": _responses(200, "Silence", 401, 404, 409, 422),
            }
        },
        "/api/v1/alerting": {
            "get": {
                "operationId": "getAlertingDocument",
                "summary": "The alerting document: routes, receivers, inhibition rules, sources "
                "(secrets masked)",
                "responses": _responses(200, "AlertingDocument", 401),
            },
            "put": {
                "operationId": "applyAlertingDocument",
                "summary": "Replace the alerting document and register each receiver's delivery workflow; "
                "nothing is stored when anything is wrong",
                "requestBody": _body("AlertingDocument", required=True),
                "responses": _responses(200, "AlertingDocument", 400, 401, 413, 422),
            },
        },
    }
