"""Validating a model file: skops (with a trusted-types list) and ONNX scored on CSV and Parquet; pickle and
joblib refused without being read; every bad input a typed error naming its field, at registration where
the value is known then."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from automation.ml.errors import ModelError
from automation.ml.validation import validate_model
from tests.ml.conftest import MlFiles


@pytest.mark.parametrize("model", ["v1", "v2", "slow"])
@pytest.mark.parametrize("dataset", ["validation_csv", "validation_parquet"])
def test_skops_and_onnx_models_score_on_csv_and_parquet(ml_files: MlFiles, model: str, dataset: str) -> None:
    report = validate_model(str(getattr(ml_files, model)), str(getattr(ml_files, dataset)), threshold=0.92)

    assert report.passed and 0.92 <= report.score <= 1.0
    assert report.n == len(ml_files.live_labels) == 284
    assert report.model_format == ("onnx" if model == "v2" else "skops")
    assert len(report.model_sha256) == 64


def test_a_weak_model_scores_below_the_threshold(ml_files: MlFiles) -> None:
    report = validate_model(str(ml_files.weak), str(ml_files.validation_csv), threshold=0.92)

    assert not report.passed and report.score < 0.7
    assert "below the acceptance threshold 0.92" in report.failure()
    assert str(ml_files.weak) in report.failure()


@pytest.mark.parametrize(
    "metric", ["roc_auc", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro"]
)
def test_other_metrics(ml_files: MlFiles, metric: str) -> None:
    for model in (ml_files.v1, ml_files.v2):
        report = validate_model(str(model), str(ml_files.validation_csv), threshold=0.5, metric=metric)
        assert report.metric == metric and 0.9 < report.score <= 1.0


def refused(field: str, match: str, **call: Any) -> ModelError:
    with pytest.raises(ModelError, match=match) as caught:
        validate_model(**{"threshold": 0.9, **call})
    assert caught.value.field == field and caught.value.retryable is False
    return caught.value


@pytest.mark.parametrize("suffix", [".pkl", ".joblib", ".pickle"])
def test_pickle_and_joblib_files_are_refused_naming_the_file(
    ml_files: MlFiles, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(pickle.dumps({"not": "read"}))

    error = refused(
        "model_path",
        "pickle/joblib file",
        model_path=str(path),
        validation_dataset=str(ml_files.validation_csv),
    )

    assert str(path) in str(error) and "skops" in str(error)


def test_a_pickle_renamed_skops_or_onnx_is_still_refused(ml_files: MlFiles, tmp_path: Path) -> None:
    import joblib

    renamed = [("model.skops", None), *((f"model-{c}.onnx", c) for c in (3, "gzip", "bz2", "xz", "lzma"))]
    for name, compress in renamed:
        path = tmp_path / name
        if compress is None:
            path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
        else:
            joblib.dump([1, 2, 3], path, compress=compress)  # written, never read back
        refused(
            "model_path",
            "holds a pickle stream",
            model_path=str(path),
            validation_dataset=str(ml_files.validation_csv),
        )


def test_untrusted_types_are_refused_unless_trusted_explicitly(ml_files: MlFiles, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    # A transformer holding a function: loading it would make that function callable by `predict`.
    path = tmp_path / "model.skops"
    sio.dump(FunctionTransformer(func=shutil.rmtree), path)

    error = refused(
        "model_path",
        "types that are not trusted: shutil.rmtree",
        model_path=str(path),
        validation_dataset=str(ml_files.validation_csv),
    )
    assert str(path) in str(error)


def test_missing_unknown_and_broken_files(ml_files: MlFiles, tmp_path: Path) -> None:
    csv = str(ml_files.validation_csv)
    refused("model_path", "does not exist", model_path=str(tmp_path / "absent.skops"), validation_dataset=csv)
    (tmp_path / "model.bin").write_bytes(b"\x08\x01")
    refused(
        "model_path", "unknown model format", model_path=str(tmp_path / "model.bin"), validation_dataset=csv
    )
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x01garbage")
    refused(
        "model_path",
        "not a loadable ONNX model",
        model_path=str(tmp_path / "broken.onnx"),
        validation_dataset=csv,
    )
    (tmp_path / "broken.skops").write_bytes(b"PK\x03\x04garbage")
    refused(
        "model_path",
        "not a readable skops file",
        model_path=str(tmp_path / "broken.skops"),
        validation_dataset=csv,
    )
    (tmp_path / "text.skops").write_text("hello")
    refused("model_path", "not a skops file", model_path=str(tmp_path / "text.skops"), validation_dataset=csv)


def test_dataset_faults_name_the_field(ml_files: MlFiles, tmp_path: Path) -> None:
    model = str(ml_files.v1)
    refused(
        "validation_dataset",
        "does not exist",
        model_path=model,
        validation_dataset=str(tmp_path / "absent.csv"),
    )
    refused(
        "validation_dataset",
        "unknown dataset format",
        model_path=model,
        validation_dataset=str(tmp_path / "rows.txt"),
    )
    error = refused(
        "label_column",
        "no column 'target'",
        model_path=model,
        validation_dataset=str(ml_files.validation_csv),
        label_column="target",
    )
    assert "mean_radius" in str(error)
    refused(
        "feature_columns",
        "not in .*: nope",
        model_path=model,
        validation_dataset=str(ml_files.validation_csv),
        feature_columns=["nope"],
    )
    (tmp_path / "empty.csv").write_text("")
    refused(
        "validation_dataset",
        "not a readable csv file",
        model_path=model,
        validation_dataset=str(tmp_path / "empty.csv"),
    )
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    refused(
        "validation_dataset",
        "not a readable parquet file",
        model_path=model,
        validation_dataset=str(tmp_path / "broken.parquet"),
    )
    # The model's own refusal of the rows (columns it was not fitted on) names the dataset.
    frame = __import__("pandas").read_csv(ml_files.validation_csv)
    frame.drop(columns=["mean_radius"]).to_csv(tmp_path / "fewer.csv", index=False)
    refused(
        "validation_dataset",
        "could not predict",
        model_path=model,
        validation_dataset=str(tmp_path / "fewer.csv"),
    )
    frame.assign(mean_radius="x").to_csv(tmp_path / "text.csv", index=False)
    refused(
        "validation_dataset",
        "column 'mean_radius' is not numeric",
        model_path=str(ml_files.v2),
        validation_dataset=str(tmp_path / "text.csv"),
    )


# Registration: literal values are checked when a workflow is registered, templated ones when it runs.


def register(*actions: dict[str, Any]) -> None:
    from automation import WorkflowDefinition
    from automation.definitions.validation import validate_definition

    validate_definition(WorkflowDefinition.from_document({"name": "ml-check", "actions": list(actions)}))


def validate_step(**parameters: Any) -> dict[str, Any]:
    base = {"model_path": "m.skops", "validation_dataset": "v.csv", "acceptance_threshold": 0.92}
    return {"name": "validate_model", "action_type": "ml", "parameters": {**base, **parameters}}


@pytest.mark.parametrize(
    ("parameters", "field", "reason"),
    [
        ({"model_path": "model.pkl"}, "model_path", "pickle/joblib file is refused"),
        ({"model_path": "model.joblib"}, "model_path", "pickle/joblib file is refused"),
        ({"acceptance_threshold": 1.5}, "acceptance_threshold", "less than or equal to 1"),
        ({"acceptance_threshold": -0.1}, "acceptance_threshold", "greater than or equal to 0"),
        ({"metric": "loss"}, "metric", "Input should be"),
        ({"model_path": "model.h5"}, "model_format", "the model_path has no .skops or .onnx suffix"),
        ({"validation_dataset": "rows.json"}, "dataset_format", "no .csv or .parquet suffix"),
        ({"trusted_types": ["builtins.eval"]}, "trusted_types", "never trusted"),
        ({"trusted_types": ["rmtree"]}, "trusted_types", "not a dotted type name"),
        ({"label": "y"}, "label", "Extra inputs are not permitted"),
    ],
)
def test_bad_validate_parameters_are_refused_at_registration(
    parameters: dict[str, Any], field: str, reason: str
) -> None:
    from automation.errors import DefinitionError

    with pytest.raises(DefinitionError) as caught:
        register(validate_step(**parameters))

    [(path, message)] = caught.value.errors
    assert path == f"actions[0].parameters.{field}" and reason in message


def test_templated_and_declared_values_pass_registration() -> None:
    register(validate_step(model_path="${model_path}", validation_dataset="${dataset}"))
    register(
        validate_step(
            model_path="model.h5", model_format="onnx", validation_dataset="rows.txt", dataset_format="csv"
        )
    )


@pytest.mark.parametrize(
    ("step", "field", "reason"),
    [
        (
            {
                "action_type": "ml.deploy_model",
                "parameters": {"service_name": "s", "model_path": "m.pkl", "model_version": "v2"},
            },
            "model_path",
            "pickle/joblib",
        ),
        (
            {
                "action_type": "ml.deploy_model",
                "parameters": {"service_name": "s", "model_path": "m.onnx", "model_version": "v 2"},
            },
            "model_version",
            "String should match pattern",
        ),
        (
            {
                "action_type": "ml.deploy_model",
                "parameters": {
                    "service_name": "s",
                    "model_path": "m.onnx",
                    "model_version": "v2",
                    "percent": 0,
                },
            },
            "percent",
            "greater than 0",
        ),
        (
            {"action_type": "ml.promote", "parameters": {"service_name": "s", "verdict": "maybe"}},
            "verdict",
            "Input should be",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {"baseline_version": "v1", "canary_version": "v2", "metrics": []},
            },
            "metrics",
            "at least 1 item",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "bad-name"}],
                },
            },
            "metrics[0].metric",
            "String should match pattern",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "m"}],
                    "labels": {"bad-label": "x"},
                },
            },
            "labels",
            "not a label name",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v1",
                    "metrics": [{"metric": "m"}],
                },
            },
            "",
            "nothing tells them apart",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "m"}, {"metric": "m"}],
                },
            },
            "",
            "named more than once: m",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "m"}],
                    "pass_score": 50,
                },
            },
            "",
            "marginal_score (75) is above pass_score",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "m", "labels": {"version": "x"}}],
                },
            },
            "",
            "is set by the analysis",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "errors", "denominator": "errors"}],
                },
            },
            "metrics[0]",
            "denominator: 'errors' cannot count out of itself",
        ),
        (
            {
                "action_type": "ml.canary_analysis",
                "parameters": {
                    "baseline_version": "v1",
                    "canary_version": "v2",
                    "metrics": [{"metric": "errors", "denominator": "requests-total"}],
                },
            },
            "metrics[0].denominator",
            "should match pattern",
        ),
    ],
)
def test_bad_parameters_of_the_other_actions_are_refused_at_registration(
    step: dict[str, Any], field: str, reason: str
) -> None:
    from automation.errors import DefinitionError

    with pytest.raises(DefinitionError) as caught:
        register({"name": "step", **step})

    [(path, message)] = caught.value.errors
    assert path == f"actions[0].parameters.{field}".rstrip(".") and reason in message
