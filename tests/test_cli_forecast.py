"""`automation forecast`, `automation scaling backtest` and `automation scaling frontier`: JSON, plots, and
exit code 2 on bad input naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from automation.cli.forecast import forecast_command, scaling_group


@pytest.fixture
def ramp_trace(tmp_path: Path) -> Path:
    index = pd.date_range("2024-01-01", periods=288 * 6, freq="5min")
    hours = index.hour + index.minute / 60
    load = 100 + 200 * np.clip(np.minimum(hours - 7, 20 - hours), 0, 1)
    load = load + np.random.default_rng(1).normal(0, 3, len(index))
    path = tmp_path / "ramp.csv"
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "value": load.round(2)}).to_csv(
        path, index=False
    )
    return path


def test_exports_are_a_command_and_a_scaling_group() -> None:
    assert isinstance(forecast_command, click.Command) and forecast_command.name == "forecast"
    assert isinstance(scaling_group, click.Group) and scaling_group.name == "scaling"
    assert list(scaling_group.commands) == ["backtest", "frontier"]


def test_forecast_json_has_the_model_and_a_band(ramp_trace: Path) -> None:
    result = CliRunner().invoke(forecast_command, ["--trace", str(ramp_trace), "--horizon", "1h", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] in payload["backtest_relative_mae"] and payload["relative_mae"] < 1
    assert len(payload["forecast"]) == 12
    first = payload["forecast"][0]
    assert first["time"] == "2024-01-07T00:00:00" and first["lower"] <= first["mean"] <= first["upper"]


def test_backtest_json_and_plot(ramp_trace: Path, tmp_path: Path) -> None:
    plot = tmp_path / "out.png"
    args = [
        "backtest",
        "--trace",
        str(ramp_trace),
        "--policy",
        "hybrid",
        "--capacity-per-replica",
        "50",
        "--lead-time",
        "10m",
        "--provisioning-delay",
        "10m",
        "--plot",
        str(plot),
        "--json",
    ]
    result = CliRunner().invoke(scaling_group, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for key in (
        "under_provisioned_minutes",
        "replica_hours",
        "over_provisioning_ratio",
        "scale_actions",
        "mape",
        "relative_mae",
        "model",
    ):
        assert key in payload
    assert payload["replica_hours"] > 0 and payload["policy"]["policy"] == "hybrid"
    assert payload["forecastability"]["applicable"] and payload["forecastability"]["daily_cycle"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_backtest_text_output_for_reactive(ramp_trace: Path) -> None:
    args = [
        "backtest",
        "--trace",
        str(ramp_trace),
        "--policy",
        "reactive",
        "--capacity-per-replica",
        "50",
        "--target-utilization",
        "0.6",
    ]
    result = CliRunner().invoke(scaling_group, args)
    assert result.exit_code == 0, result.output
    assert "under_provisioned_minutes" in result.stdout and "none (reactive)" in result.stdout
    assert "forecasting applicable     yes" in result.stdout


def test_backtest_says_when_forecasting_cannot_help(flat_trace: Path) -> None:
    args = ["backtest", "--trace", str(flat_trace), "--policy", "hybrid", "--capacity-per-replica", "50"]
    result = CliRunner().invoke(scaling_group, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert not payload["forecastability"]["applicable"]
    assert payload["forecastability"]["reasons"][0].startswith("no daily cycle")
    assert any("the reactive policy is the safer choice" in note for note in payload["notes"])
    text = CliRunner().invoke(scaling_group, args)
    assert "forecasting applicable     no — no daily cycle" in text.stdout


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--lead-time", "10x"], "'--lead-time'"),
        (["--provisioning-delay", "soon"], "'--provisioning-delay'"),
        (["--policy", "magic"], "'--policy'"),
        (["--capacity-per-replica", "0"], "'--capacity-per-replica'"),
        (["--decision-interval", "45s"], "decision_interval"),
    ],
)
def test_bad_options_exit_2_naming_the_option(ramp_trace: Path, extra: list[str], words: str) -> None:
    args = [
        "backtest",
        "--trace",
        str(ramp_trace),
        "--policy",
        "reactive",
        "--capacity-per-replica",
        "50",
        *extra,
    ]
    result = CliRunner().invoke(scaling_group, args)
    assert result.exit_code == 2
    assert words in result.output


def test_malformed_trace_exits_2_naming_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,twelve\n")
    result = CliRunner().invoke(forecast_command, ["--trace", str(bad)])
    assert result.exit_code == 2
    assert "bad.csv, line 3, column 'value': expected a finite number, got 'twelve'" in result.output
    missing = CliRunner().invoke(forecast_command, ["--trace", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 2 and "absent.csv" in missing.output


@pytest.fixture
def flat_trace(tmp_path: Path) -> Path:
    index = pd.date_range("2024-01-01", periods=288 * 4, freq="5min")
    load = 200 + np.random.default_rng(2).normal(0, 20, len(index))
    path = tmp_path / "flat.csv"
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "value": load.round(2)}).to_csv(
        path, index=False
    )
    return path


def test_frontier_through_the_entry_point_reports_both_curves_per_trace(
    ramp_trace: Path, flat_trace: Path, tmp_path: Path
) -> None:
    from automation.cli.main import cli

    plot = tmp_path / "frontier.png"
    args = ["scaling", "frontier", "--trace", str(ramp_trace), "--trace", str(flat_trace)]
    args += ["--targets", "0.7,0.8,0.9", "--policy-targets", "0.7,0.8,0.9", "--quantiles", "0.8,0.95"]
    args += ["--plot", str(plot), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [t["trace"] for t in payload["traces"]] == ["ramp", "flat"]
    for report in payload["traces"]:
        assert report["policy"] == "hybrid"
        assert [p["target_utilization"] for p in report["reactive_curve"]] != []
        assert len(report["reactive_curve"]) == 3 and len(report["policy_curve"]) == 6
        assert {"median_ratio", "worst_ratio", "matched", "unmatched", "matches"} <= set(report)
        for match in report["matches"]:
            if match["policy"] is not None:
                assert match["policy"]["replica_hours"] <= match["reactive"]["replica_hours"]
                assert match["ratio"] == pytest.approx(
                    match["policy"]["under_provisioned_minutes"]
                    / match["reactive"]["under_provisioned_minutes"],
                    abs=1e-3,
                )
    assert [t["forecastability"]["applicable"] for t in payload["traces"]] == [True, False]
    ramp = payload["traces"][0]
    assert ramp["matched"] >= 1 and ramp["worst_ratio"] >= ramp["median_ratio"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_frontier_text_output(ramp_trace: Path) -> None:
    args = ["frontier", "--trace", str(ramp_trace), "--policy", "predictive"]
    args += ["--targets", "0.7,0.9", "--quantiles", "0.9"]
    result = CliRunner().invoke(scaling_group, args)
    assert result.exit_code == 0, result.output
    assert "predictive@q0.9" in result.stdout and "reactive@0.9" in result.stdout
    assert "matched ratio median" in result.stdout


def test_frontier_searching_the_floor_at_each_reactive_cost(ramp_trace: Path) -> None:
    args = ["frontier", "--trace", str(ramp_trace), "--targets", "0.6,0.8", "--quantiles", "0.9"]
    args += ["--decision-interval", "15s", "--search-floor", "--json"]
    result = CliRunner().invoke(scaling_group, args)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)["traces"]
    assert report["settings"]["policy_targets"].startswith("searched at each reactive point's cost")
    assert report["settings"]["policy_interval"] == "15s"
    searched = {p["target_utilization"] for p in report["policy_curve"]}
    assert searched and min(searched) >= 0.6  # from reactive's own target upwards


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--targets", "0.5,abc"], "'--targets'"),
        (["--targets", "1.5"], "'--targets'"),
        (["--quantiles", "1.0"], "'--quantiles'"),
        (["--policy-targets", "0"], "'--policy-targets'"),
        (["--quantiles", "0.9,0.9"], "'--quantiles'"),
        (["--policy", "reactive"], "'--policy'"),
        (["--policy", "predictive", "--search-floor"], "'--search-floor'"),
        (["--reactive-interval", "45s"], "'--reactive-interval'"),
        (["--decision-interval", "7s"], "'--decision-interval'"),
        (["--provisioning-delay", "soon"], "'--provisioning-delay'"),
        (["--capacity-per-replica", "-1"], "'--capacity-per-replica'"),
        (["--trace", "/nonexistent/trace.csv"], "'--trace'"),
    ],
)
def test_frontier_bad_options_exit_2_naming_the_option(
    ramp_trace: Path, extra: list[str], words: str
) -> None:
    result = CliRunner().invoke(scaling_group, ["frontier", "--trace", str(ramp_trace), *extra])
    assert result.exit_code == 2, result.output
    assert words in result.output
