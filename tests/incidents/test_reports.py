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


def _push_latency(service: str, *, start: float, stop: float, rise_at: float | None, seed: int) -> None:
    """One sample a minute of `latency_seconds{service=...}` (100 +- 5, stepped up by 60 from `rise_at`)."""
    import numpy as np

    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest

    times = np.arange(start, stop, 60.0)
    values = 100 + np.random.default_rng(seed).normal(0, 5, len(times))
    if rise_at is not None:
        values[times >= rise_at] += 60
    labels = {"service": service, "route": "/"}
    ingest(
        PushedSample("latency_seconds", labels, float(v), float(t))
        for t, v in zip(times, values, strict=True)
    )


def _incident_from_dependents(chain: Chain, now: float) -> Any:  # noqa: F811
    """api and web alert (web 30 s after api); db, which both depend on, never alerts."""
    from automation.alerting.services.intake import receive

    for offset, service in ((0, chain.api), (30, chain.web)):
        receive(received(service, starts=now + offset), now + offset)
    (incident,) = incidents_of(*chain.linked)
    return incident


@pytest.mark.parametrize("db_metric", ["rises first", "quiet", "not pushed"])
def test_the_live_report_reads_the_candidates_metric_onsets(
    chain: Chain,  # noqa: F811 - the fixture
    db_metric: str,
) -> None:
    from datetime import UTC, datetime

    from automation.incidents.services.reports import incident_report

    alerted = time.time() - 1800
    history = alerted - 31 * 3600  # a day and more: the same minutes of the day before are the baseline
    # db's latency steps up 5 min before api alerts, api's 3 min before, web's 2 min before; db never alerts
    if db_metric != "not pushed":
        rise = alerted - 300 if db_metric == "rises first" else None
        _push_latency(chain.db, start=history, stop=time.time(), rise_at=rise, seed=1)
    _push_latency(chain.api, start=history, stop=time.time(), rise_at=alerted - 180, seed=2)
    _push_latency(chain.web, start=history, stop=time.time(), rise_at=alerted - 120, seed=3)
    incident = _incident_from_dependents(chain, alerted)
    report = incident_report(incident, now=datetime.fromtimestamp(time.time(), tz=UTC))

    causes = {c["service"]: c for c in report["causes"]}
    ranked = [c["service"] for c in report["causes"]]
    db_timing = next(line for line in causes[chain.db]["evidence"] if line.startswith("timing:"))
    api_timing = next(line for line in causes[chain.api]["evidence"] if line.startswith("timing:"))
    assert 'metric latency_seconds{route="/"} onset' in api_timing, api_timing
    if db_metric == "rises first":
        assert ranked[0] == chain.db, report["causes"]
        began = datetime.fromisoformat(causes[chain.db]["began_at"]).timestamp()
        assert alerted - 600 <= began <= alerted - 240  # the CUSUM dates a run from its first point up
        assert db_timing.startswith('timing: metric latency_seconds{route="/"} onset'), db_timing
        assert "before 2 of the 2 it explains" in db_timing
        assert any(f"depends on {chain.db}" in line for line in causes[chain.api]["evidence"])
    elif db_metric == "quiet":  # watched and healthy: not the cause
        assert ranked[0] == chain.api, report["causes"]
        assert db_timing == "timing: no alert, and its metric shows no onset"
    else:  # not watched: its silence says nothing
        assert ranked[0] == chain.api, report["causes"]
        assert "no metric of it is watched" in db_timing
    assert any(
        note.startswith("metrics: ") and "series labelled service=" in note for note in report["notes"]
    )
    # The key metrics: each ranked candidate's series around the incident, its onset where one was found.
    from automation.incidents.report_render import render_html, render_text

    shown = {m["service"]: m for m in report["metrics"]}
    assert [m["service"] for m in report["metrics"]] == [s for s in ranked if s in shown]
    api_curve = shown[chain.api]
    assert api_curve["metric"] == 'latency_seconds{route="/"}' and api_curve["onset_at"] is not None
    values = [v for _, v in api_curve["points"] if v is not None]
    assert min(values) < 130 < max(values)  # the step from ~100 to ~160 is in the window shown
    if db_metric == "not pushed":
        assert chain.db not in shown
    else:
        assert chain.db in shown and (shown[chain.db]["onset_at"] is None) == (db_metric == "quiet")
    assert f"{chain.api}: latency_seconds" in render_text(report)
    assert render_html(report).count("data:image/png;base64,") == 2


def test_a_failure_to_read_metrics_leaves_the_alert_only_ranking(
    chain: Chain,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import DatabaseError

    from automation.incidents.services.reports import incident_report

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("push store unreachable")

    alerted = time.time() - 1800
    _push_latency(chain.db, start=alerted - 7 * 3600, stop=time.time(), rise_at=alerted - 300, seed=1)
    incident = _incident_from_dependents(chain, alerted)
    monkeypatch.setattr("automation.incidents.services.onsets.minute_bins", broken)
    report = incident_report(incident)
    assert report["causes"][0]["service"] == chain.api, report["causes"]
    unread = "metrics: not read (DatabaseError: push store unreachable); timing from alerts only"
    assert unread in report["notes"] and all(unread in c["evidence"] for c in report["causes"])
    assert report["alerts"] and report["timeline"]  # the rest of the report is there
    assert report["metrics"] == []


def test_a_services_series_are_capped_and_counters_read_as_increases(chain: Chain) -> None:  # noqa: F811
    import pandas as pd

    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest, minute_bins, series_labelled
    from automation.incidents.services.onsets import SKIPPED_SUFFIXES, _regular

    now = time.time()
    labels = {"service": chain.db}
    pushed = [PushedSample(f"{name}", labels, 1.0, now - 60) for name in ("b_gauge", "a_bucket", "c_other")]
    # a counter: +5 a minute, reset to 0 (then +5 again) after the fourth minute; two samples a minute
    counts = [0, 5, 10, 15, 20, 5, 10]
    minute = now // 60 * 60 - 600
    for k, v in enumerate(counts):
        pushed += [PushedSample("a_requests_total", labels, float(v) - 1, minute + 60 * k + 10)]
        pushed += [PushedSample("a_requests_total", labels, float(v), minute + 60 * k + 40)]
    ingest(pushed)
    found = series_labelled("service", [chain.db, chain.api], since=now - 3600, per_value=2,
                            skip_suffixes=SKIPPED_SUFFIXES)  # fmt: skip
    assert list(found) == [chain.db]
    assert [s.metric for s in found[chain.db]] == ["a_requests_total", "b_gauge"]
    counter = found[chain.db][0]
    bins = minute_bins([counter.id], [(now - 3600, now - 1800), (now - 1800, now)])[counter.id]
    assert len(bins.times) == len(counts) and bins.maxima == [float(v) for v in counts]
    increases = _regular(counter, bins)
    assert isinstance(increases, pd.Series)
    assert increases.tolist() == [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_runtime_families_do_not_fill_a_services_slots(chain: Chain) -> None:  # noqa: F811
    """A Go service's default runtime series (go_*, process_*) would take all its slots by name before its
    latency: they are left out, and so is a replaced pod's series with nothing in the window."""
    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest, series_labelled
    from automation.incidents.services.onsets import SKIPPED_PREFIXES, SKIPPED_SUFFIXES

    now = time.time()
    labels = {"service": chain.web}
    runtime = [f"go_gc_duration_seconds_{q}" for q in range(6)] + ["go_goroutines", "process_open_fds"]
    pushed = [PushedSample(name, labels, 1.0, now - 60) for name in runtime]
    pushed.append(PushedSample("latency_seconds", labels, 0.2, now - 60))
    pushed.append(PushedSample("a_old_pod_latency", labels, 0.2, now - 7200))
    ingest(pushed)
    found = series_labelled(
        "service", [chain.web], since=now - 3600, per_value=8,
        skip_suffixes=SKIPPED_SUFFIXES, skip_prefixes=SKIPPED_PREFIXES,
    )  # fmt: skip
    assert [s.metric for s in found[chain.web]] == ["latency_seconds"]


def test_a_slow_counter_counts_and_a_gauge_named_like_a_counter_is_a_gauge() -> None:
    import pandas as pd

    from automation.alerting.services.samples import LabelledSeries, MinuteBins
    from automation.incidents.services.onsets import _regular

    start = 1_800_000_000.0
    every_two = MinuteBins([start + 120 * k for k in range(6)], [0.0] * 6, [0, 10, 20, 30, 5, 15])
    increases = _regular(LabelledSeries(1, "jobs_total", {}), every_two)
    assert isinstance(increases, pd.Series)
    # 5 a minute, spread over the minutes between samples; the restart (30 -> 5) counts from zero
    assert increases.tolist() == [5.0] * 6 + [2.5, 2.5, 5.0, 5.0]
    queue = MinuteBins([start + 60 * k for k in range(5)], [100, 90, 80, 70, 100], [100, 90, 80, 70, 100])
    gauge = _regular(LabelledSeries(2, "queue_count", {}), queue)
    assert isinstance(gauge, pd.Series)
    assert gauge.tolist() == [100, 90, 80, 70, 100]  # read as it is: its falls are no restarts
