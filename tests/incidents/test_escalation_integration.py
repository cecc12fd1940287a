"""Escalation on the real database, fed by the real alerting services, paging through the real receivers'
delivery workflows on a real worker to real peers (HTTP webhooks, an SMTP server): levels paged in turn
as their timeouts pass, each once however many ticks run (two at once, one delivered again, Beat
restarted in the middle), stopped by an acknowledgement from the API or a page's signed link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import transaction

from tests.alerting.test_receivers import Mailbox, smtp_server
from tests.api_server import ApiServer
from tests.conftest import ROOT, STATE_DIR, close_thread_clients, unique, wait_for
from tests.incidents.escalation_setup import (
    Setup,
    apply_receivers,
    level,
    mail,
    restore_documents,
    schedule,
    stored_documents,
    webhook,
)
from tests.incidents.test_incidents_api import cli
from tests.incidents.test_incidents_integration import kinds, received, timeline
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def documents(engine: Any) -> Iterator[None]:
    """The alerting and escalation documents as they were are put back after the test."""
    saved = stored_documents()
    yield
    restore_documents(saved)


@pytest.fixture
def peers() -> Iterator[list[HttpPeer]]:
    started = [HttpPeer() for _ in range(3)]
    yield started
    for peer in started:
        peer.close()


def open_incident(setup: Setup, now: float) -> Any:
    from automation.alerting.services.intake import receive
    from automation.models import Incident

    receive(received(setup.service, starts=now), now)
    return Incident.objects.get(alerts__service=setup.service)


def escalation_of(incident: Any) -> Any:
    from automation.models import Escalation

    return Escalation.objects.get(incident=incident)


def drive(incident: Any, at: float, done: Any) -> None:
    """Tick at `at` until `done()`: the nudge sent when the incident opened may take the step first, on the
    worker (the outcome is the same whoever takes it)."""
    from automation.incidents.services.escalations import tick

    pk = escalation_of(incident).pk
    wait_for(lambda: tick(at, [pk]) is not None and done())


def due_at(incident: Any) -> float:
    return float(escalation_of(incident).next_due_at.timestamp())


def pages(incident: Any) -> list[tuple[int, int, list[str]]]:
    """(level, pass, receivers) of each page, 1-based, in order."""
    return [
        (page.level + 1, page.round + 1, [r["receiver"] for r in page.recipients])
        for page in escalation_of(incident).pages.order_by("round", "level")
    ]


def delivery_runs(incident: Any) -> list[tuple[str, str]]:
    """(idempotency key, status) of the incident's delivery runs."""
    from automation.models import WorkflowRun

    rows = WorkflowRun.objects.filter(idempotency_key__startswith=f"page:{incident.pk}:")
    return sorted(rows.values_list("idempotency_key", "status"))


def posted(peer: HttpPeer) -> list[Any]:
    return [r.body for r in list(peer.received) if r.method == "POST"]


def two_level_policy(
    setup: Setup, peers: list[HttpPeer], *, first: float, second: float, **extra: Any
) -> None:
    """alice (on call for the schedule) by webhook, then bob by webhook, for the setup's service."""
    from automation.incidents.services.escalation_config import apply_escalation

    alice_hook, bob_hook = setup.name("alice_hook"), setup.name("bob_hook")
    apply_receivers(webhook(alice_hook, f"{peers[0].url}/alice"), webhook(bob_hook, f"{peers[1].url}/bob"))
    apply_escalation(
        {
            "users": [{"name": "alice", "receivers": [alice_hook]}, {"name": "bob", "receivers": [bob_hook]}],
            "schedules": [schedule(setup.name("primary"), ["alice"])],
            "policies": [
                {
                    "name": setup.name("policy"),
                    "match": {"services": [setup.service]},
                    "levels": [
                        level({"schedule": setup.name("primary")}, timeout=first),
                        level({"user": "bob"}, timeout=second),
                    ],
                    **extra,
                }
            ],
        }
    )


@pytest.mark.usefixtures("documents", "worker")
def test_levels_are_paged_in_turn_until_someone_acknowledges(peers: list[HttpPeer]) -> None:
    """With the ticks' times chosen: level 1 when the incident opens, level 2 once level 1's timeout has
    passed without an acknowledgement, nothing before, nothing twice; the acknowledgement stops the rest
    (level 1 of the second pass is never paged). The worker delivers each page to its peer once."""
    from automation.incidents.services.escalations import tick
    from automation.incidents.services.transitions import acknowledge

    setup = Setup()
    two_level_policy(setup, peers, first=60, second=60, repeat=1)
    now = time.time()
    incident = open_incident(setup, now)
    row = escalation_of(incident)
    assert (row.status, row.policy, row.level, row.round) == ("active", "", 0, 0)
    assert row.next_due_at.timestamp() == pytest.approx(now, abs=1e-3)

    drive(incident, now + 0.1, lambda: len(pages(incident)) == 1)
    assert pages(incident) == [(1, 1, [setup.name("alice_hook")])]
    due = due_at(incident)
    assert due == pytest.approx(row.pages.get().paged_at.timestamp() + 60.0, abs=1e-3)
    assert tick(due - 1.0, [row.pk]) == {}  # level 2 is not due yet
    assert tick(due + 0.1, [row.pk]) == {str(row.pk): ["page"]}
    assert tick(due + 0.1, [row.pk]) == {}  # the same tick again: nothing to do
    assert pages(incident) == [(1, 1, [setup.name("alice_hook")]), (2, 1, [setup.name("bob_hook")])]

    acknowledge(incident.pk, by="bob", now=due + 5.0)
    assert tick(due + 5.5, [row.pk]) == {str(row.pk): ["stop"]}
    assert tick(due + 500.0, [row.pk]) == {}
    assert len(pages(incident)) == 2
    row.refresh_from_db()
    assert (row.status, row.next_due_at) == ("stopped", None)
    assert row.reason == "acknowledged by bob: stopped before level 1 of 2, pass 2 of 2"

    assert kinds(incident) == [
        "opened",
        "alert_joined",
        "escalation_started",
        "paged",
        "escalated",
        "paged",
        "acknowledged",
        "escalation_stopped",
    ]
    details = [detail for _, _, detail in timeline(incident)]
    assert details[2] == f"policy {setup.name('policy')} (2 level(s) x 2 pass(es)): service {setup.service}"
    assert details[3] == (
        f"level 1 of 2, pass 1 of 2: alice on call for schedule {setup.name('primary')} "
        f"via receiver {setup.name('alice_hook')}"
    )
    assert (
        details[4]
        == "nobody acknowledged level 1 of 2, pass 1 of 2 within 60 s: paging level 2 of 2, pass 1 of 2"
    )
    assert timeline(incident)[-1][1] == "bob"  # who stopped it
    shown = cli("incidents", "show", str(incident.pk))
    assert f"  escalation: policy {setup.name('policy')}, stopped, 2 page(s)\n" in shown.stdout, shown.stderr

    wait_for(lambda: all(status == "succeeded" for _, status in delivery_runs(incident)), timeout=60)
    assert [key for key, _ in delivery_runs(incident)] == [
        f"page:{incident.pk}:0:0:{setup.name('alice_hook')}",
        f"page:{incident.pk}:0:1:{setup.name('bob_hook')}",
    ]
    (to_alice,) = posted(peers[0])
    (to_bob,) = posted(peers[1])
    assert to_alice["groupKey"] == f"incident:{incident.pk}"
    assert to_alice["commonAnnotations"]["incident_id"] == str(incident.pk)
    assert to_alice["commonAnnotations"]["escalation"] == "level 1 of 2, pass 1 of 2"
    assert to_bob["commonAnnotations"]["ack_url"].startswith(f"/api/v1/incidents/{incident.pk}/ack?token=")
    assert [a["labels"]["service"] for a in to_bob["alerts"]] == [setup.service]


@pytest.mark.usefixtures("documents", "worker")
def test_ticks_sent_twice_at_once_and_again_later_page_each_level_once(peers: list[HttpPeer]) -> None:
    """The nudge pages level 1 as the incident opens; then the tick for level 2 runs twice at once on the
    worker (two Beats), four times at once in this process, and once more later (a redelivered message):
    one page of level 2, one delivery run, one request at the peer."""
    from automation.incidents.services.escalations import tick
    from tasks.incidents import escalate

    setup = Setup()
    two_level_policy(setup, peers, first=1, second=3600)
    incident = open_incident(setup, time.time())
    wait_for(lambda: len(pages(incident)) == 1)  # the nudge, on the worker
    first = escalation_of(incident).pages.get()
    due = first.paged_at.timestamp() + 1.0
    assert escalation_of(incident).next_due_at.timestamp() == pytest.approx(due, abs=1e-3)

    sent = [escalate.apply_async(kwargs={"now": due + 0.5}, queue="critical") for _ in range(2)]

    def tick_here(_: int) -> dict[str, list[str]]:
        try:
            return tick(due + 0.5, [escalation_of(incident).pk])
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(4) as pool:
        here = list(pool.map(tick_here, range(4)))
    answers = [result.get(timeout=60) for result in sent]
    mine = str(escalation_of(incident).pk)  # the worker's ticks also step other tests' escalations
    taken = [steps[mine] for steps in [*here, *(a["steps"] for a in answers)] if mine in steps]
    assert len(taken) == 1, taken  # one caller paged level 2; the others found it taken
    assert pages(incident) == [(1, 1, [setup.name("alice_hook")]), (2, 1, [setup.name("bob_hook")])]
    again = escalate.apply_async(kwargs={"now": due + 0.5}, queue="critical").get(timeout=60)
    assert again["escalations"] == 0 or str(escalation_of(incident).pk) not in again["steps"]

    wait_for(lambda: len(posted(peers[1])) == 1 and all(s == "succeeded" for _, s in delivery_runs(incident)))
    assert len(delivery_runs(incident)) == 2 and len(posted(peers[0])) == 1
    assert kinds(incident).count("paged") == 2 and kinds(incident).count("escalated") == 1


@pytest.mark.usefixtures("documents", "worker")
def test_a_level_reaching_nobody_hands_on_at_once_and_unacknowledged_passes_end_exhausted(
    peers: list[HttpPeer],
) -> None:
    """Nobody is on call at level 1 (an override ended the layer's user's cover: the schedule is empty)
    and its receiver left the alerting document: level 2 is paged in the same tick; after the second pass
    the escalation is exhausted."""
    from automation.incidents.services.escalation_config import apply_escalation
    from automation.incidents.services.escalations import tick

    setup = Setup()
    team = setup.name("team")
    apply_receivers(webhook(team, f"{peers[2].url}/team"))
    empty = {
        "name": setup.name("empty"),
        "layers": [
            {
                "name": "old",
                "users": ["carl"],
                "start": "2020-01-01T00:00",
                "rotation": "1d",
                "end": "2020-02-01T00:00",
            }
        ],
    }
    apply_escalation(
        {
            "users": [{"name": "carl", "receivers": [team]}],
            "schedules": [empty],
            "policies": [
                {
                    "name": setup.name("policy"),
                    "match": {"services": [setup.service], "min_severity": "high"},
                    "levels": [
                        level({"schedule": setup.name("empty")}, timeout=30),
                        level({"receiver": team}, timeout=30),
                    ],
                    "repeat": 1,
                }
            ],
        }
    )
    incident = open_incident(setup, time.time())
    pk = escalation_of(incident).pk
    # level 1 reaches nobody: level 2 is paged in the same step (by the nudge, or this tick)
    drive(incident, time.time(), lambda: len(pages(incident)) == 2)
    assert tick(due_at(incident) + 0.1, [pk]) == {str(pk): ["page", "page"]}  # pass 2: the same again
    assert tick(due_at(incident) + 0.1, [pk]) == {str(pk): ["exhaust"]}
    assert pages(incident) == [(1, 1, []), (2, 1, [team]), (1, 2, []), (2, 2, [team])]
    row = escalation_of(incident)
    assert (row.status, row.reason) == ("exhausted", "nobody acknowledged: 2 level(s) x 2 pass(es) paged")
    assert kinds(incident)[2:] == [
        "escalation_started",
        "page_skipped",
        "page_skipped",
        "escalated",
        "paged",
        "escalated",
        "page_skipped",
        "page_skipped",
        "escalated",
        "paged",
        "escalation_exhausted",
    ]
    details = [detail for _, _, detail in timeline(incident)]
    assert details[3] == f"level 1 of 2, pass 1 of 2: nobody is on call for schedule {setup.name('empty')}"
    assert details[5] == "level 1 of 2, pass 1 of 2 reached nobody: paging level 2 of 2, pass 1 of 2"
    wait_for(lambda: len(posted(peers[2])) == 2)


@pytest.mark.usefixtures("documents")
def test_which_policy_an_incident_gets_and_what_happens_without_one(peers: list[HttpPeer]) -> None:
    """Policies are tried in order (an owner of the incident's service, else a catch-all); with policies
    declared and none matching, the timeline says so; with none declared, escalation is silent; an
    incident acknowledged before its first page is never paged. A receiver gone from the alerting document
    since the policy was written is named on the timeline."""
    from automation.incidents.services.catalog import apply_services, current_services
    from automation.incidents.services.escalation_config import apply_escalation
    from automation.incidents.services.transitions import acknowledge

    setup, other = Setup(), Setup()
    gone, kept = setup.name("gone"), setup.name("kept")
    apply_receivers(webhook(gone, f"{peers[0].url}/gone"), webhook(kept, f"{peers[1].url}/kept"))
    services = current_services().model_dump()
    apply_services({"services": [{"name": setup.service, "owners": [setup.name("team")]}]})
    try:
        apply_escalation(
            {
                "policies": [
                    {
                        "name": "by-owner",
                        "match": {"owners": [setup.name("team")]},
                        "levels": [level({"receiver": gone}, {"receiver": kept}, timeout=60)],
                    },
                    {
                        "name": "critical-only",
                        "match": {"min_severity": "critical"},
                        "levels": [level({"receiver": kept}, timeout=60)],
                    },
                ]
            }
        )
        apply_receivers(webhook(kept, f"{peers[1].url}/kept"))  # `gone` leaves the alerting document
        now = time.time()
        owned, unowned = open_incident(setup, now), open_incident(other, now)
        drive(owned, now + 0.1, lambda: bool(pages(owned)))
        drive(unowned, now + 0.1, lambda: escalation_of(unowned).status != "active")
    finally:
        apply_services(services)
    assert (escalation_of(owned).policy, escalation_of(owned).reason) == (
        "by-owner",
        f"owner {setup.name('team')}",
    )
    assert pages(owned) == [(1, 1, [kept])]
    assert f"level 1 of 1: receiver {gone} (receiver {gone}) is not in the alerting document" in [
        detail for _, _, detail in timeline(owned)
    ]
    row = escalation_of(unowned)
    assert (row.status, row.reason) == (
        "unmatched",
        f"no escalation policy matches (services {other.service}, severity high)",
    )
    assert kinds(unowned) == ["opened", "alert_joined", "escalation_unmatched"]

    apply_escalation({})
    quiet, early = Setup(), Setup()
    now = time.time()
    silent = open_incident(quiet, now)
    with transaction.atomic():  # acknowledged before the nudge is even sent
        acked = open_incident(early, now)
        acknowledge(acked.pk, by="erin", now=now)
    drive(silent, now + 0.1, lambda: escalation_of(silent).status != "active")
    drive(acked, now + 0.1, lambda: escalation_of(acked).status != "active")
    assert (escalation_of(silent).status, kinds(silent)) == ("unmatched", ["opened", "alert_joined"])
    assert (escalation_of(acked).status, escalation_of(acked).reason) == (
        "stopped",
        "acknowledged by erin: stopped before any page",
    )
    assert kinds(acked) == ["opened", "alert_joined", "acknowledged"]


# -- through Beat, by email and webhook, acknowledged from the page's link ---------------------------------


class Beat:
    """`celery -A automation beat` with the escalation tick every second, in its own process group."""

    def __init__(self, name: str) -> None:
        self.log_path = STATE_DIR / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        command = [sys.executable, "-m", "celery", "-A", "automation", "beat", "-l", "INFO"]
        command += ["-s", str(STATE_DIR / f"{name}.db")]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "AUTOMATION_ESCALATION_INTERVAL": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def beats() -> Iterator[list[Beat]]:
    started: list[Beat] = []
    yield started
    for beat in started:
        beat.kill()


@pytest.fixture
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('escalation-api')}.log", tokens="esc-t0ken", workers=1)
    yield started
    started.stop()


@pytest.mark.usefixtures("documents", "worker")
def test_through_beat_a_restart_loses_and_doubles_nothing_and_the_signed_link_stops_it(
    peers: list[HttpPeer], beats: list[Beat], server: ApiServer, tmp_path: Path
) -> None:
    """Beat ticks every second. The incident opens: level 1 pages alice (on call) by email (a real SMTP
    server) and webhook. Beat is killed and another started; nobody acknowledges: level 2 pages bob 3 s
    after level 1, once. A tampered, an expired and a missing token are refused naming the problem; bob's
    link acknowledges the incident as bob; the escalation stops before level 3."""
    from django.conf import settings

    from automation.incidents.ack_links import sign
    from automation.incidents.services.escalation_config import apply_escalation

    mailbox = Mailbox()
    smtp = smtp_server(mailbox)
    try:
        setup = Setup()
        names = {role: setup.name(role) for role in ("alice_mail", "alice_hook", "bob_hook", "team_hook")}
        apply_receivers(
            mail(names["alice_mail"], smtp.port, "alice@example.org"),
            webhook(names["alice_hook"], f"{peers[0].url}/alice"),
            webhook(names["bob_hook"], f"{peers[1].url}/bob"),
            webhook(names["team_hook"], f"{peers[2].url}/team"),
        )
        apply_escalation(
            {
                "users": [
                    {"name": "alice", "receivers": [names["alice_mail"], names["alice_hook"]]},
                    {"name": "bob", "receivers": [names["bob_hook"]]},
                ],
                "schedules": [schedule(setup.name("primary"), ["alice"], timezone="Europe/Paris")],
                "policies": [
                    {
                        "name": setup.name("policy"),
                        "match": {"services": [setup.service]},
                        "levels": [
                            level({"schedule": setup.name("primary")}, timeout=3),
                            level({"user": "bob"}, timeout=60),
                            level({"receiver": names["team_hook"]}, timeout=60),
                        ],
                    }
                ],
            }
        )
        beats.append(Beat(unique("beat-a")))
        incident = open_incident(setup, time.time())
        wait_for(lambda: len(posted(peers[0])) == 1 and len(mailbox.accepted) == 1, timeout=60)
        beats[0].kill()  # Beat dies between level 1 and level 2; another one starts
        beats.append(Beat(unique("beat-b")))
        wait_for(lambda: len(posted(peers[1])) == 1, timeout=60)

        first, second = escalation_of(incident).pages.order_by("level")
        assert second.paged_at.timestamp() - first.paged_at.timestamp() >= 3.0
        late = second.paged_at.timestamp() - second.due_at.timestamp()
        assert 0 <= late < 30, late  # Beat's restart took part of it: within the restart and one tick

        ((_, recipients, message, _),) = mailbox.accepted
        assert recipients == ["alice@example.org"]
        assert str(message["Subject"]).strip().startswith(f"[INCIDENT {incident.pk}] ")
        body = message.get_content()
        assert (
            f"Incident: incident {incident.pk}" in body
            and f"/api/v1/incidents/{incident.pk}/ack?token=" in body
        )
        link = posted(peers[1])[0]["commonAnnotations"]["ack_url"]
        token = link.split("token=", 1)[1]
        client = httpx.Client(
            base_url=server.url, timeout=20
        )  # no bearer token: the link is its own credential

        expires, who, signature = token.split(".")
        tampered = client.get(link.replace(signature, signature[::-1]))
        assert tampered.status_code == 403, tampered.text
        assert tampered.json()["error"].startswith(f"token: signature does not match incident {incident.pk}")
        stale = sign(incident.pk, "bob", expires=int(time.time()) - 1, secret=settings.AUTOMATION_ACK_SECRET)
        expired = client.get(f"/api/v1/incidents/{incident.pk}/ack", params={"token": stale})
        assert expired.status_code == 410 and expired.json()["error"].startswith("token: expired at ")
        missing = client.get(f"/api/v1/incidents/{incident.pk}/ack")
        assert (missing.status_code, missing.json()["errors"][0]["field"]) == (422, "token")
        assert (
            client.get(f"/api/v1/incidents/{incident.pk + 10**9}/ack", params={"token": token}).status_code
            == 403
        )
        assert escalation_of(incident).status == "active"  # nothing acknowledged it

        # Fetching the link (a mail scanner, a chat preview) only shows what it would do.
        shown = client.get(link)
        assert shown.status_code == 200 and "Acknowledge as bob" in shown.text, shown.text
        assert "<form method='post'>" in shown.text and escalation_of(incident).status == "active"
        acked = client.post(link)
        assert acked.status_code == 200, acked.text
        assert (acked.json()["status"], acked.json()["acknowledged_by"], acked.json()["changed"]) == (
            "acknowledged",
            "bob",
            True,
        )
        assert client.post(link).json()["changed"] is False
        client.close()
        wait_for(lambda: escalation_of(incident).status == "stopped", timeout=30)
    finally:
        smtp.stop()
    assert escalation_of(incident).reason == "acknowledged by bob: stopped before level 3 of 3"
    assert [(p.level, p.round) for p in escalation_of(incident).pages.all()] == [(0, 0), (1, 0)]
    assert len(posted(peers[0])) == 1 and len(posted(peers[1])) == 1 and posted(peers[2]) == []
    assert len(mailbox.accepted) == 1
    assert [k for k, _ in delivery_runs(incident)] == [
        f"page:{incident.pk}:0:0:{names['alice_hook']}",
        f"page:{incident.pk}:0:0:{names['alice_mail']}",
        f"page:{incident.pk}:0:1:{names['bob_hook']}",
    ]
    events = [(kind, actor) for kind, actor, _ in timeline(incident)]
    assert events[2:] == [
        ("escalation_started", "engine"),
        ("paged", "engine"),
        ("paged", "engine"),
        ("escalated", "engine"),
        ("paged", "engine"),
        ("acknowledged", "bob"),
        ("escalation_stopped", "bob"),
    ]
    assert timeline(incident)[-2][2] == "from the signed link of a page"
