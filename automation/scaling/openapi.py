"""The scaling routes' part of the OpenAPI document (merged by `automation.api.openapi`)."""

from __future__ import annotations

from typing import Any

from automation.scaling.choices import Action, Basis, PolicyKind, TargetStatus
from automation.scaling.definitions import ScalingTargetDefinition
from automation.scaling.limits import DEFAULT_DECISIONS, MAX_DECISIONS, MAX_LISTED

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}

SCALING_SCHEMAS: dict[str, Any] = {
    "ScalingDecision": {
        "type": "object",
        "properties": {
            "at": _TIME,
            "slot": {"type": "integer"},
            "policy": {"type": "string", "enum": list(PolicyKind.ALL)},
            "basis": {"type": "string", "enum": list(Basis.ALL)},
            "action": {"type": "string", "enum": list(Action.ALL)},
            "observed_load": _NUMBER_OR_NULL,
            "forecast": {
                "type": ["object", "null"],
                "description": "The forecast's peak over the decision window, with its interval",
                "properties": {
                    "at": _TIME,
                    "mean": _NUMBER_OR_NULL,
                    "lower": _NUMBER_OR_NULL,
                    "upper": _NUMBER_OR_NULL,
                    "model": {"type": "string"},
                },
            },
            "current_replicas": {"type": "integer"},
            "desired_replicas": {"type": "integer"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "run_id": {"type": ["string", "null"], "format": "uuid"},
        },
        "required": ["at", "action", "current_replicas", "desired_replicas", "reasons", "run_id"],
    },
    "ScalingTarget": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": [TargetStatus.ACTIVE, TargetStatus.DISABLED]},
            "definition": _ref("ScalingTargetDefinition"),
            "last_decision": {"oneOf": [_ref("ScalingDecision"), {"type": "null"}]},
        },
        "required": ["name", "status", "definition", "last_decision"],
    },
    "ScalingTargetList": {
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean", "description": "AutomationConfig.enable_predictive_scaling"},
            "targets": {"type": "array", "items": _ref("ScalingTarget"), "maxItems": MAX_LISTED},
        },
        "required": ["enabled", "targets"],
    },
    "CapacityPlanList": {
        "type": "object",
        "description": "One plan per stored scaling target, by name (`automation capacity plan --json`)",
        "properties": {
            "targets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "target": {"type": "string"},
                        "verdict": {
                            "type": "string",
                            "enum": ["ok", "will_hit_max", "over_provisioned", "no_data"],
                        },
                        "expected_peak_upper": _NUMBER_OR_NULL,
                        "expected_peak_at": {"type": ["string", "null"]},
                        "replicas_needed": {"type": "integer"},
                        "headroom": _NUMBER_OR_NULL,
                        "advice": {"type": "array", "items": {"type": "string"}},
                        "notes": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["target", "verdict", "replicas_needed", "advice", "notes"],
                },
            }
        },
        "required": ["targets"],
    },
    "ScalingDecisionLog": {
        "type": "object",
        "properties": {
            "target": {"type": "string"},
            "decisions": {"type": "array", "items": _ref("ScalingDecision"), "maxItems": MAX_DECISIONS},
        },
        "required": ["target", "decisions"],
    },
}

#: Models whose JSON schema comes from pydantic.
SCALING_MODELS = (("ScalingTargetDefinition", ScalingTargetDefinition),)


def scaling_paths(responses: Any, body: Any, errors_only: Any) -> dict[str, Any]:
    """The scaling routes of urls.py (views in automation/scaling/api.py); `responses`, `body` and
    `errors_only` are the document's own builders."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DECISIONS, "default": DEFAULT_DECISIONS},
    }
    return {
        "/api/v1/scaling/targets": {
            "get": {
                "operationId": "listScalingTargets",
                "summary": "Scaling targets by name, each active or disabled, with its last decision",
                "responses": responses(200, "ScalingTargetList", 401),
            },
            "post": {
                "operationId": "saveScalingTarget",
                "summary": "Store a scaling target (new, or a new definition of the same name) and register "
                "its scale workflow; nothing is stored when anything is wrong",
                "requestBody": body("ScalingTargetDefinition", required=True),
                "responses": responses(201, "ScalingTarget", 400, 401, 413, 422),
            },
        },
        "/api/v1/scaling/targets/{name}": {
            "get": {
                "operationId": "getScalingTarget",
                "summary": "One scaling target",
                "parameters": [name],
                "responses": responses(200, "ScalingTarget", 401, 404, 422),
            },
            "put": {
                "operationId": "putScalingTarget",
                "summary": "Store the scaling target of this name; nothing is stored when anything is wrong",
                "parameters": [name],
                "requestBody": body("ScalingTargetDefinition", required=True),
                "responses": responses(200, "ScalingTarget", 400, 401, 413, 422),
            },
            "delete": {
                "operationId": "deleteScalingTarget",
                "summary": "Delete a scaling target and its decision log",
                "parameters": [name],
                "responses": {"204": {"description": "Deleted"}, **errors_only(401, 404, 422)},
            },
        },
        "/api/v1/capacity": {
            "get": {
                "operationId": "getCapacityPlan",
                "summary": "Per scaling target: the forecast peak over the horizon and when, replicas "
                "needed, headroom under max_replicas, right-sizing advice",
                "parameters": [
                    {
                        "name": "horizon",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "default": "30d"},
                    },
                    {
                        "name": "level",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "number",
                            "exclusiveMinimum": 0.5,
                            "exclusiveMaximum": 1,
                            "default": 0.95,
                        },
                    },
                ],
                "responses": responses(200, "CapacityPlanList", 401, 422),
            }
        },
        "/api/v1/scaling/targets/{name}/decisions": {
            "get": {
                "operationId": "getScalingDecisions",
                "summary": "The target's newest decisions, oldest first: load, forecast, replicas, "
                "reasons, run",
                "parameters": [name, limit],
                "responses": responses(200, "ScalingDecisionLog", 401, 404, 422),
            }
        },
    }
