"""No-op tasks on the engine's own Celery app: the raw-Celery baseline of `bench_engine.py`.

The benchmark worker loads this module with `--include benchmarks.rawtasks`, so raw tasks and engine
steps run in the same worker processes, with the same broker, backend and task settings.
"""

from __future__ import annotations

from typing import Any

from automation.celery import app


@app.task(name="bench.noop")
def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing: what is left to measure is Celery's own cost (broker, result backend, worker)."""
    return None
