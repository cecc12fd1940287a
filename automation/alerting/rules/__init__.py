"""Alert rules: a small language (`cpu_usage > 80 AND duration > 5m`) parsed with lark, evaluated on
series from any metric source. Pure: no Django, no database; rule text is never run as Python.

Language
  condition   comparisons joined by AND, OR, NOT (keywords in any case) and parentheses
  comparison  VALUE OP NUMBER or NUMBER OP VALUE; OP one of > >= < <= == !=; numbers may be negative
  VALUE       a selector `cpu_usage` or `cpu_usage{service="api", env!="dev", pod=~"web-.*", zone!~"x"}`
              (regexes match the whole value; string escapes \\" and \\\\ only; a metric named `duration`
              is written `duration{}`); `avg_over|max_over|min_over|sum_over|count_over(SEL, 5m)`;
              `rate(SEL, 5m)`; `anomaly(SEL)`
  duration    `duration > 5m` (or >=, the same): a conjunct of an AND, one per AND, not under NOT and not
              inside the condition of another duration clause. Units s, m, h, d; `1h30m` works.

Semantics (all judged from the samples, never from memory of earlier evaluations)
  - A selector's value at t is its latest sample at or before t, unless older than 5 minutes (stale).
  - A window function reduces the samples in (t - window, t]; none -> no value. `rate` is the per-second
    increase between the first and last sample of the window, a drop counting as a reset (the new value is
    all increase), without Prometheus's extrapolation to the window's edges; it needs two samples.
  - `anomaly(SEL)` at t is the score of SEL's latest fresh sample: how many prediction-interval
    half-widths it lies outside the one-step forecast made from the data before it (0 inside); see
    `anomaly.py`. A series whose score cannot be judged yet has no value.
  - A comparison keeps every series that has a value, true where the comparison holds.
  - AND and OR match label sets as Prometheus's `and` / `or` do, the metric name aside: AND keeps its left
    side's label sets, true where the right side has the same label set and it is true; OR keeps the
    label sets of both sides, true where either is. A side that yields exactly one series without labels
    matches every label set of the other. NOT negates, keeping the label sets.
  - `X AND duration > D` holds for a label set when X holds at every instant in [now - D, now] where its
    data change: each sample time of the series X reads, each moment a sample goes stale or leaves a
    window, and both ends. Holding at now - D needs a fresh sample at or before it, so data that do not
    cover the whole window do not meet the duration.
  - An outcome per label set of the condition at now: `value` is the left-most compared value, `holds`
    the condition with its duration clauses, `active_since` the earliest of those instants in
    [now - D, now] (D the rule's longest duration; just `now` without one) from which the condition
    without duration clauses held at every instant, or None when it does not hold at now. For
    `X AND duration > D`, holds == (active_since <= now - D).
  - `Rule.lookback` = longest duration + the longest need of a value (5 minutes of staleness, a window,
    or for anomaly() 7 days of history + 1 day of refit period); `evaluate` reads [now - lookback, now]
    with one `select` per distinct selector.
"""

from __future__ import annotations

from automation.alerting.rules.anomaly import ForecastAnomalyScorer, anomaly_score_01
from automation.alerting.rules.ast import Rule
from automation.alerting.rules.evaluate import Outcome, evaluate
from automation.alerting.rules.parser import parse_rule
from automation.alerting.rules.values import AnomalyScorer

__all__ = [
    "AnomalyScorer",
    "ForecastAnomalyScorer",
    "Outcome",
    "Rule",
    "anomaly_score_01",
    "evaluate",
    "parse_rule",
]
