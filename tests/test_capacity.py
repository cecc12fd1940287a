"""Capacity planning: the plan's figures and verdicts, the CLI (exit 2 on bad input), and the HTML report as a
real headless Chromium renders it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from automation.cli.capacity import capacity_group
from automation.forecasting.errors import ForecastConfigError
from automation.scaling.capacity import CapacitySettings, CapacitySpec, Verdict, plan_capacity
from automation.scaling.capacity_report import render_html, write_html

ROOT = Path(__file__).resolve().parents[1]
TAXI = ROOT / "tests" / "data" / "nab" / "realKnownCause" / "nyc_taxi.csv"


def daily_load(days: int = 14, *, peak: float = 1000.0, growth: float = 0.0, seed: int = 3) -> pd.Series:
    """5-minute load: a daily cycle from 20% to 100% of `peak`, growing by `growth` per day, with noise."""
    index = pd.date_range("2026-01-01", periods=288 * days, freq="5min")
    hours = (index.hour + index.minute / 60).to_numpy()
    shape = 0.6 - 0.4 * np.cos(2 * np.pi * (hours - 2) / 24)
    trend = 1 + growth * np.arange(len(index)) / 288
    noise = np.random.default_rng(seed).normal(0, 0.02, len(index))
    return pd.Series(peak * shape * trend * (1 + noise), index=index)


def spec(**overrides: object) -> CapacitySpec:
    values: dict[str, object] = {
        "name": "checkout",
        "capacity_per_replica": 100.0,
        "target_utilization": 0.8,
        "min_replicas": 2,
        "max_replicas": 20,
        "unit": "req/s",
    }
    values.update(overrides)
    return CapacitySpec(**values)  # type: ignore[arg-type]


def test_a_steady_daily_cycle_is_planned_at_its_peak() -> None:
    plan = plan_capacity(
        spec(current_replicas=14), daily_load(), CapacitySettings(horizon=pd.Timedelta(days=7))
    )
    assert plan.forecast_applies and plan.verdict == Verdict.OK
    # the forecast peak sits near the observed one (about 1,000 req/s) and the upper bound above it
    assert 900 < plan.peak < 1150 and plan.peak <= plan.peak_upper < 1300
    assert plan.replicas_needed == math.ceil(plan.peak_upper / 80)
    assert plan.peak_at is not None and plan.peak_at.hour in range(12, 18)
    assert len(plan.forecast) == 7 * 24 and (plan.forecast["lower"] <= plan.forecast["upper"]).all()
    assert "needs" in plan.advice[0] and "of 20 replicas" in plan.advice[0]


def test_growth_that_outruns_max_replicas_says_when() -> None:
    plan = plan_capacity(spec(max_replicas=16), daily_load(growth=0.03), CapacitySettings())
    assert plan.verdict == Verdict.WILL_HIT_MAX
    assert plan.replicas_needed > 16 and plan.headroom < 0
    assert plan.hits_max_at is not None and plan.peak_at is not None and plan.hits_max_at <= plan.peak_at
    assert "raise max_replicas" in plan.advice[0]


def test_a_fleet_far_above_its_peak_is_over_provisioned() -> None:
    plan = plan_capacity(spec(min_replicas=30, max_replicas=40), daily_load(peak=400), CapacitySettings())
    assert plan.verdict == Verdict.OVER_PROVISIONED
    assert any("lower min_replicas from 30" in line for line in plan.advice)


def test_without_a_daily_cycle_the_plan_holds_the_observed_peak() -> None:
    index = pd.date_range("2026-01-01", periods=288 * 10, freq="5min")
    noise = pd.Series(np.random.default_rng(5).gamma(2.0, 100.0, len(index)), index=index)
    plan = plan_capacity(spec(), noise)
    assert not plan.forecast_applies and plan.forecast.empty and plan.peak_at is None
    assert plan.peak_upper == pytest.approx(noise.max())
    assert any("no daily cycle" in note for note in plan.notes)


def test_no_history_is_a_plan_that_says_so() -> None:
    empty = pd.Series([np.nan] * 50, index=pd.date_range("2026-01-01", periods=50, freq="5min"))
    plan = plan_capacity(spec(), empty)
    assert plan.verdict == Verdict.NO_DATA and plan.to_dict()["expected_peak"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("capacity_per_replica", 0.0), ("target_utilization", 1.5), ("max_replicas", 1), ("name", "")],
)
def test_bad_spec_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ForecastConfigError) as caught:
        spec(**{field: value})
    assert caught.value.option == field


def test_cli_plans_a_trace_as_json() -> None:
    result = CliRunner().invoke(
        capacity_group,
        ["plan", "--trace", str(TAXI), "--capacity-per-replica", "2000", "--max-replicas", "30", "--json"],
    )
    assert result.exit_code == 0, result.output
    (target,) = json.loads(result.stdout)["targets"]
    assert target["target"] == "nyc_taxi" and target["horizon"] == "30d"
    assert target["verdict"] in (Verdict.OK, Verdict.WILL_HIT_MAX)
    assert target["replicas_needed"] == math.ceil(target["expected_peak_upper"] / 1600)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--max-replicas", "3"], "--capacity-per-replica"),
        (["--capacity-per-replica", "-5", "--max-replicas", "3"], "--capacity-per-replica"),
        (["--capacity-per-replica", "5", "--max-replicas", "3", "--horizon", "soon"], "--horizon"),
        (["--capacity-per-replica", "5", "--max-replicas", "3", "--level", "2"], "--level"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_option(arguments: list[str], named: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        capacity_group, ["plan", "--trace", str(TAXI), "--html", str(report), *arguments]
    )
    assert result.exit_code == 2 and named in result.output
    assert not report.exists()


def test_report_escapes_what_it_shows() -> None:
    plan = plan_capacity(spec(name="<script>x</script>"), daily_load(days=3))
    page = render_html([plan])
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched: it opens offline


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is installed by scripts/ensure-services.sh"
)
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    plans = [
        plan_capacity(spec(max_replicas=16), daily_load(growth=0.03)),
        plan_capacity(spec(name="search", current_replicas=14), daily_load(seed=9)),
    ]
    page = write_html(plans, tmp_path / "capacity.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,2000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    # the verdict of the first target is drawn in its red (#c62828), and the forecast band in its blue:
    # the page rendered its table and its embedded plots, not an error page
    red = np.abs(pixels - [0xC6, 0x28, 0x28]).sum(axis=1) < 40
    band = np.abs(pixels - [0x4C, 0x72, 0xB0]).sum(axis=1) < 40
    assert red.sum() > 200 and band.sum() > 500
