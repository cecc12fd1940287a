"""Redis faults: a restart mid-chain (with and without persistence), an outage mid-fan-out, and the
fleet-wide action limit after a restart that lost every key."""

from __future__ import annotations

import time

from drills.accounting import DrillResult, Fault
from drills.harness import Harness
from drills.receiver import Reply
from drills.scenarios.common import DrillSetupError, chain_through_fault, http_fanout

OUTAGE_SECONDS = 3.0


def redis_restart(h: Harness, result: DrillResult) -> None:
    """A 20-step `http.request` chain (the receiver answers after 0.5 s), one worker -c 4 and Beat, default
    settings; `redis-cli shutdown nosave` while step 8's request is in flight, Redis started again 3 s
    later (without persistence, or with AOF on: see the title)."""

    def inflict() -> Fault:
        return h.restart_redis(outage=OUTAGE_SECONDS)

    chain_through_fault(h, result, inflict=inflict, service="Redis")


def fanout_outage(h: Harness, result: DrillResult) -> None:
    """A 200-way fan-out with join (`http.request` steps, the receiver answers after 0.1 s), one worker -c 4
    and Beat, default settings; Redis (AOF on) shut down once 60 branches have called, back 3 s later."""
    h.engine()
    h.worker(concurrency=4)
    h.beat()
    h.respond(lambda _path: Reply(delay=0.1))
    steps = http_fanout(h, "drill-fanout", 200)
    run_id = h.run("drill-fanout")
    if not h.wait_until(lambda: len(h.receiver.arrived("fan/b")) >= 60, until=time.time() + 120):
        raise DrillSetupError(f"the fan-out did not reach 60 branches: {len(h.receiver.arrived('fan/b'))}")
    fault = h.restart_redis(outage=OUTAGE_SECONDS)
    result.notes.append(f"{len(h.receiver.arrived('fan/b'))} of 200 branches had called when Redis stopped")
    h.wait_terminal([run_id], until=fault.end + h.deadline)
    result.recovery_point = "the join's request, after Redis is back"
    joins = [d.arrived for d in h.receiver.arrived("fan/join")]
    result.recovery_seconds = min(joins) - fault.end if joins else None
    branches_done = [d.arrived for d in h.receiver.arrived("fan/b")]
    if branches_done:
        result.notes.append(f"last branch called {max(branches_done) - fault.end:.1f} s after Redis was back")
    h.measure_runs(result, [run_id], http_steps={run_id: steps})


def action_limit(h: Harness, result: DrillResult) -> None:
    """`max_concurrent_actions=2` applied, Redis restarted without persistence, then 6 runs of one slow
    action (3 s) at once on a worker -c 6: the receiver must never see more than 2 at a time."""
    h.engine(max_concurrent_actions=2)
    h.worker(concurrency=6)
    h.respond(lambda _path: Reply(delay=3.0))
    h.register("drill-slow", [h.http_step("slow", "slow/call")])
    fault = h.restart_redis(outage=OUTAGE_SECONDS)
    run_ids = [h.run("drill-slow") for _ in range(6)]
    h.wait_terminal(run_ids, until=fault.end + h.deadline)
    peak = h.receiver.peak_in_flight(since=fault.end)
    result.notes.append(f"peak concurrency at the receiver: {peak} (limit 2)")
    if peak > 2:
        result.misses.append(f"{peak} actions ran at once after the restart; the limit is 2")
    h.measure_runs(result, run_ids, http_steps={r: ["slow"] for r in run_ids})
