"""The post-incident report laid out: plain text for a terminal, and one self-contained HTML page (its
plots embedded: the alerts and timeline, the candidate causes' key metrics) for the write-up. Every text
that came from outside is escaped. No I/O."""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime
from typing import Any


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render_text(report: dict[str, Any]) -> str:
    incident, durations = report["incident"], report["durations"]
    lines = [
        f"Incident {incident['id']}: {incident['title']}",
        f"status {incident['status']}, severity {incident['severity']}, services "
        f"{', '.join(incident['services']) or '-'}",
        f"opened {incident['opened_at']}; acknowledged after "
        f"{duration(durations['time_to_acknowledge_seconds'])}"
        + (f" by {incident['acknowledged_by']}" if incident["acknowledged_by"] else "")
        + f"; mitigated after {duration(durations['time_to_mitigate_seconds'])}"
        + f"; resolved after {duration(durations['time_to_resolve_seconds'])}"
        + (f" by {incident['resolved_by']}" if incident["resolved_by"] else ""),
        "",
        "Timeline",
    ]
    for event in report["timeline"]:
        actor = f" [{event['actor']}]" if event["actor"] else ""
        lines.append(f"  {event['at'][:19]}  {event['kind']:<16}{actor} {event['detail']}")
    lines += ["", "Alerts"]
    for alert in report["alerts"]:
        log = ", ".join(f"{k} {v}" for k, v in sorted(alert["notification_log"].items())) or "no log entries"
        lines.append(
            f"  {alert['name']} ({alert['service'] or '-'}, {alert['severity']}): "
            f"fired {alert['fired_at'][:19]}, resolved {(alert['resolved_at'] or 'not yet')[:19]}; "
            f"notifications: {log}"
        )
    lines += ["", "Actions"]
    for action in report["actions"] or [{"workflow": None}]:
        if action["workflow"] is None:
            lines.append("  none")
            continue
        error = f": {action['error']}" if action["error"] else ""
        lines.append(f"  {action['workflow']} run {action['run_id']}: {action['status']}{error}")
    lines += ["", "Recent changes"]
    for change in report.get("changes", []) or [None]:
        if change is None:
            lines.append("  none recorded")
            continue
        who = change["actor"] or change["source"]
        what = f"{change['kind']} of {change['service']} by {who}"
        lines.append(f"  {change['at'][:19]}  {what}: {change['description']}")
    lines += ["", "Remediations (guard decisions)"]
    for fix in report.get("remediations") or [None]:
        if fix is None:
            lines.append("  none")
            continue
        guard = f" [{fix['guard']}]" if fix["guard"] else ""
        undo = f"; rolled back by run {fix['compensation_run_id']}" if fix["compensation_run_id"] else ""
        lines.append(f"  {fix['policy']} ({fix['workflow']}): {fix['status']}{guard}: {fix['detail']}{undo}")
    lines += ["", "Candidate causes"]
    for rank, cause in enumerate(report["causes"], 1):
        lines.append(
            f"  {rank}. {cause['service']} (score {cause['score']:.2f}): {'; '.join(cause['evidence'])}"
        )
    metrics = report.get("metrics") or []
    if metrics:
        lines += ["", "Key metrics (the candidates' series, minute bins)"]
    for metric in metrics:
        values = [v for _, v in metric["points"] if v is not None]
        span = f"{min(values):.4g}..{max(values):.4g}" if values else "no values"
        onset = f", onset {metric['onset_at'][:19]}" if metric["onset_at"] else ", no onset"
        lines.append(f"  {metric['service']}: {metric['metric']} ({span}{onset})")
    lines += [f"  {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def timeline_png(report: dict[str, Any]) -> bytes:
    """Each alert's firing as a bar, the timeline's events as marked lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Alert and service names are labels here: a `$` in one must not be read as mathtext.
    matplotlib.rcParams["text.parse_math"] = False

    alerts = report["alerts"]
    opened = datetime.fromisoformat(report["incident"]["opened_at"])
    times = [datetime.fromisoformat(e["at"]) for e in report["timeline"]] or [opened]
    end = (
        datetime.fromisoformat(report["incident"]["resolved_at"])
        if report["incident"]["resolved_at"]
        else max(times)
    )
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.4 * max(1, len(alerts))))
    for row, alert in enumerate(alerts):
        start = datetime.fromisoformat(alert["fired_at"])
        stop = datetime.fromisoformat(alert["resolved_at"]) if alert["resolved_at"] else end
        axes.barh(
            row, (stop - start).total_seconds() / 60, left=(start - opened).total_seconds() / 60, height=0.5
        )
    axes.set_yticks(range(len(alerts)), [f"{a['name']} ({a['service'] or '-'})" for a in alerts])
    for event in report["timeline"]:
        moment = (datetime.fromisoformat(event["at"]) - opened).total_seconds() / 60
        axes.axvline(moment, color="grey", linewidth=0.6, linestyle=":")
    axes.set_xlabel("minutes since the incident opened")
    axes.set_title("Alerts firing (bars) and timeline events (dotted)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def metrics_png(report: dict[str, Any]) -> bytes | None:
    """Each candidate cause's key metric around the incident, one panel each, its onset marked (red) and
    the incident's opening (grey); None when no metric was read."""
    metrics = report.get("metrics") or []
    if not metrics:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["text.parse_math"] = False
    opened = datetime.fromisoformat(report["incident"]["opened_at"])
    figure, panels = plt.subplots(len(metrics), 1, figsize=(10, 1.8 * len(metrics) + 0.6), squeeze=False)
    for axes, metric in zip(panels[:, 0], metrics, strict=True):
        minutes = [(datetime.fromisoformat(t) - opened).total_seconds() / 60 for t, _ in metric["points"]]
        values = [float("nan") if v is None else v for _, v in metric["points"]]
        axes.plot(minutes, values, linewidth=1)
        axes.axvline(0, color="grey", linewidth=0.8, linestyle=":")
        if metric["onset_at"]:
            onset = (datetime.fromisoformat(metric["onset_at"]) - opened).total_seconds() / 60
            axes.axvline(onset, color="red", linewidth=1)
        axes.set_title(f"{metric['service']}: {metric['metric']}", fontsize=9, loc="left")
    panels[-1, 0].set_xlabel("minutes since the incident opened (red: onset found; grey: opened)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def render_html(report: dict[str, Any]) -> str:
    e = html.escape
    incident, durations = report["incident"], report["durations"]
    image = base64.b64encode(timeline_png(report)).decode()

    def table(head: list[str], rows: list[list[str]]) -> str:
        header = "".join(f"<th>{e(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{header}</tr>{body}</table>"

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Incident {e(str(incident['id']))}: {e(incident['title'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}</style>",
        "</head><body>",
        f"<h1>Incident {e(str(incident['id']))}: {e(incident['title'])}</h1>",
        f"<p>Status <b>{e(incident['status'])}</b>, severity <b>{e(incident['severity'])}</b>, services "
        f"{e(', '.join(incident['services']) or '-')}. Opened {e(incident['opened_at'])}.</p>",
        table(
            ["time to acknowledge", "time to mitigate", "time to resolve"],
            [
                [
                    duration(durations[k])
                    for k in (
                        "time_to_acknowledge_seconds",
                        "time_to_mitigate_seconds",
                        "time_to_resolve_seconds",
                    )
                ]
            ],
        ),
        f"<img alt='alerts and timeline' src='data:image/png;base64,{image}'>",
        "<h2>Timeline</h2>",
        table(
            ["at", "event", "by", "detail"],
            [[t["at"][:19], t["kind"], t["actor"], t["detail"]] for t in report["timeline"]],
        ),
        "<h2>Alerts</h2>",
        table(
            ["alert", "service", "severity", "fired", "resolved", "notification log"],
            [
                [
                    a["name"],
                    a["service"] or "-",
                    a["severity"],
                    a["fired_at"][:19],
                    (a["resolved_at"] or "")[:19],
                    ", ".join(f"{k} {v}" for k, v in sorted(a["notification_log"].items())),
                ]
                for a in report["alerts"]
            ],
        ),
        "<h2>Actions</h2>",
        table(
            ["workflow", "run", "status", "started", "finished", "error"],
            [
                [
                    a["workflow"],
                    a["run_id"],
                    a["status"],
                    (a["started_at"] or "")[:19],
                    (a["finished_at"] or "")[:19],
                    a["error"],
                ]
                for a in report["actions"]
            ],
        ),
        "<h2>Recent changes</h2>",
        table(
            ["at", "kind", "service", "by", "description"],
            [
                [c["at"][:19], c["kind"], c["service"], c["actor"] or c["source"], c["description"]]
                for c in report.get("changes", [])
            ],
        ),
        "<h2>Remediations (guard decisions)</h2>",
        table(
            ["policy", "workflow", "status", "guard", "detail", "run", "rolled back by"],
            [
                [
                    r["policy"],
                    r["workflow"],
                    r["status"],
                    r["guard"] or "",
                    r["detail"],
                    r["run_id"] or "",
                    r["compensation_run_id"] or "",
                ]
                for r in report.get("remediations") or []
            ],
        ),
        "<h2>Candidate causes</h2>",
        table(
            ["rank", "service", "score", "evidence"],
            [
                [str(i), c["service"], f"{c['score']:.2f}", "; ".join(c["evidence"])]
                for i, c in enumerate(report["causes"], 1)
            ],
        ),
        *_metrics_section(report),
        "".join(f"<p>{e(note)}</p>" for note in report["notes"]),
        "</body></html>",
    ]
    return "\n".join(parts)


def _metrics_section(report: dict[str, Any]) -> list[str]:
    try:
        plot = metrics_png(report)
    except Exception as exc:  # noqa: BLE001 - a plot that cannot be drawn must not cost the report
        return ["<h2>Key metrics</h2>", f"<p>not drawn ({html.escape(type(exc).__name__)})</p>"]
    if plot is None:
        return []
    image = base64.b64encode(plot).decode()
    alt = "key metrics of the candidate causes"
    return ["<h2>Key metrics</h2>", f"<img alt='{alt}' src='data:image/png;base64,{image}'>"]
