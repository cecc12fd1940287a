"""The parameters of the `ml.*` actions: what a workflow author writes, checked when the workflow is
registered (a literal pickle path, a threshold out of range, an unknown metric: refused there, naming
the field) and again with the run's values when the step runs.

Only pydantic and the domain's leaves here: the task modules load them at worker start.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from automation.ml.choices import (
    DATASET_SUFFIXES,
    METRICS,
    MODEL_SUFFIXES,
    PICKLE_SUFFIXES,
    DatasetFormat,
    ModelFormat,
    Regression,
    Verdict,
)
from automation.providers.local.services_file import VERSION_PATTERN
from automation.templating import has_references

#: Metric and label names as the push store and Prometheus spell them.
METRIC_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
LABEL_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
_LABEL = re.compile(LABEL_PATTERN)
#: Dotted names of types a skops file may construct; never a module that runs commands or code.
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_NEVER_TRUSTED = (
    "builtins.",
    "os.",
    "posix.",
    "subprocess.",
    "sys.",
    "importlib.",
    "pickle.",
    "marshal.",
    "shutil.",
    "socket.",
    "ctypes.",
    "runpy.",
    "code.",
    "pty.",
    "operator.",
    "functools.",
)
#: Longest canary window: a day (the step defers meanwhile, holding no worker).
MAX_WINDOW = 86_400.0

VerdictName = Literal["pass", "marginal", "fail"]
RegressionName = Literal["increase", "decrease", "either"]
ModelFormatName = Literal["skops", "onnx"]
DatasetFormatName = Literal["csv", "parquet"]
MetricName = Literal[
    "accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc", "r2"
]
assert set(MetricName.__args__) == set(METRICS)  # type: ignore[attr-defined]
assert set(VerdictName.__args__) == set(Verdict.ALL)  # type: ignore[attr-defined]
assert set(RegressionName.__args__) == set(Regression.ALL)  # type: ignore[attr-defined]
assert set(ModelFormatName.__args__) == set(ModelFormat.ALL)  # type: ignore[attr-defined]
assert set(DatasetFormatName.__args__) == set(DatasetFormat.ALL)  # type: ignore[attr-defined]


def _verdicts(names: tuple[str, ...]) -> list[VerdictName]:
    return [cast(VerdictName, name) for name in names]


def refuse_pickle_path(value: str) -> str:
    if not has_references(value) and PurePath(value).suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(
            "a pickle/joblib file is refused: loading it would run code from the file; save the model with "
            "skops or export it to ONNX"
        )
    return value


def _unknown_suffix(path: Any, known: dict[str, str], kinds: str, field: str) -> None:
    if isinstance(path, str) and not has_references(path) and PurePath(path).suffix.lower() not in known:
        raise ValueError(f"the {field} has no {kinds} suffix: set this format")


def _labels(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _LABEL.match(name):
            raise ValueError(f"'{name}' is not a label name (letters, digits and '_', not first a digit)")
    return value


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValidateModelParams(_Params):
    model_path: str = Field(min_length=1, max_length=4096)
    validation_dataset: str = Field(min_length=1, max_length=4096)
    #: The score the model must reach (every metric is at most 1, higher is better).
    acceptance_threshold: float = Field(ge=0, le=1)
    metric: MetricName = "accuracy"
    label_column: str = Field(default="label", min_length=1, max_length=200)
    #: The columns the model reads; default: every column but the label.
    feature_columns: list[str] | None = Field(default=None, min_length=1)
    #: Types a skops file may hold beyond the engine's own list (scikit-learn's tree internals).
    trusted_types: list[str] = Field(default_factory=list, max_length=100)
    #: Default: from the suffix (.skops, .onnx / .csv, .parquet).
    model_format: ModelFormatName | None = Field(default=None, validate_default=True)
    dataset_format: DatasetFormatName | None = Field(default=None, validate_default=True)

    _pickle = field_validator("model_path")(refuse_pickle_path)

    @field_validator("trusted_types")
    @classmethod
    def _trusted(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _TYPE_NAME.match(name):
                raise ValueError(f"'{name}' is not a dotted type name (module.Type)")
            if name.startswith(_NEVER_TRUSTED):
                raise ValueError(f"'{name}' can run commands or code: it is never trusted")
        return value

    @field_validator("model_format")
    @classmethod
    def _model_suffix(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            _unknown_suffix(info.data.get("model_path"), MODEL_SUFFIXES, ".skops or .onnx", "model_path")
        return value

    @field_validator("dataset_format")
    @classmethod
    def _dataset_suffix(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            known = DATASET_SUFFIXES
            _unknown_suffix(
                info.data.get("validation_dataset"), known, ".csv or .parquet", "validation_dataset"
            )
        return value


class DeployModelParams(_Params):
    service_name: str = Field(min_length=1, max_length=200)
    model_path: str = Field(min_length=1, max_length=4096)
    model_version: str = Field(pattern=VERSION_PATTERN)
    #: Share of the service's replicas that run the new version beside the current one (100: all).
    percent: float = Field(default=10.0, gt=0, le=100)
    #: When given, the file must still have this digest (`${steps.validate_model.output.model_sha256}`):
    #: the model deployed is the one validated.
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    provider: str = Field(default="local", min_length=1, max_length=100)
    #: The environment variables that hand the replicas the model's path and version.
    path_variable: str = Field(default="MODEL_PATH", pattern=ENV_PATTERN)
    version_variable: str = Field(default="MODEL_VERSION", pattern=ENV_PATTERN)
    env: dict[str, str] = Field(default_factory=dict)
    wait_for_health: bool = True
    health_timeout: float | None = Field(default=None, gt=0)

    _pickle = field_validator("model_path")(refuse_pickle_path)


class _Conclusion(_Params):
    service_name: str = Field(min_length=1, max_length=200)
    #: The canary's version: refused if the service runs another (someone deployed meanwhile).
    model_version: str | None = Field(default=None, pattern=VERSION_PATTERN)
    #: The analysis's verdict (`${steps.canary_analysis.output.verdict}`); without it the step acts.
    verdict: VerdictName | None = None
    provider: str = Field(default="local", min_length=1, max_length=100)
    wait_for_health: bool = True
    health_timeout: float | None = Field(default=None, gt=0)


class PromoteParams(_Conclusion):
    #: The verdicts that promote; on any other the step does nothing.
    promote_on: list[VerdictName] = Field(default_factory=lambda: _verdicts(Verdict.PROMOTING), min_length=1)


class RollbackParams(_Conclusion):
    #: The verdicts that roll back; on any other the step does nothing.
    rollback_on: list[VerdictName] = Field(
        default_factory=lambda: _verdicts(Verdict.ROLLING_BACK), min_length=1
    )


class CanaryMetricParams(_Params):
    metric: str = Field(pattern=METRIC_PATTERN)
    #: How the metric is named in the output (default: `metric`); names must be unique.
    name: str | None = Field(default=None, min_length=1, max_length=200)
    #: Labels this metric's series must have besides the analysis's own.
    labels: dict[str, str] = Field(default_factory=dict)
    #: Which change is a regression: `increase` (error rate, latency), `decrease` (a quality metric), either.
    regression: RegressionName = "increase"
    weight: float = Field(default=1.0, gt=0, le=1000)
    #: A critical metric that regresses (or has no data) fails the canary whatever the score.
    critical: bool = False
    #: Relative change of the mean tolerated even when significant (0.1: 10 %).
    tolerance: float = Field(default=0.0, ge=0, le=100)
    #: For a rate: the metric counting what `metric` counts events out of (requests for errors). The
    #: canary's proportion is then tested against the baseline's on the summed counts (two-proportion).
    denominator: str | None = Field(default=None, pattern=METRIC_PATTERN)

    _labels = field_validator("labels")(_labels)

    @model_validator(mode="after")
    def _proportion(self) -> CanaryMetricParams:
        if self.denominator is not None and self.denominator == self.metric:
            raise ValueError(f"denominator: '{self.metric}' cannot count out of itself")
        return self

    @property
    def shown_name(self) -> str:
        return self.name or self.metric


class CanaryAnalysisParams(_Params):
    baseline_version: str = Field(pattern=VERSION_PATTERN)
    canary_version: str = Field(pattern=VERSION_PATTERN)
    metrics: list[CanaryMetricParams] = Field(min_length=1, max_length=50)
    #: Labels every series read must have (`{service: recommender}`).
    labels: dict[str, str] = Field(default_factory=dict)
    #: The label whose value tells the canary's series from the baseline's.
    version_label: str = Field(default="version", pattern=LABEL_PATTERN)
    source: Literal["push", "prometheus"] = "push"
    #: Seconds observed, after `warmup` seconds from the step's start (the step waits without a worker).
    window: float = Field(default=300.0, ge=1, le=MAX_WINDOW)
    warmup: float = Field(default=0.0, ge=0, le=MAX_WINDOW)
    #: 1 - the family-wise false-failure rate, split over the metrics (Bonferroni).
    confidence: float = Field(default=0.98, gt=0.5, lt=1)
    pass_score: float = Field(default=95.0, ge=0, le=100)
    marginal_score: float = Field(default=75.0, ge=0, le=100)
    #: Samples each side of a metric needs to be judged.
    min_samples: int = Field(default=10, ge=3, le=1_000_000)

    _labels = field_validator("labels")(_labels)

    @model_validator(mode="after")
    def _consistent(self) -> CanaryAnalysisParams:
        if self.marginal_score > self.pass_score:
            raise ValueError(
                f"marginal_score ({self.marginal_score:g}) is above pass_score ({self.pass_score:g})"
            )
        names = [m.shown_name for m in self.metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"metrics named more than once: {', '.join(repeated)} (give each a `name`)")
        if self.baseline_version == self.canary_version and not has_references(self.canary_version):
            raise ValueError("baseline_version and canary_version are the same: nothing tells them apart")
        for metric in self.metrics:
            if self.version_label in metric.labels or self.version_label in self.labels:
                raise ValueError(
                    f"the version label '{self.version_label}' is set by the analysis, not in labels"
                )
        return self
