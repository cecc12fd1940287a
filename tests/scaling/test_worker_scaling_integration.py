"""The engine scales its own workers: a flooded queue, real `celery worker` processes started and stopped
through the `local` provider by the queue reader and the pool policy, every step run exactly once; by
the in-process controller, and by a `celery` scaling target of the Beat loop, whose scale runs are
`infrastructure.scale_service` workflows executed by the shared worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.slow_actions  # noqa: F401 - registers the testing.* actions in this process too
from automation.scaling.worker_autoscaler import Tick, WorkerAutoscaler
from automation.scaling.worker_services import worker_service_name, worker_services
from automation.scaling.workerpool import WorkerPoolSettings
from tests.conftest import REDIS_URL, ROOT, close_thread_clients, unique, wait_for

QUEUE = "low"  # the shared test worker leaves `low` to tests with workers of their own
STEP_SECONDS = 0.5
FLOOD_RATE = 6.0  # runs per second: about 3.5x what one worker finishes
FLOOD_SECONDS = 16.0
#: A single worker would end the flood about (6 - 1.9) * 16 = 65 messages behind.
BACKLOG_BOUND = 40


def start_workers(provider: Any, state_dir: Path, replicas: int) -> None:
    provider.scale(worker_service_name(QUEUE), replicas=replicas, wait_for_health=False)
    for replica in range(replicas):
        log = state_dir / worker_service_name(QUEUE) / f"replica-{replica}.log"
        wait_for(lambda log=log: log.exists() and " ready." in log.read_text(), timeout=60)


@pytest.fixture
def worker_pool(tmp_path: Path) -> Iterator[Any]:
    """The `celery-low` service (workers loading the test actions), one worker started, all stopped after."""
    from automation.providers.local import LocalProvider

    services_file = tmp_path / "services.yml"
    entries = worker_services([QUEUE], include=["tests.slow_actions"], grace_period=30, cwd=str(ROOT))
    services_file.write_text(yaml.safe_dump({"services": entries}))
    provider = LocalProvider(services_file=services_file, state_dir=tmp_path / "state")
    start_workers(provider, tmp_path / "state", 1)
    yield provider
    provider.stop(worker_service_name(QUEUE), grace_period=10)


def tally_workflow(engine: Any, tally: str, seconds: float) -> str:
    from automation import ActionDefinition, Priority, WorkflowDefinition

    workflow = unique("flood")
    engine.register_workflow(
        WorkflowDefinition(
            name=workflow,
            priority=Priority.LOW,
            actions=[
                ActionDefinition(
                    name="work", action_type="testing.tally", parameters={"key": tally, "seconds": seconds}
                )
            ],
        )
    )
    return workflow


def tallies(tally: str) -> tuple[dict[str, int], dict[str, int]]:
    """(starts, finishes) of each "run:step" the tally action counted."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return tuple(  # type: ignore[return-value]
            {key.decode(): int(value) for key, value in client.hgetall(f"{tally}:{kind}").items()}
            for kind in ("starts", "finishes")
        )
    finally:
        client.close()


def flood(engine: Any, workflow: str, runs: list[str], stop: threading.Event) -> None:
    try:
        started = time.monotonic()
        sent = 0
        while not stop.is_set() and time.monotonic() - started < FLOOD_SECONDS:
            due = int((time.monotonic() - started) * FLOOD_RATE) + 1
            while sent < due:
                runs.append(str(engine.run_workflow(workflow).id))
                sent += 1
            time.sleep(0.02)
    finally:
        close_thread_clients()


def test_workers_come_up_under_a_flood_and_go_away_after_it_every_step_once(
    engine: Any, worker_pool: Any
) -> None:
    import redis

    from automation.choices import RunStatus
    from automation.models import StepRun

    tally = unique("tally")
    workflow = tally_workflow(engine, tally, STEP_SECONDS)
    client = redis.Redis.from_url(REDIS_URL)
    settings = WorkerPoolSettings(
        min_workers=1,
        max_workers=5,
        drain_seconds=10,
        scale_in_backlog=2,
        scale_in_cooldown=3,
        max_scale_in_step=2,
        fallback_throughput=1 / STEP_SECONDS,
    )
    scaler = WorkerAutoscaler(
        queue=QUEUE, settings=settings, provider=worker_pool, client=client, rate_window=3
    )
    runs: list[str] = []
    stop = threading.Event()
    flooder = threading.Thread(target=flood, args=(engine, workflow, runs, stop))
    began = time.monotonic()
    flooder.start()
    try:

        def settled(ticks: list[Tick]) -> bool:
            last = ticks[-1]
            return not flooder.is_alive() and last.reading.backlog == 0 and last.decision.desired == 1

        ticks = scaler.run(seconds=75, interval=1.0, until=settled)
    finally:
        stop.set()
        flooder.join()
        client.close()
    elapsed = time.monotonic() - began
    timeline = "\n".join(
        f"{tick.reading.at - ticks[0].reading.at:5.1f}s {tick.decision.reason}" for tick in ticks
    )

    print(timeline)  # shown with `pytest -s`: the decisions as the policy explained them
    # Workers came up early, while the backlog was still small, and the backlog stayed bounded.
    first_up = next((tick for tick in ticks if tick.decision.desired > 1), None)
    assert first_up is not None, timeline
    assert first_up.reading.at - ticks[0].reading.at < 5, timeline
    assert first_up.reading.backlog <= 15, timeline
    assert max(tick.decision.desired for tick in ticks) >= 3, timeline
    assert max(tick.reading.backlog for tick in ticks) <= BACKLOG_BOUND, timeline
    # After the flood they went away again, warmly: no worker was killed.
    assert ticks[-1].decision.desired == 1 and ticks[-1].reading.backlog == 0, timeline
    assert worker_pool.status(worker_service_name(QUEUE))["running_replicas"] == 1
    stopped = [replica for tick in ticks if tick.scaled for replica in tick.scaled["stopped"]]
    assert stopped, timeline
    assert not [replica for replica in stopped if replica["killed"]], timeline
    assert elapsed < 80

    # Every step ran exactly once: started once, finished once, recorded succeeded once.
    assert len(runs) == int(FLOOD_RATE * FLOOD_SECONDS)
    for run_id in runs:
        engine.get_run(run_id).wait(30)
    starts, finishes = tallies(tally)
    expected = {f"{run_id}:work" for run_id in runs}
    assert set(starts) == expected and set(starts.values()) == {1}
    assert finishes == starts
    steps = StepRun.objects.filter(run_id__in=runs)
    assert steps.count() == len(runs)
    assert set(steps.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert set(steps.values_list("attempts", flat=True)) == {1}


def test_scale_in_lets_the_departing_workers_finish_their_steps(
    engine: Any, worker_pool: Any, tmp_path: Path
) -> None:
    from automation.choices import RunStatus

    start_workers(worker_pool, tmp_path / "state", 3)
    tally = unique("tally")
    workflow = tally_workflow(engine, tally, 4.0)
    runs = [engine.run_workflow(workflow).id for _ in range(3)]
    wait_for(lambda: len(tallies(tally)[0]) == 3, timeout=30)  # each worker is midway through a step

    began = time.monotonic()
    result = worker_pool.scale(worker_service_name(QUEUE), replicas=1, wait_for_health=False)
    took = time.monotonic() - began

    # SIGTERM went to both departing workers at once; each finished its step, then exited: none killed.
    assert [replica["killed"] for replica in result["stopped"]] == [False, False]
    assert took < 2 * 4.0
    starts, finishes = tallies(tally)
    assert len(finishes) >= 2, "the scale call returned before the departing workers' steps finished"
    for run_id in runs:
        assert engine.get_run(run_id).wait(30).status == RunStatus.SUCCEEDED
    starts, finishes = tallies(tally)
    assert set(starts.values()) == {1} and finishes == starts
    for replica in result["stopped"]:
        log = (
            tmp_path / "state" / worker_service_name(QUEUE) / f"replica-{replica['replica']}.log"
        ).read_text()
        assert "Warm shutdown" in log and "succeeded in" in log


def test_a_scale_service_workflow_starts_and_stops_the_queue_workers(engine: Any, worker: Any) -> None:
    """The path the scaling loop takes: an `infrastructure.scale_service` step run by the shared worker,
    on the services file and state directory every worker reads (tests/conftest.py)."""
    from automation import ActionDefinition, Priority, WorkflowDefinition
    from automation.providers.local import LocalProvider
    from tests.conftest import SERVICES_FILE

    entries = worker_services([QUEUE], include=["tests.slow_actions"], grace_period=30, cwd=str(ROOT))
    SERVICES_FILE.write_text(yaml.safe_dump({"services": entries}))
    provider = LocalProvider(services_file=SERVICES_FILE)
    service = worker_service_name(QUEUE)
    try:
        for replicas in (2, 0):
            name = unique("scale-workers")
            engine.register_workflow(
                WorkflowDefinition(
                    name=name,
                    priority=Priority.CRITICAL,
                    actions=[
                        ActionDefinition(
                            name="scale",
                            action_type="infrastructure.scale_service",
                            parameters={
                                "service_name": service,
                                "replicas": replicas,
                                "wait_for_health": False,
                            },
                            timeout_seconds=60,  # a scale-in waits for the departing workers' warm shutdown
                        )
                    ],
                )
            )
            run = engine.run_workflow(name).wait(90)
            assert run.status == "succeeded", run.steps
            output = run.step("scale").output
            assert output["replicas"] == replicas
            assert provider.status(service)["running_replicas"] == replicas
            if replicas:
                state = provider.state_dir() / service
                for replica in range(replicas):
                    log = state / f"replica-{replica}.log"
                    wait_for(lambda log=log: log.exists() and " ready." in log.read_text(), timeout=60)
            else:
                assert [stopped["killed"] for stopped in output["stopped"]] == [False, False]
    finally:
        provider.stop(service, grace_period=10)


TICK = 1.0  # the pool tick's period in this test (Beat's POOL_INTERVAL is 5 s)


@pytest.fixture
def loop_pool() -> Iterator[Any]:
    """The `celery-low` service in the services file every worker reads (tests/conftest.py), one worker
    started, all stopped after: the shared worker's scale runs act on it."""
    from automation.providers.local import LocalProvider
    from tests.conftest import SERVICES_FILE

    entries = worker_services([QUEUE], include=["tests.slow_actions"], grace_period=30, cwd=str(ROOT))
    SERVICES_FILE.write_text(yaml.safe_dump({"services": entries}))
    provider = LocalProvider(services_file=SERVICES_FILE)
    logs = provider.state_dir() / worker_service_name(QUEUE)
    for log in logs.glob("replica-*.log"):  # appended to by earlier tests' workers, all stopped by now
        log.unlink()
    start_workers(provider, provider.state_dir(), 1)
    yield provider
    provider.stop(worker_service_name(QUEUE), grace_period=10)


@pytest.mark.usefixtures("worker", "predictive_scaling")
def test_a_celery_target_of_the_beat_loop_scales_its_workers_under_a_flood_every_step_once(
    engine: Any, loop_pool: Any
) -> None:
    import redis

    from automation.choices import RunStatus
    from automation.models import ScalingDecision, StepRun, WorkflowRun
    from automation.scaling.queues import read_queue_load
    from automation.scaling.services.targets import save_target
    from tasks.scaling import evaluate_targets as pool_tick  # the Beat batch task, run in this process

    name = unique("own-low")
    save_target(
        {
            "kind": "celery",
            "name": name,
            "queue": QUEUE,
            "min_replicas": 1,
            "max_replicas": 5,
            "pool": {
                "drain_seconds": 10,
                "scale_in_backlog": 2,
                "scale_in_cooldown": 3,
                "max_scale_in_step": 2,
                "fallback_throughput": 1 / STEP_SECONDS,
                "rate_window": 3,
                "grace_period": 30,
            },
        }
    )
    tally = unique("tally")
    workflow = tally_workflow(engine, tally, STEP_SECONDS)
    client = redis.Redis.from_url(REDIS_URL)
    service = worker_service_name(QUEUE)
    runs: list[str] = []
    stop = threading.Event()
    flooder = threading.Thread(target=flood, args=(engine, workflow, runs, stop))
    ticks: list[tuple[float, int, dict[str, Any]]] = []  # (seconds into the flood, backlog seen, report)
    began = time.monotonic()
    flooder.start()
    try:
        while time.monotonic() - began < 75:
            tick_at = time.monotonic()
            backlog = read_queue_load(client, QUEUE).backlog  # the test's own look at the queue
            [report] = pool_tick([name], time.time(), TICK)["reports"]
            ticks.append((tick_at - began, backlog, report))
            settled = (
                not flooder.is_alive()
                and backlog == 0
                and report.get("current") == report.get("desired") == 1
                and loop_pool.status(service)["running_replicas"] == 1
            )
            if settled:
                break
            time.sleep(max(0.0, TICK - (time.monotonic() - tick_at)))
    finally:
        stop.set()
        flooder.join()
        client.close()
    elapsed = time.monotonic() - began
    timeline = "\n".join(
        f"{at:5.1f}s backlog {backlog:3} {r.get('action')} {r.get('current')}->{r.get('desired')}: "
        + "; ".join(r.get("reasons", [r.get("error") or r.get("skipped", "")]))
        for at, backlog, r in ticks
    )
    print(timeline)  # shown with `pytest -s`: the loop's decisions as the policy explained them

    # Workers were asked for early, while the backlog was small, and the backlog stayed bounded.
    assert all("error" not in r for _, _, r in ticks), timeline
    first_up = next((tick for tick in ticks if tick[2].get("action") == "scale_up"), None)
    assert first_up is not None, timeline
    assert first_up[0] < 5 and first_up[1] <= 15, timeline
    assert max(r.get("desired", 0) for _, _, r in ticks) >= 3, timeline
    assert max(backlog for _, backlog, _ in ticks) <= BACKLOG_BOUND, timeline
    # After the flood they went away again.
    assert ticks[-1][1] == 0 and ticks[-1][2]["desired"] == 1, timeline
    assert loop_pool.status(service)["running_replicas"] == 1
    assert elapsed < 80

    # Every change is a logged decision with its reasons and one scale run of its own slot, on
    # `critical`; no run started while another was going; departing workers were never killed.
    changes = ScalingDecision.objects.filter(target__name=name, action__in=["scale_up", "scale_down"])
    scale_runs = {run.id: run for run in WorkflowRun.objects.filter(workflow__name=f"scaling.{name}")}
    assert {d.run_id for d in changes} == set(scale_runs), timeline
    for decision in changes:
        run = scale_runs[decision.run_id]
        assert run.idempotency_key == f"scaling:{name}:{decision.slot}" and run.queue == "critical"
        assert run.inputs == {"replicas": decision.desired_replicas} and decision.reasons
    ordered = sorted(scale_runs.values(), key=lambda run: run.created_at)
    # The last scale-in's workers are gone (above); its run records that a moment later.
    scale_rows = WorkflowRun.objects.filter(workflow__name=f"scaling.{name}")
    wait_for(lambda: not scale_rows.filter(status__in=RunStatus.ACTIVE).exists(), timeout=60)
    for run in ordered:
        run.refresh_from_db()
    assert {run.status for run in ordered} == {RunStatus.SUCCEEDED}, timeline
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert earlier.finished_at <= later.created_at, "a second scale run started while one was going"
    outputs = [StepRun.objects.get(run=run, name="scale").output for run in ordered]
    stopped = [replica for output in outputs for replica in output["stopped"]]
    assert stopped and not [replica for replica in stopped if replica["killed"]], outputs
    assert any("scale in to" in reason for d in changes for reason in d.reasons)

    # Every step ran exactly once: started once, finished once, recorded succeeded once.
    assert len(runs) == int(FLOOD_RATE * FLOOD_SECONDS)
    for run_id in runs:
        engine.get_run(run_id).wait(30)
    starts, finishes = tallies(tally)
    assert set(starts) == {f"{run_id}:work" for run_id in runs} and set(starts.values()) == {1}
    assert finishes == starts
    steps = StepRun.objects.filter(run_id__in=runs)
    assert steps.count() == len(runs)
    assert set(steps.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert set(steps.values_list("attempts", flat=True)) == {1}
