"""A Prometheus server's HTTP API as a metric source: a selector's raw samples, instant and range PromQL.

Errors are `SourceError`s naming the source by name and host (never its credentials, never the URL's
userinfo) and the query; `retryable` is true where asking again may succeed (no connection, a timeout,
HTTP 5xx, 408/425/429) and false where it cannot (other 4xx, Prometheus's `bad_data`, a malformed answer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from automation.alerting.series import METRIC_LABEL, Sample, Selector, Series
from automation.errors import ConfigurationError, SourceError

#: Prometheus's names: metric names may hold colons (recording rules), label names may not.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})
#: Characters of a server's own error text kept in a SourceError (a proxy may answer with a whole page).
MAX_DETAIL = 300
#: Prometheus's error types that say "the server was busy or stopping", not "the query is wrong".
RETRYABLE_ERROR_TYPES = frozenset({"timeout", "canceled", "unavailable"})


class PrometheusSource:
    """Reads series from one Prometheus server (or anything speaking its HTTP API: Thanos, Mimir...).

    `url` is the server's base URL, a path prefix included (`https://example.org/prometheus`). Give a
    bearer token, or a username and password (basic auth), or neither; credentials in the URL's userinfo
    count as a username and password. Holds one connection pool: `close()` it, or use it as a context
    manager.
    """

    def __init__(
        self,
        url: str,
        *,
        bearer_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        verify: bool = True,
        name: str = "prometheus",
    ) -> None:
        errors: list[tuple[str, str]] = []
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ConfigurationError([("url", "not a valid URL")]) from None  # the text may hold a password
        if parsed.scheme not in ("http", "https") or not parsed.host:
            errors.append(("url", "must be an http:// or https:// URL with a host"))
        if parsed.userinfo:
            if username is not None or password is not None or bearer_token is not None:
                errors.append(("url", "holds credentials and so do the other arguments: give them once"))
            username, password = parsed.username, parsed.password
        if bearer_token is not None and (username is not None or password is not None):
            errors.append(("bearer_token", "give a bearer token or a username and password, not both"))
        if password is not None and not username:
            errors.append(("username", "a password needs a username"))
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            errors.append(("timeout", "must be a positive number of seconds"))
        if errors:
            raise ConfigurationError(errors)
        self.name = name
        #: How errors and logs name the server: host and port, nothing else of the URL.
        self.host = parsed.netloc.decode("ascii")
        self.timeout = float(timeout)
        self._secrets = tuple(secret for secret in (bearer_token, password) if secret)
        base = parsed.copy_with(userinfo=b"", query=None, fragment=None)
        self._client = httpx.Client(
            base_url=str(base),
            headers={"Authorization": f"Bearer {bearer_token}"} if bearer_token is not None else None,
            auth=httpx.BasicAuth(username, password or "") if username is not None else None,
            timeout=self.timeout,
            verify=verify,
            follow_redirects=False,  # a redirect to another host must not carry the credentials along
        )

    def __repr__(self) -> str:
        return f"PrometheusSource(name={self.name!r}, host={self.host!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # -- the MetricSource protocol -------------------------------------------------------------------

    def select(self, selector: Selector, start: float, end: float) -> list[Series]:
        """The raw samples of every series matching `selector` with a time in [start, end], oldest first.

        Asks for the range selector `{...}[<end-start>]` at time `end`: the stored samples, no
        interpolation nor lookback. The range is widened by a millisecond and cut here, so both bounds
        are inclusive whichever Prometheus version answers (2.x includes the left bound, 3.x does not).
        """
        query = range_selector(selector, start, end)
        problem = selector_problem(selector)
        if problem:
            raise self._error(query, problem, retryable=False)
        if end < start:
            return []
        data = self._ask("/api/v1/query", {"query": query, "time": _time(end)}, query)
        found = []
        for series in self._series(data, "matrix", query):
            kept = tuple(sample for sample in series.samples if start <= sample.at <= end)
            if kept:
                found.append(Series(series.metric, series.labels, kept))
        return found

    # -- raw PromQL ----------------------------------------------------------------------------------

    def query(self, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
        """An instant query at time `at`: each element's labels (`__name__` kept when the result has it)
        and value; a scalar result is one element without labels. NaN and ±Inf come back as floats."""
        data = self._ask("/api/v1/query", {"query": promql, "time": _time(at)}, promql)
        kind, result = _result(data)
        try:
            if kind == "scalar":
                return [({}, _value(result[1]))]
            if kind == "vector":
                return [(_labels(element["metric"]), _value(element["value"][1])) for element in result]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._error(promql, f"malformed {kind} in the answer ({exc!r})", retryable=False) from None
        raise self._error(promql, f"expected an instant vector or a scalar, got {kind}", retryable=False)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query: one `Series` per result series, evaluated every `step` seconds in [start, end]."""
        form = {"query": promql, "start": _time(start), "end": _time(end), "step": _time(step)}
        return self._series(self._ask("/api/v1/query_range", form, promql), "matrix", promql)

    # -- the HTTP exchange ---------------------------------------------------------------------------

    def _ask(self, path: str, form: Mapping[str, str], query: str) -> Any:
        """POST a query (a form, so a long query is no URL-length problem) and return its `data`."""
        try:
            response = self._client.post(path, data=dict(form))
        except httpx.TimeoutException:
            raise self._error(query, f"no answer within {self.timeout:g} s", retryable=True) from None
        except httpx.HTTPError as exc:  # refused, reset, DNS, TLS: the transport, not the query
            raise self._error(query, f"{type(exc).__name__}: {exc}", retryable=True) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict) and body.get("status") == "success":
            return body.get("data")
        status = response.status_code
        error_type = str(body.get("errorType", "")) if isinstance(body, dict) else ""
        if isinstance(body, dict) and "error" in body:
            detail = f"HTTP {status} {error_type}: {body['error']}"
        else:
            text = " ".join(response.text.split())[:MAX_DETAIL]
            detail = f"HTTP {status}, not a Prometheus answer" + (f": {text}" if text else "")
        if status in (401, 403):
            detail += " (check the credentials)"
        elif 300 <= status < 400:
            detail += f" (a redirect to {_shown(response.headers.get('Location', '?'))}: give that URL)"
        retryable = status >= 500 or status in (408, 425, 429) or error_type in RETRYABLE_ERROR_TYPES
        raise self._error(query, detail, retryable=retryable)

    def _series(self, data: Any, expected: str, query: str) -> list[Series]:
        kind, result = _result(data)
        if kind != expected:
            raise self._error(query, f"expected a {expected}, got {kind}", retryable=False)
        try:
            found = []
            for element in result:
                labels = _labels(element["metric"])
                metric = labels.pop(METRIC_LABEL, "")
                samples = [Sample(float(at), _value(value)) for at, value in element["values"]]
                found.append(Series.of(metric, labels, samples))
        except (KeyError, TypeError, ValueError) as exc:
            raise self._error(query, f"malformed {kind} in the answer ({exc!r})", retryable=False) from None
        return found

    def _error(self, query: str, reason: str, *, retryable: bool) -> SourceError:
        reason = reason[: MAX_DETAIL * 2]
        for secret in self._secrets:  # a proxy's error page might echo a header back
            reason = reason.replace(secret, "***")
        return SourceError(f"{self.name} at {self.host}: query `{query}`: {reason}", retryable=retryable)


def range_selector(selector: Selector, start: float, end: float) -> str:
    """`{__name__="cpu", host="a"}[60001ms]`: the metric as a matcher, so a metric named like a PromQL
    keyword (`offset`, `bool`) is still a selector; label values quoted as PromQL (Go) strings."""
    matchers = [f"{METRIC_LABEL}={_quoted(selector.metric)}"]
    matchers += [f"{m.name}{m.op}{_quoted(m.value)}" for m in selector.matchers]
    millis = max(math.ceil((end - start) * 1000), 0) + 1 if math.isfinite(end - start) else 1
    return f"{{{', '.join(matchers)}}}[{millis}ms]"


def selector_problem(selector: Selector) -> str | None:
    """Why `selector` cannot be sent as PromQL (names are pasted into the query, so they are checked)."""
    if not METRIC_NAME.fullmatch(selector.metric):
        return f"metric name {selector.metric!r} is not a Prometheus metric name"
    for matcher in selector.matchers:
        if not LABEL_NAME.fullmatch(matcher.name):
            return f"label name {matcher.name!r} is not a Prometheus label name"
        if matcher.op not in MATCH_OPS:
            return f"match operator {matcher.op!r} is not one of {', '.join(sorted(MATCH_OPS))}"
    return None


def _quoted(value: str) -> str:
    """A PromQL double-quoted string: backslash, quote and control characters escaped as Go reads them."""
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif char == "\r":
            escaped.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _time(seconds: float) -> str:
    return repr(float(seconds))


def _value(text: Any) -> float:
    """A sample value as Prometheus sends it: a string, "NaN", "+Inf" and "-Inf" included."""
    if not isinstance(text, str):
        raise ValueError(f"sample value {text!r} is not a string")
    return float(text)  # Python reads Prometheus's "NaN", "+Inf", "-Inf" as the same floats


def _labels(metric: Any) -> dict[str, str]:
    if not isinstance(metric, dict):
        raise TypeError(f"labels {metric!r} are not an object")
    return {str(name): str(value) for name, value in metric.items()}


def _result(data: Any) -> tuple[str, Sequence[Any]]:
    if not isinstance(data, dict):
        return "nothing", ()
    kind = str(data.get("resultType", "nothing"))
    result = data.get("result")
    return kind, result if isinstance(result, list) else ()


def _shown(location: str) -> str:
    """A redirect target by scheme and host only (its path or query may hold a token)."""
    try:
        url = httpx.URL(location)
    except httpx.InvalidURL:
        return "an invalid URL"
    return f"{url.scheme}://{url.netloc.decode('ascii')}/…" if url.host else "a path on the same host"
