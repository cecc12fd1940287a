"""AutomationConfig: the engine-wide knobs of the public API, validated on construction."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automation.choices import AutomationLevel
from automation.errors import ConfigurationError


class AutomationConfig(BaseModel):
    """Engine-wide settings; `AutomationEngine(config)` stores them where every worker reads them.

    - level: how far remediation may act alone (stored and exposed by the API).
    - max_concurrent_actions: actions running at once across the whole fleet (a Redis semaphore).
    - retry_attempts: default retries of an action (exponential backoff with jitter).
    - timeout_seconds: default hard time limit of an action.
    - monitoring_interval: period, in seconds, of the Beat monitoring jobs.
    - incident_correlation_window: seconds within which alerts of services linked in the dependency
      graph join one incident.
    - incident_resolve_hold: seconds an incident's alerts must all stay resolved before it resolves.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    level: AutomationLevel = AutomationLevel.SUPERVISED
    max_concurrent_actions: int = Field(default=50, ge=1, le=100_000)
    retry_attempts: int = Field(default=3, ge=0, le=100)
    timeout_seconds: int = Field(default=300, ge=1)
    monitoring_interval: int = Field(default=60, ge=1)
    enable_predictive_scaling: bool = False
    enable_ml_optimization: bool = False
    retry_backoff_seconds: float = Field(default=2.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=300.0, gt=0)
    incident_correlation_window: float = Field(default=300.0, ge=0, le=86_400)
    incident_resolve_hold: float = Field(default=300.0, ge=0, le=7 * 86_400)

    def __init__(self, **data: object) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(
                [(".".join(str(p) for p in err["loc"]) or "config", err["msg"]) for err in exc.errors()]
            ) from None
