"""Finding the Celery task modules: every module of the top-level `tasks` package, found, not listed."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def task_modules() -> tuple[str, ...]:
    """Dotted names of the modules of `tasks/` (action families, entry points, monitoring jobs)."""
    import tasks

    return tuple(
        f"tasks.{info.name}"
        for info in sorted(pkgutil.iter_modules(tasks.__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    )


def import_task_modules() -> None:
    for name in task_modules():
        importlib.import_module(name)
