"""The seed's Example 1, extended: validate -> deploy a 10 % canary -> canary analysis -> promote or roll
back, run by a real worker against real model server processes of the `local` provider (the demo's
`model_service`, three replicas), judged on live metrics the demo's load generator measures on every
replica and pushes to the engine's push store. A good model is promoted, a model below the threshold is
stopped at validation, a model that passes validation but is slower live is rolled back; every step acts
once, also when its message is delivered again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from automation.alerting.exposition import PushedSample
from automation.demo.load_generator import LATENCY, LoadGenerator
from automation.demo.ml_example import ml_model_deployment
from tests.conftest import ROOT, SERVICES_FILE, Worker, unique, wait_for
from tests.ml.conftest import MlFiles
from tests.peers import HttpPeer
from tests.test_provider_local import free_port_block

pytestmark = pytest.mark.usefixtures("worker")

REPLICAS = 3


def push_to_store(samples: list[PushedSample]) -> None:
    """What `POST /api/v1/metrics` does with a push, from the load generator's own thread."""
    from django.db import connection

    from automation.alerting.services.samples import ingest

    try:
        ingest(samples)
    finally:
        connection.close()


@dataclass
class Recommender:
    name: str
    port: int
    provider: Any
    load: LoadGenerator

    def versions(self) -> list[str]:
        """What each replica says it runs (its own answer, not the provider's records)."""
        return [
            httpx.get(f"http://127.0.0.1:{self.port + i}/health", timeout=5, trust_env=False).json()[
                "version"
            ]
            for i in range(REPLICAS)
        ]

    def pids(self) -> list[int]:
        return [replica["pid"] for replica in self.provider.status(self.name)["replicas"]]


@pytest.fixture
def recommender(ml_files: MlFiles) -> Iterator[Recommender]:
    """A `local` service of three model servers on version v1, with live traffic on every replica."""
    from automation.providers import get_provider

    name = unique("recommender")
    port = free_port_block(REPLICAS)
    SERVICES_FILE.write_text(
        yaml.safe_dump(
            {
                "services": {
                    name: {
                        "command": ["{python}", "-m", "automation.demo.model_service", "--port", "{port}"],
                        "cwd": str(ROOT),
                        "port": port,
                        "replicas": REPLICAS,
                        "version": "v1",
                        "env": {"MODEL_PATH": str(ml_files.v1), "MODEL_VERSION": "{version}"},
                        "health_url": "http://127.0.0.1:{port}/health",
                        "grace_period": 5,
                        "health_timeout": 60,
                    }
                }
            }
        )
    )
    provider = get_provider("local", services_file=str(SERVICES_FILE))
    provider.start(name)
    load = LoadGenerator(
        ports=lambda: [port + i for i in range(REPLICAS)],
        rows=ml_files.live_rows,
        labels=ml_files.live_labels,
        columns=ml_files.columns,
        push=push_to_store,
        service=name,
        interval=0.5,
        pause=0.01,
    ).start()
    try:
        yield Recommender(name, port, provider, load)
    finally:
        load.stop()
        provider.stop(name, grace_period=1)
    assert not load.errors, load.errors




def deploy(
    engine: Any, recommender: Recommender, model: str, version: str, dataset: str, peer: HttpPeer
) -> Any:
    workflow = ml_model_deployment(recommender.name, name=unique("ml_model_deployment"))
    engine.workflow_manager.register_workflow(workflow)
    return engine.run_workflow(
        workflow.name,
        {
            "model_path": model,
            "validation_dataset": dataset,
            "model_version": version,
            "notify_url": peer.url,
        },
    )


def notified_once(peer: HttpPeer, run: Any, worker: Worker) -> dict[str, Any]:
    """The one notification the run sent: one request, keyed by the run's notify step, also after its
    message is delivered again."""
    late = redeliver_as("notification.webhook", "notify", run)
    wait_for(lambda: worker.outcome(late.id) is not None)
    assert worker.outcome(late.id) == "ignored"
    assert len(peer.received) == 1, [r.body for r in peer.received]
    received = peer.received[0]
    assert received.headers["Idempotency-Key"] == f"{run.id}:notify"
    assert peer.deliveries == {f"{run.id}:notify": 1}
    body: dict[str, Any] = received.body
    return body


def redeliver(step: str, run: Any) -> Any:
    return redeliver_as(f"ml.{step}", step, run)


def redeliver_as(action_type: str, step: str, run: Any) -> Any:
    from automation.celery import app

    # Step tasks are `ignore_result`: a copy sent here stores its result, for a test to read it.
    return app.send_task(
        f"automation.action.{action_type}", kwargs={"run_id": run.id, "step": step}, ignore_result=False
    )


def test_a_good_model_is_promoted(
    engine: Any, recommender: Recommender, ml_files: MlFiles, peer: HttpPeer, worker: Worker
) -> None:
    before = recommender.pids()
    run = deploy(engine, recommender, str(ml_files.v2), "v2", str(ml_files.validation_csv), peer)

    wait_for(lambda: run.step("canary_analysis").status == "running", timeout=120)
    # During the analysis the canary serves beside the stable release: one replica of three.
    assert recommender.versions() == ["v1", "v1", "v2"]
    canary_pid = recommender.pids()[2]
    # The deploy step's message delivered again (as after a crash before the ack): its output is handed
    # on, nothing is deployed again.
    again = redeliver("deploy_model", run).get(timeout=30)
    assert again["deploy_model"] == run.step("deploy_model").output
    assert recommender.pids()[2] == canary_pid

    assert run.wait(180).status == "succeeded", run.steps
    validated = run.step("validate_model").output
    assert validated["passed"] is True and validated["score"] >= 0.92 and validated["n"] == 284
    assert validated["model_format"] == "onnx"
    deployed = run.step("deploy_model").output
    assert (deployed["stable_version"], deployed["canary_version"], deployed["canary_replicas"]) == (
        "v1",
        "v2",
        [2],
    )
    assert [r["old_pid"] for r in deployed["replicas"]] == [before[2]]
    analysis = run.step("canary_analysis").output
    assert analysis["verdict"] == "pass", analysis["reasons"]
    for metric in analysis["metrics"]:
        assert metric["baseline"]["n"] >= 10 and metric["canary"]["n"] >= 10, metric
    promoted = run.step("promote").output
    assert promoted["acted"] is True and promoted["stable_version"] == "v2"
    assert [r["replica"] for r in promoted["replicas"]] == [0, 1]  # the canary's process is kept
    skipped = run.step("rollback").output
    assert skipped == {
        "acted": False,
        "verdict": "pass",
        "reason": "verdict 'pass': roll back only on marginal, fail",
        "summary": "model v2 not rolled back (verdict pass)",
    }
    assert recommender.versions() == ["v2", "v2", "v2"]
    assert recommender.pids()[2] == canary_pid
    # The canary's process served the live traffic and exports it per version.
    exported = httpx.get(f"http://127.0.0.1:{recommender.port + 2}/metrics", trust_env=False).text
    assert 'model_requests_total{version="v2"}' in exported
    assert all(step.attempts == 1 for step in run.steps), run.steps
    # Whoever watches deployments is told once: which version was promoted, the verdict and why.
    notice = notified_once(peer, run, worker)
    assert notice["text"] == (
        f"{recommender.name}: model v2 promoted: v2 serves every replica; model v2 not rolled back "
        f"(verdict pass). canary v2 vs baseline v1: verdict pass (score {analysis['score']:g}): "
        + "; ".join(analysis["reasons"])
    )
    assert (notice["version"], notice["promoted"], notice["rolled_back"]) == ("v2", True, False)
    assert (notice["verdict"], notice["reasons"]) == ("pass", analysis["reasons"])


def test_a_model_below_the_threshold_is_stopped_at_validation(
    engine: Any, recommender: Recommender, ml_files: MlFiles, peer: HttpPeer
) -> None:
    before = recommender.pids()

    run = deploy(engine, recommender, str(ml_files.weak), "v0", str(ml_files.validation_parquet), peer).wait(
        120
    )

    assert run.status == "failed"
    validate = run.step("validate_model")
    assert validate.status == "failed" and validate.attempts == 1  # not retried
    assert "BelowThreshold" in validate.error and "below the acceptance threshold 0.92" in validate.error
    assert str(ml_files.weak) in validate.error
    downstream = ("deploy_model", "canary_analysis", "promote", "rollback", "notify")
    assert {run.step(name).status for name in downstream} == {"skipped"}
    assert recommender.pids() == before
    assert recommender.versions() == ["v1"] * REPLICAS
    # Nothing was deployed, so nothing was promoted or rolled back: the notify step after them is
    # skipped with the rest, and the failed run (its validate step's error) is what reports it.
    assert peer.received == []


def test_a_model_slower_live_is_rolled_back(
    engine: Any, recommender: Recommender, ml_files: MlFiles, worker: Worker, peer: HttpPeer
) -> None:
    before = recommender.pids()

    run = deploy(engine, recommender, str(ml_files.slow), "v3", str(ml_files.validation_csv), peer).wait(180)

    assert run.status == "succeeded", run.steps
    assert run.step("validate_model").output["passed"] is True  # as accurate: validation cannot tell
    analysis = run.step("canary_analysis").output
    assert analysis["verdict"] == "fail", analysis
    latency = next(m for m in analysis["metrics"] if m["name"] == LATENCY)
    assert latency["outcome"] == "fail" and latency["change"] > 0.5
    assert any(reason.startswith(f"{LATENCY} rose") for reason in analysis["reasons"])
    rolled_back = run.step("rollback").output
    assert rolled_back["acted"] is True and rolled_back["version"] == "v3"
    assert (rolled_back["stable_version"], rolled_back["canary_version"]) == ("v1", None)
    assert [r["replica"] for r in rolled_back["replicas"]] == [2]
    assert run.step("promote").output["acted"] is False
    assert recommender.versions() == ["v1"] * REPLICAS
    assert recommender.pids()[:2] == before[:2]  # the stable replicas served throughout
    assert all(step.attempts == 1 for step in run.steps), run.steps
    # A late copy of the rollback's message, once the run is over, is dropped.
    late = redeliver("rollback", run)
    wait_for(lambda: worker.outcome(late.id) is not None)
    assert worker.outcome(late.id) == "ignored"
    assert recommender.versions() == ["v1"] * REPLICAS
    notice = notified_once(peer, run, worker)
    assert notice["text"] == (
        f"{recommender.name}: model v3 not promoted (verdict fail); model v3 rolled back: v1 serves every "
        f"replica. canary v3 vs baseline v1: verdict fail (score {analysis['score']:g}): "
        + "; ".join(analysis["reasons"])
    )
    assert f"{LATENCY} rose" in notice["text"]
    assert (notice["version"], notice["promoted"], notice["rolled_back"]) == ("v3", False, True)
    assert (notice["verdict"], notice["reasons"]) == ("fail", analysis["reasons"])
