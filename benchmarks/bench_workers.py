"""Own-worker scaling: a queue flooded at 10x one worker's throughput, the autoscaled pool against a fixed
pool sized for the peak.

Steps are `testing.tally` actions (tests/slow_actions.py) that sleep STEP seconds and count their starts
and finishes in Redis, on the `low` queue, served by `celery -A automation worker -Q low -c 1` processes
of the `local` provider (automation/scaling/worker_services.py).

1. Calibration: one worker, a batch of steps sent at once; one worker's throughput = steps / (first step
   started -> last step finished), wall clock.
2. Autoscaled: one worker to begin with; the controller (automation/scaling/worker_autoscaler.py: queue
   reader, pool policy, provider) ticks every second; runs arrive at 10x that throughput for FLOOD
   seconds, after LEAD quiet seconds, and the window ends TAIL seconds after the flood.
3. Fixed: as many workers as the autoscaled pool's peak, started (and ready) before the window; the
   same arrivals over the same window; no controller. Then again with the fewest workers that keep up
   with the flood with 10% to spare (ceil(1.1 x 10) = 11), the cheaper fixed pool an operator might pick.

Figures, each side: time from the flood's start to the first added worker (asked for, and consuming),
peak backlog (waiting + in flight, sampled every 0.25 s), worker-seconds over the window (running
worker processes, sampled every 0.25 s; warm shutdowns count until the process exits), queue wait of
the steps (run created -> step started; p50, p95, max), and whether every step ran exactly once. The
fixed pool's worker-seconds cover only this window: a real fixed pool also runs between floods.

Usage, from the repository root: python benchmarks/bench_workers.py [--quick]
It creates its own PostgreSQL database (dropped at the end) and flushes Redis db 6 (or
AUTOMATION_BENCH_REDIS) around the run; results go to benchmarks/results/workers.json (full runs only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_engine  # noqa: E402 - after the path is set

# The engine benchmark's database, broker and state directory (AUTOMATION_BENCH_PG, AUTOMATION_BENCH_REDIS)
REDIS_URL = bench_engine.REDIS_URL
STATE_DIR = bench_engine.STATE_DIR
configure_environment = bench_engine.configure_environment
benchmark_database = bench_engine.benchmark_database
RESULTS = ROOT / "benchmarks" / "results" / "workers.json"
QUEUE = "low"
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class Plan:
    step_seconds: float
    multiple: float  # arrivals, in one worker's throughput
    lead: float
    flood: float
    tail: float
    calibration_steps: int
    max_workers: int


FULL = Plan(step_seconds=0.5, multiple=10, lead=10, flood=120, tail=60, calibration_steps=40, max_workers=16)
QUICK = Plan(step_seconds=0.5, multiple=10, lead=3, flood=15, tail=25, calibration_steps=12, max_workers=16)


def make_provider() -> Any:
    import yaml

    from automation.providers.local import LocalProvider
    from automation.scaling.worker_services import worker_services

    services_file = STATE_DIR / "services.yml"
    entries = worker_services([QUEUE], include=["tests.slow_actions"], grace_period=30, cwd=str(ROOT))
    services_file.write_text(yaml.safe_dump({"services": entries}))
    return LocalProvider(services_file=services_file, state_dir=STATE_DIR / "state")


def log_of(replica: int) -> Path:
    from automation.scaling.worker_services import worker_service_name

    return STATE_DIR / "state" / worker_service_name(QUEUE) / f"replica-{replica}.log"


def ready_count(replica: int) -> int:
    log = log_of(replica)
    return log.read_text(errors="replace").count(" ready.") if log.exists() else 0


def scale_and_wait(provider: Any, replicas: int) -> None:
    """Scale the pool and wait until each new worker says it is ready."""
    from automation.scaling.worker_services import worker_service_name

    before = {replica: ready_count(replica) for replica in range(replicas)}
    result = provider.scale(worker_service_name(QUEUE), replicas=replicas, wait_for_health=False)
    deadline = time.monotonic() + 120
    for started in result["started"]:
        replica = started["replica"]
        while ready_count(replica) <= before[replica]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {replica} not ready; see {log_of(replica)}")
            time.sleep(0.1)


def register(engine: Any, tally: str, seconds: float) -> str:
    from automation import ActionDefinition, Priority, WorkflowDefinition

    name = f"bench-workers-{uuid.uuid4().hex[:8]}"
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            priority=Priority.LOW,
            actions=[
                ActionDefinition(
                    name="work", action_type="testing.tally", parameters={"key": tally, "seconds": seconds}
                )
            ],
        )
    )
    return name


def wait_runs(engine: Any, runs: list[str], timeout: float) -> None:
    from automation.models import WorkflowRun

    deadline = time.monotonic() + timeout
    while WorkflowRun.objects.filter(id__in=runs, finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("runs did not finish in time")
        time.sleep(0.2)


def calibrate(engine: Any, provider: Any, plan: Plan) -> float:
    """Steps per second of one worker, saturated, wall clock."""
    from django.db.models import Max, Min

    from automation.models import StepRun

    scale_and_wait(provider, 1)
    workflow = register(engine, f"calibration-{uuid.uuid4().hex[:6]}", plan.step_seconds)
    runs = [engine.run_workflow(workflow).id for _ in range(plan.calibration_steps)]
    wait_runs(engine, runs, timeout=plan.calibration_steps * plan.step_seconds * 4 + 60)
    span = StepRun.objects.filter(run_id__in=runs).aggregate(first=Min("started_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return plan.calibration_steps / seconds


@dataclass
class Sampler:
    """Samples the backlog and the running workers every SAMPLE_SECONDS, and when each replica got ready."""

    provider: Any
    client: Any
    began: float = field(default_factory=time.monotonic)
    backlog: list[tuple[float, int]] = field(default_factory=list)
    workers: list[tuple[float, int]] = field(default_factory=list)
    ready_at: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, known_ready: set[int]) -> None:
        self._baseline = {replica: ready_count(replica) for replica in range(64)}
        self._known = set(known_ready)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from automation.scaling.queues import read_queue_load
        from automation.scaling.worker_services import worker_service_name

        while not self._stop.is_set():
            now = time.monotonic() - self.began
            self.backlog.append((now, read_queue_load(self.client, QUEUE).backlog))
            status = self.provider.status(worker_service_name(QUEUE))
            self.workers.append((now, int(status["running_replicas"])))
            for replica in range(len(status["replicas"])):
                if replica not in self._known and replica not in self.ready_at:
                    if ready_count(replica) > self._baseline.get(replica, 0):
                        self.ready_at[replica] = now
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def worker_seconds(self, start: float, end: float) -> float:
        total = 0.0
        for (at, count), (following, _) in zip(self.workers, self.workers[1:], strict=False):
            lo, hi = max(at, start), min(following, end)
            if hi > lo:
                total += count * (hi - lo)
        return total

    def peak_backlog(self, start: float, end: float) -> int:
        return max((count for at, count in self.backlog if start <= at <= end), default=0)


def flood(engine: Any, workflow: str, rate: float, seconds: float, runs: list[str]) -> None:
    from django.db import connection

    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            while len(runs) < due:
                runs.append(engine.run_workflow(workflow).id)
            time.sleep(0.01)
    finally:
        connection.close()


@dataclass
class Episode:
    side: str
    workers_at_start: int
    peak_workers: int
    first_added_asked_s: float | None
    first_added_consuming_s: float | None
    peak_backlog: int
    worker_seconds: float
    window_s: float
    steps: int
    wait_p50_s: float
    wait_p95_s: float
    wait_max_s: float
    exactly_once: bool
    decisions: list[str] = field(default_factory=list)


def step_waits(runs: list[str]) -> list[float]:
    from automation.models import StepRun

    rows = StepRun.objects.filter(run_id__in=runs).values_list("run__created_at", "started_at")
    return sorted((started - created).total_seconds() for created, started in rows)


def exactly_once(client: Any, tally: str, runs: list[str]) -> bool:
    starts = {key.decode(): int(value) for key, value in client.hgetall(f"{tally}:starts").items()}
    finishes = {key.decode(): int(value) for key, value in client.hgetall(f"{tally}:finishes").items()}
    expected = {f"{run}:work" for run in runs}
    return set(starts) == expected and set(starts.values()) == {1} and finishes == starts


def episode(
    engine: Any, provider: Any, client: Any, plan: Plan, rate: float, *, fixed: int | None
) -> Episode:
    from automation.scaling.worker_autoscaler import WorkerAutoscaler
    from automation.scaling.workerpool import WorkerPoolSettings

    start_workers = fixed or 1
    scale_and_wait(provider, start_workers)
    tally = f"tally-{uuid.uuid4().hex[:6]}"
    workflow = register(engine, tally, plan.step_seconds)
    sampler = Sampler(provider, client)
    sampler.start(set(range(start_workers)))
    window = plan.lead + plan.flood + plan.tail
    runs: list[str] = []
    flooder = threading.Timer(plan.lead, flood, args=(engine, workflow, rate, plan.flood, runs))
    began = sampler.began
    flooder.start()
    decisions: list[str] = []
    first_asked = None
    peak_workers = start_workers
    if fixed is None:
        settings = WorkerPoolSettings(
            min_workers=1,
            max_workers=plan.max_workers,
            drain_seconds=10,
            scale_in_backlog=2,
            scale_in_cooldown=5,
            max_scale_in_step=4,
            fallback_throughput=1 / plan.step_seconds,
        )
        scaler = WorkerAutoscaler(
            queue=QUEUE, settings=settings, provider=provider, client=client, rate_window=3
        )
        while time.monotonic() - began < window:
            tick_at = time.monotonic()
            tick = scaler.tick()
            now = tick_at - began
            decisions.append(f"{now:6.1f}s {tick.decision.reason}")
            peak_workers = max(peak_workers, tick.decision.desired)
            if first_asked is None and tick.scaled and tick.scaled["started"] and now >= plan.lead:
                first_asked = now - plan.lead
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick_at)))
    else:
        time.sleep(window)
    flooder.join()
    sampler.stop()
    wait_runs(engine, runs, timeout=300)
    consuming = [at for replica, at in sampler.ready_at.items() if replica >= start_workers]
    waits = step_waits(runs)
    return Episode(
        side=f"fixed {fixed}" if fixed else "autoscaled",
        workers_at_start=start_workers,
        peak_workers=peak_workers,
        first_added_asked_s=first_asked,
        first_added_consuming_s=(min(consuming) - plan.lead) if consuming else None,
        peak_backlog=sampler.peak_backlog(0, window),
        worker_seconds=sampler.worker_seconds(0, window),
        window_s=window,
        steps=len(runs),
        wait_p50_s=statistics.median(waits),
        wait_p95_s=waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)],
        wait_max_s=waits[-1],
        exactly_once=exactly_once(client, tally, runs),
        decisions=decisions,
    )


def print_table(throughput: float, rate: float, episodes: list[Episode]) -> None:
    print(f"\none worker: {throughput:.2f} steps/s; arrivals {rate:.1f}/s ({rate / throughput:.1f}x)")
    header = (
        f"{'side':<11} {'workers':>8} {'1st added (asked/consuming)':>28} {'peak backlog':>13} "
        f"{'worker-s':>9} {'wait p50/p95/max s':>20} {'once':>5}"
    )
    print(header)
    for ep in episodes:
        asked = "-" if ep.first_added_asked_s is None else f"{ep.first_added_asked_s:.1f}s"
        consuming = "-" if ep.first_added_consuming_s is None else f"{ep.first_added_consuming_s:.1f}s"
        print(
            f"{ep.side:<11} {f'{ep.workers_at_start}->{ep.peak_workers}':>8} {asked + ' / ' + consuming:>28} "
            f"{ep.peak_backlog:>13} {ep.worker_seconds:>9.0f} "
            f"{f'{ep.wait_p50_s:.1f}/{ep.wait_p95_s:.1f}/{ep.wait_max_s:.1f}':>20} "
            f"{'yes' if ep.exactly_once else 'NO':>5}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short flood, for a smoke test of the script")
    parser.add_argument("--decisions", action="store_true", help="print the controller's decisions")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    configure_environment()
    loadavg = [round(v, 2) for v in os.getloadavg()]
    if loadavg[0] > 1.0:
        print(f"warning: load average {loadavg} before starting: figures will be noisy", flush=True)
    print(f"database {bench_engine.BENCH_DB}, broker {REDIS_URL}, worker logs in {STATE_DIR}", flush=True)
    import redis

    import tests.slow_actions  # noqa: F401 - registers testing.tally in this process
    from automation.scaling.worker_services import worker_service_name

    with benchmark_database():
        from automation import AutomationConfig, AutomationEngine

        engine = AutomationEngine(AutomationConfig(timeout_seconds=60, max_concurrent_actions=200))
        provider = make_provider()
        client = redis.Redis.from_url(REDIS_URL)
        try:
            throughput = calibrate(engine, provider, plan)
            rate = plan.multiple * throughput
            print(f"one worker: {throughput:.2f} steps/s; flooding at {rate:.1f}/s", flush=True)
            autoscaled = episode(engine, provider, client, plan, rate, fixed=None)
            print(f"autoscaled pool peaked at {autoscaled.peak_workers} workers", flush=True)
            episodes = [autoscaled]
            sizes = sorted({autoscaled.peak_workers, math.ceil(1.1 * plan.multiple)}, reverse=True)
            for size in sizes:
                provider.scale(worker_service_name(QUEUE), replicas=0, wait_for_health=False)
                episodes.append(episode(engine, provider, client, plan, rate, fixed=size))
        finally:
            provider.stop(worker_service_name(QUEUE), grace_period=30)
            client.close()
    if args.decisions:
        print("\n".join(autoscaled.decisions))
    print_table(throughput, rate, episodes)
    if not args.quick:
        report = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python benchmarks/bench_workers.py",
            "plan": asdict(plan),
            "one_worker_steps_per_second": throughput,
            "arrivals_per_second": rate,
            "loadavg_at_start": loadavg,
            "episodes": [asdict(ep) for ep in episodes],
        }
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
