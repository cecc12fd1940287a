"""Joining a notification group (automation/alerting/services/groups.py `join`, one statement on
PostgreSQL): callers racing to make the same new group make one, every alert is a member once, the wait
starts with the first join and a later join does not move it, and each join is logged once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import close_thread_clients, unique

pytestmark = pytest.mark.usefixtures("engine")


def _alert(fingerprint: str, now: float) -> Any:
    from automation.alerting.services.alerts import Observation, observe

    observation = Observation(
        fingerprint=fingerprint,
        name="joined",
        labels={"alertname": "joined", "service": "api"},
        value=1.0,
        holds=True,
        active_since=now,
    )
    transition = observe(observation, now)
    assert transition is not None
    return transition.alert


def test_racing_joins_make_one_group_with_every_alert_once_and_one_wait() -> None:
    from automation.alerting.routing import Destination, Timings
    from automation.alerting.services.groups import join
    from automation.models import AlertGroup, AlertLog

    now = time.time()
    destination = Destination(
        receiver="log",
        route="0",
        group_labels=(("service", unique("api")),),
        timings=Timings(group_wait=30, group_interval=300, repeat_interval=3600),
    )
    key = destination.group_key
    alerts = [_alert(unique("fp"), now) for _ in range(12)]

    def joins(alert: Any) -> None:
        try:
            join(alert, destination, now)
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(joins, alerts))
    group = AlertGroup.objects.get(key=key)
    assert group.waiting_since is not None and abs(group.waiting_since.timestamp() - now) < 0.001
    assert (group.receiver, group.route, group.group_labels) == ("log", "0", dict(destination.group_labels))
    assert sorted(group.alerts.values_list("pk", flat=True)) == sorted(a.pk for a in alerts)
    join(alerts[0], destination, now + 60)  # again, later: no second member, the wait not moved
    group.refresh_from_db()
    assert group.alerts.count() == 12 and abs(group.waiting_since.timestamp() - now) < 0.001
    held = AlertLog.objects.filter(alert__in=alerts, decision="held")
    assert held.count() == 12 and {e.receiver for e in held} == {"log"}
    assert all(key in e.detail and "group_wait 30s" in e.detail for e in held)
