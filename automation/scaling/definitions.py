"""What operators write: scaling targets (Python dict, YAML or JSON). Shapes are checked here, each error
naming its field; the loop (`automation.scaling.services.loop`, `services.pools`) reads the stored
document back.

A target is of one of two kinds: a `service` whose load is a metric query, and a `celery` target, the
engine's own workers of one queue (`queue`), sized by the pool policy (`pool`, automation/scaling/
workerpool.py) from the queue's backlog and arrivals read from the broker; its service is the `local`
provider's `celery-<queue>` (automation/scaling/worker_services.py).

Durations are seconds or text (`90s`, `5m`, `1h30m`), as in the alerting definitions.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from automation.alerting.definitions import NAME_PATTERN, Matchers, Seconds
from automation.definitions.schema import definition_error
from automation.delivery import MONITORING_QUEUE
from automation.errors import DefinitionError
from automation.scaling.choices import PolicyKind, TargetKind
from automation.scaling.worker_services import (
    SCALE_RUN_MARGIN,
    longest_scale_grace,
    scale_run_timeout,
    worker_service_name,
)
from automation.scaling.workerpool import WorkerPoolSettings

#: Targets in one `scaling apply` file or one list answer.
MAX_TARGETS = 1000
#: Longest PromQL query of a load.
MAX_QUERY_LENGTH = 4000
#: Metric names as the push store and Prometheus spell them.
METRIC_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
#: Queue names a `celery` target accepts: its service `celery-<queue>` must be a valid `local` service
#: name (letters, digits, '.', '_', '-') and the queue a `-Q` argument (no leading '-').
QUEUE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$"
#: What a `celery` target does not read: its load is its queue, its policy the pool policy (`pool`).
SERVICE_ONLY_FIELDS = (
    "load",
    "capacity_per_replica",
    "target_utilization",
    "lead_time",
    "provisioning_delay",
    "scale_in",
    "scale_up",
    "forecast",
)
#: What only a `celery` target reads.
CELERY_ONLY_FIELDS = ("queue", "pool")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True
    )


#: Points of history one fit reads (a week at one minute is 10,080), and the most Prometheus answers per
#: series in one range query; steps one forecast covers.
MAX_HISTORY_POINTS = 50_000
PROMETHEUS_POINTS = 11_000
MAX_HORIZON_POINTS = 10_000


class LoadQuery(_Model):
    """The load of a target: a PromQL query on the Prometheus source of the alerting document, or a metric
    of the engine's push store (its series matching `matchers`), combined by `aggregate`, read at `step`.

    With `per_replica`, each series is one replica's utilisation as a fraction of one replica's capacity
    (`capacity_per_replica` then defaults to 1; give 100 for percent): the load is their sum."""

    source: Literal["push", "prometheus"] = "push"
    query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    metric: str | None = Field(default=None, pattern=METRIC_PATTERN)
    matchers: Matchers = ()
    aggregate: Literal["sum", "avg", "max"] = "sum"
    per_replica: bool = False
    #: Resolution of the history the forecaster sees (one point per step).
    step: Seconds = Field(default=60.0, ge=1, le=86_400)
    #: History read for a fit (and kept by the forecaster).
    history: Seconds = Field(default=7 * 86_400.0, ge=60, le=90 * 86_400)
    unit: str = Field(default="", max_length=40)


class ScaleIn(_Model):
    """When replicas may be removed: never on a forecast alone (unless `on_forecast_alone`), at most
    `max_percent` of them per decision (at least one), and not within `cooldown` of the last change."""

    on_forecast_alone: bool = False
    max_percent: float = Field(default=50.0, gt=0, le=100)
    cooldown: Seconds = 300.0


class ScaleUp(_Model):
    """When replicas may be added: not within `cooldown` of the last scale-up, at most `max_step` at once."""

    cooldown: Seconds = 0.0
    max_step: int | None = Field(default=None, ge=1, le=10_000)


class ForecastSettings(_Model):
    """The forecaster of a predictive or hybrid target: the quantile provisioned for, the model (`auto`:
    chosen by backtest), how often it is refitted, how long a fit may take (longer: reactive, and said so),
    and the history it waits for (reactive until then)."""

    quantile: float = Field(default=0.95, ge=0.5, lt=1)
    model: str = "auto"
    refit_every: Seconds = Field(default=3600.0, ge=60)
    fit_timeout: Seconds = Field(default=10.0, gt=0, le=600)
    min_history: Seconds = Field(default=86_400.0, ge=0)


class WorkerPool(_Model):
    """How a `celery` target sizes its queue's workers (automation/scaling/workerpool.py): enough to keep up
    with arrivals and drain the backlog within `drain_seconds` (a worker's throughput measured, or
    `fallback_throughput` tasks/s until it is); scale-in once the backlog has stayed at or under
    `scale_in_backlog` for `scale_in_cooldown`, at most `max_scale_in_step` workers at a time. Rates are
    taken over `rate_window`. A departing worker gets `grace_period` to finish its step (the services
    file's own must not be longer; default: the longest a scale run can wait for, see
    `worker_services.longest_scale_grace`)."""

    drain_seconds: Seconds = Field(default=30.0, gt=0, le=86_400)
    scale_in_backlog: int = Field(default=0, ge=0, le=100_000_000)
    scale_in_cooldown: Seconds = Field(default=60.0, ge=0, le=86_400)
    max_scale_in_step: int = Field(default=1, ge=1, le=10_000)
    fallback_throughput: float = Field(default=1.0, gt=0, le=1e6)
    rate_window: Seconds = Field(default=5.0, ge=1, le=3600)
    grace_period: Seconds | None = Field(default=None, ge=0)


def _kind_requirements(schema: dict[str, Any]) -> None:
    """In the JSON schema: `service` and `load` are required of a service target only (a celery target's
    service follows from its queue, and it reads no metric load)."""
    schema["required"] = [name for name in schema.get("required", []) if name not in ("service", "load")]
    schema["description"] = (
        str(schema.get("description", ""))
        + "\n\n`service` and `load` are required unless `kind` is `celery`; `queue` is required if it is."
    )


class ScalingTargetDefinition(_Model):
    """A service whose replicas the loop sets from its load. `lead_time` (default: the provisioning delay)
    is how far ahead the forecast is read: replicas started now are ready after `provisioning_delay`.

    With `kind: celery`, the engine's own workers of `queue` (see the module's docstring): `service`
    and `policy` default to `celery-<queue>` and `reactive`, and the fields of a metric load are refused."""

    model_config = ConfigDict(json_schema_extra=_kind_requirements)

    kind: Literal["service", "celery"] = "service"
    name: str = Field(pattern=NAME_PATTERN)
    service: str = Field(min_length=1, max_length=200)
    queue: str | None = Field(default=None, max_length=100)
    provider: str = Field(default="local", min_length=1, max_length=100)
    load: LoadQuery
    capacity_per_replica: float | None = Field(default=None, gt=0, le=1e15)
    target_utilization: float = Field(default=0.8, gt=0, le=1)
    min_replicas: int = Field(default=1, ge=0, le=10_000)
    max_replicas: int = Field(default=10, ge=1, le=10_000)
    policy: Literal["predictive", "reactive", "hybrid"] = "hybrid"
    lead_time: Seconds | None = None
    provisioning_delay: Seconds = 60.0
    scale_in: ScaleIn = Field(default_factory=ScaleIn)
    scale_up: ScaleUp = Field(default_factory=ScaleUp)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    pool: WorkerPool | None = None
    enabled: bool = True
    description: str = Field(default="", max_length=2000)

    @field_validator("queue")
    @classmethod
    def _queue_name(cls, queue: str | None) -> str | None:
        if queue is not None and not re.fullmatch(QUEUE_PATTERN, queue):
            raise ValueError(
                "a queue name of letters, digits, '.', '_' and '-', starting with a letter, digit or '_'"
            )
        return queue

    @model_validator(mode="before")
    @classmethod
    def _celery_defaults(cls, data: Any) -> Any:
        """A `celery` target's service and policy follow from its kind and queue; it reads no metric (its
        `load` stays the unused default)."""
        if not isinstance(data, dict) or data.get("kind") != TargetKind.CELERY:
            return data
        filled = dict(data)
        queue = filled.get("queue")
        if "service" not in filled:
            # A queue missing or malformed is reported on `queue`, not as a missing service.
            filled["service"] = worker_service_name(queue if isinstance(queue, str) else "")
        filled.setdefault("policy", PolicyKind.REACTIVE)
        filled.setdefault("pool", {})
        filled.setdefault("load", {})  # not read; a load given is refused by `parse`
        return filled

    @staticmethod
    def parse(document: Any, *, where: str = "") -> ScalingTargetDefinition:
        """The definition, or a DefinitionError naming every field at fault (prefixed with `where`)."""
        if not isinstance(document, dict):
            raise DefinitionError([(where or "target", "expected a mapping")])
        prefix = f"{where}." if where else ""
        misplaced = [(prefix + path, reason) for path, reason in _misplaced_fields(document)]
        try:
            parsed = ScalingTargetDefinition.model_validate(document)
        except ValidationError as exc:
            raise DefinitionError(misplaced + definition_error(exc, where).errors) from None
        problems = misplaced + [(prefix + path, reason) for path, reason in parsed.problems()]
        if problems:
            raise DefinitionError(problems)
        return parsed

    def problems(self) -> list[tuple[str, str]]:
        """What the shapes do not say, each naming its field."""
        from automation.providers import provider_names

        found: list[tuple[str, str]] = []
        if self.min_replicas > self.max_replicas:
            found.append(("min_replicas", f"must be at most max_replicas ({self.max_replicas})"))
        if self.provider not in provider_names():
            found.append(("provider", f"unknown provider; known: {', '.join(provider_names())}"))
        if self.kind == TargetKind.CELERY:
            return found + self._celery_problems()
        return found + self._service_problems()

    def _celery_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.queue is None:
            found.append(("queue", "a celery target needs the `queue` its workers consume"))
            return found
        if self.queue == MONITORING_QUEUE:
            found.append(
                (
                    "queue",
                    f"the scaling loop itself runs on '{MONITORING_QUEUE}': its workers cannot be scaled by "
                    "the tick they carry",
                )
            )
        if self.service != worker_service_name(self.queue):
            found.append(
                (
                    "service",
                    f"a celery target's service is its workers, '{worker_service_name(self.queue)}': "
                    "leave it out",
                )
            )
        if self.policy != PolicyKind.REACTIVE:
            found.append(
                ("policy", "a celery target's pool reacts to its queue's backlog and arrivals: `reactive`")
            )
        grace = self.worker_pool.grace_period
        longest = longest_scale_grace()
        if grace is not None and grace > longest:
            found.append(
                (
                    "pool.grace_period",
                    f"the scale run waits for it and is a step itself: at most {longest:g} s (the longest "
                    f"step time limit under the broker's visibility timeout, less {SCALE_RUN_MARGIN:g} s)",
                )
            )
        return found

    def _service_problems(self) -> list[tuple[str, str]]:
        from automation.forecasting.forecaster import MODEL_NAMES  # pandas: loaded only to check

        found: list[tuple[str, str]] = []
        load = self.load
        if load.source == "prometheus":
            if load.query is None:
                found.append(("load.query", "a prometheus load needs a PromQL `query`"))
            if load.metric is not None or load.matchers:
                found.append(("load.metric", "give a PromQL `query` for prometheus; `metric` is for push"))
        else:
            if load.metric is None:
                found.append(("load.metric", "a push load needs the `metric` to read"))
            if load.query is not None:
                found.append(("load.query", "`query` (PromQL) needs `source: prometheus`"))
        if self.capacity_per_replica is None and not load.per_replica:
            found.append(
                ("capacity_per_replica", "give the load one replica serves, or `load.per_replica: true`")
            )
        if self.lead_time is not None and self.lead_time < self.provisioning_delay:
            found.append(
                (
                    "lead_time",
                    f"must be at least provisioning_delay ({self.provisioning_delay:g} s): replicas "
                    "started for the forecast would be ready after the load they are for",
                )
            )
        points = load.history / load.step
        limit = PROMETHEUS_POINTS if load.source == "prometheus" else MAX_HISTORY_POINTS
        if points > limit:
            found.append(
                (
                    "load.step",
                    f"load.history / load.step is {points:,.0f} points; at most {limit:,}"
                    + (" (Prometheus answers no more per series)" if load.source == "prometheus" else "")
                    + ": a longer step or a shorter history",
                )
            )
        reach = max(self.lead, self.provisioning_delay)
        if reach / load.step > MAX_HORIZON_POINTS:
            found.append(
                (
                    "lead_time" if self.lead_time is not None else "provisioning_delay",
                    f"the forecast would cover {reach / load.step:,.0f} steps of load.step; at most "
                    f"{MAX_HORIZON_POINTS:,}",
                )
            )
        if self.forecast.model not in MODEL_NAMES:
            found.append(("forecast.model", f"unknown model; choose from {', '.join(MODEL_NAMES)}"))
        if self.policy in PolicyKind.FORECASTING and self.forecast.min_history > load.history:
            found.append(("forecast.min_history", f"must be at most load.history ({load.history:g} s)"))
        return found

    @property
    def capacity(self) -> float:
        """Load one replica serves at full utilisation."""
        return self.capacity_per_replica if self.capacity_per_replica is not None else 1.0

    @property
    def lead(self) -> float:
        return self.lead_time if self.lead_time is not None else self.provisioning_delay

    @property
    def worker_pool(self) -> WorkerPool:
        """A celery target's pool settings (the defaults where none are given)."""
        return self.pool if self.pool is not None else WorkerPool()

    def pool_settings(self) -> WorkerPoolSettings:
        """The pool policy's settings of a celery target: its replica bounds and its `pool`."""
        pool = self.worker_pool
        return WorkerPoolSettings(
            min_workers=self.min_replicas,
            max_workers=self.max_replicas,
            drain_seconds=float(pool.drain_seconds),
            scale_in_backlog=pool.scale_in_backlog,
            scale_in_cooldown=float(pool.scale_in_cooldown),
            max_scale_in_step=pool.max_scale_in_step,
            fallback_throughput=pool.fallback_throughput,
        )

    @property
    def scale_timeout(self) -> int | None:
        """Timeout of the scale run's step: for a celery target, long enough for the warm shutdown of the
        departing workers (`pool.grace_period`); None (the engine's default) for a service."""
        if self.kind != TargetKind.CELERY:
            return None
        return scale_run_timeout(self.worker_pool.grace_period)

    def as_document(self) -> dict[str, Any]:
        unused = set(SERVICE_ONLY_FIELDS) if self.kind == TargetKind.CELERY else set(CELERY_ONLY_FIELDS)
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=unused)

    def state_key(self) -> dict[str, Any]:
        """What a fitted forecaster depends on: a change of it starts the forecaster afresh. Not the
        quantile: the bounds are read from the stored residuals at forecast time, so a tuned quantile
        goes on with the same forecaster."""
        forecast = self.forecast.model_dump(mode="json", exclude={"quantile"})
        return {"load": self.load.model_dump(mode="json"), "forecast": forecast}


def _misplaced_fields(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields given that the target's kind does not read: refused, never ignored."""
    if document.get("kind") == TargetKind.CELERY:
        return [
            (field, "not read by a celery target: its load is its queue, its policy `pool`")
            for field in SERVICE_ONLY_FIELDS
            if field in document
        ]
    return [(field, "only for `kind: celery`") for field in CELERY_ONLY_FIELDS if field in document]


def workflow_name(target: str) -> str:
    """The workflow each scale decision of `target` starts (registered when the target is stored)."""
    return f"scaling.{target}"
