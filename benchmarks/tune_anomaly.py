"""NAB score of `anomaly()` on one half of NAB's files with some of the scorer's constants changed: the
harness the constants were chosen with (on the tuning half only; see docs/alerting.md). Each row is scored
as `bench_anomaly.py` scores it (the scorer on the series, at the row's time), without the rule
comparisons, so a run takes about a minute.

    python benchmarks/tune_anomaly.py [--half tuning|held_out|all] [--set error_quantile=0.995 ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation.alerting.backtest import trace_series  # noqa: E402
from automation.alerting.nab import PROFILES, LabelledFile, read_windows, score_corpus  # noqa: E402
from automation.alerting.rules import ForecastAnomalyScorer, anomaly_score_01  # noqa: E402
from automation.forecasting.traces import load_points  # noqa: E402
from benchmarks.bench_anomaly import HALVES, nab_directory  # noqa: E402


def constant(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=NUMBER")
    return name, float(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=(*HALVES, "all"), default="tuning")
    parser.add_argument("--set", type=constant, action="append", default=[], help="a scorer constant")
    options = parser.parse_args()
    changed = {
        name: int(value) if value.is_integer() and name != "error_quantile" else value
        for name, value in options.set
    }
    directory = nab_directory()
    labels = read_windows(directory / "labels" / "combined_windows.json")
    names = sorted(key for key in labels if (directory / key).is_file())
    if options.half != "all":
        names = names[HALVES.index(options.half) :: 2]
    began = time.perf_counter()
    files = []
    for name in names:
        points = load_points(directory / name)
        times = [float(t) / 1e9 for t in points.times.asi8]
        series = trace_series(times, points.values, metric="value", labels={"trace": points.name})
        scorer = ForecastAnomalyScorer(**changed)  # type: ignore[arg-type]
        scores = [anomaly_score_01(scorer.score(series, t)) for t in times]
        files.append(LabelledFile(name, times, scores, labels[name]))
    found = {profile: score_corpus(files, profile) for profile in PROFILES}
    print(
        f"{options.half} ({len(files)} files) {changed or 'defaults'}: "
        + ", ".join(f"{profile} {score.normalized:.1f}" for profile, score in found.items())
        + f" ({time.perf_counter() - began:.0f} s)"
    )
    for entry in found["standard"].files:
        print(f"  {entry.name:<60} {entry.score:>7.2f}  tp rows {entry.tp:>3}  fp rows {entry.fp:>3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
