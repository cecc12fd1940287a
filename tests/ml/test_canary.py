"""The canary judgement on synthetic samples: a clear regression fails, equal distributions pass, noise
does not fail (over many trials), and each knob (direction, tolerance, weights, critical, data) acts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from automation.ml.canary import CanaryJudgement, MetricCheck, judge, relative_change
from automation.ml.choices import MetricOutcome, Verdict

CHECKS = [
    MetricCheck("error_rate"),
    MetricCheck("latency"),
    MetricCheck("accuracy", regression="decrease"),
]


def samples(
    rng: np.random.Generator, n: int = 40, *, error: float = 0.0, latency: float = 0.0, accuracy: float = 0.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Baseline and canary samples of the three metrics; the canary's moved by the given relative changes."""

    def both(draw: object, *args: float, change: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        baseline = draw(*args, n)  # type: ignore[operator]
        canary = draw(*args, n) * (1 + change)  # type: ignore[operator]
        return baseline, canary

    return {
        "error_rate": both(rng.gamma, 4.0, 0.005, change=error),
        "latency": both(rng.lognormal, math.log(0.05), 0.3, change=latency),
        "accuracy": both(rng.normal, 0.95, 0.02, change=accuracy),
    }


def test_a_clear_regression_fails_with_the_reason() -> None:
    judged = judge(CHECKS, samples(np.random.default_rng(1), latency=1.0))

    assert judged.verdict == Verdict.FAIL
    latency = next(c for c in judged.comparisons if c.name == "latency")
    assert latency.outcome == MetricOutcome.FAIL and latency.p_value is not None and latency.p_value < 1e-6
    assert latency.change is not None and 0.7 < latency.change < 1.3
    assert judged.score == pytest.approx(100 * 2 / 3, abs=0.01)
    assert any(reason.startswith("latency rose: canary mean") for reason in judged.reasons)


def test_equal_distributions_pass() -> None:
    rng = np.random.default_rng(2)
    same = {name: (values, values.copy()) for name, (values, _) in samples(rng).items()}

    judged = judge(CHECKS, same)

    assert judged.verdict == Verdict.PASS and judged.score == 100.0
    assert all(c.outcome == MetricOutcome.PASS for c in judged.comparisons)


def test_noise_does_not_fail() -> None:
    # 300 canaries drawn from the baseline's own distributions: the family-wise false-failure rate is at
    # most 1 - confidence = 2 %, so a handful at most (binomial, 300 * 0.02 = 6; 15 is far in the tail).
    rng = np.random.default_rng(3)
    verdicts = [judge(CHECKS, samples(rng)).verdict for _ in range(300)]

    assert verdicts.count(Verdict.FAIL) <= 15
    assert verdicts.count(Verdict.PASS) >= 285


def test_regressions_are_detected_far_more_often_than_noise() -> None:
    # With 40 samples a side of an error rate whose spread is half its mean (gamma, shape 4).
    rng = np.random.default_rng(4)

    def detected(error: float) -> int:
        return sum(judge(CHECKS, samples(rng, error=error)).verdict == Verdict.FAIL for _ in range(100))

    assert detected(0.5) >= 75
    assert detected(1.0) >= 95


def test_an_improvement_is_not_a_regression() -> None:
    rng = np.random.default_rng(5)

    judged = judge(CHECKS, samples(rng, latency=-0.5, error=-0.5, accuracy=0.02))

    assert judged.verdict == Verdict.PASS


def test_a_quality_metric_that_falls_fails() -> None:
    judged = judge(CHECKS, samples(np.random.default_rng(6), accuracy=-0.1))

    accuracy = next(c for c in judged.comparisons if c.name == "accuracy")
    assert accuracy.outcome == MetricOutcome.FAIL
    assert accuracy.reason.startswith("accuracy fell")
    assert judged.verdict == Verdict.FAIL


def test_either_direction_fails_on_any_significant_change() -> None:
    rng = np.random.default_rng(7)
    baseline = rng.normal(10, 1, 50)

    for change in (-3, 3):
        judged = judge([MetricCheck("m", regression="either")], {"m": (baseline, baseline + change)})
        assert judged.verdict == Verdict.FAIL


def test_tolerance_lets_a_small_significant_change_pass() -> None:
    rng = np.random.default_rng(8)
    baseline = rng.normal(100, 1, 200)
    canary = rng.normal(105, 1, 200)  # +5 %, very significant

    assert judge([MetricCheck("latency")], {"latency": (baseline, canary)}).verdict == Verdict.FAIL
    tolerant = judge([MetricCheck("latency", tolerance=0.1)], {"latency": (baseline, canary)})
    assert tolerant.verdict == Verdict.PASS


def test_weights_make_the_score_and_a_marginal_verdict() -> None:
    rng = np.random.default_rng(9)
    data = samples(rng, error=1.0)
    checks = [
        MetricCheck("error_rate", weight=1),
        MetricCheck("latency", weight=4),
        MetricCheck("accuracy", regression="decrease", weight=5),
    ]

    judged = judge(checks, data)

    assert judged.score == 90.0
    assert judged.verdict == Verdict.MARGINAL
    assert judged.reasons[-1] == "score 90.0 < 95: marginal"


def test_a_critical_metric_fails_the_canary_whatever_the_score() -> None:
    rng = np.random.default_rng(10)
    checks = [
        MetricCheck("error_rate", weight=1, critical=True),
        MetricCheck("latency", weight=99),
        MetricCheck("accuracy", weight=99, regression="decrease"),
    ]

    judged = judge(checks, samples(rng, error=1.0))

    assert judged.score == pytest.approx(99.5, abs=0.01)
    assert judged.verdict == Verdict.FAIL
    assert "critical metric(s) error_rate did not pass" in judged.reasons


def test_too_few_samples_is_no_data_and_no_data_at_all_fails() -> None:
    rng = np.random.default_rng(11)
    data = samples(rng)
    data["latency"] = (data["latency"][0][:5], data["latency"][1])

    judged = judge(CHECKS, data, min_samples=10)

    latency = next(c for c in judged.comparisons if c.name == "latency")
    assert latency.outcome == MetricOutcome.NO_DATA
    assert "too few samples (baseline 5, canary 40; at least 10 each)" in latency.reason
    assert judged.verdict == Verdict.PASS  # judged on the two others
    nothing = judge(CHECKS, {})
    assert nothing.verdict == Verdict.FAIL and "no metric had enough samples" in nothing.reasons[-1]
    critical = judge([MetricCheck("a", critical=True), MetricCheck("b")], {"b": data["accuracy"]})
    assert critical.verdict == Verdict.FAIL


def test_non_finite_samples_are_left_out_and_the_output_is_json() -> None:
    baseline = [0.0] * 20 + [math.nan, math.inf]
    canary = [0.0] * 10 + [0.2] * 10

    judged = judge([MetricCheck("error_rate")], {"error_rate": (baseline, canary)})

    assert judged.comparisons[0].baseline.n == 20
    assert judged.verdict == Verdict.FAIL
    document = judged.to_dict()
    assert document["metrics"][0]["change"] == "+inf"  # from a baseline mean of zero
    json.dumps(document, allow_nan=False)


def test_the_family_error_rate_is_split_over_the_metrics_judged() -> None:
    data = samples(np.random.default_rng(12))

    judged = judge(CHECKS, data, confidence=0.97)

    assert [c.alpha for c in judged.comparisons] == [pytest.approx(0.01)] * 3


def test_relative_change() -> None:
    assert relative_change(2.0, 3.0) == 0.5
    assert relative_change(-2.0, -1.0) == 0.5
    assert relative_change(0.0, 0.0) == 0.0
    assert relative_change(0.0, -1.0) == -math.inf


@pytest.mark.parametrize(
    ("options", "message"),
    [({"confidence": 1.0}, "confidence"), ({"marginal_score": 96}, "marginal_score")],
)
def test_bad_settings_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        judge(CHECKS, {}, **options)


ERRORS = MetricCheck("errors", denominator="requests")


def counts(
    rng: np.random.Generator, intervals: int, requests: int, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-interval error counts out of a fixed number of requests."""
    return rng.binomial(requests, rate, size=intervals).astype(float), np.full(intervals, float(requests))


def judge_counts(
    baseline: tuple[np.ndarray, np.ndarray],
    canary: tuple[np.ndarray, np.ndarray],
    check: MetricCheck = ERRORS,
) -> CanaryJudgement:
    return judge(
        [check],
        {check.name: (baseline[0], canary[0])},
        totals={check.name: (baseline[1], canary[1])},
    )


def test_an_error_rate_is_judged_on_its_counts() -> None:
    rng = np.random.default_rng(11)
    judged = judge_counts(counts(rng, 60, 900, 0.02), counts(rng, 60, 100, 0.04))

    assert judged.verdict == Verdict.FAIL
    (errors,) = judged.comparisons
    assert errors.outcome == MetricOutcome.FAIL and errors.p_value < 1e-6
    assert errors.baseline.n == errors.canary.n == 60
    assert 0.015 < errors.baseline.mean < 0.025 and 0.03 < errors.canary.mean < 0.05
    assert errors.reason.startswith("errors rose: canary ") and "two-proportion p=" in errors.reason


def test_a_lower_canary_error_rate_passes_and_no_errors_at_all_is_identical() -> None:
    rng = np.random.default_rng(12)
    assert judge_counts(counts(rng, 30, 900, 0.04), counts(rng, 30, 100, 0.01)).verdict == Verdict.PASS
    none = judge_counts(counts(rng, 30, 900, 0.0), counts(rng, 30, 100, 0.0))
    assert none.verdict == Verdict.PASS
    assert none.comparisons[0].reason == "errors: canary and baseline identical"


def test_small_counts_use_fishers_exact_test() -> None:
    from scipy.stats import fisher_exact

    from automation.ml.canary import proportion_p_value

    # 3 errors in 40 canary requests against 1 in 400: too few expected errors for the normal approximation.
    p_value = proportion_p_value(1, 400, 3, 40, "increase")
    assert p_value == pytest.approx(fisher_exact([[3, 37], [1, 399]], alternative="greater").pvalue)
    assert p_value < 0.01


def test_a_rate_without_its_totals_has_no_data() -> None:
    rng = np.random.default_rng(13)
    errors, _ = counts(rng, 30, 100, 0.02)
    judged = judge([ERRORS], {"errors": (errors, errors)})

    assert judged.verdict == Verdict.FAIL and judged.comparisons[0].outcome == MetricOutcome.NO_DATA
    assert "out of a positive requests" in judged.comparisons[0].reason


def test_identical_error_rates_fail_no_more_than_the_confidence_allows() -> None:
    # 400 identical canaries at the benchmark's traffic (a 2 % error rate, 100 canary requests per 10 s
    # sample, 900 baseline, 15 minutes): the one-sided test at alpha = 2 % fails about 8 of them.
    rng = np.random.default_rng(14)
    verdicts = [
        judge_counts(counts(rng, 90, 900, 0.02), counts(rng, 90, 100, 0.02)).verdict for _ in range(400)
    ]

    assert verdicts.count(Verdict.FAIL) <= 18


def test_the_counts_test_detects_a_rising_error_rate_more_often_than_ranks_of_ratios() -> None:
    # Why rates are judged on counts: +25 % of a 2 % error rate over 15 minutes of the benchmark's
    # traffic. Mann-Whitney on per-sample ratios (two errors a sample, mostly ties) misses most of them.
    rng = np.random.default_rng(15)
    by_counts = by_ranks = 0
    for _ in range(100):
        baseline, canary = counts(rng, 90, 900, 0.02), counts(rng, 90, 100, 0.025)
        by_counts += judge_counts(baseline, canary).verdict != Verdict.PASS
        ratios = {"errors": (baseline[0] / baseline[1], canary[0] / canary[1])}
        by_ranks += judge([MetricCheck("errors")], ratios).verdict != Verdict.PASS

    assert by_counts >= 40
    assert by_counts >= by_ranks + 20
