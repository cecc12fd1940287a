"""Anomaly scores on real traces (NAB nyc_taxi, 21 days at 30 minutes; speed_6005 with its 3.5-day gap):
an injected outlier stands out, the daily peak does not; a flat series has a floor under its interval; a
long silence restarts the judging and a new series is judged from its 13th sample on; scores are causal
and the same whoever computes them."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from automation.alerting.nab import read_windows
from automation.alerting.rules import ForecastAnomalyScorer, anomaly_score_01, evaluate, parse_rule
from automation.alerting.series import Sample, Series
from automation.alerting.sources.memory import MemorySource

DATA = Path(__file__).resolve().parents[1] / "data" / "nab"
NYC_TAXI = DATA / "realKnownCause" / "nyc_taxi.csv"
SPEED = DATA / "realTraffic" / "speed_6005.csv"  # 5-minute sensor data, silent for 3.5 days at row 700
ELB = DATA / "realAWSCloudwatch" / "elb_request_count_8c0756.csv"  # spiky, two labelled peaks
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
    # far out: more than twice the largest one-step error of the days before (the interval's half-width is
    # at least half of it), 3 being the documented typical threshold
    assert scores[OUTLIER] > 5
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
    assert outcome.holds and outcome.value > 5


def test_too_little_history_cannot_be_judged() -> None:
    samples = taxi()[:12]  # the local model needs 12 samples before the one it judges
    assert math.isnan(ForecastAnomalyScorer().score(as_series(samples), samples[-1].at))
    assert (
        evaluate(parse_rule("anomaly(nyc_taxi) > 3"), MemorySource([as_series(samples)]), samples[-1].at)
        == []
    )


def test_a_new_series_is_judged_from_its_13th_sample_before_any_fit() -> None:
    samples = taxi(outlier=False)[:DAY]
    samples[30] = Sample(samples[30].at, samples[30].value * 3)  # 58,140 rides at 15:00, about 19,500 usual
    scorer = ForecastAnomalyScorer()
    scores = [scorer.score(as_series(samples), s.at) for s in samples]
    assert all(math.isnan(s) for s in scores[:12])
    assert not any(math.isnan(s) for s in scores[12:])
    assert scores[30] > 5
    assert max(scores[12:30] + scores[31:]) < 1.5
    assert scorer.fits == 0  # the local model: the median of the previous samples, no forecaster


def test_a_flat_series_has_a_floor_under_its_interval() -> None:
    flat = [Sample(float(i * 300), 5.0) for i in range(3 * 288)]  # three days of exactly 5.0
    for value, low, high in ((5.01, 0.0, 0.0), (5.2, 0.5, 3.0), (6.0, 8.0, 20.0)):
        series = as_series([*flat, Sample(3 * 288 * 300.0, value)])
        score = ForecastAnomalyScorer().score(series, 3 * 288 * 300.0)
        # sigma is at least 1 % of the level: 0.05, so the half-width is 0.082
        assert low <= score <= high, (value, score)


def rows(path: Path) -> list[Sample]:
    with path.open() as handle:
        return [
            Sample(
                datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC).timestamp(), float(row["value"])
            )
            for row in csv.DictReader(handle)
        ]


def test_a_silence_longer_than_a_day_restarts_the_judging() -> None:
    samples = rows(SPEED)
    assert samples[700].at - samples[699].at > 3.5 * 86_400  # the data's own gap
    series = Series("speed", (), tuple(samples))
    scorer = ForecastAnomalyScorer()
    scores = [scorer.score(series, s.at) for s in samples[:1000]]
    # the first 12 samples after the gap are a new series: not judged; then judged by the local model
    # until a fit on what follows the gap; never blown up by the days of silence
    assert all(math.isnan(s) for s in scores[700:712])
    assert not any(math.isnan(s) for s in scores[712:])
    assert max(scores[700:1000], key=lambda s: -1 if math.isnan(s) else s) < 3
    # a fresh scorer agrees after the gap as before it
    for index in (712, 800, 999):
        assert ForecastAnomalyScorer().score(series, samples[index].at) == scores[index]


def test_score_01_is_monotonic_on_zero_to_one() -> None:
    assert anomaly_score_01(0.0) == 0.0
    assert anomaly_score_01(math.nan) == 0.0
    assert anomaly_score_01(3.0) == 0.5
    assert anomaly_score_01(9.0) == 0.75
    assert anomaly_score_01(math.inf) == 1.0
    mapped = [anomaly_score_01(s / 10) for s in range(0, 1000)]
    assert mapped == sorted(mapped) and len(set(mapped)) == len(mapped)
    assert all(0.0 <= m < 1.0 for m in mapped)


def test_on_a_spiky_series_the_labelled_peaks_stand_out() -> None:
    samples = rows(ELB)
    series = Series("requests", (), tuple(samples))
    scorer = ForecastAnomalyScorer()
    scores = [scorer.score(series, s.at) for s in samples]
    windows = read_windows(DATA / "labels" / "combined_windows.json")[
        "realAWSCloudwatch/elb_request_count_8c0756.csv"
    ]
    inside = [[i for i, s in enumerate(samples) if a <= s.at <= b] for a, b in windows]
    peaks = [max(rows_in, key=lambda i: samples[i].value) for rows_in in inside]
    assert [samples[i].value for i in peaks] == [381.0, 656.0]
    for rows_in, peak in zip(inside, peaks, strict=True):
        assert max(rows_in, key=lambda i: scores[i]) == peak  # each window's highest score is its peak
    outside = [s for i, s in enumerate(scores[750:], 750) if not any(i in r for r in inside)]
    # the larger peak is far out (the old interval, wide from the spikes, gave it 2.0) and above every
    # score outside the windows after the first 750 rows (NAB's probationary period)
    assert scores[peaks[1]] > 3 and scores[peaks[1]] > max(outside)
