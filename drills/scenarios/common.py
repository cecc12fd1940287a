"""Workflows and steps the drills share: an http chain faulted mid-run, a fan-out with join."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from drills.accounting import DrillResult, Fault
from drills.harness import Harness
from drills.receiver import Reply


class DrillSetupError(RuntimeError):
    """The drill could not reach the point where its fault is due: nothing can be measured."""


def http_chain(h: Harness, name: str, steps: int, *, prefix: str = "chain") -> list[str]:
    """Register a chain of `steps` http.request steps named s01..sNN calling /<prefix>/sNN."""
    names = [f"s{i:02d}" for i in range(1, steps + 1)]
    h.register(name, [h.http_step(step, f"{prefix}/{step}") for step in names])
    return names


def http_fanout(h: Harness, name: str, width: int, *, prefix: str = "fan") -> list[str]:
    """Register start -> b001..bNNN (in parallel) -> join, all http.request steps under /<prefix>/."""
    branches = [f"b{i:03d}" for i in range(1, width + 1)]
    actions: list[Any] = [h.http_step("start", f"{prefix}/start", depends_on=[])]
    actions += [h.http_step(b, f"{prefix}/{b}", depends_on=["start"]) for b in branches]
    actions.append(h.http_step("join", f"{prefix}/join", depends_on=branches))
    h.register(name, actions)
    return ["start", *branches, "join"]


def chain_through_fault(
    h: Harness, result: DrillResult, *, inflict: Callable[[], Fault], service: str, steps: int = 20,
    at_step: int = 8, delay: float = 0.5,
) -> None:  # fmt: skip
    """A `steps`-long http chain against a receiver answering after `delay` s, one worker -c 4 and Beat;
    `inflict` runs when step `at_step`'s request is in flight. Recovery: the first step moving after."""
    h.engine()
    h.worker(concurrency=4)
    h.beat()
    h.respond(lambda _path: Reply(delay=delay))
    names = http_chain(h, "drill-chain", steps)
    run_id = h.run("drill-chain")
    if not h.wait_arrival(f"chain/{names[at_step - 1]}", until=time.time() + 120):
        raise DrillSetupError(f"step {at_step} never started: {h.steps(run_id)}")
    fault = inflict()
    finished = h.wait_terminal([run_id], until=fault.end + h.deadline)
    result.recovery_point = f"first step moving after {service} is back"
    result.recovery_seconds = h.first_progress_after(fault.end, [run_id])
    rows = h.measure_runs(result, [run_id], http_steps={run_id: names})
    ended = rows[run_id].finished_at if finished and run_id in rows else None
    if ended is not None:
        result.notes.append(f"run finished {ended - fault.end:.1f} s after {service} was back")
    result.notes.append(f"{service} down for {fault.end - fault.start:.1f} s")
