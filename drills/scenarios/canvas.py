"""Canvas failure paths: a chord whose branch fails for good."""

from __future__ import annotations

import time

from drills.accounting import DrillResult
from drills.harness import Harness
from drills.receiver import Reply
from drills.scenarios.common import http_fanout

#: After the run ends, how long the drill watches for anything still moving.
SETTLE_SECONDS = 5.0


def chord_branch_failure(h: Harness, result: DrillResult) -> None:
    """A 5-way fan-out with join where branch b003 always answers 500 (retried by default): the run must end
    failed, the join must not run, no effect twice, no step left running, nothing sent afterwards."""
    h.engine()
    h.worker(concurrency=4)

    def respond(path: str) -> Reply:
        return Reply(status=500) if path.endswith("/b003") else Reply(delay=0.2)

    h.respond(respond)
    steps = http_fanout(h, "drill-chord", 5, prefix="chord")
    run_id = h.run("drill-chord")
    h.wait_terminal([run_id], until=time.time() + h.deadline)
    rows = h.measure_runs(result, [run_id], expected="failed")
    ended = rows[run_id].finished_at if run_id in rows else None
    if ended is None:
        return
    time.sleep(max(0.0, ended + SETTLE_SECONDS - time.time()))  # a window to see nothing happen in
    if h.receiver.arrived("chord/join"):
        result.misses.append("the join ran although a branch failed")
    late = [d.path for d in h.receiver.snapshot() if d.arrived > ended + 0.5]
    if late:
        result.misses.append(f"{len(late)} request(s) after the run ended: {late[:3]}")
    states = {s.name: s.status for s in h.steps(run_id)}
    running = sorted(name for name, status in states.items() if status == "running")
    if running:
        result.misses.append(f"steps left running: {running}")
    others = {status for name, status in states.items() if name not in ("b003", "join")}
    result.notes.append(
        f"b003 {states.get('b003')}, join {states.get('join')}, other steps {sorted(others)}; "
        f"b003 called {len(h.receiver.arrived('chord/b003'))} time(s)"
    )
    missing = [s for s in steps if s not in ("b003", "join") and not h.receiver.arrived(f"chord/{s}")]
    if missing:
        result.notes.append(f"branches that never called: {missing}")
