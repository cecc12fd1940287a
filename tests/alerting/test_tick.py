"""The evaluation tick on the real database: a push source shared by a batch answers exactly what one query
per selector answers; alerts whose state does not change are written together, without a lock per alert,
and one changed meanwhile is observed as before; the Beat task sends one message per batch of rules."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation.alerting.series import Sample, Selector, Series
from tests.alerting.test_pipeline import decisions, runs_of
from tests.alerting.test_rule_evaluation import every, push
from tests.conftest import unique, wait_for

pytestmark = pytest.mark.usefixtures("engine")


def one_query_per_selector(selector: Selector, start: float, end: float) -> list[Series]:
    """What a source reading one selector at a time from the store answers (the reference)."""
    from datetime import UTC, datetime

    from automation.models import MetricSample, MetricSeries

    found = []
    for series_id, labels in MetricSeries.objects.filter(metric=selector.metric).values_list("id", "labels"):
        if not selector.matches(selector.metric, labels):
            continue
        rows = MetricSample.objects.filter(
            series_id=series_id,
            at__gte=datetime.fromtimestamp(start, tz=UTC),
            at__lte=datetime.fromtimestamp(end, tz=UTC),
        ).order_by("at")
        samples = [Sample(at.timestamp(), value) for at, value in rows.values_list("at", "value")]
        if samples:
            found.append(Series.of(selector.metric, labels, samples))
    return sorted(found, key=lambda s: s.labels)


def plain(found: Any) -> list[Any]:
    """Series (or latest samples) as comparable data: NaN equal to NaN, order by labels."""

    def sample(s: Sample) -> tuple[float, str]:
        return (s.at, repr(s.value))

    rows = [
        (s.metric, s.labels, [sample(x) for x in s.samples])
        if isinstance(s, Series)
        else (s[0], sample(Sample(s[1], s[2])))
        for s in found
    ]
    return sorted(rows, key=lambda row: row[:2])


def test_a_shared_source_answers_what_one_query_per_selector_answers() -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.rules import parse_rule

    cpu, mem = unique("cpu").replace("-", "_"), unique("mem").replace("-", "_")
    now = time.time()
    for i in range(12):
        labels = {"service": f"s{i % 4}", "pod": f"p{i}"} | ({"zone": "x"} if i % 3 == 0 else {})
        # samples every 7.3 s over 20 minutes, with sub-millisecond times: both reads must agree to the bit
        push(cpu, labels, [(now - 1200 + 7.3 * k + i / 7, float(i * 10 + k % 5)) for k in range(165)])
        push(mem, labels, every(60, now - 1200, now - 400, float(i)))  # nothing fresh at now
    push(cpu, {"service": "s0", "pod": "nan"}, [(now - 30, float("nan"))])
    rules = [parse_rule(f'{cpu}{{service="s1"}} > 1'), parse_rule(f"{mem} > 1 AND duration > 5m")]
    source = PushSource.for_rules(rules, now)
    source.prefetch()  # read on a connection of its own while this test goes on
    selectors = [
        f"{cpu}",
        f'{cpu}{{service="s1"}}',
        f'{cpu}{{service="s1", pod!="p5"}}',
        f'{cpu}{{service=~"s[12]", zone=""}}',
        f'{cpu}{{zone!~"x"}}',
        f'{cpu}{{service="nope"}}',
        f'{mem}{{pod=~"p1.*"}}',
    ]
    ranges = [(now - 300, now), (now - 600, now), (now - 900, now - 450), (now - 1500, now + 10)]
    for text in selectors:
        selector = parse_rule(f"{text} > 0").selectors[0]
        for start, end in ranges:
            expected = one_query_per_selector(selector, start, end)
            assert plain(source.select(selector, start, end)) == plain(expected), text
            latest = plain(source.latest(selector, start, end))
            last = [(s.labels, s.samples[-1].at, s.samples[-1].value) for s in expected]
            assert latest == plain(last), text
    # rules read through the shared source and its latest samples judge as the general path does, also at
    # instants equal to a sample's time (which the store keeps to the microsecond)
    from automation.alerting.rules import evaluate
    from tests.alerting.test_threshold_reads import SelectOnly

    for text in (f'{cpu}{{service="s1"}} > 15', f"{cpu} <= 30", f"{mem} > 1", f"{cpu} > 1 AND duration > 1m"):
        rule = parse_rule(text)
        for at in (now, now - 1200 + 7.3 * 160 + 1 / 7, now - 1200 + 7.3 * 150 + 5 / 7 + 300, now - 600):
            shared = evaluate(rule, PushSource.for_rules([rule], at), at)
            assert shared == evaluate(rule, SelectOnly(PushSource()), at), (text, at)  # type: ignore[arg-type]
    # a series pushed after the source loaded is seen by the next source (the process index learns it)
    push(cpu, {"service": "s1", "pod": "late"}, [(now - 5, 99.0)])
    selector = parse_rule(f'{cpu}{{service="s1"}} > 0').selectors[0]
    assert len(PushSource.for_rules(rules, now).select(selector, now - 300, now)) == 4
    assert len(source.select(selector, now - 300, now)) == 3  # one source is one snapshot


def test_a_steady_alert_is_written_in_one_statement_without_a_lock() -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.services.evaluation import evaluate_rule
    from automation.alerting.services.rules import save_rule
    from automation.models import Alert

    metric = unique("load").replace("-", "_")
    now = float(int(time.time()))  # a time the store keeps exactly
    push(metric, {"host": "a"}, every(15, now - 120, now, 5.0))
    rule = save_rule({"name": unique("load_high"), "condition": f"{metric} > 1"})
    first = evaluate_rule(rule, now, PushSource())
    assert len(first.fired) == 1
    fingerprint = first.fired[0]
    logged = decisions(fingerprint)
    push(metric, {"host": "a"}, [(now + 15, 7.0)])
    with CaptureQueriesContext(connection) as queries:
        second = evaluate_rule(rule, now + 15, PushSource())
    assert second.fired == second.resolved == second.pending == []
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "FOR UPDATE" in sql]
    assert len([sql for sql in statements if sql.startswith("UPDATE")]) == 1
    alert = Alert.objects.get(fingerprint=fingerprint)
    assert alert.value == 7.0 and alert.last_seen_at.timestamp() == pytest.approx(now + 15, abs=1e-3)
    assert decisions(fingerprint) == logged  # nothing logged for a steady tick


def test_an_alert_changed_meanwhile_is_observed_as_before() -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.services.alerts import ActiveAlerts, expire
    from automation.alerting.services.evaluation import evaluate_rule, settle
    from automation.alerting.services.rules import save_rule
    from automation.models import Alert

    metric = unique("queue").replace("-", "_")
    now = time.time()
    push(metric, {"queue": "q"}, every(15, now - 120, now + 30, 50.0))
    rule = save_rule({"name": unique("queue_deep"), "condition": f"{metric} > 10"})
    fingerprint = evaluate_rule(rule, now, PushSource()).fired[0]
    # a batch reads the active alerts, then another evaluator resolves this one before the batch writes
    active = ActiveAlerts([rule.pk])
    report = evaluate_rule(rule, now + 15, PushSource(), active=active)
    assert report.fired == []  # deferred: unchanged as far as the batch knew
    expire(fingerprint, now + 15)
    settle(active, now + 15)
    assert report.fired == [fingerprint]  # the deferred write found it resolved: observed, fired again
    assert Alert.objects.get(fingerprint=fingerprint).state == "firing"
    assert decisions(fingerprint).count("fired") == 2
    # the rule's labels change: the alert is observed (its labels rewritten), not merely touched
    rule = save_rule({"name": rule.name, "condition": f"{metric} > 10", "labels": {"team": "storage"}})
    assert evaluate_rule(rule, now + 30, PushSource()).fired == []
    assert Alert.objects.get(fingerprint=fingerprint).labels["team"] == "storage"


def test_a_batch_reports_as_each_rule_alone() -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.services.evaluation import evaluate_rule, evaluate_rules
    from automation.alerting.services.rules import save_rule

    metric = unique("disk").replace("-", "_")
    now = time.time()
    for i in range(6):
        push(metric, {"mount": f"m{i}"}, every(15, now - 400, now, float(i * 20)))
    texts = [f"{metric} > 50", f'{metric}{{mount="m1"}} < 50', f"{metric} > 50 AND duration > 5m"]
    alone = [save_rule({"name": unique("alone"), "condition": t}) for t in texts]
    together = [save_rule({"name": unique("batch"), "condition": t}) for t in texts]
    expected = [evaluate_rule(rule, now, PushSource()) for rule in alone]
    got = evaluate_rules(together, now)
    assert [(r["series"], len(r["fired"]), len(r["pending"])) for r in got] == [
        (e.series, len(e.fired), len(e.pending)) for e in expected
    ]
    assert [len(r["fired"]) for r in got] == [3, 1, 3]


def test_tick_batches_keep_rules_of_a_metric_together() -> None:
    from automation.alerting.services.ticks import tick_batches
    from automation.models import AlertRule

    def rule(name: str, condition: str) -> Any:
        return AlertRule(name=name, document={"name": name, "condition": condition})

    rules = [rule(f"r{i}", f"{'cpu' if i % 2 else 'mem'} > {i}") for i in range(6)]
    batches = tick_batches(rules, size=3)
    assert [[r.name for r in b] for b in batches] == [["r1", "r3", "r5"], ["r0", "r2", "r4"]]


@pytest.mark.usefixtures("worker")
def test_the_beat_tick_sends_batches_and_fires_once(engine: Any) -> None:
    from automation import AutomationConfig
    from automation.celery import app
    from automation.config.apply import apply_config

    original = engine.config
    apply_config(AutomationConfig(**{**original.model_dump(), "level": "autonomous"}))
    try:
        metric = unique("errors").replace("-", "_")
        now = time.time()
        push(metric, {"service": "api"}, every(10, now - 120, now, 42.0))
        name = engine.register_alert_workflow(
            {
                "name": unique("errors_tick"),
                "condition": f"{metric} > 10",
                "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
            }
        )
        # the tick sent twice (a second Beat): one firing, one run
        for _ in range(2):
            assert (
                app.send_task("automation.alerting.evaluate", (now,), queue="critical").get(timeout=30) >= 1
            )
        # One run, direct or behind its approval (the worker may still hold the level it read a moment ago).
        def runs() -> int:
            return len(runs_of(f"alert.{name}")) + len(runs_of(f"alert.{name}.gated"))

        wait_for(lambda: runs() == 1)
        time.sleep(0.5)  # the second tick's batch may still be running: it must add nothing
        assert runs() == 1
    finally:
        apply_config(original)


def test_a_stored_rule_that_no_longer_validates_leaves_the_tick_to_the_others(caplog: Any) -> None:
    from automation.alerting.definitions import RuleDefinition
    from automation.alerting.rules import parse_rule
    from automation.alerting.services.evaluation import evaluate_rules, load_rules
    from automation.alerting.services.rules import delete_rule, save_rule
    from automation.alerting.services.ticks import enabled_rules
    from automation.errors import DefinitionError
    from automation.models import AlertRule, Incident
    from tasks.alerting import evaluate_rules as evaluate_batch

    metric, service = unique("disk").replace("-", "_"), unique("db")
    now = time.time()
    push(metric, {"service": service}, every(10, now - 60, now, 95.0))
    good = save_rule({"name": unique("disk_full"), "condition": f"{metric} > 90"})
    bad = save_rule({"name": unique("disk_broken"), "condition": f"{metric} > 80"})
    broken = {**bad.document, "condition": f"{metric} >>> 80"}  # stored by hand: never validated
    with pytest.raises(DefinitionError):
        parse_rule(RuleDefinition.model_validate(broken).condition or "")
    AlertRule.objects.filter(pk=bad.pk).update(document=broken)
    try:
        names = [good.name, bad.name]
        with caplog.at_level("ERROR", logger="automation.alerting"):
            skipped: list[dict[str, str]] = []
            rules = load_rules(skipped, name__in=names, enabled=True)
            again = load_rules(skipped, name__in=names, enabled=True)
        assert [r.name for r in rules] == [good.name] == [r.name for r in again]
        assert [s["rule"] for s in skipped] == [bad.name, bad.name]  # reported every time...
        assert "column" in skipped[0]["error"]
        logged = [r.getMessage() for r in caplog.records if bad.name in r.getMessage()]
        assert len(logged) == 1 and "no longer validates" in logged[0]  # ...logged once per version
        reports = evaluate_rules(rules, now)
        assert [r["rule"] for r in reports] == [good.name] and len(reports[0]["fired"]) == 1
        # The tick's rules leave it out and name it (not evaluated here: other tests' rules are enabled
        # too), and the batch task the tick sends reports it among its errors.
        tick_skipped: list[dict[str, str]] = []
        assert bad.name not in [r.name for r in enabled_rules(tick_skipped)]
        assert bad.name in [s["rule"] for s in tick_skipped]
        batch = evaluate_batch.run(names, now + 15)
        assert batch["rules"] == 2 and batch["fired"] == []
        assert list(batch["errors"]) == [bad.name] and "not evaluated" in batch["errors"][bad.name]
        # Saved again through the service (validated), the rule is evaluated at once.
        save_rule({"name": bad.name, "condition": f"{metric} > 80"})
        assert [r.name for r in load_rules(name__in=names, enabled=True)] == sorted(names)
    finally:
        for name in (good.name, bad.name):
            delete_rule(name)  # its firing alerts resolve: nothing left firing for later tests
        Incident.objects.filter(services__contains=[service]).delete()  # nor an incident open
