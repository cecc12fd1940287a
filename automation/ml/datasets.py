"""Validation datasets: a CSV or Parquet file with a label column, read into features and labels.

Reading goes through pandas (CSV) and pyarrow (Parquet): neither runs code from the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automation.ml.choices import DATASET_SUFFIXES, DatasetFormat
from automation.ml.errors import ModelError

#: Rows read at most: a validation set, not a training set.
MAX_ROWS = 5_000_000


@dataclass(frozen=True)
class Dataset:
    features: pd.DataFrame
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def numeric_features(self, *, field: str) -> np.ndarray:
        """The features as one numeric matrix (what an ONNX model takes); a non-numeric column is named."""
        for name, dtype in self.features.dtypes.items():
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise ModelError(f"column '{name}' is not numeric ({dtype})", field=field)
        matrix: np.ndarray = self.features.to_numpy(dtype=np.float64)
        return matrix


def dataset_format(path: Path, declared: str | None, *, field: str) -> str:
    chosen = declared or DATASET_SUFFIXES.get(path.suffix.lower())
    if chosen is None:
        raise ModelError(
            f"{path}: unknown dataset format (suffix '{path.suffix}'); give a .csv or .parquet file, or set "
            "dataset_format",
            field=field,
        )
    return chosen


def read_dataset(
    path: str | Path,
    *,
    label_column: str,
    feature_columns: list[str] | None = None,
    declared_format: str | None = None,
    field: str = "validation_dataset",
) -> Dataset:
    """The dataset's features (every column but the label, or `feature_columns`) and labels; ModelError
    naming the parameter when the file is missing, unreadable, empty, or lacks a column."""
    path = Path(path)
    chosen = dataset_format(path, declared_format, field=field)
    if not path.is_file():
        raise ModelError(
            f"{path} does not exist" if not path.exists() else f"{path} is not a file", field=field
        )
    frame = _read(path, chosen, field=field)
    if len(frame) > MAX_ROWS:
        raise ModelError(f"{path} has {len(frame):,} rows; at most {MAX_ROWS:,}", field=field)
    columns = [str(c) for c in frame.columns]
    frame.columns = pd.Index(columns)
    if label_column not in columns:
        shown = ", ".join(columns[:20]) + (", …" if len(columns) > 20 else "")
        raise ModelError(f"no column '{label_column}' in {path} (columns: {shown})", field="label_column")
    if feature_columns is None:
        feature_columns = [c for c in columns if c != label_column]
    else:
        missing = [c for c in feature_columns if c not in columns]
        if missing:
            raise ModelError(f"not in {path}: {', '.join(missing)}", field="feature_columns")
        if label_column in feature_columns:
            raise ModelError(
                f"the label column '{label_column}' is listed as a feature", field="feature_columns"
            )
    if not feature_columns:
        raise ModelError(f"{path} has no feature column besides '{label_column}'", field=field)
    if frame.empty:
        raise ModelError(f"{path} has no rows", field=field)
    labels = frame[label_column]
    if labels.isna().any():
        raise ModelError(f"{int(labels.isna().sum())} row(s) of {path} have no label", field="label_column")
    return Dataset(features=frame[feature_columns], labels=labels.to_numpy())


def _read(path: Path, chosen: str, *, field: str) -> Any:
    try:
        if chosen == DatasetFormat.CSV:
            return pd.read_csv(path)
        return pd.read_parquet(path, engine="pyarrow")
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ModelError(f"{path} is not a readable {chosen} file ({reason})", field=field) from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own classes for a corrupt file
        raise ModelError(
            f"{path} is not a readable {chosen} file ({type(exc).__name__})", field=field
        ) from None
