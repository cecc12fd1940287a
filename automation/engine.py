"""AutomationEngine: the public entry point (register workflows, run them, follow and steer runs)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from automation.bootstrap import setup
from automation.choices import RunStatus
from automation.config.schema import AutomationConfig
from automation.definitions.schema import WorkflowDefinition
from automation.errors import AutomationError, NotFoundError


class RunTimeout(AutomationError, TimeoutError):
    """`RunHandle.wait` gave up before the run finished."""


@dataclass(frozen=True)
class StepView:
    name: str
    action_type: str
    status: str
    attempts: int
    output: Any
    error: str
    started_at: datetime | None
    finished_at: datetime | None
    state: dict[str, Any]


class RunHandle:
    """A run's id and its live status; `wait()` blocks until it ends."""

    def __init__(self, run_id: Any) -> None:
        self.id = str(run_id)

    def _run(self) -> Any:
        from automation.models import WorkflowRun

        run = WorkflowRun.objects.filter(id=self.id).first()
        if run is None:
            raise NotFoundError(f"run {self.id} does not exist")
        return run

    @property
    def status(self) -> str:
        return str(self._run().status)

    @property
    def error(self) -> str:
        return str(self._run().error)

    @property
    def steps(self) -> list[StepView]:
        from automation.models import StepRun

        return [
            StepView(
                name=s.name,
                action_type=s.action_type,
                status=s.status,
                attempts=s.attempts,
                output=s.output,
                error=s.error,
                started_at=s.started_at,
                finished_at=s.finished_at,
                state=s.state,
            )
            for s in StepRun.objects.filter(run_id=uuid.UUID(self.id)).order_by("position")
        ]

    def step(self, name: str) -> StepView:
        for view in self.steps:
            if view.name == name:
                return view
        raise NotFoundError(f"run {self.id} has no step '{name}'")

    @property
    def done(self) -> bool:
        return self.status in RunStatus.TERMINAL

    def wait(self, timeout: float = 300.0, *, poll: float = 0.1) -> RunHandle:
        deadline = time.monotonic() + timeout
        while not self.done:
            if time.monotonic() > deadline:
                raise RunTimeout(f"run {self.id} still {self.status} after {timeout} s")
            time.sleep(poll)
        return self

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"


class WorkflowManager:
    """Registers definitions as new versions in PostgreSQL and reads them back."""

    def __init__(self, engine: AutomationEngine) -> None:
        self._engine = engine

    def register_workflow(self, definition: WorkflowDefinition) -> int:
        """Validate and store `definition`; returns its version (unchanged if the definition is)."""
        from automation.definitions.registry import register_definition

        return register_definition(definition, self._engine.config).version

    def get_workflow(self, name: str) -> WorkflowDefinition:
        from automation.runs.dispatch import latest_version

        return WorkflowDefinition.from_document(_public_document(latest_version(name).definition))

    def list_workflows(self) -> list[str]:
        from automation.models import Workflow

        return list(Workflow.objects.values_list("name", flat=True))


def _public_document(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "inputs_declared"} | (
        {} if document.get("inputs_declared") else {"inputs": None}
    )


class AutomationEngine:
    """The engine. Given a config, it applies it fleet-wide (workers read it from the database);
    without one it uses the config in force, so a client that only enqueues changes nothing."""

    def __init__(self, config: AutomationConfig | None = None) -> None:
        setup()
        from automation.config import current_config
        from automation.config.apply import apply_config

        if config is None:
            self.config = current_config()
        else:
            self.config = config
            apply_config(config)
        self.workflow_manager = WorkflowManager(self)

    def register_workflow(self, definition: WorkflowDefinition) -> int:
        return self.workflow_manager.register_workflow(definition)

    def run_workflow(
        self, name: str, inputs: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> RunHandle:
        """Enqueue a run of the latest version of `name`; the same idempotency key gives the same run."""
        from automation.access.principal import acting_as, current_actor
        from automation.embedded import ensure_worker
        from automation.runs.dispatch import enqueue_run

        ensure_worker()
        # The Python API is an adapter too: the run it starts is in the audit log, as its caller's.
        with acting_as(current_actor()):
            run, _ = enqueue_run(name, inputs, idempotency_key=idempotency_key)
        return RunHandle(run.id)

    def register_alert_workflow(self, alert_config: dict[str, Any]) -> str:
        """Store an alert rule and the remediation its firing starts (`actions` or a named `workflow`);
        DefinitionError naming the field, or the condition's column, and nothing stored otherwise.
        Returns the rule's name."""
        from automation.alerting.services.rules import save_rule

        return save_rule(alert_config).name

    def push_samples(self, metric: str, labels: dict[str, str], points: list[tuple[float, float]]) -> int:
        """Store samples of one series in the engine's own metric store, as `POST /api/v1/metrics` does:
        `points` are (epoch seconds, value). InvalidFieldsError naming the sample and field otherwise."""
        from automation.alerting.exposition import parse_json
        from automation.alerting.services.samples import ingest

        document = {
            "samples": [{"metric": metric, "labels": labels, "value": v, "timestamp": t} for t, v in points]
        }
        return ingest(parse_json(document, now=time.time()))

    def evaluate_alerts(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """One evaluation tick of every enabled rule in this process (what Beat runs on workers), then
        the due notifications: by rule name, the series seen, the alerts fired, resolved and pending, and
        the remediation runs started."""
        from automation.alerting.services.ticks import evaluate_all

        return {report["rule"]: report for report in evaluate_all(now)}

    def register_scaling_target(self, target: dict[str, Any]) -> str:
        """Store a scaling target (service, provider, load query, capacity, replica bounds, policy, lead
        time, provisioning delay, scale-in rules; or `kind: celery`, the engine's own workers of a
        `queue`, with its `pool` settings) and register its scale workflow; DefinitionError naming the
        field, and nothing stored, otherwise. Returns the target's name."""
        from automation.scaling.services.targets import save_target

        return save_target(target).name

    def evaluate_scaling(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """One tick of the scaling loops in this process (what Beat runs on workers: service targets in
        their monitoring-interval slot, celery targets in their pool-tick slot): by target name, its
        decision (action, replicas, reasons, run). Empty while `enable_predictive_scaling` is off."""
        from automation.scaling.services.ticks import evaluate_all

        return {report["target"]: report for report in evaluate_all(now)}

    def get_run(self, run_id: Any) -> RunHandle:
        handle = RunHandle(run_id)
        handle.status  # noqa: B018 - raises NotFoundError for an unknown id
        return handle

    def cancel_run(self, run_id: Any, *, reason: str = "cancelled by request") -> RunHandle:
        from automation.runs.control import cancel

        cancel(run_id, reason=reason)
        return RunHandle(run_id)

    def approve(self, run_id: Any, step: str, *, by: str = "", comment: str = "") -> None:
        from automation.runs.services import decide_approval

        decide_approval(run_id, step, approved=True, by=by, comment=comment)

    def reject(self, run_id: Any, step: str, *, by: str = "", comment: str = "") -> None:
        from automation.runs.services import decide_approval

        decide_approval(run_id, step, approved=False, by=by, comment=comment)
