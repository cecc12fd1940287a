"""Engine overhead against a plain Celery app on the same broker and result backend.

Three figures, each quoted as a ratio to plain Celery measured in the same run:
  - per-step time of an N-step sequential workflow vs a plain chain of N no-op tasks (target <= 1.3x);
  - an N-way fan-out with join vs a plain chord of N no-op tasks (target <= 1.2x);
  - single-action workflow throughput vs plain task throughput, same producer threads (target >= 0.8x).

The baseline is `benchmarks/plain_celery.py`: its own Celery app, no Django, Celery's defaults where the
engine's settings are not about delivery (see its docstring). For each figure in each repetition, one
worker per side runs in turn (never both at once, the order alternating between repetitions): it starts,
is warmed up by one run of the figure, runs it once measured, and stops. Both workers have the same
flags: prefork -c 2 -Q default --without-gossip --without-mingle.

Usage, from the repository root: python benchmarks/bench_engine.py [--quick] [--only FIGURE]
It creates its own PostgreSQL database (dropped at the end) and flushes Redis db 6 (or
AUTOMATION_BENCH_REDIS) around the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The plain worker imports `benchmarks.plain_celery` from the repository root; this script does alike.
sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("AUTOMATION_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("AUTOMATION_BENCH_REDIS", "redis://127.0.0.1:6379/6")
BENCH_DB = f"automation_bench_{os.getpid()}"
STATE_DIR = Path(tempfile.mkdtemp(prefix="automation-bench-"))
RESULTS = ROOT / "benchmarks" / "results" / "engine.json"
#: The queue of a NORMAL-priority workflow; plain tasks are sent to a queue of the same name.
QUEUE = "default"
CONCURRENCY = 2
#: Threads submitting work at once in the throughput figure, for plain Celery and the engine alike.
PRODUCERS = 4
#: How often completion is polled. The figures do not depend on it: a run ends at the time the worker
#: recorded (WorkflowRun.finished_at for the engine, the result's date_done for plain Celery).
POLL_SECONDS = 0.05


class BenchmarkError(RuntimeError):
    """A run or task did not succeed, or did not finish in time: no figure can be taken from it."""


@dataclass(frozen=True)
class Plan:
    steps: int
    fanout: int
    throughput: int
    repeats: int


FULL = Plan(steps=200, fanout=1000, throughput=1000, repeats=5)
QUICK = Plan(steps=20, fanout=50, throughput=100, repeats=3)
SIDES = ("plain", "engine")


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target_ratio: float
    plain: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.engine) / statistics.median(self.plain)

    @property
    def met(self) -> bool:
        return self.ratio >= self.target_ratio if self.higher_is_better else self.ratio <= self.target_ratio

    @property
    def target(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.target_ratio}x plain"

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "plain": round(statistics.median(self.plain), 4),
            "engine": round(statistics.median(self.engine), 4),
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "met": self.met,
            "plain_samples": [round(v, 4) for v in self.plain],
            "engine_samples": [round(v, 4) for v in self.engine],
        }


def configure_environment() -> None:
    """Point Django and Celery at the benchmark's stores; the worker subprocess inherits all of it."""
    os.environ["DATABASE_URL"] = f"{PG_SERVER}/{BENCH_DB}"
    os.environ["AUTOMATION_BROKER_URL"] = REDIS_URL
    os.environ["AUTOMATION_VISIBILITY_TIMEOUT"] = "3600"
    os.environ["AUTOMATION_STATE_DIR"] = str(STATE_DIR)
    os.environ["AUTOMATION_HOME"] = str(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "automation.settings"
    for name in ("AUTOMATION_RESULT_BACKEND", "AUTOMATION_REDIS_URL", "AUTOMATION_DEBUG"):
        os.environ.pop(name, None)


@contextmanager
def benchmark_database() -> Iterator[None]:
    """A fresh, migrated database for this process, dropped afterwards; Redis db 6 flushed around it."""
    import psycopg2
    import redis

    admin = psycopg2.connect(f"{PG_SERVER}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        cur.execute(f'CREATE DATABASE "{BENCH_DB}"')
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    try:
        from automation.bootstrap import migrate, setup

        setup()
        migrate(verbosity=0)
        yield
    finally:
        from django.db import connections

        try:
            stop_producers()
        finally:
            connections.close_all()
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            admin.close()
            broker.flushdb()


class Worker:
    """One prefork worker of one side in its own process group: the engine's app or the plain one."""

    def __init__(
        self, side: str, *, extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
    ) -> None:
        self.side = side
        self.name = f"bench-{side}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.log_path = STATE_DIR / f"worker-{side}.log"
        env = dict(os.environ)
        if side == "plain":
            # Celery installs its Django fixup in any app whose process has this variable set.
            env.pop("DJANGO_SETTINGS_MODULE", None)
            env["AUTOMATION_BENCH_REDIS"] = REDIS_URL
        env.update(extra_env or {})
        module = "automation" if side == "engine" else "benchmarks.plain_celery"
        command = [
            sys.executable, "-m", "celery", "-A", module, "worker", "-P", "prefork", "-c", str(CONCURRENCY),
            "-Q", QUEUE, "-n", self.name, "-l", "WARNING",
            "--without-gossip", "--without-mingle", *extra_args,
        ]
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        app = side_app(self.side)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"{self.side} worker exited: {self.log_tail()}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise BenchmarkError(f"{self.side} worker not ready after {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def stop(self) -> None:
        """Stop the worker and all its pool processes: the other side's worker must run alone."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(POLL_SECONDS)
        else:
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def side_app(side: str) -> Any:
    if side == "engine":
        from automation.celery import app
    else:
        from benchmarks.plain_celery import app
    return app


@contextmanager
def running_worker(side: str, **options: Any) -> Iterator[Worker]:
    worker = Worker(side, **options)
    try:
        worker.wait_ready()
        yield worker
    except BenchmarkError:
        print(f"{side} worker log tail:\n{worker.log_tail()}", file=sys.stderr)
        raise
    finally:
        worker.stop()


# --- waiting for completion, timed by what the worker recorded -------------------------------------


def wait_idle(timeout: float = 120.0) -> None:
    """Wait until the queue is empty and no message is unacknowledged: the next measurement starts clean."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lists = [key for key in client.scan_iter(match=f"{QUEUE}*") if client.type(key) == b"list"]
        queued = sum(int(client.llen(key)) for key in lists)
        if queued == 0 and int(client.hlen("unacked")) == 0:
            return
        time.sleep(POLL_SECONDS)
    raise BenchmarkError(f"queue '{QUEUE}' still busy after {timeout} s")


def wait_tasks(task_ids: list[str], timeout: float) -> float:
    """Wait until every plain task succeeded (one MGET per poll); returns the latest date_done (epoch s)."""
    from benchmarks.plain_celery import app

    backend: Any = app.backend
    pending = {backend.get_key_for_task(task_id).decode(): task_id for task_id in task_ids}
    latest = 0.0
    deadline = time.monotonic() + timeout
    while pending:
        keys = list(pending)
        for key, payload in zip(keys, backend.client.mget(keys), strict=True):
            if payload is None:
                continue
            meta = backend.decode_result(payload)
            if meta["status"] not in ("SUCCESS", "FAILURE", "REVOKED"):
                continue
            if meta["status"] != "SUCCESS":
                detail = f"{meta['status']}: {meta.get('result')}"
                raise BenchmarkError(f"plain task {pending[key]} ended {detail}")
            latest = max(latest, datetime.fromisoformat(meta["date_done"]).timestamp())
            del pending[key]
        if pending:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{len(pending)} plain task(s) unfinished after {timeout} s")
            time.sleep(POLL_SECONDS)
    return latest


def wait_runs(run_ids: list[str], timeout: float) -> float:
    """Wait until every run succeeded (one query per poll); returns the latest finished_at (epoch s).

    The poll is one raw query on an array of the pending ids: the ORM's `id__in` over 1,000 UUIDs cost
    this process ~10 ms of CPU a poll (plain Celery's MGET ~1.5 ms), taken from the cores the engine's
    worker and PostgreSQL share with it while the figure runs."""
    from django.db import connection

    from automation.choices import RunStatus
    from automation.models import StepRun

    pending = set(run_ids)
    latest = 0.0
    deadline = time.monotonic() + timeout
    terminal = list(RunStatus.TERMINAL)
    while pending:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id::text, status, error, finished_at FROM automation_workflowrun"
                " WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
                [list(pending), terminal],
            )
            finished = cursor.fetchall()
        for run_id, status, error, finished_at in finished:
            if status != RunStatus.SUCCEEDED or finished_at is None:
                failed = StepRun.objects.filter(run_id=run_id).exclude(status=RunStatus.SUCCEEDED)
                detail = [(s.name, s.status, s.error) for s in failed[:3]]
                raise BenchmarkError(f"run {run_id} ended {status}: {error} {detail}")
            latest = max(latest, finished_at.timestamp())
            pending.discard(run_id)
        if pending:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{len(pending)} run(s) unfinished after {timeout} s")
            time.sleep(POLL_SECONDS)
    return latest


# --- the six measurements: each returns the figure's value ------------------------------------------


def plain_chain_ms_per_step(steps: int) -> float:
    from celery import chain

    from benchmarks.plain_celery import app, noop

    started = time.time()
    result = chain(*[noop.si().set(queue=QUEUE) for _ in range(steps)], app=app).apply_async()
    ended = wait_tasks([result.id], timeout=60 + steps)
    return (ended - started) * 1000 / steps


def engine_chain_ms_per_step(engine: Any, workflow: str, steps: int) -> float:
    started = time.time()
    handle = engine.run_workflow(workflow)
    ended = wait_runs([handle.id], timeout=60 + steps)
    return (ended - started) * 1000 / steps


def plain_chord_seconds(width: int) -> float:
    from celery import chord

    from benchmarks.plain_celery import app, noop

    started = time.time()
    header = [noop.si().set(queue=QUEUE) for _ in range(width)]
    result = chord(header, noop.si().set(queue=QUEUE), app=app).apply_async()
    return wait_tasks([result.id], timeout=60 + width) - started


def engine_fanout_seconds(engine: Any, workflow: str, width: int) -> float:
    started = time.time()
    handle = engine.run_workflow(workflow)
    return wait_runs([handle.id], timeout=60 + width) - started


#: The submitting threads, alive for the whole benchmark: like a service's, each keeps its connections from
#: one measurement to the next (plain Celery's producer pool is the app's, warm after the warm-up run; the
#: engine's database connection is per thread, and a thread made anew would connect again, measured).
_producers: ThreadPoolExecutor | None = None


def produce(count: int, submit: Callable[[], str]) -> list[str]:
    """Submit `count` items from PRODUCERS threads at once, as the services of a platform would."""
    global _producers
    if _producers is None:
        _producers = ThreadPoolExecutor(PRODUCERS, thread_name_prefix="producer")
    sizes = [count // PRODUCERS + (1 if i < count % PRODUCERS else 0) for i in range(PRODUCERS)]
    return [item for chunk in _producers.map(lambda n: [submit() for _ in range(n)], sizes) for item in chunk]


def stop_producers() -> None:
    """Close each submitting thread's database connection, then end the threads."""
    import threading

    from django.db import connection

    global _producers
    if _producers is None:
        return
    every_thread = threading.Barrier(PRODUCERS)  # one closing call per thread, not two on one

    def close(_: int) -> None:
        try:
            every_thread.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass  # a thread still stuck in a measurement: its session ends with the database (FORCE)
        connection.close()

    pool, _producers = _producers, None
    closing = [pool.submit(close, i) for i in range(PRODUCERS)]
    try:
        for done in closing:
            done.result(timeout=60)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def plain_throughput(count: int) -> float:
    from benchmarks.plain_celery import noop

    started = time.time()
    task_ids = produce(count, lambda: str(noop.apply_async(queue=QUEUE).id))
    return count / (wait_tasks(task_ids, timeout=60 + count) - started)


def engine_throughput(engine: Any, workflow: str, count: int) -> float:
    started = time.time()
    run_ids = produce(count, lambda: engine.run_workflow(workflow).id)
    return count / (wait_runs(run_ids, timeout=60 + count) - started)


# --- workflows, machine facts, report ---------------------------------------------------------------


def register_workflows(engine: Any, plan: Plan) -> dict[str, str]:
    """The three benchmark workflows, every step a zero-second `control.wait` (it returns at once)."""
    from automation import ActionDefinition, WorkflowDefinition

    def noop_step(name: str, depends_on: list[str] | None = None) -> Any:
        return ActionDefinition(
            name=name, action_type="control.wait", parameters={"seconds": 0}, depends_on=depends_on
        )

    branches = [noop_step(f"branch{i}", depends_on=[]) for i in range(plan.fanout)]
    definitions = {
        "sequential": WorkflowDefinition(
            name=f"bench-sequential-{plan.steps}", actions=[noop_step(f"step{i}") for i in range(plan.steps)]
        ),
        "fanout": WorkflowDefinition(
            name=f"bench-fanout-{plan.fanout}",
            actions=[*branches, noop_step("join", depends_on=[b.name for b in branches])],
        ),
        "single": WorkflowDefinition(name="bench-single", actions=[noop_step("only")]),
    }
    for definition in definitions.values():
        engine.register_workflow(definition)
    return {key: definition.name for key, definition in definitions.items()}


def source_digest() -> str:
    """Digest of the engine's code as this run loaded it (other engineers edit it meanwhile)."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("automation/**/*.py"), *ROOT.glob("tasks/**/*.py")]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return ""
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    import psycopg2
    import redis

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )
    with closing(psycopg2.connect(f"{PG_SERVER}/postgres")) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
    packages = ("celery", "kombu", "billiard", "django", "redis", "psycopg2-binary", "pydantic", "automation")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in packages},
        "postgresql": pg_version,
        "redis_server": redis.Redis.from_url(REDIS_URL).info("server")["redis_version"],
        "git_revision": git_revision(),
        "engine_source_digest": source_digest(),
    }


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far (/proc/stat): the share the hypervisor gave other guests
    while this machine wanted to run. On a shared host it moves every figure; quoted with them."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total > 0 else 0.0


def print_table(figures: list[Figure]) -> None:
    print(f"\n{'figure':<40} {'plain':>10} {'engine':>10} {'ratio':>7}  {'target':<16} met")
    for fig in figures:
        plain, engine = statistics.median(fig.plain), statistics.median(fig.engine)
        print(
            f"{fig.label + ' (' + fig.unit + ')':<40} {plain:>10.2f} {engine:>10.2f} {fig.ratio:>6.2f}x  "
            f"{fig.target:<16} {'yes' if fig.met else 'NO'}"
        )


def write_results(figures: list[Figure], plan: Plan, quick: bool, machine: dict[str, Any]) -> None:
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_engine.py" + (" --quick" if quick else ""),
        "mode": "quick" if quick else "full",
        "method": {
            "statistic": f"median of {plan.repeats} repetitions; each: every figure runs on a new worker "
                         "of each side in turn (order alternating), after one warm-up run of that figure",
            "timing": "client clock before submitting -> completion time recorded by the worker "
                      "(plain: result date_done; engine: WorkflowRun.finished_at)",
            "worker": f"celery worker -P prefork -c {CONCURRENCY} -Q {QUEUE} --without-gossip "
                      "--without-mingle, -A automation (engine) or -A benchmarks.plain_celery (plain, no "
                      "Django), never both at once",
            "baseline": "benchmarks/plain_celery.py: same Redis broker and backend, acks_late, prefetch 1, "
                        "JSON, task events, result_extended; no result deduplication",
            "engine_step": "control.wait with {seconds: 0}",
            "throughput_producers": f"{PRODUCERS} threads alive for the whole run, keeping their connections",
            "sizes": {"steps": plan.steps, "fanout": plan.fanout, "throughput": plan.throughput},
        },
        "machine": machine,
        "figures": {fig.key: fig.as_json() for fig in figures},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(RESULTS)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def measure(plan: Plan, only: list[str] | None = None) -> list[Figure]:
    from automation import AutomationConfig, AutomationEngine

    engine = AutomationEngine(AutomationConfig())
    workflows = register_workflows(engine, plan)
    figures = [
        Figure("sequential", f"sequential {plan.steps} steps", "ms/step", False, 1.3),
        Figure("fanout_join", f"fan-out {plan.fanout} + join", "s", False, 1.2),
        Figure("throughput", f"single-action x{plan.throughput}", "per s", True, 0.8),
    ]
    runners: dict[str, list[Callable[[], float]]] = {
        "plain": [
            lambda: plain_chain_ms_per_step(plan.steps),
            lambda: plain_chord_seconds(plan.fanout),
            lambda: plain_throughput(plan.throughput),
        ],
        "engine": [
            lambda: engine_chain_ms_per_step(engine, workflows["sequential"], plan.steps),
            lambda: engine_fanout_seconds(engine, workflows["fanout"], plan.fanout),
            lambda: engine_throughput(engine, workflows["single"], plan.throughput),
        ],
    }
    chosen = [i for i, fig in enumerate(figures) if not only or fig.key in only]
    for repeat in range(plan.repeats):
        for i in chosen:
            # The two sides of a figure run back to back (the machine's load drifts over minutes), the
            # side that goes first alternating between repetitions.
            for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
                with running_worker(side):
                    runners[side][i]()  # warm-up: pool processes connect, prepare, fill their caches
                    wait_idle()
                    value = runners[side][i]()
                    wait_idle()
                fig = figures[i]
                getattr(fig, side).append(value)
                print(f"  #{repeat + 1} {side:<6} {fig.label}: {value:.2f} {fig.unit}", flush=True)
    return [figures[i] for i in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test of the script")
    parser.add_argument("--only", choices=["sequential", "fanout_join", "throughput"], action="append",
                        help="measure only these figures (results are not written)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL

    # SIGTERM unwinds like Ctrl-C, so the worker is stopped and the database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    configure_environment()
    machine = machine_info()
    machine["loadavg_at_start"] = [round(v, 2) for v in os.getloadavg()]
    if machine["loadavg_at_start"][0] > 1.0:
        print(f"warning: load average {machine['loadavg_at_start']} before starting: other work shares the "
              f"{machine['nproc']} cores, figures will be noisy", flush=True)
    print(f"database {BENCH_DB}, broker {REDIS_URL}, worker log in {STATE_DIR}", flush=True)
    started_cpu = cpu_times()
    with benchmark_database():
        figures = measure(plan, only=args.only)
    machine["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    machine["cpu_steal_percent"] = steal_percent(started_cpu, cpu_times())
    print(f"CPU steal during the run: {machine['cpu_steal_percent']}% of CPU time (other guests of the host)")
    figures = [fig for fig in figures if fig.plain]
    print_table(figures)
    if not args.only:
        write_results(figures, plan, args.quick, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
