"""The backtest and the engine agree: the same rule over the same NAB slice, evaluated step by step by the
real services on PostgreSQL and replayed by the backtest, logs the same decisions at the same times."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from automation.alerting.backtest import backtest
from automation.alerting.definitions import RuleDefinition
from automation.alerting.matchers import alert_fingerprint
from automation.alerting.nab import nab_time
from automation.alerting.sources.memory import MemorySource
from automation.choices import AutomationLevel
from tests.alerting.test_backtest import cpu_series
from tests.conftest import unique

#: Decisions logged once per event in both (pending and held are logged with other once-keys).
COMPARED = ("fired", "resolved", "flapping", "cooldown", "workflow_started", "notified")


@pytest.fixture
def autonomous(engine: Any) -> Iterator[None]:
    from automation import AutomationConfig
    from automation.alerting.services.config import apply_document
    from automation.config.apply import apply_config

    original = engine.config
    apply_config(AutomationConfig(**{**original.model_dump(), "level": "autonomous"}))
    apply_document({})
    yield
    apply_config(original)


@pytest.mark.usefixtures("autonomous")
def test_the_engine_and_the_backtest_log_the_same_decisions() -> None:
    from automation.alerting.services.evaluation import evaluate_rule
    from automation.alerting.services.groups import flush_all
    from automation.alerting.services.rules import save_rule
    from automation.models import AlertLog

    name = unique("jumpy").replace("-", "_")
    definition = {
        "name": name,
        "condition": "value > 0.14",
        "keep_firing_for": "10m",
        "cooldown_period": "1h",
        "flap": {"changes": 4, "window": "1h"},
        "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
    }
    rule = save_rule(definition)
    source = MemorySource([cpu_series()])
    start, end, step = nab_time("2014-02-26 00:00:00"), nab_time("2014-02-26 12:00:00"), 300.0
    now = start
    while now <= end:
        evaluate_rule(rule, now, source)
        flush_all(now)
        now += step
    fingerprint = alert_fingerprint(name, {"trace": "ec2_cpu_utilization_24ae8d"})
    engine_log = [
        (entry.at.timestamp(), entry.decision)
        for entry in AlertLog.objects.filter(alert__fingerprint=fingerprint).order_by("at", "id")
        if entry.decision in COMPARED
    ]
    # Beat's flush job runs every 5 s; the loop above flushes once per evaluation, and so does this replay.
    result = backtest(
        [RuleDefinition.parse(definition)],
        source,
        start=start,
        end=end,
        interval=step,
        level=AutomationLevel.AUTONOMOUS,
        flush_interval=step,
    )
    replayed = [
        (e.at, e.decision) for e in result.log if e.fingerprint == fingerprint and e.decision in COMPARED
    ]
    assert engine_log == replayed
    decided = {decision for _, decision in replayed}
    assert {"fired", "resolved", "flapping", "cooldown", "workflow_started", "notified"} <= decided


def test_the_backtest_refuses_what_remediate_when_refuses() -> None:
    source = MemorySource([cpu_series()])
    start, end = nab_time("2014-02-26 00:00:00"), nab_time("2014-02-26 12:00:00")

    def replay(matchers: list[str]) -> Any:
        rule = RuleDefinition.parse(
            {
                "name": "guarded",
                "condition": "value > 0.14",
                "remediate_when": matchers,
                "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
            }
        )
        return backtest(
            [rule], source, start=start, end=end, interval=300.0, level=AutomationLevel.AUTONOMOUS
        )

    allowed, refused = replay(['trace=~"ec2_.*"']), replay(['trace="some-other-host"'])
    assert [e for e in allowed.log if e.decision == "workflow_started"]
    assert not [e for e in refused.log if e.decision == "workflow_started"]
    assert any("remediate_when" in e.detail for e in refused.log if e.decision == "workflow_refused")
