"""Automated canary analysis, pure: canary against baseline per metric, a weighted score and a verdict.

As Kayenta judges a canary: per metric, a Mann-Whitney U test of the canary's samples against the
baseline's, one-sided in the direction that is a regression (error rate and latency must not rise, a
quality metric must not fall), and an effect size (the relative change of the mean) that must pass the
metric's `tolerance` to count. The family-wise error rate is `1 - confidence`, split evenly over the
metrics judged (Bonferroni), so adding metrics does not add false failures. The score is the weight of
the metrics without regression over the weight of those judged, in percent: at least `pass_score` is a
pass, at least `marginal_score` marginal, below that a fail; a critical metric that regresses, or lacks
data, fails the canary whatever the score.

A rate (errors out of requests) is judged on its counts, not on per-sample ratios: a check with a
`denominator` reads the events (`metric`) and the totals (`denominator`) of every sample, sums them per
side, and compares the two proportions with a one-sided two-proportion z-test (Fisher's exact test when
a cell expects fewer than 5). Mann-Whitney on ratios of a few errors per sample is mostly ties and
throws away how many requests each sample stood for; the counts test is the efficient one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from automation.ml.choices import MetricOutcome, Regression, Verdict


@dataclass(frozen=True)
class MetricCheck:
    """How one metric is judged."""

    name: str
    regression: str = Regression.INCREASE
    weight: float = 1.0
    critical: bool = False
    #: Relative change of the mean tolerated even when significant (0.1: up to 10 % worse).
    tolerance: float = 0.0
    #: With a denominator, the samples are event counts and the totals they are out of (a proportion).
    denominator: str | None = None


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None
    median: float | None

    @staticmethod
    def of(values: np.ndarray) -> Summary:
        if not len(values):
            return Summary(0, None, None)
        return Summary(len(values), float(np.mean(values)), float(np.median(values)))


@dataclass(frozen=True)
class MetricComparison:
    name: str
    regression: str
    weight: float
    critical: bool
    outcome: str
    p_value: float | None
    alpha: float
    #: (canary mean - baseline mean) / |baseline mean|; None when there is no data, ±inf from a zero mean.
    change: float | None
    baseline: Summary
    canary: Summary
    reason: str


@dataclass(frozen=True)
class CanaryJudgement:
    verdict: str
    score: float
    comparisons: list[MetricComparison]
    reasons: list[str]
    confidence: float
    pass_score: float
    marginal_score: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        extra = document.pop("extra")
        document["metrics"] = document.pop("comparisons")
        for metric in document["metrics"]:
            change = metric["change"]
            if change is not None and not math.isfinite(change):
                metric["change"] = "+inf" if change > 0 else "-inf"  # JSON has no infinity
        return {**document, **extra}


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def relative_change(baseline_mean: float, canary_mean: float) -> float:
    difference = canary_mean - baseline_mean
    if baseline_mean == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / abs(baseline_mean)


def _regressed(check: MetricCheck, p_value: float, change: float, alpha: float) -> bool:
    worse = {Regression.INCREASE: change > 0, Regression.DECREASE: change < 0}.get(
        check.regression, change != 0
    )
    return p_value < alpha and worse and abs(change) > check.tolerance


def _failure(check: MetricCheck, shown: str, alpha: float) -> str:
    direction = {Regression.INCREASE: "rose", Regression.DECREASE: "fell"}.get(check.regression, "changed")
    return f"{check.name} {direction}: {shown} < {alpha:.3g}" + (
        f", beyond the tolerance {check.tolerance:.0%}" if check.tolerance else ""
    )


def proportion_p_value(
    baseline_events: float, baseline_total: float, canary_events: float, canary_total: float, regression: str
) -> float:
    """One-sided p-value that the canary's proportion is worse than the baseline's: a pooled two-proportion
    z-test, or Fisher's exact test when a cell of the 2x2 table expects fewer than 5."""
    from scipy.stats import fisher_exact, norm

    events, total = baseline_events + canary_events, baseline_total + canary_total
    pooled = events / total
    expected = [side * share for side in (baseline_total, canary_total) for share in (pooled, 1 - pooled)]
    if min(expected) < 5:
        table = [
            [round(canary_events), round(canary_total - canary_events)],
            [round(baseline_events), round(baseline_total - baseline_events)],
        ]
        alternative = {Regression.INCREASE: "greater", Regression.DECREASE: "less"}.get(
            regression, "two-sided"
        )
        return float(fisher_exact(table, alternative=alternative).pvalue)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / baseline_total + 1 / canary_total))
    z = (canary_events / canary_total - baseline_events / baseline_total) / spread
    if regression == Regression.INCREASE:
        return float(norm.sf(z))
    if regression == Regression.DECREASE:
        return float(norm.cdf(z))
    return float(2 * norm.sf(abs(z)))



def _comparison(
    check: MetricCheck,
    alpha: float,
    baseline: Summary,
    canary: Summary,
    kind: str,
    reason: str,
    p_value: float | None = None,
    change: float | None = None,
) -> MetricComparison:
    """One metric's outcome, as both comparisons (counts, ranks) report it."""
    return MetricComparison(
        name=check.name,
        regression=check.regression,
        weight=check.weight,
        critical=check.critical,
        outcome=kind,
        p_value=p_value,
        alpha=alpha,
        change=change,
        reason=reason,
        baseline=baseline,
        canary=canary,
    )

def compare_proportion(
    check: MetricCheck,
    baseline: tuple[Sequence[float], Sequence[float]],
    canary: tuple[Sequence[float], Sequence[float]],
    *,
    alpha: float,
    min_samples: int,
) -> MetricComparison:
    """A rate's outcome from each side's (events, totals) samples: the summed counts' proportions
    compared; `nodata` with fewer than `min_samples` samples of either, or no totals, on a side."""
    sides = {}
    for side, (events, totals) in (("baseline", baseline), ("canary", canary)):
        counted, out_of = _finite(events), _finite(totals)
        sides[side] = (len(counted), len(out_of), float(counted.sum()), float(out_of.sum()))
    (b_n, b_nt, b_events, b_total), (c_n, c_nt, c_events, c_total) = sides["baseline"], sides["canary"]

    outcome = partial(
        _comparison,
        check,
        alpha,
        Summary(b_n, b_events / b_total if b_total else None, None),
        Summary(c_n, c_events / c_total if c_total else None, None),
    )

    if min(b_n, b_nt, c_n, c_nt) < min_samples or not (b_total > 0 and c_total > 0):
        return outcome(
            MetricOutcome.NO_DATA,
            f"{check.name}: too few samples (baseline {min(b_n, b_nt)}, canary {min(c_n, c_nt)}; at least "
            f"{min_samples} each, out of a positive {check.denominator})",
        )
    change = relative_change(b_events / b_total, c_events / c_total)
    if b_events > b_total or c_events > c_total:
        return outcome(
            MetricOutcome.NO_DATA,
            f"{check.name}: more events than {check.denominator} (baseline {b_events:g}/{b_total:g}, "
            f"canary {c_events:g}/{c_total:g}): not a proportion",
        )
    if b_events + c_events in (0, b_total + c_total):  # all or none on both sides: no difference
        return outcome(MetricOutcome.PASS, f"{check.name}: canary and baseline identical", 1.0, change)
    p_value = proportion_p_value(b_events, b_total, c_events, c_total, check.regression)
    shown = (
        f"canary {c_events:g}/{c_total:g} = {c_events / c_total:.4g} vs baseline {b_events:g}/{b_total:g} = "
        f"{b_events / b_total:.4g} ({_percent(change)}), two-proportion p={p_value:.3g}"
    )
    if _regressed(check, p_value, change, alpha):
        return outcome(MetricOutcome.FAIL, _failure(check, shown, alpha), p_value, change)
    return outcome(MetricOutcome.PASS, f"{check.name}: {shown}", p_value, change)


def compare_metric(
    check: MetricCheck, baseline: Sequence[float], canary: Sequence[float], *, alpha: float, min_samples: int
) -> MetricComparison:
    """One metric's outcome: `fail` when the canary is significantly worse (p < `alpha`) by more than
    the tolerance, `nodata` with fewer than `min_samples` finite samples on either side, else `pass`."""
    from scipy.stats import mannwhitneyu

    base, cand = _finite(baseline), _finite(canary)
    summaries = {"baseline": Summary.of(base), "canary": Summary.of(cand)}

    outcome = partial(_comparison, check, alpha, summaries["baseline"], summaries["canary"])

    if len(base) < min_samples or len(cand) < min_samples:
        return outcome(
            MetricOutcome.NO_DATA,
            f"{check.name}: too few samples (baseline {len(base)}, canary {len(cand)}; at least "
            f"{min_samples} each)",
        )
    change = relative_change(float(np.mean(base)), float(np.mean(cand)))
    if np.ptp(np.concatenate([base, cand])) == 0:  # all equal: no test to run, no difference
        return outcome(MetricOutcome.PASS, f"{check.name}: canary and baseline identical", 1.0, change)
    alternative = {Regression.INCREASE: "greater", Regression.DECREASE: "less"}.get(
        check.regression, "two-sided"
    )
    p_value = float(mannwhitneyu(cand, base, alternative=alternative).pvalue)
    shown = (
        f"canary mean {summaries['canary'].mean:.4g} vs baseline {summaries['baseline'].mean:.4g} "
        f"({_percent(change)}), Mann-Whitney U p={p_value:.3g}"
    )
    if _regressed(check, p_value, change, alpha):
        return outcome(MetricOutcome.FAIL, _failure(check, shown, alpha), p_value, change)
    return outcome(MetricOutcome.PASS, f"{check.name}: {shown}", p_value, change)


def _percent(change: float) -> str:
    return f"{change:+.1%}" if math.isfinite(change) else ("+inf %" if change > 0 else "-inf %")


def judge(
    checks: Sequence[MetricCheck],
    samples: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    confidence: float = 0.98,
    pass_score: float = 95.0,
    marginal_score: float = 75.0,
    min_samples: int = 10,
    totals: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> CanaryJudgement:
    """The verdict on a canary from each check's (baseline, canary) samples (a check without samples
    counts as having none); a check with a `denominator` reads its (baseline, canary) totals in `totals`
    by the check's name."""
    if not checks:
        raise ValueError("judge needs at least one metric")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if not 0 <= marginal_score <= pass_score <= 100:
        raise ValueError("need 0 <= marginal_score <= pass_score <= 100")
    totals = totals or {}

    def sides(check: MetricCheck) -> list[Sequence[float]]:
        found = [*samples.get(check.name, ((), ()))]
        return found + [*totals.get(check.name, ((), ()))] if check.denominator else found

    judged = [check for check in checks if min(len(_finite(side)) for side in sides(check)) >= min_samples]
    alpha = (1 - confidence) / max(len(judged), 1)

    def compare(check: MetricCheck) -> MetricComparison:
        (base, cand), (base_totals, cand_totals) = (
            samples.get(check.name, ((), ())),
            totals.get(check.name, ((), ())),
        )
        if check.denominator:
            return compare_proportion(
                check, (base, base_totals), (cand, cand_totals), alpha=alpha, min_samples=min_samples
            )
        return compare_metric(check, base, cand, alpha=alpha, min_samples=min_samples)

    comparisons = [compare(check) for check in checks]
    counted = [c for c in comparisons if c.outcome != MetricOutcome.NO_DATA]
    total = sum(c.weight for c in counted)
    passed = sum(c.weight for c in counted if c.outcome == MetricOutcome.PASS)
    score = 100.0 * passed / total if total else 0.0
    reasons = [c.reason for c in comparisons if c.outcome != MetricOutcome.PASS]
    critical = [c for c in comparisons if c.critical and c.outcome != MetricOutcome.PASS]
    if not counted:
        verdict = Verdict.FAIL
        reasons.append("no metric had enough samples to judge the canary")
    elif critical:
        verdict = Verdict.FAIL
        reasons.append(f"critical metric(s) {', '.join(c.name for c in critical)} did not pass")
    elif score >= pass_score:
        verdict = Verdict.PASS
        reasons.append(f"score {score:.1f} >= {pass_score:g}: pass")
    elif score >= marginal_score:
        verdict = Verdict.MARGINAL
        reasons.append(f"score {score:.1f} < {pass_score:g}: marginal")
    else:
        verdict = Verdict.FAIL
        reasons.append(f"score {score:.1f} < {marginal_score:g}: fail")
    return CanaryJudgement(
        verdict=verdict,
        score=round(score, 2),
        comparisons=comparisons,
        reasons=reasons,
        confidence=confidence,
        pass_score=pass_score,
        marginal_score=marginal_score,
    )
