"""The `ml.*` actions called as the executor calls them: the canary analysis waits for its window (parked,
from its first start) and then reads both sides from the push store or from a real Prometheus; the deploy
refuses a file that is not the validated one; promote and rollback act only on their verdicts."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automation.actions import ActionContext, Defer
from automation.ml.errors import ModelError
from automation.ml.params import CanaryAnalysisParams, DeployModelParams, PromoteParams, RollbackParams
from automation.providers import ProviderError
from tasks.ml import canary_analysis, deploy_model, promote, rollback
from tests.alerting.conftest import exporter, prometheus_server  # noqa: F401 - fixtures
from tests.conftest import unique
from tests.ml.conftest import MlFiles


def context(state: dict[str, Any] | None = None) -> ActionContext:
    return ActionContext(
        run_id="00000000-0000-0000-0000-000000000001",
        step="step",
        action_type="ml.test",
        attempt=1,
        idempotency_key=unique("key"),
        state=state or {},
    )


def analysis(service: str, **overrides: Any) -> CanaryAnalysisParams:
    return CanaryAnalysisParams.model_validate(
        {
            "baseline_version": "v1",
            "canary_version": "v2",
            "labels": {"service": service},
            "window": 10,
            "metrics": [
                {"metric": "canary_test_latency_seconds", "tolerance": 0.2},
                {"metric": "canary_test_accuracy", "regression": "decrease"},
            ],
            **overrides,
        }
    )


def test_the_analysis_waits_for_its_window_from_its_first_start() -> None:
    params = analysis("svc", warmup=5, window=120)

    with pytest.raises(Defer) as first:
        canary_analysis(context(), params)
    started = first.value.state["started_at"]  # type: ignore[index]
    assert abs(started - time.time()) < 5 and first.value.countdown == 60.0
    # Executed again (the deferral's message), the window still runs from the first start.
    with pytest.raises(Defer) as second:
        canary_analysis(context({"started_at": started - 100}), params)
    assert second.value.state == {"started_at": started - 100}
    assert 20 < second.value.countdown <= 25


@pytest.mark.usefixtures("database")
def test_the_analysis_reads_both_sides_from_the_push_store() -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest

    service = unique("svc")
    rng = random.Random(1)
    started = time.time() - 30
    samples = []
    for i in range(20):
        at = started + 0.5 * i
        for replica, version, latency in (("a", "v1", 0.005), ("b", "v1", 0.005), ("c", "v2", 0.02)):
            labels = {"service": service, "version": version, "replica": replica}
            samples.append(
                PushedSample("canary_test_latency_seconds", labels, latency * rng.uniform(0.9, 1.1), at)
            )
            samples.append(PushedSample("canary_test_accuracy", labels, rng.uniform(0.9, 1.0), at))
    # Another service's series and samples after the window are not read.
    samples.append(
        PushedSample("canary_test_latency_seconds", {"service": "other", "version": "v2"}, 0.001, started + 1)
    )
    samples.append(
        PushedSample("canary_test_latency_seconds", {"service": service, "version": "v2"}, 9.0, started + 15)
    )
    ingest(samples)

    output = canary_analysis(context({"started_at": started}), analysis(service))

    assert output["verdict"] == "fail" and output["score"] == 50.0
    latency, accuracy = output["metrics"]
    assert (latency["baseline"]["n"], latency["canary"]["n"]) == (40, 20)
    assert latency["outcome"] == "fail" and 2.5 < latency["change"] < 3.5
    assert accuracy["outcome"] == "pass"
    assert output["window"] == {"start": started, "end": started + 10, "source": "push"}
    assert (output["baseline_version"], output["canary_version"]) == ("v1", "v2")


@pytest.mark.usefixtures("database")
def test_an_error_rate_is_judged_on_the_counts_read_from_the_push_store() -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest

    service = unique("svc")
    started = time.time() - 30
    samples = []
    for i in range(20):
        at = started + 0.5 * i
        # Each baseline replica: 1 error in 100 requests a sample; the canary: 5 in 100.
        for replica, version, errors in (("a", "v1", 1.0), ("b", "v1", 1.0), ("c", "v2", 5.0)):
            labels = {"service": service, "version": version, "replica": replica}
            samples.append(PushedSample("canary_test_requests", labels, 100.0, at))
            samples.append(PushedSample("canary_test_errors", labels, errors, at))
    ingest(samples)
    metric = {"metric": "canary_test_errors", "denominator": "canary_test_requests", "name": "error_rate"}

    output = canary_analysis(context({"started_at": started}), analysis(service, metrics=[metric]))

    assert output["verdict"] == "fail" and output["score"] == 0.0
    (errors,) = output["metrics"]
    assert (errors["baseline"]["n"], errors["canary"]["n"]) == (40, 20)
    assert (errors["baseline"]["mean"], errors["canary"]["mean"]) == (0.01, 0.05)
    assert errors["outcome"] == "fail" and errors["change"] == pytest.approx(4.0)
    assert errors["reason"].startswith("error_rate rose: canary 100/2000 = 0.05 vs baseline 40/4000 = 0.01")
    assert output["summary"] == "canary v2 vs baseline v1: verdict fail (score 0): " + "; ".join(
        output["reasons"]
    )


def test_a_rate_cannot_count_out_of_itself() -> None:
    with pytest.raises(ValueError, match="denominator: 'canary_test_errors' cannot count out of itself"):
        analysis("svc", metrics=[{"metric": "canary_test_errors", "denominator": "canary_test_errors"}])


@pytest.mark.usefixtures("database")
def test_a_canary_whose_metrics_cannot_be_read_fails_so_that_it_is_rolled_back() -> None:
    from automation.alerting.services.config import apply_document

    started = time.time() - 60
    output = canary_analysis(context({"started_at": started}), analysis("svc", source="prometheus"))

    assert output["verdict"] == "fail" and output["metrics"] == []
    assert "the alerting document sets no `prometheus.url`" in output["reasons"][0]
    assert output["summary"] == f"canary v2 vs baseline v1: verdict fail (score 0): {output['reasons'][0]}"
    # A source that may answer later is asked again (the step parked, not an attempt), then judged failed.
    apply_document({"prometheus": {"url": "http://127.0.0.1:9", "timeout": 1}})  # nothing listens there
    try:
        state: dict[str, Any] = {"started_at": started}
        for failures in (1, 2, 3):
            with pytest.raises(Defer) as parked:
                canary_analysis(context(state), analysis("svc", source="prometheus"))
            state = parked.value.state or {}
            assert state["source_failures"] == failures and parked.value.countdown == 5.0 * failures
        output = canary_analysis(context(state), analysis("svc", source="prometheus"))
    finally:
        apply_document({})
    assert output["verdict"] == "fail" and "127.0.0.1:9" in output["reasons"][0]


@pytest.fixture
def prometheus_document(prometheus_server: Any) -> Iterator[None]:  # noqa: F811
    from automation.alerting.services.config import apply_document

    apply_document({"prometheus": {"url": prometheus_server.url, "timeout": 5}})
    yield
    apply_document({})


@pytest.mark.usefixtures("database", "prometheus_document")
def test_the_analysis_reads_both_sides_from_a_real_prometheus(exporter: Any) -> None:  # noqa: F811
    # The exporter is scraped every second: per version, a latency gauge (the canary's 4 times the
    # baseline's) and an accuracy gauge (equal), jittered as live values are.
    service = unique("svc").replace("-", "_")
    latency = exporter.gauge("canary_test_latency_seconds", ["service", "version"])
    accuracy = exporter.gauge("canary_test_accuracy", ["service", "version"])
    stop = threading.Event()

    def jitter() -> None:
        rng = random.Random(2)
        while not stop.is_set():
            for version, seconds in (("v1", 0.005), ("v2", 0.02)):
                latency.labels(service, version).set(seconds * rng.uniform(0.8, 1.2))
                accuracy.labels(service, version).set(rng.uniform(0.9, 1.0))
            stop.wait(0.1)

    thread = threading.Thread(target=jitter, daemon=True)
    thread.start()
    started = time.time()
    try:
        with pytest.raises(Defer):
            canary_analysis(context(), analysis(service, source="prometheus", window=12))
        time.sleep(14)
        output = canary_analysis(
            context({"started_at": started}), analysis(service, source="prometheus", window=12)
        )
    finally:
        stop.set()
        thread.join(5)

    assert output["verdict"] == "fail", output["reasons"]
    latency_result, accuracy_result = output["metrics"]
    assert latency_result["outcome"] == "fail" and latency_result["baseline"]["n"] >= 10
    assert accuracy_result["outcome"] == "pass"
    assert output["window"]["source"] == "prometheus"


def test_deploy_refuses_a_missing_or_changed_model_before_acting(ml_files: MlFiles, tmp_path: Path) -> None:
    base = {"service_name": "no-such-service", "model_version": "v2", "provider": "stub"}

    with pytest.raises(ModelError, match="does not exist") as missing:
        deploy_model(context(), DeployModelParams(**base, model_path=str(tmp_path / "absent.onnx")))
    assert missing.value.field == "model_path"
    with pytest.raises(ModelError, match="changed since it was validated") as changed:
        deploy_model(context(), DeployModelParams(**base, model_path=str(ml_files.v2), model_sha256="0" * 64))
    assert changed.value.field == "model_sha256"


def test_promote_and_rollback_act_only_on_their_verdicts() -> None:
    # The stub provider has no releases: a step that acts reaches it and is refused; one that does not act
    # never calls it.
    common = {"service_name": "api", "provider": "stub", "model_version": "v2"}

    assert promote(context(), PromoteParams(**common, verdict="fail")) == {
        "acted": False,
        "verdict": "fail",
        "reason": "verdict 'fail': promote only on pass",
        "summary": "model v2 not promoted (verdict fail)",
    }
    assert rollback(context(), RollbackParams(**common, verdict="pass"))["acted"] is False
    with pytest.raises(ProviderError, match="does not support releases"):
        promote(context(), PromoteParams(**common, verdict="marginal", promote_on=["pass", "marginal"]))
    with pytest.raises(ProviderError, match="does not support releases"):
        rollback(context(), RollbackParams(**common))  # no verdict: acts


def test_the_load_generator_pushes_what_the_push_api_reads(peer: Any) -> None:
    import json

    from automation.alerting.exposition import PushedSample, parse_pushed
    from automation.demo.load_generator import http_push

    sample = PushedSample(
        "model_latency_seconds", {"service": "s", "version": "v2", "replica": "8500"}, 0.004, 1_700_000_000.5
    )

    http_push(f"{peer.url}/api/v1/metrics", token="t0k")([sample])

    [request] = peer.received
    assert (request.method, request.path) == ("POST", "/api/v1/metrics")
    assert request.headers["Authorization"] == "Bearer t0k"
    assert parse_pushed(json.dumps(request.body).encode(), "application/json", now=1_700_000_000) == [sample]
