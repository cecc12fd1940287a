"""Validating a model: load it safely, score it on a labelled dataset, compare with the threshold."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from automation.ml.artifacts import load_model
from automation.ml.choices import ModelFormat
from automation.ml.datasets import read_dataset
from automation.ml.errors import ModelError
from automation.ml.scores import FROM_PROBABILITIES, score


@dataclass(frozen=True)
class ValidationReport:
    metric: str
    score: float
    threshold: float
    passed: bool
    n: int
    model_path: str
    model_format: str
    model_sha256: str
    validation_dataset: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def failure(self) -> str:
        return (
            f"model {self.model_path} scores {self.metric} {self.score:.4f} on {self.validation_dataset} "
            f"(n={self.n}), below the acceptance threshold {self.threshold:g}"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def validate_model(
    model_path: str,
    validation_dataset: str,
    *,
    threshold: float,
    metric: str = "accuracy",
    label_column: str = "label",
    feature_columns: list[str] | None = None,
    model_format: str | None = None,
    dataset_format: str | None = None,
    trusted_types: list[str] | tuple[str, ...] = (),
) -> ValidationReport:
    """Score the model on the dataset. ModelError naming the parameter for anything unusable; the
    report says whether the score reaches `threshold` (the caller decides what failing means)."""
    predictor = load_model(model_path, declared_format=model_format, trusted_types=trusted_types)
    dataset = read_dataset(
        validation_dataset,
        label_column=label_column,
        feature_columns=feature_columns,
        declared_format=dataset_format,
    )
    features: Any = dataset.features
    if predictor.format == ModelFormat.ONNX:
        features = dataset.numeric_features(field="validation_dataset")
    try:
        if metric in FROM_PROBABILITIES:
            value = score(metric, dataset.labels, None, predictor.probabilities(features))
        else:
            value = score(metric, dataset.labels, predictor.predict(features))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own error on these rows (columns, shapes)
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ModelError(
            f"the model could not predict on {validation_dataset}: {reason}", field="validation_dataset"
        ) from None
    path = Path(model_path)
    return ValidationReport(
        metric=metric,
        score=value,
        threshold=threshold,
        passed=value >= threshold,
        n=len(dataset),
        model_path=str(path),
        model_format=predictor.format,
        model_sha256=file_sha256(path),
        validation_dataset=str(validation_dataset),
    )
