"""Alert transitions and the notification log.

inactive → pending → firing → resolved, per fingerprint. Each transition runs under the alert's row lock
(SELECT ... FOR UPDATE) and is taken only from the states it leaves, so a second evaluator, a second
Beat, a duplicated webhook or a redelivered message finds it already taken and changes nothing. What
follows a transition (suppression, the remediation run, grouping) is done by the one caller that took it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from automation.alerting.choices import AlertOrigin, AlertState, Decision
from automation.alerting.flapping import FlapPolicy
from automation.alerting.lifecycle import observed_state, record_change, resolves
from automation.locks import lock, lock_key
from automation.models import Alert, AlertLog, AlertRule, WorkflowRun
from automation.runs.services import RunInsert
from automation.sql import run_statements


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class Observation:
    """What one evaluation (or one received alert) says about a fingerprint."""

    fingerprint: str
    name: str
    labels: Mapping[str, str]
    value: float | None
    #: The condition holds now, its duration (or `for`) met.
    holds: bool
    #: Since when the condition has held (None: it does not hold now).
    active_since: float | None
    origin: str = AlertOrigin.RULE
    severity: str = "medium"
    annotations: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Transition:
    alert: Alert
    before: str
    after: str


def log(
    alert: Alert,
    decision: str,
    now: float,
    *,
    receiver: str = "",
    run_id: Any = None,
    detail: str = "",
    once_key: str | None = None,
) -> bool:
    """Append to the notification log; with `once_key`, only the first call writes (False after that)."""
    entry = AlertLog(
        alert=alert,
        at=at(now),
        decision=decision,
        receiver=receiver,
        run_id=run_id,
        detail=detail,
        once_key=once_key,
    )
    if once_key is None:
        entry.save()
        return True
    if connection.vendor == "postgresql":
        return _insert_once(entry)
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        return False
    return True


def _insert_once(entry: AlertLog) -> bool:
    """`INSERT ... ON CONFLICT (once_key) DO NOTHING`: one statement where a savepoint around the insert
    takes three (the first caller writes; a concurrent one waits for it, as on the unique index)."""
    return _insert_unless_conflict(entry, "once_key") is not None


def _insert_sql(row: Any, unique: str) -> tuple[str, list[Any]]:
    """`INSERT ... ON CONFLICT (unique) DO NOTHING RETURNING pk` of `row` (every field but its primary
    key), and its parameters."""
    model = type(row)
    fields = _inserted(model)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    conflict = quote(str(model._meta.get_field(unique).column))
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(str(model._meta.pk.column))}"
    )
    return sql, [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]


def _insert_unless_conflict(row: Any, unique: str) -> Any:
    """Insert `row` (every field but its primary key) unless a row with the same `unique` exists: its new
    id, or None when it exists (nothing written)."""
    sql, params = _insert_sql(row, unique)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return None if found is None else found[0]


def _new_alert(observation: Observation, rule: AlertRule | None) -> Alert:
    return Alert(
        fingerprint=observation.fingerprint,
        rule=rule,
        name=observation.name,
        origin=observation.origin,
        severity=observation.severity,
        labels=dict(observation.labels),
        annotations=dict(observation.annotations or {}),
    )


def _locked(observation: Observation, rule: AlertRule | None) -> Alert:
    alert = Alert.objects.select_for_update().filter(fingerprint=observation.fingerprint).first()
    if alert is not None:
        return alert
    try:
        with transaction.atomic():
            # the row this transaction inserts is its own until it commits: no second read to lock it
            alert = _new_alert(observation, rule)
            alert.save(force_insert=True)
            return alert
    except IntegrityError:
        pass  # created meanwhile by another evaluator: lock that one
    return Alert.objects.select_for_update().get(fingerprint=observation.fingerprint)


def _insert_new(alert: Alert) -> bool:
    """Insert a new alert as observed, in one statement: `INSERT ... ON CONFLICT (fingerprint) DO
    NOTHING`. False when another caller created it meanwhile (nothing written: lock theirs instead)."""
    alert.updated_at = timezone.now()
    pk = _insert_unless_conflict(alert, "fingerprint")
    if pk is None:
        return False
    alert.pk = pk
    alert._state.adding = False
    return True


def observe(
    observation: Observation,
    now: float,
    *,
    rule: AlertRule | None = None,
    flap: FlapPolicy | None = None,
) -> Transition | None:
    """Apply one observation: the transition it causes, if this caller is the one that took it."""
    flap = flap or FlapPolicy()
    with transaction.atomic():
        alert = None
        if connection.vendor == "postgresql":
            alert = Alert.objects.select_for_update().filter(fingerprint=observation.fingerprint).first()
            if alert is None:
                # A new alert is written once, as observed (one statement, where creating it and then
                # updating it takes four); the row is this transaction's until it commits.
                fresh = _new_alert(observation, rule)
                before, after, _ = _apply(fresh, observation, now, flap)
                if _insert_new(fresh):
                    return _transition(fresh, before, after, observation, now)
        if alert is None:
            alert = _locked(observation, rule)
        if _later_known(alert, now):
            return None  # a late or redelivered evaluation: a later one already changed this alert
        if rule is not None and alert.rule_id is None:
            alert.rule = rule  # its rule was deleted and made again: the alert is the new rule's
            alert.save(update_fields=["rule"])
        before, after, fields = _apply(alert, observation, now, flap)
        alert.save(update_fields=fields)
        return _transition(alert, before, after, observation, now)


def _inserted(model: Any, *, skip: str = "") -> list[Any]:
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.name != skip]


def log_params(entry: AlertLog, prefix: str = "l") -> dict[str, Any]:
    """The parameters of `_log_insert_sql` for this log line."""
    return {
        f"{prefix}_{f.attname}": f.get_db_prep_save(getattr(entry, f.attname), connection)
        for f in _inserted(AlertLog, skip="alert")
    }


def _cast_type(field: Any) -> str:
    return "text" if isinstance(field, CharField | TextField) else str(field.cast_db_type(connection))


@cache
def log_insert_sql(source: str, prefix: str = "l") -> str:
    """`INSERT` of a log line (parameters `<prefix>_<field>`) for the alert whose `id` the CTE `source`
    returns, unless its `once_key` is logged already."""
    quote = connection.ops.quote_name
    log_fields = _inserted(AlertLog, skip="alert")
    columns = ", ".join(quote(str(f.column)) for f in [AlertLog._meta.get_field("alert"), *log_fields])
    # typed: in a SELECT list a parameter's type is not taken from the column it is inserted into. Text as
    # `text`: a CAST to varchar(n) would cut a value that is too long, where the column refuses it.
    typed = ", ".join(f"CAST(%({prefix}_{f.attname})s AS {_cast_type(f)})" for f in log_fields)
    return (
        f"INSERT INTO {quote(AlertLog._meta.db_table)} ({columns}) SELECT {source}.id, {typed} FROM {source} "
        f"ON CONFLICT ({quote('once_key')}) DO NOTHING"
    )


#: The advisory locks' namespace of firings (automation/locks.py), named by the firing's key: taken before
#: a firing's run is stored (`observe_if_new`, `lock_firing`) until the transaction ends, so the storing of
#: one firing's run is serialized across processes and across the rule's two workflows. A copy of the
#: alert planned under another level (direct against gated) sees the run a racing copy stored, once
#: committed, instead of storing a second one beside it; the idempotency key guards one workflow only.
FIRINGS = "alerting:firing"
FIRING_LOCK = "SELECT pg_advisory_xact_lock(CAST(%(firing_lock)s AS bigint))"

_OTHER_WORKFLOW_RUN = (
    "SELECT {select} FROM automation_workflowrun AS other "
    "WHERE other.idempotency_key = CAST({key} AS varchar) "
    "AND other.workflow_id IN (SELECT id FROM automation_workflow WHERE name = {workflow})"
)


def lock_firing(key: str, *, other_workflow: str, durable: bool = True) -> Any:
    """In the caller's transaction (which must be open): take the firing's lock, then the id of the run of
    `other_workflow` holding `key`, if any, read once the lock is held (one round trip). `durable=False`:
    the transaction, if the caller opened it for this (the outermost block), commits without waiting for
    the disk."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_firing takes a transaction-scoped lock: call it inside transaction.atomic()")
    other = _OTHER_WORKFLOW_RUN.format(select="other.id", key="%s", workflow="%s") + " LIMIT 1"
    row = lock(FIRINGS, [key], then=other, params=[key, other_workflow], durable=durable)
    return row[0] if row else None


#: Where the run of a first sight is stored (`StartWith`, after `FIRING_LOCK`): no alert holds the
#: fingerprint yet, the rule is still the version the run was planned from, and no run of the rule's other
#: workflow (gated or direct) holds the firing's key: a copy sent again after a crash, or racing this one,
#: under a level changed since, starts none.
FIRST_SIGHT_ONLY_IF = (
    "NOT EXISTS (SELECT 1 FROM automation_alert WHERE fingerprint = %(fingerprint)s) "
    "AND EXISTS (SELECT 1 FROM automation_alertrule "
    "WHERE id = %(rule_id)s AND name = %(rule)s AND updated_at = %(rule_stamp)s) "
    "AND NOT EXISTS ("
    + _OTHER_WORKFLOW_RUN.format(select="1", key="%(key)s", workflow="%(other_workflow)s")
    + ")"
)


@cache
def _first_sight_sql(logged: bool, with_run: bool = False) -> str:
    """The statement of `observe_if_new` (with the log line's insert when `logged`), built from the models;
    `with_run`: with the log line of the run the alert names (parameters `g_<field>`)."""
    quote = connection.ops.quote_name
    alert_fields = _inserted(Alert)
    values = ", ".join(
        "(SELECT id FROM r)" if f.name == "rule" else f"%(a_{f.attname})s" for f in alert_fields
    )
    log_insert = f", logged AS ({log_insert_sql('new')})" if logged else ""
    if with_run:
        log_insert += f", run_logged AS ({log_insert_sql('new', 'g')})"
    rule_columns = ", ".join(f"r.{quote(str(f.column))}" for f in AlertRule._meta.concrete_fields)
    return (
        f"WITH r AS (SELECT * FROM {quote(AlertRule._meta.db_table)} WHERE {quote('name')} = %(rule)s), "
        f"new AS (INSERT INTO {quote(Alert._meta.db_table)} "
        f"({', '.join(quote(str(f.column)) for f in alert_fields)}) VALUES ({values}) "
        f"ON CONFLICT ({quote('fingerprint')}) DO NOTHING RETURNING id){log_insert} "
        f"SELECT (SELECT id FROM new), {rule_columns}, a.state, a.fired_at FROM (SELECT 1) AS one "
        f"LEFT JOIN r ON true LEFT JOIN {quote(Alert._meta.db_table)} AS a ON a.fingerprint = %(fingerprint)s"
    )


@dataclass(frozen=True)
class StartWith:
    """The run a new alert's firing starts, stored and sent before the alert is (automation/alerting/
    services/pipeline.py `planned_start` plans it): the first step starts while the alert and its log are
    written. `insert` stores it only where `FIRST_SIGHT_ONLY_IF` holds for the rule version `rule` (id,
    updated_at); once stored, `send` sends it. Exactly once per firing all the same: the run's idempotency
    key is the firing's, and a copy of the alert racing this one stores no second run (the key holds)."""

    insert: RunInsert
    rule: tuple[Any, datetime]
    decision: str
    detail: str
    send: Callable[[WorkflowRun], Any]
    #: The rule's workflow this firing did not choose (the gated one for a direct run, and back).
    other_workflow: str = ""


@dataclass(frozen=True)
class FirstSight:
    """What `observe_if_new` found: the rule named after the alert, and either the new alert's transition
    or the state and firing start of the alert that exists."""

    rule: AlertRule | None
    #: The alert was new: inserted as observed, with the log line of its transition.
    transition: Transition | None = None
    #: (state, fired_at) of the alert found instead.
    found: tuple[str, datetime | None] | None = None
    #: The run of `StartWith` this call stored and sent, recorded on the alert if the alert was new (if
    #: it was not, its pipeline records it: the run holds the firing's key); None when it stored none.
    run: WorkflowRun | None = None


def observe_if_new(
    observation: Observation,
    now: float,
    *,
    rule_name: str,
    plan: Callable[[Alert], StartWith | None] | None = None,
) -> FirstSight:
    """Read the rule named `rule_name` and the alert of this fingerprint, and insert the alert as observed
    (with the log line of its transition) if there is none: one statement on PostgreSQL, where the reads,
    a locked read, two inserts and their transaction take seven round trips; when the alert exists (or on
    SQLite, where it only reads), nothing is written: observe it with `observe`.

    `plan`: given the new alert as it would be inserted, the run its firing starts (`StartWith`), stored
    and sent first, then recorded on the alert as it is inserted; None for none.

    Neither statement waits for the disk: the caller answers its sender only after a later commit that
    does (PostgreSQL writes its log in order: that commit writes these too), see
    automation/alerting/services/intake.py. A new alert's first change never makes it flapping, whatever
    the rule's policy: the policy is not needed to insert it.
    """
    if connection.vendor != "postgresql":
        found = Alert.objects.filter(fingerprint=observation.fingerprint).values_list("state", "fired_at")
        return FirstSight(rule=AlertRule.objects.filter(name=rule_name).first(), found=found.first())
    fresh = _new_alert(observation, None)
    before, after, _ = _apply(fresh, observation, now, FlapPolicy())
    fresh.updated_at = timezone.now()
    params: dict[str, Any] = {"rule": rule_name, "fingerprint": observation.fingerprint}
    start = plan(fresh) if plan is not None and after == AlertState.FIRING else None
    stored = None
    if start is not None:
        rule_id, stamp = start.rule
        guarded = {
            **start.insert.params,
            **params,
            "rule_id": rule_id,
            "rule_stamp": stamp,
            "other_workflow": start.other_workflow,
            "firing_lock": lock_key(FIRINGS, str(start.insert.params["key"])),
        }
        # The firing's lock first: the guard, a statement of its own, then sees a run a racing copy stored.
        statements = [FIRING_LOCK, *start.insert.statements]
        if run_statements(statements, guarded, durable=False):  # a row per step stored
            stored = start.insert.run
            stored._state.adding = False
            start.send(stored)
            fresh.last_run_id, fresh.last_run_at = stored.id, at(now)
    entry = _transition_entry(fresh, before, after, observation, now)
    for field in _inserted(Alert, skip="rule"):
        params[f"a_{field.attname}"] = field.get_db_prep_save(getattr(fresh, field.attname), connection)
    if entry is not None:
        params.update(log_params(entry))
    if start is not None and stored is not None:
        ran = AlertLog(
            alert=fresh,
            at=at(now),
            decision=start.decision,
            run_id=stored.id,
            detail=start.detail,
            once_key=f"run:{firing_key(fresh)}",
        )
        params.update(log_params(ran, "g"))
    rows = run_statements([_first_sight_sql(entry is not None, stored is not None)], params, durable=False)
    new_id, *row, state, fired_at = rows[0]
    rule = None
    if row[0] is not None:
        rule_fields = AlertRule._meta.concrete_fields
        converted = [
            f.from_db_value(v, None, connection) if v is not None and hasattr(f, "from_db_value") else v
            for f, v in zip(rule_fields, row, strict=True)
        ]
        rule = AlertRule.from_db(connection.alias, [f.attname for f in rule_fields], converted)
    if new_id is None:
        return FirstSight(rule=rule, found=None if state is None else (state, fired_at), run=stored)
    fresh.pk, fresh.rule = new_id, rule
    fresh._state.adding = False
    transition = Transition(fresh, before, after) if after != before else None
    return FirstSight(rule=rule, transition=transition, run=stored)


def _apply(
    alert: Alert, observation: Observation, now: float, flap: FlapPolicy
) -> tuple[str, str, list[str]]:
    """Apply the observation to the alert in memory: its state before and after, and the fields changed."""
    before = alert.state
    after = observed_state(before, holds=observation.holds, active_since=observation.active_since)
    fields = ["value", "labels", "annotations", "severity", "updated_at"]
    alert.value = observation.value
    alert.labels = dict(observation.labels)
    if observation.annotations is not None:
        alert.annotations = dict(observation.annotations)
    alert.severity = observation.severity
    if observation.holds or observation.active_since is not None:
        alert.last_seen_at = at(now)
        fields.append("last_seen_at")
    if after == before:
        return before, after, fields
    alert.state = after
    alert.active_since = at(observation.active_since) if observation.active_since is not None else None
    alert.changed_at = at(now)
    fields += ["state", "active_since", "changes", "flapping", "changed_at"]
    if after == AlertState.FIRING:
        alert.fired_at = alert.active_since or at(now)
        alert.resolved_at = None
        fields += ["fired_at", "resolved_at"]
    _changed(alert, now, flap)
    return before, after, [*fields, "flapping_since"]


def _transition_entry(
    alert: Alert, before: str, after: str, observation: Observation, now: float
) -> AlertLog | None:
    """The log line of the transition the observation caused (None when it caused none)."""
    if after == before:
        return None
    if after == AlertState.PENDING:
        since = observation.active_since or now
        decision, once_key = Decision.PENDING, f"pending:{alert.fingerprint}:{since:.3f}"
    else:
        decision, once_key = Decision.FIRED, _key("fired", alert)
    detail = f"value {observation.value}"
    return AlertLog(alert=alert, at=at(now), decision=decision, detail=detail, once_key=once_key)


def _transition(
    alert: Alert, before: str, after: str, observation: Observation, now: float
) -> Transition | None:
    """Log the transition the observation caused (None when it caused none)."""
    entry = _transition_entry(alert, before, after, observation, now)
    if entry is None:
        return None
    log(alert, entry.decision, now, detail=entry.detail, once_key=entry.once_key)
    return Transition(alert, before, after)


def expire(
    fingerprint: str, now: float, *, keep_firing_for: float = 0.0, flap: FlapPolicy | None = None
) -> Transition | None:
    """The condition no longer holds for `fingerprint`: pending → inactive at once; firing → resolved once
    `keep_firing_for` has passed since it last held."""
    flap = flap or FlapPolicy()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(fingerprint=fingerprint).first()
        if alert is None or alert.state not in AlertState.ACTIVE or _later_known(alert, now):
            return None
        before = alert.state
        if before == AlertState.FIRING:
            last = alert.last_seen_at.timestamp() if alert.last_seen_at else None
            if not resolves(last, now, keep_firing_for):
                return None
            alert.state = AlertState.RESOLVED
            alert.resolved_at = at(now)
            _changed(alert, now, flap)
        else:
            alert.state = AlertState.INACTIVE
        alert.active_since = None
        alert.changed_at = at(now)
        alert.save(
            update_fields=[
                "state",
                "resolved_at",
                "active_since",
                "changes",
                "flapping",
                "flapping_since",
                "changed_at",
                "updated_at",
            ]
        )
        if alert.state == AlertState.RESOLVED:
            log(alert, Decision.RESOLVED, now, once_key=_key("resolved", alert))
        return Transition(alert, before, alert.state)


def _later_known(alert: Alert, now: float) -> bool:
    """Whether the alert changed, or its condition was seen holding, after `now`: then an observation
    at `now` (a redelivered message, a backlog's older batch, a second Beat's) is older news and changes
    nothing, or it would bring back an alert a later evaluation resolved."""
    moments = (alert.changed_at, alert.last_seen_at)
    return any(m is not None and m.timestamp() > now + 0.001 for m in moments)


def _changed(alert: Alert, now: float, flap: FlapPolicy) -> None:
    """Record a state change; start or end a flapping spell."""
    alert.changes, flapping = record_change(alert.changes, now, flap)
    if flapping and not alert.flapping:
        alert.flapping_since = at(now)
    alert.flapping = flapping


def settle_flapping(alert: Alert, now: float, flap: FlapPolicy) -> bool:
    """A flapping alert whose changes have left the window is flapping no more (checked while it is
    steady, when no transition recomputes it); returns whether it changed."""
    if not alert.flapping or flap.is_flapping(alert.changes, now):
        return False
    updated = Alert.objects.filter(pk=alert.pk, flapping=True).update(flapping=False)
    alert.flapping = False
    if updated:
        log(alert, Decision.HELD, now, detail="no longer flapping: notified as it is now")
    return bool(updated)


def _key(kind: str, alert: Alert) -> str:
    started = alert.fired_at.timestamp() if alert.fired_at else 0.0
    return f"{kind}:{alert.fingerprint}:{started:.3f}"


def firing_key(alert: Alert) -> str:
    """Names one firing of one alert: the idempotency key of the run it starts, and of its log lines."""
    return _key("firing", alert)


def record_run(alert: Alert, run_id: Any, now: float, *, decision: str, detail: str, once_key: str) -> None:
    """Record the run a firing started on its alert, and the decision in the log (once per `once_key`),
    in one transaction that waits for the disk: one statement on PostgreSQL."""
    entry = AlertLog(
        alert=alert, at=at(now), decision=decision, run_id=run_id, detail=detail, once_key=once_key
    )
    if connection.vendor == "postgresql":
        run_statements([_record_run_sql()], {"alert": alert.pk, **log_params(entry)})
    else:
        with transaction.atomic():
            Alert.objects.filter(pk=alert.pk).update(last_run_id=run_id, last_run_at=at(now))
            log(alert, decision, now, run_id=run_id, detail=detail, once_key=once_key)
    alert.last_run_id = run_id
    alert.last_run_at = at(now)


@cache
def _record_run_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"WITH recorded AS (UPDATE {quote(Alert._meta.db_table)} "
        f"SET {quote('last_run_id')} = %(l_run_id)s, {quote('last_run_at')} = %(l_at)s "
        f"WHERE id = %(alert)s RETURNING id) {log_insert_sql('recorded')}"
    )


_NONE: frozenset[str] = frozenset()
#: Deferred observations written per statement.
_TOUCH_CHUNK = 2000
#: Decoded label and annotation sets by their JSON text: an alert's are the same tick after tick.
_decoded: dict[str, Mapping[str, str]] = {}
_DECODED_MAX = 200_000


def _decode(text: str) -> Mapping[str, str]:
    found = _decoded.get(text)
    if found is None:
        if len(_decoded) >= _DECODED_MAX:
            _decoded.clear()
        found = _decoded[text] = json.loads(text)
    return found


class ActiveAlerts:
    """The active (pending, firing) alerts of some rules' own evaluations (not alerts received and handled
    by a rule of the same name) as stored when a batch of evaluations starts, and
    the observations that change nothing but an alert's value and `last_seen_at` (same state, labels,
    annotations, severity): `flush` writes those together, each guarded by the state it was judged
    against, instead of one locked read and save per alert per tick. What `observe` would write, and
    when, is unchanged; only the statements are fewer."""

    def __init__(self, rule_ids: Iterable[int | None]) -> None:
        ids = [rule_id for rule_id in rule_ids if rule_id is not None]
        columns = ("fingerprint", "rule_id", "state", "labels_text", "notes_text", "severity")
        rows: Iterable[tuple[Any, ...]]
        if connection.vendor == "postgresql":  # one array parameter, not one placeholder per rule
            table = connection.ops.quote_name(Alert._meta.db_table)
            with connection.cursor() as cursor:
                # a join on the unnested ids, not `rule_id = ANY(ids)`: PostgreSQL tests that filter
                # against the whole array for each row (10,000 rules: 110 ms; joined: 9 ms)
                cursor.execute(
                    "SELECT a.fingerprint, a.rule_id, a.state, a.labels::text, a.annotations::text, "
                    f"a.severity FROM {table} AS a JOIN unnest(%s::bigint[]) AS r(id) ON a.rule_id = r.id "
                    "WHERE a.state = ANY(%s) AND a.origin = %s",
                    [ids, list(AlertState.ACTIVE), AlertOrigin.RULE],
                )
                rows = cursor.fetchall()
        else:
            rows = (
                Alert.objects.filter(rule_id__in=ids, state__in=AlertState.ACTIVE, origin=AlertOrigin.RULE)
                .annotate(labels_text=Cast("labels", TextField()))
                .annotate(notes_text=Cast("annotations", TextField()))
                .values_list(*columns)
            )
        self._stored: dict[str, tuple[str, Mapping[str, str], Mapping[str, str], str]] = {}
        self._of_rule: dict[int, set[str]] = {}
        for fingerprint, rule_id, state, labels, notes, severity in rows:
            self._stored[fingerprint] = (state, _decode(labels), _decode(notes), severity)
            self._of_rule.setdefault(rule_id, set()).add(fingerprint)
        self._deferred: list[tuple[Observation, str, Any]] = []

    def of_rule(self, rule_id: int | None) -> frozenset[str] | set[str]:
        """Fingerprints of the rule's alerts that were active when the batch started (do not change it)."""
        return self._of_rule.get(rule_id, _NONE) if rule_id is not None else _NONE

    def unchanged(self, observation: Observation) -> bool:
        """Whether `observe` would take no transition and write nothing but value and last_seen_at."""
        stored = self._stored.get(observation.fingerprint)
        if stored is None or (not observation.holds and observation.active_since is None):
            return False
        state, labels, notes, severity = stored
        held = observation.holds or state == AlertState.FIRING
        return (
            state == (AlertState.FIRING if held else AlertState.PENDING)
            and labels == observation.labels
            and severity == observation.severity
            and (observation.annotations is None or notes == observation.annotations)
        )

    def defer(self, observation: Observation, context: Any = None) -> None:
        """Write this unchanged observation at `flush`; `context` comes back if it cannot be."""
        self._deferred.append((observation, self._stored[observation.fingerprint][0], context))

    def flush(self, now: float) -> list[tuple[Observation, Any]]:
        """Write value and last_seen_at of every deferred observation whose alert is still in the state it
        was judged against; returns the others (a transition was taken meanwhile) with their context:
        observe them."""
        deferred, self._deferred = self._deferred, []
        written: set[tuple[str, str]] = set()
        for offset in range(0, len(deferred), _TOUCH_CHUNK):
            written |= _touch(deferred[offset : offset + _TOUCH_CHUNK], now)
        return [(obs, context) for obs, state, context in deferred if (obs.fingerprint, state) not in written]


def _touch(deferred: list[tuple[Observation, str, Any]], now: float) -> set[tuple[str, str]]:
    """One guarded update of value, last_seen_at and updated_at; the (fingerprint, state) pairs written."""
    seen, changed = at(now), timezone.now()
    if connection.vendor != "postgresql":
        written = set()
        for obs, state, _ in deferred:
            if Alert.objects.filter(fingerprint=obs.fingerprint, state=state).update(
                value=obs.value, last_seen_at=seen, updated_at=changed
            ):
                written.add((obs.fingerprint, state))
        return written
    table = connection.ops.quote_name(Alert._meta.db_table)
    columns = [[obs.fingerprint for obs, _, _ in deferred], [state for _, state, _ in deferred]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS a SET value = v.value, last_seen_at = %s, updated_at = %s "
            "FROM unnest(%s::text[], %s::text[], %s::double precision[]) AS v(fingerprint, state, value) "
            "WHERE a.fingerprint = v.fingerprint AND a.state = v.state "
            "RETURNING a.fingerprint, a.state",
            [seen, changed, *columns, [obs.value for obs, _, _ in deferred]],
        )
        return {(fingerprint, state) for fingerprint, state in cursor.fetchall()}
