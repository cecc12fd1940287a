"""PagerDuty Events API v2: the parameters of `notification.pagerduty` and the event it sends.

The routing key is a `SecretStr`: it goes into the event body and nowhere else (not in outputs, errors or
logs). Pass it as a `secret: true` input of the workflow (`routing_key: "${pd_routing_key}"`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from automation.choices import AlertSeverity
from automation.secrets import redact

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

EventAction = Literal["trigger", "acknowledge", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]

#: The engine's alert severities in PagerDuty's four words; PagerDuty's own words are taken as they are.
PAGERDUTY_SEVERITY: dict[str, str] = {
    AlertSeverity.CRITICAL: "critical",
    AlertSeverity.HIGH: "error",
    AlertSeverity.MEDIUM: "warning",
    AlertSeverity.LOW: "info",
    AlertSeverity.INFO: "info",
}

#: How much of PagerDuty's explanation of a refusal goes into the step's error.
MAX_DETAIL = 500


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Link(_Wire):
    href: str = Field(min_length=1)
    text: str | None = None


class Image(_Wire):
    src: str = Field(min_length=1)
    href: str | None = None
    alt: str | None = None


class Payload(_Wire):
    """What a trigger is about; PagerDuty requires summary, source and severity."""

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1)
    severity: Severity
    timestamp: AwareDatetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: dict[str, Any] | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _in_pagerduty_words(cls, value: Any) -> Any:
        return PAGERDUTY_SEVERITY.get(value, value) if isinstance(value, str) else value


class PagerDutyParams(_Wire):
    url: HttpUrl = HttpUrl(EVENTS_URL)
    routing_key: SecretStr = Field(min_length=1)
    event_action: EventAction = "trigger"
    #: The alert's fingerprint: the dedup_key when none is given, so trigger and resolve meet.
    fingerprint: str | None = Field(default=None, min_length=1, max_length=255)
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255, validate_default=True)
    payload: Payload | None = Field(default=None, validate_default=True)
    links: list[Link] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("dedup_key")
    @classmethod
    def _names_the_incident(cls, value: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("event_action")
        if value is None and action in ("acknowledge", "resolve") and not info.data.get("fingerprint"):
            raise PydanticCustomError(
                "dedup_key_missing",
                "{action} needs the trigger's dedup_key (or the alert's fingerprint)",
                {"action": action},
            )
        return value

    @field_validator("payload")
    @classmethod
    def _trigger_has_payload(cls, value: Payload | None, info: ValidationInfo) -> Payload | None:
        if value is None and info.data.get("event_action") == "trigger":
            raise PydanticCustomError("payload_missing", "a trigger needs one (summary, source, severity)")
        return value

    def chosen_dedup_key(self, idempotency_key: str) -> str:
        """The dedup_key, else the fingerprint, else the step's key (a retried trigger opens one incident)."""
        return self.dedup_key or self.fingerprint or idempotency_key


def event_body(params: PagerDutyParams, *, dedup_key: str) -> dict[str, Any]:
    """The JSON body PagerDuty's enqueue endpoint takes."""
    body: dict[str, Any] = {
        "routing_key": params.routing_key.get_secret_value(),
        "event_action": params.event_action,
        "dedup_key": dedup_key,
    }
    if params.payload is not None:
        body["payload"] = params.payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    if params.links:
        body["links"] = [link.model_dump(mode="json", exclude_none=True) for link in params.links]
    if params.images:
        body["images"] = [image.model_dump(mode="json", exclude_none=True) for image in params.images]
    return body


def refusal_detail(answer: Any, params: PagerDutyParams) -> str:
    """PagerDuty's reason for a refusal (`message` and `errors` of its JSON answer), routing key hidden."""
    if not isinstance(answer, dict):
        return ""
    parts = [str(answer["message"])] if answer.get("message") else []
    errors = answer.get("errors")
    if isinstance(errors, list):
        parts.extend(str(error) for error in errors)
    detail = redact("; ".join(parts), [params.routing_key.get_secret_value()])
    return detail[:MAX_DETAIL]
