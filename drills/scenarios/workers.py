"""Process faults: a worker SIGKILLed mid-step, a worker stopped with SIGTERM mid-step, two Beats at once."""

from __future__ import annotations

import signal
import time

from drills.accounting import DrillResult, sends_per_slot
from drills.harness import Harness
from drills.processes import CeleryProcess
from drills.receiver import Reply
from drills.scenarios.common import DrillSetupError, http_chain

MONITORING_INTERVAL = 2
MONITORING_SLOTS = 10
#: Beats started by the two-Beats drill (set to 1, the drill shows what a lone Beat sends).
BEATS = 2


def _holder(h: Harness, workers: list[CeleryProcess], run_id: str, step: str) -> CeleryProcess:
    """The worker whose log shows the step's task received (its task id is the one stored for the step)."""
    found = h.query(
        "SELECT task_id FROM automation_steprun WHERE run_id::text = %s AND name = %s", (run_id, step)
    )
    if not found:
        raise DrillSetupError(f"no step {step} stored for run {run_id}")
    task_id = found[0][0]
    holder: list[CeleryProcess] = []

    def seen() -> bool:
        holder.extend(w for w in workers if any(task_id in line.text for line in w.lines()))
        return bool(holder)

    if not h.wait_until(seen, until=time.time() + 10):
        raise DrillSetupError(f"no worker log shows task {task_id} of step {step}")
    return holder[0]


def worker_sigkill(h: Harness, result: DrillResult) -> None:
    """Two workers (-c 2) and Beat, default settings (visibility timeout 3600 s); SIGKILL to the whole
    process group of the worker running step 3 (of 5, each answered after 3 s) mid-request, restarted at
    once as systemd would."""
    h.engine()
    workers = [h.worker("worker-a", concurrency=2), h.worker("worker-b", concurrency=2)]
    h.beat()
    h.respond(lambda _path: Reply(delay=3.0))
    names = http_chain(h, "drill-kill", 5)
    run_id = h.run("drill-kill")
    if not h.wait_arrival("chain/s03", until=time.time() + 120):
        raise DrillSetupError(f"step 3 never started: {h.steps(run_id)}")
    victim = _holder(h, workers, run_id, "s03")
    killed = time.time()
    victim.kill_group()
    h.fault(f"SIGKILL to {victim.name}", killed, killed)
    victim.start()
    result.notes.append(f"killed {victim.name}; its replacement was ready {time.time() - killed:.1f} s later")
    h.wait_terminal([run_id], until=killed + h.deadline)
    rows = h.measure_runs(result, [run_id], http_steps={run_id: names})
    result.recovery_point = "the run finishing, from the kill"
    finished = rows.get(run_id)
    if finished is not None and finished.finished_at is not None:
        result.recovery_seconds = finished.finished_at - killed
    resumed = h.first_progress_after(killed + 0.5, [run_id])
    result.notes.append(
        f"first step moving after the kill: {resumed:.1f} s" if resumed is not None else "no step moved again"
    )


def warm_shutdown(h: Harness, result: DrillResult) -> None:
    """SIGTERM to the whole process group of the only worker while a 5 s step is in flight (what systemd
    and `docker stop` send); the worker is started again once it has exited. The step must finish once
    and not run again."""
    h.engine()
    worker = h.worker(concurrency=2, supervised=False)

    def respond(path: str) -> Reply:
        return Reply(delay=5.0 if path.endswith("/s02") else 0.0)

    h.respond(respond)
    names = http_chain(h, "drill-term", 3)
    run_id = h.run("drill-term")
    if not h.wait_arrival("chain/s02", until=time.time() + 120):
        raise DrillSetupError(f"step 2 never started: {h.steps(run_id)}")
    termed = time.time()
    worker.signal_group(signal.SIGTERM)
    code = worker.wait_exit(120)
    exited = time.time()
    if code is None:
        worker.kill_group()
        result.misses.append("the worker had not exited 120 s after SIGTERM")
    first = h.receiver.arrived("chain/s02")[0]
    answered = first.answered is not None and first.answered <= exited
    result.notes.append(
        f"worker exited {exited - termed:.1f} s after SIGTERM (code {code}), "
        + ("after the step's answer" if answered else "before the step's answer")
    )
    worker.start()
    fault = h.fault("SIGTERM to the worker's process group", termed, time.time())
    h.wait_terminal([run_id], until=fault.end + h.deadline)
    rows = h.measure_runs(result, [run_id], http_steps={run_id: names})
    result.recovery_point = "the run finishing, from the new worker being ready"
    finished = rows.get(run_id)
    if finished is not None and finished.finished_at is not None:
        result.recovery_seconds = max(0.0, finished.finished_at - fault.end)
    sends = len(h.receiver.arrived("chain/s02"))
    if sends > 1:
        result.misses.append(f"the in-flight step was sent {sends} times: it did not finish in the shutdown")


def two_beats(h: Harness, result: DrillResult) -> None:
    """Two Beats on the same database and broker, monitoring_interval 2 s, for 10 intervals: each
    monitoring job must reach the workers once per interval, not once per Beat."""
    h.engine(monitoring_interval=MONITORING_INTERVAL)
    worker = h.worker(concurrency=2)
    for index in range(1, BEATS + 1):
        h.beat(f"beat-{index}")
    # The first interval after both are up is left out: it holds their start-up sends.
    warm = time.time() + MONITORING_INTERVAL
    end = warm + MONITORING_INTERVAL * (MONITORING_SLOTS + 1)
    time.sleep(max(0.0, end - time.time()))  # an observation window: we count what happens in it
    duplicated = due = received = 0
    for job in ("redispatch_stalled_runs", "settle_lost_steps"):
        marker = f"Task automation.monitoring.{job}["
        times = [
            line.at for line in worker.lines() if line.text.startswith(marker) and "received" in line.text
        ]
        later = [t for t in times if t >= warm]
        if not later:
            result.misses.append(f"{job} never received after the warm-up")
            continue
        # Slots centred on the first send: a lone Beat's sends (one interval apart) fall one per slot.
        start = min(later) - MONITORING_INTERVAL / 2
        slots = sends_per_slot(times, start=start, interval=MONITORING_INTERVAL, slots=MONITORING_SLOTS)
        due += MONITORING_SLOTS
        received += sum(slots)
        duplicated += sum(max(0, n - 1) for n in slots)
        missed = slots.count(0)
        result.notes.append(
            f"{job}: received per {MONITORING_INTERVAL} s slot {slots}"
            + (f", {missed} slot(s) empty" if missed else "")
        )
    result.effects_duplicated = duplicated
    result.notes.append(f"{received} monitoring jobs received where {due} were due")
