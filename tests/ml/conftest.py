"""Models and datasets for the ml tests, built here from a dataset scikit-learn ships (nothing downloaded),
in a temporary directory: a good and a faster ONNX model, a slower one, and one below any threshold."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class MlFiles:
    root: Path
    v1: Path  # logistic regression (skops): the version the service runs first
    v2: Path  # logistic regression, another C, exported to ONNX: as accurate, as fast or faster
    slow: Path  # a random forest of 200 trees (skops): as accurate, several times slower per request
    weak: Path  # always the most frequent class (skops): far below 0.92
    validation_csv: Path
    validation_parquet: Path
    columns: list[str]
    live_rows: list[list[float]]
    live_labels: list[int]


def build_ml_files(root: Path) -> MlFiles:
    import numpy as np
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "label"})
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    train, held_out = frame.iloc[::2], frame.iloc[1::2]
    features, labels = train.drop(columns="label"), train["label"]

    def fitted(model: object) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of the solvers is not what we test
            return model.fit(features, labels)  # type: ignore[attr-defined]

    root.mkdir(parents=True, exist_ok=True)
    v1 = root / "recommender-v1.skops"
    sio.dump(fitted(make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))), v1)
    v2 = root / "recommender-v2.onnx"
    good = fitted(make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=5000)))
    onnx = to_onnx(good, features.iloc[:1].to_numpy(np.float32), options={"zipmap": False})
    v2.write_bytes(onnx.SerializeToString())
    slow = root / "recommender-v3.skops"
    sio.dump(fitted(RandomForestClassifier(n_estimators=200, random_state=0)), slow)
    weak = root / "recommender-v0.skops"
    sio.dump(fitted(DummyClassifier(strategy="most_frequent")), weak)
    validation_csv = root / "validation.csv"
    held_out.to_csv(validation_csv, index=False)
    validation_parquet = root / "validation.parquet"
    held_out.to_parquet(validation_parquet)
    live = held_out.drop(columns="label")
    return MlFiles(
        root=root,
        v1=v1,
        v2=v2,
        slow=slow,
        weak=weak,
        validation_csv=validation_csv,
        validation_parquet=validation_parquet,
        columns=list(live.columns),
        live_rows=live.to_numpy(float).tolist(),
        live_labels=held_out["label"].astype(int).tolist(),
    )


@pytest.fixture(scope="session")
def ml_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlFiles]:
    yield build_ml_files(tmp_path_factory.mktemp("ml"))
