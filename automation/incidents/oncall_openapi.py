"""The escalation routes' part of the OpenAPI document (merged by `automation.incidents.openapi`): the
escalation document, who is on call, and the signed acknowledgement link."""

from __future__ import annotations

from typing import Any

from automation.incidents.ack_links import MAX_TOKEN
from automation.incidents.choices import EscalationStatus
from automation.incidents.escalation_definitions import EscalationDocument

_REF = "#/components/schemas/{model}"
#: What a token looks like (base64url parts): ASCII, so a link stays within a request line.
TOKEN_PATTERN = r"^[0-9]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$"
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_COUNT_OR_NULL = {"type": ["integer", "null"], "minimum": 1}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


ONCALL_SCHEMAS: dict[str, Any] = {
    "EscalationPage": {
        "type": "object",
        "description": "One level of one pass, paged once",
        "properties": {
            "level": {"type": "integer", "minimum": 1},
            "pass": {"type": "integer", "minimum": 1},
            "due_at": _TIME,
            "paged_at": _TIME,
            "recipients": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "receiver": {"type": "string"},
                        "who": {"type": "string", "description": "Whom the page was for"},
                        "via": {"type": "string", "description": "How the level reached them"},
                        "run_id": {"type": "string", "description": "The delivery run"},
                    },
                    "required": ["receiver", "who", "via", "run_id"],
                },
            },
            "skipped": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Targets that reached nobody",
            },
        },
        "required": ["level", "pass", "due_at", "paged_at", "recipients", "skipped"],
    },
    "Escalation": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": list(EscalationStatus.ALL)},
            "policy": {**_TEXT_OR_NULL, "description": "null until chosen, or when none matched"},
            "reason": {"type": "string", "description": "Why the policy was chosen, or why it ended"},
            "next_level": {**_COUNT_OR_NULL, "description": "The next level to page (null: none left)"},
            "next_pass": _COUNT_OR_NULL,
            "next_due_at": _TIME_OR_NULL,
            "pages": {"type": "array", "items": _ref("EscalationPage")},
        },
        "required": ["status", "policy", "reason", "next_level", "next_pass", "next_due_at", "pages"],
    },
    "OnCallList": {
        "type": "object",
        "properties": {
            "at": _TIME,
            "schedules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "schedule": {"type": "string"},
                        "timezone": {"type": "string"},
                        "user": {**_TEXT_OR_NULL, "description": "null: nobody is on call"},
                        "source": {**_TEXT_OR_NULL, "description": "`override` or `layer NAME`"},
                        "until": {**_TIME_OR_NULL, "description": "When someone else (or nobody) takes over"},
                    },
                    "required": ["schedule", "timezone", "user", "source", "until"],
                },
            },
        },
        "required": ["at", "schedules"],
    },
}

#: Models whose JSON schema comes from pydantic.
ONCALL_MODELS = (("EscalationDocument", EscalationDocument),)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def oncall_paths(responses: Any, body: Any, incident_id: dict[str, Any]) -> dict[str, Any]:
    """The escalation routes of urls.py (views in automation/incidents/oncall_api.py)."""

    def query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "schema": schema,
            "description": description,
        }

    link = responses(200, "IncidentStepResult", 404, 409, 422)
    link["403"] = _error("The token's signature does not match this incident (altered, or another's)")
    link["410"] = _error("The token has expired")
    link["503"] = _error("Acknowledgement links are off: the deployment has no secret of its own")
    confirm = {key: value for key, value in link.items() if key != "200"}
    confirm["200"] = {
        "description": "A page saying what the link would do, with a button that POSTs it",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    token_schema = {"type": "string", "maxLength": MAX_TOKEN, "pattern": TOKEN_PATTERN}
    return {
        "/api/v1/incidents/{incident_id}/ack": {
            "get": {
                "operationId": "confirmIncidentAcknowledgement",
                "summary": "Check the signed link of a page and show what it would do; changes nothing (link "
                "scanners and chat previews fetch links)",
                "security": [],
                "parameters": [
                    incident_id,
                    query("token", token_schema, "The link's token: EXPIRES.WHO.SIGNATURE", required=True),
                ],
                "responses": confirm,
            },
            "post": {
                "operationId": "acknowledgeIncidentByLink",
                "summary": "Acknowledge an incident with the signed link of a page, as the person it was for "
                "(no bearer token: the signature is the credential); the token in the query or the form",
                "security": [],
                "parameters": [
                    incident_id,
                    query("token", token_schema, "The link's token (or in the form body)"),
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "properties": {"token": token_schema}}
                        }
                    },
                },
                "responses": link,
            },
        },
        "/api/v1/escalation": {
            "get": {
                "operationId": "getEscalation",
                "summary": "The escalation document: users, on-call schedules, escalation policies",
                "responses": responses(200, "EscalationDocument", 401),
            },
            "put": {
                "operationId": "applyEscalation",
                "summary": "Replace the escalation document; nothing is stored when anything is wrong "
                "(receivers must be in the alerting document)",
                "requestBody": body("EscalationDocument", required=True),
                "responses": responses(200, "EscalationDocument", 400, 401, 413, 422),
            },
        },
        "/api/v1/oncall": {
            "get": {
                "operationId": "whoIsOnCall",
                "summary": "Who is on call for each schedule (or one), now or at a time; an unknown query "
                "parameter is refused",
                "parameters": [
                    query("schedule", {"type": "string", "minLength": 1, "maxLength": 100}, "one schedule"),
                    query(
                        "at",
                        {"type": "string", "maxLength": 64},
                        "an ISO 8601 time (UTC unless it says) or epoch seconds",
                    ),
                ],
                "responses": responses(200, "OnCallList", 401, 404, 422),
            }
        },
    }
