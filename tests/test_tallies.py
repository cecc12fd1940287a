"""The metric tallies of finished runs and steps: what a scrape reads equals counting the tables, before and
after Beat adds rows up, and stays so when old runs are deleted (automation/runs/tallies.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from automation import ActionDefinition
from automation.runs.tallies import BUCKETS, RUN, STEP, STEP_BUCKETS, Count
from tests.conftest import stored_run, unique

T0 = datetime(2026, 1, 1, 12, 0, 0)
Row = tuple[str, str, datetime | None, datetime | None]


def tally(kind: str, rows: Iterable[Row]) -> dict[tuple[str, str, str], Count]:
    """The reference: (label, status, started_at, finished_at) rows added up one by one in Python."""
    out: dict[tuple[str, str, str], Count] = defaultdict(Count)
    for label, status, started, finished in rows:
        one = Count(count=1, buckets=[0] * len(BUCKETS[kind]))
        if started is not None and finished is not None:
            seconds = (finished - started).total_seconds()
            one.timed, one.seconds = 1, seconds
            one.buckets = [int(seconds <= bound) for bound in BUCKETS[kind]]
        out[(kind, label, status)].add(one)
    return dict(out)


def test_the_reference_tally_counts_timed_rows_into_cumulative_buckets() -> None:
    rows = [
        ("a", "succeeded", T0, T0 + timedelta(seconds=0.02)),
        ("a", "succeeded", T0, T0 + timedelta(seconds=7)),
        ("a", "succeeded", None, None),  # finished without ever starting (cancelled first)
        ("a", "failed", T0, T0 + timedelta(seconds=400)),
    ]
    counts = tally(STEP, rows)
    ok = counts[(STEP, "a", "succeeded")]
    assert (ok.count, ok.timed) == (3, 2)
    assert ok.seconds == pytest.approx(7.02)
    assert ok.buckets[STEP_BUCKETS.index(0.05)] == 1
    assert ok.buckets[STEP_BUCKETS.index(10.0)] == 2
    failed = counts[(STEP, "a", "failed")]
    assert failed.buckets == [0] * len(STEP_BUCKETS)  # 400 s is past the last bound: only in +Inf


def test_adding_counts_merges_buckets_of_any_length() -> None:
    total = Count()
    total.add(Count(2, 1, 1.5, [0, 1]))
    total.add(Count(1, 1, 0.5, [1, 1, 1]))
    assert (total.count, total.timed, total.seconds, total.buckets) == (3, 2, 2.0, [1, 2, 1])


def _finish(run: Any, status: str, *, seconds: float, action_type: str, ago: timedelta = timedelta()) -> None:
    from django.utils import timezone

    from automation.models import StepRun, WorkflowRun

    end = timezone.now() - ago
    WorkflowRun.objects.filter(id=run.id).update(
        status=status, started_at=end - timedelta(seconds=seconds), finished_at=end
    )
    StepRun.objects.filter(run_id=run.id).update(
        status=status, action_type=action_type, started_at=end - timedelta(seconds=seconds), finished_at=end
    )


def _table_counts(kind: str, labels: set[str]) -> dict[tuple[str, str], tuple[int, int, list[int]]]:
    """Counted straight from the tables, as the scrape did before the tallies."""
    from automation.choices import RunStatus
    from automation.models import StepRun, WorkflowRun

    model, label = (WorkflowRun, "workflow__name") if kind == RUN else (StepRun, "action_type")
    rows = model.objects.filter(status__in=RunStatus.TERMINAL, **{f"{label}__in": labels})
    counts = tally(kind, rows.values_list(label, "status", "started_at", "finished_at"))
    return {(lab, st): (c.count, c.timed, c.buckets) for (_, lab, st), c in counts.items()}


def _scraped(kind: str, labels: set[str]) -> dict[tuple[str, str], tuple[int, int, list[int]]]:
    from automation.runs.tallies import read_counts

    counts = read_counts().of(kind)
    return {key: (c.count, c.timed, c.buckets) for key, c in counts.items() if key[0] in labels}


@pytest.mark.usefixtures("database")
def test_scrape_equals_the_tables_before_and_after_adding_up_and_after_old_runs_go(engine: Any) -> None:
    from automation.choices import RunStatus
    from automation.models import RunTally, StepRun, WorkflowRun
    from automation.runs.tallies import add_up

    step = ActionDefinition(name="only", action_type="control.wait", parameters={"seconds": 0})
    ok_type, bad_type = unique("tally.ok"), unique("tally.bad")
    runs = [stored_run(engine, "tallied", step) for _ in range(4)]
    workflows = {str(WorkflowRun.objects.get(id=r.id).workflow.name) for r in runs}
    _finish(runs[0], RunStatus.SUCCEEDED, seconds=0.3, action_type=ok_type)
    _finish(runs[1], RunStatus.SUCCEEDED, seconds=40, action_type=ok_type)
    _finish(runs[2], RunStatus.FAILED, seconds=2, action_type=bad_type)
    # runs[3] stays pending: active, in no counter.
    action_types = {ok_type, bad_type}

    before = (_scraped(RUN, workflows), _scraped(STEP, action_types))
    assert before == (_table_counts(RUN, workflows), _table_counts(STEP, action_types))
    assert before[1][(ok_type, RunStatus.SUCCEEDED)][:2] == (2, 2)

    assert add_up() >= 6  # these three runs and their steps, and whatever other tests left finished
    assert not WorkflowRun.objects.filter(id__in=[r.id for r in runs[:3]], counted=False).exists()
    assert not WorkflowRun.objects.get(id=runs[3].id).counted
    assert RunTally.objects.filter(kind=STEP, label=ok_type, status=RunStatus.SUCCEEDED).get().count == 2
    after = (_scraped(RUN, workflows), _scraped(STEP, action_types))
    assert after == before
    assert add_up() == 0 or after == (_scraped(RUN, workflows), _scraped(STEP, action_types))

    # Runs deleted by a retention job: the counters keep what they counted.
    WorkflowRun.objects.filter(id__in=[r.id for r in runs[:3]]).delete()
    assert not StepRun.objects.filter(action_type__in=action_types).exists()
    assert (_scraped(RUN, workflows), _scraped(STEP, action_types)) == before

    # The pending run finishes later: it is counted at once (from the table), then from its tally.
    _finish(runs[3], RunStatus.SUCCEEDED, seconds=1, action_type=ok_type)
    grown = _scraped(STEP, action_types)[(ok_type, RunStatus.SUCCEEDED)]
    assert grown[:2] == (3, 3)
    add_up()
    assert _scraped(STEP, action_types)[(ok_type, RunStatus.SUCCEEDED)] == grown


@pytest.mark.usefixtures("database")
def test_a_recently_cancelled_step_waits_before_it_is_added(engine: Any) -> None:
    """Its action may still end and record it succeeded: a tally of 'cancelled' could not take it back."""
    from automation.choices import RunStatus
    from automation.models import StepRun
    from automation.runs.tallies import add_up

    step = ActionDefinition(name="only", action_type="control.wait", parameters={"seconds": 0})
    recent, old = stored_run(engine, "cancelled", step), stored_run(engine, "cancelled", step)
    kind = unique("tally.cancelled")
    _finish(recent, RunStatus.CANCELLED, seconds=1, action_type=kind)
    _finish(old, RunStatus.CANCELLED, seconds=1, action_type=kind, ago=timedelta(hours=3))
    add_up()
    assert not StepRun.objects.get(run_id=recent.id).counted
    assert StepRun.objects.get(run_id=old.id).counted
    # Not scraped yet either: counted as cancelled now, it would have to be taken back below.
    assert _scraped(STEP, {kind})[(kind, RunStatus.CANCELLED)][0] == 1
    # The late completion: the counter of its new status grows, the cancelled one does not move.
    StepRun.objects.filter(run_id=recent.id).update(status=RunStatus.SUCCEEDED)
    scraped = _scraped(STEP, {kind})
    assert scraped[(kind, RunStatus.CANCELLED)][0] == 1 and scraped[(kind, RunStatus.SUCCEEDED)][0] == 1
