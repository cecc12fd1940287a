"""The incidents routes' part of the OpenAPI document (merged by `automation.api.openapi`)."""

from __future__ import annotations

from typing import Any

from automation.alerting.limits import MAX_ALERT_NAME
from automation.choices import AlertSeverity
from automation.incidents.choices import ChangeKind, ChangeSource, EventKind, IncidentStatus
from automation.incidents.definitions import ServicesDocument
from automation.incidents.filters import MAX_SERVICE, STATUS_FILTERS
from automation.incidents.limits import (
    DEFAULT_LISTED,
    MAX_ALERTS,
    MAX_BY,
    MAX_CHANGE_DESCRIPTION,
    MAX_CHANGE_KEY,
    MAX_COMMENT,
    MAX_EVENTS,
    MAX_LISTED,
)
from automation.incidents.oncall_openapi import ONCALL_MODELS, ONCALL_SCHEMAS, oncall_paths
from automation.incidents.remediation_openapi import (
    REMEDIATION_MODELS,
    REMEDIATION_SCHEMAS,
    remediation_paths,
)
from automation.incidents.services.queries import MAX_ID

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_SEVERITY = {"type": "string", "enum": [s.value for s in AlertSeverity]}

_INCIDENT_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer", "minimum": 1},
    "title": {"type": "string"},
    "status": {"type": "string", "enum": list(IncidentStatus.ALL)},
    "severity": {**_SEVERITY, "description": "The highest of its alerts'"},
    "services": {"type": "array", "items": {"type": "string"}},
    "group_keys": {"type": "array", "items": {"type": "string"}},
    "alert_count": {"type": "integer", "minimum": 0, "description": "Firings of alerts that joined it"},
    "firing_count": {"type": "integer", "minimum": 0, "description": "Of those, the ones still firing"},
    "opened_at": _TIME,
    "acknowledged_at": _TIME_OR_NULL,
    "acknowledged_by": _TEXT_OR_NULL,
    "mitigated_at": _TIME_OR_NULL,
    "mitigated_by": _TEXT_OR_NULL,
    "resolved_at": _TIME_OR_NULL,
    "resolved_by": {**_TEXT_OR_NULL, "description": "null when it resolved by itself"},
}
_INCIDENT_REQUIRED = list(_INCIDENT_PROPERTIES)
_CHANGE_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer", "minimum": 1},
    "service": {"type": "string"},
    "kind": {"type": "string", "enum": list(ChangeKind.ALL)},
    "description": {"type": "string"},
    "at": _TIME,
    "actor": _TEXT_OR_NULL,
    "source": {"type": "string", "enum": list(ChangeSource.ALL)},
    "run_id": {"type": ["string", "null"], "format": "uuid"},
    "key": _TEXT_OR_NULL,
    "recorded_at": _TIME,
}

INCIDENTS_SCHEMAS: dict[str, Any] = {
    "Incident": {
        "type": "object",
        "properties": _INCIDENT_PROPERTIES,
        "required": _INCIDENT_REQUIRED,
    },
    "IncidentList": {
        "type": "object",
        "properties": {"incidents": {"type": "array", "items": _ref("Incident"), "maxItems": MAX_LISTED}},
        "required": ["incidents"],
    },
    "IncidentAlert": {
        "type": "object",
        "description": "One firing of an alert that joined the incident, as it was when it joined",
        "properties": {
            "fingerprint": {
                "type": "string",
                "description": "The alert's id: /api/v1/alerts/{fingerprint}/log",
            },
            "name": {"type": "string", "maxLength": MAX_ALERT_NAME},
            "service": _TEXT_OR_NULL,
            "severity": _SEVERITY,
            "fired_at": _TIME,
            "joined_at": _TIME,
            "resolved_at": _TIME_OR_NULL,
            "reason": {"type": "string", "description": "Why it joined this incident"},
        },
        "required": ["fingerprint", "name", "service", "severity", "fired_at", "joined_at", "resolved_at"],
    },
    "IncidentEvent": {
        "type": "object",
        "properties": {
            "at": _TIME,
            "kind": {"type": "string", "enum": list(EventKind.ALL)},
            "actor": {"type": "string", "description": "Who: a person, or `engine`"},
            "detail": {"type": "string"},
            "alert": {**_TEXT_OR_NULL, "description": "The fingerprint of the alert it concerns"},
            "run_id": {"type": ["string", "null"], "format": "uuid"},
        },
        "required": ["at", "kind", "actor", "detail", "alert", "run_id"],
    },
    "IncidentDetail": {
        "type": "object",
        "properties": {
            **_INCIDENT_PROPERTIES,
            "alerts": {"type": "array", "items": _ref("IncidentAlert"), "maxItems": MAX_ALERTS},
            "timeline": {"type": "array", "items": _ref("IncidentEvent"), "maxItems": MAX_EVENTS},
            "escalation": {
                "anyOf": [_ref("Escalation"), {"type": "null"}],
                "description": "Its escalation (null: opened before escalation existed)",
            },
        },
        "required": [*_INCIDENT_REQUIRED, "alerts", "timeline", "escalation"],
    },
    "IncidentStep": {
        "type": "object",
        "description": "Who acknowledges, mitigates or resolves, and why",
        "properties": {
            "by": {"type": "string", "minLength": 1, "maxLength": MAX_BY},
            "comment": {"type": "string", "maxLength": MAX_COMMENT},
        },
        "required": ["by"],
        "additionalProperties": False,
    },
    "IncidentStepResult": {
        "type": "object",
        "properties": {
            **_INCIDENT_PROPERTIES,
            "changed": {"type": "boolean", "description": "false: the step had been taken already"},
        },
        "required": [*_INCIDENT_REQUIRED, "changed"],
    },
    "ChangeRecord": {
        "type": "object",
        "description": "A change to a service: a deploy, a config change, a workflow run acting on it",
        "properties": {
            "service": {"type": "string", "minLength": 1, "maxLength": MAX_BY},
            "kind": {"type": "string", "enum": list(ChangeKind.ALL)},
            "description": {"type": "string", "maxLength": MAX_CHANGE_DESCRIPTION},
            "at": {
                "type": ["string", "number"],
                "description": "When: an ISO 8601 time (UTC unless it says) or epoch seconds; default now",
            },
            "actor": {"type": "string", "maxLength": MAX_BY, "description": "Who made it"},
            "run_id": {"type": "string", "format": "uuid", "description": "The workflow run that made it"},
            "key": {
                "type": "string",
                "maxLength": MAX_CHANGE_KEY,
                "description": "Idempotency key: a change with a key recorded before is not recorded again",
            },
        },
        "required": ["service", "kind"],
        "additionalProperties": False,
    },
    "Change": {"type": "object", "properties": _CHANGE_PROPERTIES, "required": list(_CHANGE_PROPERTIES)},
    "ChangeRecorded": {
        "type": "object",
        "properties": {
            **_CHANGE_PROPERTIES,
            "created": {"type": "boolean", "description": "false: its key was recorded before"},
        },
        "required": [*_CHANGE_PROPERTIES, "created"],
    },
    "ChangeList": {
        "type": "object",
        "properties": {"changes": {"type": "array", "items": _ref("Change"), "maxItems": MAX_LISTED}},
        "required": ["changes"],
    },
    **ONCALL_SCHEMAS,
    **REMEDIATION_SCHEMAS,
}

#: Models whose JSON schema comes from pydantic.
INCIDENTS_MODELS = (("ServicesDocument", ServicesDocument), *ONCALL_MODELS, *REMEDIATION_MODELS)


def incidents_paths(responses: Any, body: Any, errors_only: Any) -> dict[str, Any]:
    """The incidents routes of urls.py (views in automation/incidents/api.py); `responses`, `body` and
    `errors_only` are the document's own builders."""
    incident_id = {
        "name": "incident_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    def step(operation: str, summary: str) -> dict[str, Any]:
        return {
            "post": {
                "operationId": operation,
                "summary": summary,
                "parameters": [incident_id],
                "requestBody": body("IncidentStep", required=True),
                "responses": responses(200, "IncidentStepResult", 400, 401, 404, 409, 413, 422),
            }
        }

    return {
        "/api/v1/incidents": {
            "get": {
                "operationId": "listIncidents",
                "summary": "Incidents, newest first; an unknown query parameter is refused",
                "parameters": [
                    query("status", {"type": "string", "enum": list(STATUS_FILTERS)}, "`open`: any active"),
                    query(
                        "service",
                        {"type": "string", "minLength": 1, "maxLength": MAX_SERVICE},
                        "incidents one of whose alerts was on this service",
                    ),
                    query("since", {"type": "string"}, "opened since: a duration ago (24h, 7d) or a time"),
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LISTED, "default": DEFAULT_LISTED},
                        "at most this many",
                    ),
                ],
                "responses": responses(200, "IncidentList", 401, 422),
            }
        },
        "/api/v1/incidents/{incident_id}": {
            "get": {
                "operationId": "getIncident",
                "summary": "One incident with its alerts (one entry per firing) and its timeline",
                "parameters": [incident_id],
                "responses": responses(200, "IncidentDetail", 401, 404, 422),
            }
        },
        "/api/v1/incidents/{incident_id}/acknowledge": step(
            "acknowledgeIncident", "Acknowledge a triggered incident (again: no change; resolved: 409)"
        ),
        "/api/v1/incidents/{incident_id}/mitigate": step(
            "mitigateIncident", "Mark an incident mitigated (acknowledged too, if nobody had)"
        ),
        "/api/v1/incidents/{incident_id}/resolve": step(
            "resolveIncident", "Resolve an incident, even with alerts still firing (again: no change)"
        ),
        **oncall_paths(responses, body, incident_id),
        "/api/v1/changes": {
            "get": {
                "operationId": "listChanges",
                "summary": "Recorded changes, newest first; an unknown query parameter is refused",
                "parameters": [
                    query(
                        "service", {"type": "string", "minLength": 1, "maxLength": MAX_SERVICE}, "its changes"
                    ),
                    query("since", {"type": "string"}, "made since: a duration ago (24h, 7d) or a time"),
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LISTED, "default": DEFAULT_LISTED},
                        "at most this many",
                    ),
                ],
                "responses": responses(200, "ChangeList", 401, 422),
            },
            "post": {
                "operationId": "recordChange",
                "summary": "Record a change to a service (evidence for root-cause analysis); 200 with the "
                "stored change when its key was recorded before",
                "requestBody": body("ChangeRecord", required=True),
                "responses": {
                    **responses(201, "ChangeRecorded", 400, 401, 413, 422),
                    "200": {
                        "description": "Its key was recorded before: the stored change, nothing written",
                        "content": {"application/json": {"schema": _ref("ChangeRecorded")}},
                    },
                },
            },
        },
        **remediation_paths(responses, body),
        "/api/v1/services": {
            "get": {
                "operationId": "getServices",
                "summary": "The services document: each service, what it depends on, its owners",
                "responses": responses(200, "ServicesDocument", 401),
            },
            "put": {
                "operationId": "applyServices",
                "summary": "Replace the services document (the dependency graph incidents correlate on); "
                "nothing is stored when anything is wrong",
                "requestBody": body("ServicesDocument", required=True),
                "responses": responses(200, "ServicesDocument", 400, 401, 413, 422),
            },
        },
    }
