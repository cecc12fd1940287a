"""Label matchers as operators write them (`severity="critical"`, `service=~"api|web"`) and label digests.

Used by routes, inhibition rules and silences alike; never evaluated, only parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from automation.alerting.regex import RegexError, compile_regex
from automation.alerting.series import Matcher, MatchOp

_MATCHER = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s,{}]*))\s*$""",
    re.VERBOSE,
)


#: Matchers in one list, and the length of one as text: a matcher names a label, it holds no document.
MAX_MATCHERS = 64
MAX_MATCHER_LENGTH = 2048
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MatcherError(ValueError):
    """A matcher does not follow `name OP "value"`; the message says what is wrong."""


def parse_matcher(text: str) -> Matcher:
    if len(text) > MAX_MATCHER_LENGTH:
        raise MatcherError(f"a matcher is {len(text)} characters long; at most {MAX_MATCHER_LENGTH}")
    found = _MATCHER.match(text)
    if not found:
        raise MatcherError(f"'{text}' is not a matcher: expected name=\"value\" (operators = != =~ !~)")
    value = found.group("quoted")
    value = re.sub(r"\\(.)", r"\1", value) if value is not None else found.group("bare")
    op = cast(MatchOp, found.group("op"))
    if op in ("=~", "!~"):
        try:
            compile_regex(value)
        except RegexError as exc:
            raise MatcherError(f"'{text[:100]}': bad regular expression (RE2: {exc})") from None
    return Matcher(found.group("name"), op, value)


def parse_matchers(value: Any) -> tuple[Matcher, ...]:
    """A list of matcher strings, or a mapping of label to value (equality), into matchers."""
    if isinstance(value, Mapping):
        if len(value) > MAX_MATCHERS:
            raise MatcherError(f"{len(value)} matchers; at most {MAX_MATCHERS}")
        return tuple(_equal(k, v) for k, v in value.items())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise MatcherError("expected a list of matchers like 'severity=\"critical\"' or a mapping of labels")
    if len(value) > MAX_MATCHERS:
        raise MatcherError(f"{len(value)} matchers; at most {MAX_MATCHERS}")
    return tuple(_one(item) for item in value)


def _equal(name: Any, value: Any) -> Matcher:
    """`{label: value}`: an equality matcher, the label a label name and the value a string."""
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
        raise MatcherError(f"{str(name)[:100]!r} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
    if not isinstance(value, str):
        raise MatcherError(f"the value of {name} must be a string")
    if len(value) > MAX_MATCHER_LENGTH:
        raise MatcherError(
            f"the value of {name} is {len(value)} characters long; at most {MAX_MATCHER_LENGTH}"
        )
    return Matcher(name, "=", value)


def _one(item: Any) -> Matcher:
    if isinstance(item, Matcher):
        return item
    if isinstance(item, Mapping) and set(item) == {"name", "op", "value"}:  # as stored
        if not all(isinstance(item[key], str) for key in ("name", "op", "value")):
            raise MatcherError("a matcher's name, op and value are strings")
        return parse_matcher(f'{item["name"]}{item["op"]}"{_quote(item["value"])}"')
    if not isinstance(item, str):
        raise MatcherError(f"a matcher is a string like 'severity=\"critical\"', not {type(item).__name__}")
    return parse_matcher(item)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def matcher_dicts(matchers: Iterable[Matcher]) -> list[dict[str, str]]:
    return [{"name": m.name, "op": m.op, "value": m.value} for m in matchers]


def matchers_from_dicts(items: Iterable[Mapping[str, str]]) -> tuple[Matcher, ...]:
    return tuple(Matcher(i["name"], cast(MatchOp, i["op"]), i["value"]) for i in items)


def digest(*parts: Any) -> str:
    """A stable 16-hex-digit digest of JSON-able parts (label sets sorted), like Alertmanager's."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_fingerprint(name: str, labels: Mapping[str, str]) -> str:
    """The fingerprint of a rule's alert: its name and label set."""
    return digest("alert", name, dict(labels))
