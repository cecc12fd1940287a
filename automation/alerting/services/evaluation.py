"""One evaluation of one rule at one time: read the data, apply the outcomes as transitions, and run the
pipeline for the transitions this caller took. The same data and `now` give the same transitions whoever
evaluates (the condition's duration is judged from the samples), so a restarted or second evaluator, a
retried tick and a backtest agree."""

from __future__ import annotations

from dataclasses import dataclass, field

from automation.alerting.choices import AlertState, SourceKind
from automation.alerting.definitions import RuleDefinition
from automation.alerting.flapping import FlapPolicy
from automation.alerting.matchers import alert_fingerprint
from automation.alerting.rules import evaluate, parse_rule
from automation.alerting.series import MetricSource
from automation.alerting.services.alerts import Observation, expire, observe
from automation.alerting.services.pipeline import on_fired, on_resolved
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
    if definition.condition is None:
        return report  # `expr` rules are read from Prometheus by evaluate_promql; handlers have no condition
    outcomes = evaluate(parse_rule(definition.condition), source, now)
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
    active = Alert.objects.filter(rule=rule, state__in=AlertState.ACTIVE).values_list(
        "fingerprint", flat=True
    )
    for fingerprint in set(active) - seen:
        transition = expire(fingerprint, now, keep_firing_for=definition.keep_firing_for, flap=flap)
        if transition is not None and transition.after == AlertState.RESOLVED:
            report.resolved.append(fingerprint)
            on_resolved(transition.alert, now)
    return report


def rule_source(rule: AlertRule) -> MetricSource:
    """The source a rule reads, new for each tick (a push source caches per tick)."""
    if rule.source == SourceKind.PROMETHEUS:
        from automation.alerting.services.config import current_document
        from automation.alerting.sources.prometheus import PrometheusSource
        from automation.errors import SourceError

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
