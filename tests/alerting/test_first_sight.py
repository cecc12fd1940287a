"""A new alert of a rule this process knows has the run its firing starts stored and sent just before the
alert is inserted (automation/alerting/services/alerts.py `observe_if_new`, pipeline.py `planned_start`):
what is stored is what the two-step path stores, the run is sent and runs on a real worker, and a rule
saved since, an alert that exists, a run that exists, a race of copies or a copy sent again after a crash
under another level never start a second run or a stale one."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.alerting.test_pipeline import decisions, handler, received, runs_of
from tests.conftest import close_thread_clients, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


@pytest.fixture
def two_step(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fail the test if a run is stored the two-step way (after the alert, by `enqueue_run`)."""
    from automation.runs import services

    stored: list[Any] = []
    original = services.store_run

    def store_run(*args: Any, **kwargs: Any) -> Any:
        stored.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "store_run", store_run)
    return stored


def _a_known_rules_alert(level: Any, prefix: str) -> tuple[str, float, Any]:
    """At level autonomous, a handler rule this process knows (an alert of it received once) and a new
    alert of it, not received yet: (rule name, now, the alert)."""
    from automation.alerting.services import intake

    level("autonomous")
    name = unique(prefix)
    handler(name)
    now = time.time()
    intake.receive(received(name, starts=now, service="api", instance="warm"), now)
    assert name in intake._known
    return name, now, received(name, starts=now, service="api", instance="a")


def _row(fingerprint: str) -> dict[str, Any]:
    from automation.models import Alert

    row = Alert.objects.filter(fingerprint=fingerprint).values().get()
    for name in ("id", "fingerprint", "labels", "updated_at", "last_run_id"):
        row.pop(name)
    return row


def _log(fingerprint: str) -> list[tuple[str, str, bool]]:
    from automation.models import AlertLog

    rows = AlertLog.objects.filter(alert__fingerprint=fingerprint)
    return sorted((e.decision, e.detail, e.run_id is not None) for e in rows)


@pytest.mark.parametrize(
    ("mode", "decision", "suffix"),
    [("autonomous", "workflow_started", ""), ("supervised", "approval_required", ".gated")],
)
def test_a_known_rules_new_alert_is_stored_with_its_run_as_two_steps_store_them(
    level: Any, two_step: list[Any], mode: str, decision: str, suffix: str
) -> None:
    from automation.alerting.services import intake
    from automation.models import Alert, WorkflowRun

    level(mode)
    name = unique("first")
    handler(name)
    now = time.time()
    slow = received(name, starts=now - 5, service="api", instance="a")
    intake._known.pop(name, None)
    assert intake.receive(slow, now).outcome == "fired"
    assert len(two_step) == 1  # the rule was not known yet: the run was stored after the alert
    two_step.clear()
    fast = received(name, starts=now - 5, service="api", instance="b")
    assert intake.receive(fast, now).outcome == "fired"
    assert two_step == []  # stored with the alert
    assert _row(fast.fingerprint) == _row(slow.fingerprint)
    assert _log(fast.fingerprint) == _log(slow.fingerprint)
    assert decision in decisions(fast.fingerprint)
    alert = Alert.objects.get(fingerprint=fast.fingerprint)
    run = WorkflowRun.objects.get(id=alert.last_run_id)
    assert run.workflow.name == f"alert.{name}{suffix}"
    assert run.idempotency_key == f"firing:{fast.fingerprint}:{now - 5:.3f}"
    other = WorkflowRun.objects.get(id=Alert.objects.get(fingerprint=slow.fingerprint).last_run_id)
    assert (run.version_id, run.queue) == (other.version_id, other.queue)
    assert run.inputs.keys() == other.inputs.keys()
    assert run.inputs["alert"]["labels"]["instance"] == "b"
    assert len(runs_of(f"alert.{name}{suffix}")) == 2
    if mode == "autonomous":  # sent: a real worker runs it
        wait_for(lambda: WorkflowRun.objects.get(id=run.id).status == "succeeded")


def test_a_rule_saved_again_since_it_was_read_decides_by_its_new_version(level: Any) -> None:
    from automation.alerting.services import intake
    from automation.models import WorkflowRun

    level("autonomous")
    name = unique("resaved")
    handler(name)
    now = time.time()
    assert intake.receive(received(name, starts=now, service="api", instance="a"), now).outcome == "fired"
    assert name in intake._known
    # Saved again: its remediation may no longer touch `api`. The run planned from the version this
    # process read must not be stored.
    handler(name, remediate_when=['service="db"'])
    alert = received(name, starts=now, service="api", instance="b")
    assert intake.receive(alert, now).outcome == "fired"
    assert "workflow_refused" in decisions(alert.fingerprint)
    assert "workflow_started" not in decisions(alert.fingerprint)
    assert len(runs_of(f"alert.{name}")) == 1
    assert not WorkflowRun.objects.filter(idempotency_key__contains=alert.fingerprint).exists()


def test_a_firing_whose_run_exists_records_that_run_and_starts_none(level: Any) -> None:
    """The alert was deleted (retention) and the same firing is received again: its run exists."""
    from automation.alerting.services import intake
    from automation.models import Alert

    name, now, alert = _a_known_rules_alert(level, "again")
    intake.receive(alert, now)
    (run,) = [r for r in runs_of(f"alert.{name}") if r.inputs["alert"]["labels"]["instance"] == "a"]
    Alert.objects.filter(fingerprint=alert.fingerprint).delete()
    assert intake.receive(alert, now + 1).outcome == "fired"
    assert Alert.objects.get(fingerprint=alert.fingerprint).last_run_id == run.id
    assert len(runs_of(f"alert.{name}")) == 2


def test_copies_of_a_known_rules_new_alert_racing_start_one_run(level: Any) -> None:
    from automation.alerting.services import intake

    name, now, alert = _a_known_rules_alert(level, "race")

    def first(_: int) -> str:
        try:
            return str(intake.receive(alert, time.time()).outcome)
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(first, range(8)))
    assert sorted(outcomes) == ["deduplicated"] * 7 + ["fired"]
    log = decisions(alert.fingerprint)
    assert log.count("fired") == 1 and log.count("workflow_started") == 1
    assert len(runs_of(f"alert.{name}")) == 2  # the warm-up's and this one's


@pytest.fixture
def level_per_thread(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Let each thread read its own automation level, as two processes whose cached levels disagree (a
    process reads the stored level at most 5 s late): `level_per_thread.value = "supervised"`."""
    from automation.alerting.services import pipeline

    real, levels = pipeline.current_config, threading.local()

    def current_config() -> Any:
        config = real()
        wanted = getattr(levels, "value", None)
        return config if wanted is None else config.model_copy(update={"level": type(config.level)(wanted)})

    monkeypatch.setattr(pipeline, "current_config", current_config)
    return levels


class _Racer:
    """The second of two racing threads, as the first sees it: its database session, and whether it ended."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.ready, self.done = threading.Event(), threading.Event()

    def hold_until_blocked(self) -> None:
        """In the first thread, inside its open transaction: wait until the second waits for a lock (on
        this transaction, the only one open) or is done; fail if it never got to wait."""
        from django.db import connection

        assert self.ready.wait(30), "the second thread never started"
        deadline = time.monotonic() + 30
        with connection.cursor() as cursor:
            while not self.done.is_set() and time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [self.pid])
                if cursor.fetchone()[0]:
                    return
                time.sleep(0.005)
        raise AssertionError("the second thread never waited for the first one's transaction")


def _in_two_threads(first: Any, then: Any) -> tuple[Any, Any]:
    """Run `first(racer)` and, once it stored what it stores (`racer.ready` is then its signal to start),
    `then()` in a thread of its own (its own connection): `first` holds its transaction open until the
    second waits on it (`racer.hold_until_blocked()`)."""
    from django.db import connection

    racer, stored = _Racer(), threading.Event()

    def run_first() -> Any:
        try:
            return first(racer, stored)
        finally:
            close_thread_clients()

    def run_then() -> Any:
        try:
            connection.ensure_connection()
            racer.pid = connection.connection.get_backend_pid()
            racer.ready.set()
            return then()
        finally:
            racer.done.set()
            close_thread_clients()

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(run_first)
        assert stored.wait(30), "the first thread never stored"
        two = pool.submit(run_then)
        return one.result(90), two.result(90)


def test_copies_planned_at_once_under_levels_that_disagree_start_one_run(
    level: Any, level_per_thread: Any
) -> None:
    """One process plans the firing's run direct (autonomous), the other, a moment later, gated
    (supervised): the second waits for the first's storing of the run to commit (the firing's lock) and
    then stores none, so the firing has one run, the direct one, recorded on the alert."""
    from django.db import transaction

    from automation.alerting.services import intake
    from automation.models import Alert, WorkflowRun

    name, now, alert = _a_known_rules_alert(level, "levels")

    def direct(racer: _Racer, stored: threading.Event) -> str:
        level_per_thread.value = "autonomous"
        with transaction.atomic():  # its commit held back until the copy waits on it
            outcome = str(intake.receive(alert, now).outcome)
            stored.set()
            racer.hold_until_blocked()
        return outcome

    def gated() -> str:
        level_per_thread.value = "supervised"
        intake._present._seen.clear()  # another process: it never saw this alert stored
        return str(intake.receive(alert, now).outcome)

    assert _in_two_threads(direct, gated) == ("fired", "deduplicated")
    (run,) = WorkflowRun.objects.filter(idempotency_key__contains=alert.fingerprint)
    assert run.workflow.name == f"alert.{name}"
    assert runs_of(f"alert.{name}.gated") == []
    assert Alert.objects.get(fingerprint=alert.fingerprint).last_run_id == run.id
    assert decisions(alert.fingerprint).count("workflow_started") == 1
    assert "approval_required" not in decisions(alert.fingerprint)


def test_a_run_started_after_the_alert_is_stored_defers_to_a_copys_run_of_the_other_workflow(
    level: Any, level_per_thread: Any
) -> None:
    """The two-step path (the run stored after the alert, `remediate`): a copy storing the firing's run
    direct holds its transaction open while this one would store it gated; this one waits, then records
    the copy's run instead of starting a second."""
    from django.db import transaction

    from automation.alerting.services import intake, pipeline
    from automation.alerting.services.evaluation import compile_rule
    from automation.models import Alert, AlertRule, WorkflowRun

    level("manual")  # the alert is stored, and no run started for it
    name = unique("twostep")
    handler(name)
    now = time.time()
    received_alert = received(name, starts=now, service="api", instance="a")
    assert intake.receive(received_alert, now).outcome == "fired"
    assert "not_automated" in decisions(received_alert.fingerprint)
    definition = compile_rule(AlertRule.objects.get(name=name)).definition

    def stored_alert() -> Any:
        return Alert.objects.get(fingerprint=received_alert.fingerprint)

    def direct(racer: _Racer, stored: threading.Event) -> Any:
        level_per_thread.value = "autonomous"
        with transaction.atomic():
            run = pipeline.remediate(stored_alert(), now, definition)
            stored.set()
            racer.hold_until_blocked()
        return run

    def gated() -> Any:
        level_per_thread.value = "supervised"
        return pipeline.remediate(stored_alert(), now, definition)

    first, second = _in_two_threads(direct, gated)
    assert first is not None and second is not None and second.id == first.id
    (run,) = WorkflowRun.objects.filter(idempotency_key__contains=received_alert.fingerprint)
    assert run.workflow.name == f"alert.{name}"
    assert runs_of(f"alert.{name}.gated") == []
    assert stored_alert().last_run_id == run.id


class _Crash(Exception):
    pass


@pytest.mark.parametrize("then", ["supervised", "manual"])
def test_a_copy_sent_again_after_a_crash_records_the_run_sent_whatever_the_level_says_now(
    level: Any, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """The process stored and sent the run, then died before the alert was inserted; the sender, never
    answered, sends the alert again once the level changed: the run sent is recorded, no gated one is
    asked for beside it, and a manual level does not leave it unrecorded."""
    from automation.alerting.services import alerts, intake
    from automation.models import Alert, AlertLog, WorkflowRun

    name, now, alert = _a_known_rules_alert(level, "crash")
    original = alerts.run_statements

    def dies_before_the_alert(statements: list[str], *args: Any, **kwargs: Any) -> Any:
        if statements[0].startswith("WITH r AS"):  # the alert's insert (`_first_sight_sql`)
            raise _Crash
        return original(statements, *args, **kwargs)

    monkeypatch.setattr(alerts, "run_statements", dies_before_the_alert)
    with pytest.raises(_Crash):
        intake.receive(alert, now)
    monkeypatch.setattr(alerts, "run_statements", original)
    assert not Alert.objects.filter(fingerprint=alert.fingerprint).exists()
    (sent,) = WorkflowRun.objects.filter(idempotency_key__contains=alert.fingerprint)
    assert sent.workflow.name == f"alert.{name}"

    level(then)
    assert intake.receive(alert, now + 1).outcome == "fired"
    assert list(WorkflowRun.objects.filter(idempotency_key__contains=alert.fingerprint)) == [sent]
    assert runs_of(f"alert.{name}.gated") == []
    assert Alert.objects.get(fingerprint=alert.fingerprint).last_run_id == sent.id
    recorded = AlertLog.objects.get(alert__fingerprint=alert.fingerprint, run_id=sent.id)
    assert (recorded.decision, recorded.detail) == ("workflow_started", "started by a copy of this alert")
    assert "not_automated" not in decisions(alert.fingerprint)


def test_copies_of_an_alert_that_exists_are_not_planned_for(
    level: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alertmanager sends every firing alert again each group_interval: a copy of an alert this process
    stored plans no run (no silences read, no run statement), and is deduplicated."""
    from automation.alerting.services import intake, pipeline

    level("autonomous")
    name = unique("copies")
    handler(name)
    now = time.time()
    alert = received(name, starts=now, service="api", instance="a")
    intake.receive(received(name, starts=now, service="api", instance="warm"), now)
    assert intake.receive(alert, now).outcome == "fired"
    planned: list[Any] = []
    original = pipeline.planned_start
    monkeypatch.setattr(intake, "planned_start", lambda *a, **k: planned.append(a) or original(*a, **k))
    for later in range(3):
        assert intake.receive(alert, now + 1 + later).outcome == "deduplicated"
    assert planned == []
    assert len(runs_of(f"alert.{name}")) == 2
    intake._present._seen.clear()  # forgotten (another process, a restart): planned, stores nothing
    assert intake.receive(alert, now + 5).outcome == "deduplicated"
    assert len(planned) == 1
    assert len(runs_of(f"alert.{name}")) == 2


def test_a_run_sent_while_a_copy_inserted_the_alert_is_recorded_on_it(
    level: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process stores and sends the firing's run; before it inserts the alert, a copy received by
    another process inserts it, having looked for the firing's run before this one was committed (none)
    at level manual by then: the run sent is recorded on that alert all the same."""
    from automation.alerting.services import alerts, intake, pipeline
    from automation.models import Alert, AlertLog, WorkflowRun

    name, now, alert = _a_known_rules_alert(level, "window")
    original, looked_up = alerts.run_statements, pipeline._started_before
    copy: list[str] = []

    def a_copy_inserts_the_alert_first(statements: list[str], *args: Any, **kwargs: Any) -> Any:
        if statements[0].startswith("WITH r AS") and not copy:  # this process's alert insert
            monkeypatch.setattr(alerts, "run_statements", original)
            level("manual")
            monkeypatch.setattr(pipeline, "_started_before", lambda *a, **k: None)  # its snapshot
            copy.append(intake.receive(alert, now).outcome)
            monkeypatch.setattr(pipeline, "_started_before", looked_up)
        return original(statements, *args, **kwargs)

    monkeypatch.setattr(alerts, "run_statements", a_copy_inserts_the_alert_first)
    assert intake.receive(alert, now).outcome == "deduplicated"
    assert copy == ["fired"]
    (sent,) = WorkflowRun.objects.filter(idempotency_key__contains=alert.fingerprint)
    assert Alert.objects.get(fingerprint=alert.fingerprint).last_run_id == sent.id
    recorded = AlertLog.objects.get(alert__fingerprint=alert.fingerprint, run_id=sent.id)
    assert (recorded.decision, recorded.detail) == ("workflow_started", pipeline.COPY_STARTED)
    assert "not_automated" in decisions(alert.fingerprint)  # what the copy decided, also true
