"""The post-incident report and the team figures, from incidents fed by the real alerting services:
what the report lists (timeline, durations, alerts with their notification log, candidate causes), the
HTML page, and MTTA / MTTR per service and severity."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.alerting.test_alerting_cli import cli, one_line_error
from tests.incidents.test_incidents_integration import Chain, chain, incidents_of, received  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]


def test_the_report_lists_what_happened_and_ranks_the_upstream_service_first(
    chain: Chain,  # noqa: F811 - the fixture
    tmp_path: Any,
) -> None:
    from automation.alerting.services.intake import receive
    from automation.incidents.services import transitions

    now = time.time() - 3600
    # The database fails first, then the services that depend on it.
    for offset, service in ((0, chain.db), (60, chain.api), (90, chain.web)):
        receive(received(service, starts=now + offset), now + offset)
    (incident,) = incidents_of(*chain.linked)
    transitions.acknowledge(incident.id, by="alice", now=now + 300, comment="looking")
    for offset, service, began in ((900, chain.db, 0), (930, chain.api, 60), (940, chain.web, 90)):
        receive(received(service, firing=False, starts=now + began), now + offset)
    transitions.resolve(incident.id, by="alice", now=now + 1200)

    page = tmp_path / "report.html"
    shown = cli("incidents", "report", str(incident.id), "--json", "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["durations"]["time_to_acknowledge_seconds"] == pytest.approx(300, abs=1)
    assert report["durations"]["time_to_resolve_seconds"] == pytest.approx(1200, abs=1)
    assert [a["service"] for a in report["alerts"]] == [chain.db, chain.api, chain.web]
    assert all(a["resolved_at"] for a in report["alerts"])
    kinds = [event["kind"] for event in report["timeline"]]
    assert kinds[0] == "opened" and "acknowledged" in kinds and kinds[-1] == "resolved"
    assert kinds.count("alert_joined") == 3 and kinds.count("alert_resolved") == 3
    assert report["causes"][0]["service"] == chain.db and report["causes"][0]["evidence"]
    text = cli("incidents", "report", str(incident.id))
    assert text.returncode == 0 and f"Incident {incident.id}" in text.stdout
    assert "acknowledged after 5.0 min by alice" in text.stdout and f"1. {chain.db}" in text.stdout
    written = page.read_text()
    assert written.startswith("<!doctype html>") and "data:image/png;base64," in written
    assert f"<td>{chain.db}</td>" in written and "<script" not in written
    assert one_line_error(cli("incidents", "report", "999999999")) == "incident 999999999 does not exist"


def test_mtta_and_mttr_per_service_and_severity(chain: Chain) -> None:  # noqa: F811
    from automation.alerting.services.intake import receive
    from automation.incidents.services import transitions

    now = time.time() - 7200
    for k, (ack, resolve) in enumerate(((60, 600), (180, 1800))):
        start = now + k * 3000
        receive(received(chain.noise, starts=start, name=f"noise_{k}"), start)
        incident = incidents_of(chain.noise)[-1]
        transitions.acknowledge(incident.id, by="bob", now=start + ack)
        transitions.resolve(incident.id, by="bob", now=start + resolve)
    shown = cli("incidents", "stats", "--since", "3h", "--json")
    assert shown.returncode == 0, shown.stderr
    [row] = [r for r in json.loads(shown.stdout)["rows"] if r["service"] == chain.noise]
    assert (row["severity"], row["incidents"], row["acknowledged"], row["resolved"]) == ("high", 2, 2, 2)
    assert row["mtta_seconds"] == pytest.approx(120, abs=1)
    assert row["mttr_seconds"] == pytest.approx(1200, abs=1)
    table = cli("incidents", "stats", "--since", "3h")
    assert table.returncode == 0 and chain.noise[:23] in table.stdout and "2.0 min" in table.stdout
    assert "--since" in one_line_error(cli("incidents", "stats", "--since", "yesterday-ish"))
