"""The engine's own Celery workers as a service of the `local` provider: one `-c 1` worker per replica.

Scaling such a service is `infrastructure.scale_service` (or `LocalProvider.scale`) on
`worker_service_name(queue)`. Scale-in sends SIGTERM to each departing worker's process group: its main
process starts Celery's warm shutdown (it stops consuming and lets the running step finish; pool
processes ignore SIGTERM, `automation/fleet/heartbeat.py`) and SIGKILL comes only after the grace
period, chosen longer than any step may run, so no step is killed midway.

The scaling loop scales such a service with a run of its own (a `celery` scaling target): that run is a
step too, bounded by the same longest time limit, so the warm shutdown it waits for must fit under it
(`longest_scale_grace`, `scale_run_timeout`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from automation.delivery import longest_time_limit
from automation.errors import InvalidFieldsError
from automation.providers.local.services_file import ServiceSpec, load_services_file

#: Prefix of the services that run the engine's workers: `celery-<queue>`.
WORKER_SERVICE_PREFIX = "celery-"
#: Seconds past the longest step a warm shutdown is given: restoring what the worker held, the last
#: heartbeat, closing connections.
SHUTDOWN_MARGIN = 30.0
#: Seconds a scale run needs besides the warm shutdown it waits for: the service's lock, the new workers
#: spawned.
SCALE_RUN_MARGIN = 60.0


class WorkerServiceError(InvalidFieldsError):
    """A worker service that cannot be declared; `errors` names the field at fault."""


def worker_service_name(queue: str) -> str:
    return f"{WORKER_SERVICE_PREFIX}{queue}"


def worker_grace_period(longest_step_seconds: float | None = None) -> float:
    """Seconds between SIGTERM and SIGKILL: the longest step the queue may run plus `SHUTDOWN_MARGIN`.

    Without a bound given, the longest hard time limit any action may have under the configured
    visibility timeout (`longest_time_limit`): no step outlives it, the pool kills it there.
    """
    if longest_step_seconds is None:
        from django.conf import settings

        longest_step_seconds = longest_time_limit(float(settings.VISIBILITY_TIMEOUT))
    if not isinstance(longest_step_seconds, int | float) or not 0 <= longest_step_seconds < math.inf:
        raise WorkerServiceError([("longest_step_seconds", "must be a non-negative number")])
    return float(longest_step_seconds) + SHUTDOWN_MARGIN


def _visibility_timeout() -> float:
    from django.conf import settings

    return float(settings.VISIBILITY_TIMEOUT)


def longest_scale_grace(visibility_timeout: float | None = None) -> float:
    """The longest warm shutdown a scale run can wait for: the run's step is bounded by the longest time
    limit under the visibility timeout, less `SCALE_RUN_MARGIN` for the rest of its work."""
    timeout = _visibility_timeout() if visibility_timeout is None else visibility_timeout
    return max(0.0, longest_time_limit(timeout) - SCALE_RUN_MARGIN)


def scale_run_timeout(grace_period: float | None, visibility_timeout: float | None = None) -> int:
    """Timeout (whole seconds) of the step that scales a worker service whose departing workers are given
    `grace_period` (None: the longest a scale run can wait for): the grace period and `SCALE_RUN_MARGIN`."""
    grace = longest_scale_grace(visibility_timeout) if grace_period is None else grace_period
    return math.ceil(grace + SCALE_RUN_MARGIN)


def declared_grace_period(service: str) -> float | None:
    """The grace period the `local` provider's services file (as found on this host) gives `service`;
    None when the file cannot be read here or does not declare it."""
    from automation.providers.base import ProviderError
    from automation.providers.local import LocalProvider

    try:
        declared = load_services_file(LocalProvider().services_file).services.get(service)
    except ProviderError:
        return None
    return declared.grace_period if declared is not None else None


def worker_command(
    queue: str, *, concurrency: int = 1, include: Iterable[str] = (), loglevel: str = "INFO"
) -> list[str]:
    """`celery -A automation worker -Q QUEUE -c N`, one node name per replica (`{replica}` is expanded by
    the provider, `%h` by Celery)."""
    command = [
        "{python}",
        "-m",
        "celery",
        "-A",
        "automation",
        "worker",
        "-P",
        "prefork",  # the step runs in a pool process, so the main process can shut down warm around it
        "-c",
        str(concurrency),
        "-Q",
        queue,
        "--hostname",
        f"{queue}-{{replica}}@%h",
        "-l",
        loglevel,
        # Neither helps a worker that serves one queue, and both cost each start a broadcast round.
        "--without-gossip",
        "--without-mingle",
    ]
    for module in include:
        command += ["--include", module]
    return command


def worker_service_spec(
    queue: str,
    *,
    concurrency: int = 1,
    replicas: int = 0,
    grace_period: float | None = None,
    include: Iterable[str] = (),
    cwd: str = ".",
    env: Mapping[str, str] | None = None,
    loglevel: str = "INFO",
) -> ServiceSpec:
    """The services-file entry of `queue`'s workers (validated as the provider will read it)."""
    errors: list[tuple[str, str]] = []
    if not isinstance(queue, str) or not queue or queue.startswith("-") or any(c.isspace() for c in queue):
        errors.append(("queue", "must be a queue name without spaces"))
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        errors.append(("concurrency", "must be a positive integer"))
    if errors:
        raise WorkerServiceError(errors)
    grace = worker_grace_period() if grace_period is None else grace_period
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace < math.inf:
        raise WorkerServiceError([("grace_period", "must be a non-negative number")])
    return ServiceSpec(
        command=worker_command(queue, concurrency=concurrency, include=include, loglevel=loglevel),
        replicas=replicas,
        grace_period=float(grace),
        cwd=cwd,
        env=dict(env or {}),
    )


def worker_services(queues: Iterable[str], **options: Any) -> dict[str, dict[str, Any]]:
    """Entries for the `services:` mapping of a services file, one worker service per queue."""
    return {
        worker_service_name(queue): worker_service_spec(queue, **options).model_dump(exclude_defaults=True)
        for queue in queues
    }


def current_workers(provider: Any, queue: str) -> int:
    """The workers last asked for on `queue` (the provider's desired count: starting ones included)."""
    return int(provider.status(worker_service_name(queue))["desired_replicas"])
