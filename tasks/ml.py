"""Model deployment actions: validate a model, put it on a share of a service's replicas as a canary,
judge the canary against the baseline on live metrics, then promote it or roll it back.

`ml.promote` and `ml.rollback` take the analysis's verdict (`${steps.canary_analysis.output.verdict}`):
each acts only on its own verdicts, so the pair placed after the analysis is the branch that promotes or
rolls back. Releases go through the service provider, with the step's idempotency key.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from automation.actions import ActionContext, Defer, action
from automation.errors import SourceError
from automation.incidents.choices import ChangeKind
from automation.ml.params import (
    CanaryAnalysisParams,
    DeployModelParams,
    PromoteParams,
    RollbackParams,
    ValidateModelParams,
)
from automation.providers.base import ReleaseResult

#: Longest single pause of a canary window (each below the broker visibility timeout).
MAX_PAUSE = 60.0
#: Reads of a metric source that fails (retryably) before the canary is judged a failure, and the pause
#: after the first failure (growing by as much after each).
SOURCE_TRIES = 4
SOURCE_RETRY = 5.0
RELEASE_FIELDS = tuple(field.name for field in dataclasses.fields(ReleaseResult))


def _provider(name: str) -> Any:
    from automation.providers import get_provider

    return get_provider(name)


@action(
    "ml.validate_model",
    params=ValidateModelParams,
    outputs=(
        "metric",
        "score",
        "threshold",
        "passed",
        "n",
        "model_path",
        "model_format",
        "model_sha256",
        "validation_dataset",
    ),
)
def validate_model(ctx: ActionContext, params: ValidateModelParams) -> dict[str, Any]:
    """Score a model (skops or ONNX; pickle refused) on a labelled CSV/Parquet set; below threshold, fail."""
    # scikit-learn, skops and onnxruntime load here, on first use: not at every worker's start.
    from automation.ml.errors import BelowThreshold
    from automation.ml.validation import validate_model as validate

    report = validate(
        params.model_path,
        params.validation_dataset,
        threshold=params.acceptance_threshold,
        metric=params.metric,
        label_column=params.label_column,
        feature_columns=params.feature_columns,
        model_format=params.model_format,
        dataset_format=params.dataset_format,
        trusted_types=params.trusted_types,
    )
    if not report.passed:
        raise BelowThreshold(report.failure())
    return report.to_dict()


@action(
    "ml.deploy_model",
    params=DeployModelParams,
    outputs=(*RELEASE_FIELDS, "model_path"),
    changes=ChangeKind.DEPLOY,
)
def deploy_model(ctx: ActionContext, params: DeployModelParams) -> dict[str, Any]:
    """Run a model version on `percent` of a service's replicas, beside the current one (a canary)."""
    from automation.ml.errors import ModelError
    from automation.ml.validation import file_sha256

    path = Path(params.model_path).absolute()
    if not path.is_file():
        raise ModelError(
            f"{path} does not exist" if not path.exists() else f"{path} is not a file", field="model_path"
        )
    if params.model_sha256 is not None and file_sha256(path) != params.model_sha256:
        raise ModelError(
            f"{path} changed since it was validated (its SHA-256 is not model_sha256)", field="model_sha256"
        )
    env = {**params.env, params.path_variable: str(path), params.version_variable: params.model_version}
    result: dict[str, Any] = _provider(params.provider).deploy(
        params.service_name,
        version=params.model_version,
        env=env,
        percent=params.percent,
        wait_for_health=params.wait_for_health,
        health_timeout=params.health_timeout,
        idempotency_key=ctx.idempotency_key,
    )
    return {**result, "model_path": str(path)}


@action(
    "ml.canary_analysis",
    params=CanaryAnalysisParams,
    external=False,
    outputs=(
        "verdict",
        "score",
        "reasons",
        "summary",
        "metrics",
        "baseline_version",
        "canary_version",
        "window",
        "confidence",
        "pass_score",
        "marginal_score",
    ),
)
def canary_analysis(ctx: ActionContext, params: CanaryAnalysisParams) -> dict[str, Any]:
    """Judge canary against baseline on live metrics (Mann-Whitney U, or two proportions for a rate with a
    denominator; weighted): pass/marginal/fail."""
    now = time.time()
    started = float(ctx.state.get("started_at") or now)
    start, end = started + params.warmup, started + params.warmup + params.window
    if now < end:
        # The window is waited for without a worker (the step is parked), and from its first start.
        raise Defer(
            min(end - now, MAX_PAUSE), state={"started_at": started}, reason=f"canary window until {end:.0f}"
        )
    from automation.ml.canary import MetricCheck, judge
    from automation.ml.samples import open_source, read_sides

    checks = [
        MetricCheck(m.shown_name, m.regression, m.weight, m.critical, m.tolerance, m.denominator)
        for m in params.metrics
    ]
    wanted = [(m.shown_name, m.metric, {**params.labels, **m.labels}) for m in params.metrics]
    totals_wanted = [
        (m.shown_name, m.denominator, {**params.labels, **m.labels}) for m in params.metrics if m.denominator
    ]
    sides: dict[str, Any] = {
        "version_label": params.version_label,
        "baseline": params.baseline_version,
        "canary": params.canary_version,
        "start": start,
        "end": end,
    }
    try:
        source = open_source(params.source)
        try:
            samples = read_sides(source, wanted, **sides)
            totals = read_sides(source, totals_wanted, **sides) if totals_wanted else {}
        finally:
            if hasattr(source, "close"):
                source.close()
    except SourceError as exc:
        # A canary that cannot be judged is not promoted: after a few tries (parked, not attempts) the
        # verdict is `fail`, and the rollback branch runs rather than leaving the canary in place.
        failures = int(ctx.state.get("source_failures", 0)) + 1
        if exc.retryable and failures < SOURCE_TRIES:
            raise Defer(
                SOURCE_RETRY * failures,
                state={"started_at": started, "source_failures": failures},
                reason=f"metric source: {exc}",
            ) from None
        return unjudged(params, start, end, f"the metric source could not be read: {exc}")
    judgement = judge(
        checks,
        {name: (sides[0], sides[1]) for name, sides in samples.items()},
        confidence=params.confidence,
        pass_score=params.pass_score,
        marginal_score=params.marginal_score,
        min_samples=params.min_samples,
        totals=totals,
    )
    return {
        **judgement.to_dict(),
        "summary": verdict_summary(params, judgement.verdict, judgement.score, judgement.reasons),
        "baseline_version": params.baseline_version,
        "canary_version": params.canary_version,
        "window": {"start": start, "end": end, "source": params.source},
    }


def verdict_summary(params: CanaryAnalysisParams, verdict: str, score: float, reasons: list[str]) -> str:
    """One line for people (a notification's text): the verdict, its score and its reasons."""
    return (
        f"canary {params.canary_version} vs baseline {params.baseline_version}: verdict {verdict} "
        f"(score {score:g}): " + "; ".join(reasons)
    )


def unjudged(params: CanaryAnalysisParams, start: float, end: float, reason: str) -> dict[str, Any]:
    """The output of an analysis that could not read its metrics: a `fail` verdict, with the reason."""
    from automation.ml.choices import Verdict

    return {
        "verdict": Verdict.FAIL,
        "score": 0.0,
        "reasons": [reason],
        "summary": verdict_summary(params, Verdict.FAIL, 0.0, [reason]),
        "metrics": [],
        "confidence": params.confidence,
        "pass_score": params.pass_score,
        "marginal_score": params.marginal_score,
        "baseline_version": params.baseline_version,
        "canary_version": params.canary_version,
        "window": {"start": start, "end": end, "source": params.source},
    }


#: How a conclusion reads in its `summary`, done and not done.
DONE = {"promote": "promoted", "roll back": "rolled back"}
NOT_DONE = {"promote": "not promoted", "roll back": "not rolled back"}


def _model(version: str | None) -> str:
    return f"model {version} " if version else "the canary "


def _skipped(params: Any, acts_on: list[str], operation: str) -> dict[str, Any] | None:
    """The output of a conclusion step that does not act on this verdict, or None when it acts."""
    verdict = params.verdict
    if verdict is None or verdict in acts_on:
        return None
    return {
        "acted": False,
        "verdict": verdict,
        "reason": f"verdict '{verdict}': {operation} only on {', '.join(acts_on)}",
        "summary": f"{_model(params.model_version)}{NOT_DONE[operation]} (verdict {verdict})",
    }


def _conclude(ctx: ActionContext, params: Any, acts_on: list[str], operation: str) -> dict[str, Any]:
    """A conclusion step: the provider's promote or rollback when the verdict is one it acts on."""
    skipped = _skipped(params, acts_on, operation)
    if skipped is not None:
        return skipped
    provider = _provider(params.provider)
    act = provider.promote if operation == "promote" else provider.rollback
    result: dict[str, Any] = act(
        params.service_name,
        version=params.model_version,
        wait_for_health=params.wait_for_health,
        health_timeout=params.health_timeout,
        idempotency_key=ctx.idempotency_key,
    )
    serving = f": {result['stable_version']} serves every replica" if result.get("stable_version") else ""
    summary = f"{_model(result.get('version') or params.model_version)}{DONE[operation]}{serving}"
    return {"acted": True, "verdict": params.verdict, **result, "summary": summary}


@action(
    "ml.promote",
    params=PromoteParams,
    outputs=("acted", "verdict", "reason (when not acted)", "summary", *RELEASE_FIELDS),
)
def promote(ctx: ActionContext, params: PromoteParams) -> dict[str, Any]:
    """Make the canary the stable release on every replica (only on `promote_on` verdicts when given)."""
    return _conclude(ctx, params, list(params.promote_on), "promote")


@action(
    "ml.rollback",
    params=RollbackParams,
    outputs=("acted", "verdict", "reason (when not acted)", "summary", *RELEASE_FIELDS),
)
def rollback(ctx: ActionContext, params: RollbackParams) -> dict[str, Any]:
    """Put the canary's replicas back on the stable release (only on `rollback_on` verdicts when given)."""
    return _conclude(ctx, params, list(params.rollback_on), "roll back")
