"""When the broker refuses a step's message: mark its run so the recovery job sends it again.

A finished step's successors are sent by the worker that ran it, a chord's join by its last branch, a
run's first canvas by whoever stored the run. If the broker is down past Celery's publish retries, that
message is lost; the run is marked in PostgreSQL and sent again within one pass of the recovery job.
A chord's branch reports to its join through the Redis result backend once it returns (Celery's
`on_chord_part_return`, in the tracer); with Redis down, that report fails and raises out of the tracer,
whose `task_postrun` then records the branch's completion and marks its run the same way
(automation/actions/task.py), and the recovery job sends the run again (the join included). A join whose
own publish is refused is caught where every step's message is sent (`ActionTask.apply_async`).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("automation.recovery")


def note_unsent(run_id: Any) -> None:
    from automation.runs import services

    try:
        if services.request_redispatch(run_id):
            logger.warning("run %s: the broker refused a message; marked to be sent again", run_id)
    except Exception as exc:  # noqa: BLE001 - with the database down too, the stalled-run sweep remains
        logger.error("run %s: the broker refused a message and the run could not be marked: %s", run_id, exc)
