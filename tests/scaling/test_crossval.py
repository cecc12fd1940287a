"""Leave-one-trace-out choice of the hybrid's defaults (pure: scores in, choices out), and the sweep parts it
runs on: the reactive and policy curves, a forecast tape recorded for the longest lead time, the hybrid's
trust settings through `make_policy`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from automation.forecasting import ForecastConfigError, load_trace
from automation.scaling.comparison import (
    CostPoint,
    capacity_at_percentile,
    match_frontiers,
    policy_curve,
    reactive_curve,
    sweep_frontier,
)
from automation.scaling.crossval import (
    HybridConfig,
    choose,
    frontier_loss,
    harms,
    leave_one_out,
    mean_loss,
    overall_choice,
)
from automation.scaling.policies import ForecastTape, HybridPolicy, TrustSettings, make_policy
from automation.scaling.simulator import SimulationSettings, simulate

TAXI = Path(__file__).resolve().parents[1] / "data" / "nab" / "realKnownCause" / "nyc_taxi.csv"


def point(label: str, cost: float, minutes: float) -> CostPoint:
    return CostPoint(label=label, replica_hours=cost, under_provisioned_minutes=minutes)


REACTIVE = [point("r0.9", 100, 400), point("r0.7", 130, 100), point("r0.5", 170, 0)]


def test_loss_is_the_log_median_ratio_plus_a_penalty_for_harm() -> None:
    helps = match_frontiers(REACTIVE, [point("h1", 95, 100), point("h2", 125, 50)])
    assert [round(m.ratio, 3) for m in helps.matches] == [0.25, 0.5]
    assert frontier_loss(helps) == pytest.approx(math.log(0.375))
    harms = match_frontiers(REACTIVE, [point("h1", 95, 300), point("h2", 125, 200)])
    assert [round(m.ratio, 3) for m in harms.matches] == [0.75, 2.0]
    # median 1.375, worst 2 -> log(1.375) + 2 log 2
    assert frontier_loss(harms) == pytest.approx(math.log(1.375) + 2 * math.log(2.0))


def test_unmatched_points_count_as_reactive_and_zero_minutes_are_floored() -> None:
    only_dear = match_frontiers(REACTIVE, [point("h", 125, 0)])
    # r0.9 has no point as cheap (counts 1), r0.7 is matched with 0 minutes (floored at 0.05)
    assert frontier_loss(only_dear) == pytest.approx(math.log((1.0 + 0.05) / 2))
    assert frontier_loss(match_frontiers([point("r", 100, 0)], [point("h", 90, 5)])) is None


LOSSES: dict[str, dict[str, float | None]] = {
    # "b" is best on every trace but "held", which alone loves "c"
    "nasa": {"a": 0.0, "b": -1.0, "c": 0.5},
    "taxi": {"a": 0.0, "b": -0.5, "c": 0.4},
    "asg": {"a": 0.0, "b": -0.2, "c": None},
    "held": {"a": 0.0, "b": 3.0, "c": -9.0},
}


def test_each_fold_chooses_on_the_other_traces_only() -> None:
    folds = leave_one_out(LOSSES, ["a", "b", "c"])
    # on its own, "held" would pick c; chosen on the others it gets b
    assert folds["held"] == "b"
    # with "held" among the training traces its -9 pulls the mean of c below b's
    assert folds["nasa"] == "c" and folds["taxi"] == "c" and folds["asg"] == "c"
    assert mean_loss(LOSSES, "c", ["nasa", "held"]) == pytest.approx(-4.25)
    assert mean_loss(LOSSES, "c", ["asg"]) != mean_loss(LOSSES, "c", ["asg"])  # NaN: no score


def test_fewest_harmed_traces_come_before_the_mean_loss() -> None:
    # "b" is worse than reactive on "held", "c" on "taxi"; "a" harms nowhere
    harmed = {t: {"a": False, "b": t == "held", "c": t == "taxi"} for t in LOSSES}
    folds = leave_one_out(LOSSES, ["a", "b", "c"], harmed=harmed)
    # by the loss alone: b for "held", c for the rest (see above)
    assert folds == {"held": "b", "nasa": "a", "taxi": "c", "asg": "a"}
    assert overall_choice(folds, LOSSES, ["a", "b", "c"], harmed=harmed) == "a"
    one_point = match_frontiers(REACTIVE, [point("h1", 95, 500), point("h2", 125, 50)])
    assert harms(one_point) and not harms(match_frontiers(REACTIVE, [point("h2", 125, 50)]))


def test_ties_go_to_the_first_listed_and_the_overall_choice_to_the_majority() -> None:
    tied = {"x": {"a": 0.0, "b": 0.0}, "y": {"a": None, "b": None}}
    assert choose(tied, ["a", "b"], ["x", "y"]) == "a"
    assert choose(tied, ["b", "a"], ["y"]) == "b"  # no score at all: the first
    assert overall_choice({"t1": "b", "t2": "b", "t3": "a"}, LOSSES, ["a", "b", "c"]) == "b"
    # a tie between folds goes to the lower mean loss over every trace, not to the first listed
    assert overall_choice({"t1": "b", "t2": "c"}, LOSSES, ["a", "b", "c"]) == "c"
    with pytest.raises(ForecastConfigError):
        choose(LOSSES, [], ["nasa"])


def test_a_config_names_itself_and_checks_its_values() -> None:
    config = HybridConfig(quantile=0.9, lead_time=pd.Timedelta(minutes=20), trust_z=0.0)
    assert config.label == "q0.9 lead 20m z0"
    assert config.to_dict() == {"quantile": 0.9, "lead_time": "20m", "trust_z": 0.0, "forecastability": True}
    assert config.trust().z == 0.0 and config.trust().forecastability
    ungated = HybridConfig(forecastability=False)
    assert ungated.label.endswith(" ungated") and not ungated.trust().forecastability
    for bad in ({"quantile": 1.0}, {"lead_time": pd.Timedelta(0)}, {"trust_z": 9.0}):
        with pytest.raises(ForecastConfigError):
            HybridConfig(**bad)  # type: ignore[arg-type]


def test_make_policy_gives_the_hybrid_its_trust_settings() -> None:
    trust = TrustSettings(z=0.0, min_checks=30)
    policy = make_policy("hybrid", trust=trust)
    assert isinstance(policy, HybridPolicy) and policy.trust is trust
    assert isinstance(make_policy("hybrid"), HybridPolicy)
    make_policy("reactive", trust=trust)  # ignored by the others
    make_policy("predictive", trust=trust)


@pytest.fixture(scope="module")
def taxi() -> object:
    return load_trace(TAXI).slice(0, 48 * 6)  # six days of 30-minute buckets


def test_the_curves_are_the_sweep_split_in_two(taxi: object) -> None:
    settings = SimulationSettings(capacity_per_replica=capacity_at_percentile(taxi))  # type: ignore[arg-type]
    tape = ForecastTape(levels=(0.95,))
    reactive, _ = reactive_curve(taxi, settings=settings, targets=(0.6, 0.8))  # type: ignore[arg-type]
    points, runs, targets = policy_curve(
        taxi,  # type: ignore[arg-type]
        settings=settings,
        quantiles=(0.95,),
        policy_targets=(0.7, 0.9),
        tape=tape,
    )
    assert [p.label for p in reactive] == ["reactive@0.6", "reactive@0.8"]
    assert [p.label for p in points] == ["hybrid@q0.95,t0.7", "hybrid@q0.95,t0.9"] and targets == (0.7, 0.9)
    report = sweep_frontier(
        taxi,  # type: ignore[arg-type]
        settings=settings,
        targets=(0.6, 0.8),
        quantiles=(0.95,),
        policy_targets=(0.7, 0.9),
        tape=tape,
    )
    assert [p.replica_hours for p in report.comparison.reactive] == sorted(p.replica_hours for p in reactive)
    assert sorted(p.under_provisioned_minutes for p in report.comparison.policy) == sorted(
        p.under_provisioned_minutes for p in points
    )
    assert len(runs) == 2 and len(report.runs) == 4


def test_a_tape_recorded_for_a_longer_lead_serves_a_shorter_one_not_a_longer(taxi: object) -> None:
    capacity = capacity_at_percentile(taxi)  # type: ignore[arg-type]
    tape = ForecastTape(levels=(0.95,), horizon=3)
    long_lead = SimulationSettings(capacity_per_replica=capacity, lead_time=pd.Timedelta(minutes=40))
    short_lead = SimulationSettings(capacity_per_replica=capacity, lead_time=pd.Timedelta(minutes=10))
    recorded = simulate(taxi, make_policy("hybrid", quantile=0.95, tape=tape), settings=short_lead)  # type: ignore[arg-type]
    assert tape.complete and tape.horizon == 3
    replayed = simulate(taxi, make_policy("hybrid", quantile=0.95, tape=tape), settings=short_lead)  # type: ignore[arg-type]
    assert replayed.under_provisioned_minutes == recorded.under_provisioned_minutes
    assert replayed.replica_hours == recorded.replica_hours
    simulate(taxi, make_policy("hybrid", quantile=0.95, tape=tape), settings=long_lead)  # type: ignore[arg-type]
    too_far = SimulationSettings(capacity_per_replica=capacity, lead_time=pd.Timedelta(hours=2))
    with pytest.raises(ForecastConfigError, match="3-step horizon"):
        simulate(taxi, make_policy("hybrid", quantile=0.95, tape=tape), settings=too_far)  # type: ignore[arg-type]


def test_the_benchmark_chooses_again_from_its_stored_runs(tmp_path: Path) -> None:
    """`bench_scaling_loo.py --rescore FILE` rebuilds each comparison from the stored curves and matches
    and chooses again (fewest traces harmed first), without simulating."""

    def comparison(points: list[CostPoint]) -> dict[str, object]:
        return match_frontiers(REACTIVE, points).summary()

    gated = HybridConfig(forecastability=True)
    ungated = HybridConfig(forecastability=False)
    rows = []
    # the ungated hybrid wins big on "bursts" and "cycle" but is worse than reactive on "noise"
    for name, on, off in (
        ("cycle", [point("h", 125, 60)], [point("h", 125, 20)]),
        ("bursts", [point("h", 95, 400), point("h2", 125, 100)], [point("h", 95, 40), point("h2", 125, 10)]),
        ("noise", [point("h", 95, 400), point("h2", 125, 100)], [point("h", 95, 800), point("h2", 125, 10)]),
    ):
        rows.append(
            {
                "trace": name,
                "file": f"tests/data/{name}.csv",
                "step": "5m",
                "steps": 100,
                "daily_cycle": name == "cycle",
                "forecastability": {},
                "applicable": name == "cycle",
                "capacity_per_replica": {"p99.9/10": 1.0},
                "forecaster_models": {},
                "seconds": 1.0,
                "configs_at_p99.9/10": {gated.label: comparison(on), ungated.label: comparison(off)},
            }
        )
    stored = {
        "quick": True,
        "settings": {
            "capacity_rule": "p99.9 of the trace / 10",
            "grid": [c.to_dict() | {"label": c.label} for c in (gated, ungated)],
        },
        "traces": rows,
        "seconds": 12.0,
        "cpu_seconds": 20.0,
    }
    results = tmp_path / "loo.json"
    results.write_text(json.dumps(stored))
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scaling_loo.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--rescore", str(results)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(results.read_text())
    assert report["traces_harmed"] == {gated.label: [], ungated.label: ["noise"]}
    # "noise" held out: chosen on the other two, where ungated harms nowhere and its loss is lower
    assert report["folds"] == {"cycle": gated.label, "bursts": gated.label, "noise": ungated.label}
    assert report["overall_choice"] == gated.label and report["seconds"] == 12.0
    assert report["rescored"].startswith("python benchmarks/bench_scaling_loo.py --rescore ")
