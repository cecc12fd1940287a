"""What operators write: alert rules (Python dict, YAML or JSON) and the alerting document (routes,
receivers, inhibition rules, sources). Shapes are checked here; `automation.alerting.rules` parses the
condition text. Durations are seconds or text (`90s`, `5m`, `1h30m`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from automation.alerting.choices import SourceKind
from automation.alerting.matchers import MAX_MATCHER_LENGTH, MAX_MATCHERS, MatcherError, parse_matchers
from automation.alerting.routing import Route, Timings
from automation.alerting.series import Matcher
from automation.choices import AlertSeverity
from automation.definitions.schema import definition_error
from automation.errors import DefinitionError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$"
#: Routes nest no deeper (a route's path, `0.3.1`, names its notification groups).
MAX_ROUTE_DEPTH = 20
#: The built-in receiver: it only writes the notification log.
LOG_RECEIVER = "log"

#: Alert action types as the product's examples name them, and the action each one is.
ACTION_ALIASES = {
    "scale_infrastructure": "infrastructure.scale_service",
    "scale_service": "infrastructure.scale_service",
    "restart_service": "infrastructure.restart_service",
    "notify": "notification.webhook",
    "webhook": "notification.webhook",
    "http": "http.request",
}


def _seconds(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected seconds or a duration like 5m")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if not _DURATION.match(text):
            raise ValueError(f"'{value}' is not a duration: expected seconds or e.g. 30s, 5m, 1h30m")
        return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text))
    raise ValueError("expected seconds or a duration like 5m")


MAX_SECONDS = 366 * 86_400
Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    Field(ge=0, le=MAX_SECONDS),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
                {"type": "string", "pattern": _DURATION.pattern},
            ],
            "description": "Seconds, or a duration such as 90s, 5m, 1h30m",
        }
    ),
]


def _matchers(value: Any) -> Any:
    try:
        return parse_matchers(value)
    except MatcherError as exc:
        raise ValueError(str(exc)) from None


_MATCHER_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": r'^[A-Za-z_][A-Za-z0-9_]*(=|!=|=~|!~)("([^"\\]|\\.)*"|[^"\s,{}]*)$',
            "maxLength": MAX_MATCHER_LENGTH,
            "description": 'name OP "value", OP one of = != =~ !~',
        },
        {
            "type": "object",
            "description": "as stored and answered",
            "properties": {
                "name": {"type": "string"},
                "op": {"enum": ["=", "!=", "=~", "!~"]},
                "value": {"type": "string"},
            },
            "required": ["name", "op", "value"],
            "additionalProperties": False,
        },
    ]
}
MATCHERS_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": _MATCHER_SCHEMA, "maxItems": MAX_MATCHERS},
        {
            "type": "object",
            "description": "label name to value: equality matchers",
            "additionalProperties": {"type": "string"},
            "maxProperties": MAX_MATCHERS,
        },
    ]
}
Matchers = Annotated[tuple[Matcher, ...], BeforeValidator(_matchers), WithJsonSchema(MATCHERS_SCHEMA)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True
    )


class AlertAction(_Model):
    """One remediation step of an alert (`type` is an action type or one of ACTION_ALIASES)."""

    type: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int | None = Field(default=None, ge=1)
    retry_attempts: int | None = Field(default=None, ge=0, le=100)

    @property
    def action_type(self) -> str:
        return ACTION_ALIASES.get(self.type, self.type)


class WorkflowCall(_Model):
    """An existing workflow a firing starts; inputs may use ${alert.labels.X}, ${alert.value}..."""

    name: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict)


class Flap(_Model):
    changes: int = Field(default=6, ge=0, le=1000)
    window: Seconds = 3600.0


class RuleDefinition(_Model):
    """An alert rule. Without `condition` and `expr` it is evaluated by nobody: it names what to do with
    alerts received (Alertmanager webhook, events endpoint) whose `alertname` is its name."""

    name: str = Field(pattern=NAME_PATTERN)
    condition: str | None = Field(default=None, min_length=1, max_length=4000)
    #: Raw PromQL for the `prometheus` source, with `for`.
    expr: str | None = Field(default=None, min_length=1, max_length=4000)
    for_: Seconds = Field(default=0.0, alias="for")
    source: Literal["push", "prometheus"] = "push"
    severity: AlertSeverity = AlertSeverity.MEDIUM
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    keep_firing_for: Seconds = 0.0
    cooldown_period: Seconds = 0.0
    flap: Flap = Field(default_factory=Flap)
    actions: list[AlertAction] = Field(default_factory=list, max_length=50)
    workflow: WorkflowCall | None = None
    #: The labels an alert must have for its remediation to start (its notification is sent regardless).
    #: A received alert's labels are its sender's: a rule acting on `${alert.labels.service}` lists here
    #: the services it may act on, so a mislabelled (or forged) alert cannot point the action elsewhere.
    remediate_when: Matchers = ()
    description: str = ""

    @model_validator(mode="after")
    def _one_of(self) -> RuleDefinition:
        if self.condition is not None and self.expr is not None:
            raise ValueError("give one of `condition` (rule language) and `expr` (PromQL), not both")
        if self.condition is None and self.expr is None and not (self.actions or self.workflow):
            raise ValueError(
                "give a `condition` (or `expr`), or `actions`/`workflow` for alerts received by this name"
            )
        if self.expr is not None and self.source != SourceKind.PROMETHEUS:
            raise ValueError("`expr` (PromQL) needs `source: prometheus`")
        if self.condition is not None and self.for_:
            raise ValueError("`for` goes with `expr`; in a condition write `AND duration > 5m`")
        if self.actions and self.workflow is not None:
            raise ValueError("give `actions` or `workflow`, not both")
        if self.remediate_when and not (self.actions or self.workflow):
            raise ValueError("`remediate_when` needs `actions` or `workflow` to guard")
        return self

    @staticmethod
    def parse(document: Any, *, where: str = "") -> RuleDefinition:
        if not isinstance(document, dict):
            raise DefinitionError([(where or "rule", "expected a mapping")])
        try:
            return RuleDefinition.model_validate(document)
        except ValidationError as exc:
            raise definition_error(exc, where) from None

    def as_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RouteDefinition(_Model):
    receiver: str | None = None
    matchers: Matchers = ()
    group_by: tuple[str, ...] | None = None
    group_wait: Seconds | None = None
    group_interval: Seconds | None = Field(default=None, gt=0)
    repeat_interval: Seconds | None = Field(default=None, gt=0)
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteDefinition] = Field(default_factory=list)

    def build(self, parent: Route | None = None, path: str = "0") -> Route:
        inherited = parent.timings if parent else Timings()
        timings = Timings(
            group_wait=self.group_wait if self.group_wait is not None else inherited.group_wait,
            group_interval=self.group_interval
            if self.group_interval is not None
            else inherited.group_interval,
            repeat_interval=(
                self.repeat_interval if self.repeat_interval is not None else inherited.repeat_interval
            ),
        )
        receiver = self.receiver or (parent.receiver if parent else "")
        group_by = (
            self.group_by if self.group_by is not None else (parent.group_by if parent else ("alertname",))
        )
        route = Route(receiver, self.matchers, group_by, timings, self.continue_, (), path)
        children = tuple(child.build(route, f"{path}.{i}") for i, child in enumerate(self.routes))
        return Route(receiver, self.matchers, group_by, timings, self.continue_, children, path)


class ReceiverDefinition(_Model):
    """A receiver and how it delivers: exactly one of slack, webhook, pagerduty, email (action parameters
    of notification.webhook, notification.alertmanager_webhook, notification.pagerduty, notification.email
    without the message content, which each notification fills in)."""

    name: str = Field(pattern=NAME_PATTERN)
    slack: dict[str, Any] | None = None
    webhook: dict[str, Any] | None = None
    pagerduty: dict[str, Any] | None = None
    email: dict[str, Any] | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> ReceiverDefinition:
        kinds = [k for k in ("slack", "webhook", "pagerduty", "email") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of slack, webhook, pagerduty, email")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("slack", "webhook", "pagerduty", "email") if getattr(self, k) is not None)

    @property
    def settings(self) -> dict[str, Any]:
        found: dict[str, Any] = getattr(self, self.kind)
        return found


class InhibitRuleDefinition(_Model):
    source_matchers: Matchers
    target_matchers: Matchers
    equal: tuple[str, ...] = ()


def userinfo_problem(url: str, instead: str) -> str | None:
    """Why `url` is refused when it holds `user:password@` (a credential then shown wherever the URL is:
    the alerting document, workflow definitions, logs), else None."""
    try:
        found = urlsplit(url)
    except ValueError:
        return None  # not a URL: the action's own validation says so
    if found.username is None and found.password is None:
        return None
    return f"must not hold user:password@ (it would be shown with the URL): use {instead}"


class PrometheusSourceDefinition(_Model):
    url: str = Field(pattern=r"^https?://", max_length=2000)
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        problem = userinfo_problem(value, "the username and password fields")
        if problem:
            raise ValueError(problem)
        return value


class AlertingDocument(_Model):
    route: RouteDefinition = Field(default_factory=lambda: RouteDefinition(receiver=LOG_RECEIVER))
    receivers: list[ReceiverDefinition] = Field(default_factory=list)
    inhibit_rules: list[InhibitRuleDefinition] = Field(default_factory=list)
    prometheus: PrometheusSourceDefinition | None = None
    #: Pushed samples older than this are dropped.
    retention: Seconds = Field(default=48 * 3600.0, gt=0)

    @staticmethod
    def parse(document: Any) -> AlertingDocument:
        if not isinstance(document, dict):
            raise DefinitionError([("alerting", "expected a mapping")])
        try:
            parsed = AlertingDocument.model_validate(document)
        except ValidationError as exc:
            raise definition_error(exc) from None
        problems = parsed.problems()
        if problems:
            raise DefinitionError(problems)
        return parsed

    def problems(self) -> list[tuple[str, str]]:
        """What the shapes do not say: every route's receiver exists (the root route names one), and
        receiver names are unique. Checked here, not in a model validator, so each names its field."""
        known = {r.name for r in self.receivers} | {LOG_RECEIVER}
        found: list[tuple[str, str]] = []
        if _route_depth(self.route) > MAX_ROUTE_DEPTH:
            return [("route", f"routes nest at most {MAX_ROUTE_DEPTH} deep")]
        if not self.route.receiver:
            found.append(("route.receiver", "the root route needs a receiver (every alert reaches it)"))
        for path, receiver in _route_receivers(self.route, "route"):
            if receiver not in known:
                found.append(
                    (f"{path}.receiver", f"unknown receiver '{receiver}' (known: {', '.join(sorted(known))})")
                )
        for i, defined in enumerate(self.receivers):
            url = defined.settings.get("url")
            problem = userinfo_problem(url, _RECEIVER_AUTH[defined.kind]) if isinstance(url, str) else None
            if problem:
                found.append((f"receivers[{i}].{defined.kind}.url", problem))
        names = [r.name for r in self.receivers]
        for i, name in enumerate(names):
            if name in names[:i]:
                found.append((f"receivers[{i}].name", f"a second receiver named '{name}'"))
            elif name == LOG_RECEIVER:
                found.append((f"receivers[{i}].name", f"'{LOG_RECEIVER}' is the built-in receiver"))
        return found

    def receiver(self, name: str) -> ReceiverDefinition | None:
        return next((r for r in self.receivers if r.name == name), None)


#: What a receiver of each kind authenticates with instead of user:password@ in its URL.
_RECEIVER_AUTH = {
    "slack": "the URL's own path (Slack's webhook URL) or headers",
    "webhook": "bearer_token or headers",
    "pagerduty": "routing_key",
    "email": "username and password",
}


def _route_receivers(route: RouteDefinition, path: str) -> list[tuple[str, str]]:
    found = [(path, route.receiver)] if route.receiver else []
    for i, child in enumerate(route.routes):
        found.extend(_route_receivers(child, f"{path}.routes[{i}]"))
    return found


def _route_depth(route: RouteDefinition) -> int:
    return 1 + max((_route_depth(child) for child in route.routes), default=0)
