"""PNG of a target's decision log: the observed load, the forecast band each decision read (drawn at the
time it was for), the capacity asked for, and replicas current and desired over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from automation.models import ScalingDecision  # noqa: E402


def plot_decisions(
    decisions: Sequence[ScalingDecision], path: str | Path, *, capacity: float, title: str
) -> Path:
    """Write the plot to `path` (parent directories are created) and return the path. `capacity` is the
    load one replica serves at the target utilisation (the capacity line is desired replicas times it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    at = [d.at for d in decisions]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    loads = [(d.at, d.observed_load) for d in decisions if d.observed_load is not None]
    if loads:
        top.plot(
            [t for t, _ in loads],
            [v for _, v in loads],
            color="#444444",
            linewidth=0.9,
            label="observed load",
        )
    band = sorted(
        (d.forecast_at, d.forecast_lower, d.forecast_mean, d.forecast_upper)
        for d in decisions
        if d.forecast_at is not None and None not in (d.forecast_lower, d.forecast_mean, d.forecast_upper)
    )
    if band:
        times: list[datetime] = [row[0] for row in band]
        top.fill_between(
            times,
            [row[1] for row in band],
            [row[3] for row in band],
            color="#4c72b0",
            alpha=0.3,
            linewidth=0,
            label="forecast interval (at the time it was for)",
        )
        top.plot(times, [row[2] for row in band], color="#4c72b0", linewidth=0.8, label="forecast mean")
    top.step(
        at,
        [d.desired_replicas * capacity for d in decisions],
        where="post",
        color="#dd8452",
        linewidth=0.9,
        label="capacity asked for",
    )
    top.set_ylabel("load")
    top.legend(loc="upper left", fontsize="small", ncols=2)
    top.set_title(title)
    bottom.step(at, [d.current_replicas for d in decisions], where="post", color="#999999", label="current")
    bottom.step(at, [d.desired_replicas for d in decisions], where="post", color="#55a868", label="desired")
    runs = [d for d in decisions if d.run_id is not None]
    bottom.scatter(
        [d.at for d in runs], [d.desired_replicas for d in runs], s=12, color="#c44e52", label="run", zorder=3
    )
    bottom.set_ylabel("replicas")
    bottom.legend(loc="upper left", fontsize="small", ncols=3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
