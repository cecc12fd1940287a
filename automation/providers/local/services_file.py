"""The services file of the `local` provider: its pydantic schema, loading, and `ServicesFileError`.

Errors name the field at fault and never quote the file's values, which could hold a secret.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from automation.providers.base import ProviderError

SERVICES_FILE_ENV = "AUTOMATION_SERVICES_FILE"
DEFAULT_SERVICES_FILE = "services.yml"

#: A release version: what `{version}` becomes in a command, and what a replica reports it runs.
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,99}$"

_SERVICE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class ServicesFileError(ProviderError):
    """The services file is missing or invalid; `errors` lists (field path, reason) pairs."""

    def __init__(self, path: Path, errors: list[tuple[str, str]]) -> None:
        self.path = path
        self.errors = list(errors)
        detail = "; ".join(f"{field}: {reason}" if field else reason for field, reason in self.errors)
        super().__init__(
            f"invalid services file {path}: {detail}",
            retryable=False,
            field=self.errors[0][0] if self.errors else None,
        )


class ServiceSpec(BaseModel):
    """One service of the services file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    command: list[str] = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    replicas: int = Field(default=1, ge=0)
    health_url: str | None = None
    grace_period: float = Field(default=10.0, ge=0)
    health_timeout: float = Field(default=30.0, gt=0)
    cwd: str = "."
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = True
    #: The version the declared command runs, until a release deploys another (`{version}` in templates).
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)

    @model_validator(mode="after")
    def _port_placeholder_needs_port(self) -> ServiceSpec:
        templates = [*self.command, self.health_url or "", *self.env.values()]
        if self.port is None and any("{port}" in template for template in templates):
            raise ValueError("{port} is used but no port is set")
        return self

    def port_of(self, replica: int) -> int | None:
        return None if self.port is None else self.port + replica


class ServicesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    state_dir: str | None = None
    services: dict[str, ServiceSpec]

    @field_validator("services")
    @classmethod
    def _names_are_file_safe(cls, services: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        for name in services:
            if not name or not set(name) <= _SERVICE_NAME_CHARS or name.startswith("."):
                raise ValueError(f"service name '{name}' may only hold letters, digits, '.', '_' and '-'")
        return services


_REASONS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "too_short": "must not be empty",
    "string_pattern_mismatch": "must be letters, digits, '.', '_', '+' or '-', from a letter or digit",
}


def _reason(error: ErrorDetails) -> str:
    # Built from the error type only: pydantic's own text may quote the input, which could be a secret.
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in _REASONS:
        return _REASONS[kind]
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {limit}"
    if kind == "value_error":
        return str(ctx.get("error", "is invalid"))
    return "is invalid"


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def load_services_file(path: Path) -> ServicesFile:
    """Read and validate the services file; any fault raises `ServicesFileError` naming the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServicesFileError(
            path, [("", f"file not found (set {SERVICES_FILE_ENV} or pass services_file)")]
        ) from None
    except OSError as exc:
        raise ServicesFileError(path, [("", f"cannot be read: {exc.strerror}")]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the problem and position: the YAML snippet around the mark could hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "is not valid YAML"
        raise ServicesFileError(path, [("", f"{where}{problem}")]) from None
    if not isinstance(document, dict):
        raise ServicesFileError(path, [("", "must be a mapping with a 'services' key")])
    try:
        return ServicesFile.model_validate(document)
    except ValidationError as exc:
        raise ServicesFileError(
            path, [(_field_path(error["loc"]), _reason(error)) for error in exc.errors()]
        ) from None
