"""Who is executing a step: the worker node (an id chosen when the worker loads, inherited by its pool
processes) and the process within it.

A step records its claimant; while the claimant's node heartbeats and its pid is one of the node's, a
second message for the step waits instead of acting a second time.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

#: Chosen once per worker process tree: forked pool processes share their parent's.
NODE_ID = uuid.uuid4().hex


@dataclass(frozen=True)
class Claimant:
    node: str
    #: The OS thread id: the pid of a prefork pool process, one per thread of a threads pool. Each
    #: executes one step at a time, so a claim of its own it finds again is one it no longer executes.
    #: (Greenlet pools share one thread id: they are not supported.)
    pid: int


def current_claimant() -> Claimant:
    return Claimant(node=NODE_ID, pid=threading.get_native_id())
