"""Where a step's time goes, engine vs plain Celery: CPU per process, Redis commands and SQL per step.

Runs the sequential figure of `bench_engine.py` (an N-step workflow of zero-second waits vs a plain chain
of N no-op tasks), or with --figure fanout the N-way fan-out with join vs a plain chord, or with --figure
throughput N single-action runs vs N plain tasks from the producer threads, on one worker at a time
with `benchmarks.stepprobe` loaded into it, and reports:
  - wall time per step and CPU time per step of each process involved (worker parent, pool processes,
    PostgreSQL backends of the benchmark database, redis-server, this producer), read from
    /proc/PID/task/*/schedstat (getrusage for this process) before and after;
  - with --monitor, one extra run under Redis MONITOR: every command per step, by issuing process;
  - SQL statements and timed spans per task in the pool processes (stepprobe);
  - with --pyspy, py-spy samples of the worker and its pool processes (raw collapsed stacks);
  - with --cprofile, cProfile of the worker and its pool processes: function calls per task;
  - with --producer, SQL and Redis commands of creating runs (engine) vs sending tasks (plain).
Profilers and MONITOR slow what they watch: compare engine and plain within one mode, not across modes.

Usage: python benchmarks/profile_step.py [--figure sequential|fanout|throughput] [--steps 200] [--runs 3]
       [--monitor] [--pyspy] [--cprofile] [--producer] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_engine as bench  # noqa: E402 - after the path is set

#: The throughput figure's single-action workflow (registered by `bench_engine.register_workflows`).
SINGLE_WORKFLOW = "bench-single"


def threads_cpu_ns(pid: int) -> int:
    """On-CPU time of every thread of `pid` so far (ns), 0 once it is gone."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue
    except FileNotFoundError:
        return 0
    return total


def own_cpu_ns() -> int:
    """On-CPU time of this process, threads that have ended included (producer threads do end)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        text = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        found += [int(child) for child in text]
    return found


def redis_server_pid() -> int:
    import redis

    return int(redis.Redis.from_url(bench.REDIS_URL).info("server")["process_id"])


def pg_backends() -> tuple[list[int], int]:
    """PIDs of the PostgreSQL backends of the benchmark database, and this process's own backend."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    return pids, own


def cpu_snapshot(worker: bench.Worker, side: str) -> dict[str, int]:
    parent = worker.process.pid
    snapshot = {"worker parent": threads_cpu_ns(parent)}
    snapshot["pool processes"] = sum(threads_cpu_ns(child) for child in children(parent))
    backends, own = pg_backends()
    snapshot["postgres (worker backends)"] = sum(threads_cpu_ns(pid) for pid in backends if pid != own)
    snapshot["postgres (producer backend)"] = threads_cpu_ns(own)
    snapshot["redis-server (shared)"] = threads_cpu_ns(redis_server_pid())
    snapshot["producer (this process)"] = own_cpu_ns()
    return snapshot


def port_owners() -> dict[int, int]:
    """Local TCP port -> PID of every process connected to Redis (from `ss -tnp`)."""
    command = ["ss", "-tnpH", "dport", "= :6379"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    owners: dict[int, int] = {}
    for line in out.splitlines():
        parts = line.split()
        match = re.search(r"pid=(\d+)", line)
        if len(parts) >= 4 and match:
            owners[int(parts[3].rsplit(":", 1)[1])] = int(match.group(1))
    return owners


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MONITOR_LINE = re.compile(r'^[\d.]+ \[(\d+) [\d.]+:(\d+)\] "([^"]+)"(?: "([^"]*)")?')


def monitored(
    run: Callable[[], Any], roles: Callable[[], dict[int, str]], path: Path
) -> dict[str, Counter[str]]:
    """Redis commands on the benchmark's database while `run` runs, by issuing role."""
    db = bench.REDIS_URL.rsplit("/", 1)[1]
    with path.open("w") as out:
        monitor = subprocess.Popen(["redis-cli", "monitor"], stdout=out, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        try:
            run()
            time.sleep(0.5)
            owners = port_owners()
            role_of = roles()
        finally:
            monitor.send_signal(signal.SIGINT)
            monitor.wait(10)
    counts: dict[str, Counter[str]] = {}
    for line in path.read_text().splitlines():
        match = _MONITOR_LINE.match(line)
        if not match or match.group(1) != db:
            continue
        port, command, first = int(match.group(2)), match.group(3).upper(), match.group(4) or ""
        role = role_of.get(owners.get(port, -1), f"port {port} (gone)")
        key = command if command not in ("PUBLISH", "EVALSHA", "LPUSH", "RPUSH", "SET", "SETEX") else (
            f"{command} {_UUID.sub('<id>', first)[:60]}"
        )
        counts.setdefault(role, Counter())[key] += 1
    return counts


def worker_roles(worker: bench.Worker) -> dict[int, str]:
    parent = worker.process.pid
    roles = {parent: "worker parent", os.getpid(): "producer (this process)"}
    roles.update({child: "pool process" for child in children(parent)})
    return roles


#: Functions whose cumulative cProfile time is reported per task, by (file suffix, function name).
PARENT_FUNCTIONS = {
    "receive (BRPOP read, decode envelope)": ("kombu/transport/redis.py", "_brpop_read"),
    "unacked bookkeeping on receipt (MULTI ZADD HSET EXEC)": ("kombu/transport/redis.py", "append"),
    "ack (MULTI ZREM HDEL EXEC)": ("kombu/transport/redis.py", "ack"),
    "task message handler (Request, task-received event)": (
        "celery/worker/strategy.py", "task_message_handler"
    ),
    "send job to pool process": ("celery/concurrency/asynpool.py", "_write_job"),
    "job results from pool process": ("celery/concurrency/asynpool.py", "on_result_readable"),
    "time limit timers set": ("celery/concurrency/asynpool.py", "on_timeout_set"),
    "time limit timers cancelled": ("celery/concurrency/asynpool.py", "on_timeout_cancel"),
    "event flush (PUBLISH task.multi)": ("celery/events/dispatcher.py", "flush"),
}
POOL_FUNCTIONS = {
    "task total (fast_trace_task)": ("celery/app/trace.py", "fast_trace_task"),
    "decode message body": ("kombu/serialization.py", "loads"),
    "publish next step": ("celery/app/amqp.py", "_retry_publish"),
    "store result": ("celery/backends/base.py", "mark_as_done"),
    "signal sends (prerun, postrun, ...)": ("celery/utils/dispatch/signal.py", "send"),
    "engine execute_step": ("automation/runs/executor.py", "execute_step"),
    "engine claim": ("automation/runs/fastpath.py", "claim"),
    "engine complete": ("automation/runs/fastpath.py", "complete"),
    "engine logging": ("logging/__init__.py", "info"),
    "pydantic model_validate": ("pydantic/main.py", "model_validate"),
    "template render": ("automation/templating.py", "render"),
    "storable": ("automation/runs/executor.py", "storable"),
    "close_old_connections": ("django/db/__init__.py", "close_old_connections"),
    "Django fixup prerun": ("celery/fixups/django.py", "on_task_prerun"),
    "Django fixup postrun": ("celery/fixups/django.py", "on_task_postrun"),
}


def cprofile_summary(paths: list[Path], tasks: int, functions: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Function calls per task (deterministic) and cumulative ms per task (inflated by the profiler)."""
    import pstats

    if not paths or not tasks:
        return {}
    stats = pstats.Stats(*[str(p) for p in paths])
    table: Any = stats.stats  # type: ignore[attr-defined]
    cumulative = {label: 0.0 for label in functions}
    calls = {label: 0 for label in functions}
    for (filename, _, name), (_, ncalls, _, cum, _) in table.items():
        for label, (suffix, function) in functions.items():
            if filename.endswith(suffix) and name.endswith(function):
                cumulative[label] += cum
                calls[label] += ncalls
    return {
        "function_calls_per_task": round(stats.total_calls / tasks, 1),  # type: ignore[attr-defined]
        "profiled_seconds_per_task_ms": round(stats.total_tt * 1000 / tasks, 3),  # type: ignore[attr-defined]
        "cum_ms_per_task": {k: round(v * 1000 / tasks, 4) for k, v in cumulative.items() if calls[k]},
        "calls_per_task": {k: round(v / tasks, 3) for k, v in calls.items() if v},
    }


def run_side(side: str, args: argparse.Namespace, engine: Any, workflow: str, out: Path) -> dict[str, Any]:
    probe_dir = out / side
    probe_dir.mkdir(parents=True, exist_ok=True)
    env = {"BENCH_PROBE_DIR": str(probe_dir), "BENCH_PROBE_PROFILE": "1" if args.cprofile else "0"}
    chain: Callable[[], float]
    if args.figure == "fanout":  # N branches and a join: N + 1 tasks; reported as ms per task
        tasks_per_run = args.steps + 1
        chain = (
            (lambda: bench.engine_fanout_seconds(engine, workflow, args.steps) * 1000 / tasks_per_run)
            if side == "engine"
            else (lambda: bench.plain_chord_seconds(args.steps) * 1000 / tasks_per_run)
        )
    elif args.figure == "throughput":  # N single-action runs from the producer threads; ms per run
        tasks_per_run = args.steps
        chain = (
            (lambda: 1000 / bench.engine_throughput(engine, SINGLE_WORKFLOW, args.steps))
            if side == "engine"
            else (lambda: 1000 / bench.plain_throughput(args.steps))
        )
    else:
        tasks_per_run = args.steps
        chain = (
            (lambda: bench.engine_chain_ms_per_step(engine, workflow, args.steps)) if side == "engine"
            else (lambda: bench.plain_chain_ms_per_step(args.steps))
        )
    report: dict[str, Any] = {"side": side, "steps": args.steps}
    probe = ("--include", "benchmarks.stepprobe")
    with bench.running_worker(side, extra_args=probe, extra_env=env) as worker:
        chain()  # warm-up
        bench.wait_idle()
        before = cpu_snapshot(worker, side)
        started = time.monotonic()
        per_step = []
        for _ in range(args.runs):
            per_step.append(chain())
            bench.wait_idle()
        elapsed = time.monotonic() - started
        after = cpu_snapshot(worker, side)
        steps = args.runs * tasks_per_run
        report["ms_per_step"] = per_step
        report["median_ms_per_step"] = statistics.median(per_step)
        report["cpu_ms_per_step"] = {k: round((after[k] - before[k]) / 1e6 / steps, 3) for k in before}
        report["wall_ms_per_step_incl_polling"] = round(elapsed * 1000 / steps, 3)
        if args.pyspy:
            flame = out / f"pyspy-{side}.txt"
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.process.pid),
                 "--subprocesses", "--format", "raw", "--rate", str(args.rate), "--nonblocking",
                 "-o", str(flame)],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )
            time.sleep(1.0)
            for _ in range(args.runs):
                chain()
                bench.wait_idle()
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            report["pyspy"] = str(flame)
        if args.monitor:
            counts = monitored(chain, lambda: worker_roles(worker), out / f"monitor-{side}.txt")
            report["redis_per_step"] = {
                role: {cmd: round(n / tasks_per_run, 3) for cmd, n in sorted(c.items())}
                for role, c in counts.items()
            }
            bench.wait_idle()
    probes = [json.loads(p.read_text()) for p in probe_dir.glob("child-*.json")]
    tasks = sum(p["tasks"] for p in probes)
    report["pool_tasks"] = tasks
    if tasks:
        statements: Counter[str] = Counter()
        seconds: Counter[str] = Counter()
        for probe in probes:
            statements.update(probe["statements"])
            seconds.update(probe["sql_seconds"])
        report["sql_per_task"] = {k: round(v / tasks, 4) for k, v in statements.items()}
        report["sql_ms_per_task"] = {k: round(seconds[k] * 1000 / tasks, 4) for k in statements}
        spans: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        for probe in probes:
            spans.update(probe["span_seconds"])
            calls.update(probe["span_calls"])
        report["pool_span_ms_per_task"] = {k: round(v * 1000 / tasks, 4) for k, v in spans.most_common()}
        report["pool_span_calls_per_task"] = {k: round(v / tasks, 3) for k, v in calls.items()}
        report["pool_cprofile"] = cprofile_summary(
            sorted(probe_dir.glob("child-*.prof")), tasks, POOL_FUNCTIONS
        )
        report["parent_cprofile"] = cprofile_summary(
            sorted(probe_dir.glob("parent-*.prof")), tasks, PARENT_FUNCTIONS
        )
    return report


def producer_pass(engine: Any, workflows: dict[str, str], count: int, out: Path) -> dict[str, Any]:
    """Create `count` single-step runs and one N-step run without a worker: SQL and Redis commands each."""
    import cProfile

    from django.db import connection

    from benchmarks.plain_celery import noop

    statements: Counter[str] = Counter()

    def count_sql(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        words = sql.replace(";", " ").split()
        label = "EXECUTE " + words[words.index("EXECUTE") + 1] if "EXECUTE" in words else " ".join(words[:4])
        statements[label] += 1
        return execute(sql, params, many, context)

    roles = lambda: {os.getpid(): "producer"}  # noqa: E731
    single = workflows["single"]
    report: dict[str, Any] = {}
    engine.run_workflow(workflows["single"])  # prepares the statements, fills the document cache
    with connection.execute_wrapper(count_sql):
        started = time.perf_counter()
        profiler = cProfile.Profile()
        redis_counts = monitored(
            lambda: profiler.runcall(lambda: [engine.run_workflow(single) for _ in range(count)]),
            roles, out / "monitor-producer-engine.txt",
        )
        elapsed = time.perf_counter() - started
        report["engine_single_ms_each_under_monitor"] = round(elapsed * 1000 / count, 3)
        profiler.dump_stats(str(out / "producer-engine.prof"))
    report["engine_single_sql_per_run"] = {k: v / count for k, v in statements.items()}
    report["engine_single_redis_per_run"] = {
        k: round(v / count, 3) for k, v in redis_counts.get("producer", Counter()).items()
    }
    profiler = cProfile.Profile()
    redis_counts = monitored(
        lambda: profiler.runcall(lambda: [noop.apply_async(queue=bench.QUEUE) for _ in range(count)]),
        roles, out / "monitor-producer-plain.txt",
    )
    profiler.dump_stats(str(out / "producer-plain.prof"))
    report["plain_single_redis_per_task"] = {
        k: round(v / count, 3) for k, v in redis_counts.get("producer", Counter()).items()
    }
    # Timing without MONITOR, which slows Redis down.
    for label, submit in (
        ("engine_single_ms_each", lambda: engine.run_workflow(workflows["single"])),
        ("plain_single_ms_each", lambda: noop.apply_async(queue=bench.QUEUE)),
    ):
        _, backend = pg_backends()
        started = time.perf_counter()
        cpu, pg_cpu = own_cpu_ns(), threads_cpu_ns(backend)
        for _ in range(count):
            submit()
        report[label] = round((time.perf_counter() - started) * 1000 / count, 3)
        cpu_ms = (own_cpu_ns() - cpu) / 1e6
        report[label.replace("_ms_each", "_cpu_ms_each")] = round(cpu_ms / count, 3)
        pg_ms = (threads_cpu_ns(backend) - pg_cpu) / 1e6
        report[label.replace("_ms_each", "_postgres_cpu_ms_each")] = round(pg_ms / count, 3)
    import redis

    redis.Redis.from_url(bench.REDIS_URL).delete(bench.QUEUE)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--figure", choices=["sequential", "fanout", "throughput"], default="sequential")
    parser.add_argument("--steps", type=int, default=200, help="sequence steps, fan-out branches")
    parser.add_argument("--runs", type=int, default=3, help="measured chains per side (after one warm-up)")
    parser.add_argument("--side", choices=bench.SIDES, action="append")
    parser.add_argument("--monitor", action="store_true", help="one more chain under Redis MONITOR")
    parser.add_argument("--pyspy", action="store_true", help="py-spy record --subprocesses, --runs chains")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--cprofile", action="store_true", help="cProfile the pool processes (slows them)")
    parser.add_argument("--producer", action="store_true", help="profile run creation vs task sending")
    parser.add_argument("--out", type=Path, default=Path(bench.STATE_DIR) / "profile")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bench.configure_environment()
    plan = bench.Plan(steps=args.steps, fanout=args.steps, throughput=1, repeats=1)
    reports: dict[str, Any] = {"loadavg_at_start": os.getloadavg()}
    with bench.benchmark_database():
        from automation import AutomationConfig, AutomationEngine

        engine = AutomationEngine(AutomationConfig())
        workflows = bench.register_workflows(engine, plan)
        if args.producer:
            reports["producer"] = producer_pass(engine, workflows, 200, args.out)
        for side in args.side or bench.SIDES:
            reports[side] = run_side(side, args, engine, workflows.get(args.figure, ""), args.out)
    reports["loadavg_at_end"] = os.getloadavg()
    text = json.dumps(reports, indent=2)
    (args.out / "report.json").write_text(text + "\n")
    print(text)
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
