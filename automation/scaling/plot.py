"""PNGs: a simulation (load, the forecast band the policy provisioned for, serving capacity) and the cost
frontiers of a sweep (reactive and the policy, with each matched pair joined)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from automation.scaling.comparison import FrontierReport  # noqa: E402
from automation.scaling.simulator import SimulationResult  # noqa: E402


def plot_simulation(result: SimulationResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write the plot to `path` (parent directories are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    timeline = result.timeline
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(14, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(timeline.index, timeline["load"], color="#444444", linewidth=0.5, label="load")
    if timeline["forecast_mean"].notna().any():
        top.fill_between(
            timeline.index,
            timeline["forecast_mean"],
            timeline["forecast_upper"],
            color="#4c72b0",
            alpha=0.3,
            linewidth=0,
            label="forecast mean to provisioned quantile",
        )
        top.plot(timeline.index, timeline["forecast_mean"], color="#4c72b0", linewidth=0.6, label="forecast")
    top.step(
        timeline.index,
        timeline["serving_capacity"],
        where="post",
        color="#dd8452",
        linewidth=0.8,
        label="serving capacity",
    )
    short = timeline["under_provisioned_minutes"] > 0
    top.scatter(
        timeline.index[short],
        timeline["load"][short],
        s=4,
        color="#c44e52",
        label="under-provisioned",
        zorder=3,
    )
    top.set_ylabel("load")
    top.legend(loc="upper left", fontsize="small", ncols=3)
    top.set_title(
        title
        or f"{result.policy.get('policy')} on {result.trace}: "
        f"{result.under_provisioned_minutes:.0f} min under-provisioned, "
        f"{result.replica_hours:.0f} replica-hours"
    )
    bottom.step(timeline.index, timeline["requested_replicas"], where="post", color="#55a868", linewidth=0.8)
    bottom.set_ylabel("replicas")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_frontiers(reports: list[FrontierReport], path: str | Path) -> Path:
    """One panel per trace: replica-hours against under-provisioned minutes for reactive and the policy,
    a line from each reactive point that misses to the policy point matched with it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = max(1, len(reports))
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5), squeeze=False)
    for axis, report in zip(axes[0], reports, strict=False):
        comparison = report.comparison
        reactive = comparison.reactive
        axis.plot(
            [p.replica_hours for p in reactive],
            [p.under_provisioned_minutes for p in reactive],
            "o-",
            color="#dd8452",
            label="reactive (HPA), targets",
        )
        for p in reactive:
            where = (p.replica_hours, p.under_provisioned_minutes)
            axis.annotate(f"{p.target_utilization:g}", where, fontsize=7)
        policy = comparison.policy
        axis.scatter(
            [p.replica_hours for p in policy],
            [p.under_provisioned_minutes for p in policy],
            s=14,
            color="#4c72b0",
            label=f"{report.policy}, quantiles",
        )
        for match in comparison.matches:
            if match.policy is None:
                continue
            axis.plot(
                [match.reactive.replica_hours, match.policy.replica_hours],
                [match.reactive.under_provisioned_minutes, match.policy.under_provisioned_minutes],
                color="#55a868",
                linewidth=0.8,
            )
        median, worst = comparison.median_ratio, comparison.worst_ratio
        axis.set_title(f"{report.trace}: median {median:.2f}x, worst {worst:.2f}x", fontsize="medium")
        axis.set_xlabel("replica-hours")
        axis.set_ylabel("under-provisioned minutes")
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
