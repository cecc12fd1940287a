"""The Numenta Anomaly Benchmark's labels and scoring, and how alerts fare against labelled windows. Pure.

NAB scoring, as NAB v1.1 computes it (`nab/sweeper.py`, `nab/optimizer.py`, `nab/runner.py` normalize;
weights from `config/profiles.json`):

- each file's first 15% of rows (at most 750) is probationary: not scored;
- a row inside a labelled window, detected, is worth `A_TP * S(p) / S(-1)`, where p = -(right - i + 1) /
  width is its position relative to the window's end and S(p) = 2 / (1 + exp(5p)) - 1 the scaled sigmoid
  (-1 at the window's start, near 0 at its end). Only the best (earliest) detection of a window counts; a
  window without one costs -A_FN;
- a detected row outside every window costs `A_FP * S(p)` with p its distance past the end of the
  preceding window in units of that window's width - 1 (S(p) = -1 from 3 widths on, and before the
  first window);
- the threshold is the one that maximises the sum over the whole corpus (rows with score >= threshold are
  detections), and the corpus score is normalised: 100 * (raw - null) / (perfect - null), with null the
  score of NAB's null detector (a constant 0.5 everywhere, under its own best threshold) and perfect
  `A_TP` times the number of windows.

Where this differs from NAB's code, on inputs NAB's own data never has: a window's limits are matched to
the first and last rows inside it (NAB needs both to be row timestamps); a window of one row followed by a
false positive is not a division by zero (the distance counts as 3 widths); a threshold below every
score detects every row (NAB's `scoreDataSet` returns nothing there).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automation.errors import DefinitionError


@dataclass(frozen=True)
class CostMatrix:
    """A NAB profile's weights: A_TP, A_FP, A_FN (A_TN is unused by the scorer)."""

    tp: float
    fp: float
    fn: float


#: NAB's `config/profiles.json` (v1.0 onwards).
PROFILES: dict[str, CostMatrix] = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}
STANDARD = PROFILES["standard"]
PROBATION_PERCENT = 0.15
#: The anomaly score NAB's null detector gives every row.
NULL_SCORE = 0.5
#: NAB's sweep starts above every score in [0, 1]: the "detect nothing" threshold.
NOTHING = 1.1

Window = tuple[float, float]  # (start, end), epoch seconds, both inclusive


def scaled_sigmoid(position: float) -> float:
    """NAB's S(p) = 2 * sigmoid(-5p) - 1, and -1 from p = 3 on (a false positive far past any window)."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_rows(rows: int, percent: float = PROBATION_PERCENT) -> float:
    """The rows NAB does not score at the start of a file: min(floor(percent * rows), percent * 5000)."""
    return min(math.floor(percent * rows), percent * 5000)


def nab_time(text: str) -> float:
    """A NAB timestamp ('2014-02-26 13:45:00.000000', UTC without a zone) as epoch seconds."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def read_windows(path: str | Path) -> dict[str, list[Window]]:
    """NAB's `combined_windows.json`: data file (e.g. `realKnownCause/nyc_taxi.csv`) -> its windows."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DefinitionError([(str(path), f"cannot read ({exc.strerror or exc})")]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DefinitionError([(str(path), f"not JSON ({exc})")]) from None
    if not isinstance(document, dict):
        raise DefinitionError([(str(path), "expected a mapping of data file to its windows")])
    windows: dict[str, list[Window]] = {}
    for name, pairs in document.items():
        where = f"{path.name}[{name!r}]"
        if not isinstance(pairs, list):
            raise DefinitionError([(where, "expected a list of [start, end] pairs")])
        found: list[Window] = []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise DefinitionError([(f"{where}[{i}]", "expected [start, end] timestamps")])
            try:
                start, end = nab_time(pair[0]), nab_time(pair[1])
            except ValueError:
                raise DefinitionError([(f"{where}[{i}]", f"not timestamps: {pair}")]) from None
            if end < start:
                raise DefinitionError([(f"{where}[{i}]", "the window ends before it starts")])
            found.append((start, end))
        windows[str(name)] = sorted(found)
    return windows


def windows_for(labels: Mapping[str, list[Window]], trace: str | Path) -> tuple[str, list[Window]]:
    """The labels' entry for a trace file: the key its path ends with (`realKnownCause/nyc_taxi.csv`), or
    the only key with its file name."""
    path = Path(trace)
    parts = path.as_posix().split("/")
    for depth in range(len(parts), 0, -1):
        key = "/".join(parts[-depth:])
        if key in labels:
            return key, labels[key]
    named = [key for key in labels if key.rsplit("/", 1)[-1] == path.name]
    if len(named) == 1:
        return named[0], labels[named[0]]
    if named:
        raise DefinitionError([("labels", f"several entries are named {path.name}: {', '.join(named)}")])
    raise DefinitionError([("labels", f"no windows for {path.name} in the labels file")])


# -- NAB scoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredRow:
    """One row as NAB's sweeper sees it: its detector score, what detecting it is worth, its window."""

    anomaly_score: float
    sweep_score: float
    #: (file, window index) when inside a window, else None.
    window: tuple[str, int] | None
    probationary: bool


@dataclass(frozen=True)
class ThresholdScore:
    """The raw score (and row counts) when every row scored >= `threshold` is a detection."""

    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int


def window_rows(times: Sequence[float], windows: Sequence[Window]) -> list[tuple[int, int]]:
    """Each window as (first row, last row) inside it; a window holding no row is left out. `times` must
    not go back (NAB's files are in time order within a window)."""
    ordered = sorted(times)
    if list(ordered) != list(times):
        # A file whose clock goes back: find rows by scanning (NAB compares timestamps the same way).
        spans = []
        for start, end in windows:
            inside = [i for i, t in enumerate(times) if start <= t <= end]
            if inside:
                spans.append((inside[0], inside[-1]))
        return spans
    spans = []
    for start, end in windows:
        first, last = bisect_left(times, start), bisect_right(times, end) - 1
        if first <= last:
            spans.append((first, last))
    return spans


def sweep(
    name: str,
    times: Sequence[float],
    scores: Sequence[float],
    windows: Sequence[Window],
    costs: CostMatrix = STANDARD,
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> list[ScoredRow]:
    """NAB's `calcSweepScore` for one file: what each row would be worth if detected."""
    if len(times) != len(scores):
        raise ValueError(f"{name}: {len(times)} times but {len(scores)} scores")
    spans = window_rows(times, windows)
    probation = probation_rows(len(times), probation_percent)
    max_tp = scaled_sigmoid(-1.0)
    inside: dict[int, int] = {}
    for index, (first, last) in enumerate(spans):
        for row in range(first, last + 1):
            inside.setdefault(row, index)
    rows: list[ScoredRow] = []
    previous: tuple[int, int] | None = None  # (right row, width) of the last window passed
    for i, score in enumerate(scores):
        window = inside.get(i)
        if window is not None:
            first, last = spans[window]
            width = last - first + 1
            worth = scaled_sigmoid(-(last - i + 1) / width) * costs.tp / max_tp
            if i == last:
                previous = (last, width)
        else:
            if previous is None or previous[1] <= 1:
                position = 3.0
            else:
                position = abs(previous[0] - i) / (previous[1] - 1)
            worth = scaled_sigmoid(position) * costs.fp
        rows.append(
            ScoredRow(
                float(score) if not math.isnan(score) else 0.0,
                worth,
                (name, window) if window is not None else None,
                i < probation,
            )
        )
    return rows


def scores_by_threshold(rows: Sequence[ScoredRow], costs: CostMatrix = STANDARD) -> list[ThresholdScore]:
    """NAB's `calcScoreByThreshold`: the raw score at each distinct detector score, highest first, starting
    with `NOTHING` (no detection). Rows of several files may be pooled: windows are named per file."""
    scorable = sorted((r for r in rows if not r.probationary), key=lambda r: r.anomaly_score, reverse=True)
    parts: dict[tuple[str, int], float] = {r.window: -costs.fn for r in scorable if r.window is not None}
    total = sum(parts.values())  # kept equal to sum(parts.values()) + the false positives' worth
    tn = sum(1 for r in scorable if r.window is None)
    fn = len(scorable) - tn
    tp = fp = 0
    found: list[ThresholdScore] = []
    threshold = NOTHING
    for row in scorable:
        if row.anomaly_score != threshold:
            found.append(ThresholdScore(threshold, total, tp, tn, fp, fn))
            threshold = row.anomaly_score
        if row.window is None:
            fp, tn = fp + 1, tn - 1
            total += row.sweep_score
        else:
            tp, fn = tp + 1, fn - 1
            if row.sweep_score > parts[row.window]:
                total += row.sweep_score - parts[row.window]
                parts[row.window] = row.sweep_score
    found.append(ThresholdScore(threshold, total, tp, tn, fp, fn))
    return found


def score_at(rows: Sequence[ScoredRow], threshold: float, costs: CostMatrix = STANDARD) -> ThresholdScore:
    """NAB's `scoreDataSet`: the raw score with rows scored >= `threshold` detected."""
    table = scores_by_threshold(rows, costs)
    chosen = table[0]
    for entry in table:
        if entry.threshold < threshold:
            break
        chosen = entry
    return chosen


def best_threshold(rows: Sequence[ScoredRow], costs: CostMatrix = STANDARD) -> ThresholdScore:
    """NAB's optimiser: the threshold of the highest raw score (the highest such threshold on a tie)."""
    table = scores_by_threshold(rows, costs)
    return max(table, key=lambda entry: entry.score)


@dataclass(frozen=True)
class FileScore:
    name: str
    score: float
    tp: int
    fp: int
    windows: int


@dataclass(frozen=True)
class CorpusScore:
    """A detector's NAB score on a corpus under one profile."""

    profile: str
    normalized: float
    raw: float
    null: float
    perfect: float
    threshold: float
    files: list[FileScore] = field(default_factory=list)


@dataclass(frozen=True)
class LabelledFile:
    """A data file, its windows, and a detector's score for each row (file order)."""

    name: str
    times: Sequence[float]
    scores: Sequence[float]
    windows: Sequence[Window]


def score_corpus(
    files: Sequence[LabelledFile],
    profile: str = "standard",
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> CorpusScore:
    """Optimise the threshold over the whole corpus, score each file with it, and normalise between NAB's
    null detector and a perfect one."""
    costs = PROFILES[profile]
    per_file = {
        f.name: sweep(f.name, f.times, f.scores, f.windows, costs, probation_percent=probation_percent)
        for f in files
    }
    pooled = [row for rows in per_file.values() for row in rows]
    best = best_threshold(pooled, costs)
    null_rows = [replace_score(row, NULL_SCORE) for row in pooled]
    null = best_threshold(null_rows, costs).score
    perfect = costs.tp * sum(len(f.windows) for f in files)
    scored = []
    for f in files:
        entry = score_at(per_file[f.name], best.threshold, costs)
        scored.append(FileScore(f.name, entry.score, entry.tp, entry.fp, len(f.windows)))
    return CorpusScore(
        profile=profile,
        normalized=normalize(best.score, null, perfect),
        raw=best.score,
        null=null,
        perfect=perfect,
        threshold=best.threshold,
        files=scored,
    )


def replace_score(row: ScoredRow, score: float) -> ScoredRow:
    return ScoredRow(score, row.sweep_score, row.window, row.probationary)


def normalize(raw: float, null: float, perfect: float) -> float:
    """NAB's final score: 100 for the perfect detector, 0 for the null one."""
    if perfect == null:
        return math.nan
    return 100.0 * (raw - null) / (perfect - null)


# -- alerts against labelled windows ---------------------------------------------------------------------


@dataclass(frozen=True)
class WindowCatch:
    start: float
    end: float
    #: When the first firing inside the window was detected (None: missed).
    caught_at: float | None

    @property
    def delay(self) -> float | None:
        """Seconds from the window's start to the first firing in it."""
        return None if self.caught_at is None else self.caught_at - self.start


@dataclass(frozen=True)
class AlertScore:
    """How a rule's firings meet the labelled windows of one series, over `span` seconds of evaluation."""

    windows: list[WindowCatch]
    false_alerts: int
    span: float

    @property
    def caught(self) -> int:
        return sum(1 for w in self.windows if w.caught_at is not None)

    @property
    def false_alerts_per_week(self) -> float:
        return self.false_alerts * 7 * 86_400 / self.span if self.span > 0 else math.nan

    @property
    def mean_delay(self) -> float | None:
        delays = [w.delay for w in self.windows if w.delay is not None]
        return sum(delays) / len(delays) if delays else None

    def as_dict(self) -> dict[str, Any]:
        mean = self.mean_delay
        return {
            "windows": len(self.windows),
            "caught": self.caught,
            "false_alerts": self.false_alerts,
            "false_alerts_per_week": round(self.false_alerts_per_week, 3),
            "mean_delay_minutes": None if mean is None else round(mean / 60, 1),
            "per_window": [
                {
                    "start": _iso(w.start),
                    "end": _iso(w.end),
                    "caught_at": _iso(w.caught_at),
                    "delay_minutes": None if w.delay is None else round(w.delay / 60, 1),
                }
                for w in self.windows
            ],
        }


def score_alerts(
    firing_starts: Sequence[float], windows: Sequence[Window], *, start: float, end: float
) -> AlertScore:
    """Judge alerts by when they fired (each firing's first evaluation), counting only firings in
    [start, end]: a window is caught when a firing starts inside it (NAB's rule: a detection inside the
    window is a true positive; a firing already running when the window opens pages nobody anew, so it
    does not count); a firing starting outside every window is a false alert. Windows are the labelled
    windows that overlap [start, end]."""
    considered = sorted(t for t in firing_starts if start <= t <= end)
    kept = [(a, b) for a, b in windows if b >= start and a <= end]
    catches = []
    for a, b in kept:
        inside = [t for t in considered if a <= t <= b]
        catches.append(WindowCatch(a, b, inside[0] if inside else None))
    false_alerts = sum(1 for t in considered if not any(a <= t <= b for a, b in windows))
    return AlertScore(catches, false_alerts, end - start)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
