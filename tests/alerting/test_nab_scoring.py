"""NAB's scoring on cases small enough to check by hand, and the alert-level judgement against labelled
windows. The numbers below are worked out in the comments from NAB's formulas (nab/sweeper.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from automation.alerting.nab import (
    PROFILES,
    STANDARD,
    CostMatrix,
    LabelledFile,
    best_threshold,
    nab_time,
    normalize,
    probation_rows,
    read_windows,
    scaled_sigmoid,
    score_alerts,
    score_at,
    score_corpus,
    scores_by_threshold,
    sweep,
    windows_for,
)
from automation.errors import DefinitionError

LABELS = Path(__file__).resolve().parents[1] / "data" / "nab" / "labels" / "combined_windows.json"
S1 = 2 / (1 + math.exp(-5)) - 1  # S(-1) = 0.9866142981514305, the earliest detection's raw worth


def rows(n: int) -> list[float]:
    """Row times 5 minutes apart."""
    return [i * 300.0 for i in range(n)]


def test_scaled_sigmoid_matches_nab_landmarks() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0 and scaled_sigmoid(10.0) == -1.0


def test_profiles_are_nabs() -> None:
    assert PROFILES["standard"] == CostMatrix(tp=1.0, fp=0.11, fn=1.0)
    assert PROFILES["reward_low_FP_rate"].fp == 0.22 and PROFILES["reward_low_FN_rate"].fn == 2.0


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probation_rows(4032) == 604  # floor(0.15 * 4032)
    assert probation_rows(10_000) == 750  # 0.15 * 5000
    assert probation_rows(100, 0.0) == 0


def test_what_each_row_is_worth() -> None:
    # Ten rows, one window on rows 4..6 (width 3), no probation.
    times = rows(10)
    window = [(times[4], times[6])]
    swept = sweep("f", times, [0.0] * 10, window, STANDARD, probation_percent=0.0)
    # Before any window a false positive costs the whole A_FP.
    assert [r.sweep_score for r in swept[:4]] == [-0.11] * 4
    # Row 4, the window's first: p = -(6 - 4 + 1) / 3 = -1, worth S(-1) / S(-1) = A_TP = 1.
    assert swept[4].sweep_score == pytest.approx(1.0)
    # Row 5: p = -2/3; row 6 (the last): p = -1/3.
    assert swept[5].sweep_score == pytest.approx(scaled_sigmoid(-2 / 3) / S1)
    assert swept[6].sweep_score == pytest.approx(scaled_sigmoid(-1 / 3) / S1)
    # Row 8, two rows past the window's end: p = |6 - 8| / (3 - 1) = 1, worth A_FP * S(1).
    assert swept[8].sweep_score == pytest.approx(0.11 * scaled_sigmoid(1.0))
    assert swept[4].window == ("f", 0) and swept[3].window is None


def test_a_window_counts_its_earliest_detection_once_and_a_miss_costs_a_fn() -> None:
    times = rows(20)
    windows = [(times[4], times[6]), (times[12], times[14])]
    scores = [0.0] * 20
    scores[5] = scores[6] = 0.9  # the first window, detected twice (rows 5 and 6)
    swept = sweep("f", times, scores, windows, STANDARD, probation_percent=0.0)
    entry = score_at(swept, 0.5)
    # Only row 5's worth counts for the window (the better of the two); the second window is missed.
    assert entry.score == pytest.approx(scaled_sigmoid(-2 / 3) / S1 - 1.0)
    assert (entry.tp, entry.fp, entry.fn) == (2, 0, 4)


def test_rows_in_the_probationary_period_are_not_scored() -> None:
    times = rows(20)
    scores = [0.0] * 20
    scores[1] = 1.0  # a false positive, but inside the first 15% (3 rows)
    swept = sweep("f", times, scores, [(times[10], times[12])], STANDARD)
    assert [r.probationary for r in swept[:4]] == [True, True, True, False]
    assert score_at(swept, 0.5).score == pytest.approx(-1.0)  # just the missed window


def test_thresholds_are_swept_from_the_top_and_the_best_is_chosen() -> None:
    times = rows(10)
    scores = [0.0, 0.0, 0.7, 0.0, 0.9, 0.0, 0.0, 0.0, 0.3, 0.0]
    swept = sweep("f", times, scores, [(times[4], times[6])], STANDARD, probation_percent=0.0)
    table = scores_by_threshold(swept)
    assert [round(t.threshold, 2) for t in table] == [1.1, 0.9, 0.7, 0.3, 0.0]
    assert table[0].score == -1.0  # nothing detected: one missed window
    assert table[1].score == pytest.approx(1.0)  # row 4, at the window's start
    assert table[2].score == pytest.approx(1.0 - 0.11)  # + a false positive before the window
    fp_after = 0.11 * scaled_sigmoid(abs(6 - 8) / 2)
    assert table[3].score == pytest.approx(1.0 - 0.11 + fp_after)
    best = best_threshold(swept)
    assert best.threshold == 0.9 and best.score == pytest.approx(1.0)
    # A threshold between two scores detects the rows at or above it: 0.8 is 0.9's row.
    assert score_at(swept, 0.8) == table[1]


def test_the_corpus_score_is_normalised_between_the_null_and_a_perfect_detector() -> None:
    times = rows(400)
    windows = [(times[100], times[104]), (times[250], times[254])]
    perfect = [0.0] * 400
    perfect[100] = perfect[250] = 1.0  # each window's first row
    late = [0.0] * 400
    late[104] = late[254] = 1.0  # each window's last row: p = -1/5
    result = score_corpus([LabelledFile("perfect", times, perfect, windows)])
    # The null detector (0.5 everywhere) does best detecting nothing: both windows missed. (On a short
    # file it would rather detect everything: two catches outweigh a few false positives.)
    assert result.null == -2.0 and result.perfect == 2.0
    assert result.normalized == pytest.approx(100.0) and result.threshold == 1.0
    null = score_corpus([LabelledFile("null", times, [0.5] * 400, windows)])
    assert null.normalized == pytest.approx(0.0)
    worth = scaled_sigmoid(-1 / 5) / S1
    late_score = score_corpus([LabelledFile("late", times, late, windows)])
    assert late_score.normalized == pytest.approx(100 * (2 * worth + 2) / 4)
    assert normalize(0.0, -2.0, 2.0) == 50.0


def test_the_threshold_is_optimised_over_the_whole_corpus() -> None:
    # File a wants a low threshold (its window's detection scores 0.4), file b a high one (its 0.4 rows
    # are false positives, before any window: 0.11 each). One threshold serves both.
    times = rows(20)
    a = [0.0] * 20
    a[10] = 0.4
    b = [0.0] * 20
    b[5] = b[6] = b[7] = 0.4
    b[15] = 0.9
    files = [
        LabelledFile("a", times, a, [(times[10], times[12])]),
        LabelledFile("b", times, b, [(times[15], times[17])]),
    ]
    result = score_corpus(files)
    # At 0.9: a misses (-1), b catches (+1) = 0. At 0.4: +1 +1 - 3 * 0.11 = 1.67: the corpus picks 0.4.
    assert result.threshold == 0.4 and result.raw == pytest.approx(2 - 0.33)
    assert [f.score for f in result.files] == pytest.approx([1.0, 1.0 - 0.33])


def test_alerts_are_judged_by_when_they_fire() -> None:
    windows = [(1000.0, 2000.0), (5000.0, 6000.0)]
    score = score_alerts([500.0, 1200.0, 1500.0, 7000.0, 9000.0], windows, start=0.0, end=7 * 86_400.0)
    assert [w.caught_at for w in score.windows] == [1200.0, None]
    assert score.windows[0].delay == 200.0 and score.caught == 1
    assert score.false_alerts == 3 and score.false_alerts_per_week == pytest.approx(3.0)
    # Firings before `start` (a probationary period) count for nothing.
    later = score_alerts([500.0, 1200.0], windows, start=1100.0, end=7 * 86_400.0)
    assert later.false_alerts == 0 and later.caught == 1


def test_labels_file_and_its_entry_for_a_trace() -> None:
    labels = read_windows(LABELS)
    key, windows = windows_for(labels, "somewhere/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv")
    assert key == "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv"
    assert windows[0] == (nab_time("2014-02-26 13:45:00.000000"), nab_time("2014-02-27 06:25:00.000000"))
    assert windows_for(labels, "ec2_cpu_utilization_24ae8d.csv")[0] == key
    with pytest.raises(DefinitionError, match="no windows for nothing.csv"):
        windows_for(labels, "nothing.csv")
    assert json.loads(LABELS.read_text())[key][1][0] == "2014-02-27 08:55:00.000000"


def test_a_malformed_labels_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text('{"a.csv": [["2014-01-01 00:00:00", "yesterday"]]}')
    with pytest.raises(DefinitionError, match=r"labels.json\['a.csv'\]\[0\]: not timestamps"):
        read_windows(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(DefinitionError, match="expected a mapping"):
        read_windows(bad)
