"""Definitions: one schema for Python, YAML and JSON; bad ones refused with the field path and reason."""

from __future__ import annotations

from typing import Any

import pytest

from automation import ActionDefinition, DefinitionError, WorkflowDefinition
from automation.definitions.loader import parse_definitions
from automation.definitions.validation import Defaults, resolve_inputs, validate_definition
from automation.errors import InputError


def errors_of(definition: WorkflowDefinition, **defaults: Any) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        validate_definition(definition, Defaults(**defaults))
    return caught.value.errors


def wf(*actions: ActionDefinition, **extra: Any) -> WorkflowDefinition:
    return WorkflowDefinition(name="w", actions=list(actions), **extra)


def wait(name: str, **extra: Any) -> ActionDefinition:
    return ActionDefinition(name=name, action_type="control.wait", parameters={"seconds": 0}, **extra)


def test_family_action_type_resolves_with_the_step_name() -> None:
    doc = validate_definition(
        wf(
            ActionDefinition(
                name="restart_service", action_type="infrastructure", parameters={"service_name": "api"}
            )
        )
    )
    assert doc["actions"][0]["action_type"] == "infrastructure.restart_service"


def test_defaults_and_sequential_dependencies_are_filled_in() -> None:
    doc = validate_definition(
        wf(wait("a"), wait("b"), wait("c", depends_on=["a"])), Defaults(timeout_seconds=42, retry_attempts=4)
    )
    assert [a["depends_on"] for a in doc["actions"]] == [[], ["a"], ["a"]]
    assert {a["timeout_seconds"] for a in doc["actions"]} == {42}
    assert {a["retry_attempts"] for a in doc["actions"]} == {4}


def test_cycle_is_refused_with_its_path() -> None:
    errors = errors_of(
        wf(wait("a", depends_on=["c"]), wait("b", depends_on=["a"]), wait("c", depends_on=["b"]))
    )
    assert len(errors) == 1
    path, reason = errors[0]
    assert path.startswith("actions[") and path.endswith("].depends_on")
    assert reason.startswith("cycle ") and "a" in reason and "->" in reason


def test_unknown_action_type() -> None:
    errors = errors_of(wf(ActionDefinition(name="x", action_type="nosuch.thing")))
    assert errors[0][0] == "actions[0].action_type"
    assert "unknown action type 'nosuch.thing'" in errors[0][1]


def test_missing_and_mistyped_parameters() -> None:
    errors = errors_of(
        wf(
            ActionDefinition(
                name="restart_service", action_type="infrastructure", parameters={"graceful": "maybe"}
            ),
            ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 1, "bogus": 2}),
        )
    )
    paths = dict(errors)
    assert "actions[0].parameters.service_name" in paths
    assert "actions[0].parameters.graceful" in paths
    assert "actions[1].parameters.bogus" in paths


def test_templated_parameter_is_typed_at_run_time_only() -> None:
    validate_definition(
        wf(ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": "${delay}"}))
    )


def test_unknown_input_and_step_references() -> None:
    errors = errors_of(
        wf(
            wait("a"),
            ActionDefinition(
                name="b",
                action_type="http.request",
                parameters={"url": "http://x/${steps.zzz.output.id}", "headers": {"X": "${undeclared}"}},
            ),
            inputs={"declared": {"type": "string"}},
        )
    )
    paths = dict(errors)
    assert paths["actions[1].parameters.url"] == "unknown step 'zzz'"
    assert paths["actions[1].parameters.headers.X"] == "unknown input 'undeclared'"


def test_reference_to_a_step_that_is_not_upstream() -> None:
    errors = errors_of(
        wf(
            wait("a", depends_on=[]),
            ActionDefinition(
                name="b",
                action_type="control.wait",
                depends_on=[],
                parameters={"seconds": "${steps.a.output.waited_seconds}"},
            ),
        )
    )
    assert errors == [("actions[1].parameters.seconds", "step 'a' is not upstream of 'b'")]


def test_timeout_must_fit_under_the_visibility_timeout() -> None:
    errors = errors_of(wf(wait("a", timeout_seconds=4000)), visibility_timeout=3600)
    assert errors[0][0] == "actions[0].timeout_seconds"
    assert "visibility timeout" in errors[0][1]


def test_duplicate_and_bad_names() -> None:
    errors = errors_of(wf(wait("a"), wait("a")))
    assert errors[0] == ("actions[1].name", "duplicate step name 'a'")
    with pytest.raises(DefinitionError) as caught:
        WorkflowDefinition(name="w", actions=[{"name": "bad name!", "action_type": "control.wait"}])
    assert caught.value.errors[0][0] == "actions[0].name"


def test_bad_condition() -> None:
    errors = errors_of(wf(wait("a"), conditions=["cpu_usage > 80 AND duration > 5m"]))
    assert errors[0][0] == "conditions[0]"


def test_yaml_and_json_share_the_schema() -> None:
    yaml_text = """
name: restart
priority: high
actions:
  - name: restart_service
    action_type: infrastructure
    parameters: {service_name: api, graceful: true}
"""
    json_text = (
        '{"name": "restart", "priority": "high", "actions": [{"name": "restart_service", '
        '"action_type": "infrastructure", "parameters": {"service_name": "api", "graceful": true}}]}'
    )
    from_yaml = parse_definitions(yaml_text, source="r.yaml")[0]
    from_json = parse_definitions(json_text, source="r.json")[0]
    assert from_yaml == from_json
    assert validate_definition(from_yaml) == validate_definition(from_json)


def test_malformed_yaml_names_the_file() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definitions("name: [unclosed", source="broken.yaml")
    assert "broken.yaml" in caught.value.errors[0][1]


def test_yaml_field_errors_have_paths() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definitions("name: x\nactions:\n  - name: a\n    timeout_seconds: soon\n", source="f.yaml")
    paths = [p for p, _ in caught.value.errors]
    assert "actions[0].action_type" in paths and "actions[0].timeout_seconds" in paths


def test_inputs_are_checked_at_enqueue() -> None:
    doc = validate_definition(
        wf(
            ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": "${delay}"}),
            inputs={"delay": {"type": "number"}, "note": {"type": "string", "required": False}},
        )
    )
    assert resolve_inputs(doc, {"delay": 2}) == {"delay": 2}
    with pytest.raises(InputError) as caught:
        resolve_inputs(doc, {"delay": "soon", "extra": 1})
    assert dict(caught.value.errors) == {
        "inputs.delay": "must be of type number",
        "inputs.extra": "not an input of this workflow",
    }
    with pytest.raises(InputError, match="inputs.delay: required input is missing"):
        resolve_inputs(doc, {})


def test_inferred_inputs_are_required() -> None:
    doc = validate_definition(
        wf(ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": "${delay}"}))
    )
    with pytest.raises(InputError, match="inputs.delay"):
        resolve_inputs(doc, {})
