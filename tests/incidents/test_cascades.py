"""The generated cascades' clocks (`Timing`): each changes only what it names, and bad ranges are refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from automation.errors import InvalidFieldsError
from automation.incidents.cascades import Scenario, Timing, generate

SEEDS = (3, 10_001, 10_007)


def _alert_delays(scenario: Scenario) -> dict[str, pd.Timedelta]:
    """Per failed service whose alert fired: how long after its failure."""
    return {
        a.service: a.started_at - scenario.failed[a.service]
        for a in scenario.alerts
        if a.service in scenario.failed
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_slower_alerts_change_only_the_alert_delays(seed: int) -> None:
    usual, slow = generate(seed), generate(seed, timing=Timing(alert_delay=(120.0, 1200.0)))
    assert (slow.root, slow.depends_on, slow.declared, slow.failed) == (
        usual.root,
        usual.depends_on,
        usual.declared,
        usual.failed,
    )
    assert all(slow.metrics[s].equals(usual.metrics[s]) for s in usual.metrics)
    before, after = _alert_delays(usual), _alert_delays(slow)
    assert before and set(after) <= set(before)
    for service, delay in before.items():
        if service in after:  # the same draw over a range twice as wide: twice as late
            assert abs(after[service] - 2 * delay) < pd.Timedelta(milliseconds=1)
        else:  # it would have fired after the window ends
            assert usual.failed[service] + 2 * delay > slow.end - pd.Timedelta(milliseconds=1)


def test_longer_blips_last_as_long_as_asked_and_change_nothing_else() -> None:
    lengthened = 0
    for seed in range(20):
        usual, longer = generate(seed), generate(seed, timing=Timing(blip=(10.0, 10.0)))
        assert usual.alerts == longer.alerts and usual.failed == longer.failed
        for service, series in usual.metrics.items():
            differs = int((~np.isclose(series.to_numpy(), longer.metrics[service].to_numpy())).sum())
            assert differs in (0, 5)  # a blip of 10 min instead of 5, or none on this service
            lengthened += differs > 0
    assert lengthened > 0


def test_a_ranking_asked_early_sees_nothing_after_the_window() -> None:
    timing = Timing(window_after=5.0, quiet_end=0.0)
    for seed in SEEDS:
        scenario = generate(seed, timing=timing)
        assert scenario.end - scenario.start == pd.Timedelta(minutes=35)
        assert all(a.started_at <= scenario.end for a in scenario.alerts)
        assert all(c.at <= scenario.end for c in scenario.changes)
        assert all(t <= scenario.end for t in scenario.failed.values())
        assert all(series.index[-1] <= scenario.end for series in scenario.metrics.values())


def test_asked_early_is_the_same_incident_cut_short() -> None:
    for seed in SEEDS:
        whole, early = generate(seed), generate(seed, timing=Timing(asked_after=20.0))
        cut = whole.failed[whole.root] + pd.Timedelta(minutes=20)
        assert early.end == cut and (early.root, early.declared) == (whole.root, whole.declared)
        assert early.failed == {s: t for s, t in whole.failed.items() if t <= cut}
        assert early.alerts == [a for a in whole.alerts if a.started_at <= cut]
        for service, series in early.metrics.items():
            assert series.equals(whole.metrics[service][whole.metrics[service].index <= cut])


@pytest.mark.parametrize(
    ("timing", "field"),
    [
        ({"alert_delay": (600.0, 60.0)}, "timing.alert_delay"),
        ({"propagation": (-1.0, 10.0)}, "timing.propagation"),
        ({"blip": (2.0, 4.0)}, "timing.blip"),
        ({"window_after": 10.0, "quiet_end": 10.0}, "timing.quiet_end"),
        ({"asked_after": 90.0}, "timing.asked_after"),
    ],
)
def test_bad_timings_are_refused_naming_the_field(timing: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldsError) as refused:
        Timing(**timing)
    assert field in [path for path, _ in refused.value.errors]
