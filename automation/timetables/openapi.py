"""The workflow schedules' part of the OpenAPI document (merged by `automation.api.openapi`)."""

from __future__ import annotations

from typing import Any

from automation.timetables.definitions import ScheduleDefinition
from automation.timetables.services import MAX_LISTED

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


TIMETABLES_SCHEMAS: dict[str, Any] = {
    "Schedule": {
        "type": "object",
        "description": "A stored schedule: its definition, when Beat last sent it and how often",
        "properties": {
            "name": {"type": "string"},
            "workflow": {"type": "string"},
            "cron": {"type": "string"},
            "every": {"type": "number"},
            "inputs": {"type": "object"},
            "timezone": {"type": "string"},
            "enabled": {"type": "boolean"},
            "description": {"type": "string"},
            "last_run_at": {"type": ["string", "null"], "format": "date-time"},
            "total_run_count": {"type": "integer", "minimum": 0},
        },
        "required": ["name", "workflow", "inputs", "timezone", "enabled", "last_run_at", "total_run_count"],
    },
    "ScheduleList": {
        "type": "object",
        "properties": {"schedules": {"type": "array", "items": _ref("Schedule"), "maxItems": MAX_LISTED}},
        "required": ["schedules"],
    },
}
TIMETABLES_MODELS = (("ScheduleDefinition", ScheduleDefinition),)


def timetables_paths(responses: Any, body: Any, errors_only: Any) -> dict[str, Any]:
    """The schedule routes of urls.py (views in automation/timetables/api.py)."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/v1/schedules": {
            "get": {
                "operationId": "listSchedules",
                "summary": "Workflow schedules by name",
                "responses": responses(200, "ScheduleList", 401),
            },
            "post": {
                "operationId": "saveSchedule",
                "summary": "Schedule a workflow on a cron expression or an interval (one run per slot, "
                "however many Beats run); the workflow must exist and take the inputs",
                "requestBody": body("ScheduleDefinition", required=True),
                "responses": responses(201, "Schedule", 400, 401, 413, 422),
            },
        },
        "/api/v1/schedules/{name}": {
            "get": {
                "operationId": "getSchedule",
                "summary": "One workflow schedule",
                "parameters": [name],
                "responses": responses(200, "Schedule", 401, 404),
            },
            "put": {
                "operationId": "putSchedule",
                "summary": "Store the schedule of this name; nothing is stored when anything is wrong",
                "parameters": [name],
                "requestBody": body("ScheduleDefinition", required=True),
                "responses": responses(200, "Schedule", 400, 401, 413, 422),
            },
            "delete": {
                "operationId": "deleteSchedule",
                "summary": "Delete a workflow schedule (runs it started stay)",
                "parameters": [name],
                "responses": errors_only(401, 404) | {"204": {"description": "Deleted"}},
            },
        },
    }
