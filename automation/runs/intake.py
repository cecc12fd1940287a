"""Checks on a run request at the door, whichever way it came in (HTTP, CLI, Python, `send_task`).

Types, sizes and NUL characters (which PostgreSQL cannot store) are refused here with an `InputError`
naming the field, before anything is looked up or stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from automation.errors import InputError

#: Longest idempotency key, in characters.
MAX_IDEMPOTENCY_KEY_LENGTH = 200
#: Largest run inputs, as compact JSON in UTF-8: inputs are parameters, not payloads.
MAX_INPUTS_BYTES = 64 * 1024


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages read by callers in any language."""
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", type(None): "null"}
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return names.get(type(value), type(value).__name__)


def unstorable_strings(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, reason) for each string of a JSON document, keys included, that PostgreSQL cannot store:
    a NUL character, or a lone surrogate (not Unicode text)."""
    if isinstance(value, str):
        if "\x00" in value:
            return [(path, "contains a NUL character")]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [(path, "is not valid Unicode text (lone surrogate)")]
        return []
    if isinstance(value, Mapping):
        found: list[tuple[str, str]] = []
        for key, item in value.items():
            in_key = unstorable_strings(key, f"{path}.{key!r}")
            found.extend((f"{where} (a key)", why) for where, why in in_key)
            found.extend(unstorable_strings(item, f"{path}.{key}"))
        return found
    if isinstance(value, list | tuple):
        return [found for i, item in enumerate(value) for found in unstorable_strings(item, f"{path}[{i}]")]
    return []


def check_run_request(workflow: Any, inputs: Any, idempotency_key: Any) -> dict[str, Any]:
    """The inputs as a plain dict, or an InputError listing every field at fault."""
    errors: list[tuple[str, str]] = []
    if not isinstance(workflow, str) or not workflow:
        errors.append(("workflow", f"must be a non-empty string, not {json_type(workflow)}"))
    else:
        errors.extend(unstorable_strings(workflow, "workflow"))

    if idempotency_key is not None:
        if not isinstance(idempotency_key, str):
            errors.append(("idempotency_key", f"must be a string, not {json_type(idempotency_key)}"))
        elif len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            errors.append(
                (
                    "idempotency_key",
                    f"must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters (got {len(idempotency_key)})",
                )
            )
        else:
            errors.extend(unstorable_strings(idempotency_key, "idempotency_key"))

    given: dict[str, Any] = {}
    if inputs is not None and not isinstance(inputs, Mapping):
        errors.append(("inputs", f"must be an object of input names to values, not {json_type(inputs)}"))
    elif inputs is not None:
        given = dict(inputs)
        if not all(isinstance(key, str) for key in given):
            errors.append(("inputs", "input names must be strings"))
        else:
            try:
                size = len(json.dumps(given, separators=(",", ":"), allow_nan=False).encode())
            except (TypeError, ValueError) as exc:
                errors.append(("inputs", f"must be JSON data: {exc}"))
            else:
                if size > MAX_INPUTS_BYTES:
                    errors.append(
                        ("inputs", f"must be at most {MAX_INPUTS_BYTES} bytes as JSON (got {size})")
                    )
                else:
                    errors.extend(unstorable_strings(given, "inputs"))
    if errors:
        raise InputError(errors)
    return given
