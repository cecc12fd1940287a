"""Kinds and outcomes of the ml domain, with their named groups; no literal of them anywhere else."""

from __future__ import annotations


class ModelFormat:
    """How a model file is read. Pickle and joblib are not formats we read: loading them runs code."""

    SKOPS = "skops"
    ONNX = "onnx"

    ALL = (SKOPS, ONNX)


class DatasetFormat:
    CSV = "csv"
    PARQUET = "parquet"

    ALL = (CSV, PARQUET)


#: Suffixes of files whose loading runs code (pickle and what wraps it: joblib, dill, torch's .pt/.pth).
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".jbl", ".sav", ".dill", ".pt", ".pth"})
MODEL_SUFFIXES = {".skops": ModelFormat.SKOPS, ".onnx": ModelFormat.ONNX}
DATASET_SUFFIXES = {
    ".csv": DatasetFormat.CSV,
    ".parquet": DatasetFormat.PARQUET,
    ".pq": DatasetFormat.PARQUET,
}
#: Validation metrics: higher is better for each, and none exceeds 1.
METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc", "r2")


class Verdict:
    """The outcome of a canary analysis, as Kayenta names them."""

    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"

    ALL = (PASS, MARGINAL, FAIL)
    #: What promotes by default; the rest roll back.
    PROMOTING = (PASS,)
    ROLLING_BACK = (MARGINAL, FAIL)


class MetricOutcome:
    """One metric's comparison: no regression, a regression, or too few samples to say."""

    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "nodata"


class Regression:
    """Which change of a metric is a regression: a rise (error rate, latency), a fall (a quality metric),
    or any significant change."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"

    ALL = (INCREASE, DECREASE, EITHER)
