"""The remediation document operators write (YAML, JSON or a dict): policies mapping alerts to the
workflow that fixes them, with the workflow's inputs made from the alert, how the fix is verified, and
the guards that bound it. Shapes are checked here; that each workflow exists is checked when the document
is stored (services/remediation_config.py).

```yaml
policies:
  - name: restart-api
    match: ['alertname="api_down"', 'service=~"api-.*"']   # label matchers of the alert
    workflow: restart-service
    inputs: {service: "${alert.labels.service}"}
    verify: {http: {url: "http://127.0.0.1:8080/health", status: 200}, within: 60s}
    rate_limit: {per_service: {runs: 3, window: 10m}, per_workflow: {runs: 10, window: 10m}}
    circuit_breaker: {failures: 3, reset_after: 30m}
    blast_radius: {max_services: 2, max_replica_percent: 50, replicas_touched: 1, provider: local}
    loop: {max_repeats: 3, window: 30m}
```
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from automation.alerting.definitions import NAME_PATTERN, Matchers, Seconds
from automation.alerting.matchers import matches_all
from automation.definitions.schema import definition_error
from automation.errors import DefinitionError

#: Policies one document holds at most.
MAX_POLICIES = 200


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HealthCheck(_Model):
    """An HTTP GET the fix must answer: `url` may use ${alert.labels.X}."""

    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    status: int = Field(default=200, ge=100, le=599)
    timeout: Seconds = 5.0


class Verification(_Model):
    """How success is seen, within `within` seconds of the run's end: the alert's own condition resolves
    (the default), or a health check answers (`http`)."""

    #: Implied when there is no `http`; true beside `http` is refused (one way of seeing it).
    alert_resolves: bool | None = None
    http: HealthCheck | None = None
    within: Seconds = 300.0

    @model_validator(mode="after")
    def _one_way(self) -> Verification:
        if self.http is not None and self.alert_resolves:
            raise ValueError("give either alert_resolves or http, not both")
        if self.http is None and self.alert_resolves is False:
            raise ValueError("nothing to verify by: give alert_resolves: true or an http check")
        return self


class Rate(_Model):
    runs: int = Field(ge=1, le=100_000)
    window: Seconds = Field(gt=0)


class RateLimit(_Model):
    """Runs started at most, per service (the alert's service label) and per workflow (any policy)."""

    per_service: Rate | None = Rate(runs=3, window=600.0)
    per_workflow: Rate | None = Rate(runs=10, window=600.0)


class CircuitBreaker(_Model):
    """After `failures` failed remediations of this policy in a row, it acts no more until `reset_after`
    has passed since the last failure (then one trial run)."""

    failures: int = Field(default=3, ge=1, le=1000)
    reset_after: Seconds = 1800.0


class BlastRadius(_Model):
    """At most `max_services` services under active remediation at once (any policy), and at most
    `max_replica_percent` of a service's replicas (read from `provider`) touched at once."""

    max_services: int | None = Field(default=3, ge=1, le=10_000)
    max_replica_percent: float | None = Field(default=None, gt=0, le=100)
    replicas_touched: int = Field(default=1, ge=1, le=10_000)
    provider: str = Field(default="local", min_length=1, max_length=100)


class LoopDetection(_Model):
    """The same remediation re-triggered by its own effect: this alert fired again after `max_repeats`
    remediations of it that succeeded within `window`."""

    max_repeats: int = Field(default=3, ge=1, le=1000)
    window: Seconds = 1800.0


class RemediationPolicy(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    match: Matchers
    workflow: str = Field(min_length=1, max_length=200)
    #: The run's inputs; `${alert.labels.X}`, `${alert.value}`... (default: {"alert": the alert}).
    inputs: dict[str, Any] | None = None
    #: The label naming the service it acts on (rate limit per service, blast radius).
    service_label: str = Field(default="service", min_length=1, max_length=100)
    verify: Verification = Field(default_factory=Verification)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    blast_radius: BlastRadius = Field(default_factory=BlastRadius)
    loop: LoopDetection = Field(default_factory=LoopDetection)
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _matches_something(self) -> RemediationPolicy:
        if not self.match:
            raise ValueError("match: give at least one label matcher (a policy for every alert is refused)")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.match, labels)


class RemediationDocument(_Model):
    policies: tuple[RemediationPolicy, ...] = Field(default=(), max_length=MAX_POLICIES)

    @staticmethod
    def parse(document: Any, *, workflows: Collection[str]) -> RemediationDocument:
        """The document, checked whole; DefinitionError naming each field at fault. `workflows` are the
        registered workflows' names."""
        if not isinstance(document, dict):
            raise DefinitionError([("remediation", "expected a mapping with a list of policies")])
        try:
            parsed = RemediationDocument.model_validate(document)
        except ValidationError as exc:
            raise definition_error(exc) from None
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for i, policy in enumerate(parsed.policies):
            if policy.name in seen:
                problems.append((f"policies[{i}].name", f"duplicate policy name '{policy.name}'"))
            seen.add(policy.name)
            if policy.workflow not in workflows:
                problems.append((f"policies[{i}].workflow", f"unknown workflow '{policy.workflow}'"))
        if problems:
            raise DefinitionError(problems)
        return parsed

    def matching(self, labels: Mapping[str, str]) -> list[RemediationPolicy]:
        """The policies whose matchers all match `labels`, in document order."""
        return [policy for policy in self.policies if policy.matches(labels)]

    def policy(self, name: str) -> RemediationPolicy | None:
        return next((p for p in self.policies if p.name == name), None)
