"""`${input}`, `${input.FIELD}` and `${steps.STEP.output.FIELD}` references in parameters: found, checked
and substituted. `${input.FIELD...}` reaches into an object input (`${alert.labels.service}`).

Values are looked up, never evaluated. A string that is exactly one reference takes the referenced value
with its type; a reference inside a longer string is interpolated as text. `$${` writes a literal `${`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_REFERENCE = re.compile(r"(?<!\$)\$\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class TemplateError(ValueError):
    """A reference is malformed or names something that does not exist."""


@dataclass(frozen=True)
class Reference:
    """One parsed reference: an input name, or a step's output path."""

    text: str
    input: str | None = None
    step: str | None = None
    path: tuple[str, ...] = ()


def parse_reference(text: str) -> Reference:
    parts = text.strip().split(".")
    if len(parts) == 1 and _NAME.match(parts[0]):
        return Reference(text=text, input=parts[0])
    if parts[0] != "steps" and _NAME.match(parts[0]):
        if any(not p for p in parts[1:]):
            raise TemplateError(f"'${{{text}}}' has an empty field name")
        return Reference(text=text, input=parts[0], path=tuple(parts[1:]))
    if parts[0] == "steps":
        if len(parts) < 3 or parts[2] != "output" or not _NAME.match(parts[1]):
            raise TemplateError(f"'${{{text}}}' must have the form ${{steps.STEP.output[.FIELD...]}}")
        if any(not p for p in parts[3:]):
            raise TemplateError(f"'${{{text}}}' has an empty field name")
        return Reference(text=text, step=parts[1], path=tuple(parts[3:]))
    raise TemplateError(f"'${{{text}}}' is neither an input name nor ${{steps.STEP.output.FIELD}}")


def iter_references(value: Any) -> Iterator[tuple[str, Reference]]:
    """Yield (relative field path, reference) for every reference inside a parameter value."""
    if isinstance(value, str):
        for match in _REFERENCE.finditer(value):
            yield "", parse_reference(match.group(1))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            for path, ref in iter_references(item):
                yield f".{key}{path}", ref
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            for path, ref in iter_references(item):
                yield f"[{index}]{path}", ref


def has_references(value: Any) -> bool:
    return next(iter_references(value), None) is not None


def _lookup(ref: Reference, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    if ref.input is not None:
        if ref.input not in inputs:
            raise TemplateError(f"input '{ref.input}' was not given")
        return _walk(inputs[ref.input], ref.path, f"input '{ref.input}'")
    assert ref.step is not None
    if ref.step not in outputs:
        raise TemplateError(f"step '{ref.step}' has no recorded output")
    return _walk(outputs[ref.step], ref.path, f"output of step '{ref.step}'")


def _walk(value: Any, path: tuple[str, ...], what: str) -> Any:
    for index, key in enumerate(path):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            where = ".".join(path[: index + 1])
            raise TemplateError(f"{what} has no field '{where}'")
    return value


def render(value: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """Substitute every reference in `value` (recursively through dicts and lists)."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _lookup(parse_reference(whole.group(1)), inputs, outputs)

        def text_of(match: re.Match[str]) -> str:
            found = _lookup(parse_reference(match.group(1)), inputs, outputs)
            return found if isinstance(found, str) else json.dumps(found)

        return _REFERENCE.sub(text_of, value).replace("$${", "${")
    if isinstance(value, Mapping):
        return {key: render(item, inputs, outputs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, inputs, outputs) for item in value]
    return value
