"""Replay alert rules over recorded series with a simulated clock, and report what would have happened:
firings, the notifications that survive suppression, the remediation runs that would have started.

Pure (no database, nothing sent, no run started), and made of the engine's own parts:

- each rule is judged by `rules.evaluate` at each simulated instant, reading only the data up to that
  instant (the source is cut there), with one anomaly scorer for the whole backtest;
- the outcomes go through the lifecycle of `lifecycle.py` (pending, firing, `keep_firing_for`, resolved;
  flap damping with the rule's `FlapPolicy`), then the pipeline in the order of `services/pipeline.py`:
  flapping, inhibition (`inhibition.py`), silences (`silencing.py`), remediation (cooldown and automation
  level, `remediation.py`), routing (`routing.destinations`) and grouping, flushed when
  `grouping.due` says so (group_wait, group_interval, repeat_interval).

Evaluations happen every `interval` from `start` to `end` (like Beat's evaluation tick); groups are flushed
after each evaluation and every `flush_interval` in between (like Beat's flush job), so notification times
are exact to within `flush_interval`. What the backtest cannot judge without the engine: whether a run's
workflow exists and its inputs render (a refused run shows here as started), and silences other than those
passed in.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from automation.alerting.choices import AlertState, Decision
from automation.alerting.definitions import AlertingDocument, RuleDefinition
from automation.alerting.flapping import FlapPolicy
from automation.alerting.grouping import GroupState, Member, due
from automation.alerting.inhibition import FiringAlert, InhibitRule, inhibited_by
from automation.alerting.lifecycle import observed_state, record_change, resolves
from automation.alerting.matchers import alert_fingerprint
from automation.alerting.remediation import in_cooldown, is_gated, outside_remediate_when, run_workflow_name
from automation.alerting.routing import Destination, Route, destinations
from automation.alerting.rules import (
    AnomalyScorer,
    ForecastAnomalyScorer,
    Outcome,
    Rule,
    evaluate,
    parse_rule,
)
from automation.alerting.rules.ast import Anomaly, Comparison
from automation.alerting.series import Matcher, MetricSource, Sample, Selector, Series
from automation.alerting.silencing import ActiveSilence, silenced_by
from automation.alerting.sources.memory import MemorySource
from automation.choices import AutomationLevel
from automation.errors import DefinitionError

#: How often Beat flushes notification groups (beat_schedule.FLUSH_INTERVAL's default).
DEFAULT_FLUSH_INTERVAL = 5.0


@dataclass
class Firing:
    """One firing of one alert. `start` is the firing's start as the engine records it (since when the
    condition held, its duration included); `detected_at` the evaluation that made it fire; `end` when it
    resolved (None: still firing when the backtest ended)."""

    rule: str
    fingerprint: str
    labels: dict[str, str]
    start: float
    detected_at: float
    end: float | None = None
    #: Held as flapping when it fired: no run, no notification while it flaps.
    flapping: bool = False


@dataclass(frozen=True)
class Notification:
    """One notification a receiver would have got: a group's firing alerts and its newly resolved ones."""

    at: float
    receiver: str
    route: str
    group_labels: dict[str, str]
    sequence: int
    firing: tuple[str, ...]
    resolved: tuple[str, ...]


@dataclass(frozen=True)
class WorkflowRun:
    """A remediation run a firing would have started; `gated`: behind an approval (automation level)."""

    rule: str
    fingerprint: str
    at: float
    workflow: str
    gated: bool


@dataclass(frozen=True)
class LogEntry:
    """A line of the simulated notification log (the decisions of `choices.Decision`)."""

    at: float
    fingerprint: str
    decision: str
    receiver: str = ""
    detail: str = ""


@dataclass
class RuleReport:
    rule: str
    condition: str
    firings: list[Firing] = field(default_factory=list)
    #: The notifications carrying at least one of this rule's alerts.
    notifications: list[Notification] = field(default_factory=list)
    runs: list[WorkflowRun] = field(default_factory=list)
    #: How often each decision was logged for this rule's alerts.
    decisions: Counter[str] = field(default_factory=Counter)


@dataclass
class BacktestResult:
    start: float
    end: float
    interval: float
    level: str
    evaluations: int
    rules: dict[str, RuleReport]
    notifications: list[Notification]
    log: list[LogEntry]
    #: Rules that cannot be replayed, and why (PromQL `expr`, handlers of received alerts).
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Alert:
    """An alert's state as `models.Alert` holds it, for the simulated clock."""

    fingerprint: str
    rule: RuleDefinition
    labels: dict[str, str]
    state: str = AlertState.INACTIVE
    active_since: float | None = None
    fired_at: float | None = None
    last_seen_at: float | None = None
    changes: list[float] = field(default_factory=list)
    flapping: bool = False
    flapping_since: float | None = None
    last_run_at: float | None = None
    firing: Firing | None = None


@dataclass
class _Group:
    destination: Destination
    members: dict[str, None] = field(default_factory=dict)  # fingerprints, in joining order
    state: GroupState = field(default_factory=GroupState)
    sequence: int = 0


class _Until:
    """A source cut at `now`: an evaluation at `now` never reads a later sample."""

    def __init__(self, source: MetricSource) -> None:
        self.source = source
        self.name = source.name
        self.now = -math.inf

    def select(self, selector: Selector, start: float, end: float) -> Sequence[Series]:
        return self.source.select(selector, start, min(end, self.now))


def evaluation_times(start: float, end: float, interval: float) -> list[float]:
    """`start`, `start + interval`, ... up to `end` (inclusive)."""
    if interval <= 0:
        raise DefinitionError([("interval", "must be more than 0 seconds")])
    count = math.floor((end - start) / interval + 1e-9) + 1
    return [start + k * interval for k in range(max(count, 0))]


def parse_rules(
    definitions: Iterable[RuleDefinition],
) -> tuple[list[tuple[RuleDefinition, Rule]], dict[str, str]]:
    """The rules a backtest replays (parsed, by name) and those it skips, with why. A condition that does not
    parse is a `DefinitionError` naming the rule."""
    parsed: list[tuple[RuleDefinition, Rule]] = []
    skipped: dict[str, str] = {}
    names: set[str] = set()
    for definition in definitions:
        if definition.name in names:
            raise DefinitionError([(definition.name, "two rules have this name")])
        names.add(definition.name)
        if definition.condition is None:
            skipped[definition.name] = (
                "its `expr` is PromQL, evaluated by Prometheus"
                if definition.expr is not None
                else "it has no condition: it handles alerts received by its name"
            )
            continue
        parsed.append((definition, parse_rule(definition.condition, field=f"{definition.name}.condition")))
    return sorted(parsed, key=lambda pair: pair[0].name), skipped


def backtest(
    rules: Sequence[RuleDefinition],
    source: MetricSource,
    *,
    start: float,
    end: float,
    interval: float,
    document: AlertingDocument | None = None,
    level: AutomationLevel = AutomationLevel.SUPERVISED,
    silences: Sequence[ActiveSilence] = (),
    scorer: AnomalyScorer | None = None,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
) -> BacktestResult:
    """Replay `rules` over `source` from `start` to `end`, evaluating every `interval` seconds.

    `document` gives the routes, receivers and inhibition rules (the default document: everything to the
    `log` receiver, grouped by alertname); `level` the automation level runs start at (the engine's default,
    `supervised`, gates every run); `scorer` serves `anomaly()` (a new `ForecastAnomalyScorer` unless given:
    one per backtest, so its fits are reused from one instant to the next)."""
    parsed, skipped = parse_rules(rules)
    replay = _Replay(
        parsed,
        document or AlertingDocument(),
        level=level,
        silences=silences,
        flush_interval=flush_interval,
        start=start,
    )
    times = evaluation_times(start, end, interval)
    cut = _Until(source)
    judge = scorer if scorer is not None else ForecastAnomalyScorer()
    for index, now in enumerate(times):
        cut.now = now
        for definition, rule in parsed:
            replay.apply(definition, evaluate(rule, cut, now, scorer=judge), now)
        replay.flush_all(now)
        following = times[index + 1] if index + 1 < len(times) else None
        if following is not None:
            replay.flush_between(now, following)
    result = replay.result(start=start, end=end, interval=interval, evaluations=len(times))
    result.skipped = skipped
    return result


class _Replay:
    """The lifecycle and the pipeline on in-memory alerts and groups, in the order the services run them."""

    def __init__(
        self,
        rules: Sequence[tuple[RuleDefinition, Rule]],
        document: AlertingDocument,
        *,
        level: AutomationLevel,
        silences: Sequence[ActiveSilence],
        flush_interval: float,
        start: float,
    ) -> None:
        if flush_interval <= 0:
            raise DefinitionError([("flush_interval", "must be more than 0 seconds")])
        self.document = document
        self.route: Route = document.route.build()
        self.inhibit_rules = [
            InhibitRule(r.source_matchers, r.target_matchers, r.equal) for r in document.inhibit_rules
        ]
        self.level = level
        self.silences = list(silences)
        self.flush_interval = flush_interval
        self.origin = start
        self.alerts: dict[str, _Alert] = {}
        self.groups: dict[str, _Group] = {}
        self.log_entries: list[LogEntry] = []
        self.notifications: list[Notification] = []
        self.runs: list[WorkflowRun] = []
        self.firings: list[Firing] = []
        self.flapping_spells: set[tuple[str, float]] = set()
        #: Flapping spells already carried by a notification (each is notified once).
        self.flapping_notified: set[tuple[str, float]] = set()
        self.muted_once: set[tuple[str, str, str, float | None]] = set()
        self.reports = {d.name: RuleReport(d.name, d.condition or "") for d, _ in rules}

    # -- evaluation: services/evaluation.evaluate_rule ----------------------------------------------------

    def apply(self, definition: RuleDefinition, outcomes: Sequence[Outcome], now: float) -> None:
        flap = FlapPolicy(definition.flap.changes, definition.flap.window)
        seen: set[str] = set()
        for outcome in outcomes:
            if outcome.active_since is None and not outcome.holds:
                continue
            fingerprint = alert_fingerprint(definition.name, outcome.labels)
            seen.add(fingerprint)
            alert = self.alerts.get(fingerprint)
            if alert is None:
                labels = {
                    **outcome.labels,
                    **definition.labels,
                    "alertname": definition.name,
                    "severity": definition.severity.value,
                }
                alert = self.alerts[fingerprint] = _Alert(fingerprint, definition, labels)
            if self._observe(alert, outcome, now, flap) == AlertState.FIRING:
                self._on_fired(alert, now)
        for alert in self.alerts.values():
            if alert.rule.name != definition.name or alert.fingerprint in seen:
                continue
            if self._expire(alert, now, definition.keep_firing_for, flap) == AlertState.RESOLVED:
                self._route(alert, now)  # on_resolved

    def _observe(self, alert: _Alert, outcome: Outcome, now: float, flap: FlapPolicy) -> str | None:
        """services/alerts.observe: the state entered, if it changed."""
        before = alert.state
        after = observed_state(before, holds=outcome.holds, active_since=outcome.active_since)
        alert.last_seen_at = now  # the condition holds, with or without its duration
        if after == before:
            return None
        alert.state = after
        alert.active_since = outcome.active_since
        if after == AlertState.FIRING:
            alert.fired_at = outcome.active_since or now
        alert.changes, flapping = record_change(alert.changes, now, flap)
        if flapping and not alert.flapping:
            alert.flapping_since = now
        alert.flapping = flapping
        if after == AlertState.FIRING:
            assert alert.fired_at is not None
            alert.firing = Firing(
                alert.rule.name, alert.fingerprint, dict(alert.labels), alert.fired_at, now, flapping=flapping
            )
            self.firings.append(alert.firing)
            self._log(alert, Decision.FIRED, now, detail=f"value {outcome.value}")
        else:
            self._log(alert, Decision.PENDING, now, detail=f"value {outcome.value}")
        return after

    def _expire(self, alert: _Alert, now: float, keep_firing_for: float, flap: FlapPolicy) -> str | None:
        """services/alerts.expire: pending → inactive at once; firing → resolved after keep_firing_for."""
        if alert.state not in AlertState.ACTIVE:
            return None
        if alert.state == AlertState.FIRING:
            if not resolves(alert.last_seen_at, now, keep_firing_for):
                return None
            alert.state = AlertState.RESOLVED
            alert.changes, alert.flapping = record_change(alert.changes, now, flap)
            if alert.firing is not None:
                alert.firing.end = now
            self._log(alert, Decision.RESOLVED, now)
        else:
            alert.state = AlertState.INACTIVE
        alert.active_since = None
        return alert.state

    # -- the pipeline: services/pipeline.py ---------------------------------------------------------------

    def _on_fired(self, alert: _Alert, now: float) -> None:
        if alert.flapping:
            self._log(alert, Decision.FLAPPING, now, detail="held: too many state changes")
            spell = (alert.fingerprint, alert.flapping_since or 0.0)
            if spell not in self.flapping_spells:
                self.flapping_spells.add(spell)
                self._log(alert, Decision.HELD, now, detail="flapping: notified once for this spell")
                self._route(alert, now)
            return
        muted = self._muted(alert, now)
        if muted is not None:
            self._log(alert, muted[0], now, detail=muted[1])
            return
        self._remediate(alert, now)
        self._route(alert, now)

    def _muted(self, alert: _Alert, now: float) -> tuple[str, str] | None:
        if self.inhibit_rules:
            firing = [
                FiringAlert(a.fingerprint, a.labels)
                for a in self.alerts.values()
                if a.state == AlertState.FIRING and not a.flapping
            ]
            source = inhibited_by(alert.fingerprint, alert.labels, firing, self.inhibit_rules)
            if source is not None:
                return Decision.INHIBITED, f"inhibited by alert {source}"
        silence = silenced_by(alert.labels, self.silences, now)
        if silence is not None:
            return Decision.SILENCED, f"silenced by {silence}"
        return None

    def _remediate(self, alert: _Alert, now: float) -> None:
        rule = alert.rule
        if not rule.actions and rule.workflow is None:
            return
        outside = outside_remediate_when(rule, alert.labels)
        if outside is not None:
            self._log(alert, Decision.WORKFLOW_REFUSED, now, detail=outside)
            return
        if in_cooldown(alert.last_run_at, now, rule.cooldown_period):
            since = now - (alert.last_run_at or now)
            detail = f"a run started {since:.0f} s ago, cooldown {rule.cooldown_period:.0f}"
            self._log(alert, Decision.COOLDOWN, now, detail=detail)
            return
        if self.level == AutomationLevel.MANUAL:
            self._log(alert, Decision.NOT_AUTOMATED, now, detail="level manual: notify only")
            return
        gated = is_gated(self.level, rule.severity.value)
        run = WorkflowRun(rule.name, alert.fingerprint, now, run_workflow_name(rule, gated=gated), gated)
        self.runs.append(run)
        alert.last_run_at = now
        decision = Decision.APPROVAL_REQUIRED if gated else Decision.WORKFLOW_STARTED
        self._log(alert, decision, now, detail=f"level {self.level.value}: {run.workflow}")

    def _route(self, alert: _Alert, now: float) -> None:
        found = destinations(self.route, alert.labels)
        if not found:
            self._log(alert, Decision.NO_ROUTE, now)
            return
        for destination in found:
            group = self.groups.get(destination.group_key)
            if group is None:
                group = self.groups[destination.group_key] = _Group(destination)
            group.members[alert.fingerprint] = None
            if group.state.waiting_since is None:
                group.state = replace(group.state, waiting_since=now)
            self._log(
                alert, Decision.HELD, now, receiver=destination.receiver, detail=f"group {group_name(group)}"
            )

    # -- flushing: services/groups.flush ------------------------------------------------------------------

    def flush_all(self, now: float) -> int:
        return sum(self._flush(group, now) for group in list(self.groups.values()) if group.members)

    def flush_between(self, after: float, before: float) -> None:
        """Beat's flush job between two evaluations: groups change only when flushed, so only the ticks at
        which a group may come due (or a silence starts or ends) are visited."""
        while True:
            sent = False
            for tick in self._candidate_ticks(after, before):
                if self.flush_all(tick):
                    after, sent = tick, True
                    break
            if not sent:
                return

    def _candidate_ticks(self, after: float, before: float) -> list[float]:
        moments: set[float] = set()
        for group in self.groups.values():
            if not group.members:
                continue
            timings = group.destination.timings
            state = group.state
            if state.last_notified_at is None:
                moments.add((state.waiting_since or after) + timings.group_wait)
            else:
                moments.add(state.last_notified_at + timings.group_interval)
                moments.add(state.last_notified_at + timings.repeat_interval)
        for silence in self.silences:
            moments.update((silence.starts_at, silence.ends_at))
        ticks = {self._tick_at_or_after(moment) for moment in moments}
        return sorted(t for t in ticks if after < t < before)

    def _tick_at_or_after(self, moment: float) -> float:
        steps = math.ceil((moment - self.origin) / self.flush_interval - 1e-9)
        return self.origin + steps * self.flush_interval

    def _flush(self, group: _Group, now: float) -> bool:
        receiver = self.document.receiver(group.destination.receiver)
        members = [self.alerts[fp] for fp in group.members]
        if receiver is not None and not receiver.send_resolved:
            members = [a for a in members if a.state == AlertState.FIRING]
        audible: list[_Alert] = []
        for alert in members:
            muted = self._muted(alert, now) if alert.state == AlertState.FIRING else None
            spell = (alert.fingerprint, alert.flapping_since or 0.0)
            if muted is None and (not alert.flapping or spell not in self.flapping_notified):
                audible.append(alert)
            elif muted is not None:
                once = (muted[0], group.destination.group_key, alert.fingerprint, alert.fired_at)
                if once not in self.muted_once:
                    self.muted_once.add(once)
                    self._log(alert, muted[0], now, receiver=group.destination.receiver, detail=muted[1])
        counted = [a for a in audible if a.state in (AlertState.FIRING, AlertState.RESOLVED)]
        is_due, content = due(
            group.state,
            [Member(a.fingerprint, a.state == AlertState.FIRING, a.fired_at) for a in counted],
            now,
            group.destination.timings,
        )
        if not is_due:
            return False
        group.sequence += 1
        group.state = GroupState(waiting_since=None, last_notified_at=now, last_digest=content)
        notification = Notification(
            at=now,
            receiver=group.destination.receiver,
            route=group.destination.route,
            group_labels=dict(group.destination.group_labels),
            sequence=group.sequence,
            firing=tuple(a.fingerprint for a in counted if a.state == AlertState.FIRING),
            resolved=tuple(a.fingerprint for a in counted if a.state == AlertState.RESOLVED),
        )
        self.notifications.append(notification)
        for alert in audible:
            self._log(
                alert,
                Decision.NOTIFIED,
                now,
                receiver=group.destination.receiver,
                detail=f"group {group_name(group)} notification {group.sequence} ({alert.state})",
            )
            if alert.flapping:
                self.flapping_notified.add((alert.fingerprint, alert.flapping_since or 0.0))
        group.members = {fp: None for fp in group.members if self.alerts[fp].state == AlertState.FIRING}
        if not group.members:
            group.state = GroupState()  # an empty group starts over: the next alert waits group_wait
        return True

    # -- bookkeeping --------------------------------------------------------------------------------------

    def _log(self, alert: _Alert, decision: str, now: float, *, receiver: str = "", detail: str = "") -> None:
        self.log_entries.append(LogEntry(now, alert.fingerprint, decision, receiver, detail))
        report = self.reports.get(alert.rule.name)
        if report is not None:
            report.decisions[decision] += 1

    def result(self, *, start: float, end: float, interval: float, evaluations: int) -> BacktestResult:
        rule_of = {a.fingerprint: a.rule.name for a in self.alerts.values()}
        for firing in self.firings:
            self.reports[firing.rule].firings.append(firing)
        for run in self.runs:
            self.reports[run.rule].runs.append(run)
        for notification in self.notifications:
            for name in sorted({rule_of[fp] for fp in (*notification.firing, *notification.resolved)}):
                self.reports[name].notifications.append(notification)
        return BacktestResult(
            start=start,
            end=end,
            interval=interval,
            level=self.level.value,
            evaluations=evaluations,
            rules=self.reports,
            notifications=self.notifications,
            log=self.log_entries,
        )


def trace_series(
    times: Sequence[float], values: Sequence[float], *, metric: str, labels: Mapping[str, str]
) -> Series:
    """A recorded trace as one series (rows without a value left out: missing, like a failed scrape)."""
    return Series.of(
        metric,
        labels,
        (Sample(float(t), float(v)) for t, v in zip(times, values, strict=True) if not math.isnan(v)),
    )


def sampling_interval(times: Sequence[float]) -> float:
    """The median spacing of the samples (the default evaluation step)."""
    ordered = sorted(times)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False) if b > a]
    if not gaps:
        raise DefinitionError([("trace", "cannot tell the sampling interval: pass --interval")])
    return float(statistics.median(gaps))


def anomaly_scores(
    series: Series, at: Sequence[float], *, scorer: AnomalyScorer | None = None
) -> list[float]:
    """What `anomaly()` of this series is at each instant of `at` (in order, each judged from the data up
    to it): the evaluator's own value of `anomaly(SEL) >= 0`; NaN where it has none (stale, or not judged
    yet)."""
    selector = Selector(series.metric, tuple(Matcher(k, "=", v) for k, v in series.labels))
    rule = Rule.of(f"anomaly({selector}) >= 0", Comparison(Anomaly(selector, 1), ">=", 0.0, 1))
    cut = _Until(MemorySource([series], name="trace"))
    judge = scorer if scorer is not None else ForecastAnomalyScorer()
    found = []
    for now in at:
        cut.now = now
        outcomes = evaluate(rule, cut, now, scorer=judge)
        found.append(outcomes[0].value if outcomes else math.nan)
    return found


def group_name(group: _Group) -> str:
    labels = ",".join(f"{k}={v}" for k, v in group.destination.group_labels)
    return f"{group.destination.receiver}/{group.destination.route}{{{labels}}}"


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_json(result: BacktestResult, *, with_log: bool = False) -> dict[str, Any]:
    """The backtest as JSON-able data (times in ISO 8601, UTC)."""

    def notification(n: Notification) -> dict[str, Any]:
        return {
            "at": iso(n.at),
            "receiver": n.receiver,
            "route": n.route,
            "group_labels": n.group_labels,
            "sequence": n.sequence,
            "firing": list(n.firing),
            "resolved": list(n.resolved),
        }

    rules = {}
    for name, report in result.rules.items():
        rules[name] = {
            "condition": report.condition,
            "firings": [
                {
                    "fingerprint": f.fingerprint,
                    "labels": f.labels,
                    "start": iso(f.start),
                    "detected_at": iso(f.detected_at),
                    "end": iso(f.end),
                    "flapping": f.flapping,
                }
                for f in report.firings
            ],
            "notifications": [notification(n) for n in report.notifications],
            "runs": [
                {"at": iso(r.at), "fingerprint": r.fingerprint, "workflow": r.workflow, "gated": r.gated}
                for r in report.runs
            ],
            "decisions": dict(sorted(report.decisions.items())),
        }
    payload: dict[str, Any] = {
        "start": iso(result.start),
        "end": iso(result.end),
        "interval_seconds": result.interval,
        "evaluations": result.evaluations,
        "level": result.level,
        "rules": rules,
        "skipped": result.skipped,
        "notifications": len(result.notifications),
    }
    if with_log:
        payload["log"] = [
            {
                "at": iso(e.at),
                "fingerprint": e.fingerprint,
                "decision": e.decision,
                "receiver": e.receiver,
                "detail": e.detail,
            }
            for e in result.log
        ]
    return payload
