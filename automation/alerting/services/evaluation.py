"""One evaluation of one rule at one time: read the data, apply the outcomes as transitions, and run the
pipeline for the transitions this caller took. The same data and `now` give the same transitions whoever
evaluates (the condition's duration is judged from the samples), so a restarted or second evaluator, a
retried tick and a backtest agree."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from automation.alerting.choices import AlertOrigin, AlertState, SourceKind
from automation.alerting.definitions import RuleDefinition
from automation.alerting.flapping import FlapPolicy
from automation.alerting.matchers import alert_fingerprint
from automation.alerting.rules import Outcome, evaluate, parse_rule
from automation.alerting.series import MetricSource, Series
from automation.alerting.services.alerts import Observation, at, expire, observe
from automation.alerting.services.pipeline import on_fired, on_resolved
from automation.errors import SourceError
from automation.models import Alert, AlertRule


@dataclass
class EvaluationReport:
    rule: str
    series: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    #: Remediation runs started by this evaluation.
    runs: list[str] = field(default_factory=list)
    #: Why nothing was applied (an evaluation at this time or later was already taken), if so.
    skipped: str = ""


def alert_labels(definition: RuleDefinition, labels: dict[str, str]) -> dict[str, str]:
    return {
        **labels,
        **definition.labels,
        "alertname": definition.name,
        "severity": definition.severity.value,
    }


def evaluate_rule(rule: AlertRule, now: float, source: MetricSource) -> EvaluationReport:
    definition = RuleDefinition.model_validate(rule.document)
    report = EvaluationReport(rule.name)
    if definition.condition is not None:
        outcomes = evaluate(parse_rule(definition.condition), source, now)
    elif definition.expr is not None:
        outcomes = promql_outcomes(source, definition.expr, definition.for_, now)
    else:
        return report  # a handler of received alerts: nothing to evaluate
    # Only an evaluation later than the last one taken goes on: a redelivered or late message, or a
    # second Beat's, would otherwise bring back an alert a later evaluation resolved.
    newer = Q(last_evaluated_at__isnull=True) | Q(last_evaluated_at__lt=at(now))
    if not AlertRule.objects.filter(newer, pk=rule.pk).update(last_evaluated_at=at(now)):
        report.skipped = "an evaluation at this time or later was already taken"
        return report
    report.series = len(outcomes)
    flap = FlapPolicy(definition.flap.changes, definition.flap.window)
    seen: set[str] = set()
    for outcome in outcomes:
        labels = alert_labels(definition, dict(outcome.labels))
        fingerprint = alert_fingerprint(definition.name, dict(outcome.labels))
        if outcome.active_since is None and not outcome.holds:
            continue
        seen.add(fingerprint)
        transition = observe(
            Observation(
                fingerprint=fingerprint,
                name=definition.name,
                labels=labels,
                value=outcome.value,
                holds=outcome.holds,
                active_since=outcome.active_since,
                severity=definition.severity.value,
                annotations=definition.annotations,
            ),
            now,
            rule=rule,
            flap=flap,
        )
        if transition is None:
            continue
        if transition.after == AlertState.FIRING:
            report.fired.append(fingerprint)
            run = on_fired(transition.alert, now, definition)
            if run is not None:
                report.runs.append(str(run.id))
        elif transition.after == AlertState.PENDING:
            report.pending.append(fingerprint)
    # Alerts of this rule's evaluations only: a received alert handled by this rule is not its to resolve.
    active = Alert.objects.filter(
        rule=rule, origin=AlertOrigin.RULE, state__in=AlertState.ACTIVE
    ).values_list("fingerprint", flat=True)
    for fingerprint in set(active) - seen:
        transition = expire(fingerprint, now, keep_firing_for=definition.keep_firing_for, flap=flap)
        if transition is not None and transition.after == AlertState.RESOLVED:
            report.resolved.append(fingerprint)
            on_resolved(transition.alert, now)
    return report


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
    """The source a rule reads, new for each tick (a push source caches per tick)."""
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
