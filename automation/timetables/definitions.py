"""What operators write to schedule a workflow (CLI, API, Python): checked here, each error naming its
field; nothing is stored until all of it is right."""

from __future__ import annotations

import zoneinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from automation.alerting.definitions import NAME_PATTERN, Seconds
from automation.definitions.schema import field_path
from automation.errors import DefinitionError

#: Shortest interval: Beat checks its schedule about every five seconds.
MIN_EVERY = 10.0
#: Longest interval (a year); a rarer job wants a cron expression.
MAX_EVERY = 366 * 86_400.0
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


class ScheduleDefinition(BaseModel):
    """`workflow` started with `inputs` on `cron` (five fields: minute hour day-of-month month day-of-week,
    in `timezone`) or `every` (seconds, or a duration such as "5m")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    workflow: str = Field(min_length=1, max_length=200)
    cron: str | None = Field(default=None, min_length=9, max_length=200)
    every: Seconds | None = Field(default=None, ge=MIN_EVERY, le=MAX_EVERY)
    inputs: dict[str, Any] = Field(default_factory=dict)
    timezone: str = Field(default="UTC", max_length=64)
    enabled: bool = True
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleDefinition:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of `cron` and `every`")
        if self.cron is not None:
            cron_fields(self.cron)
        if self.every is not None and float(self.every) != int(self.every):
            raise ValueError("`every` must be a whole number of seconds")
        if self.timezone not in zoneinfo.available_timezones():
            raise ValueError(f"timezone '{self.timezone[:64]}' is not a known IANA time zone")
        return self

    @property
    def period(self) -> float:
        """Seconds of one slot: the interval, or a minute for a cron expression (it fires at most once a
        minute)."""
        return float(self.every) if self.every is not None else 60.0

    @staticmethod
    def parse(document: Any, *, where: str = "") -> ScheduleDefinition:
        prefix = f"{where}." if where else ""
        if not isinstance(document, dict):
            raise DefinitionError([(where or "schedule", "must be an object")])
        try:
            return ScheduleDefinition.model_validate(document)
        except ValidationError as exc:
            errors = []
            for error in exc.errors():
                path = field_path(tuple(error["loc"])) or _field_of(error["msg"])
                errors.append((f"{prefix}{path}", error["msg"].removeprefix("Value error, ")))
            raise DefinitionError(errors) from None

    def as_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _field_of(message: str) -> str:
    if message.startswith(("`every`", "Value error, `every`")):
        return "every"
    return "timezone" if "time zone" in message else "cron"


def cron_fields(expression: str) -> dict[str, str]:
    """The five fields of a cron expression, each checked by Celery's own parser (ValueError naming the
    field otherwise)."""
    from celery.schedules import crontab

    parts = expression.split()
    if len(parts) != len(CRON_FIELDS):
        raise ValueError(
            f"cron expression '{expression[:100]}' has {len(parts)} fields; five are needed "
            "(minute hour day-of-month month day-of-week)"
        )
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    for name, value in fields.items():
        try:
            crontab(**{name: value})
        except Exception as exc:  # noqa: BLE001 - Celery's parser raises several types
            raise ValueError(f"cron {name.replace('_', '-')} '{value[:50]}' is not valid: {exc}") from None
    return fields
