"""The capacity plan as one self-contained HTML page (plots embedded as PNG data, no script, no outside
resource: it opens offline and prints), and each target's plot as PNG bytes."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from automation.scaling.capacity import CapacityPlan, Verdict  # noqa: E402

__all__ = ["plan_png", "render_html", "write_html"]

_VERDICTS = {
    Verdict.OK: ("ok", "#2e7d32"),
    Verdict.WILL_HIT_MAX: ("will hit max_replicas", "#c62828"),
    Verdict.OVER_PROVISIONED: ("over-provisioned", "#ef6c00"),
    Verdict.NO_DATA: ("no data", "#616161"),
}


def plan_png(plan: CapacityPlan) -> bytes:
    """Bucket peaks, the forecast and its band, and the load max_replicas holds, as PNG bytes."""
    figure, axis = plt.subplots(figsize=(11, 3.6))
    history = plan.history
    axis.plot(
        history.index, history.to_numpy(), color="#444444", linewidth=0.7, label="observed (bucket peak)"
    )
    if not plan.forecast.empty:
        frame = plan.forecast
        level = f"{plan.settings.level * 100:g}"
        axis.fill_between(
            frame.index,
            frame["lower"].to_numpy(),
            frame["upper"].to_numpy(),
            color="#4c72b0",
            alpha=0.25,
            linewidth=0,
            label=f"interval to p{level}",
        )
        axis.plot(frame.index, frame["mean"].to_numpy(), color="#4c72b0", linewidth=0.8, label="forecast")
    limit = plan.capacity_at_max
    axis.axhline(limit, color="#c62828", linewidth=0.9, linestyle="--", label="max_replicas at target use")
    if plan.spec.current_replicas is not None:
        held = plan.spec.current_replicas * plan.spec.usable_per_replica
        axis.axhline(held, color="#2e7d32", linewidth=0.9, linestyle=":", label="current replicas")
    if plan.peak_at is not None and math.isfinite(plan.peak_upper):
        axis.scatter(
            [plan.peak_at], [plan.peak_upper], color="#c62828", s=18, zorder=3, label="expected peak"
        )
    top = max([v for v in (limit, plan.peak_upper, plan.observed_peak) if math.isfinite(v)] or [1.0])
    axis.set_ylim(0, top * 1.35)  # room above the lines for the legend
    axis.set_ylabel(plan.spec.unit or "load")
    axis.set_title(f"{plan.spec.name}: {_VERDICTS[plan.verdict][0]}")
    axis.legend(loc="upper left", fontsize="small", ncols=3)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    if isinstance(value, float):
        return html.escape(f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}")
    return html.escape(str(value))


def _percent(share: float) -> str:
    return "&ndash;" if not math.isfinite(share) else html.escape(f"{share:.0%}")


def _when(value: datetime | None) -> str:
    return "&ndash;" if value is None else html.escape(f"{value:%Y-%m-%d %H:%M}")


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#212121;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f5f5f5}
.verdict{font-weight:600}.notes{color:#616161;font-size:.9rem}img{max-width:100%;border:1px solid #eee}
"""


def render_html(plans: Sequence[CapacityPlan], *, generated: datetime | None = None) -> str:
    """The report: a summary table (one row per target), then each target's plot, advice and notes."""
    generated = generated or datetime.now(UTC)
    rows, sections = [], []
    for plan in plans:
        label, colour = _VERDICTS[plan.verdict]
        anchor = html.escape(plan.spec.name, quote=True)
        rows.append(
            "<tr>"
            f'<td><a href="#t-{anchor}">{html.escape(plan.spec.name)}</a></td>'
            f"<td>{_cell(plan.observed_peak)}</td><td>{_cell(plan.peak_upper)}</td><td>{_when(plan.peak_at)}</td>"
            f"<td>{plan.replicas_needed}</td><td>{_cell(plan.spec.current_replicas)}</td>"
            f"<td>{plan.spec.max_replicas}</td><td>{_percent(plan.headroom)}</td>"
            f'<td class="verdict" style="color:{colour}">{html.escape(label)}</td>'
            "</tr>"
        )
        image = base64.b64encode(plan_png(plan)).decode("ascii")
        advice = "".join(f"<li>{html.escape(line)}</li>" for line in plan.advice)
        notes = "".join(f"<li>{html.escape(line)}</li>" for line in plan.notes)
        sections.append(
            f'<section id="t-{anchor}"><h2>{html.escape(plan.spec.name)}</h2>'
            f'<img alt="load, forecast and capacity of {anchor}" src="data:image/png;base64,{image}">'
            f"<p>model: {html.escape(plan.model)}; unit: {html.escape(plan.spec.unit or 'load')}; "
            f"{_cell(plan.spec.capacity_per_replica)} per replica at "
            f"{plan.spec.target_utilization:.0%} target utilisation</p>"
            f"<ul>{advice}</ul><ul class='notes'>{notes}</ul></section>"
        )
    horizon = html.escape(str(plans[0].to_dict()["horizon"])) if plans else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Capacity plan</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Capacity plan{f' &ndash; next {horizon}' if horizon else ''}</h1>"
        f"<p class='notes'>generated {html.escape(generated.strftime('%Y-%m-%d %H:%M UTC'))}; "
        "peaks are the busiest bucket of each hour; replicas at each target's utilisation</p>"
        "<table><thead><tr><th>target</th><th>observed peak</th><th>expected peak (upper)</th>"
        "<th>when</th><th>replicas needed</th><th>current</th><th>max</th><th>headroom</th>"
        "<th>verdict</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + ("" if plans else "<p>No scaling targets to plan.</p>")
        + "".join(sections)
        + "</body></html>"
    )


def write_html(plans: Sequence[CapacityPlan], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(plans), encoding="utf-8")
    return path
