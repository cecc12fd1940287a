"""Anomaly scores on a real trace (NAB nyc_taxi, 21 days at 30 minutes): an injected outlier stands out,
the daily peak does not; scores are causal and the same whoever computes them."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from automation.alerting.rules import ForecastAnomalyScorer, anomaly_score_01, evaluate, parse_rule
from automation.alerting.series import Sample, Series
from automation.alerting.sources.memory import MemorySource

NYC_TAXI = Path(__file__).resolve().parents[1] / "data" / "nab" / "realKnownCause" / "nyc_taxi.csv"
DAY = 48  # samples per day
OUTLIER = 16 * DAY + 8  # 2014-07-17 04:00, when about 3,200 rides are usual
OUTLIER_VALUE = 18_000.0  # well below every daily peak (about 26,000)


def taxi(*, outlier: bool = True) -> list[Sample]:
    with NYC_TAXI.open() as handle:
        samples = [
            Sample(
                datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC).timestamp(), float(row["value"])
            )
            for row in csv.DictReader(handle)
        ]
    if outlier:
        samples[OUTLIER] = Sample(samples[OUTLIER].at, OUTLIER_VALUE)
    return samples


def as_series(samples: list[Sample]) -> Series:
    return Series("nyc_taxi", (), tuple(samples))


@pytest.fixture(scope="module")
def scored() -> tuple[list[Sample], dict[int, float], int]:
    """Every sample after the first week, scored in order by one scorer; and how many fits it made."""
    samples = taxi()
    series = as_series(samples)
    scorer = ForecastAnomalyScorer()
    scores = {i: scorer.score(series, samples[i].at) for i in range(7 * DAY, len(samples))}
    return samples, scores, scorer.fits


def test_the_outlier_stands_out_and_the_daily_peak_does_not(
    scored: tuple[list[Sample], dict[int, float], int],
) -> None:
    samples, scores, _ = scored
    assert not any(math.isnan(s) for s in scores.values())
    assert scores[OUTLIER] > 8
    others = {i: s for i, s in scores.items() if i != OUTLIER}
    assert max(others.values()) < 3, sorted(others.items(), key=lambda kv: -kv[1])[:3]
    for day in range(7, 21):
        peak = max(range(day * DAY, (day + 1) * DAY), key=lambda i: samples[i].value)
        assert samples[peak].value > OUTLIER_VALUE  # the outlier is not simply the largest value
        assert scores[peak] < 1.5, (day, scores[peak])


def test_fits_once_a_day_and_updates_in_between(scored: tuple[list[Sample], dict[int, float], int]) -> None:
    _, scores, fits = scored
    assert len(scores) == 14 * DAY
    assert fits == 14


def test_a_fresh_scorer_agrees_with_one_that_has_run(
    scored: tuple[list[Sample], dict[int, float], int],
) -> None:
    samples, scores, _ = scored
    for index in (OUTLIER, OUTLIER + 1, 10 * DAY + 38, 20 * DAY + 47):
        assert ForecastAnomalyScorer().score(as_series(samples), samples[index].at) == scores[index]


def test_scores_are_causal(scored: tuple[list[Sample], dict[int, float], int]) -> None:
    samples, scores, _ = scored
    # what comes after a sample does not change its score
    cut = as_series(samples[: OUTLIER + 1])
    assert ForecastAnomalyScorer().score(cut, samples[OUTLIER].at) == scores[OUTLIER]
    # and a sample before the outlier scores the same without it
    clean = as_series(taxi(outlier=False))
    assert ForecastAnomalyScorer().score(clean, samples[OUTLIER - 1].at) == scores[OUTLIER - 1]
    # between samples, the score is the latest sample's
    assert ForecastAnomalyScorer().score(as_series(samples), samples[OUTLIER].at + 600) == scores[OUTLIER]


def test_a_rule_on_anomaly_fires_only_at_the_outlier_in_a_backtest() -> None:
    samples = taxi()
    source = MemorySource([as_series(samples)])
    rule = parse_rule("anomaly(nyc_taxi) > 3")
    scorer = ForecastAnomalyScorer()
    firing = []
    for index in range(15 * DAY, 18 * DAY):
        (outcome,) = evaluate(rule, source, samples[index].at, scorer=scorer)
        if outcome.holds:
            firing.append(index)
    assert firing == [OUTLIER]
    # the process-wide scorer, used when none is given, agrees
    (outcome,) = evaluate(rule, source, samples[OUTLIER].at)
    assert outcome.holds and outcome.value > 8


def test_too_little_history_cannot_be_judged() -> None:
    samples = taxi()[:40]
    assert math.isnan(ForecastAnomalyScorer().score(as_series(samples), samples[-1].at))
    assert (
        evaluate(parse_rule("anomaly(nyc_taxi) > 3"), MemorySource([as_series(samples)]), samples[-1].at)
        == []
    )


def test_score_01_is_monotonic_on_zero_to_one() -> None:
    assert anomaly_score_01(0.0) == 0.0
    assert anomaly_score_01(math.nan) == 0.0
    assert anomaly_score_01(3.0) == 0.5
    assert anomaly_score_01(9.0) == 0.75
    assert anomaly_score_01(math.inf) == 1.0
    mapped = [anomaly_score_01(s / 10) for s in range(0, 1000)]
    assert mapped == sorted(mapped) and len(set(mapped)) == len(mapped)
    assert all(0.0 <= m < 1.0 for m in mapped)
