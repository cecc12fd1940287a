"""Label regexes as Prometheus runs them: RE2 (time linear in the value, no backtracking), anchored at
both ends, `.` matching a newline too (Prometheus compiles `^(?s:pattern)$`).

Patterns come from the API (silences, routes, inhibition rules, rule selectors): Python's backtracking
`re` would let one `(a|aa)*c` hold a worker for minutes. A pattern RE2 refuses (lookaround,
backreferences, a repetition past 1000) is refused where it is written, naming the field.
"""

from __future__ import annotations

import re
from typing import Any

import re2  # no type information: ignore_missing_imports (pyproject)

#: Compiled patterns kept at most: a matcher is matched against every alert, its pattern compiled once.
_MAX_CACHED = 4096
#: RE2's bound on a repetition count, which Go's RE2 (Prometheus) enforces on every count.
MAX_REPEAT = 1000
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_compiled: dict[str, Any] = {}


class RegexError(ValueError):
    """RE2 cannot compile the pattern; the message says why."""


def _options() -> Any:
    options = re2.Options()
    options.dot_nl = True
    # RE2 would also write each refused pattern to stderr: the RegexError says it once, where it belongs.
    options.log_errors = False
    return options


_OPTIONS = _options()


def compile_regex(pattern: str) -> Any:
    """The compiled pattern (cached); RegexError when RE2 refuses it."""
    found = _compiled.get(pattern)
    if found is None:
        _check_repeats(pattern)
        try:
            found = re2.compile(pattern, _OPTIONS)
        except re2.error as exc:
            reason = exc.args[0] if exc.args else "cannot be compiled"
            text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
            raise RegexError(text) from None
        if len(_compiled) >= _MAX_CACHED:
            _compiled.clear()
        _compiled[pattern] = found
    return found


def _check_repeats(pattern: str) -> None:
    """Refuse a count past MAX_REPEAT as Go does: C++ RE2 reads a count too large to parse
    (`a{99999999999}`) as literal text, which Prometheus would refuse."""
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("]", index + 1) or pattern.startswith("^]", index + 1):
                index += 2 if pattern[index + 1] == "]" else 3  # a leading `]` is a member
                continue
        elif char == "{":
            found = _REPEAT.match(pattern, index)
            if found and any(n and (len(n) > 4 or int(n) > MAX_REPEAT) for n in found.groups()):
                raise RegexError(f"invalid repeat count {found.group()[:40]}: at most {MAX_REPEAT}")
        index += 1


def full_match(pattern: str, value: str) -> bool:
    """Whether `pattern` matches the whole of `value` (RegexError when it is not an RE2 pattern)."""
    return compile_regex(pattern).fullmatch(value) is not None
