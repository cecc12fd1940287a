"""The metric tallies of finished runs and steps: the only writer of `RunTally` and of the `counted` flags.

`/metrics` counts finished runs and steps from PostgreSQL (see automation/metrics.py). Aggregating the
whole run and step tables on every scrape grows with them, without bound; instead, `add_up` (Beat,
every minute) moves finished rows into small per (kind, label, status) tallies and flags them counted,
in one transaction, and a scrape reads the tallies plus the finished rows not yet added (`read_counts`,
one snapshot), found through a partial index on the uncounted rows. Every finished row is in exactly one
of the two, so the totals are the same as counting the tables, and stay so after old runs are deleted.

A step cancelled with its run may still be recorded as succeeded when its action ends afterwards (its
effect happened): cancelled steps are counted (scraped or added) only once they are older than the
longest a step may run, so a counter never loses what it counted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from automation.choices import RunStatus
from automation.delivery import longest_time_limit

#: Upper bounds (seconds) of the duration buckets of runs and of steps.
RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
RUN, STEP = "run", "step"
BUCKETS = {RUN: RUN_BUCKETS, STEP: STEP_BUCKETS}
#: Rows added per kind and transaction; the job loops until none is left (each batch its own commit).
BATCH = 20_000


@dataclass
class Count:
    """Finished rows of one (kind, label, status): how many, how many timed, their seconds and buckets."""

    count: int = 0
    timed: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=list)

    def add(self, other: Count) -> None:
        self.count += other.count
        self.timed += other.timed
        self.seconds += other.seconds
        if len(self.buckets) < len(other.buckets):
            self.buckets.extend([0] * (len(other.buckets) - len(self.buckets)))
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n


Key = tuple[str, str, str]  # kind, label, status


def _settled_before() -> datetime:
    limit = longest_time_limit(float(settings.VISIBILITY_TIMEOUT))
    return timezone.now() - timedelta(seconds=limit + 60)


def _addable(model: Any) -> Any:
    """Finished rows not yet added; a cancelled step only once it can no longer change (module docstring)."""
    finished = model.objects.filter(counted=False, status__in=RunStatus.TERMINAL)
    if model.__name__ == "StepRun":
        finished = finished.exclude(Q(status=RunStatus.CANCELLED) & ~Q(finished_at__lt=_settled_before()))
    return finished


def _add_batch(kind: str) -> int:
    """Move one batch of finished rows of `kind` into the tallies; how many were moved."""
    from automation.models import RunTally, StepRun, WorkflowRun

    model = WorkflowRun if kind == RUN else StepRun
    with transaction.atomic():
        picked = list(
            _addable(model).order_by().select_for_update(skip_locked=True, of=("self",))
            .values_list("id", flat=True)[:BATCH]
        )
        if not picked:
            return 0
        counts = _grouped(kind, model.objects.filter(id__in=picked))
        model.objects.filter(id__in=picked).update(counted=True)
        for (k, label, status), count in sorted(counts.items()):
            row, _ = RunTally.objects.select_for_update().get_or_create(kind=k, label=label, status=status)
            total = Count(row.count, row.timed, row.seconds, list(row.buckets))
            total.add(count)
            RunTally.objects.filter(id=row.id).update(
                count=total.count, timed=total.timed, seconds=total.seconds, buckets=total.buckets
            )
        return len(picked)


def add_up(max_batches: int = 50) -> int:
    """Add every finished, not yet counted run and step to the tallies; how many rows were added."""
    added = 0
    for kind in (RUN, STEP):
        for _ in range(max_batches):
            moved = _add_batch(kind)
            added += moved
            if moved < BATCH:
                break
    return added


@dataclass(frozen=True)
class Counts:
    """Every finished run and step by (kind, label, status), and the runs still active by workflow."""

    finished: dict[Key, Count]
    active: dict[tuple[str, str], int]

    def of(self, kind: str) -> dict[tuple[str, str], Count]:
        return {(label, status): c for (k, label, status), c in self.finished.items() if k == kind}

    def timed_by_label(self, kind: str) -> dict[str, Count]:
        """Durations of every finished row of `kind` per label, all statuses together."""
        out: dict[str, Count] = defaultdict(Count)
        for (label, _status), count in self.of(kind).items():
            out[label].add(Count(0, count.timed, count.seconds, list(count.buckets)))
        return dict(out)


def _grouped(kind: str, queryset: Any) -> dict[Key, Count]:
    """`queryset`'s rows added up by label and status, in SQL."""
    from django.db.models import Count as SqlCount
    from django.db.models import DurationField, ExpressionWrapper, F, Sum

    label = "workflow__name" if kind == RUN else "action_type"
    timed = Q(started_at__isnull=False, finished_at__isnull=False)
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    bounds = BUCKETS[kind]
    per_bucket = {
        f"le{i}": SqlCount("id", filter=timed & Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(bounds)
    }
    rows = (
        queryset.order_by()
        .annotate(duration=duration)
        .values(label, "status")
        .annotate(
            n=SqlCount("id"),
            timed=SqlCount("id", filter=timed),
            seconds=Sum("duration", filter=timed),
            **per_bucket,
        )
    )
    out: dict[Key, Count] = {}
    for row in rows:
        seconds = row["seconds"]
        out[(kind, row[label], row["status"])] = Count(
            count=row["n"],
            timed=row["timed"],
            seconds=seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds or 0.0),
            buckets=[row[f"le{i}"] for i in range(len(bounds))],
        )
    return out


def read_counts() -> Counts:
    """The tallies plus the finished rows not yet added, and the active runs, read in one snapshot."""
    from django.db.models import Count as SqlCount

    from automation.models import RunTally, StepRun, WorkflowRun

    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        finished: dict[Key, Count] = {}
        for row in RunTally.objects.all():
            key = (row.kind, row.label, row.status)
            finished[key] = Count(row.count, row.timed, row.seconds, list(row.buckets))
        for kind, model in ((RUN, WorkflowRun), (STEP, StepRun)):
            # The finished rows not yet added (all of them when the job has never run); a cancelled step
            # counts once it can no longer change, as in the tallies, so no counter ever goes down.
            tail = _addable(model)
            for key, count in _grouped(kind, tail).items():
                finished.setdefault(key, Count()).add(count)
        active = WorkflowRun.objects.filter(status__in=RunStatus.ACTIVE).values("workflow__name", "status")
        live: dict[tuple[str, str], int] = {
            (row["workflow__name"], row["status"]): row["n"] for row in active.annotate(n=SqlCount("id"))
        }
    return Counts(finished=finished, active=live)
