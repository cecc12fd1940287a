"""Muting read for one firing alert (`Muting.now(at, alert=...)`) reads only the firing alerts that could
inhibit it, and decides exactly as the muting read for every alert: checked on the real database over a
spread of label sets, inhibit rules with equality and regex matchers, and `equal` labels an alert lacks."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerting.test_pipeline import alerting_document  # noqa: F401 - a fixture
from tests.conftest import unique

pytestmark = pytest.mark.usefixtures("engine")

RULES = [
    {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity=~"low|warning"'],
        "equal": ["cluster"],
    },
    {
        "source_matchers": ['alertname="NodeDown"', 'team=~"st.*"'],
        "target_matchers": ['alertname!="NodeDown"'],
        "equal": ["instance", "zone"],
    },
    # never inhibits: its source must be `critical` and carry the target's severity, which is `low`
    {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="low"'],
        "equal": ["severity"],
    },
]


def _labels(rng: random.Random, suite: str) -> dict[str, str]:
    labels = {"suite": suite, "alertname": rng.choice(["NodeDown", "HighCpu", "DiskFull"])}
    for name, values in {
        "severity": ["critical", "low", "warning", ""],
        "cluster": ["a", "b", ""],
        "team": ["storage", "web", ""],
        "instance": ["i1", "i2", ""],
        "zone": ["z1", ""],
    }.items():
        value = rng.choice(values)
        if value:
            labels[name] = value
    return labels


def _alert(labels: dict[str, str], *, stored: bool) -> Any:
    from automation.alerting.choices import AlertState
    from automation.models import Alert

    alert = Alert(
        fingerprint=uuid.uuid4().hex, name=labels["alertname"], labels=labels, state=AlertState.FIRING
    )
    if stored:
        alert.save()
    return alert


@pytest.fixture
def stored_alerts() -> Iterator[list[Any]]:
    """The alerts a test stores (`_alert(..., stored=True)` appended here), deleted afterwards: left
    firing, they would inhibit other tests' alerts."""
    from automation.models import Alert

    kept: list[Any] = []
    yield kept
    Alert.objects.filter(pk__in=[a.pk for a in kept]).delete()


def _ours(muting: Any, fingerprints: set[str]) -> Any:
    """`muting` narrowed to this test's alerts and without silences: other tests' alerts and silences in the
    shared database neither add nor take away a decision compared here."""
    from automation.alerting.services.muting import Muting

    firing = tuple(a for a in muting.firing if a.fingerprint in fingerprints)
    return Muting(muting.at, muting.rules, firing, (), muting.only)


def test_one_alerts_muting_reads_its_possible_sources_only_and_decides_as_the_full_read(
    alerting_document: Any,  # noqa: F811 - the fixture imported above
    stored_alerts: list[Any],
) -> None:
    from automation.alerting.inhibition import inhibited_by
    from automation.alerting.matchers import matches_all
    from automation.alerting.services.muting import Muting

    alerting_document({"inhibit_rules": RULES})
    suite = unique("muting")
    rng = random.Random(7)
    stored_alerts += [_alert(_labels(rng, suite), stored=True) for _ in range(80)]
    ours = {a.fingerprint for a in stored_alerts}
    now = time.time()
    full = _ours(Muting.now(now), ours)
    assert len(full.firing) == 80
    inhibited = untargeted = 0
    for alert in stored_alerts + [_alert(_labels(rng, suite), stored=False) for _ in range(40)]:
        read = Muting.now(now, alert=alert)
        scoped = _ours(read, ours)
        expected, got = full.of(alert), scoped.of(alert)
        assert (expected is None) == (got is None), alert.labels
        if got is not None:
            inhibited += 1
            source = got[1].removeprefix("inhibited by alert ")
            (found,) = [a for a in scoped.firing if a.fingerprint == source]
            assert inhibited_by(alert.fingerprint, alert.labels, [found], full.rules) == source
        if not any(matches_all(rule.target, alert.labels) for rule in full.rules):
            untargeted += 1
            assert read.firing == ()
        else:
            assert len(scoped.firing) < len(full.firing)  # narrowed: none of these rules takes any source
    assert 10 < inhibited < 110 and untargeted > 10  # the spread holds every kind
    with pytest.raises(ValueError, match="asked about alert"):
        Muting.now(now, alert=stored_alerts[0]).of(stored_alerts[1])


def test_an_alert_no_rule_targets_reads_no_firing_alert(
    alerting_document: Any,  # noqa: F811
    stored_alerts: list[Any],
) -> None:
    from automation.alerting.services.muting import Muting

    alerting_document({"inhibit_rules": RULES})
    suite = unique("untargeted")
    critical = {"suite": suite, "alertname": "NodeDown", "severity": "critical", "team": "storage"}
    critical["cluster"] = "a"
    stored_alerts += [_alert(critical, stored=True) for _ in range(3)]
    now = time.time()
    assert len(Muting.now(now).firing) >= 3
    # NodeDown at severity critical: no rule's target matchers match it
    assert Muting.now(now, alert=stored_alerts[0]).firing == ()
    # a low alert of cluster a: only the critical alerts of cluster a are read, among them these three
    low = {"suite": suite, "alertname": "HighCpu", "severity": "low", "cluster": "a", "instance": "i9"}
    target = _alert(low, stored=False)
    read = Muting.now(now, alert=target).firing
    assert {s.fingerprint for s in stored_alerts} <= {a.fingerprint for a in read}
    assert all(a.labels.get("cluster") == "a" and a.labels.get("severity") == "critical" for a in read)
    assert Muting.now(now, alert=target).of(target) is not None
    moved = _alert({**low, "cluster": "b"}, stored=False)
    moved.fingerprint = target.fingerprint  # the same fingerprint sent with other labels
    with pytest.raises(ValueError, match="asked about alert"):
        Muting.now(now, alert=target).of(moved)
