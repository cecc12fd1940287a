"""The worker's heartbeat: a thread of the main process writes the node's row every few seconds.

The row lists the task ids the node is executing (Celery's active requests, which the main process
tracks for every pool process): a step whose process died, or whose attempt ended, drops off the list
even while the node lives. After a warm shutdown drained every step, the node is marked stopped.
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

from automation.fleet.identity import NODE_ID

logger = logging.getLogger("automation.fleet")

HEARTBEAT_SECONDS = 5.0


def executing_task_ids() -> list[str]:
    from celery.worker import state

    for _ in range(3):
        try:
            return sorted({str(request.id) for request in list(state.active_requests)})
        except RuntimeError:  # the set changed while it was copied: read it again
            continue
    return []


def beat_once(worker: Any) -> bool:
    from django.db import connection
    from django.utils import timezone

    from automation.models import WorkerNode

    now = timezone.now()
    executing = "," + ",".join(executing_task_ids()) + ","
    try:
        WorkerNode.objects.update_or_create(
            id=NODE_ID,
            defaults={
                "hostname": socket.gethostname()[:255],
                "nodename": str(getattr(worker, "hostname", ""))[:255],
                "main_pid": os.getpid(),
                "executing": executing,
                "seen_at": now,
                "reaped_at": None,
            },
            create_defaults={
                "hostname": socket.gethostname()[:255],
                "nodename": str(getattr(worker, "hostname", ""))[:255],
                "main_pid": os.getpid(),
                "executing": executing,
                "seen_at": now,
                "started_at": now,
            },
        )
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
