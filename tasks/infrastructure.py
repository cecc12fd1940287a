"""Infrastructure actions over a pluggable provider: `restart_service` and `scale_service`."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from automation.actions import ActionContext, action
from automation.incidents.choices import ChangeKind
from automation.providers.base import RestartResult, ScaleResult


class RestartParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_name: str = Field(min_length=1)
    provider: str = "local"
    graceful: bool = True
    grace_period: float | None = Field(default=None, ge=0)
    wait_for_health: bool = True
    health_timeout: float | None = Field(default=None, gt=0)


class ScaleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_name: str = Field(min_length=1)
    provider: str = "local"
    replicas: int | None = Field(default=None, ge=0)
    scale_factor: float | None = Field(default=None, gt=0)
    min_instances: int = Field(default=0, ge=0)
    max_instances: int | None = Field(default=None, ge=1)
    wait_for_health: bool = True
    health_timeout: float | None = Field(default=None, gt=0)


def field_names(result: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(result))


def _provider(name: str) -> Any:
    from automation.providers import get_provider

    return get_provider(name)


@action(
    "infrastructure.restart_service",
    params=RestartParams,
    outputs=field_names(RestartResult),
    changes=ChangeKind.WORKFLOW_RUN,
)
def restart_service(ctx: ActionContext, params: RestartParams) -> dict[str, Any]:
    """Restart a service (gracefully: SIGTERM, then SIGKILL after the grace period) and wait for health."""
    result: dict[str, Any] = _provider(params.provider).restart(
        params.service_name,
        graceful=params.graceful,
        grace_period=params.grace_period,
        wait_for_health=params.wait_for_health,
        health_timeout=params.health_timeout,
        idempotency_key=ctx.idempotency_key,
    )
    return result


@action(
    "infrastructure.scale_service",
    params=ScaleParams,
    outputs=field_names(ScaleResult),
    changes=ChangeKind.WORKFLOW_RUN,
)
def scale_service(ctx: ActionContext, params: ScaleParams) -> dict[str, Any]:
    """Scale a service to `replicas`, or by `scale_factor` within [min_instances, max_instances]."""
    from automation.errors import ActionError

    provider = _provider(params.provider)
    if params.replicas is not None:
        target = params.replicas
    elif params.scale_factor is not None:
        current = int(provider.status(params.service_name)["running_replicas"])
        target = max(1, round(current * params.scale_factor))
    else:
        raise ActionError("parameters: give `replicas` or `scale_factor`", retryable=False)
    target = max(target, params.min_instances)
    if params.max_instances is not None:
        target = min(target, params.max_instances)
    result: dict[str, Any] = provider.scale(
        params.service_name,
        replicas=target,
        wait_for_health=params.wait_for_health,
        health_timeout=params.health_timeout,
        idempotency_key=ctx.idempotency_key,
    )
    return result
