"""Escalation timing under a Beat and a worker restart (issue 9's "Escalation timing" figure): escalations
on time, none lost, none doubled.

`--incidents` incidents open at once; each one's policy pages `--levels` levels, `--timeout` seconds
apart, to a webhook receiver on a real HTTP peer; Beat ticks every `--interval` seconds. Once the first
levels are paged, Beat is killed (SIGKILL) and started again, and so is the worker (its whole process
group). When every escalation is exhausted:
  - lost: pages expected (incidents x levels) that were never stored, or never reached the peer;
  - doubled: (incident, level) pages the peer received as more than one delivery (distinct
    Idempotency-Keys: a delivery step retried after the worker's death sends its own key again, which a
    receiver deduplicates, and is not a second page);
  - on time: pages stored within one interval of their due time (`paged_at - due_at`), with the
    lateness percentiles, and the same from the due time to the peer's receipt (delivery included).
Pages due while Beat or the worker was down are late by the outage: they are counted apart.

Usage, from the repository root:
  python benchmarks/bench_escalation.py [--incidents 50] [--levels 3] [--timeout 10] [--interval 2]
It creates its own PostgreSQL database (dropped at the end), flushes Redis db 6 (AUTOMATION_BENCH_REDIS)
around the run, and writes benchmarks/results/escalation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "escalation.json"
QUEUES = "critical,high,default,low,celery"


@dataclass(frozen=True)
class Page:
    incident: int
    level: int
    due_at: float
    paged_at: float
    #: When the peer received it (None: never).
    received_at: float | None


@dataclass(frozen=True)
class Timing:
    expected: int
    stored: int
    lost: int
    doubled: int
    on_time: int
    late_in_outage: int
    late_otherwise: int
    lateness_p50: float
    lateness_p95: float
    lateness_max: float
    delivered_p95: float
    delivered_max: float


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarize(
    pages: Iterable[Page],
    *,
    expected: int,
    received: Counter[tuple[int, int]],
    interval: float,
    outages: list[tuple[float, float]],
) -> Timing:
    """The figure from the stored pages, how many deliveries the peer received of each (incident, level),
    the tick interval and the windows during which Beat or the worker was down."""
    stored = list(pages)
    late = [p.paged_at - p.due_at for p in stored]
    in_outage = [
        p for p, lateness in zip(stored, late, strict=True)
        if lateness > interval and any(start - interval <= p.due_at <= end for start, end in outages)
    ]  # fmt: skip
    on_time = sum(1 for lateness in late if lateness <= interval)
    delivered = [p.received_at - p.due_at for p in stored if p.received_at is not None]
    return Timing(
        expected=expected,
        stored=len(stored),
        lost=expected - sum(1 for p in stored if p.received_at is not None),
        doubled=sum(1 for count in received.values() if count > 1),
        on_time=on_time,
        late_in_outage=len(in_outage),
        late_otherwise=len(stored) - on_time - len(in_outage),
        lateness_p50=round(statistics.median(late), 3) if late else 0.0,
        lateness_p95=round(_percentile(late, 0.95), 3),
        lateness_max=round(max(late, default=0.0), 3),
        delivered_p95=round(_percentile(delivered, 0.95), 3),
        delivered_max=round(max(delivered, default=0.0), 3),
    )


class Process:
    """A `celery -A automation worker|beat` in its own process group."""

    def __init__(self, kind: str, interval: float) -> None:
        from benchmarks import bench_engine

        name = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
        args = ["beat", "-s", str(bench_engine.STATE_DIR / f"{name}.db")]
        if kind == "worker":
            self.node = f"{name}@{socket.gethostname()}"
            args = ["worker", "-P", "prefork", "-c", "2", "-Q", QUEUES, "-n", self.node]
            args += ["--without-gossip", "--without-mingle"]
        self._log = (bench_engine.STATE_DIR / f"{name}.log").open("w")
        env = {**os.environ, "AUTOMATION_ESCALATION_INTERVAL": str(int(interval))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "automation", *args, "-l", "WARNING"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        from automation.celery import app

        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[self.node], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log.close()


def set_up(peer_url: str, levels: int, timeout: float) -> None:
    from automation.alerting.services.config import apply_document
    from automation.incidents.services.escalation_config import apply_escalation

    apply_document(
        {"route": {"receiver": "log"}, "receivers": [{"name": "pager", "webhook": {"url": peer_url}}]}
    )
    level = {"targets": [{"receiver": "pager"}], "timeout": timeout}
    apply_escalation({"policies": [{"name": "bench", "levels": [level] * levels}]})


def open_incidents(count: int) -> list[int]:
    from datetime import UTC, datetime

    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert, receive
    from automation.models import IncidentAlert

    now = time.time()
    fingerprints = []
    for i in range(count):
        labels = {"alertname": f"bench_down_{i}", "service": f"bench-{i}", "severity": "high"}
        fingerprints.append(digest("escalation-bench", labels))
        receive(
            ReceivedAlert(
                fingerprint=fingerprints[-1],
                origin="event",
                labels=labels,
                annotations={},
                firing=True,
                starts_at=datetime.fromtimestamp(now, tz=UTC),
            ),
            now,
        )
    return list(
        IncidentAlert.objects.filter(fingerprint__in=fingerprints).values_list("incident_id", flat=True)
    )


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("not reached in time")
        time.sleep(0.2)


def run(args: argparse.Namespace) -> Timing:
    from automation.models import Escalation, EscalationPage
    from tests.peers import HttpPeer

    peer = HttpPeer()
    keys: dict[tuple[int, int], set[str]] = {}
    first_receipt: dict[tuple[int, int], float] = {}
    set_up(f"{peer.url}/page", args.levels, args.timeout)
    worker, beat = Process("worker", args.interval), Process("beat", args.interval)
    worker.wait_ready()
    outages: list[tuple[float, float]] = []
    try:
        incidents = open_incidents(args.incidents)
        wait_until(lambda: EscalationPage.objects.count() >= len(incidents), 120)  # every first level
        down = time.time()
        beat.kill()
        worker.kill()
        beat, worker = Process("beat", args.interval), Process("worker", args.interval)
        worker.wait_ready()
        outages.append((down, time.time()))
        horizon = args.levels * args.timeout + 180
        wait_until(
            lambda: not Escalation.objects.filter(incident_id__in=incidents, status="active").exists(),
            horizon,
        )
        wait_until(lambda: len(peer.received) >= len(incidents) * args.levels, 120)
    finally:
        beat.kill()
        worker.kill()
        peer.close()
    for request in peer.received:
        notes = request.body.get("commonAnnotations", {}) if isinstance(request.body, dict) else {}
        key = (int(notes.get("incident_id", 0)), int(notes.get("escalation", "level 0").split()[1]) - 1)
        keys.setdefault(key, set()).add(request.headers.get("Idempotency-Key", ""))
        first_receipt.setdefault(key, request.at)
    received = Counter({key: len(found) for key, found in keys.items()})
    stored = EscalationPage.objects.filter(escalation__incident_id__in=incidents).select_related("escalation")
    pages = [
        Page(p.escalation.incident_id, p.level, p.due_at.timestamp(), p.paged_at.timestamp(),
             first_receipt.get((p.escalation.incident_id, p.level)))
        for p in stored
    ]  # fmt: skip
    return summarize(
        pages,
        expected=len(incidents) * args.levels,
        received=received,
        interval=args.interval,
        outages=outages,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--interval", type=int, default=2, help="Beat's escalation tick, whole seconds")
    args = parser.parse_args()
    from benchmarks import bench_engine  # its database and environment set-up, not a copy

    bench_engine.configure_environment()
    with bench_engine.benchmark_database():
        timing = run(args)
    answer = {"settings": vars(args), "timing": asdict(timing)}
    print(json.dumps(answer, indent=2))
    RESULTS.write_text(json.dumps(answer, indent=2) + "\n")


if __name__ == "__main__":
    main()
