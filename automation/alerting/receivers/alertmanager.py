"""Alertmanager's webhook payload (version 4), and the parameters of `notification.alertmanager_webhook`.

A receiver written for Alertmanager's `webhook_config` reads what this sends unchanged. What Alertmanager
computes is computed the same way when left out: an alert's fingerprint, the group's status, its common
labels and annotations, its group key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
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

AlertStatus = Literal["firing", "resolved"]
FIRING: AlertStatus = "firing"
RESOLVED: AlertStatus = "resolved"

#: Alertmanager's end of an alert that has not ended: Go's zero time.
NOT_ENDED = datetime(1, 1, 1, tzinfo=UTC)

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF  # cannot occur in UTF-8: names and values cannot run into each other


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a (64 bits) over the names in order and their
    values, each followed by 0xff; 16 hexadecimal digits."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in (*part.encode(), _SEPARATOR):
                value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def rfc3339(moment: datetime) -> str:
    """A time as Alertmanager writes it: UTC, `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map holds, with the same value."""
    if not maps:
        return {}
    first, *rest = maps
    return {key: value for key, value in first.items() if all(other.get(key) == value for other in rest)}


def label_set(labels: Mapping[str, str]) -> str:
    """A label set as Alertmanager prints it in a group key: `{a="1", b="2"}`."""
    return "{" + ", ".join(f"{name}={json.dumps(labels[name])}" for name in sorted(labels)) + "}"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Alert(_Wire):
    status: AlertStatus
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime = Field(default=NOT_ENDED, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    #: Alertmanager's fingerprint of the labels when not given.
    fingerprint: str | None = Field(default=None, min_length=1)

    def wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint or fingerprint(self.labels),
        }


class AlertGroup(_Wire):
    """One notification of a group of alerts, as Alertmanager's webhook sends it."""

    version: Literal["4"] = "4"
    receiver: str = Field(min_length=1)
    alerts: list[Alert] = Field(min_length=1)
    #: "firing" when any alert fires, else "resolved".
    status: AlertStatus | None = Field(default=None, validate_default=True)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    #: `{}:` and the group labels when not given (the key of a group on Alertmanager's root route).
    group_key: str | None = Field(default=None, min_length=1, alias="groupKey", validate_default=True)
    #: The labels (annotations) every alert has, with the same value, when not given.
    common_labels: dict[str, str] | None = Field(default=None, alias="commonLabels", validate_default=True)
    common_annotations: dict[str, str] | None = Field(
        default=None, alias="commonAnnotations", validate_default=True
    )
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")

    @field_validator("status")
    @classmethod
    def _group_status(cls, value: AlertStatus | None, info: ValidationInfo) -> AlertStatus | None:
        alerts: list[Alert] | None = info.data.get("alerts")
        if value is None and alerts:
            return FIRING if any(alert.status == FIRING for alert in alerts) else RESOLVED
        return value

    @field_validator("group_key")
    @classmethod
    def _default_group_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        labels: dict[str, str] | None = info.data.get("group_labels")
        return value if value is not None or labels is None else f"{{}}:{label_set(labels)}"

    @field_validator("common_labels", "common_annotations")
    @classmethod
    def _common_to_all(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        alerts: list[Alert] | None = info.data.get("alerts")
        if value is not None or not alerts:
            return value
        kind = "labels" if info.field_name == "common_labels" else "annotations"
        return common([getattr(alert, kind) for alert in alerts])

    def payload(self) -> dict[str, Any]:
        """The JSON body, in Alertmanager's field order."""
        return {
            "version": self.version,
            "groupKey": self.group_key,
            "truncatedAlerts": self.truncated_alerts,
            "status": self.status,
            "receiver": self.receiver,
            "groupLabels": self.group_labels,
            "commonLabels": self.common_labels,
            "commonAnnotations": self.common_annotations,
            "externalURL": self.external_url,
            "alerts": [alert.wire() for alert in self.alerts],
        }


class WebhookDelivery(_Wire):
    """Where and how an alert group is POSTed."""

    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    #: Sent as `Authorization: Bearer ...`; never shown.
    bearer_token: SecretStr | None = Field(default=None, min_length=1)
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("bearer_token")
    @classmethod
    def _one_authorization(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        headers: dict[str, str] = info.data.get("headers") or {}
        if value is not None and any(name.lower() == "authorization" for name in headers):
            raise PydanticCustomError("authorization_twice", "cannot go with an Authorization header")
        return value

    def sent_headers(self) -> dict[str, str]:
        sent = dict(self.headers)
        if self.bearer_token is not None:
            sent["Authorization"] = f"Bearer {self.bearer_token.get_secret_value()}"
        return sent


class AlertmanagerWebhookParams(AlertGroup, WebhookDelivery):
    """The delivery (url, headers, bearer_token, timeout), then the payload's own fields."""
