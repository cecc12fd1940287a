"""Evaluations of rules at one time: read the data, apply the outcomes as transitions, and run the pipeline
for the transitions this caller took. The same data and `now` give the same transitions whoever evaluates
(the condition's duration is judged from the samples), so a restarted or second evaluator, a retried tick
and a backtest agree.

A tick evaluates its rules in batches (`evaluate_rules`): the push rules of a batch share one `PushSource`
that loads each metric once, the batch's active alerts are read in one query, and alerts whose state does
not change get their value and last_seen_at written together at the end of the batch.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automation.alerting.choices import AlertState, SourceKind
from automation.alerting.definitions import RuleDefinition
from automation.alerting.flapping import FlapPolicy
from automation.alerting.matchers import alert_fingerprint
from automation.alerting.rules import Outcome, Rule, evaluate, parse_rule
from automation.alerting.series import MetricSource, Series
from automation.alerting.services.alerts import ActiveAlerts, Observation, Transition, expire, observe
from automation.alerting.services.pipeline import on_fired, on_resolved
from automation.errors import AutomationError, SourceError
from automation.models import AlertRule

logger = logging.getLogger("automation.alerting")


@dataclass
class EvaluationReport:
    rule: str
    series: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    #: Remediation runs started by this evaluation.
    runs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """As `dataclasses.asdict` (the lists shared, not copied): a tick builds thousands."""
        return {
            "rule": self.rule,
            "series": self.series,
            "fired": self.fired,
            "resolved": self.resolved,
            "pending": self.pending,
            "runs": self.runs,
        }


@dataclass(frozen=True)
class CompiledRule:
    """A stored rule (the instance compiled), its definition and its parsed condition (None for `expr`
    rules and handlers)."""

    rule: AlertRule
    definition: RuleDefinition
    condition: Rule | None
    flap: FlapPolicy


#: Compiled rules of this process, by (id, name, updated_at): a saved rule gets a new updated_at.
_compiled: dict[tuple[Any, str, datetime | None], CompiledRule] = {}
_compiled_lock = threading.Lock()
MAX_COMPILED = 100_000


def compile_rule(rule: AlertRule) -> CompiledRule:
    """The rule's definition and parsed condition, validated and parsed once per version of the rule."""
    key = (rule.pk, rule.name, rule.updated_at)
    found = _compiled.get(key) if rule.pk is not None else None
    if found is None:
        definition = RuleDefinition.model_validate(rule.document)
        condition = parse_rule(definition.condition) if definition.condition is not None else None
        flap = FlapPolicy(definition.flap.changes, definition.flap.window)
        found = CompiledRule(rule, definition, condition, flap)
        if rule.pk is not None:
            with _compiled_lock:
                if len(_compiled) >= MAX_COMPILED:
                    _compiled.clear()
                _compiled[key] = found
    return found


def stored_rules(
    versions: Sequence[tuple[Any, str, datetime | None]], skipped: list[dict[str, str]] | None = None
) -> list[AlertRule]:
    """The rules of these versions (id, name, updated_at), in that order: compiled already in this process,
    or read (documents included) in one query and compiled.

    A stored rule that no longer compiles (stored by an older version of the engine, edited in the
    database) is left out, instead of failing the evaluation of every other rule: `{"rule", "error"}` is
    appended to `skipped` for it, every time, and an error logged once per version and process. Its alerts
    keep their state until the rule is saved again (the API and the CLI validate it) or deleted.
    """
    missing = [version[0] for version in versions if version not in _compiled and version not in _invalid]
    fresh = {rule.pk: rule for rule in AlertRule.objects.filter(pk__in=missing)} if missing else {}
    found = []
    for pk, name, updated in versions:
        cached = _compiled.get((pk, name, updated))
        error = _invalid.get((pk, name, updated))
        if cached is None and error is None and pk in fresh:
            error = compile_error(fresh[pk])
        if error is not None:
            if skipped is not None:
                skipped.append({"rule": name, "error": f"stored rule invalid, not evaluated: {error}"})
            continue
        rule = cached.rule if cached is not None else fresh.get(pk)
        if rule is not None:  # deleted meanwhile: skipped
            found.append(rule)
    return found


#: Versions of stored rules that no longer compile (their error).
_invalid: dict[tuple[Any, str, datetime | None], str] = {}


def compile_error(rule: AlertRule) -> str | None:
    """None when the stored rule compiles; otherwise why not (logged once per version and process)."""
    key = (rule.pk, rule.name, rule.updated_at)
    if key in _invalid:
        return _invalid[key]
    try:
        compile_rule(rule)
    except (ValueError, AutomationError) as exc:  # pydantic's ValidationError is a ValueError
        error = f"{type(exc).__name__}: {exc}"
        with _compiled_lock:
            if len(_invalid) >= MAX_COMPILED:
                _invalid.clear()
            _invalid[key] = error
        logger.error("alerting: stored rule %s no longer validates, not evaluated: %s", rule.name, error)
        return error
    return None


def load_rules(skipped: list[dict[str, str]] | None = None, **filters: Any) -> list[AlertRule]:
    """The rules matching `filters`, by name, through `stored_rules` (only new versions are read whole;
    those that no longer compile are reported in `skipped`)."""
    return stored_rules(
        list(AlertRule.objects.filter(**filters).order_by("name").values_list("pk", "name", "updated_at")),
        skipped,
    )


def alert_labels(definition: RuleDefinition, labels: dict[str, str]) -> dict[str, str]:
    return {
        **labels,
        **definition.labels,
        "alertname": definition.name,
        "severity": definition.severity.value,
    }


@dataclass(frozen=True)
class _Context:
    """What applying a deferred observation needs, should its alert have changed meanwhile."""

    rule: AlertRule
    definition: RuleDefinition
    flap: FlapPolicy
    report: EvaluationReport


def evaluate_rule(
    rule: AlertRule, now: float, source: MetricSource, *, active: ActiveAlerts | None = None
) -> EvaluationReport:
    """Evaluate one rule. With `active` (a batch's snapshot), unchanged alerts are only deferred: the
    caller settles them (`settle`) once the batch is done; without, they are settled before returning."""
    own = active is None
    batch = ActiveAlerts([rule.pk]) if active is None else active
    report = _evaluate(rule, now, source, batch)
    if own:
        settle(batch, now)
    return report


def _evaluate(rule: AlertRule, now: float, source: MetricSource, active: ActiveAlerts) -> EvaluationReport:
    compiled = compile_rule(rule)
    definition = compiled.definition
    report = EvaluationReport(rule.name)
    if compiled.condition is not None:
        outcomes = evaluate(compiled.condition, source, now)
    elif definition.expr is not None:
        outcomes = promql_outcomes(source, definition.expr, definition.for_, now)
    else:
        return report  # a handler of received alerts: nothing to evaluate
    report.series = len(outcomes)
    flap = compiled.flap
    seen: set[str] = set()
    for outcome in outcomes:
        if outcome.active_since is None and not outcome.holds:
            continue
        labels = alert_labels(definition, outcome.labels)
        fingerprint = alert_fingerprint(definition.name, outcome.labels)
        seen.add(fingerprint)
        observation = Observation(
            fingerprint=fingerprint,
            name=definition.name,
            labels=labels,
            value=outcome.value,
            holds=outcome.holds,
            active_since=outcome.active_since,
            severity=definition.severity.value,
            annotations=definition.annotations,
        )
        if active.unchanged(observation):
            active.defer(observation, _Context(rule, definition, flap, report))
            continue
        _record(observe(observation, now, rule=rule, flap=flap), now, definition, report)
    for fingerprint in active.of_rule(rule.pk).difference(seen):
        transition = expire(fingerprint, now, keep_firing_for=definition.keep_firing_for, flap=flap)
        if transition is not None and transition.after == AlertState.RESOLVED:
            report.resolved.append(fingerprint)
            on_resolved(transition.alert, now)
    return report


def _record(
    transition: Transition | None, now: float, definition: RuleDefinition, report: EvaluationReport
) -> None:
    if transition is None:
        return
    if transition.after == AlertState.FIRING:
        report.fired.append(transition.alert.fingerprint)
        run = on_fired(transition.alert, now, definition)
        if run is not None:
            report.runs.append(str(run.id))
    elif transition.after == AlertState.PENDING:
        report.pending.append(transition.alert.fingerprint)


def settle(active: ActiveAlerts, now: float) -> None:
    """Write the batch's deferred observations; those whose alert changed meanwhile are observed one by
    one, as if never deferred."""
    for observation, context in active.flush(now):
        transition = observe(observation, now, rule=context.rule, flap=context.flap)
        _record(transition, now, context.definition, context.report)


def push_source(rules: Sequence[AlertRule], now: float) -> MetricSource:
    """One push source for the push rules of `rules` at `now`, planned for all of them: each metric they
    read is loaded once, over the longest lookback that reads it."""
    from automation.alerting.push import PushSource

    conditions = [
        condition
        for rule in rules
        if rule.source != SourceKind.PROMETHEUS and (condition := compile_rule(rule).condition) is not None
    ]
    return PushSource.for_rules(conditions, now)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a tick allocates hundreds of thousands of small acyclic objects
    (samples, outcomes, reports), freed by reference counting anyway, and every full collection they set
    off would walk all the objects of the process (the series index included)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def evaluate_rules(
    rules: Sequence[AlertRule], now: float, *, push: MetricSource | None = None
) -> list[dict[str, Any]]:
    """One batch of a tick at `now`: a report (or {"rule", "error"}) per rule, in the given order. The push
    rules share `push` (by default one source planned for this batch: `push_source`)."""
    with collector_paused():
        return _evaluate_batch(rules, now, push)


def _evaluate_batch(
    rules: Sequence[AlertRule], now: float, push: MetricSource | None
) -> list[dict[str, Any]]:
    from automation.alerting.push import PushSource

    push = push_source(rules, now) if push is None else push
    if isinstance(push, PushSource):
        push.prefetch()  # the samples are read while the active alerts are
    active = ActiveAlerts(rule.pk for rule in rules)
    results: list[EvaluationReport | dict[str, Any]] = []
    for rule in rules:
        try:
            if rule.source != SourceKind.PROMETHEUS:
                results.append(_evaluate(rule, now, push, active))
            else:
                source = rule_source(rule)
                try:
                    results.append(_evaluate(rule, now, source, active))
                finally:
                    close = getattr(source, "close", None)
                    if close is not None:
                        close()
        except SourceError as exc:
            results.append({"rule": rule.name, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the batch
            logger.exception("alerting: evaluating rule %s failed", rule.name)
            results.append({"rule": rule.name, "error": f"{type(exc).__name__}: {exc}"})
    settle(active, now)
    return [r.as_dict() if isinstance(r, EvaluationReport) else r for r in results]


#: Resolution of the `for` check of a PromQL rule: the expression must have had a result at every step.
PROMQL_STEP = 15.0


def promql_outcomes(source: MetricSource, expr: str, for_: float, now: float) -> list[Outcome]:
    """A raw PromQL rule on the Prometheus source: the series of `expr` at `now` hold; with `for`, only
    those that had a result at every step of the last `for` seconds (a range query: judged from
    Prometheus's data, as the rule language's duration is, not from this evaluator's memory)."""
    query = getattr(source, "query", None)
    query_range = getattr(source, "query_range", None)
    if query is None or query_range is None:
        raise SourceError(f"`expr` rules need the prometheus source, not {source.name}")
    current = query(expr, now)
    if not for_:
        return [
            Outcome(labels=_without_name(labels), value=value, holds=True, active_since=now)
            for labels, value in current
        ]
    step = min(PROMQL_STEP, max(for_ / 4, 1.0))
    history = {series.labels: series for series in query_range(expr, now - for_, now, step)}
    outcomes = []
    for labels, value in current:
        plain = _without_name(labels)
        series = history.get(tuple(sorted(plain.items())))
        since = _held_since(series, now - for_, now, step) if series is not None else now
        outcomes.append(Outcome(labels=plain, value=value, holds=since <= now - for_, active_since=since))
    return outcomes


def _without_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _held_since(series: Series, start: float, end: float, step: float) -> float:
    """The earliest evaluation step (`end`, `end - step`, ... back to `start`) from which the series has a
    point at every step up to `end` (a range query's points fall on `start + k * step`)."""
    present = {round((sample.at - start) / step) for sample in series.samples}
    last = round((end - start) / step)
    k = last
    while k >= 0 and k in present:
        k -= 1
    return end if k == last else start + (k + 1) * step


def rule_source(rule: AlertRule) -> MetricSource:
    """The source a rule reads, new for each evaluation (a push source caches what it loaded)."""
    if rule.source == SourceKind.PROMETHEUS:
        from automation.alerting.services.config import current_document
        from automation.alerting.sources.prometheus import PrometheusSource

        settings = current_document().prometheus
        if settings is None:
            raise SourceError(
                f"rule {rule.name} reads Prometheus, but the alerting document sets no `prometheus.url`"
            )
        return PrometheusSource(
            settings.url,
            bearer_token=settings.bearer_token,
            username=settings.username,
            password=settings.password,
            timeout=settings.timeout,
        )
    from automation.alerting.push import PushSource

    return PushSource()
