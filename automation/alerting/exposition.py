"""Pushed metrics, read: Prometheus's text exposition format or a JSON document, into plain samples.

Pure: no I/O, no clock (the caller passes `now`, the time of a sample that carries none). What is refused,
each naming its place (`line 7`, `samples[3].value`), in one `InvalidFieldsError` of at most
`MAX_ERRORS` entries:

- more than `MAX_SAMPLES` samples in one request (the request's byte size is the caller's to bound);
- a metric name not matching `[a-zA-Z_:][a-zA-Z0-9_:]*`, a label name not matching `[a-zA-Z_][a-zA-Z0-9_]*`
  or starting with `__` (reserved, as in Prometheus), names over `MAX_NAME_LENGTH` characters, label
  values over `MAX_LABEL_VALUE_LENGTH`, more than `MAX_LABELS` labels, a label given twice;
- a label value holding a NUL character or a lone surrogate (no database stores them);
- a value that is not a finite number. One exception: in the text format a NaN sample is skipped, not
  refused, since that format uses NaN for "no value yet" (a Go client's summary quantile before any
  observation), and refusing it would refuse most real expositions;
- a timestamp before 1970 or more than `MAX_FUTURE_SECONDS` ahead of `now`.

The text format is read here rather than by `prometheus_client.parser`, which reads timestamps but
accepts trailing garbage silently (`m 1 2 3` gives timestamp 0.003) and names no line in its errors.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from automation.errors import InvalidFieldsError

MAX_SAMPLES = 50_000
MAX_LABELS = 32
MAX_NAME_LENGTH = 200
MAX_LABEL_VALUE_LENGTH = 1024
MAX_FUTURE_SECONDS = 600.0
MAX_ERRORS = 20

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
METRIC_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
#: The text format's numbers as Go's ParseFloat reads them (hex floats aside); Python's float() alone
#: would also take "1_000" and surrounding blanks.
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity)|nan", re.IGNORECASE)
TIMESTAMP_MS = re.compile(r"-?\d+")
BLANKS = re.compile(r"[ \t]+")
JSON_SAMPLE_FIELDS = ("labels", "metric", "timestamp", "value")
TEXT_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class PushedSample(NamedTuple):
    metric: str
    labels: dict[str, str]
    value: float
    at: float


def parse_pushed(body: bytes, content_type: str, *, now: float) -> list[PushedSample]:
    """Read a request body by its Content-Type: `text/plain` (the exposition format, any version
    parameter) or `application/json`."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        return parse_json(body, now=now)
    if kind in ("text/plain", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidFieldsError([("body", f"not UTF-8 text (byte {exc.start})")]) from None
        return parse_text(text, now=now)
    raise InvalidFieldsError(
        [("Content-Type", f"{kind!r} is not text/plain (the exposition format) or application/json")]
    )


class _Errors:
    """Collects (place, reason) pairs; past MAX_ERRORS the rest are only counted."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []
        self.more = 0

    def add(self, place: str, reason: str) -> None:
        if len(self.found) < MAX_ERRORS:
            self.found.append((place, reason))
        else:
            self.more += 1

    @property
    def total(self) -> int:
        return len(self.found) + self.more

    def raise_any(self) -> None:
        if self.found:
            extra = [("errors", f"{self.more} more not listed")] if self.more else []
            raise InvalidFieldsError(self.found + extra)


class _Refused(ValueError):
    """One line or field is refused; the message is the reason."""


# -- the text exposition format ------------------------------------------------------------------------


def parse_text(text: str, *, now: float) -> list[PushedSample]:
    """Samples of an exposition in Prometheus's text format (0.0.4): `# HELP` and `# TYPE` lines checked
    and otherwise ignored, histograms and summaries as their flat series (`_bucket`, `_sum`, `_count`),
    optional timestamps in milliseconds."""
    errors = _Errors()
    samples: list[PushedSample] = []
    typed: set[str] = set()
    count = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip(" \t")
        if not line:
            continue
        try:
            if line.startswith("#"):
                _check_comment(line, typed)
                continue
            count += 1
            if count > MAX_SAMPLES:
                errors.add(f"line {number}", f"more than {MAX_SAMPLES} samples in one request")
                break
            sample = _sample_line(line, now)
        except _Refused as exc:
            errors.add(f"line {number}", str(exc))
            continue
        if sample is not None:
            samples.append(sample)
    errors.raise_any()
    return samples


def _check_comment(line: str, typed: set[str]) -> None:
    words = line[1:].split(None, 2)
    if not words or words[0] not in ("HELP", "TYPE"):
        return  # a plain comment
    if len(words) < 2:
        raise _Refused(f"{words[0]} line without a metric name")
    name = words[1]
    _check_metric_name(name)
    if words[0] == "TYPE":
        kind = words[2].strip() if len(words) > 2 else ""
        if kind not in METRIC_TYPES:
            raise _Refused(f"type {kind!r} of {name} is not one of {', '.join(sorted(METRIC_TYPES))}")
        if name in typed:
            raise _Refused(f"second TYPE line for {name}")
        typed.add(name)


def _sample_line(line: str, now: float) -> PushedSample | None:
    found = METRIC_NAME.match(line)
    if found is None:
        raise _Refused("a sample line starts with a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    metric = found.group()
    _check_metric_name(metric)
    position = found.end()
    labels: dict[str, str] = {}
    if line.startswith("{", _skip_blanks(line, position)):
        labels, position = _label_set(line, _skip_blanks(line, position) + 1)
    elif position < len(line) and line[position] not in " \t":
        raise _Refused(f"column {position + 1}: {line[position]!r} cannot follow the metric name {metric}")
    words = BLANKS.split(line[position:].strip(" \t")) if line[position:].strip(" \t") else []
    if not words:
        raise _Refused(f"no value after {metric}")
    if len(words) > 2:
        raise _Refused(f"unexpected text after the timestamp: {' '.join(words[2:])[:40]!r}")
    if not NUMBER.fullmatch(words[0]):
        raise _Refused(f"value {words[0][:40]!r} is not a number")
    value = float(words[0])
    if math.isnan(value):
        return None  # the format's "no value yet" (see the module's docstring)
    if not math.isfinite(value):
        raise _Refused(f"value {words[0]} is not finite")
    at = now
    if len(words) == 2:
        if not TIMESTAMP_MS.fullmatch(words[1]):
            raise _Refused(f"timestamp {words[1][:40]!r} is not an integer number of milliseconds")
        at = int(words[1]) / 1000
        problem = _time_problem(at, now)
        if problem:
            raise _Refused(f"timestamp {words[1]}: {problem}")
    return PushedSample(metric, labels, value, at)


def _label_set(line: str, position: int) -> tuple[dict[str, str], int]:
    """Read `name="value", ...}` from `position` (just after the brace); returns the labels and the
    position after the closing brace."""
    labels: dict[str, str] = {}
    while True:
        position = _skip_blanks(line, position)
        if line.startswith("}", position):
            return labels, position + 1
        found = LABEL_NAME.match(line, position)
        if found is None:
            raise _Refused(f"column {position + 1}: expected a label name or '}}'")
        name = found.group()
        position = _expect(line, _skip_blanks(line, found.end()), "=", f"after label name {name}")
        position = _expect(line, _skip_blanks(line, position), '"', f"to open the value of {name}")
        value, position = _label_value(line, position, name)
        _check_label(name, value, labels)
        labels[name] = value
        position = _skip_blanks(line, position)
        if line.startswith(",", position):
            position += 1
        elif not line.startswith("}", position):
            raise _Refused(f"column {position + 1}: expected ',' or '}}' after the value of {name}")


def _label_value(line: str, position: int, name: str) -> tuple[str, int]:
    """Read a quoted label value from just after its opening quote; escapes are \\\\, \\" and \\n."""
    chars: list[str] = []
    while position < len(line):
        char = line[position]
        if char == '"':
            return "".join(chars), position + 1
        if char == "\\":
            escaped = line[position + 1 : position + 2]
            if escaped not in TEXT_ESCAPES:
                raise _Refused(f"column {position + 1}: invalid escape \\{escaped} in the value of {name}")
            chars.append(TEXT_ESCAPES[escaped])
            position += 2
        else:
            chars.append(char)
            position += 1
    raise _Refused(f"the value of label {name} is not closed by a quote")


def _skip_blanks(line: str, position: int) -> int:
    while position < len(line) and line[position] in " \t":
        position += 1
    return position


def _expect(line: str, position: int, char: str, why: str) -> int:
    if not line.startswith(char, position):
        raise _Refused(f"column {position + 1}: expected {char!r} {why}")
    return position + 1


# -- JSON ----------------------------------------------------------------------------------------------


def parse_json(document: str | bytes | Mapping[str, Any], *, now: float) -> list[PushedSample]:
    """Samples of `{"samples": [{"metric": ..., "labels": {...}, "value": ..., "timestamp": ...}]}`;
    `labels` and `timestamp` are optional, a timestamp is epoch seconds or an RFC 3339 time with a zone.
    `document` is the raw body or its decoded object."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError) as exc:
            raise InvalidFieldsError([("body", f"not JSON: {exc}")]) from None
    if not isinstance(document, Mapping):
        raise InvalidFieldsError([("body", 'must be an object: {"samples": [...]}')])
    errors = _Errors()
    for key in document:
        if key != "samples":
            errors.add(str(key), "unknown field (known: samples)")
    items = document.get("samples")
    if not isinstance(items, list):
        errors.add("samples", "required: a list of samples")
        items = []
    elif len(items) > MAX_SAMPLES:
        errors.add("samples", f"{len(items)} samples; at most {MAX_SAMPLES} in one request")
        items = []
    samples = []
    for index, item in enumerate(items):
        sample = _json_sample(item, f"samples[{index}]", now, errors)
        if sample is not None:
            samples.append(sample)
    errors.raise_any()
    return samples


def _json_sample(item: Any, path: str, now: float, errors: _Errors) -> PushedSample | None:
    if not isinstance(item, Mapping):
        errors.add(path, "must be an object with metric and value")
        return None
    before = errors.total
    for key in item:
        if key not in JSON_SAMPLE_FIELDS:
            errors.add(f"{path}.{key}", f"unknown field (known: {', '.join(JSON_SAMPLE_FIELDS)})")
    metric = item.get("metric")
    if not isinstance(metric, str):
        errors.add(f"{path}.metric", "required: a metric name (a string)")
    else:
        _refused_into(errors, f"{path}.metric", _check_metric_name, metric)
    labels = _json_labels(item.get("labels", {}), f"{path}.labels", errors)
    value = _json_value(item.get("value"), f"{path}.value", errors)
    at = _json_time(item.get("timestamp"), f"{path}.timestamp", now, errors)
    if errors.total > before or not isinstance(metric, str) or value is None or at is None:
        return None
    return PushedSample(metric, labels, value, at)


def _json_labels(labels: Any, path: str, errors: _Errors) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        errors.add(path, "must be an object of label names to string values")
        return {}
    kept: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(value, str):
            errors.add(f"{path}.{name}", "must be a string")
            continue
        if _refused_into(errors, f"{path}.{name}", _check_label, str(name), value, kept):
            kept[str(name)] = value
    return kept


def _json_value(value: Any, path: str, errors: _Errors) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.add(path, "required: a number")
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        errors.add(path, "must be a finite number")
        return None
    return number


def _json_time(stamp: Any, path: str, now: float, errors: _Errors) -> float | None:
    if stamp is None:
        return now
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            errors.add(path, f"{stamp[:40]!r} is not an RFC 3339 time (2026-11-29T10:00:00Z)")
            return None
        if moment.tzinfo is None:
            errors.add(path, f"{stamp[:40]!r} has no time zone (end it with Z or +01:00)")
            return None
        at = moment.timestamp()
    elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            at = float(stamp)
        except OverflowError:
            at = math.inf
        if not math.isfinite(at):
            errors.add(path, "must be a finite number of seconds")
            return None
    else:
        errors.add(path, "must be epoch seconds (a number) or an RFC 3339 time (a string)")
        return None
    problem = _time_problem(at, now)
    if problem:
        errors.add(path, problem + (" (seconds, not milliseconds?)" if at > now * 100 else ""))
        return None
    return at


def _refused_into(errors: _Errors, path: str, check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except _Refused as exc:
        errors.add(path, str(exc))
        return False
    return True


# -- the bounds both formats share ---------------------------------------------------------------------


def _check_metric_name(name: str) -> None:
    if not METRIC_NAME.fullmatch(name):
        raise _Refused(f"{name[:40]!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    if len(name) > MAX_NAME_LENGTH:
        raise _Refused(f"metric name is {len(name)} characters long; at most {MAX_NAME_LENGTH}")


def _check_label(name: str, value: str, labels: Mapping[str, str]) -> None:
    """`name="value"` may join `labels` (those of the same sample read so far)."""
    if not LABEL_NAME.fullmatch(name):
        raise _Refused(f"{name[:40]!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    if name.startswith("__"):
        raise _Refused(f"label {name}: names starting with __ are reserved")
    if len(name) > MAX_NAME_LENGTH:
        raise _Refused(f"label name is {len(name)} characters long; at most {MAX_NAME_LENGTH}")
    if len(value) > MAX_LABEL_VALUE_LENGTH:
        raise _Refused(
            f"label {name}: value is {len(value)} characters long; at most {MAX_LABEL_VALUE_LENGTH}"
        )
    if "\x00" in value or _not_unicode(value):
        raise _Refused(f"label {name}: the value holds a NUL character or is not Unicode text")
    if name in labels:
        raise _Refused(f"label {name} given twice")
    if len(labels) >= MAX_LABELS:
        raise _Refused(f"more than {MAX_LABELS} labels")


def _not_unicode(text: str) -> bool:
    """A lone surrogate (JSON's "\\ud800"): not text PostgreSQL can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _time_problem(at: float, now: float) -> str | None:
    if at < 0:
        return "before 1970"
    if at > now + MAX_FUTURE_SECONDS:
        return f"{at - now:.0f} s ahead of the server's clock; at most {MAX_FUTURE_SECONDS:.0f}"
    return None
