"""Run conditions: `name`, `not name` or `name OP literal`, checked against run inputs, never evaluated.

OP is one of == != > >= < <=; a literal is a number, a quoted string, true, false or null. A name may be
dotted to reach into an object input (`service.tier == "gold"`). A name not given in the inputs is false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_CONDITION = re.compile(
    r"""^\s*(?P<negate>not\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*
        (?:(?P<op>==|!=|>=|<=|>|<)\s*(?P<literal>.+?))?\s*$""",
    re.VERBOSE,
)
_MISSING = object()


class ConditionError(ValueError):
    """A condition does not follow the grammar."""


@dataclass(frozen=True)
class Condition:
    text: str
    name: str
    negate: bool = False
    op: str | None = None
    literal: Any = None

    @property
    def input_name(self) -> str:
        return self.name.split(".", 1)[0]

    def holds(self, inputs: Mapping[str, Any]) -> bool:
        value: Any = inputs
        for key in self.name.split("."):
            value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if self.op is None:
            result = value is not _MISSING and bool(value)
            return not result if self.negate else result
        if value is _MISSING:
            return False
        try:
            result = _compare(value, self.op, self.literal)
        except TypeError:
            return False
        return not result if self.negate else result


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op == "==":
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    if isinstance(value, bool) or isinstance(literal, bool) or literal is None:
        raise TypeError("ordering needs numbers or strings")
    if op == ">":
        return bool(value > literal)
    if op == ">=":
        return bool(value >= literal)
    if op == "<":
        return bool(value < literal)
    return bool(value <= literal)


def parse_condition(text: str) -> Condition:
    match = _CONDITION.match(text)
    if not match:
        raise ConditionError(f"'{text}' is not of the form NAME, not NAME, or NAME OP LITERAL")
    literal: Any = None
    if match.group("op"):
        raw = match.group("literal")
        if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
            literal = raw[1:-1]
        else:
            try:
                literal = json.loads(raw)
            except ValueError:
                raise ConditionError(
                    f"'{raw}' in '{text}' is not a number, a quoted string, true, false or null"
                ) from None
            if isinstance(literal, dict | list):
                raise ConditionError(f"'{raw}' in '{text}' must be a scalar literal")
    return Condition(
        text=text,
        name=match.group("name"),
        negate=bool(match.group("negate")),
        op=match.group("op"),
        literal=literal,
    )
