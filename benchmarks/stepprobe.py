"""Worker-side probe of `profile_step.py`: SQL round trips and timed spans per task in pool processes.

Loaded into a benchmark worker with `--include benchmarks.stepprobe` only; the benchmark itself never
loads it. Each pool process writes `BENCH_PROBE_DIR/child-PID.json` (and a cProfile `.prof` with
BENCH_PROBE_PROFILE=1) when it shuts down. Spans are wall time (perf_counter) around functions replaced
by timing wrappers at process start; a span nested in another counts in both.
"""

from __future__ import annotations

import cProfile
import json
import os
import time
from collections import Counter, defaultdict
from typing import Any

from celery.signals import (
    task_postrun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

OUT_DIR = os.environ.get("BENCH_PROBE_DIR", "")
PROFILE = os.environ.get("BENCH_PROBE_PROFILE") == "1"

_tasks = 0
_statements: Counter[str] = Counter()
_sql_seconds: defaultdict[str, float] = defaultdict(float)
_profiler: cProfile.Profile | None = None
_span_seconds: defaultdict[str, float] = defaultdict(float)
_span_calls: Counter[str] = Counter()


def _timed(owner: Any, attr: str, label: str, *, static: bool = False) -> None:
    """Replace `owner.attr` by a wrapper adding its wall time to span `label`."""
    original = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _span_seconds[label] += time.perf_counter() - started
            _span_calls[label] += 1

    setattr(owner, attr, staticmethod(wrapper) if static else wrapper)


def _install_spans() -> None:
    """Time the parts of a task's execution in a pool process (Celery's and, for the engine, its own)."""
    import celery.app.amqp
    import celery.app.trace
    import celery.backends.base

    # The parent names the function a job runs; the pool process looks it up in this module by name.
    _timed(celery.app.trace, "fast_trace_task", "task total (fast_trace_task)")
    _timed(celery.app.trace, "send_prerun", "task_prerun signal")
    _timed(celery.app.trace, "send_postrun", "task_postrun signal")
    _timed(celery.app.amqp.AMQP, "_retry_publish", "publish next step (chain/callback)")
    _timed(celery.backends.base.Backend, "mark_as_done", "store result (Redis GET+SETEX+PUBLISH)")
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    import django.db

    import automation.runs.executor as executor
    from automation.runs import services
    from tasks.control import WaitParams

    _timed(django.db, "close_old_connections", "close_old_connections")
    _timed(executor, "execute_step", "engine execute_step")
    _timed(services, "claim_step", "engine claim (PostgreSQL)")
    _timed(services, "complete_step", "engine complete (PostgreSQL)")
    _timed(executor, "stored_workflow", "engine stored_workflow (cached)")
    _timed(executor, "render", "engine template render")
    _timed(executor, "storable", "engine storable (JSON round trip)")
    _timed(executor, "merge_upstream", "engine merge_upstream")
    _timed(executor.logger, "info", "engine logger.info")
    _timed(WaitParams, "model_validate", "engine pydantic model_validate", static=True)


def _label(sql: str) -> str:
    """A short name for a statement: the prepared statement it runs, or its first words."""
    words = sql.replace(";", " ").split()
    if "EXECUTE" in words:
        return "EXECUTE " + words[words.index("EXECUTE") + 1]
    return " ".join(words[:4])[:60]


def _count_sql(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        label = _label(sql)
        _statements[label] += 1
        _sql_seconds[label] += time.perf_counter() - started


@worker_process_init.connect
def _start(**_: Any) -> None:
    global _profiler
    _install_spans()
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        from django.db import connection

        # The wrapper list belongs to the connection object of this thread, which outlives reconnects.
        connection.execute_wrappers.append(_count_sql)
    if PROFILE:
        _profiler = cProfile.Profile()
        _profiler.enable()


@task_postrun.connect
def _count_task(**_: Any) -> None:
    global _tasks
    _tasks += 1


@worker_process_shutdown.connect
def _dump(**_: Any) -> None:
    if not OUT_DIR:
        return
    pid = os.getpid()
    if _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(os.path.join(OUT_DIR, f"child-{pid}.prof"))
    report = {
        "tasks": _tasks,
        "statements": dict(_statements),
        "sql_seconds": {k: round(v, 6) for k, v in _sql_seconds.items()},
        "span_seconds": {k: round(v, 6) for k, v in _span_seconds.items()},
        "span_calls": dict(_span_calls),
    }
    with open(os.path.join(OUT_DIR, f"child-{pid}.json"), "w") as out:
        json.dump(report, out)


_parent_profiler: cProfile.Profile | None = None


@worker_ready.connect
def _start_parent(**_: Any) -> None:
    """Profile the worker's main process from here on (its pool processes are already forked)."""
    global _parent_profiler
    if PROFILE and OUT_DIR:
        _parent_profiler = cProfile.Profile()
        _parent_profiler.enable()


@worker_shutdown.connect
def _dump_parent(**_: Any) -> None:
    if _parent_profiler is not None:
        _parent_profiler.disable()
        _parent_profiler.dump_stats(os.path.join(OUT_DIR, f"parent-{os.getpid()}.prof"))
