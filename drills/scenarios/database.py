"""PostgreSQL faults: a fast restart (every connection terminated) in the middle of a run."""

from __future__ import annotations

import time

from drills.accounting import DrillResult, Fault
from drills.harness import Harness
from drills.scenarios.common import chain_through_fault


def postgres_restart(h: Harness, result: DrillResult) -> None:
    """A 20-step `http.request` chain (the receiver answers after 0.5 s), one worker -c 4 and Beat, default
    settings; `pg_ctl restart -m fast` while step 8's request is in flight."""

    def inflict() -> Fault:
        start = time.time()
        h.postgres.restart_fast()
        return h.fault("postgres restart", start, time.time())

    chain_through_fault(h, result, inflict=inflict, service="PostgreSQL")
