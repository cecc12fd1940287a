"""Incidents on the real database, fed by the real alerting services: rules evaluated on pushed samples and
alerts received from other tools fire, the pipeline correlates them into incidents over the stored
dependency graph, resolutions go on the timeline, and quiet incidents resolve by themselves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.alerting.test_rule_evaluation import every, push
from tests.conftest import close_thread_clients, unique, wait_for

pytestmark = pytest.mark.usefixtures("engine")


class Chain:
    """A stored dependency graph of unique names: web → api → db, plus an unrelated service."""

    def __init__(self) -> None:
        from automation.incidents.services.catalog import apply_services

        tag = unique("c")
        self.db, self.api, self.web, self.noise = (f"{name}-{tag}" for name in ("db", "api", "web", "noise"))
        apply_services(
            {
                "services": [
                    {"name": self.web, "depends_on": [self.api], "owners": ["web-team"]},
                    {"name": self.api, "depends_on": [self.db]},
                    {"name": self.db, "owners": ["dba"]},
                    {"name": self.noise},
                ]
            }
        )

    @property
    def linked(self) -> tuple[str, str, str]:
        return self.db, self.api, self.web


@pytest.fixture
def chain() -> Iterator[Chain]:
    from automation.incidents.services.catalog import apply_services, current_services

    before = current_services().model_dump()
    yield Chain()
    apply_services(before)


@pytest.fixture
def config(engine: Any) -> Iterator[Any]:
    """`config(**fields)` applies the engine config with those fields changed; restored afterwards."""
    from automation.config.apply import apply_config

    def change(**fields: Any) -> None:
        apply_config(engine.config.model_copy(update=fields))

    yield change
    apply_config(engine.config)


def received(service: str, *, firing: bool = True, starts: float, name: str | None = None) -> Any:
    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert

    labels = {"alertname": name or f"{service}_down", "service": service, "severity": "high"}
    return ReceivedAlert(
        fingerprint=digest("incidents-test", labels),
        origin="event",
        labels=labels,
        annotations={"summary": f"{service} is down"},
        firing=firing,
        starts_at=datetime.fromtimestamp(starts, tz=UTC),
    )


def incidents_of(*services: str) -> list[Any]:
    from automation.models import Incident

    rows = Incident.objects.filter(alerts__service__in=services).distinct().order_by("id")
    return list(rows)


def timeline(incident: Any) -> list[tuple[str, str, str]]:
    return [(e.kind, e.actor, e.detail) for e in incident.events.order_by("at", "id")]


def kinds(incident: Any) -> list[str]:
    return [kind for kind, _, _ in timeline(incident)]


def threshold_rule(service: str, severity: str) -> Any:
    """A rule on a metric of this service's own (its own alertname, so its own notification group)."""
    from automation.alerting.services.rules import save_rule

    metric = unique(f"errors_{service.split('-')[0]}").replace("-", "_")
    rule = save_rule(
        {"name": unique(f"{service}_errors"), "condition": f"{metric} > 80", "severity": severity}
    )
    return rule, metric


def test_a_chain_of_linked_services_is_one_incident_and_noise_another(chain: Chain) -> None:
    from automation.alerting.services.evaluation import evaluate_rules
    from automation.alerting.services.intake import receive
    from automation.incidents.services.transitions import auto_resolve

    # whole seconds: a sample pushed at the evaluation time itself is stored at the same microsecond
    now = float(int(time.time()))
    rules, metrics = {}, {}
    for service, severity in ((chain.db, "high"), (chain.api, "medium"), (chain.web, "critical")):
        rules[service], metrics[service] = threshold_rule(service, severity)
        push(metrics[service], {"service": service}, every(15, now - 120, now, 95.0))
    reports = evaluate_rules([rules[s] for s in chain.linked], now)
    assert [len(r["fired"]) for r in reports] == [1, 1, 1], reports
    receive(received(chain.noise, starts=now), now)

    found = incidents_of(*chain.linked, chain.noise)
    assert len(found) == 2, [(i.title, i.services) for i in found]
    outage, noise = found
    assert outage.services == sorted(chain.linked) and noise.services == [chain.noise]
    assert (outage.status, outage.severity) == ("triggered", "critical")  # the highest of its alerts'
    assert outage.title == f"{rules[chain.db].name} on {chain.db}"
    assert kinds(outage) == ["opened", "alert_joined", "alert_joined", "alert_joined", "severity_raised"]
    details = [detail for _, _, detail in timeline(outage)]
    assert f"{chain.api} depends on {chain.db} (1 hop(s))" in details[2]
    assert f"{chain.web} depends on {chain.api} (1 hop(s))" in details[3]
    assert details[4] == f"high -> critical by {rules[chain.web].name} on {chain.web}"
    assert {e.actor for e in outage.events.all()} == {"engine"}
    assert kinds(noise) == ["opened", "alert_joined"]

    # the data recovers: every alert of the chain resolves, the incident turns quiet, then resolves alone
    later = now + 60
    for service in chain.linked:
        push(metrics[service], {"service": service}, [(later, 10.0)])
    reports = evaluate_rules([rules[s] for s in chain.linked], later)
    assert [len(r["resolved"]) for r in reports] == [1, 1, 1], reports
    outage.refresh_from_db()
    assert kinds(outage)[-3:] == ["alert_resolved"] * 3
    assert outage.quiet_since is not None and outage.quiet_since.timestamp() == pytest.approx(later, abs=1e-3)
    assert outage.alerts.filter(resolved_at__isnull=True).count() == 0

    assert outage.pk not in auto_resolve(later + 299.0, hold=300.0)  # not quiet long enough
    assert outage.pk in auto_resolve(later + 300.0, hold=300.0)
    assert auto_resolve(later + 300.0, hold=300.0) == []  # again: nothing left to do
    outage.refresh_from_db()
    assert (outage.status, outage.resolved_by) == ("resolved", "")
    assert timeline(outage)[-1] == ("auto_resolved", "engine", "all 3 alert(s) resolved for 300 s")
    noise.refresh_from_db()
    assert noise.status == "triggered"  # its alert still fires


def test_an_alert_joins_once_however_often_its_firing_is_handled(chain: Chain) -> None:
    """The pipeline runs again for a transition whose process died (`repair`): the firing is joined
    once, its events written once."""
    from automation.alerting.services.intake import receive
    from automation.alerting.services.pipeline import on_fired, on_resolved
    from automation.models import Alert

    now = time.time()
    receipt = receive(received(chain.api, starts=now), now)
    alert = Alert.objects.get(fingerprint=receipt.fingerprint)
    (incident,) = incidents_of(chain.api)
    before = timeline(incident)
    on_fired(alert, now + 1, None)
    assert timeline(incident) == before and incident.alerts.count() == 1

    receive(received(chain.api, firing=False, starts=now), now + 5)
    alert.refresh_from_db()
    on_resolved(alert, now + 6)
    assert kinds(incident).count("alert_resolved") == 1


def test_a_silenced_alert_opens_no_incident_but_joins_an_open_one(chain: Chain) -> None:
    from automation.alerting.services.intake import receive
    from automation.alerting.services.silences import create_silence

    now = time.time()
    create_silence(
        matchers=[f'service="{chain.api}"'],
        starts_at=now - 1,
        ends_at=now + 600,
        created_by="test",
        comment="maintenance",
        now=now,
    )
    receive(received(chain.api, starts=now), now)
    assert incidents_of(chain.api) == []
    receive(received(chain.db, starts=now), now + 1)
    receive(received(chain.api, starts=now, name=unique("api_latency")), now + 2)
    (incident,) = incidents_of(chain.api, chain.db)
    assert incident.services == sorted([chain.api, chain.db])


def test_linked_alerts_arriving_together_open_one_incident(chain: Chain) -> None:
    """Twenty alerts over the chain, from eight threads at once: the correlation of each is taken under
    the graph's lock, so the first opens the incident and the others join it."""
    from automation.alerting.services.intake import receive

    now = time.time()
    alerts = [
        received(service, starts=now, name=unique(f"{service}_symptom"))
        for service in (*chain.linked, chain.linked[0]) * 5
    ]

    def send(alert: Any) -> None:
        try:
            receive(alert, time.time())
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, alerts))
    (incident,) = incidents_of(*chain.linked)
    assert incident.alerts.count() == 20
    assert kinds(incident).count("opened") == 1 and kinds(incident).count("alert_joined") == 20


def test_the_beat_job_resolves_a_quiet_incident_after_the_hold_time(
    chain: Chain, config: Any, worker: Any
) -> None:
    """Through a real worker, with a hold of one second: a firing that comes back within the hold keeps
    the incident open; once every alert stays resolved past the hold, the job resolves it; a later firing
    opens a new incident."""
    from automation.alerting.services.intake import receive
    from tasks.incidents import auto_resolve

    config(incident_resolve_hold=1.0)
    start = time.time()
    receive(received(chain.db, starts=start), start)
    (incident,) = incidents_of(chain.db)
    receive(received(chain.db, firing=False, starts=start), time.time())
    again = time.time()
    receive(received(chain.db, starts=again), again)  # back within the hold: the same incident
    incident.refresh_from_db()
    assert incident.quiet_since is None and incident.alerts.count() == 2  # firing: nothing to resolve

    receive(received(chain.db, firing=False, starts=again), time.time())

    def resolved() -> bool:
        done = auto_resolve.apply_async(queue="critical").get(timeout=30)
        incident.refresh_from_db()
        return incident.status == "resolved" or incident.pk in done

    wait_for(resolved, timeout=30)
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_by == ""
    quiet_for = incident.resolved_at.timestamp() - incident.quiet_since.timestamp()
    assert quiet_for >= 1.0
    assert kinds(incident) == [
        "opened",
        "alert_joined",
        "alert_resolved",
        "alert_joined",
        "alert_resolved",
        "auto_resolved",
    ]
    later = time.time()
    receive(received(chain.db, starts=later), later)
    assert [i.status for i in incidents_of(chain.db)] == ["resolved", "triggered"]


def test_steps_are_guarded_updates_taken_once(chain: Chain) -> None:
    """Mitigating a triggered incident acknowledges it too; two people resolving at once resolve it once
    (one event); a resolved incident is not acknowledged."""
    from automation.alerting.services.intake import receive
    from automation.errors import NotFoundError, StateError
    from automation.incidents.services.transitions import acknowledge, mitigate, resolve

    now = time.time()
    receive(received(chain.web, starts=now), now)
    (incident,) = incidents_of(chain.web)
    taken = mitigate(incident.pk, by="gina", now=now + 1)
    assert taken.changed and taken.incident.status == "mitigated"
    assert (taken.incident.acknowledged_by, taken.incident.mitigated_by) == ("gina", "gina")
    assert taken.incident.acknowledged_at == taken.incident.mitigated_at
    assert not acknowledge(incident.pk, by="hal", now=now + 2).changed  # past it already

    def close(who: str) -> bool:
        try:
            return resolve(incident.pk, by=who, now=time.time()).changed
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(close, ["ivy", "jon", "kim", "lea"]))
    assert sorted(outcomes) == [False, False, False, True]
    incident.refresh_from_db()
    assert kinds(incident).count("resolved") == 1
    assert [actor for kind, actor, _ in timeline(incident) if kind == "resolved"] == [incident.resolved_by]
    with pytest.raises(StateError, match="is resolved: it cannot be acknowledged"):
        acknowledge(incident.pk, by="max", now=time.time())
    with pytest.raises(NotFoundError):
        resolve(2**62, by="max", now=time.time())


def test_the_open_incidents_read_for_an_alert_lead_to_the_choice_all_of_them_would(chain: Chain) -> None:
    """Only the open incidents holding one of the alert's group keys, or a service it links to that fired
    within the window, are read; `correlate` picks from them what it would pick from every open one."""
    from automation.config import current_config
    from automation.models import Incident

    window = current_config().incident_correlation_window
    now = time.time()
    since = datetime.fromtimestamp(now - window, tz=UTC)
    made: list[int] = []
    try:
        _compare_reads(chain, window, now, since, made)
    finally:
        Incident.objects.filter(pk__in=made).delete()  # open incidents of no alert: not left for others


def _compare_reads(chain: Chain, window: float, now: float, since: datetime, made: list[int]) -> None:
    from automation.incidents.choices import IncidentStatus
    from automation.incidents.correlation import OpenIncident, correlate, linkable_services
    from automation.incidents.services.alerts import _open_incidents
    from automation.incidents.services.catalog import current_graph
    from automation.models import Incident

    def opened(services: list[str], keys: list[str], last_fired: float) -> int:
        at = datetime.fromtimestamp(last_fired, tz=UTC)
        row = Incident.objects.create(
            title=unique("i"),
            severity="medium",
            services=services,
            group_keys=keys,
            opened_at=at,
            last_fired_at=at,
        )
        made.append(row.pk)
        return int(row.pk)

    key = unique("group")
    by_key = opened([chain.noise], [key], now - 10 * window)  # its group: joined however long ago
    by_graph = opened([chain.db], [unique("g")], now - window / 2)
    stale = opened([chain.api], [unique("g")], now - 2 * window)  # linked, fired outside the window
    unrelated = {opened([unique("svc")], [unique("g")], now) for _ in range(20)}
    graph = current_graph()
    every_open = [
        OpenIncident(str(pk), frozenset(keys), frozenset(services), last.timestamp())
        for pk, keys, services, last in Incident.objects.filter(status__in=IncidentStatus.ACTIVE).values_list(
            "pk", "group_keys", "services", "last_fired_at"
        )
    ]
    cases = [
        ({"service": chain.web}, frozenset({key}), {by_key, by_graph}, by_key),
        ({"service": chain.web}, frozenset({unique("none")}), {by_graph}, by_graph),
        ({"service": chain.noise}, frozenset({unique("none")}), set(), None),
        ({"service": unique("unknown")}, frozenset(), set(), None),
    ]
    for labels, keys, expected_read, expected_choice in cases:
        read = _open_incidents(set(), keys, linkable_services(labels, graph), since)
        assert {int(i.id) for i in read} == expected_read
        assert stale not in expected_read and not expected_read & unrelated
        chosen = [
            correlate(
                labels=labels, group_keys=keys, fired_at=now, open_incidents=found, graph=graph, window=window
            )
            for found in (read, every_open)
        ]
        assert chosen[0] == chosen[1]
        assert chosen[0].incident == (None if expected_choice is None else str(expected_choice))
