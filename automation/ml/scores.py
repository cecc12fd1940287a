"""Validation metrics: a model's score on labelled rows, higher is better for every one of them, at most 1.

Classification: `accuracy`, `balanced_accuracy`, `f1_macro`, `precision_macro`, `recall_macro`, `roc_auc`
(from class probabilities; one-vs-rest when there are more than two classes). Regression: `r2`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automation.ml.choices import METRICS
from automation.ml.errors import ModelError

#: Metrics computed from class probabilities rather than predicted labels.
FROM_PROBABILITIES = frozenset({"roc_auc"})


def score(metric: str, labels: np.ndarray, predicted: np.ndarray | None, probabilities: Any = None) -> float:
    """`metric` of the predictions (or probabilities) against the labels."""
    from sklearn import metrics as sk

    if metric in FROM_PROBABILITIES:
        if probabilities is None:
            raise ModelError(
                f"'{metric}' needs class probabilities, and the model gives none", field="metric"
            )
        scores = np.asarray(probabilities, dtype=float)
        try:
            if scores.ndim == 2 and scores.shape[1] == 2:
                return float(sk.roc_auc_score(labels, scores[:, 1]))
            return float(sk.roc_auc_score(labels, scores, multi_class="ovr"))
        except ValueError as exc:
            raise ModelError(f"'{metric}' cannot be computed: {exc}", field="metric") from None
    assert predicted is not None
    if len(predicted) != len(labels):
        raise ModelError(
            f"the model gave {len(predicted)} predictions for {len(labels)} rows", field="model_path"
        )
    try:
        if metric == "accuracy":
            return float(sk.accuracy_score(labels, _like(predicted, labels)))
        if metric == "balanced_accuracy":
            return float(sk.balanced_accuracy_score(labels, _like(predicted, labels)))
        if metric in ("f1_macro", "precision_macro", "recall_macro"):
            function = {"f1_macro": sk.f1_score, "precision_macro": sk.precision_score}.get(
                metric, sk.recall_score
            )
            return float(function(labels, _like(predicted, labels), average="macro", zero_division=0))
        if metric == "r2":
            return float(sk.r2_score(labels.astype(float), predicted.astype(float)))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"'{metric}' cannot be computed on these labels: {exc}", field="metric") from None
    raise ModelError(f"unknown metric '{metric}' (known: {', '.join(METRICS)})", field="metric")


def _like(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predictions in the labels' kind: an ONNX model answers int64 for labels a CSV read as floats."""
    if labels.dtype.kind in "iuf" and predicted.dtype.kind in "iuf":
        return predicted.astype(labels.dtype)
    if labels.dtype.kind in "OUS" and predicted.dtype.kind not in "OUS":
        return predicted.astype(str)
    return predicted
