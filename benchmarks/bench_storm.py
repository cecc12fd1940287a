"""Alert storm into incidents (issue 9's "Storm" figure): `--alerts` alerts over `--services` services in a
dependency chain (each depends on the one before; the first is the root cause, failing first), through the
real alert intake and pipeline, incident correlation and escalation, with a real worker and Beat.

Reports: incidents opened (target 1), the group notifications and pages the HTTP peer received, the time
from the first alert to the incident's first page (stored, and received by the peer), and the incident's
top-ranked cause. The alerts arrive root first, then each service of the chain after the one it depends on
(sending one service's alerts takes a few seconds), spread over distinct alert names and instances.

Usage, from the repository root:
  python benchmarks/bench_storm.py [--alerts 1000] [--services 10] [--interval 2]
It creates its own PostgreSQL database (dropped at the end), flushes the bench Redis db
(AUTOMATION_BENCH_REDIS) around the run, and writes benchmarks/results/storm.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "storm.json"


def set_up(peer_url: str, services: list[str]) -> None:
    from automation.alerting.services.config import apply_document
    from automation.incidents.services.catalog import apply_services
    from automation.incidents.services.escalation_config import apply_escalation

    apply_document(
        {
            "route": {"receiver": "team", "group_by": ["service"], "group_wait": 5, "group_interval": 60},
            "receivers": [
                {"name": "team", "webhook": {"url": f"{peer_url}/notify"}},
                {"name": "pager", "webhook": {"url": f"{peer_url}/page"}},
            ],
        }
    )
    chain = [{"name": name, "depends_on": [services[i - 1]] if i else []} for i, name in enumerate(services)]
    apply_services({"services": chain})
    level = {"targets": [{"receiver": "pager"}], "timeout": 600}
    apply_escalation({"policies": [{"name": "storm", "levels": [level]}]})


def storm(services: list[str], count: int) -> float:
    """Send the storm through the intake, a service's alerts starting when the first of them is sent; the
    time of the first alert."""
    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert, receive

    per_service = count // len(services)
    first = time.time()
    for position, service in enumerate(services):
        starts = datetime.fromtimestamp(time.time(), tz=UTC)
        for i in range(per_service + (1 if position < count % len(services) else 0)):
            labels = {
                "alertname": f"storm_{i % 10}",
                "service": service,
                "instance": f"{service}-{i // 10}",
                "severity": "critical" if position == 0 else "high",
            }
            receive(
                ReceivedAlert(
                    fingerprint=digest("storm-bench", labels),
                    origin="event",
                    labels=labels,
                    annotations={},
                    firing=True,
                    starts_at=starts,
                ),
                time.time(),
            )
    return first


def run(args: argparse.Namespace) -> dict[str, Any]:
    from automation.incidents.services.reports import incident_report
    from automation.models import Alert, EscalationPage, Incident
    from benchmarks.bench_escalation import Process, wait_until
    from tests.peers import HttpPeer

    services = [f"storm-{i}" for i in range(args.services)]
    peer = HttpPeer()
    set_up(peer.url, services)
    worker, beat = Process("worker", args.interval), Process("beat", args.interval)
    worker.wait_ready()
    try:
        began = time.perf_counter()
        first = storm(services, args.alerts)
        sent = time.perf_counter() - began
        wait_until(lambda: EscalationPage.objects.exists(), 120)
        # the groups' notifications: wait until nothing new arrives for a while (group_wait is 5 s)
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 15:
            if len(peer.received) != seen:
                seen, quiet_since = len(peer.received), time.monotonic()
            time.sleep(0.5)
    finally:
        beat.kill()
        worker.kill()
        peer.close()
    paths = Counter(request.path for request in peer.received)
    incidents = list(Incident.objects.all())
    page = EscalationPage.objects.order_by("paged_at").first()
    page_receipts = [r.at for r in peer.received if r.path == "/page"]
    causes = incident_report(incidents[0])["causes"] if incidents else []
    return {
        "settings": vars(args),
        "alerts_stored": Alert.objects.count(),
        "seconds_to_send": round(sent, 1),
        "incidents_opened": len(incidents),
        "incident_services": sorted({s for i in incidents for s in i.services}),
        "group_notifications": paths.get("/notify", 0),
        "pages": paths.get("/page", 0),
        "first_page_stored_after_s": round(page.paged_at.timestamp() - first, 2) if page else None,
        "first_page_received_after_s": round(min(page_receipts) - first, 2) if page_receipts else None,
        "top_cause": causes[0]["service"] if causes else None,
        "root": services[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--interval", type=int, default=2, help="Beat's escalation tick, whole seconds")
    args = parser.parse_args()
    from benchmarks import bench_engine  # its database and environment set-up, not a copy

    bench_engine.configure_environment()
    with bench_engine.benchmark_database():
        answer = run(args)
    print(json.dumps(answer, indent=2))
    RESULTS.write_text(json.dumps(answer, indent=2) + "\n")


if __name__ == "__main__":
    main()
