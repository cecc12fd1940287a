"""The guarded remediation routes' part of the OpenAPI document (merged by `automation.incidents.openapi`):
the policies document, the remediations, and the approval of one."""

from __future__ import annotations

from typing import Any

from automation.incidents.choices import Guard, RemediationStatus
from automation.incidents.remediation_definitions import RemediationDocument

_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}

REMEDIATION_SCHEMAS: dict[str, Any] = {
    "Remediation": {
        "type": "object",
        "description": "One remediation: a policy acting on one firing of one alert, and why it did or not",
        "properties": {
            "id": {"type": "integer"},
            "policy": {"type": "string"},
            "workflow": {"type": "string"},
            "status": {"type": "string", "enum": list(RemediationStatus.ALL)},
            "guard": {
                "type": ["string", "null"],
                "enum": [*Guard.ALL, None],
                "description": "What kept it from running, if anything",
            },
            "detail": {"type": "string", "description": "Why it is where it is"},
            "alert_fingerprint": {"type": "string"},
            "fired_at": {"type": "string", "format": "date-time"},
            "incident_id": {"type": ["integer", "null"]},
            "service": {"type": "string"},
            "requested_at": {"type": "string", "format": "date-time"},
            "started_at": _TIME_OR_NULL,
            "verify_until": _TIME_OR_NULL,
            "finished_at": _TIME_OR_NULL,
            "approved_by": _TEXT_OR_NULL,
            "run_id": _TEXT_OR_NULL,
            "compensation_run_id": {**_TEXT_OR_NULL, "description": "The run that undid its run's effects"},
        },
        "required": [
            "id",
            "policy",
            "workflow",
            "status",
            "guard",
            "detail",
            "alert_fingerprint",
            "fired_at",
            "incident_id",
            "service",
            "requested_at",
            "started_at",
            "verify_until",
            "finished_at",
            "approved_by",
            "run_id",
            "compensation_run_id",
        ],
    },
    "RemediationList": {
        "type": "object",
        "properties": {
            "remediations": {"type": "array", "items": {"$ref": "#/components/schemas/Remediation"}}
        },
        "required": ["remediations"],
    },
    "RemediationApproval": {
        "type": "object",
        "properties": {"by": {"type": "string", "minLength": 1, "maxLength": 200}},
        "required": ["by"],
        "additionalProperties": False,
    },
}

#: Models whose JSON schema comes from pydantic.
REMEDIATION_MODELS = (("RemediationDocument", RemediationDocument),)


def remediation_paths(responses: Any, body: Any) -> dict[str, Any]:
    """The remediation routes of urls.py (views in automation/incidents/remediation_api.py)."""

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    return {
        "/api/v1/remediation": {
            "get": {
                "operationId": "getRemediationPolicies",
                "summary": "The remediation policies: alert matchers, workflow, verification, guards",
                "responses": responses(200, "RemediationDocument", 401),
            },
            "put": {
                "operationId": "applyRemediationPolicies",
                "summary": "Replace the remediation policies; nothing is stored when anything is wrong "
                "(every workflow must be registered)",
                "requestBody": body("RemediationDocument", required=True),
                "responses": responses(200, "RemediationDocument", 400, 401, 413, 422),
            },
        },
        "/api/v1/remediations": {
            "get": {
                "operationId": "listRemediations",
                "summary": "Remediations, newest first: what each policy decided, which guard held it and "
                "why; an unknown query parameter is refused",
                "parameters": [
                    query("status", {"type": "string", "enum": list(RemediationStatus.ALL)}, "one status"),
                    query("incident", {"type": "string", "pattern": "^[0-9]+$"}, "one incident's"),
                    query("policy", {"type": "string"}, "one policy's"),
                    query("limit", {"type": "string", "pattern": "^[0-9]+$"}, "at most this many (1-500)"),
                ],
                "responses": responses(200, "RemediationList", 401, 422),
            }
        },
        "/api/v1/remediations/{remediation_id}/approve": {
            "post": {
                "operationId": "approveRemediation",
                "summary": "Approve a remediation waiting for an approval: it is decided again at once, its "
                "guards and its alert's state included",
                "parameters": [
                    {
                        "name": "remediation_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    }
                ],
                "requestBody": body("RemediationApproval", required=True),
                "responses": responses(200, "Remediation", 400, 401, 404, 409, 422),
            }
        },
    }
