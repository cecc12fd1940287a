"""The worker's heartbeat: a thread of the main process writes the node's row every few seconds.

The row lists the task ids the node is executing (Celery's active requests, which the main process
tracks for every pool process): a step whose process died, or whose attempt ended, drops off the list
even while the node lives. It also lists the messages the node holds without executing them (prefetched,
or waiting out a countdown): if the node dies, the recovery job knows which runs they belonged to.
After a warm shutdown drained every step, the node is marked stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

from celery import bootsteps
from celery.signals import worker_process_init, worker_shutdown
from celery.worker import state

from automation.fleet.identity import NODE_ID

logger = logging.getLogger("automation.fleet")

HEARTBEAT_SECONDS = 5.0


def task_ids(*request_sets: Any) -> set[str] | None:
    """The ids in sets of Celery requests; None if they kept changing while read (skip that beat)."""
    for _ in range(3):
        try:
            return {str(request.id) for requests in request_sets for request in list(requests)}
        except RuntimeError:  # a set changed while it was copied: read them again
            continue
    return None


def listed(ids: set[str]) -> str:
    return "," + ",".join(sorted(ids)) + ","


def beat_once(worker: Any) -> bool:
    """Write this node's row: alive now, what it executes and what it holds; False if not written."""
    from django.db import connection
    from django.db.models import Case, F, Value, When
    from django.utils import timezone

    from automation.models import WorkerNode
    from automation.runs.services import NODE_DEAD_AFTER

    executing = task_ids(state.active_requests)
    held = task_ids(state.reserved_requests, getattr(state, "scheduled_requests", ()))
    if executing is None or held is None:
        return False
    now = timezone.now()
    fields: dict[str, Any] = {
        "hostname": socket.gethostname()[:255],
        "nodename": str(getattr(worker, "hostname", ""))[:255],
        "main_pid": os.getpid(),
        "executing": listed(executing),
        "holding": listed(held - executing),
        "seen_at": now,
        "reaped_at": None,
    }
    try:
        # After a gap (a database outage, a stalled process), freshness starts again from now.
        updated = WorkerNode.objects.filter(id=NODE_ID).update(
            **fields,
            fresh_since=Case(
                When(seen_at__lt=now - NODE_DEAD_AFTER, then=Value(now)), default=F("fresh_since")
            ),
        )
        if not updated:
            WorkerNode.objects.create(id=NODE_ID, started_at=now, fresh_since=now, **fields)
    except Exception as exc:  # noqa: BLE001 - a database outage must not stop the worker; retried next beat
        logger.warning("heartbeat not written: %s", exc)
        connection.close()
        return False
    return True


class NodeHeartbeat(bootsteps.StartStopStep):
    """Starts the heartbeat thread once the pool's processes exist."""

    requires = ("celery.worker.components:Pool",)
    label = "automation heartbeat"

    def start(self, worker: Any) -> None:
        beat_once(worker)
        _Beating.start(worker)

    def stop(self, worker: Any) -> None:
        # Steps may still be finishing in the pool: keep heartbeating until worker_shutdown says they did.
        return None


class _Beating:
    stop = threading.Event()
    thread: threading.Thread | None = None

    @classmethod
    def start(cls, worker: Any) -> None:
        if cls.thread is not None and cls.thread.is_alive():
            return
        cls.stop.clear()
        cls.thread = threading.Thread(
            target=cls._loop, args=(worker,), name="automation-heartbeat", daemon=True
        )
        cls.thread.start()

    @classmethod
    def _loop(cls, worker: Any) -> None:
        while not cls.stop.wait(HEARTBEAT_SECONDS):
            beat_once(worker)


def _mark_stopped(**_: Any) -> None:
    """After a warm shutdown the pool has drained: nothing this node held needs recovering."""
    if _Beating.thread is None:
        return
    _Beating.stop.set()
    try:
        from django.utils import timezone

        from automation.models import WorkerNode

        WorkerNode.objects.filter(id=NODE_ID).update(stopped_at=timezone.now())
    except Exception as exc:  # noqa: BLE001 - the node will simply look dead, and be recovered
        logger.warning("could not mark node %s stopped: %s", NODE_ID, exc)


def _ignore_sigterm_in_pool_process(**_: Any) -> None:
    """SIGTERM to the whole process group (systemd's default, `docker stop` with an init) must not kill
    a step mid-action: the main process's warm shutdown lets it finish, bounded by the service manager's
    stop timeout. Hard time limits still kill with SIGKILL."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def install(app: Any) -> None:
    app.steps["worker"].add(NodeHeartbeat)
    worker_shutdown.connect(_mark_stopped, weak=False)
    worker_process_init.connect(_ignore_sigterm_in_pool_process, weak=False)
