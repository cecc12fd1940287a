"""Remediation under a 30-minute flapping alert (issue 9's figure): runs started against the configured
rate limits (target: never above), and the circuit breaker tripping after K failures.

Time is compressed by `--scale` (simulated seconds per wall second, default 30: 30 minutes in 60 s):
every duration below is simulated, and the policies are stored with their windows divided by the scale,
so the guards judge real timestamps on real workers. Alerts arrive through the intake (as Alertmanager's
webhook would), each firing going through the whole pipeline; two worker processes decide the
remediations (the guards) concurrently; the bench process runs the follow job (what Beat runs) every
0.25 s of wall time, and the engine's recovery pass and stalled-run sweep (what Beat runs) every second,
their stall time (AUTOMATION_STALL_AFTER, 300 s) scaled too.

- `--services` services flap (firing `--period`/2, resolved `--period`/2, phases spread), all remediated
  by policy `flap-ok` whose workflow works: rate limits of `--per-service` runs per `--window` per
  service and `--per-workflow` runs per `--window` for the workflow; loop detection off for this
  policy (every fix "works" and the alert comes back: that would be a loop; here the rate limit is
  measured alone).
- one more service flaps the same way under policy `flap-bad`, whose workflow fails every time:
  circuit breaker after `--failures` failures, closed again (one trial) `--reset` after the last.

Reported: for each service and for the workflow, the most runs started inside any window of the
configured length (`max_in_window`, must be <= the limit); the decisions by guard; for the breaker, the
failures before its first trip (must equal K), how many trips, and the runs started while it was open
(must be 0).

Usage, from the repository root:
  python benchmarks/bench_remediation.py [--scale 30] [--minutes 30] [--services 4]
It creates its own PostgreSQL database (dropped at the end), flushes the Redis db of
AUTOMATION_BENCH_REDIS (default 6) around the run, and writes benchmarks/results/remediation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "remediation.json"
QUEUES = "critical,high,default,low,celery"


def max_in_window(starts: list[float], window: float) -> int:
    """The most start times inside any half-open window (t - window, t] ending at a start."""
    ordered = sorted(starts)
    return max((sum(1 for s in ordered if t - window < s <= t) for t in ordered), default=0)


def firing_at(sim: float, period: float, phase: float) -> bool:
    return ((sim + phase) % period) < period / 2


def set_up(engine: Any, peer_url: str, args: argparse.Namespace) -> None:
    from automation import ActionDefinition, WorkflowDefinition
    from automation.alerting.services.config import apply_document
    from automation.alerting.services.rules import save_rule
    from automation.incidents.services.remediation_config import apply_remediation

    apply_document({"route": {"receiver": "log"}, "receivers": []})
    for name in ("flap_ok", "flap_bad"):  # received alerts of these names: flap damping off (never evaluated)
        save_rule({"name": name, "condition": f"{name}_never_pushed > 1", "flap": {"changes": 0}})
    for name, path in (("fix-ok", "ok"), ("fix-bad", "fail")):
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                actions=[
                    ActionDefinition(
                        name="act",
                        action_type="http.request",
                        parameters={"url": f"{peer_url}/{path}/${{service}}", "method": "POST"},
                        retry_attempts=0,
                        compensate={  # type: ignore[arg-type]
                            "action_type": "http.request",
                            "parameters": {"url": f"{peer_url}/undo/${{service}}", "method": "POST"},
                        },
                    )
                ],
            )
        )
    scale = args.scale
    window = args.window / scale
    unbounded_blast = {"max_services": None}
    apply_remediation(
        {
            "policies": [
                {
                    "name": "flap-ok",
                    "match": {"alertname": "flap_ok"},
                    "workflow": "fix-ok",
                    "inputs": {"service": "${alert.labels.service}"},
                    "verify": {"within": args.period / scale},
                    "rate_limit": {
                        "per_service": {"runs": args.per_service, "window": window},
                        "per_workflow": {"runs": args.per_workflow, "window": window},
                    },
                    "circuit_breaker": {"failures": 1000},
                    "loop": {"max_repeats": 1000},
                    "blast_radius": unbounded_blast,
                },
                {
                    "name": "flap-bad",
                    "match": {"alertname": "flap_bad"},
                    "workflow": "fix-bad",
                    "inputs": {"service": "${alert.labels.service}"},
                    "verify": {"within": args.period / scale},
                    "rate_limit": {"per_service": None, "per_workflow": None},
                    "circuit_breaker": {"failures": args.failures, "reset_after": args.reset / scale},
                    "blast_radius": unbounded_blast,
                },
            ]
        }
    )


def receive(name: str, service: str, firing: bool, now: float) -> None:
    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert
    from automation.alerting.services.intake import receive as take

    labels = {"alertname": name, "service": service, "severity": "medium"}
    take(
        ReceivedAlert(
            fingerprint=digest("remediation-bench", labels),
            origin="event",
            labels=labels,
            annotations={},
            firing=firing,
            starts_at=datetime.fromtimestamp(now, tz=UTC),
        ),
        now,
    )


def drive(args: argparse.Namespace) -> None:
    """Flap every alert for the simulated duration, following the remediations as Beat would."""
    from automation.incidents.services.verification import follow

    alerts = [("flap_ok", f"svc-{i}", args.period * i / max(args.services, 1)) for i in range(args.services)]
    alerts.append(("flap_bad", "svc-bad", 0.0))
    state: dict[tuple[str, str], bool] = {}
    start = time.time()
    last_follow = last_recovery = 0.0
    while True:
        now = time.time()
        sim = (now - start) * args.scale
        if sim > args.minutes * 60:
            break
        for name, service, phase in alerts:
            wanted = firing_at(sim, args.period, phase)
            if state.get((name, service)) != wanted:
                receive(name, service, wanted, now)
                state[(name, service)] = wanted
        if now - last_follow >= 0.25:
            follow(now)
            last_follow = now
        if now - last_recovery >= 1.0:
            recover()
            last_recovery = now
        time.sleep(0.02)
    for name, service, _ in alerts:
        receive(name, service, False, time.time())
    deadline = time.time() + 30
    while time.time() < deadline:  # the last runs end, are judged and verified
        follow(time.time())
        recover()
        if not _unfinished():
            break
        time.sleep(0.25)


def recover() -> None:
    """The engine's recovery pass and stalled-run sweep, as Beat runs them (stall time scaled too)."""
    from automation.runs.recovery import recover_runs, redispatch_stalled

    redispatch_stalled()
    recover_runs()


def _unfinished() -> bool:
    from automation.incidents.choices import RemediationStatus
    from automation.models import Remediation

    return Remediation.objects.filter(
        status__in=(*RemediationStatus.PENDING, *RemediationStatus.ACTIVE)
    ).exists()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from automation.incidents.choices import EventKind, RemediationStatus
    from automation.models import IncidentEvent, Remediation

    rows = list(Remediation.objects.order_by("requested_at", "pk"))
    scale = args.scale
    window = args.window / scale
    ok = [r for r in rows if r.policy == "flap-ok"]
    started = [r for r in ok if r.status in RemediationStatus.STARTED and r.started_at is not None]
    per_service = {
        service: max_in_window([r.started_at.timestamp() for r in started if r.service == service], window)
        for service in sorted({r.service for r in ok})
    }
    workflow_max = max_in_window([r.started_at.timestamp() for r in started], window)
    bad = [r for r in rows if r.policy == "flap-bad"]
    trips = sorted(
        e.at.timestamp()
        for e in IncidentEvent.objects.filter(
            kind=EventKind.BREAKER_OPENED, detail__startswith="policy flap-bad"
        )
    )
    reset = args.reset / scale
    failures_before_first = sum(
        1
        for r in bad
        if r.status in RemediationStatus.FAILURES
        and trips
        and r.finished_at
        and r.finished_at.timestamp() <= trips[0]
    )
    started_while_open = sum(
        1
        for r in bad
        if r.started_at is not None and any(t < r.started_at.timestamp() < t + reset - 0.05 for t in trips)
    )
    stuck = [
        (r.pk, r.policy, r.status, str(r.run_id), _run_status(r.run_id))
        for r in rows
        if r.status not in RemediationStatus.TERMINAL
    ]
    return {
        "unfinished": stuck,
        "rate_limit": {
            "requested": len(ok),
            "started": len(started),
            "limit_per_service": f"{args.per_service} per {args.window:g} s (simulated)",
            "max_in_window_per_service": per_service,
            "limit_per_workflow": f"{args.per_workflow} per {args.window:g} s (simulated)",
            "max_in_window_workflow": workflow_max,
            "never_above": all(v <= args.per_service for v in per_service.values())
            and workflow_max <= args.per_workflow,
            "decisions": dict(Counter(r.guard or r.status for r in ok)),
        },
        "circuit_breaker": {
            "failures_configured": args.failures,
            "requested": len(bad),
            "started": sum(1 for r in bad if r.status in RemediationStatus.STARTED),
            "failures_before_first_trip": failures_before_first,
            "trips": len(trips),
            "started_while_open": started_while_open,
            "rolled_back": sum(1 for r in bad if r.compensation_run_id is not None),
            "decisions": dict(Counter(r.guard or r.status for r in bad)),
        },
    }


def _run_status(run_id: Any) -> str:
    from automation.models import StepRun, WorkflowRun

    run = WorkflowRun.objects.filter(pk=run_id).first() if run_id else None
    if run is None:
        return "-"
    steps = list(StepRun.objects.filter(run_id=run_id).values_list("name", "status", "error"))
    return f"{run.status} {steps}"


class Worker:
    """A `celery -A automation worker` (every queue) in its own process group, logging to STATE_DIR."""

    def __init__(self) -> None:
        from benchmarks import bench_engine

        name = f"bench-remediation-{uuid.uuid4().hex[:6]}"
        self.node = f"{name}@{socket.gethostname()}"
        self._log = (bench_engine.STATE_DIR / f"{name}.log").open("w")
        command = [sys.executable, "-m", "celery", "-A", "automation", "worker", "-P", "prefork", "-c", "2"]
        command += ["-Q", QUEUES, "-n", self.node, "--without-gossip", "--without-mingle", "-l", "INFO"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self) -> None:
        from automation.celery import app

        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[self.node], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from automation import AutomationConfig, AutomationEngine
    from tests.peers import Answer, HttpPeer

    peer = HttpPeer(lambda r: Answer(status=500) if r.path.startswith("/fail") else Answer())
    engine = AutomationEngine(AutomationConfig(level="autonomous", max_concurrent_actions=50))
    set_up(engine, peer.url, args)
    workers = [Worker() for _ in range(args.workers)]
    try:
        for worker in workers:
            worker.wait_ready()
        drive(args)
    finally:
        for worker in workers:
            worker.stop()
        peer.close()
    return measure(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=30.0, help="simulated seconds per wall second")
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated duration")
    parser.add_argument("--services", type=int, default=4)
    parser.add_argument("--period", type=float, default=120.0, help="simulated flap period, seconds")
    parser.add_argument("--window", type=float, default=600.0, help="rate-limit window, simulated seconds")
    parser.add_argument("--per-service", type=int, default=3)
    parser.add_argument("--per-workflow", type=int, default=6)
    parser.add_argument("--failures", type=int, default=3, help="K: the breaker's failures")
    parser.add_argument("--reset", type=float, default=600.0, help="breaker reset, simulated seconds")
    parser.add_argument("--workers", type=int, default=2, help="worker processes deciding concurrently")
    args = parser.parse_args()
    from benchmarks import bench_engine  # its database and environment set-up, not a copy

    bench_engine.configure_environment()
    os.environ["AUTOMATION_STALL_AFTER"] = str(max(2, int(300 / args.scale)))
    with bench_engine.benchmark_database():
        measured = run(args)
    answer = {"settings": vars(args), **measured}
    print(json.dumps(answer, indent=2))
    RESULTS.write_text(json.dumps(answer, indent=2) + "\n")


if __name__ == "__main__":
    main()
