"""Replay a recorded load through the real scaling loop, on a simulated clock.

`scaling backtest` scores the simulator's policies (automation/scaling/policies.py); this scores the code
that runs in production: each tick of the simulator (automation/scaling/simulator.py, the same fleet
physics and scoring) calls `evaluate_target` (automation/scaling/services/loop.py) for a replay copy of the
target, so the decision is the loop's own — the stored JSON forecaster refitted on its cadence and
continued, the guards (cooldowns, scale-in rules, no second run while one is going), the decision log —
and a change starts the target's real `infrastructure.scale_service` workflow, executed in this process
(Celery's eager mode) against `ReplayProvider`, a fleet that reports what the simulator holds.

The replay copy is stored disabled (the Beat loop never evaluates it) under a name of its own, its load
read from the replayed samples instead of its source; it, its decision log and its runs are deleted at
the end unless kept (`keep=True`), to be read with `automation scaling decisions` and `scaling plot`.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pandas as pd

from automation.alerting.series import Sample, Selector, Series
from automation.errors import AutomationError, DefinitionError
from automation.forecasting.durations import format_duration
from automation.forecasting.traces import Trace
from automation.providers.base import (
    ProviderError,
    ScaleResult,
    ServiceProvider,
    ServiceStatus,
    provider_names,
    register_provider,
)
from automation.scaling.choices import Action, TargetKind
from automation.scaling.definitions import ScalingTargetDefinition, workflow_name
from automation.scaling.policies import (
    Decision,
    DecisionContext,
    ScalingLimits,
    ScalingPolicy,
    make_policy,
)
from automation.scaling.simulator import SimulationSettings, simulate

#: The metric name the replay copy's load reads (any name does: `ReplaySource` serves every selector).
REPLAY_METRIC = "automation_replay_load"
#: Longest target name: the copy's name adds a prefix and a random part to it.
REPLAY_PREFIX = "replay-"


class ReplayProvider(ServiceProvider):
    """The replayed fleet, shared by every instance in this process: `status` reports what the simulator
    holds (replicas asked for, replicas serving); `scale` records what the loop's workflow asked for."""

    name = "replay"
    fleet: ClassVar[dict[str, tuple[int, int]]] = {}
    asked: ClassVar[dict[str, list[int]]] = {}

    @classmethod
    def hold(cls, service: str, *, requested: int, serving: int) -> None:
        cls.fleet[service] = (requested, serving)

    def status(self, service: str) -> dict[str, Any]:
        requested, serving = self._known(service)
        return ServiceStatus(service, requested, serving, []).to_dict()

    def scale(
        self,
        service: str,
        *,
        replicas: int,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        requested, serving = self._known(service)
        self.asked.setdefault(service, []).append(replicas)
        self.fleet[service] = (replicas, serving)
        return ScaleResult(
            service=service, previous_replicas=requested, replicas=replicas, started=[], stopped=[], pids=[]
        ).to_dict()

    def restart(self, service: str, **_: Any) -> dict[str, Any]:
        raise ProviderError("the replay provider only scales", retryable=False, service=service)

    def start(self, service: str, *, wait_for_health: bool = True) -> dict[str, Any]:
        raise ProviderError("the replay provider only scales", retryable=False, service=service)

    def stop(self, service: str, *, grace_period: float | None = None) -> dict[str, Any]:
        raise ProviderError("the replay provider only scales", retryable=False, service=service)

    def _known(self, service: str) -> tuple[int, int]:
        if service not in self.fleet:
            raise ProviderError(f"no replayed service '{service}'", retryable=False, service=service)
        return self.fleet[service]


def _register() -> None:
    if ReplayProvider.name not in provider_names():
        register_provider(ReplayProvider)


class ReplaySource:
    """The load the loop reads during a replay: the samples observed so far, whatever the selector."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list[float] = []

    def add(self, at: float, value: float) -> None:
        self.times.append(at)
        self.values.append(value)

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]:
        from bisect import bisect_left, bisect_right

        low, high = bisect_left(self.times, start), bisect_right(self.times, end)
        if high <= low:
            return []
        samples = tuple(map(Sample, self.times[low:high], self.values[low:high]))
        return [Series(selector.metric, (), samples)]


class LoopPolicy(ScalingPolicy):
    """A policy for the simulator whose every decision is the scaling loop's, for a replay copy of
    `definition` (its guards, forecaster and policy are the target's; the simulator adds the fleet)."""

    name = "loop"

    def __init__(self, definition: ScalingTargetDefinition, *, keep: bool = False) -> None:
        super().__init__(
            limits=ScalingLimits(min_replicas=definition.min_replicas, max_replicas=definition.max_replicas)
        )
        self.definition = definition
        self.keep = keep
        self.source = ReplaySource()
        self.copy_name = ""
        self.target: Any = None
        self.interval = 60.0
        self.decisions = 0
        self.runs = 0
        self.errors: list[str] = []
        self.finished = False
        self._models: Counter[str] = Counter()

    def configure(
        self,
        *,
        start: pd.Timestamp,
        step: pd.Timedelta,
        lead_time: pd.Timedelta,
        decision_interval: pd.Timedelta,
        tick: pd.Timedelta | None = None,
    ) -> None:
        from automation.scaling.services.targets import save_target

        _register()
        self.interval = decision_interval.total_seconds()
        self.copy_name = f"{REPLAY_PREFIX}{uuid.uuid4().hex[:8]}-{self.definition.name}"[:100]
        document = self.definition.as_document()
        load = {key: value for key, value in document["load"].items() if key not in ("query", "matchers")}
        load.update(source="push", metric=REPLAY_METRIC)
        name = self.copy_name
        document.update(name=name, service=name, provider=ReplayProvider.name, enabled=False, load=load)
        self.target = save_target(document)

    def observe(self, time: pd.Timestamp, load: float) -> None:
        if not math.isnan(load):
            self.source.add(time.timestamp(), float(load))

    def decide(self, context: DecisionContext) -> Decision:
        """The loop's decision at `context.time` (its own guards apply: not the simulator's limits)."""
        from automation.scaling.services.loop import evaluate_target

        service = self.copy_name
        ReplayProvider.hold(service, requested=context.requested_replicas, serving=context.serving_replicas)
        asked_before = len(ReplayProvider.asked.get(service, []))
        report = evaluate_target(self.target, context.time.timestamp(), self.interval, source=self.source)
        self.decisions += "action" in report
        desired = context.requested_replicas
        if report.get("action") == Action.ERROR:
            self.errors.append("; ".join(report.get("reasons", []))[:500])
        if report.get("run_id"):
            asked = ReplayProvider.asked.get(service, [])
            if len(asked) != asked_before + 1:
                raise AutomationError(
                    f"the loop started scale run {report['run_id']} but it did not reach the provider "
                    "(is the replay running with Celery's eager mode?)"
                )
            self.runs += 1
            desired = asked[-1]
        return Decision(desired=desired, reason="; ".join(report.get("reasons", [])))

    def finish(self) -> None:
        from django.db.models import Count

        from automation.models import ScalingDecision

        self.finished = True
        if self.target is None:
            return
        counts = (
            ScalingDecision.objects.filter(target=self.target)
            .exclude(model="")
            .values_list("model")
            .annotate(count=Count("id"))
        )
        self._models = Counter({model: count for model, count in counts})
        if not self.keep:
            delete_replay_copy(self.copy_name)
        ReplayProvider.fleet.pop(self.copy_name, None)
        ReplayProvider.asked.pop(self.copy_name, None)

    def model_counts(self) -> dict[str, int]:
        return dict(self._models.most_common())

    def describe(self) -> dict[str, Any]:
        definition = self.definition
        described: dict[str, Any] = {
            "policy": f"loop ({definition.policy})",
            "target": definition.name,
            "target_utilization": definition.target_utilization,
            "decisions": self.decisions,
            "scale_runs": self.runs,
        }
        if definition.policy != "reactive":
            described["quantile"] = definition.forecast.quantile
            described["refit_every"] = definition.forecast.refit_every
        if self.keep:
            described["kept_as"] = self.copy_name
        if self.errors:
            described["errors"] = self.errors[:5]
        return described


def delete_replay_copy(name: str) -> None:
    """Delete a replay copy: the target with its decision log, then its scale workflow's runs and versions."""
    from automation.models import ScalingTarget, Workflow, WorkflowRun

    if not name.startswith(REPLAY_PREFIX):
        raise ValueError(f"'{name}' is not a replay copy")
    ScalingTarget.objects.filter(name=name).delete()
    workflow = workflow_name(name)
    WorkflowRun.objects.filter(workflow__name=workflow).delete()
    Workflow.objects.filter(name=workflow).delete()


@contextmanager
def eager_workflows() -> Iterator[None]:
    """Run the workflows this process starts in this process (Celery's eager mode), then restore."""
    from automation.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def replay_settings(
    definition: ScalingTargetDefinition,
    *,
    decision_interval: pd.Timedelta | None = None,
    warmup: pd.Timedelta | None = None,
) -> SimulationSettings:
    """The simulator's fleet physics for `definition`: its capacity per replica, provisioning delay and
    lead time."""
    if definition.capacity_per_replica is None:
        raise DefinitionError([("capacity_per_replica", "a replay needs the load one replica serves")])
    delay = pd.Timedelta(seconds=float(definition.provisioning_delay))
    lead = pd.Timedelta(seconds=float(definition.lead_time)) if definition.lead_time is not None else delay
    return SimulationSettings(
        capacity_per_replica=float(definition.capacity_per_replica),
        provisioning_delay=delay,
        lead_time=lead,
        decision_interval=decision_interval,
        warmup=warmup,
    )


def simulator_policy(definition: ScalingTargetDefinition) -> ScalingPolicy:
    """The simulator's own policy of the same kind and settings (`scaling backtest`), for comparison."""
    limits = ScalingLimits(
        min_replicas=definition.min_replicas,
        max_replicas=definition.max_replicas,
        max_step_up=definition.scale_up.max_step,
    )
    return make_policy(
        definition.policy,
        target_utilization=definition.target_utilization,
        quantile=definition.forecast.quantile,
        limits=limits,
        refit_every=pd.Timedelta(seconds=float(definition.forecast.refit_every)),
    )


def replay(
    definition: ScalingTargetDefinition,
    trace: Trace,
    *,
    decision_interval: pd.Timedelta | None = None,
    warmup: pd.Timedelta | None = None,
    keep: bool = False,
    compare: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Scores of `trace` replayed through the loop for `definition` (and, with `compare`, through the
    simulator's own policy of the same settings): the figures of `scaling backtest`. A celery target
    has nothing to replay (its load is its queue, read live): DefinitionError naming `kind`."""
    if definition.kind == TargetKind.CELERY:
        raise DefinitionError(
            [("kind", "a celery target's load is its queue, read live from the broker: no trace to replay")]
        )
    settings = replay_settings(definition, decision_interval=decision_interval, warmup=warmup)
    policy = LoopPolicy(definition, keep=keep)
    with eager_workflows():
        try:
            result = simulate(trace, policy, settings=settings, progress=progress)
        finally:
            if not policy.finished:
                policy.finish()  # the simulator stopped early: the copy is not left behind
    answer: dict[str, Any] = {"loop": result.summary()}
    if compare:
        answer["simulator"] = simulate(
            trace, simulator_policy(definition), settings=settings, progress=progress
        ).summary()
    answer["settings"] = {
        "capacity_per_replica": settings.capacity_per_replica,
        "provisioning_delay": format_duration(settings.provisioning_delay),
        "lead_time": format_duration(settings.lead_time or settings.provisioning_delay),
        "decision_interval": result.policy.get("decision_interval"),
        "step": format_duration(trace.step),
    }
    return answer
