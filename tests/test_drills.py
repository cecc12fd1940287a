"""The quick reliability drills (poison messages, Redis restart without persistence, two Beats) against
real processes, held to issue 6's targets; and the drills' accounting rules on their own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drills.accounting import DrillResult, Fault, count_effects, seconds_after, sends_per_slot
from drills.receiver import Delivery
from drills.scenarios import DRILLS

ROOT = Path(__file__).resolve().parents[1]
QUICK = [d.name for d in DRILLS if d.quick]


def _delivery(key: str, arrived: float, answered: float | None, status: int = 200) -> Delivery:
    return Delivery(path=f"/{key}", key=key, arrived=arrived, status=status, answered=answered)


def test_a_resend_is_excused_only_for_a_delivery_caught_in_flight_by_a_fault() -> None:
    kill = Fault("kill", 10.0, 10.0)
    deliveries = [
        _delivery("a", 9.0, 10.5),  # in flight at the kill ...
        _delivery("a", 12.0, 12.5),  # ... so this re-send is legitimate
        _delivery("b", 1.0, 1.5),  # answered long before the kill ...
        _delivery("b", 13.0, 13.5),  # ... so this is a duplicated effect
        _delivery("c", 2.0, 2.1, status=500),  # failures are not effects
        _delivery("c", 3.0, 3.1, status=500),
        _delivery("c", 4.0, 4.1),
    ]
    counted = count_effects(deliveries, [kill])
    assert (counted.applied_keys, counted.resent_in_flight, counted.duplicated) == (3, 1, 1)
    assert counted.duplicated_keys == ["b"]
    # Without the fault, both re-sends are duplicates.
    assert count_effects(deliveries, []).duplicated == 2


def test_one_excuse_per_caught_delivery_and_no_more() -> None:
    outage = Fault("redis", 10.0, 13.0)
    deliveries = [_delivery("k", 9.5, None), _delivery("k", 14.0, 14.2), _delivery("k", 15.0, 15.2)]
    counted = count_effects(deliveries, [outage])
    assert (counted.resent_in_flight, counted.duplicated) == (1, 1)


def test_sends_per_slot_and_recovery_arithmetic() -> None:
    lone = [100.0 + 2 * i for i in range(5)]
    assert sends_per_slot(lone, start=99.0, interval=2.0, slots=5) == [1, 1, 1, 1, 1]
    paired = sorted(lone + [t + 0.9 for t in lone])
    assert sends_per_slot(paired, start=99.0, interval=2.0, slots=5) == [2, 2, 2, 2, 2]
    assert seconds_after([1.0, 5.0, 7.0], 4.0) == 1.0
    assert seconds_after([1.0], 4.0) is None


def test_judge_names_every_missed_target() -> None:
    result = DrillResult("d", "D", runs_lost=1, effects_duplicated=2, recovery_point="x", deadline_seconds=60)
    result.judge()
    assert len(result.misses) == 3 and not result.met
    slow = DrillResult("d", "D", recovery_point="x", recovery_seconds=61.0)
    slow.judge()
    assert slow.misses == ["recovery 61.0 s > 60 s"]
    fine = DrillResult("d", "D", recovery_point="x", recovery_seconds=12.0)
    fine.judge()
    assert fine.met


def _servers_available() -> bool:
    import glob

    return shutil.which("redis-server") is not None and bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_quick_drills_meet_the_targets(tmp_path: Path) -> None:
    if not _servers_available():
        if os.environ.get("CI"):
            pytest.fail("the drills need redis-server and PostgreSQL's server binaries (CI requires them)")
        pytest.skip("redis-server or PostgreSQL's server binaries are not installed")
    results_file = tmp_path / "drills.json"
    done = subprocess.run(
        [sys.executable, "-m", "drills", "--quick", "--json", str(results_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert results_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    results = [DrillResult.from_json(r) for r in json.loads(results_file.read_text())]
    assert [r.name for r in results] == QUICK
    report = {r.name: {"error": r.error[-800:], "misses": r.misses, "observations": r.observations[:4]}
              for r in results if not r.met}  # fmt: skip
    assert not report, json.dumps(report, indent=1)
    for result in results:
        assert result.runs_lost == 0 and result.effects_duplicated == 0
        if result.recovery_point is not None:
            assert result.recovery_seconds is not None and result.recovery_seconds <= 60.0
    assert done.returncode == 0, done.stdout[-3000:]
