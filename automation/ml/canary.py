"""Automated canary analysis, pure: canary against baseline per metric, a weighted score and a verdict.

As Kayenta judges a canary: per metric, a Mann-Whitney U test of the canary's samples against the
baseline's, one-sided in the direction that is a regression (error rate and latency must not rise, a
quality metric must not fall), and an effect size (the relative change of the mean) that must pass the
metric's `tolerance` to count. The family-wise error rate is `1 - confidence`, split evenly over the
metrics judged (Bonferroni), so adding metrics does not add false failures. The score is the weight of
the metrics without regression over the weight of those judged, in percent: at least `pass_score` is a
pass, at least `marginal_score` marginal, below that a fail; a critical metric that regresses, or lacks
data, fails the canary whatever the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
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


def compare_metric(
    check: MetricCheck, baseline: Sequence[float], canary: Sequence[float], *, alpha: float, min_samples: int
) -> MetricComparison:
    """One metric's outcome: `fail` when the canary is significantly worse (p < `alpha`) by more than
    the tolerance, `nodata` with fewer than `min_samples` finite samples on either side, else `pass`."""
    from scipy.stats import mannwhitneyu

    base, cand = _finite(baseline), _finite(canary)
    summaries = {"baseline": Summary.of(base), "canary": Summary.of(cand)}

    def outcome(
        kind: str, reason: str, p_value: float | None = None, change: float | None = None
    ) -> MetricComparison:
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
            **summaries,
        )

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
    worse = {Regression.INCREASE: change > 0, Regression.DECREASE: change < 0}.get(
        check.regression, change != 0
    )
    shown = (
        f"canary mean {summaries['canary'].mean:.4g} vs baseline {summaries['baseline'].mean:.4g} "
        f"({_percent(change)}), Mann-Whitney U p={p_value:.3g}"
    )
    if p_value < alpha and worse and abs(change) > check.tolerance:
        direction = {Regression.INCREASE: "rose", Regression.DECREASE: "fell"}.get(
            check.regression, "changed"
        )
        return outcome(
            MetricOutcome.FAIL,
            f"{check.name} {direction}: {shown} < {alpha:.3g}"
            + (f", beyond the tolerance {check.tolerance:.0%}" if check.tolerance else ""),
            p_value,
            change,
        )
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
) -> CanaryJudgement:
    """The verdict on a canary from each check's (baseline, canary) samples (a check without samples
    counts as having none)."""
    if not checks:
        raise ValueError("judge needs at least one metric")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if not 0 <= marginal_score <= pass_score <= 100:
        raise ValueError("need 0 <= marginal_score <= pass_score <= 100")
    judged = [
        check
        for check in checks
        if min(len(_finite(side)) for side in samples.get(check.name, ((), ()))) >= min_samples
    ]
    alpha = (1 - confidence) / max(len(judged), 1)
    comparisons = [
        compare_metric(check, *samples.get(check.name, ((), ())), alpha=alpha, min_samples=min_samples)
        for check in checks
    ]
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
